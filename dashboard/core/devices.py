"""Where the dashboard's models run: the devices present, the one a view asks for, and the one
copy of maps from the device to the host.

Pure: no streamlit import. The sidebar offers :func:`present` (``cpu``, ``cuda:0`` ... ``cuda:N-1``,
``mps`` where available: a bounded choice, checked like every other URL parameter); a view's
``device`` is "" until someone picks one, and "" means this machine's default device
(``methods.runtime.default_device``: ``$GRADLENS_DEVICE``, else the first CUDA GPU, else the CPU).
:func:`place` is the one place a dashboard model moves; :func:`host_arrays` is the one place maps
leave the device (one transfer for every map of a computation, not one per layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from methods import resolve_precision, runtime
from methods.errors import OptionError

__all__ = ["AUTO", "present", "default", "chosen", "label", "auto_precision", "place", "is_accelerator", "host_arrays"]

AUTO = ""
"""A view's ``device`` when nobody chose one: this machine's default device."""


def present() -> tuple[str, ...]:
    """The devices a user may pick on this machine: ``"cpu"``, then ``"cuda:0"`` ... one per CUDA
    GPU, then ``"mps"`` where Apple's Metal backend is available.

    Examples:
        >>> present()[0]
        'cpu'
    """
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = ["mps"] if torch.backends.mps.is_available() else []
    return ("cpu", *cuda, *mps)


def default() -> torch.device:
    """This machine's default device (``methods.runtime.default_device``), with its index
    (``cuda`` -> ``cuda:0``), so it compares equal to a menu entry."""
    device = runtime.default_device()
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", 0)
    return device


def chosen(device: str) -> torch.device:
    """The device a view's ``device`` field names; :data:`AUTO` -> :func:`default`.

    Raises:
        OptionError: a device that is not in :func:`present` (the message lists those that are).

    Examples:
        >>> chosen("cpu"), chosen("cpu") == chosen(AUTO) or chosen(AUTO).type != "cpu"
        (device(type='cpu'), True)
    """
    if device == AUTO:
        return default()
    names = present()
    if device not in names:
        raise OptionError(f"device {device!r} is not on this machine; choose one of {', '.join(names)}")
    return torch.device(device)


def label(device: Any) -> str:
    """``"CPU"``, ``"CUDA GPU 0 (<name>)"``, ``"MPS"``: a device as a person reads it.

    Examples:
        >>> label(torch.device("cpu")), label("cpu")
        ('CPU', 'CPU')
    """
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"CUDA GPU {index} ({torch.cuda.get_device_name(index)})"
    return device.type.upper()


def auto_precision(device: Any) -> str:
    """What ``precision="auto"`` (the score family's and the curves' default) runs in on
    ``device``: bf16 autocast on that device's type where it is native (a CUDA GPU with bf16, a CPU
    with AMX or AVX512-BF16), else fp32 (``methods.resolve_precision``). Gradient maps are fp32
    everywhere. Part of every map's cache key, so a map made in bf16 is never served as fp32."""
    return resolve_precision("auto", torch.device(device))


def place(loaded: Any, device: Any) -> Any:
    """``loaded`` (a ``LoadedModel``) with its model moved to ``device`` (in place: ``Module.to``);
    the model's input follows, since ``LoadedModel.preprocess`` puts it on the weights' device."""
    loaded.model.to(torch.device(device))
    return loaded


def is_accelerator(device: Any) -> bool:
    """Whether ``device`` is a GPU (CUDA or MPS): work there is bounded per device
    (``dashboard.app.cache.GPU_SLOTS``); the CPU is not.

    Examples:
        >>> is_accelerator("cuda:1"), is_accelerator("mps"), is_accelerator("cpu")
        (True, True, False)
    """
    return torch.device(device).type in ("cuda", "mps")


def host_arrays(tensors: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """float32 NumPy copies of ``tensors`` through ONE device-to-host transfer.

    The maps of one computation (every method x layer) are flattened and concatenated on their
    device, copied once, and split on the host: a GPU synchronises once, not once per map.

    Examples:
        >>> a, b = host_arrays([torch.ones(2, 2), torch.arange(3.0)])
        >>> a.shape, b.tolist(), a.dtype
        ((2, 2), [0.0, 1.0, 2.0], dtype('float32'))
    """
    if not tensors:
        return []
    device = tensors[0].device
    flat = torch.cat([t.detach().to(device=device, dtype=torch.float32).reshape(-1) for t in tensors])  # (sum n,)
    host = flat.cpu().numpy()
    out, start = [], 0
    for t in tensors:
        out.append(host[start : start + t.numel()].reshape(tuple(t.shape)).copy())
        start += t.numel()
    return out
