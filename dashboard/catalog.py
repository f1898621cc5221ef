"""What the dashboard asks of the library, without streamlit: models, samples, layers, maps, curves.

Plain functions over :mod:`methods`; :mod:`dashboard.common` wraps them in Streamlit caches and
locks.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import torch

import methods
from methods.metrics import faithfulness
from methods.data import samples
from methods import models as zoo

__all__ = [
    "ModelChoice",
    "SampleChoice",
    "LayerRow",
    "MapBundle",
    "Progress",
    "model_choices",
    "load_model",
    "load_checkpoint",
    "checkpoint_architectures",
    "sample_choices",
    "load_sample",
    "decode_image",
    "model_input",
    "model_view",
    "predict",
    "layer_rows",
    "compute_maps",
    "merge",
    "baselines",
    "compute_curves",
    "compute_reference_curves",
    "reference_map",
    "perturbed_images",
]

# ------------------------------------------------------------------------------------------
# data types


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model menu; ``notice`` says why it cannot be loaded (missing weights)."""

    id: str
    label: str
    available: bool
    notice: str = ""


@dataclass(frozen=True)
class SampleChoice:
    """One bundled sample image."""

    id: str
    label: str
    kind: str  # "scene" | "photo"
    description: str = ""
    suggested_model: str | None = None


@dataclass(frozen=True)
class LayerRow:
    """A candidate layer: name, module type, output shape (C, h, w), forward-order index."""

    name: str
    type: str
    shape: tuple[int, int, int]
    index: int

    @property
    def resolution(self) -> str:
        c, h, w = self.shape
        return f"{c}×{h}×{w}"


@dataclass(frozen=True)
class MapBundle:
    """Raw maps of one image: what a page draws, and what a snapshot stores.

    Attributes:
        image: (H, W, 3) uint8, the image as the model sees it (after its resize).
        maps: ``maps[method][layer]`` = RAW (h, w) float32 map.
        target: the explained class index.
        probs: (K,) softmax probabilities of the model for the image.
        class_names: one per class.
        seconds: method -> wall time of its computation.
    """

    image: np.ndarray
    maps: dict[str, dict[str, np.ndarray]]
    target: int
    probs: np.ndarray
    class_names: tuple[str, ...]
    seconds: dict[str, float]

    @property
    def target_name(self) -> str:
        return self.class_names[self.target] if 0 <= self.target < len(self.class_names) else f"class {self.target}"


def merge(first: MapBundle | None, second: MapBundle | None) -> MapBundle | None:
    """Union of two bundles of the same image, model and target."""
    if first is None or second is None:
        return first or second
    return replace(first, maps={**first.maps, **second.maps}, seconds={**first.seconds, **second.seconds})


class Progress:
    """``(done, total)`` callback shared between a computing thread and a progress bar."""

    def __init__(self) -> None:
        self.done, self.total = 0, 1
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = int(done), max(int(total), 1)

    @property
    def fraction(self) -> float:
        with self._lock:
            return min(max(self.done / self.total, 0.0), 1.0)


# ------------------------------------------------------------------------------------------
# models


def model_choices() -> list[ModelChoice]:
    """Every catalog model in zoo order, with a notice naming the expected file when its
    weights are not on this machine."""
    out = []
    for entry in zoo.list_models():
        available = bool(entry.available)
        notice = "" if available else (
            f"The weights of {entry.label} are not on this machine. Expected file: `{entry.expected_file}`"
        )
        out.append(ModelChoice(entry.name, entry.label, available, notice))
    return out


def load_model(name: str):
    """A catalog model as a ``methods.models.loaded.LoadedModel``."""
    return zoo.load_model(name)


def load_checkpoint(data: bytes, *, arch: str, num_classes: int, class_names: Sequence[str] | None):
    """An uploaded checkpoint as a ``LoadedModel`` (read safely by the zoo)."""
    return zoo.load_checkpoint(io.BytesIO(data), arch=arch, num_classes=num_classes,
                                  class_names=list(class_names) if class_names else None)


def checkpoint_architectures() -> list[str]:
    """Architectures an uploaded checkpoint may have (``zoo.checkpoint_architectures()``);
    the catalog's own ones first."""
    archs = list(zoo.checkpoint_architectures())
    familiar = [m.id for m in model_choices() if m.id in archs]
    return familiar + [a for a in archs if a not in familiar]


# ------------------------------------------------------------------------------------------
# images


def sample_choices() -> list[SampleChoice]:
    """The sample gallery (``methods.data.samples``): scenes, then photos."""
    return [SampleChoice(s.name, s.description or s.name, s.kind, s.description, s.suggested_model)
            for s in samples.list_samples()]


def load_sample(name: str) -> np.ndarray:
    """(H, W, 3) uint8 sample image."""
    return np.asarray(samples.load_sample(name))


def decode_image(data: bytes) -> np.ndarray:
    """An uploaded file -> (H, W, 3) uint8, refused with a clear ImageError when broken."""
    from methods.data.images import load_image

    return load_image(data)


# ------------------------------------------------------------------------------------------
# model computations (callers hold the model's lock)


def model_input(loaded, image: np.ndarray) -> torch.Tensor:
    """(1, 3, h, w) model input of an (H, W, 3) uint8 image."""
    x = torch.as_tensor(loaded.preprocess(image))  # (3, h, w)
    return x[None] if x.ndim == 3 else x


def model_view(loaded, image: np.ndarray) -> np.ndarray:
    """The image as the model sees it (its resize undone of nothing else), (h, w, 3) uint8."""
    x = model_input(loaded, image)[0].float().numpy()  # (3, h, w)
    mean = np.asarray(loaded.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(loaded.std, dtype=np.float32)[:, None, None]
    rgb = np.clip((x * std + mean) * 255.0, 0, 255).round().astype(np.uint8)  # (3, h, w)
    return np.ascontiguousarray(rgb.transpose(1, 2, 0))


def predict(loaded, image: np.ndarray) -> np.ndarray:
    """Softmax probabilities (K,)."""
    with torch.no_grad():
        logits = loaded.model(model_input(loaded, image))  # (1, K)
    return logits.softmax(dim=1)[0].float().numpy()


def layer_rows(loaded) -> tuple[list[LayerRow], str]:
    """Candidate layers in forward order and the model's default layer."""
    from methods.cams.layers import candidate_layers, default_layer

    size = tuple(loaded.input_size)
    infos = candidate_layers(loaded.model, size)
    default = getattr(loaded, "default_layer", None) or default_layer(loaded.model, size)
    return [LayerRow(i.name, i.type, tuple(i.shape), i.index) for i in infos], default


def compute_maps(
    loaded, image: np.ndarray, method_names: Sequence[str], layers: Sequence[str], target: int,
    options: dict | None = None, progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """RAW maps of several methods at several layers from ONE ``explain_many`` call.

    Returns ``{"maps": {method: {layer: (h, w) float32}}, "seconds": {method: s}}``.
    """
    results = methods.explain_many(
        loaded, model_input(loaded, image), list(method_names), layers=list(layers), target=target,
        options=options or {}, progress=progress,
    )
    return {
        "maps": {m: {l: e.maps[l][0].numpy().astype(np.float32) for l in e.layers} for m, e in results.items()},
        "seconds": {m: float(e.seconds) for m, e in results.items()},
    }


# ------------------------------------------------------------------------------------------
# faithfulness (methods.metrics.faithfulness)

#: The library's own pairing: deletion to zeros, insertion from a blurred copy (RISE's protocol).
RISE = "rise"
REFERENCE_KEYS = ("ref:random", "ref:centre")


def baselines() -> tuple[str, ...]:
    """Baseline choices: "rise" (each curve's library default), then the library's baselines."""
    return (RISE,) + tuple(faithfulness.BASELINES)


def _curve_baselines(baseline: str) -> dict[str, str]:
    return {"deletion": "zero", "insertion": "blur"} if baseline == RISE else {"deletion": baseline, "insertion": baseline}


def _as_dict(curve) -> dict:
    return {"fractions": np.asarray(curve.fractions, dtype=np.float64).copy(),
            "scores": np.asarray(curve.scores, dtype=np.float64).copy(),
            "counts": np.asarray(curve.counts, dtype=np.int64).copy(), "auc": float(curve.auc)}


def compute_curves(
    loaded, image: np.ndarray, saliency: np.ndarray, target: int, *, steps: int, baseline: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Deletion and insertion curves of one raw (h, w) map: kind -> {fractions, scores, counts, auc}."""
    x = model_input(loaded, image)  # (1, 3, H, W)
    out = {}
    for i, (kind, base) in enumerate(_curve_baselines(baseline).items()):
        sub = None if progress is None else (lambda i: lambda d, t: progress(i * t + d, 2 * t))(i)
        fn = faithfulness.deletion_curve if kind == "deletion" else faithfulness.insertion_curve
        out[kind] = _as_dict(fn(loaded, x, saliency, target, steps=steps, baseline=base, progress=sub))
    return out


def compute_reference_curves(
    loaded, image: np.ndarray, size: tuple[int, int], target: int, *, steps: int, baseline: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre reference maps on an (h, w) grid:
    ``{"ref:random": {kind: curve}, "ref:centre": {...}}``."""
    x = model_input(loaded, image)
    out: dict[str, dict[str, dict]] = {key: {} for key in REFERENCE_KEYS}
    for i, (kind, base) in enumerate(_curve_baselines(baseline).items()):
        if progress is not None:
            progress(i, 2)
        curves = faithfulness.reference_curves(loaded, x, target, kind=kind, size=tuple(size), steps=steps, baseline=base)
        for name, curve in curves.items():
            out[f"ref:{name}"][kind] = _as_dict(curve)
    if progress is not None:
        progress(2, 2)
    return out


def reference_map(key: str, size: tuple[int, int]) -> np.ndarray:
    """The (h, w) reference map behind a ``REFERENCE_KEYS`` entry."""
    return faithfulness.reference_maps(tuple(size))[key.split(":", 1)[1]].numpy()


def perturbed_images(loaded, image: np.ndarray, saliency: np.ndarray, fraction: float, *, baseline: str) -> dict[str, np.ndarray]:
    """The deletion and insertion inputs with ``fraction`` of the pixels perturbed, exactly as the
    curves score them (``methods.metrics.faithfulness.perturbed_image``), as (H, W, 3) uint8 pictures."""
    x = model_input(loaded, image)  # (1, 3, H, W)
    return {
        kind: loaded.denormalize(faithfulness.perturbed_image(x, saliency, float(fraction), kind=kind, baseline=base))[0]
        for kind, base in _curve_baselines(baseline).items()
    }
