"""torchvision ImageNet models (:mod:`methods.models.torchvision_zoo`) and COCO/VOC detection and
segmentation models (:mod:`methods.models.task_zoo`) from the local torch hub cache; downloaded only
when the caller allows it (:func:`methods.models.downloads.download_weights`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from methods.models.downloads import download_weights
from methods.models.loaded import LoadedModel, Source
from methods.models.sources.base import ModelEntry, register_source
from methods.models.task_zoo import TASK_MODELS, load_task_model, task_card, task_input_size
from methods.models.torchvision_zoo import TORCHVISION, cache_path, load_torchvision, tv_card, tv_input_size, tv_weights

__all__ = ["TorchvisionSource"]


class TorchvisionSource:
    """torchvision architectures with their ImageNet weights, read from ``$TORCH_HOME/hub/checkpoints``."""

    kind: Source = "torchvision"

    def names(self) -> list[str]:
        return list(TORCHVISION) + list(TASK_MODELS)

    def owns(self, name: str) -> bool:
        return name in TORCHVISION or name in TASK_MODELS

    def entries(self) -> list[ModelEntry]:
        classifiers = [
            _entry(name, tv.label, tv.description, tv_input_size(tv_weights(name)), "imagenet", tv_card(name))
            for name, tv in TORCHVISION.items()
        ]
        tasks = [
            _entry(name, te.label, te.description, task_input_size(name), "unknown", task_card(name), te.task)
            for name, te in TASK_MODELS.items()
        ]
        return classifiers + tasks

    def weights_file(self, name: str) -> Path:
        return cache_path(tv_weights(name).url)

    def load(self, name: str, *, allow_download: bool = False) -> LoadedModel:
        if allow_download and not self.weights_file(name).is_file():
            download_weights(name)
        return load_task_model(name) if name in TASK_MODELS else load_torchvision(name)


register_source(TorchvisionSource())


def _entry(
    name: str, label: str, description: str, size: Any, domain: Any, card: Any, task: Any = "classification"
) -> ModelEntry:
    """The menu entry of a torchvision model: whether its weights file is cached, and how to get it."""
    weights = tv_weights(name)
    path = cache_path(weights.url)
    mb = weights.meta.get("_file_size")
    return ModelEntry(
        name,
        label,
        "torchvision",
        size,
        description,
        path.is_file(),
        str(path),
        domain=domain,
        card=card,
        how_to_get=f"download_weights({name!r}) fetches {weights.url}" + (f" ({mb:g} MB)" if mb else ""),
        download_mb=float(mb) if mb else None,
        task=task,
    )
