"""The exception types of GradLens.

Every error the library raises on purpose derives from :class:`GradLensError`, so a caller (the
dashboard, the batch command) can catch one type and show the library's own message. Messages
say what was wrong and what to do about it.

The specific subclasses live here too, so that any module can raise them without importing the
module that usually does (no import cycles).
"""

from __future__ import annotations

__all__ = [
    "GradLensError",
    "WeightsNotAvailableError",
    "UnknownModelError",
    "CheckpointError",
    "ImageError",
]


class GradLensError(Exception):
    """Base class of every error GradLens raises on purpose."""


class WeightsNotAvailableError(GradLensError):
    """Pretrained weights are not on this machine and downloading was not allowed.

    The message names the exact file that is expected and how to put it there.
    """


class UnknownModelError(GradLensError, ValueError):
    """A model or architecture name that GradLens does not know (also a ``ValueError``).

    The message names the bad value and suggests the closest known names.
    """


class CheckpointError(GradLensError):
    """An uploaded checkpoint cannot be loaded safely or does not fit the architecture."""


class ImageError(GradLensError):
    """An input file is not an image GradLens can read safely (empty, truncated, too large...)."""
