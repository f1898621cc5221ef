"""Reading weight files safely and fitting them to an architecture (torchvision, timm).

Every file goes through ``torch.load(..., map_location="cpu", weights_only=True)`` or the
safetensors reader, so a file can never run code: pickles that need more than tensors and plain
containers are refused with a :class:`CheckpointError` that says how to save a plain state_dict.
Used by the catalog (cached torchvision weights) and by uploaded checkpoints.
"""

from __future__ import annotations

import io
import pickle
import re
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Union

import torch
from torch import nn

from methods.errors import CheckpointError, WrongTypeError

__all__ = [
    "CheckpointSource",
    "read_bytes",
    "torch_load",
    "is_safetensors",
    "safetensors_load",
    "state_dict_of",
    "densenet_keys",
    "build_torchvision",
    "build_from",
]

CheckpointSource = Union[str, Path, bytes, bytearray, memoryview, BinaryIO]

_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's DenseNet files use old names (``norm.1.weight``); the modules are ``norm1``."""
    out = {}
    for key, value in state.items():
        m = _DENSENET_OLD_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


# ----------------------------------------------------------------------------- checkpoints


def read_bytes(source: CheckpointSource) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a short description for messages."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.read_bytes(), f"'{path.name}'"
        except FileNotFoundError as exc:
            raise CheckpointError(f"No such checkpoint file: '{path}'.") from exc
        except OSError as exc:
            raise CheckpointError(f"Cannot read the checkpoint file '{path}': {exc}.") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the uploaded checkpoint"
    name = getattr(source, "name", None)
    what = f"'{Path(name).name}'" if isinstance(name, str) and name else "the uploaded checkpoint"
    if hasattr(source, "getvalue"):
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read()
    else:
        raise WrongTypeError(
            f"source must be a path, bytes or a binary file-like object, got {type(source).__name__}"
        )
    if isinstance(data, str):
        raise WrongTypeError("the checkpoint stream is text; open the file in binary mode ('rb')")
    return bytes(data), what


_CODE_REFUSED = (
    "this file contains Python objects that could run code ({what}); GradLens only loads "
    "tensors. Save only the state_dict: torch.save(model.state_dict(), path)"
)


def torch_load(data: bytes | Path) -> Any:
    """``torch.load`` with ``weights_only=True`` from bytes or a file; errors become CheckpointError.

    A file in the zip format is memory-mapped (``mmap=True``): a 500 MB VGG-16 file is not read
    into memory twice, and its pages are shared between processes.
    """
    try:
        if isinstance(data, Path):
            with open(data, "rb") as fh:
                zipped = fh.read(4) == b"PK\x03\x04"
            return torch.load(data, map_location="cpu", weights_only=True, mmap=zipped)
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise CheckpointError(_CODE_REFUSED.format(what=f"it refers to {found.group(1)}")) from exc
        raise CheckpointError(
            "this is not a readable PyTorch checkpoint (the weights-only loader refused it: "
            f"{str(exc).splitlines()[-1][:200]}). If it was saved with torch.save(model), "
            + _CODE_REFUSED.format(what="a whole pickled model").split("; ", 1)[1]
            + "."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any failure of the loader means "not readable"
        first = str(exc).split(". ")[0][:160]
        raise CheckpointError(
            f"this is not a readable PyTorch checkpoint ({type(exc).__name__}: {first}). "
            "The file may be truncated or corrupt; save it again with torch.save(model.state_dict(), path)."
        ) from exc


def is_safetensors(data: bytes) -> bool:
    """safetensors layout: 8-byte little-endian header length, then a JSON object."""
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


def safetensors_load(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"this safetensors file cannot be read ({exc}); save it again.") from exc


def state_dict_of(obj: Any) -> dict[str, torch.Tensor]:
    """The state_dict in ``obj``: itself, or under "state_dict" / "model" / "model_state_dict".
    A ``module.`` prefix on every key (saved from DataParallel) is removed."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"expected a state_dict (a dict of tensors), found a {type(obj).__name__}. "
            "Save it with torch.save(model.state_dict(), path)."
        )

    def tensors_only(d: Mapping) -> bool:
        return len(d) > 0 and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())

    state = obj if tensors_only(obj) else None
    for key in ("state_dict", "model", "model_state_dict"):
        if state is None and isinstance(obj.get(key), Mapping) and tensors_only(obj[key]):
            state = obj[key]
    if state is None:
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        raise CheckpointError(
            f"no state_dict found: the file holds a dict with keys {keys} that is neither a dict of "
            "tensors nor holds one under 'state_dict', 'model' or 'model_state_dict'. "
            "Save it with torch.save(model.state_dict(), path)."
        )
    state = dict(state)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _classifier_key(model: nn.Module) -> str | None:
    """``<name>.weight`` of the last Linear (else last Conv2d) module: the class-score layer."""
    last_linear = last_conv = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_linear = name
        elif isinstance(module, nn.Conv2d):
            last_conv = name
    name = last_linear if last_linear is not None else last_conv
    return f"{name}.weight" if name is not None else None


def _mismatch_message(model: nn.Module, expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], num_classes: int) -> str | None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in expected if k in state and state[k].shape != expected[k].shape]
    if not (missing or unexpected or shapes):
        return None

    def few(keys: list[str]) -> str:
        return ", ".join(repr(k) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    parts: list[str] = []
    cls = _classifier_key(model)
    cls_bad = [s for s in shapes if s[0] == cls]
    if cls_bad:
        _, got, want = cls_bad[0]
        parts.append(
            f"the classifier '{cls}' has {got[0]} outputs in the file (shape {got}) but num_classes="
            f"{num_classes} expects shape {want}; pass num_classes={got[0]}"
        )
    cls_bias = cls[: -len("weight")] + "bias" if cls else None
    other = [s for s in shapes if s[0] not in (cls, cls_bias if cls_bad else None)]
    if other:
        parts.append("shape mismatch: " + "; ".join(f"'{k}' is {g} in the file, the model needs {w}" for k, g, w in other[:5]))
    if missing:
        parts.append(f"{len(missing)} missing key(s): {few(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {few(unexpected)}")
    return "; ".join(parts) + "."


def build_torchvision(arch: str, state: dict[str, torch.Tensor], kwargs: dict, *, context: str, num_classes: int = 1000) -> nn.Module:
    """Build torchvision's ``arch`` and load ``state`` strictly (see :func:`build_from`)."""
    from torchvision.models import get_model

    return build_from(lambda: get_model(arch, weights=None, **kwargs), state, context=context, num_classes=num_classes)


def build_from(factory: Callable[[], nn.Module], state: dict[str, torch.Tensor], *, context: str, num_classes: int = 1000) -> nn.Module:
    """``factory()`` with ``state`` loaded strictly; mismatches become one explanatory CheckpointError.

    The architecture is first built on the ``meta`` device (no random init, which takes seconds
    for VGG-16) and the tensors are then assigned; floating tensors are cast to the module's dtype.
    A model with tensors the state_dict does not carry (non-persistent buffers made at init, as in
    some timm models) is built again on the CPU and loaded normally.

    Args:
        factory: builds the architecture with random (or no) weights; called on the meta device.
        state: the tensors, by the module's own key names.
        context: start of the error message ("The file ... does not fit ...: ").
        num_classes: what the caller asked for (named when the classifier's shape differs).

    Raises:
        CheckpointError: missing / unexpected keys or shape mismatches.
    """
    with torch.device("meta"):
        template = factory()
    expected = template.state_dict()
    # Files saved before PyTorch 0.4.1 (some torchvision weights) have no BatchNorm
    # `num_batches_tracked`; torch itself fills 0 for them, and so do we.
    state = dict(state)
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    problem = _mismatch_message(template, expected, state, num_classes)
    if problem:
        raise CheckpointError(context + problem)
    state = {
        k: (v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v)
        for k, v in state.items()
    }
    template.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(template.parameters(), template.buffers())):
        model = factory()  # a tensor the state_dict does not carry
        model.load_state_dict(state, strict=True)
        return model.eval()
    return template.eval()
