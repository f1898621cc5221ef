"""The Faithfulness page's requests of the library, pure (no Streamlit): deletion and insertion
curves of one map and of the reference maps, as plain dicts the cache can hold, and the perturbed
pictures the curves score.

Baselines: ``"rise"`` is RISE's own pairing (deletion to zeros, insertion from a blurred copy);
any other choice is the library's baseline for both curves (:data:`methods.metrics.faithfulness.curves.BASELINES`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from methods.cams.core.base import sub_progress
from methods.metrics.faithfulness import curves as faithfulness
from methods.viz.styles import REFERENCE_KEYS

__all__ = ["RISE", "baselines", "compute_curves", "compute_reference_curves", "reference_map", "perturbed_images"]

#: The library's own pairing: deletion to zeros, insertion from a blurred copy (RISE's protocol).
RISE = "rise"


def baselines() -> tuple[str, ...]:
    """Baseline choices: "rise" (each curve's library default), then the library's baselines."""
    return (RISE,) + tuple(faithfulness.BASELINES)


def _curve_baselines(baseline: str) -> dict[str, str]:
    return (
        {"deletion": "zero", "insertion": "blur"} if baseline == RISE else {"deletion": baseline, "insertion": baseline}
    )


def _as_dict(curve) -> dict:
    return {
        "fractions": np.asarray(curve.fractions, dtype=np.float64).copy(),
        "scores": np.asarray(curve.scores, dtype=np.float64).copy(),
        "counts": np.asarray(curve.counts, dtype=np.int64).copy(),
        "auc": float(curve.auc),
        "precision": str(curve.precision),
    }


def compute_curves(
    loaded,
    x: torch.Tensor,
    saliency: np.ndarray,
    target: int,
    *,
    steps: int,
    baseline: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Deletion and insertion curves of one raw (h, w) map: kind -> {fractions, scores, counts, auc}."""
    out = {}
    for i, (kind, base) in enumerate(_curve_baselines(baseline).items()):
        sub = sub_progress(progress, i, 1, 2)  # the i-th half of the work
        fn = faithfulness.deletion_curve if kind == "deletion" else faithfulness.insertion_curve
        out[kind] = _as_dict(fn(loaded, x, saliency, target, steps=steps, baseline=base, progress=sub))
    return out


def compute_reference_curves(
    loaded,
    x: torch.Tensor,
    size: tuple[int, int],
    target: int,
    *,
    steps: int,
    baseline: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, dict]]:
    """Curves of the library's random and centre reference maps on an (h, w) grid:
    ``{"ref:random": {kind: curve}, "ref:centre": {...}}``."""
    out: dict[str, dict[str, dict]] = {key: {} for key in REFERENCE_KEYS}
    for i, (kind, base) in enumerate(_curve_baselines(baseline).items()):
        if progress is not None:
            progress(i, 2)
        curves = faithfulness.reference_curves(
            loaded, x, target, kind=kind, size=tuple(size), steps=steps, baseline=base
        )
        for name, curve in curves.items():
            out[f"ref:{name}"][kind] = _as_dict(curve)
    if progress is not None:
        progress(2, 2)
    return out


def reference_map(key: str, size: tuple[int, int]) -> np.ndarray:
    """The (h, w) reference map behind a ``methods.viz.styles.REFERENCE_KEYS`` entry."""
    return faithfulness.reference_maps(tuple(size))[key.split(":", 1)[1]].numpy()


def perturbed_images(
    loaded, x: torch.Tensor, saliency: np.ndarray, fraction: float, *, baseline: str
) -> dict[str, np.ndarray]:
    """The deletion and insertion inputs with ``fraction`` of the pixels perturbed, exactly as the
    curves score them (``faithfulness.perturbed_image``), as (h, w, 3) uint8 pictures."""
    return {
        kind: loaded.denormalize(faithfulness.perturbed_image(x, saliency, float(fraction), kind=kind, baseline=base))[
            0
        ]
        for kind, base in _curve_baselines(baseline).items()
    }
