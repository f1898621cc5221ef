"""A small evaluation started from the Benchmark page: scenes scored one at a time, so a progress
bar can follow and Cancel can stop it between two images. No streamlit here.

Scoring scene ``i`` alone, as ``images="<kind>:1", seed=seed + i``, gives the rows
``images="<kind>:N", seed=seed`` gives for it: the scene's seed is ``start + seed + i`` either way,
and the random reference map's seed (``seed + image index``) is ``seed + i`` either way
(:mod:`methods.pipeline.evaluate`; tested in tests/dashboard/test_benchmark.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import pandas as pd

from methods.errors import OptionError
from methods.pipeline.evaluate import evaluate

__all__ = ["KINDS", "MAX_SCENES", "forwards_per_image", "run_small", "to_parquet"]

KINDS: dict[str, str] = {"scenes2": "Two-object scenes (each object's class explained)", "scenes": "One-object scenes"}
MAX_SCENES = 50


def forwards_per_image(kind: str, n_methods: int, n_layers: int, steps: int) -> int:
    """Model forwards the curves of one image cost: per explained class, every map (methods x
    layers, plus the two references on each layer) has a deletion and an insertion curve of
    ``steps + 1`` points (the unperturbed and fully perturbed images are shared, so this is an
    upper bound)."""
    classes = 2 if kind == "scenes2" else 1
    return classes * (n_methods + 2) * n_layers * 2 * (steps + 1)


def run_small(
    loaded,
    *,
    kind: str,
    n: int,
    methods: Sequence[str],
    steps: int,
    seed: int = 0,
    layers: str = "default",
    progress: Callable[[int, int], None] | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """Score ``n`` scenes of ``kind`` with :func:`methods.pipeline.evaluate.evaluate` (in this process,
    one at a time, on ``device``: the sidebar's choice); ``progress(done, n)`` is called before each
    scene and at the end (it may raise ``Cancelled`` to stop)."""
    if kind not in KINDS:
        raise OptionError(f"kind={kind!r} must be one of {list(KINDS)}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SCENES:
        raise OptionError(f"n={n!r}: run 1 to {MAX_SCENES} scenes from the page (more with python -m methods.evaluate)")
    parts = []
    for i in range(n):
        if progress is not None:
            progress(i, n)
        parts.append(
            evaluate(
                loaded,
                f"{kind}:1",
                methods=list(methods),
                layers=layers,
                seed=int(seed) + i,
                steps=int(steps),
                progress=False,
                engine="local",
                workers=1,
                device=device,
                log=lambda _s: None,
            )
        )
    if progress is not None:
        progress(n, n)
    df = pd.concat(parts, ignore_index=True)
    df.attrs = {}
    return df


def to_parquet(df: pd.DataFrame) -> bytes:
    """The table as .parquet bytes (what the evaluate command writes)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()
