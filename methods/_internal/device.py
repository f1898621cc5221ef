"""Where models run: :func:`default_device` and :func:`resolve_device` (re-exported by
:mod:`methods._internal.torch_utils`).

The rule: ``$GRADLENS_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``, ``mps`` ...), else the first
CUDA GPU when one is present, else the CPU. The commands (batch, evaluate) put their model there;
the library functions run on whatever device the model and input already are.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from methods.errors import OptionError

__all__ = ["DEVICE_ENV", "default_device", "resolve_device"]

DEVICE_ENV = "GRADLENS_DEVICE"
"""Environment variable that overrides :func:`default_device` (``cpu``, ``cuda``, ``cuda:1`` ...)."""


def resolve_device(device: Any = None, *, what: str = "device") -> torch.device:
    """A usable ``torch.device`` from a name, a device or None (None -> :func:`default_device`).

    Raises:
        OptionError: not a device name, a device that cannot run a model (``meta`` holds shapes,
            not numbers; ``cpu:1``: there is one CPU device), or a CUDA / MPS device this machine
            does not have.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None:
        return default_device()
    try:
        dev = torch.device(device.strip() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(f"{what}={device!r} is not a device; expected e.g. 'cpu', 'cuda' or 'cuda:1'") from None
    if dev.type == "meta":
        raise OptionError(
            f"{what}={device!r} cannot run a model: a meta tensor has a shape but no values; use 'cpu' or 'cuda'"
        )
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise OptionError(f"{what}={device!r}: there is one CPU device ('cpu' or 'cpu:0'); use 'cpu'")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise OptionError(
            f"{what}={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
            f"(torch.cuda.is_available() is {torch.cuda.is_available()}); use 'cpu'"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"{what}={device!r}: MPS is not available on this machine; use 'cpu'")
    return dev


def default_device() -> torch.device:
    """Where models run when nobody says: ``$GRADLENS_DEVICE`` if set, else the first CUDA GPU
    when one is present, else the CPU.

    Raises:
        OptionError: ``$GRADLENS_DEVICE`` names a device this machine does not have.

    Examples:
        >>> default_device().type in ("cpu", "cuda", "mps", "xpu")
        True
    """
    env = os.environ.get(DEVICE_ENV, "").strip()
    if env:
        return resolve_device(env, what=f"${DEVICE_ENV}")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
