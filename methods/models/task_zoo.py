"""torchvision's detection and segmentation models: their published COCO / VOC weights from the local
torch hub cache, their default layers, and their architectures for your own checkpoints.

As for the ImageNet classifiers (:mod:`methods.models.torchvision_zoo`), nothing is downloaded here:
the file is ``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>`` and a missing one is a
:class:`WeightsNotAvailableError` naming it (:func:`methods.models.download_weights` fetches it,
hash-checked). Files are read with ``weights_only=True``.

Input conventions, as torchvision's:

* detectors take RGB in [0, 1] and normalise inside (``GeneralizedRCNNTransform`` /
  ``SSD``'s transform), so their :class:`LoadedModel` has mean 0 and std 1. They resize the image
  again inside to their own ``min_size``; ``input_size`` is the size GradLens hands them.
* segmenters take ImageNet-normalised images; their output is ``{"out": (N, 21, H, W)}`` (VOC's
  20 classes and the background).

Default layers: the backbone's last stage (the deepest map every head reads from); for FPN
backbones the FPN output convolutions ``backbone.fpn.layer_blocks.<i>`` are the block layers (one
per pyramid level, finest first). Architectures not in :data:`TASK_MODELS` get theirs from the
same rule (:func:`task_layers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from torch import nn

from methods.errors import CheckpointError, UnknownModelError, WeightsNotAvailableError
from methods.models.checkpoints.weight_files import build_torchvision, state_dict_of, torch_load
from methods.models.loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelCard, Task
from methods.models.torchvision_zoo import cache_path, missing_message, tv_weights

__all__ = [
    "TaskEntry",
    "TASK_MODELS",
    "task_of",
    "task_architectures",
    "task_layers",
    "task_build_kwargs",
    "task_card",
    "task_input_size",
    "load_task_model",
]


@dataclass(frozen=True)
class TaskEntry:
    label: str
    description: str
    task: Task
    default_layer: str
    input_size: int


TASK_MODELS: dict[str, TaskEntry] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": TaskEntry(
        "Faster R-CNN MobileNetV3 320 (COCO)",
        "Two-stage detector, MobileNetV3-Large FPN backbone at 320 px; fast on a CPU.",
        "detection",
        "backbone.body.16",
        320,
    ),
    "fasterrcnn_mobilenet_v3_large_fpn": TaskEntry(
        "Faster R-CNN MobileNetV3 (COCO)",
        "Two-stage detector, MobileNetV3-Large FPN backbone.",
        "detection",
        "backbone.body.16",
        512,
    ),
    "fasterrcnn_resnet50_fpn": TaskEntry(
        "Faster R-CNN ResNet-50 FPN (COCO)",
        "Two-stage detector, ResNet-50 FPN.",
        "detection",
        "backbone.body.layer4",
        512,
    ),
    "maskrcnn_resnet50_fpn": TaskEntry(
        "Mask R-CNN ResNet-50 FPN (COCO)",
        "Faster R-CNN with a mask head; GradLens explains its boxes.",
        "detection",
        "backbone.body.layer4",
        512,
    ),
    "retinanet_resnet50_fpn": TaskEntry(
        "RetinaNet ResNet-50 FPN (COCO)",
        "One-stage detector with focal loss.",
        "detection",
        "backbone.body.layer4",
        512,
    ),
    "fcos_resnet50_fpn": TaskEntry(
        "FCOS ResNet-50 FPN (COCO)", "Anchor-free one-stage detector.", "detection", "backbone.body.layer4", 512
    ),
    "ssdlite320_mobilenet_v3_large": TaskEntry(
        "SSDlite MobileNetV3 (COCO)", "Single-shot detector at 320 px.", "detection", "backbone.features.1", 320
    ),
    "fcn_resnet50": TaskEntry(
        "FCN ResNet-50 (VOC labels)",
        "Fully convolutional segmenter, 21 VOC labels.",
        "segmentation",
        "backbone.layer4",
        520,
    ),
    "deeplabv3_mobilenet_v3_large": TaskEntry(
        "DeepLabV3 MobileNetV3 (VOC labels)",
        "Atrous segmenter on MobileNetV3-Large, 21 VOC labels.",
        "segmentation",
        "backbone.16",
        520,
    ),
    "lraspp_mobilenet_v3_large": TaskEntry(
        "LR-ASPP MobileNetV3 (VOC labels)", "Light segmenter, 21 VOC labels.", "segmentation", "backbone.16", 520
    ),
}


def task_architectures() -> dict[str, Task]:
    """Every torchvision detection and segmentation builder name -> its task (keypoint R-CNN
    excluded: its output is keypoints, which no target explains)."""
    import torchvision.models as tvm

    out: dict[str, Task] = {}
    for name in tvm.list_models(module=tvm.detection):
        if not name.startswith("keypointrcnn"):
            out[name] = "detection"
    for name in tvm.list_models(module=tvm.segmentation):
        out[name] = "segmentation"
    return out


def task_of(arch: str) -> Task | None:
    """``"detection"`` / ``"segmentation"`` for a torchvision task architecture, else None."""
    if arch in TASK_MODELS:
        return TASK_MODELS[arch].task
    return task_architectures().get(arch)


def task_layers(model: nn.Module) -> tuple[str, list[str]]:
    """(default layer, block layers) of a torchvision detector or segmenter, from its structure.

    * an FPN backbone (``backbone.body`` + ``backbone.fpn``): the deepest stage the FPN reads,
      ``backbone.body.<last of return_layers>``; blocks: ``backbone.fpn.layer_blocks.<i>``;
    * a segmenter's ``IntermediateLayerGetter``: the stage returned as ``"out"`` (``"high"`` for LR-ASPP);
    * SSD: the last module of ``backbone.features``.

    Raises:
        CheckpointError: none of these shapes (a structure GradLens does not know).
    """
    backbone = getattr(model, "backbone", None)
    body = getattr(backbone, "body", None)
    if body is not None and hasattr(body, "return_layers"):
        last = list(body.return_layers)[-1]
        fpn = getattr(backbone, "fpn", None)
        blocks = [f"backbone.fpn.layer_blocks.{i}" for i in range(len(getattr(fpn, "layer_blocks", [])))]
        return f"backbone.body.{last}", blocks
    if backbone is not None and hasattr(backbone, "return_layers"):
        inverse = {v: k for k, v in backbone.return_layers.items()}
        key = inverse.get("out", inverse.get("high"))
        if key is not None:
            return f"backbone.{key}", []
    features = getattr(backbone, "features", None)
    if isinstance(features, nn.Sequential) and len(features):
        return f"backbone.features.{len(features) - 1}", []
    raise CheckpointError(
        f"GradLens does not know where the backbone of {type(model).__name__} ends; "
        "explain it with explain(..., layer=...) on a layer you name."
    )


def task_build_kwargs(arch: str, num_classes: int, keys: list[str] | tuple[str, ...] = ()) -> dict:
    """Keyword arguments for ``torchvision.models.get_model(arch, weights=None, **kwargs)``: no
    backbone download (``weights_backbone=None``), ``num_classes``, and for FCN / DeepLabV3 the
    auxiliary head when the file has one (``aux_loss``)."""
    kwargs: dict = {"weights_backbone": None, "num_classes": num_classes}
    if arch.startswith(("fcn_", "deeplabv3_")):
        kwargs["aux_loss"] = any(k.startswith("aux_classifier.") for k in keys)
    return kwargs


def task_input_size(name: str) -> tuple[int, int]:
    size = TASK_MODELS[name].input_size
    return size, size


def task_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of torchvision's task model ``name``."""
    weights = tv_weights(name)
    metrics = weights.meta.get("_metrics", {})
    data = next(iter(metrics), "COCO") if metrics else "COCO"
    figures = ", ".join(f"{k} {v}" for k, v in next(iter(metrics.values()), {}).items()) if metrics else ""
    return ModelCard(
        weights=f"torchvision {weights} ({Path(urlparse(weights.url).path).name})",
        license="torchvision pre-trained weights (see github.com/pytorch/vision, 'Pre-trained Model License')",
        trained_on=f"{data} ({len(weights.meta['categories'])} labels incl. background)"
        + (f": {figures}" if figures else ""),
        origin="trained by the torchvision team",
        url=str(weights.meta.get("recipe", "")),
    )


def load_task_model(name: str) -> LoadedModel:
    """torchvision's detection / segmentation model ``name`` with its published weights from the
    local cache (never downloads).

    Raises:
        UnknownModelError: ``name`` is not in :data:`TASK_MODELS`.
        WeightsNotAvailableError: the file is not in the cache, or cannot be read.
        CheckpointError: the file does not fit the architecture.
    """
    if name not in TASK_MODELS:
        raise UnknownModelError(f"unknown detection/segmentation model {name!r}; known: {', '.join(TASK_MODELS)}")
    entry = TASK_MODELS[name]
    weights = tv_weights(name)
    path = cache_path(weights.url)
    if not path.is_file():
        raise WeightsNotAvailableError(missing_message(name, weights.url, path))
    try:
        state = state_dict_of(torch_load(path))
    except (CheckpointError, OSError) as exc:
        raise WeightsNotAvailableError(
            f"The cached weight file {path} of {name!r} cannot be read: {exc} Delete it and fetch {weights.url} again."
        ) from exc
    categories = tuple(weights.meta["categories"])
    kwargs = task_build_kwargs(name, len(categories), list(state))
    model = build_torchvision(name, state, kwargs, context=f"The cached weight file {path} does not fit {name!r}: ")
    det = entry.task == "detection"
    return LoadedModel(
        name=name,
        model=model,
        input_size=task_input_size(name),
        mean=(0.0, 0.0, 0.0) if det else IMAGENET_MEAN,
        std=(1.0, 1.0, 1.0) if det else IMAGENET_STD,
        class_names=categories,
        default_layer=entry.default_layer,
        source="torchvision",
        note=f"torchvision {weights} ({entry.task}, {len(categories)} labels) from {path}.",
        domain="unknown",
        card=task_card(name),
        task=entry.task,
    )
