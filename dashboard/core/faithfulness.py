"""The Faithfulness page's requests of the library, pure (no Streamlit): deletion and insertion
curves of one map and of the reference maps, as plain dicts the cache can hold, and the perturbed
pictures the curves score.

Baselines: the library's baselines for both curves (:data:`methods.metrics.faithfulness.curves.BASELINES`;
``"blur"`` first, the default of the library, of ``python -m methods.evaluate`` and of this page), then
``"rise"``, RISE's own pairing (deletion to zeros, insertion from a blurred copy).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from methods.cams.core.base import sub_progress
from methods.metrics.faithfulness import curves as faithfulness
from methods.viz.styles import REFERENCE_KEYS

__all__ = [
    "DEFAULT",
    "RISE",
    "verdicts",
    "baselines",
    "compute_curves",
    "compute_reference_curves",
    "reference_map",
    "perturbed_images",
]

#: RISE's pairing: deletion to zeros, insertion from a blurred copy (not the default: blur for both).
RISE = "rise"


#: The baseline of both curves unless the user picks another: the library's own default.
DEFAULT = "blur"


def baselines() -> tuple[str, ...]:
    """Baseline choices, the default first: the library's baselines (blur first), then "rise"."""
    lib = tuple(faithfulness.BASELINES)
    return tuple(dict.fromkeys((DEFAULT, *lib, RISE)))


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


#: How each curve's AUC is read: deletion lower is better, insertion higher.
_BETTER = {"deletion": "lower", "insertion": "higher"}
_TIE = 5e-4  # AUCs closer than this read as level (they print alike at three decimals)


def verdicts(
    aucs: dict[str, dict[str, float]], labels: dict[str, str], noted: frozenset[str] = frozenset()
) -> list[str]:
    """One sentence per method and curve: does its AUC beat each reference map's on THIS image?

    ``aucs`` maps a key (a method, or a ``REFERENCE_KEYS`` entry) to ``{"deletion": auc,
    "insertion": auc}``; ``labels`` maps a method key to its display name. Deletion AUC is better
    when lower, insertion AUC when higher; two AUCs within 0.0005 are level (neither beats).
    The sentences speak of this image only: one image is no evidence about the method. A method
    in ``noted`` (its map carries a note: partly guided, constant, a fallback) is read with it.

    Examples:
        >>> aucs = {"gradcam": {"deletion": 0.1, "insertion": 0.615},
        ...         "ref:random": {"deletion": 0.3, "insertion": 0.4}, "ref:centre": {"deletion": 0.2, "insertion": 0.619}}
        >>> for line in verdicts(aucs, {"gradcam": "Grad-CAM"}): print(line)
        On this image Grad-CAM's deletion AUC (0.100) is below the random map's (0.300) and the centre map's (0.200): it beats both references here.
        On this image Grad-CAM's insertion AUC (0.615) is above the random map's (0.400) but below the centre map's (0.619): it beats the random reference but not the centre reference here.
        >>> verdicts(aucs, {"gradcam": "Grad-CAM"}, frozenset({"gradcam"}))[0].endswith("the note on Grad-CAM's map above.")
        True
    """
    refs = [k for k in REFERENCE_KEYS if k in aucs]
    out: list[str] = []
    if not refs:
        return out
    for key, curves in aucs.items():
        if key in REFERENCE_KEYS:
            continue
        for kind, higher in ((k, _BETTER[k] == "higher") for k in _BETTER if k in curves):
            mine = float(curves[kind])
            beaten, lost, parts = [], [], []
            for ref in refs:
                theirs = float(aucs[ref][kind])
                name = ref.split(":", 1)[1]
                diff = mine - theirs
                if abs(diff) < _TIE:
                    word = "level with"
                else:
                    word = "above" if diff > 0 else "below"
                (beaten if abs(diff) >= _TIE and (diff > 0) == higher else lost).append(name)
                parts.append((word, f"the {name} map's ({theirs:.3f})"))
            text = _join_parts(parts)
            if not lost:
                end = "it beats both references here" if len(beaten) == 2 else "it beats the reference here"
            elif not beaten:
                end = f"it does not beat the {' or the '.join(lost)} reference here"
            else:
                end = f"it beats the {' and the '.join(beaten)} reference but not the {' or the '.join(lost)} reference here"
            name = labels.get(key, key)
            caveat = f" Read it with the note on {name}'s map above." if key in noted else ""
            out.append(f"On this image {name}'s {kind} AUC ({mine:.3f}) is {text}: {end}.{caveat}")
    return out


def _join_parts(parts: list[tuple[str, str]]) -> str:
    """("below", "the random map's (0.3)"), ("below", ...) -> "below the random map's (0.3) and the ..."."""
    if len(parts) == 2 and parts[0][0] == parts[1][0]:
        return f"{parts[0][0]} {parts[0][1]} and {parts[1][1]}"
    return " but ".join(f"{w} {what}" for w, what in parts)
