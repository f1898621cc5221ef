"""The bundled scene models (classifiers ``scenes_vgg``, ``scenes_resnet``, ``scenes_vit``; detector
``scenes_det``; segmenter ``scenes_seg``): weights shipped in ``methods/models/assets/``."""

from __future__ import annotations

from pathlib import Path

from methods._internal.checks import size2
from methods.models.loaded import LoadedModel, ModelCard, Source
from methods.models.scenes import detseg_nets
from methods.models.scenes import nets as scene_nets
from methods.models.sources.base import ModelEntry, register_source

__all__ = ["BUNDLED", "BundledSource", "scenes_card"]

BUNDLED: dict[str, tuple[str, str]] = {
    "scenes_vgg": ("Scenes VGG (bundled)", "Small VGG-style CNN trained on GradLens synthetic scenes; no download."),
    "scenes_resnet": (
        "Scenes ResNet (bundled)",
        "Small ResNet-style CNN trained on GradLens synthetic scenes; no download.",
    ),
    "scenes_vit": (
        "Scenes ViT (bundled)",
        "Small hybrid Vision Transformer (timm; scenes_vgg's features, then 4 attention blocks on 8x8 "
        "tokens) trained on GradLens synthetic scenes; no download.",
    ),
    "scenes_det": (
        "Scenes detector (bundled)",
        "torchvision Faster R-CNN with a small backbone, trained on GradLens synthetic scenes; boxes "
        "with labels and scores; no download.",
    ),
    "scenes_seg": (
        "Scenes segmenter (bundled)",
        "Small encoder-decoder trained on GradLens synthetic scenes; a class per pixel "
        "(torchvision's {'out': logits} output); no download.",
    ),
}


def _weights(name: str) -> Path:
    return Path(detseg_nets.detseg_weights_path(name) if name in detseg_nets.DETSEG else scene_nets.weights_path(name))


def scenes_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a bundled scenes model."""
    return ModelCard(
        weights=f"bundled with GradLens ({_weights(name).name})",
        license="MIT (GradLens)",
        trained_on=f"GradLens synthetic scenes: {len(scene_nets.CLASS_NAMES)} shapes "
        f"({', '.join(scene_nets.CLASS_NAMES)}) on textured backgrounds; not photos",
        origin="trained on CPU by methods/models/scenes/"
        + ("detseg_train.py" if name in detseg_nets.DETSEG else "train_vit.py" if name == "scenes_vit" else "train.py")
        + " (see the JSON card next to the weights)",
    )


class BundledSource:
    """The scene networks trained by :mod:`methods.models.scenes.train`; never downloads."""

    kind: Source = "bundled"

    def names(self) -> list[str]:
        return list(BUNDLED)

    def owns(self, name: str) -> bool:
        return name in BUNDLED

    def entries(self) -> list[ModelEntry]:
        size = size2(scene_nets.INPUT_SIZE)
        out = []
        for name, (label, description) in BUNDLED.items():
            path = _weights(name)
            out.append(
                ModelEntry(
                    name,
                    label,
                    "bundled",
                    size,
                    description,
                    path.is_file(),
                    str(path),
                    domain="scenes",
                    card=scenes_card(name),
                    how_to_get="reinstall GradLens (the weights ship in methods/models/assets/)",
                    task=detseg_nets.DETSEG_TASKS.get(name, "classification"),  # type: ignore[arg-type]
                )
            )
        return out

    def weights_file(self, name: str) -> Path:
        return _weights(name)

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
        if name in detseg_nets.DETSEG:
            return _load_detseg(name)
        model = scene_nets.load_pretrained(name).eval()  # raises its own WeightsNotAvailableError subclass
        return LoadedModel(
            name=name,
            model=model,
            input_size=size2(scene_nets.INPUT_SIZE),
            mean=scene_nets.MEAN,
            std=scene_nets.STD,
            class_names=tuple(scene_nets.CLASS_NAMES),
            default_layer=scene_nets.DEFAULT_LAYERS[name],
            source="bundled",
            note=f"{BUNDLED[name][1]} Weights: {scene_nets.weights_path(name)}.",
            domain="scenes",
            card=scenes_card(name),
        )


def _load_detseg(name: str) -> LoadedModel:
    """``scenes_det`` takes [0, 1] images (it normalises inside, like every torchvision detector):
    mean 0, std 1 here. ``scenes_seg`` takes normalised images, like the bundled classifiers."""
    model = detseg_nets.load_detseg(name)
    det = name == "scenes_det"
    return LoadedModel(
        name=name,
        model=model,
        input_size=size2(detseg_nets.INPUT_SIZE),
        mean=(0.0, 0.0, 0.0) if det else scene_nets.MEAN,
        std=(1.0, 1.0, 1.0) if det else scene_nets.STD,
        class_names=detseg_nets.LABELS,
        default_layer=detseg_nets.DETSEG_LAYERS[name],
        source="bundled",
        note=f"{BUNDLED[name][1]} Weights: {detseg_nets.detseg_weights_path(name)}.",
        domain="scenes",
        card=scenes_card(name),
        task="detection" if det else "segmentation",
    )


register_source(BundledSource())
