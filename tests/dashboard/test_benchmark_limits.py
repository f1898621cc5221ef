"""The Benchmark page's uploads within a budget (issue 26), measured by peak RSS in a subprocess.

* a 10 M identical-rows manifest-shaped parquet (a few hundred KB) is refused by the row cap from
  the file's footer, before any row is decoded (it took the server from 874 MB to 3.4 GB);
* the leaderboard of a 50,000-rows-per-method table at the page's maximum resamples (20,000) stays
  within +300 MB of peak RSS and takes at most ``BOOT_DRAWS`` draws per interval;
* menus built from a table's cells (the manifest's "Image" and "Map") list at most ``MAX_MENU``
  options, with a message (a 10 M-option "Map" menu before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from app_kit import HOME, TIMEOUT, assert_clean, texts
from dashboard.core import pages
from dashboard.views.benchmark import data as bd

ROOT = Path(__file__).resolve().parents[2]
BENCH = pages.page("benchmark").script
LEADERBOARD_MB = 300  # the bound this file states for the leaderboard at the maximum resamples
REFUSE_MB = 100  # ... and for refusing a 10 M-row table


def _measure(body: str) -> dict:
    """Run ``body`` in a fresh interpreter after the imports; returns its JSON line: what it
    printed, plus ``peak_mb`` (peak RSS growth during ``body``) and ``seconds``."""
    script = (
        textwrap.dedent(
            """
        import json, resource, sys, time
        import numpy as np, pandas as pd
        from dashboard.views.benchmark import data as bd
        from methods.metrics.benchmark.leaderboard import leaderboard
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        out = {}
        """
        )
        + textwrap.dedent(body)
        + textwrap.dedent(
            """
        out["seconds"] = time.perf_counter() - t0
        out["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        print(json.dumps(out))
        """
        )
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _manifest_shaped(path: Path, rows: int) -> None:
    """``rows`` identical manifest rows, written 100,000 at a time (dictionary-encoded: small)."""
    chunk = 100_000
    one = pa.table(
        {
            "image": pa.array(["a.png"] * chunk),
            "method": pa.array(["gradcam"] * chunk),
            "layer": pa.array(["l4"] * chunk),
            "overlay": pa.array(["a.png/o.png"] * chunk),
            "map_key": pa.array(["gradcam__l4"] * chunk),
            "target": pa.array([3] * chunk, pa.int64()),
        }
    )
    with pq.ParquetWriter(path, one.schema) as writer:
        for _ in range(rows // chunk):
            writer.write_table(one)


def test_ten_million_identical_rows_are_refused_from_the_footer(tmp_path):
    path = tmp_path / "manifest.parquet"
    _manifest_shaped(path, 10_000_000)
    size = path.stat().st_size
    assert size < 2_000_000  # a small upload
    got = _measure(
        f"""
        data = open({str(path)!r}, "rb").read()
        try:
            bd.read_table(data, "manifest.parquet")
        except Exception as exc:
            out["error"] = str(exc)
        """
    )
    print(f"10 M rows, {size / 1e3:.0f} KB: refused in {got['seconds']:.3f} s, peak RSS +{got['peak_mb']:.0f} MB")
    assert "has 10,000,000 rows; this page opens tables of up to 200,000 rows" in got["error"]
    assert got["peak_mb"] < REFUSE_MB and got["seconds"] < 5


def test_the_leaderboard_of_50000_rows_per_method_at_the_maximum_resamples(tmp_path):
    """gradcam, random and centre, 50,000 (image, class) rows each, the deletion AUC: the page's
    20,000 resamples become BOOT_DRAWS / 50,000 = 2,000, with a message; memory stays bounded."""
    got = _measure(
        """
        n = 50_000
        rng = np.random.default_rng(0)
        df = pd.concat(
            [pd.DataFrame({"image": [f"i{k}" for k in range(n)], "method": m, "layer": "l", "target": 0,
                           "target_name": "c", "deletion_auc": rng.random(n) * s}) for m, s in
             (("gradcam", 0.8), ("random", 1.0), ("centre", 0.9))], ignore_index=True)
        t1 = time.perf_counter()
        n_boot, note = bd.resamples_for(df, 20_000)
        board = leaderboard(df, n_boot=n_boot, seed=0)
        out.update(n_boot=n_boot, note=note, rows=len(board), board_s=time.perf_counter() - t1)
        """
    )
    print(
        f"leaderboard, 3 x 50,000 rows, {got['n_boot']} resamples: {got['board_s']:.1f} s, "
        f"peak RSS +{got['peak_mb']:.0f} MB"
    )
    assert got["n_boot"] == bd.BOOT_DRAWS // 50_000 == 2_000
    assert "the intervals use 2,000 resamples" in got["note"] and got["rows"] == 3
    assert got["peak_mb"] < LEADERBOARD_MB


def test_menus_from_table_cells_are_capped():
    options, message = bd.capped_menu(list(range(bd.MAX_MENU + 5)), "maps of a.png")
    assert len(options) == bd.MAX_MENU and options[-1] == bd.MAX_MENU - 1
    assert message == (
        f"This table has {bd.MAX_MENU + 5:,} maps of a.png; the menu lists the first {bd.MAX_MENU:,}. "
        "Open a smaller table to see the others."
    )
    assert bd.capped_menu([1, 2], "images") == ([1, 2], None)


@pytest.fixture
def results_root(tmp_path, monkeypatch):
    monkeypatch.setenv(bd.RESULTS_ENV, str(tmp_path.resolve()))
    return tmp_path


def test_the_map_menu_of_a_manifest_upload_is_capped(results_root):
    rows = bd.MAX_MENU * 3
    path = results_root / "manifest.parquet"
    pd.DataFrame(
        {
            "image": "a.png",
            "method": [f"m{i}" for i in range(rows)],
            "layer": "l4",
            "overlay": "a.png/o.png",
            "map_key": "k",
            "target": 3,
            "target_name": "cat",
        }
    ).to_parquet(path, index=False)
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(BENCH).run()
    at.text_input(key="bm_path").input(str(path))
    at.button(key="bm_open").click().run()
    assert_clean(at)
    assert len(at.selectbox(key="bm_m_row").options) == bd.MAX_MENU
    assert f"This table has {rows:,} maps of a.png; the menu lists the first {bd.MAX_MENU:,}" in texts(at.info)


def test_the_leaderboard_reports_progress_and_stops_on_cancel():
    """The page runs the leaderboard as long work of its session: progress after each method x layer
    group, and a Cancelled raised there (Cancel, a closed tab) stops it between two groups."""
    import numpy as np

    from methods.errors import Cancelled
    from methods.metrics.benchmark.leaderboard import leaderboard

    rng = np.random.default_rng(1)
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "image": [f"i{k}" for k in range(20)],
                    "method": m,
                    "layer": "l",
                    "target": 0,
                    "deletion_auc": rng.random(20),
                }
            )
            for m in ("gradcam", "random", "centre")
        ],
        ignore_index=True,
    )
    seen: list[tuple[int, int]] = []
    board = leaderboard(df, n_boot=200, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)] and len(board) == 3

    def cancel_at_second(done: int, total: int) -> None:
        if done == 1:
            raise Cancelled("stopped")

    try:
        leaderboard(df, n_boot=200, progress=cancel_at_second)
    except Cancelled:
        pass
    else:
        raise AssertionError("the leaderboard did not stop")
