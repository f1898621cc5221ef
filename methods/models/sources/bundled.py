"""The bundled scene models (``scenes_vgg``, ``scenes_resnet``, ``scenes_vit``): weights shipped in ``methods/models/assets/``."""

from __future__ import annotations

from pathlib import Path

from methods._internal.checks import size2
from methods.models.loaded import LoadedModel, ModelCard, Source
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
}


def scenes_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a bundled scenes model."""
    return ModelCard(
        weights=f"bundled with GradLens ({Path(scene_nets.weights_path(name)).name})",
        license="MIT (GradLens)",
        trained_on=f"GradLens synthetic scenes: {len(scene_nets.CLASS_NAMES)} shapes "
        f"({', '.join(scene_nets.CLASS_NAMES)}) on textured backgrounds; not photos",
        origin=f"trained on CPU by methods/models/scenes/{'train_vit' if name == 'scenes_vit' else 'train'}.py "
        "(see the JSON card next to the weights)",
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
            path = Path(scene_nets.weights_path(name))
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
                )
            )
        return out

    def weights_file(self, name: str) -> Path:
        return Path(scene_nets.weights_path(name))

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
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


register_source(BundledSource())
