"""Before / after in one session: a benchmark script run in turn in an older tree and in this one.

    PYTHONPATH=$PWD python benchmarks/before_after.py --base /tmp/gradlens-base [--rounds 3] \\
        bench_batch.py --images 64 --repeats 3

``--base`` is a checkout of the older code (``git worktree add /tmp/gradlens-base <commit>``). Each
round runs THIS tree's script once against the base tree's library and once against this tree's
(alternating which goes first), each a fresh process with that tree first on ``PYTHONPATH``: the
same measurement of two versions of the code. Every ``name = number`` line the script
prints (its ratios, each measured inside that run against its own floor) is collected. Printed:
each run's figures with the load average, then the median of every figure per tree. The two
trees never run at the same time; on a shared machine the load still differs from run to run,
which the interleaving spreads over both.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"^[ \t]*(?P<name>[^=:\n]+?) = (?P<value>[0-9]+(?:\.[0-9]+)?)\b", re.M)


def run(tree: pathlib.Path, script: str, args: list[str]) -> tuple[dict[str, float], str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, str(HERE / "benchmarks" / script), *args],  # this tree's script, ``tree``'s library
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    machine = next((line for line in out.splitlines() if line.startswith("machine:")), "")
    return {m["name"].strip(): float(m["value"]) for m in FIGURE.finditer(out)}, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, type=pathlib.Path, help="a checkout of the older code")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("script", help="a script in benchmarks/, e.g. bench_batch.py")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    a = ap.parse_args()
    trees = {"before": a.base.resolve(), "after": HERE}
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for r in range(a.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            load = os.getloadavg()[0]
            got, machine = run(trees[name], a.script, a.args)
            print(f"round {r + 1} {name:6s} load {load:.1f}->{os.getloadavg()[0]:.1f}  {machine}")
            for k, v in got.items():
                print(f"    {k} = {v:.2f}")
                figures[name].setdefault(k, []).append(v)
    print(f"\nmedians of {a.rounds} rounds ({a.script} {' '.join(a.args)}):")
    for k in figures["after"]:
        before = figures["before"].get(k)
        was = f"{statistics.median(before):6.2f}" if before else "     -"
        print(f"  {k:70s} before {was}   after {statistics.median(figures['after'][k]):6.2f}")


if __name__ == "__main__":
    main()
