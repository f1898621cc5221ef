"""Where and how the library's work runs: the public face of its device, precision and progress rules.

Code outside :mod:`methods` (the dashboard, a user's script) asks here rather than reaching into
the private helpers behind it:

* :func:`default_device` / :func:`resolve_device` — where models run (``$GRADLENS_DEVICE``, else a
  CUDA GPU when present, else the CPU); :data:`DEVICE_ENV` names the variable;
* :func:`resolve_precision` / :func:`bf16_is_native` — what ``precision="auto"`` means on a device;
  :data:`PRECISION_ENV` (``$GRADLENS_PRECISION``) overrides it;
* :data:`Progress` — the ``(done, total)`` callback type; :class:`ProgressTracker` — a thread-safe
  tracker whose ``cancelled`` flag stops long work.

Examples:
    >>> from methods import runtime
    >>> runtime.resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

from methods._internal.device import DEVICE_ENV, default_device, resolve_device
from methods._internal.progress import Progress, ProgressTracker
from methods._internal.torch_utils import PRECISION_ENV, bf16_is_native, resolve_precision

__all__ = [
    "DEVICE_ENV",
    "PRECISION_ENV",
    "Progress",
    "ProgressTracker",
    "bf16_is_native",
    "default_device",
    "resolve_device",
    "resolve_precision",
]
