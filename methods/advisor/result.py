"""The Advisor's result: the ranked table, the recommendation with its evidence, and its report
(JSON + markdown files, and a Review snapshot of the recommended map)."""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from methods.advisor.grid import SanityVerdict
from methods.pipeline.batch_files import write_atomic

__all__ = ["Advice", "REPORT_JSON", "REPORT_MD", "SCORES"]

REPORT_JSON = "advice.json"
REPORT_MD = "advice.md"
SCORES = "scores.parquet"


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True, eq=False)
class Advice:
    """What :func:`methods.advisor.advise` found.

    Attributes:
        recommendation: one sentence with its evidence ("Grad-CAM at features.20, min-max ≡ raw ≡ max:
            insertion AUC 0.61 [0.58, 0.64] (n = 40); next best ...; random map ...; failed sanity: ...").
        table: the ranked table (:data:`methods.advisor.rank.RANK_COLUMNS`), best first, random rows last.
        best: the best row (dict).
        beats_random: the best's bootstrap interval lies wholly on the better side of the random map's.
        clear_winner: the best beats the next best with non-overlapping intervals and p < alpha.
        notes: what a reader must know (ties from normalizations, overlaps, skipped images).
        sanity: each method's :class:`~methods.advisor.grid.SanityVerdict`.
        metric: the ranking metric's key; ``metric_label`` its label; ``better`` its direction.
        test: the paired test that ran.
        settings: the run's settings (model, images, options).
        scores: the per-image scores (one row per image x class x method x layer x normalization).
        evaluations: images scored in this call; ``resumed``: images read back from a checkpoint.
        seconds: wall time of the call.
    """

    recommendation: str
    table: pd.DataFrame
    best: dict[str, Any]
    beats_random: bool
    clear_winner: bool
    notes: tuple[str, ...]
    sanity: tuple[SanityVerdict, ...]
    metric: str
    metric_label: str
    better: str
    test: str
    settings: dict[str, Any]
    scores: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    evaluations: int = 0
    resumed: int = 0
    seconds: float = 0.0

    @property
    def failed_sanity(self) -> list[str]:
        """Labels of the methods the sanity check dropped."""
        return [s.label for s in self.sanity if s.passes is False]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-image scores, JSON-ready (NaN as null)."""
        rows = [{k: _plain(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]
        return {
            "recommendation": self.recommendation,
            "metric": self.metric,
            "metric_label": self.metric_label,
            "better": self.better,
            "test": self.test,
            "beats_random": self.beats_random,
            "clear_winner": self.clear_winner,
            "best": {k: _plain(v) for k, v in self.best.items()},
            "notes": list(self.notes),
            "sanity": [
                {
                    "method": s.method,
                    "label": s.label,
                    "layer": s.layer,
                    "passes": s.passes,
                    "verdicts": list(s.verdicts),
                    "texts": list(s.texts),
                }
                for s in self.sanity
            ],
            "table": rows,
            "settings": self.settings,
            "evaluations": self.evaluations,
            "resumed": self.resumed,
            "seconds": round(self.seconds, 2),
        }

    def to_markdown(self) -> str:
        """The report as markdown: the recommendation, the notes, the table, the sanity screen."""
        s = self.settings
        lines = [
            "# GradLens Advisor",
            "",
            f"Model `{s.get('model')}`, images `{s.get('images')}`, ranked by **{self.metric_label}** "
            f"({self.better} is better), {self.test} paired test, {s.get('level', 0.95):.0%} bootstrap intervals.",
            "",
            f"**Recommendation.** {self.recommendation}",
            "",
            f"Beats the random map with non-overlapping intervals: **{'yes' if self.beats_random else 'no'}**. "
            f"Clear winner over the next best: **{'yes' if self.clear_winner else 'no'}**.",
            "",
        ]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        lines += [
            "## Ranking",
            "",
            "| rank | method | layer | normalization | n | mean [interval] | vs best | vs random |",
            "|---:|---|---|---|---:|---|---|---|",
        ]
        for r in self.table.to_dict(orient="records"):
            vb = "" if pd.isna(r.get("p_best")) else f"{r['diff_best']:+.3f}, p = {r['p_best']:.3g}"
            vr = "" if pd.isna(r.get("p_random")) else f"{r['diff_random']:+.3f}, p = {r['p_random']:.3g}"
            rank = "ref" if r["rank"] == 0 else str(int(r["rank"]))
            lines.append(
                f"| {rank} | {r['label']} | `{r['layer']}` | {r['normalization']} | {int(r['n'])} | "
                f"{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}] | {vb} | {vr} |"
            )
        if self.sanity:
            lines += ["", "## Sanity check (model-parameter randomization)", ""]
            for v in self.sanity:
                word = {True: "passes", False: "FAILS (dropped)", None: "cannot tell"}[v.passes]
                lines.append(f"- {v.label} at `{v.layer}`: {word}")
        return "\n".join(lines) + "\n"

    def save(self, folder: str | pathlib.Path) -> dict[str, pathlib.Path]:
        """Write ``advice.json``, ``advice.md`` and ``scores.parquet`` into ``folder`` (atomically each)."""
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / REPORT_JSON, "markdown": folder / REPORT_MD, "scores": folder / SCORES}
        write_atomic(paths["json"], json.dumps(self.to_dict(), indent=1, default=_plain).encode())
        write_atomic(paths["markdown"], self.to_markdown().encode())
        frame = self.scores.copy()
        frame.attrs = {}
        import io

        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        write_atomic(paths["scores"], buf.getvalue())
        return paths
