"""evaluate survives SIGKILL (issue 26): it left nothing; now every finished image is checkpointed
beside ``--out`` (methods/pipeline/evaluate_parts.py) and a rerun with the same arguments resumes:
0 duplicate rows, 0 missing rows, the same numbers as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from methods.pipeline import evaluate as ev
from methods.pipeline.evaluate_parts import parts_folder

ROOT = Path(__file__).resolve().parents[2]
N = 8
KEY = ["image", "method", "layer", "target"]
TIMED = ("seconds", "eval_seconds")


def _script(out: Path) -> str:
    return textwrap.dedent(
        f"""
        import batch_plugins  # registers sleepy_mean (0.2 s per image)
        from methods.pipeline.evaluate import evaluate
        evaluate("scenes_vgg", "scenes:{N}", methods=["gradcam", "sleepy_mean"], steps=3, workers=1,
                 progress=False, out={str(out)!r})
        """
    )


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    return env


def _parts(out: Path) -> list[Path]:
    folder = parts_folder(out)
    return [p for p in folder.glob("*.json") if p.name != "settings.json"] if folder.is_dir() else []


def test_a_killed_evaluate_resumes_with_no_duplicate_and_no_missing_row(tmp_path):
    out = tmp_path / "killed.parquet"
    proc = subprocess.Popen([sys.executable, "-c", _script(out)], cwd=ROOT, env=_env(), stderr=subprocess.PIPE)
    try:
        start = time.monotonic()
        while len(_parts(out)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() - start < 240, "the run never reached 3 images"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = len(_parts(out))
    assert not out.exists() and 3 <= kept < N  # killed mid-way: no table yet, some images kept

    logs: list[str] = []
    import batch_plugins  # sleepy_mean, in this process too
    from methods.cams.core import registry

    spec = batch_plugins.SleepyMean.spec
    registry.register_method(**{k: getattr(spec, k) for k in ("name", "label", "family", "cost", "summary")})(
        batch_plugins.SleepyMean
    )
    try:
        resumed = ev.evaluate(
            "scenes_vgg",
            f"scenes:{N}",
            methods=["gradcam", "sleepy_mean"],
            steps=3,
            workers=1,
            progress=False,
            out=out,
            log=logs.append,
        )
        whole = ev.evaluate(
            "scenes_vgg", f"scenes:{N}", methods=["gradcam", "sleepy_mean"], steps=3, workers=1, progress=False
        )
    finally:  # the import registered the test plugins: no other test (the README's table) may see them
        for name in ("sleepy_mean", "fails_on_flat"):
            registry._REGISTRY.pop(name, None)
    assert any(f"resuming: {kept} image(s) already scored" in line for line in logs), logs
    assert not parts_folder(out).exists()  # removed once the table is written
    on_disk = pd.read_parquet(out)
    assert len(on_disk) == len(whole) == N * 4  # 2 methods + 2 references, one layer, one class each
    assert not on_disk.duplicated(KEY).any()
    cols = [c for c in ev.COLUMNS if c not in TIMED]
    pd.testing.assert_frame_equal(on_disk[cols].reset_index(drop=True), whole[cols].reset_index(drop=True))
    pd.testing.assert_frame_equal(resumed[cols].reset_index(drop=True), whole[cols].reset_index(drop=True))


def test_other_settings_or_a_damaged_part_are_not_resumed_from(tmp_path, monkeypatch):
    out = tmp_path / "t.csv"
    folder = parts_folder(out)
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps({"model": "another"}))
    (folder / "0.json").write_text(json.dumps({"index": 0, "name": "scene:10000000", "status": "done", "rows": []}))
    logs: list[str] = []
    first = ev.evaluate("scenes_vgg", "scenes:2", steps=2, workers=1, progress=False, out=out, log=logs.append)
    assert any("other settings; starting again" in line for line in logs) and len(first) == 2 * 3

    from methods.pipeline.evaluate_parts import EvalCheckpoint

    monkeypatch.setattr(EvalCheckpoint, "close", lambda self: None)  # keep the parts, as a kill would
    ev.evaluate("scenes_vgg", "scenes:2", steps=2, workers=1, progress=False, out=out)
    (folder / "1.json").write_bytes(b'{"index": 1, "na')  # damaged
    logs.clear()
    again = ev.evaluate("scenes_vgg", "scenes:2", steps=2, workers=1, progress=False, out=out, log=logs.append)
    assert any("1.json: unreadable checkpoint part, moved to 1.json.broken-1" in line for line in logs), logs
    assert any("resuming: 1 image(s) already scored" in line for line in logs), logs
    cols = [c for c in ev.COLUMNS if c not in TIMED]
    pd.testing.assert_frame_equal(again[cols], first[cols])
