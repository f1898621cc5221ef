"""The options both commands take for detectors and segmenters (one row per object)."""

from __future__ import annotations

import argparse

__all__ = ["add_object_options"]


def add_object_options(p: argparse.ArgumentParser) -> None:
    """``--min-score`` and ``--max-objects`` (bounds checked by the pipeline's run specs)."""
    p.add_argument(
        "--min-score",
        type=float,
        default=0.5,
        help="detectors: explain boxes with score >= this, in [0, 1] (default 0.5)",
    )
    p.add_argument(
        "--max-objects", type=int, default=20, help="detectors, segmenters: objects per image, 1-100 (default 20)"
    )
