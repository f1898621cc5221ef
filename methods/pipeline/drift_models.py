"""The two sides of a drift run: two checkpoints of ONE architecture, loaded safely and checked alike.

A side is named by a catalog name (``"scenes_vgg"``: the bundled weights), a weight file with its
architecture, or an already loaded :class:`~methods.models.loaded.LoadedModel`. A weight file's
architecture ``arch`` is either one :func:`methods.models.checkpoints.load.load_checkpoint` knows
(a torchvision name, ``timm:<name>``; read through :class:`~methods.models.user_models.ModelRef`,
the commands' own checkpoint path) or a catalog model's name (``"scenes_vgg"``): then the file
holds new weights for THAT model — its architecture, class names and preprocessing — read by
:func:`weights_into` with the same safety rules as every upload (``weights_only``; what the file
declares is checked against the model's state_dict before any tensor data is read).

:func:`check_same_architecture` refuses two sides whose state_dict keys or shapes differ, or whose
class counts differ: their maps and top-1 classes could not be compared.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import torch

from methods.errors import CheckpointError, OptionError
from methods.models.catalog import load_model
from methods.models.checkpoints.architectures import classifier_key, fit_message
from methods.models.checkpoints.declared import (
    MAX_CHECKPOINT_BYTES,
    MAX_PICKLE_BYTES,
    check_declared,
    declared_of,
    declared_safetensors,
    is_zip,
    zip_records,
)
from methods.models.checkpoints.weight_files import (
    is_safetensors,
    read_bytes,
    safetensors_load,
    state_dict_of,
    torch_load,
)
from methods.models.loaded import LoadedModel
from methods.models.model_config import ModelConfig
from methods.models.sources.base import source_for

__all__ = ["load_side", "weights_into", "check_same_architecture", "side_card"]


def _is_checkpoint_arch(arch: str) -> bool:
    from methods.models.checkpoints.load import checkpoint_architectures
    from methods.models.checkpoints.timm_archs import timm_name

    return timm_name(arch) is not None or arch in checkpoint_architectures()


def weights_into(
    base: LoadedModel, source: str | Path | bytes, *, max_bytes: int = MAX_CHECKPOINT_BYTES
) -> LoadedModel:
    """``base`` (a catalog model) with the weights of ``source`` instead of its own.

    The file is a state_dict (``torch.save(model.state_dict(), path)``, a dict holding one under
    ``"state_dict"`` / ``"model"``, a ``module.`` prefix removed) or safetensors. What it declares
    (keys, shapes, dtypes, data size) is checked against ``base.model.state_dict()`` BEFORE any
    tensor data is read; then it is read with ``torch.load(weights_only=True)`` and loaded strictly
    into a copy of ``base.model`` (``base`` itself is not changed).

    Returns:
        A :class:`LoadedModel` with ``base``'s preprocessing and class names, ``source="checkpoint"``
        and the file's sha256 as ``digest``.

    Raises:
        CheckpointError: an unreadable, unsafe or empty file; keys or shapes that do not fit (one
            sentence naming them); integer or complex weights; more data than the model needs.
    """
    data, what = read_bytes(source, limit=max_bytes + MAX_PICKLE_BYTES)
    if not data:
        raise CheckpointError(f"{what} is empty (0 bytes).")
    digest = hashlib.sha256(data).hexdigest()
    safetensors = is_safetensors(data)
    try:
        if safetensors:
            declared, records = declared_safetensors(data), None
        else:
            records = zip_records(data) if is_zip(data) else None
            declared = declared_of(state_dict_of(torch_load(data, meta=True)))
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    expected = base.model.state_dict()
    problem = fit_message(
        base.name,
        {k: tuple(v.shape) for k, v in expected.items()},
        {k: d.shape for k, d in declared.items()},
        num_classes=base.num_classes,
        classifier=classifier_key(base.model),
    )
    if problem:
        problem = problem.replace("it matches no torchvision architecture GradLens knows (", "it does not (", 1)
        raise CheckpointError(f"{what} does not fit the architecture of {base.name!r}: {problem}")
    try:
        check_declared(declared, expected, max_bytes=max_bytes, records=records)
        state = safetensors_load(data) if safetensors else state_dict_of(torch_load(data))
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    model = copy.deepcopy(base.model)
    state = {
        k: (v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v)
        for k, v in state.items()
    }
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # fit_message saw the same keys and shapes; a dtype torch refuses
        raise CheckpointError(f"{what} does not load into {base.name!r}: {exc}") from None
    return dataclasses.replace(
        base,
        name=f"{base.name}-{digest[:8]}",
        model=model.eval(),
        source="checkpoint",
        digest=digest,
        note=f"{base.name}'s architecture with weights from {what} (sha256 {digest[:12]}).",
    )


def load_side(
    spec: Any, *, arch: str | None = None, config: ModelConfig | None = None, what: str = "model"
) -> LoadedModel:
    """One side of a drift run as a :class:`LoadedModel` (see the module docstring).

    Args:
        spec: a catalog name, a weight file path, or a LoadedModel (returned as it is).
        arch: the architecture of a weight file: a torchvision name, ``timm:<name>``, or a catalog
            model's name (``"scenes_vgg"``). Not used for a catalog name.
        config: class names and preprocessing for a torchvision / timm checkpoint.
        what: how messages call this side (``"A"``, ``"B"``).

    Raises:
        OptionError: ``spec`` is neither a file nor a catalog name; a file without ``arch``.
        UnknownModelError: an unknown ``arch`` (with suggestions).
        CheckpointError: the file does not fit ``arch`` or is unsafe.
    """
    if isinstance(spec, LoadedModel):
        return spec
    if not isinstance(spec, (str, Path)) or not str(spec):
        raise OptionError(f"{what} must be a catalog name or a checkpoint path; got {spec!r}")
    path = Path(spec).expanduser()
    if path.is_file():
        if not arch:
            raise OptionError(
                f"{what} is a weight file ({path.name}): give its architecture with --arch "
                "(a torchvision name, timm:<name>, or a catalog model such as scenes_vgg)"
            )
        if not _is_checkpoint_arch(arch) and source_for(arch) is not None:
            return weights_into(load_model(arch), path)
        from methods.models.user_models import ModelRef

        return ModelRef("checkpoint", str(path), arch, config or ModelConfig()).load()
    if source_for(str(spec)) is not None:
        return load_model(str(spec))
    raise OptionError(
        f"{what}={str(spec)!r} is neither an existing file nor a catalog model name; check the path "
        "(or methods.list_models() for the names)"
    )


def check_same_architecture(a: LoadedModel, b: LoadedModel) -> None:
    """Refuse two models that are not one architecture with one class list size.

    Raises:
        CheckpointError: the state_dict keys or shapes differ (the message names the first few),
            or the number of classes differs.
    """
    sa = {k: tuple(v.shape) for k, v in a.model.state_dict().items()}
    sb = {k: tuple(v.shape) for k, v in b.model.state_dict().items()}
    if sa != sb:
        only_a = [k for k in sa if k not in sb]
        only_b = [k for k in sb if k not in sa]
        differ = [k for k in sa if k in sb and sa[k] != sb[k]]
        bits = []
        if only_a:
            bits.append(f"{len(only_a)} key(s) only in A ({', '.join(only_a[:3])})")
        if only_b:
            bits.append(f"{len(only_b)} key(s) only in B ({', '.join(only_b[:3])})")
        if differ:
            k = differ[0]
            bits.append(f"{len(differ)} shape(s) differ ('{k}': {sa[k]} in A, {sb[k]} in B)")
        raise CheckpointError(
            f"A ({a.name}) and B ({b.name}) are not one architecture: {'; '.join(bits)}. Drift compares two "
            "checkpoints of the SAME model; give two files of one architecture (and the same --arch)."
        )
    if a.num_classes != b.num_classes:
        raise CheckpointError(
            f"A ({a.name}) has {a.num_classes} classes and B ({b.name}) {b.num_classes}; their top-1 classes "
            "cannot be compared"
        )


def side_card(loaded: LoadedModel, spec: Any) -> dict[str, Any]:
    """What the report says about one side (JSON-ready)."""
    return {
        "name": loaded.name,
        "given": str(spec) if not isinstance(spec, LoadedModel) else loaded.name,
        "source": loaded.source,
        "digest": loaded.digest,
        "classes": loaded.num_classes,
        "parameters": int(sum(p.numel() for p in loaded.model.parameters())),
        "dtype": str(next((p.dtype for p in loaded.model.parameters()), torch.float32)).replace("torch.", ""),
    }
