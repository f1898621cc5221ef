"""What a page drew, for "Save to review"; and saved maps standing in for the computation.

* :func:`start_recording` / :func:`recorded`: every map bundle and curve a page drew in this run
  (``jobs.raw_maps`` and the curve helpers record them), which ``save_panel.save_panel`` stores.
* :func:`preloaded`: within the block, maps are served from a bundle (a saved snapshot's raw
  maps) instead of running the model; :func:`from_preloaded` is the lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import streamlit as st

from dashboard.core.services import MapBundle

__all__ = [
    "start_recording",
    "recorded",
    "record_bundle",
    "record_curves",
    "preloaded",
    "from_preloaded",
    "preloaded_bundle",
]

_RECORD_KEY = "_gradlens_recorded"
_PRELOADED_KEY = "_gradlens_preloaded"


def start_recording() -> None:
    """Forget what the previous run computed (``shell.run_page`` calls it before a page draws)."""
    st.session_state[_RECORD_KEY] = {"bundle": None, "curves": {}}


def recorded() -> dict:
    """What this run's page drew: ``{"bundle": MapBundle | None, "curves": {key: {kind: curve}}}``
    (every map bundle merged; the faithfulness curves), for "Save to review"."""
    return st.session_state.setdefault(_RECORD_KEY, {"bundle": None, "curves": {}})


def record_bundle(bundle: MapBundle) -> MapBundle:
    """Add ``bundle``'s maps to what this run drew; returns ``bundle``."""
    rec = recorded()
    old = rec["bundle"]
    if old is None or old.target != bundle.target:
        rec["bundle"] = bundle
    else:
        maps = {m: dict(layers) for m, layers in old.maps.items()}
        for m, layers in bundle.maps.items():
            maps.setdefault(m, {}).update(layers)
        rec["bundle"] = replace(old, maps=maps, seconds={**old.seconds, **bundle.seconds})
    return bundle


def record_curves(curves: dict[str, dict]) -> None:
    """Add faithfulness curves (``key -> {kind: curve}``) to what this run drew."""
    recorded()["curves"].update(curves)


@contextmanager
def preloaded(bundle: MapBundle, default_layer: str | None = None) -> Iterator[None]:
    """Within the block, maps come from ``bundle`` (e.g. a saved snapshot's raw maps) instead of
    the model, when it holds every requested (method, layer).

    ``default_layer`` is what a requested ``None`` layer means (default: the method's only layer).
    """
    st.session_state[_PRELOADED_KEY] = (bundle, default_layer)
    try:
        yield
    finally:
        st.session_state.pop(_PRELOADED_KEY, None)


def from_preloaded(method_names: Sequence[str], layers: Sequence[str | None]) -> MapBundle | None:
    """The preloaded maps of these methods and layers, or None (nothing preloaded, or missing)."""
    entry = st.session_state.get(_PRELOADED_KEY)
    if entry is None:
        return None
    bundle, default = entry
    maps: dict[str, dict[str, np.ndarray]] = {}
    for name in method_names:
        have = bundle.maps.get(name)
        if not have:
            return None
        chosen = {}
        for layer in layers:
            layer = layer if layer is not None else (default or (next(iter(have)) if len(have) == 1 else None))
            if layer not in have:
                return None
            chosen[layer] = have[layer]
        maps[name] = chosen
    return replace(bundle, maps=maps, seconds={m: bundle.seconds.get(m, 0.0) for m in method_names})


def preloaded_bundle() -> MapBundle | None:
    """The whole preloaded bundle (a saved snapshot's maps and ``extras``), or None: for pages
    whose maps are not ``maps[method][layer]`` of one model (Compare, Sanity)."""
    entry = st.session_state.get(_PRELOADED_KEY)
    return None if entry is None else entry[0]
