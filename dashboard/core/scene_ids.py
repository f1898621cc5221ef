"""Image ids for the synthetic scenes of an evaluation: ``scene:<seed>`` and ``scene2:<seed>``.

The evaluate command names its images ``scene:<seed>`` (:mod:`methods.pipeline.sources`); a one-object
scene is ``make_scene(seed)``, a two-object one ``make_scene(seed, n_objects=2)``. The dashboard's
image id says which: ``scene:<seed>`` (one object) or ``scene2:<seed>`` (two), so a link from the
Benchmark page opens exactly the scored picture on the Methods page. Pure and light (no
streamlit, no torch: :mod:`dashboard.core.state` imports it); ``dashboard.app.cache`` makes the pixels.
"""

from __future__ import annotations

__all__ = ["PREFIXES", "scene_id", "parse_scene_id", "is_scene_id", "scene_label"]

PREFIXES: dict[str, int] = {"scene:": 1, "scene2:": 2}
_MAX_SEED = 2**63 - 1


def scene_id(seed: int, n_objects: int = 1) -> str:
    """The id of a scene: ``scene_id(10_000_003) == "scene:10000003"``, ``scene2:`` for two objects."""
    return f"{'scene2:' if n_objects == 2 else 'scene:'}{int(seed)}"


def parse_scene_id(value: object) -> tuple[int, int] | None:
    """``(seed, n_objects)`` of a scene id, None for anything else (no sign, no spaces, digits only).

    Examples:
        >>> parse_scene_id("scene2:11000004"), parse_scene_id("scene:-1"), parse_scene_id("scene_circle")
        ((11000004, 2), None, None)
    """
    if not isinstance(value, str):
        return None
    for prefix, n in PREFIXES.items():
        digits = value[len(prefix) :]
        if value.startswith(prefix) and digits.isascii() and digits.isdigit() and len(digits) <= 18:
            seed = int(digits)
            return (seed, n) if seed <= _MAX_SEED else None
    return None


def is_scene_id(value: object) -> bool:
    """True for ``scene:<seed>`` / ``scene2:<seed>``."""
    return parse_scene_id(value) is not None


def scene_label(value: str) -> str:
    """What the image menu shows: ``Scene 11000004 (two objects, from a benchmark)``."""
    seed, n = parse_scene_id(value) or (0, 1)
    return f"Scene {seed} ({'two objects' if n == 2 else 'one object'}, from a benchmark)"
