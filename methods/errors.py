"""Every exception (and warning) class of GradLens, and the one "did you mean" helper.

Every error the library raises on purpose derives from :class:`GradLensError`, so a caller (the
dashboard, the batch command) catches one type and shows the library's own message; anything
else that escapes is a bug. Messages say what was wrong, the bad value, and what to do.

Several classes also derive from the built-in they refine (``OptionError`` is a ``ValueError``,
``WrongTypeError`` a ``TypeError``, ``SnapshotNotFound`` a ``KeyError`` ...), so code written
against the built-ins keeps working.

=========================== ================================================================
class                       raised when
=========================== ================================================================
OptionError                 an argument or method option has a bad value (ValueError)
WrongTypeError              an argument has the wrong type (OptionError and TypeError)
InputError                  the input tensor or image array cannot be explained (ValueError)
UnknownMethodError          a method name that is not registered (ValueError)
LayerError                  a layer that is not a module of the model or gives no map (ValueError)
HeadError                   CAM at a layer that does not reach the logits by GAP + one linear map (LayerError)
TargetError                 a target class that does not fit the batch or the model (ValueError)
RecorderError               a forward pass without one clean activation/gradient pair (RuntimeError)
ScoreError                  the model does not behave as a score-family method needs (RuntimeError)
UnknownModelError           a model or architecture name GradLens does not know (ValueError)
WeightsNotAvailableError    pretrained weights are not on this machine
MissingWeightsError         a bundled weight file is missing (also FileNotFoundError)
CheckpointError             a weight file cannot be loaded safely or does not fit
BadWeightsError             a bundled weight file is unreadable (CheckpointError, ValueError)
ImageError                  a file is not an image GradLens can read safely
AnnotationError             an annotated data set is malformed or does not fit the model (ValueError)
SnapshotError               the review store refused a snapshot, comment or verdict
SnapshotNotFound            no snapshot has this id (SnapshotError, KeyError)
Cancelled                   a long computation was stopped on request
EngineError                 a batch engine (process pool, Ray) could not run the work (RuntimeError)
=========================== ================================================================

Warnings: :class:`GradLensWarning` (recorded in ``Explanation.notes``) and its subclass
:class:`ScoreWarning` (a score-family method took a slower route).

A message that shows a value the caller gave shows it through :func:`brief`: a module is named by
its class, never printed whole (``repr`` of a network is its every layer).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "GradLensError",
    "OptionError",
    "WrongTypeError",
    "InputError",
    "UnknownMethodError",
    "LayerError",
    "HeadError",
    "TargetError",
    "RecorderError",
    "ScoreError",
    "UnknownModelError",
    "WeightsNotAvailableError",
    "MissingWeightsError",
    "CheckpointError",
    "BadWeightsError",
    "ImageError",
    "AnnotationError",
    "SnapshotError",
    "SnapshotNotFound",
    "Cancelled",
    "EngineError",
    "GradLensWarning",
    "ScoreWarning",
    "suggest",
    "brief",
]


class GradLensError(Exception):
    """Base class of every error GradLens raises on purpose."""


class OptionError(GradLensError, ValueError):
    """An argument or a method option has a bad value; the message names it, the value and the
    valid choices (also a ``ValueError``)."""


class WrongTypeError(OptionError, TypeError):
    """An argument has the wrong type (also a ``TypeError``)."""


class InputError(GradLensError, ValueError):
    """The input (a tensor ``x``, an image array) cannot be explained: wrong shape, dtype, or
    non-finite values (also a ``ValueError``)."""


class UnknownMethodError(GradLensError, ValueError):
    """A method name that is not registered; the message suggests the closest names."""


class LayerError(GradLensError, ValueError):
    """A layer name that is not a module of the model, or that cannot be recorded."""


class HeadError(LayerError):
    """CAM was asked for a layer whose output does not reach the logits through global average
    pooling and ONE linear map (a ``Linear`` or a 1x1 ``Conv2d``); the message says what was found
    and which method to use instead (Grad-CAM equals CAM on such heads)."""


class TargetError(GradLensError, ValueError):
    """A target class that does not fit the batch or the model's classes."""


class RecorderError(GradLensError, RuntimeError):
    """The forward pass did not give one clean (activation, gradient) pair per layer."""


class ScoreError(GradLensError, RuntimeError):
    """The model did not behave as a score-family method needs (e.g. it returned no logits)."""


class UnknownModelError(GradLensError, ValueError):
    """A model or architecture name that GradLens does not know (also a ``ValueError``).

    The message names the bad value and suggests the closest known names.
    """


class WeightsNotAvailableError(GradLensError):
    """Pretrained weights are not on this machine and downloading was not allowed (or failed).

    The message names the exact file that is expected and how to put it there.
    """


class MissingWeightsError(WeightsNotAvailableError, FileNotFoundError):
    """The weight file of a bundled model is not there (also a ``FileNotFoundError``)."""


class CheckpointError(GradLensError):
    """A checkpoint cannot be loaded safely or does not fit the architecture."""


class BadWeightsError(CheckpointError, ValueError):
    """The weight file of a bundled model is unreadable or does not fit the architecture."""


class ImageError(GradLensError):
    """An input file is not an image GradLens can read safely (empty, truncated, too large...)."""


class AnnotationError(GradLensError, ValueError):
    """An annotated data set (COCO JSON, Pascal VOC XML, an ImageFolder, a mask folder) cannot be
    used: malformed file, a missing image, a box outside its image, a class the model does not know
    (the message names the file, the bad value and what was expected; also a ``ValueError``)."""


class SnapshotError(GradLensError):
    """A snapshot, comment or verdict was refused (too long, empty, wrong type...), or the
    database cannot be used (newer schema, not SQLite, no WAL)."""


class SnapshotNotFound(SnapshotError, KeyError):
    """No snapshot has this id, or the id is malformed. Also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "snapshot not found"


class Cancelled(GradLensError):
    """A long computation was stopped on request (a progress callback's ``cancelled`` flag)."""


class EngineError(GradLensError, RuntimeError):
    """A batch engine could not run the work: a worker did not start (its reason is in the
    message), a worker process died, or Ray is missing or failed. What was finished is kept."""


class GradLensWarning(UserWarning):
    """Something a user should know about a map (a slower route taken, a layer whose signed
    activations invert a method ...). :func:`methods.explain_many` records the messages a method
    warns during its computation in :attr:`methods.Explanation.notes` and passes each distinct one
    on ONCE per call.

    A warning about one layer may say so (``layer``, the method's ``label``, ``kind``: what is
    wrong as a predicate, "mostly negative"; ``advice``: one clause): the call then passes ONE line
    on for all the layers of that kind ("Grad-CAM++: 10 of 13 layers are mostly negative
    (features.3, ...): ..."), while ``notes`` keep each layer's full message.
    """

    def __init__(
        self,
        message: object = "",
        *,
        label: str | None = None,
        layer: str | None = None,
        kind: str | None = None,
        advice: str | None = None,
    ) -> None:
        super().__init__(message)
        self.label, self.layer, self.kind, self.advice = label, layer, kind, advice


class ScoreWarning(GradLensWarning):
    """A score-family method took a slower route than it could (the message says why)."""


def suggest(value: object, choices: Iterable[str], n: int = 3) -> str:
    """A short " Did you mean ...?" phrase for ``value`` among ``choices`` ("" when none is close).

    Matching is case-insensitive (difflib ratio >= 0.5); the suggestions keep their own case.

    Examples:
        >>> suggest("gradcamm", ["gradcam", "gradcampp", "scorecam"])
        " Did you mean 'gradcam', 'gradcampp', 'scorecam'?"
        >>> suggest("xyz", ["gradcam"])
        ''
    """
    choices = list(choices)
    lookup = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(lookup), n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(lookup[c]) for c in close)}?" if close else ""


def _is_module(value: object) -> bool:
    """Whether ``value`` is a ``torch.nn.Module`` (checked by class, so this module needs no torch)."""
    return any(c.__name__ == "Module" and c.__module__ == "torch.nn.modules.module" for c in type(value).__mro__)


def brief(value: object, limit: int = 80) -> str:
    """``value`` as an error message shows it: its ``repr`` when short and on one line; a module
    (``torch.nn.Module``) by its class name only; anything longer by its type.

    Examples:
        >>> brief("layer4"), brief(3)
        ("'layer4'", '3')
        >>> import torch
        >>> brief(torch.nn.Sequential(torch.nn.ReLU()))
        'a Sequential module'
        >>> brief(list(range(100)))
        'a list'
    """
    if _is_module(value):
        return f"a {type(value).__name__} module"
    text = repr(value)
    if len(text) > limit or "\n" in text:
        return f"a {type(value).__name__}"
    return text
