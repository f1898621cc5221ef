"""How deletion / insertion curves look, wherever they are drawn: one palette, one set of labels.

The dashboard's Faithfulness page and the review reports (:mod:`methods.review.report`) draw the
same curves; they take their colours, reference styles, titles and labels from here so that a
method has the same colour on the page and in the exported report.

* methods get :data:`PALETTE` colours in the order they first appear (solid, 2.5 px);
* the two reference maps (:data:`REFERENCE_KEYS`, the chance level a method must beat) are grey:
  random dotted, centre dashed (:data:`REFERENCE_STYLE`), labelled by :data:`REFERENCE_LABELS`;
* a method's label is its registry label ("Grad-CAM++"), handed in by the caller (this module
  imports no method code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "PALETTE",
    "REFERENCE_KEYS",
    "REFERENCE_LABELS",
    "REFERENCE_STYLE",
    "CURVE_TITLES",
    "SCORE_LABEL",
    "curve_label",
    "curve_lines",
]

PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
"""Line colours of methods, in order of first appearance."""

REFERENCE_KEYS: tuple[str, ...] = ("ref:random", "ref:centre")
"""Keys of the two reference curves (the random and centre maps on the same grid)."""

REFERENCE_LABELS: dict[str, str] = {"ref:random": "Random map (reference)", "ref:centre": "Centre map (reference)"}

REFERENCE_STYLE: tuple[dict[str, str], ...] = (dict(color="#888888", dash="dot"), dict(color="#444444", dash="dash"))
"""Line styles of the reference curves, in the order of :data:`REFERENCE_KEYS`."""

CURVE_TITLES: dict[str, str] = {
    "deletion": "Deletion: most salient pixels removed first (lower AUC = more faithful)",
    "insertion": "Insertion: most salient pixels added first (higher AUC = better)",
}

SCORE_LABEL = "probability of the target class"
"""The y-axis of both curves."""


def curve_label(key: str, method_labels: Mapping[str, str] | None = None) -> str:
    """The legend label of a curve: a reference's label, the method's label, else the key.

    Examples:
        >>> curve_label("ref:random"), curve_label("gradcampp", {"gradcampp": "Grad-CAM++"}), curve_label("mine")
        ('Random map (reference)', 'Grad-CAM++', 'mine')
    """
    if key in REFERENCE_LABELS:
        return REFERENCE_LABELS[key]
    return (method_labels or {}).get(key, key)


def curve_lines(keys: Iterable[str], references: Sequence[str] = REFERENCE_KEYS) -> dict[str, dict]:
    """Plotly ``line`` settings per key: palette colours for methods in order of first appearance,
    the grey reference styles for ``references``.

    Examples:
        >>> lines = curve_lines(["gradcam", "ref:random", "scorecam", "gradcam"])
        >>> lines["gradcam"]["color"], lines["scorecam"]["color"], lines["ref:random"]["dash"]
        ('#1f77b4', '#d62728', 'dot')
    """
    out: dict[str, dict] = {}
    n = 0
    for key in keys:
        if key in out:
            continue
        if key in references:
            out[key] = dict(width=2, **REFERENCE_STYLE[list(references).index(key) % len(REFERENCE_STYLE)])
        else:
            out[key] = dict(width=2.5, color=PALETTE[n % len(PALETTE)])
            n += 1
    return out
