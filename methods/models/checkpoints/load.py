"""Your own weights for a torchvision or timm architecture: :func:`load_checkpoint`.

``arch`` is a torchvision classification model name (``"resnet18"``), a torchvision detection or
segmentation model name (``"fasterrcnn_mobilenet_v3_large_fpn"``, ``"fcn_resnet50"``:
:mod:`methods.models.task_zoo`) or any timm model name after ``timm:`` (``"timm:convnext_tiny"``, :mod:`methods.models.checkpoints.timm_archs`). The file is read by :mod:`methods.models.checkpoints.weight_files` (``weights_only=True``; nothing in it runs) and
becomes a :class:`methods.models.loaded.LoadedModel` with ``source="checkpoint"`` and the file's sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from torch import nn

from methods._internal.checks import check_int, floats3, size2
from methods.cams.core.layers import default_layer
from methods.errors import CheckpointError, OptionError, UnknownModelError, suggest
from methods.models.checkpoints.architectures import classifier_key, densenet_keys, fit_message, template
from methods.models.checkpoints.declared import (
    MAX_CHECKPOINT_BYTES,
    MAX_PICKLE_BYTES,
    Declared,
    check_declared,
    declared_of,
    declared_safetensors,
    is_zip,
    zip_records,
)
from methods.models.checkpoints.timm_archs import (
    TIMM_PREFIX,
    TIMM_SUGGESTED,
    build_timm,
    check_timm_name,
    timm_default_layer,
    timm_factory,
    timm_name,
)
from methods.models.checkpoints.weight_files import (
    CheckpointSource,
    build_torchvision,
    is_safetensors,
    read_bytes,
    safetensors_load,
    state_dict_of,
    torch_load,
)
from methods.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Task
from methods.models.task_zoo import task_architectures, task_build_kwargs, task_layers
from methods.models.torchvision_zoo import TORCHVISION

__all__ = ["load_checkpoint", "checkpoint_architectures", "MAX_CHECKPOINT_BYTES"]


def _probe_default_layer(arch: str, kwargs: dict, size: tuple[int, int]) -> str:
    """methods.cams.core.layers.default_layer on a ``meta``-device copy (shapes only, no arithmetic: a
    real CPU probe of e.g. GoogLeNet takes seconds); on the CPU for the few architectures whose
    constructor needs data (RegNet)."""
    net = template(arch, **kwargs)
    return default_layer(net, input_size=size)


def _declarations(data: bytes, kind: str) -> tuple[dict[str, Declared], dict[str, int] | None]:
    """What the file declares (no tensor data read) and, for a zip archive, its record sizes."""
    if kind == "safetensors":
        declared, records = declared_safetensors(data), None
    else:
        records = zip_records(data) if is_zip(data) else None
        declared = declared_of(state_dict_of(torch_load(data, meta=True)))
    if not declared:
        raise CheckpointError("the file holds no tensors.")
    return declared, records


def checkpoint_architectures() -> list[str]:
    """Architecture names for :func:`load_checkpoint`, for a menu: every torchvision
    classification, detection and segmentation model (sorted together; the task ones from
    :func:`methods.models.task_zoo.task_architectures`), then a short list of timm CNNs
    (:data:`TIMM_SUGGESTED`).

    Any other timm model is accepted too, named ``"timm:<name>"`` with a name from
    ``timm.list_models()`` (there are over a thousand; they are not listed here). Only
    models with a spatial grid give maps: CNNs, and transformers whose tokens form a patch grid
    (:mod:`methods.cams.core.layouts`).

    Examples:
        >>> archs = checkpoint_architectures()
        >>> "resnet18" in archs, "timm:convnext_tiny" in archs
        (True, True)
    """
    import torchvision.models as tvm

    return sorted([*tvm.list_models(module=tvm), *task_architectures()]) + list(TIMM_SUGGESTED)


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
    max_bytes: int = MAX_CHECKPOINT_BYTES,
) -> LoadedModel:
    """Load your own weights for a torchvision architecture, safely.

    The file must hold a state_dict: ``torch.save(model.state_dict(), path)`` (a dict holding one
    under ``"state_dict"``, ``"model"`` or ``"model_state_dict"`` also works; a ``module.`` prefix
    from DataParallel is removed), or a ``.safetensors`` file (recognised by content). It is read
    with ``torch.load(weights_only=True, map_location="cpu")``: nothing in it is executed.

    Before any tensor data is read, what the file DECLARES (:mod:`methods.models.checkpoints.declared`: the
    zip's record sizes, then the tensors built on the meta device; a safetensors header) is
    checked against the architecture: keys and shapes, dense real floating-point weights, and a
    data size no larger than the architecture needs at float64 (and ``max_bytes``). A 2.3 MB
    archive declaring a 2.4 GB tensor is refused at a few MB of memory.

    Args:
        source: path, bytes, or binary file-like (a Streamlit upload).
        arch: a torchvision classification architecture name (``"resnet18"``, ``"vgg16"`` ...), a
            torchvision detection or segmentation one (``"fasterrcnn_mobilenet_v3_large_fpn"``,
            ``"retinanet_resnet50_fpn"``, ``"fcn_resnet50"`` ...; ``num_classes`` counts the
            background, as torchvision's do; built with ``weights_backbone=None``), or
            ``"timm:<name>"`` for any timm model (``"timm:convnext_tiny"``, ``"timm:regnety_008"``;
            built with ``timm.create_model(name, pretrained=False, num_classes=num_classes)``).
        num_classes: outputs of the classifier; must match the file.
        class_names: one name per class; default ``("class 0", "class 1", ...)``.
        input_size, mean, std: preprocessing; default 224 x 224 with ImageNet mean/std (what
            torchvision-style training uses). Set them to your training values. A detector
            normalises inside (its ``image_mean``/``image_std``): its LoadedModel gets mean 0 and
            std 1, and a ``mean``/``std`` other than the defaults is refused.
        name: the LoadedModel's name; default ``"<arch>-<first 8 hex of sha256>"``.
        max_bytes: the most tensor data the file may declare (default 1 GiB,
            :data:`MAX_CHECKPOINT_BYTES`).

    Returns:
        :class:`LoadedModel` with ``source="checkpoint"`` and ``digest`` = sha256 of the bytes.

    Raises:
        CheckpointError: unreadable or empty file, or not a regular file (a FIFO); Python objects
            that could run code (the message names what the pickle refers to); no state_dict;
            sparse, quantized, complex, bool or integer weights; more declared data than the
            architecture needs; keys or shapes that do not fit, in one sentence: the file's
            number of classes, or the torchvision architecture the file looks like.
        UnknownModelError (a ValueError): unknown ``arch`` (torchvision or timm name).
        ValueError: bad ``num_classes``, ``class_names`` length, ``input_size``, ``mean``, ``std``.
    """
    timm_arch = timm_name(arch)
    task: Task | None = None if timm_arch is not None else task_architectures().get(arch)
    if timm_arch is not None:
        check_timm_name(timm_arch)
    else:
        archs = checkpoint_architectures()
        if arch not in archs:
            raise UnknownModelError(
                f"unknown arch {arch!r}.{suggest(arch, archs)} arch must be a torchvision "
                f"classification model name, e.g. {', '.join(TORCHVISION)}, a torchvision detection or "
                f"segmentation model name, e.g. fasterrcnn_mobilenet_v3_large_fpn, fcn_resnet50, or {TIMM_PREFIX!r} "
                "followed by a timm model name (timm.list_models()), e.g. 'timm:convnext_tiny'."
            )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise OptionError(f"num_classes must be a positive int, got {num_classes!r}")
    if class_names is None:
        names = tuple(f"class {i}" for i in range(num_classes))
    else:
        names = tuple(str(c) for c in class_names)
        if len(names) != num_classes:
            raise OptionError(
                f"class_names has {len(names)} names but num_classes={num_classes}; give one name per class"
            )
    size = size2(input_size)
    mean3, std3 = floats3(mean, "mean"), floats3(std, "std")
    if task == "detection":
        if (mean3, std3) != (IMAGENET_MEAN, IMAGENET_STD):
            raise OptionError(
                f"{arch} normalises its input inside (image_mean/image_std of its transform); "
                "do not pass mean/std for a torchvision detector"
            )
        mean3, std3 = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    max_bytes = check_int("max_bytes", max_bytes, 1)

    data, what = read_bytes(source, limit=max_bytes + MAX_PICKLE_BYTES)
    What = what[:1].upper() + what[1:]
    if not data:
        raise CheckpointError(f"{What} is empty (0 bytes).")
    digest = hashlib.sha256(data).hexdigest()
    kind = "safetensors" if is_safetensors(data) else "state_dict"
    try:
        declared, records = _declarations(data, kind)
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    context = f"{What} does not fit arch={arch!r}: "
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if timm_arch is not None:
        net = template(timm_factory(timm_arch, num_classes))
    elif task is not None:
        kwargs = task_build_kwargs(arch, num_classes, list(declared))
        net = template(arch, **kwargs)
    else:
        if arch in ("googlenet", "inception_v3") and not any(
            k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in declared
        ):
            kwargs.update(aux_logits=False, init_weights=False)
        if arch.startswith("densenet"):
            declared = densenet_keys(declared)
        net = template(arch, **kwargs)
    expected = net.state_dict()
    # decided from the declarations: no tensor data has been read yet
    problem = fit_message(
        arch,
        {k: tuple(v.shape) for k, v in expected.items()},
        {k: d.shape for k, d in declared.items()},
        num_classes=num_classes,
        classifier=None if task else classifier_key(net),
    )
    if problem and task:
        problem = problem.replace("it matches no torchvision architecture GradLens knows (", "it does not (", 1)
        problem += f" Is num_classes={num_classes} right? torchvision's {task} models count the background in it."
    if problem:
        raise CheckpointError(context + problem)
    task_layer = task_layers(net)[0] if task else None
    try:
        check_declared(declared, expected, max_bytes=max_bytes, records=records)
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    del net, expected
    try:
        state = safetensors_load(data) if kind == "safetensors" else state_dict_of(torch_load(data))
    except CheckpointError as exc:
        raise CheckpointError(f"Cannot load {what}: {exc}") from exc
    if timm_arch is not None:
        model = build_timm(timm_arch, state, num_classes=num_classes, context=context)
        layer = timm_default_layer(timm_arch, num_classes, size, model)
        return _loaded(name or f"{arch}-{digest[:8]}", model, arch, layer, size, mean3, std3, names, digest, what, kind)
    if arch.startswith("densenet"):
        state = densenet_keys(state)
    model = build_torchvision(arch, state, kwargs, context=context, num_classes=num_classes)

    known = TORCHVISION.get(arch)
    layer = task_layer or (known.default_layer if known else _probe_default_layer(arch, kwargs, size))
    loaded = _loaded(name or f"{arch}-{digest[:8]}", model, arch, layer, size, mean3, std3, names, digest, what, kind)
    if task is not None:
        loaded = replace(loaded, task=task, note=f"{task}: " + loaded.note)
    return loaded


def _loaded(
    name: str,
    model: nn.Module,
    arch: str,
    layer: str,
    size: tuple[int, int],
    mean3: tuple,
    std3: tuple,
    names: tuple[str, ...],
    digest: str,
    what: str,
    kind: str,
) -> LoadedModel:
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
