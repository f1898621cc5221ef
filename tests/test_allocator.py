"""methods.keep_large_blocks: glibc keeps large freed blocks, so big tensors stop faulting pages in.

Measured, not assumed: in a fresh process, sixteen 64 MiB tensors are made, filled and dropped one
after the other; the page faults they cost are counted (``ru_minflt``). With glibc's defaults each
one is a fresh ``mmap`` (at least one fault per 2 MiB even with transparent huge pages); with the
blocks kept the first block is reused and the eight cost next to nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

GLIBC = sys.platform.startswith("linux") and bool(getattr(os, "confstr", lambda name: None)("CS_GNU_LIBC_VERSION"))

PROBE = """
import json, resource, torch
from methods._internal.allocator import keep_large_blocks
state = keep_large_blocks()
x = torch.empty(16 * 2**20); x.fill_(1.0); del x  # 64 MiB once: the block a kept heap reuses
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(16):
    x = torch.empty(16 * 2**20); x.fill_(1.0); del x
print(json.dumps([state, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, keep_large_blocks()]))
"""


def _probe(**env: str) -> tuple[str, int, str]:
    full = {k: v for k, v in os.environ.items() if k != "GRADLENS_MALLOC"} | env
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    state, faults, again = json.loads(done.stdout.strip().splitlines()[-1])
    return state, int(faults), again


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_large_blocks does nothing by design")
def test_kept_blocks_stop_the_page_faults_and_the_switch_turns_it_off():
    kept_state, kept, again = _probe()
    system_state, system, _ = _probe(GRADLENS_MALLOC="system")
    assert (kept_state, again) == ("kept", "kept")  # once per process; the second call reports the same
    assert system_state == "system: $GRADLENS_MALLOC=system"
    assert system >= 16 * 32  # sixteen fresh 64 MiB mappings: at least one fault per 2 MiB page
    assert kept * 4 <= system, (kept, system)


def test_the_switch_is_read_and_nothing_is_done(monkeypatch):
    from methods._internal import allocator

    monkeypatch.setattr(allocator, "_STATE", [])
    monkeypatch.setenv("GRADLENS_MALLOC", "System ")
    assert allocator.keep_large_blocks() == "system: $GRADLENS_MALLOC=system"
    monkeypatch.setattr(allocator, "_STATE", [])
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    monkeypatch.delenv("GRADLENS_MALLOC")
    assert allocator.keep_large_blocks() == "system: not glibc"
