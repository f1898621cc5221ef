"""Workers die with their parent (issue 26): a SIGKILL of batch/evaluate left its two worker
processes running, idle, holding 1.3-1.46 GB. Each test starts a parent in a subprocess, kills it
with SIGKILL, and polls (never a long sleep) until its workers are gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 10.0  # measured: under 0.1 s with the kernel's signal, about `interval` with polling


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    return env


def _wait_for(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_when_the_parent_is_killed(tmp_path):
    parent = textwrap.dedent(
        f"""
        from batch_plugins import SleepySpec
        from methods.pipeline import engines
        engines.run_items(SleepySpec({str(tmp_path)!r}), [{{"i": i}} for i in range(4)],
                          on_results=lambda r: None, engine="local", workers=2, batch_size=1)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT, env=_env())
    try:
        _wait_for(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 120, "two workers started")
        workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert all(_alive(w) for w in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        took = _wait_for(lambda: not any(_alive(w) for w in workers), GONE_WITHIN_S, "workers gone")
        print(f"workers gone {took:.2f} s after the parent's SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in tmp_path.glob("*.pid"):
            if _alive(int(p.stem)):
                os.kill(int(p.stem), signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_polling_fallback_alone_ends_an_orphan(tmp_path):
    """Without the kernel's parent-death signal (other systems), the polling thread ends it."""
    child = textwrap.dedent(
        """
        import os, sys, time
        from methods._internal import orphans
        orphans._set_pdeathsig = lambda: False
        assert orphans.die_with_parent(int(sys.argv[1]), interval=0.2) is False
        print("up", flush=True)
        time.sleep(600)
        """
    )
    parent = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        kid = subprocess.Popen([sys.executable, "-c", {child!r}, str(os.getpid())], stdout=subprocess.PIPE)
        assert kid.stdout.readline().strip() == b"up"
        open({str(tmp_path / "kid")!r}, "w").write(str(kid.pid))
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT, env=_env())
    try:
        _wait_for(lambda: (tmp_path / "kid").exists() and (tmp_path / "kid").read_text() != "", 60, "child started")
        kid = int((tmp_path / "kid").read_text())
        assert _alive(kid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_for(lambda: not _alive(kid), GONE_WITHIN_S, "orphan gone")
    finally:
        if proc.poll() is None:
            proc.kill()
