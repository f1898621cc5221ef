"""Your own weights for a torchvision or timm architecture: :func:`load_checkpoint`.

``arch`` is a torchvision classification model name (``"resnet18"``) or any timm model name
after ``timm:`` (``"timm:convnext_tiny"``, :mod:`methods.models.timm_archs`). The file is read by :mod:`methods.models.weight_files` (``weights_only=True``; nothing in it runs) and
becomes a :class:`methods.models.loaded.LoadedModel` with ``source="checkpoint"`` and the file's sha256.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import torch

from methods.errors import CheckpointError, OptionError, UnknownModelError, suggest
from methods.models.weight_files import (
    CheckpointSource,
    build_torchvision,
    densenet_keys,
    is_safetensors,
    read_bytes,
    safetensors_load,
    state_dict_of,
    torch_load,
)
from methods._checks import floats3, size2
from methods.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel
from methods.models.timm_archs import TIMM_PREFIX, TIMM_SUGGESTED, build_timm, check_timm_name, timm_default_layer, timm_name
from methods.models.torchvision_zoo import TORCHVISION

__all__ = ["load_checkpoint", "checkpoint_architectures"]


def _probe_default_layer(arch: str, kwargs: dict, size: tuple[int, int]) -> str:
    """methods.cams.layers.default_layer on a ``meta``-device copy: shapes only, no arithmetic (a real
    CPU probe of e.g. GoogLeNet takes seconds)."""
    from torchvision.models import get_model

    from methods.cams.layers import default_layer

    with torch.device("meta"):
        return default_layer(get_model(arch, weights=None, **kwargs), input_size=size)


def checkpoint_architectures() -> list[str]:
    """Architecture names for :func:`load_checkpoint`, for a menu: every torchvision
    classification model (sorted), then a short list of timm CNNs (:data:`TIMM_SUGGESTED`).

    Any other timm model is accepted too, named ``"timm:<name>"`` with a name from
    ``timm.list_models()`` (there are over a thousand; they are not listed here). Only
    convolutional models give maps (a ViT has no spatial 4-D layer).

    Examples:
        >>> archs = checkpoint_architectures()
        >>> "resnet18" in archs, "timm:convnext_tiny" in archs
        (True, True)
    """
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm)) + list(TIMM_SUGGESTED)


def load_checkpoint(
    source: CheckpointSource,
    *,
    arch: str,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    input_size: int | tuple[int, int] = (224, 224),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    name: str | None = None,
) -> LoadedModel:
    """Load your own weights for a torchvision architecture, safely.

    The file must hold a state_dict: ``torch.save(model.state_dict(), path)`` (a dict holding one
    under ``"state_dict"``, ``"model"`` or ``"model_state_dict"`` also works; a ``module.`` prefix
    from DataParallel is removed), or a ``.safetensors`` file (recognised by content). It is read
    with ``torch.load(weights_only=True, map_location="cpu")``: nothing in it is executed.

    Args:
        source: path, bytes, or binary file-like (a Streamlit upload).
        arch: a torchvision classification architecture name (``"resnet18"``, ``"vgg16"`` ...), or
            ``"timm:<name>"`` for any timm model (``"timm:convnext_tiny"``, ``"timm:regnety_008"``;
            built with ``timm.create_model(name, pretrained=False, num_classes=num_classes)``).
        num_classes: outputs of the classifier; must match the file.
        class_names: one name per class; default ``("class 0", "class 1", ...)``.
        input_size, mean, std: preprocessing; default 224 x 224 with ImageNet mean/std (what
            torchvision-style training uses). Set them to your training values.
        name: the LoadedModel's name; default ``"<arch>-<first 8 hex of sha256>"``.

    Returns:
        :class:`LoadedModel` with ``source="checkpoint"`` and ``digest`` = sha256 of the bytes.

    Raises:
        CheckpointError: unreadable or empty file; Python objects that could run code; no
            state_dict; missing / unexpected keys or shape mismatches (a wrong ``num_classes`` is
            named as such).
        UnknownModelError (a ValueError): unknown ``arch`` (torchvision or timm name).
        ValueError: bad ``num_classes``, ``class_names`` length, ``input_size``, ``mean``, ``std``.
    """
    timm_arch = timm_name(arch)
    if timm_arch is not None:
        check_timm_name(timm_arch)
    else:
        archs = checkpoint_architectures()
        if arch not in archs:
            raise UnknownModelError(
                f"unknown arch {arch!r}.{suggest(arch, archs)} arch must be a torchvision "
                f"classification model name, e.g. {', '.join(TORCHVISION)}, or {TIMM_PREFIX!r} "
                "followed by a timm model name (timm.list_models()), e.g. 'timm:convnext_tiny'."
            )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise OptionError(f"num_classes must be a positive int, got {num_classes!r}")
    if class_names is None:
        names = tuple(f"class {i}" for i in range(num_classes))
    else:
        names = tuple(str(c) for c in class_names)
        if len(names) != num_classes:
            raise OptionError(f"class_names has {len(names)} names but num_classes={num_classes}; give one name per class")
    size = size2(input_size)
    mean3, std3 = floats3(mean, "mean"), floats3(std, "std")

    data, what = read_bytes(source)
    if not data:
        raise CheckpointError(f"{what[:1].upper() + what[1:]} is empty (0 bytes).")
    digest = hashlib.sha256(data).hexdigest()
    kind = "safetensors" if is_safetensors(data) else "state_dict"
    try:
        state = safetensors_load(data) if kind == "safetensors" else state_dict_of(torch_load(data))
        if not state:
            raise CheckpointError("the file holds no tensors.")
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    context = f"{what[:1].upper() + what[1:]} does not fit arch={arch!r}: "
    if timm_arch is not None:
        model = build_timm(timm_arch, state, num_classes=num_classes, context=context)
        layer = timm_default_layer(timm_arch, num_classes, size, model)
        return _loaded(name or f"{arch}-{digest[:8]}", model, arch, layer, size, mean3, std3, names, digest, what, kind)
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if arch in ("googlenet", "inception_v3") and not any(k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in state):
        kwargs.update(aux_logits=False, init_weights=False)
    if arch.startswith("densenet"):
        state = densenet_keys(state)
    model = build_torchvision(arch, state, kwargs, context=context, num_classes=num_classes)

    known = TORCHVISION.get(arch)
    layer = known.default_layer if known else _probe_default_layer(arch, kwargs, size)
    return _loaded(name or f"{arch}-{digest[:8]}", model, arch, layer, size, mean3, std3, names, digest, what, kind)


def _loaded(name: str, model: torch.nn.Module, arch: str, layer: str, size: tuple[int, int], mean3: tuple, std3: tuple,
            names: tuple[str, ...], digest: str, what: str, kind: str) -> LoadedModel:
    return LoadedModel(
        name=name,
        model=model,
        input_size=size,
        mean=mean3,
        std=std3,
        class_names=names,
        default_layer=layer,
        source="checkpoint",
        digest=digest,
        note=(
            f"{arch} with weights from {what} ({kind}, sha256 {digest[:12]}), {len(names)} classes; "
            f"input {size[0]}x{size[1]}, mean {mean3}, std {std3}."
        ),
        domain="unknown",
    )
