"""What a checkpoint declares, read BEFORE any tensor data: names, shapes, dtypes, layouts, sizes.

A 2.3 MB torch archive can hold a deflated 2.4 GB storage, and ``torch.load`` inflates it before
anyone looks at a shape. So :func:`methods.models.checkpoints.load.load_checkpoint` reads the file in
two steps:

1. **Declarations.** For a torch zip archive: the zip's central directory (record sizes, no
   decompression: :func:`zip_records`) and then
   ``torch.load(map_location="meta", weights_only=True)``, torch's own restricted unpickler, which builds *meta* tensors (shape,
   dtype, layout, storage size; no data: torch reads no storage record for the meta device). The
   legacy (pre-1.6, non-zip) format cannot compress, so its data is no larger than the file; it
   is declared the same way. For safetensors: the JSON header (:func:`declared_safetensors`).
2. **Checks** (:func:`check_declared`) against the architecture's own state_dict, built on the
   meta device: the data size (declared storages and zip records) under what the architecture
   needs at float64 plus a margin, and under an absolute cap; only dense real tensors, floating
   where the model has floating parameters. Shapes are compared by
   :mod:`methods.models.arch_guess`. Only then are the tensors read.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from methods.errors import CheckpointError

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_PICKLE_BYTES",
    "Declared",
    "is_zip",
    "zip_records",
    "declared_of",
    "declared_safetensors",
    "allowed_bytes",
    "check_declared",
]

#: Default absolute cap on a checkpoint's declared tensor data (1 GiB; VGG-16 needs 528 MB).
MAX_CHECKPOINT_BYTES: int = 2**30

#: The pickle (``data.pkl``) of a torch archive is read into memory whole; it holds no tensor data.
MAX_PICKLE_BYTES: int = 64 * 2**20

_MARGIN = 16 * 2**20  # extra bytes over the architecture's float64 size (metadata, odd buffers)

_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "C64": torch.complex64,
    "F8_E4M3": getattr(torch, "float8_e4m3fn", None),
    "F8_E5M2": getattr(torch, "float8_e5m2", None),
}


@dataclass(frozen=True)
class Declared:
    """One tensor as the file declares it (nothing read from its data)."""

    shape: tuple[int, ...]
    dtype: torch.dtype | None
    layout: str  # "strided" for a dense tensor; "sparse_coo", "sparse_csr" ...
    storage_bytes: int  # bytes of the storage behind it (0 when unknown, e.g. sparse)
    storage_key: Any  # tensors sharing a storage have the same key


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def zip_records(data: bytes) -> dict[str, int]:
    """Record name -> uncompressed size, from the zip's central directory (nothing decompressed).

    Raises:
        CheckpointError: not a readable zip, or its pickle (or another record that is not tensor
            data, which torch reads whole) inflates past :data:`MAX_PICKLE_BYTES`.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            records = {info.filename: int(info.file_size) for info in zf.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(
            f"this is not a readable PyTorch checkpoint (the zip archive is damaged: {exc}). The file may be "
            "truncated or corrupt; save it again with torch.save(model.state_dict(), path)."
        ) from exc
    for name, size in records.items():  # torch reads the pickle and the small records whole
        if "/data/" not in f"/{name}" and size > MAX_PICKLE_BYTES:
            kind = "pickle" if name.endswith("data.pkl") else "record"
            raise CheckpointError(
                f"its {kind} '{name}' inflates to {size / 2**20:,.0f} MB (a state_dict's pickle is a few hundred KB; "
                f"the limit is {MAX_PICKLE_BYTES / 2**20:.0f} MB). Save the state_dict with torch.save(model.state_dict(), path)."
            )
    return records


def _of_tensor(t: torch.Tensor) -> Declared:
    if t.layout != torch.strided:
        return Declared(tuple(t.shape), t.dtype, str(t.layout).replace("torch.", ""), 0, id(t))
    storage = t.untyped_storage()
    key = getattr(storage, "_checkpoint_offset", None)  # set by torch for meta loads of zip archives
    return Declared(tuple(t.shape), t.dtype, "strided", int(storage.nbytes()), key if key is not None else id(t))


def declared_of(meta_state: Mapping[str, torch.Tensor]) -> dict[str, Declared]:
    """:class:`Declared` of every tensor of a state_dict loaded on the meta device."""
    return {k: _of_tensor(v) for k, v in meta_state.items()}


def declared_safetensors(data: bytes) -> dict[str, Declared]:
    """:class:`Declared` of every tensor in a safetensors file, from its JSON header only.

    Raises:
        CheckpointError: the header is not valid JSON of the safetensors layout.
    """
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        out: dict[str, Declared] = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end = (int(v) for v in entry["data_offsets"])
            shape = tuple(int(s) for s in entry["shape"])
            dtype = _SAFETENSORS_DTYPES.get(str(entry["dtype"]))
            if dtype is None:
                known = ", ".join(k for k, v in _SAFETENSORS_DTYPES.items() if v is not None)
                raise CheckpointError(
                    f"the tensor {name!r} has dtype {entry['dtype']!r}, which GradLens does not read "
                    f"(it reads {known}); save the weights as float32."
                )
            out[name] = Declared(shape, dtype, "strided", end - start, (start, end))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"this safetensors file has an unreadable header ({type(exc).__name__}: {exc}); save it again."
        ) from exc
    return out


def allowed_bytes(expected: Mapping[str, torch.Tensor], max_bytes: int) -> int:
    """The most tensor data a file for this architecture may declare: its parameters and buffers
    at 8 bytes a value (float64, the widest real dtype) plus 16 MiB, and never over ``max_bytes``."""
    return min(sum(t.numel() for t in expected.values()) * 8 + _MARGIN, int(max_bytes))


def _few(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def check_declared(
    declared: Mapping[str, Declared],
    expected: Mapping[str, torch.Tensor],
    *,
    max_bytes: int,
    records: Mapping[str, int] | None = None,
) -> None:
    """Refuse, before any data is read, what could not become this architecture's weights.

    Args:
        declared: the file's tensors (:func:`declared_of`, :func:`declared_safetensors`), keys
            already mapped to the architecture's names.
        expected: the architecture's state_dict (meta tensors are fine).
        max_bytes: the absolute cap (:data:`MAX_CHECKPOINT_BYTES` by default).
        records: a zip archive's record sizes (:func:`zip_records`).

    Raises:
        CheckpointError: sparse, quantized or unknown layouts; complex or bool tensors; integer
            tensors where the model has floating ones; more data than :func:`allowed_bytes`.
    """
    odd = [k for k, d in declared.items() if d.layout != "strided"]
    if odd:
        kinds = sorted({declared[k].layout for k in odd})
        raise CheckpointError(
            f"it holds {'/'.join(kinds)} tensors ({_few(odd)}); GradLens loads dense tensors only. "
            "Save dense weights: torch.save({k: v.to_dense() for k, v in model.state_dict().items()}, path)."
        )
    for kind, test in (("complex", lambda d: d.is_complex), ("bool", lambda d: d == torch.bool)):
        bad = [k for k, d in declared.items() if d.dtype is not None and test(d.dtype)]
        if bad:
            raise CheckpointError(
                f"it holds {kind} tensors ({_few(bad)}, dtype {declared[bad[0]].dtype}); a network's weights "
                "are real floating-point numbers. Save them as float: torch.save(model.float().state_dict(), path)."
            )
    ints = [
        k
        for k, d in declared.items()
        if k in expected and expected[k].is_floating_point() and d.dtype is not None and not d.dtype.is_floating_point
    ]
    if ints:
        raise CheckpointError(
            f"it holds integer weights where the model has floating-point ones ({_few(ints)}, dtype "
            f"{declared[ints[0]].dtype}); GradLens needs float weights (a quantized or integer-cast model cannot be "
            "explained by gradients). Save them as float: torch.save(model.float().state_dict(), path)."
        )
    limit = allowed_bytes(expected, max_bytes)
    storages: dict[Any, int] = {}
    for d in declared.values():
        storages[d.storage_key] = max(storages.get(d.storage_key, 0), d.storage_bytes)
    total = sum(storages.values())
    data_records = sum(size for name, size in (records or {}).items() if "/data/" in f"/{name}")
    worst = max(total, data_records)
    if worst > limit:
        need = sum(t.numel() for t in expected.values()) * 4
        cap = " (max_bytes)" if limit == int(max_bytes) else ""
        raise CheckpointError(
            f"it declares {worst / 2**20:,.1f} MB of tensor data, more than the {limit / 2**20:,.1f} MB{cap} this "
            f"architecture can use (it needs {need / 2**20:,.1f} MB as float32); refused before reading it. "
            "Save only the model's state_dict; pass a larger max_bytes for a bigger model you trust."
        )
