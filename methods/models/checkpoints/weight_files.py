"""Reading weight files safely and fitting them to an architecture (torchvision, timm).

Every file goes through ``torch.load(..., map_location="cpu", weights_only=True)`` or the
safetensors reader, so a file can never run code: pickles that need more than tensors and plain
containers are refused with a :class:`CheckpointError` that says how to save a plain state_dict.
Used by the catalog (cached torchvision weights) and by uploaded checkpoints.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import warnings
from collections.abc import Callable, Mapping
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO, Union

import torch
from torch import nn

from methods._internal.files import open_regular
from methods.errors import CheckpointError, WrongTypeError
from methods.models.checkpoints.architectures import classifier_key, densenet_keys, fit_message, template

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

# ----------------------------------------------------------------------------- checkpoints


def read_bytes(source: CheckpointSource, *, limit: int | None = None) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a short description for messages.

    A path must be a regular file (a FIFO is refused, not waited on) of at most ``limit`` bytes
    (checked before reading).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        with open_regular(path, CheckpointError, "checkpoint") as fh:
            size = os.fstat(fh.fileno()).st_size
            if limit is not None and size > limit:
                raise CheckpointError(
                    f"'{path.name}' is {size / 2**20:,.0f} MB, more than the {limit / 2**20:,.0f} MB "
                    "a checkpoint may be (max_bytes); pass a larger max_bytes for a bigger model you trust."
                )
            try:
                return fh.read(), f"'{path.name}'"
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
        raise WrongTypeError(f"source must be a path, bytes or a binary file-like object, got {type(source).__name__}")
    if isinstance(data, str):
        raise WrongTypeError("the checkpoint stream is text; open the file in binary mode ('rb')")
    return bytes(data), what


_CODE_REFUSED = (
    "this file contains Python objects that could run code ({what}); GradLens only loads "
    "tensors. Save only the state_dict: torch.save(model.state_dict(), path)"
)


_REFUSED_GLOBAL = (
    re.compile(r"Unsupported global: GLOBAL ([\w.]+)"),  # torch 2.4-2.13 and some 2.14 paths
    re.compile(r"unsupported GLOBAL ([\w.]+)"),  # torch 2.14: "Trying to load unsupported GLOBAL posix.system ..."
)
_WHAT_IT_DOES = {
    "posix.system": "os.system, which runs a shell command",
    "nt.system": "os.system, which runs a shell command",
    "builtins.exec": "exec, which runs Python code",
    "builtins.eval": "eval, which runs Python code",
    "exec": "exec, which runs Python code",
    "eval": "eval, which runs Python code",
    "subprocess.Popen": "subprocess.Popen, which starts a program",
}
_SAFE_GLOBALS = {"collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.bytearray", "builtins.complex"}


def _pickle_globals(data: bytes) -> list[str]:
    """The globals a pickle names (GLOBAL, or STACK_GLOBAL after two strings), read with pickletools
    (nothing is executed); for a torch zip archive, of its data.pkl; stops quietly at bad data."""
    if data[:4] == b"PK\x03\x04":
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                info = zf.getinfo(name) if name else None
                if info is None or info.file_size > 64 * 2**20:
                    return []
                data = zf.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, KeyError):
            return []
    found: list[str] = []
    strings: list[str] = []
    stream = io.BytesIO(data)
    try:
        for _ in range(8):  # the legacy format is several pickles in a row
            for op, arg, _pos in pickletools.genops(stream):
                if op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
                if op.name == "STOP":
                    break
            else:
                break
    except Exception:  # noqa: BLE001 - tensor data after the pickles, or a damaged pickle: stop reading
        pass
    return found


def _refused(exc: Exception, data: bytes | None) -> str | None:
    """What a refused pickle refers to, from torch's message (both wordings) or the pickle itself."""
    for pattern in _REFUSED_GLOBAL:
        found = pattern.search(str(exc))
        if found:
            return found.group(1)
    for name in _pickle_globals(data) if data is not None else []:
        if not (name.startswith("torch.") or name in _SAFE_GLOBALS):
            return name
    return None


def torch_load(data: bytes | Path, *, meta: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True`` from bytes or a file; errors become CheckpointError.

    A file in the zip format is memory-mapped (``mmap=True``): a 500 MB VGG-16 file is not read
    into memory twice, and its pages are shared between processes. With ``meta=True`` the tensors
    are built on the meta device: shapes, dtypes and storage sizes, and NO data read
    (:mod:`methods.models.checkpoints.declared`).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol and sparse-on-meta notices; refusals are exceptions
            if meta:
                source = open(data, "rb") if isinstance(data, Path) else io.BytesIO(data)
                with source:
                    return torch.load(source, map_location="meta", weights_only=True)
            if isinstance(data, Path):
                with open(data, "rb") as fh:
                    zipped = fh.read(4) == b"PK\x03\x04"
                return torch.load(data, map_location="cpu", weights_only=True, mmap=zipped)
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raw = data if isinstance(data, bytes) else None
        name = _refused(exc, raw)
        if name:
            does = f", i.e. {_WHAT_IT_DOES[name]}" if name in _WHAT_IT_DOES else ""
            raise CheckpointError(_CODE_REFUSED.format(what=f"it refers to {name}{does}")) from exc
        lines = [
            l.strip()
            for l in str(exc).splitlines()
            if l.strip()
            and not l.strip().startswith(
                ("Check the documentation", "(1)", "(2)", "Weights only load failed", "Please file an issue")
            )
        ]
        raise CheckpointError(
            "this is not a readable PyTorch checkpoint (the weights-only loader refused it: "
            f"{(lines[-1] if lines else type(exc).__name__)[:200]}). If it was saved with torch.save(model), "
            + _CODE_REFUSED.format(what="a whole pickled model").split("; ", 1)[1]
            + "."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any failure of the loader means "not readable"
        first = str(exc).split(". ")[0][:160]
        named = set(_pickle_globals(data)) if isinstance(data, bytes) else set()
        if "torch._utils._rebuild_sparse_tensor" in named:
            raise CheckpointError(
                "it holds sparse tensors; GradLens loads dense tensors only. Save dense weights: "
                "torch.save({k: v.to_dense() for k, v in model.state_dict().items()}, path)."
            ) from exc
        if "Quantized" in str(exc) or "torch._utils._rebuild_qtensor" in named:
            raise CheckpointError(
                "it holds quantized tensors; GradLens loads float weights (gradients do not flow through a "
                "quantized model). Save the float model's state_dict before quantizing it."
            ) from exc
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
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def build_torchvision(
    arch: str, state: dict[str, torch.Tensor], kwargs: dict, *, context: str, num_classes: int = 1000
) -> nn.Module:
    """Build torchvision's ``arch`` and load ``state`` strictly (see :func:`build_from`)."""
    from torchvision.models import get_model

    return build_from(
        lambda: get_model(arch, weights=None, **kwargs), state, context=context, num_classes=num_classes, arch=arch
    )


def build_from(
    factory: Callable[[], nn.Module],
    state: dict[str, torch.Tensor],
    *,
    context: str,
    num_classes: int = 1000,
    arch: str = "",
) -> nn.Module:
    """``factory()`` with ``state`` loaded strictly; a mismatch becomes ONE sentence in a
    CheckpointError (:func:`methods.models.checkpoints.architectures.fit_message`: the file's number of
    classes, or the torchvision architecture it looks like).

    The architecture is first built on the ``meta`` device (no random init, which takes seconds
    for VGG-16; on the CPU when its constructor computes with tensors, as RegNet's does) and the
    tensors are then assigned; floating tensors are cast to the module's dtype. A model with tensors
    the state_dict does not carry (non-persistent buffers made at init, as in some timm models) is
    built again on the CPU and loaded normally.

    Args:
        factory: builds the architecture with random (or no) weights.
        state: the tensors, by the module's own key names.
        context: start of the error message ("The file ... does not fit ...: ").
        num_classes: what the caller asked for (named when the classifier's shape differs).
        arch: the architecture's name, for the "looks like" sentence.

    Raises:
        CheckpointError: integer weights where the model has float ones; keys or shapes that do not fit.
    """
    net = template(factory)
    expected = net.state_dict()
    # Files saved before PyTorch 0.4.1 (some torchvision weights) have no BatchNorm
    # `num_batches_tracked`; torch itself fills 0 for them, and so do we.
    state = dict(state)
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    ints = [
        k for k, v in state.items() if k in expected and expected[k].is_floating_point() and not v.is_floating_point()
    ]
    if ints:
        raise CheckpointError(
            context + f"'{ints[0]}' holds {state[ints[0]].dtype} values where the model has float ones; "
            "save the weights as float: torch.save(model.float().state_dict(), path)."
        )
    problem = fit_message(
        arch,
        {k: tuple(v.shape) for k, v in expected.items()},
        {k: tuple(v.shape) for k, v in state.items()},
        num_classes=num_classes,
        classifier=classifier_key(net),
    )
    if problem:
        raise CheckpointError(context + problem)
    state = {
        k: (v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v)
        for k, v in state.items()
    }
    net.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(net.parameters(), net.buffers())):
        model = factory()  # a tensor the state_dict does not carry
        model.load_state_dict(state, strict=True)
        return model.eval()
    return net.eval()
