"""benchmarks/gpu_check.py runs end to end: its smoke mode (``--device cpu --tiny``) on the CPU,
the checks and the sheet, with the sheet written as markdown. The GPU run itself is
benchmarks/gpu_run.sh's job on a GPU machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_smoke_mode_runs_the_checks_and_writes_the_sheet(tmp_path):
    sheet = tmp_path / "sheet.md"
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_check.py",
            "--device",
            "cpu",
            "--tiny",
            "--threads",
            "1",
            "--sheet",
            str(sheet),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "all checks passed" in done.stdout and "FAIL" not in done.stdout
    text = sheet.read_text()
    assert text.startswith("# GPU sheet") and "- device: cpu" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    for model in ("scenes_vgg", "vit_tiny"):
        whats = [r.split(" | ")[1] for r in rows if r.startswith(f"| {model}")]
        assert sum(w == "plain inference" for w in whats) == 2  # fp32 and bf16
        assert any(w.startswith("Grad-CAM at ") for w in whats)
        assert any("gradient methods x" in w and "block layers" in w for w in whats)
        assert sum(w.startswith("Score-CAM at ") for w in whats) == 2
        assert sum(w == "deletion + insertion" for w in whats) == 2
    for row in rows:  # every images/s is a positive number
        assert float(row.split(" | ")[3]) > 0
