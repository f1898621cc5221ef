"""The batch command on the two engines, 2 workers each, on this machine, in one run.

    PYTHONPATH=$PWD python benchmarks/bench_engines.py [--images 96] [--workers 2] [--batch-size 16]

Setup: the bundled scenes_vgg model, ``--images`` synthetic scenes as PNG files, Grad-CAM at the
default layer, the four views per image, a fresh output folder per run:

* ``local`` — :func:`methods.pipeline.batch.run_batch` with ``engine="local"``: a spawn process pool;
* ``ray`` — the same with ``engine="ray"``: a local Ray instance started for the run
  (``num_cpus=workers``, no dashboard), Ray Data actors.

For each: the wall time of a run of N images and of 2N images (start-up included: new
interpreters, torch, the model, and for Ray the instance itself). The marginal throughput
N / (wall(2N) - wall(N)) is what a longer run, or a cluster, multiplies; per worker it is that
divided by the workers. The runs alternate (local, ray, local, ray ...) so load drift hits both.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_batch import machine

from methods.data.scenes import make_scene
from methods.pipeline.batch import run_batch


def one_run(folder: pathlib.Path, out: pathlib.Path, engine: str, workers: int, batch_size: int) -> float:
    """Wall seconds of one batch run into a fresh output folder."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = run_batch(
        "scenes_vgg", folder, out, methods=["gradcam"], engine=engine, workers=workers, batch_size=batch_size
    )
    wall = time.perf_counter() - t0
    assert res.done == len(list(folder.iterdir())), res
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print("machine:", machine())
    work = pathlib.Path(tempfile.mkdtemp(prefix="gradlens-bench-engines-"))
    n = args.images
    folders = {}
    for size in (n, 2 * n):
        folders[size] = work / f"in{size}"
        folders[size].mkdir()
        for i in range(size):
            Image.fromarray(make_scene(10_000_000 + i).image).save(folders[size] / f"scene{i:04d}.png")
    walls: dict[tuple[str, int], list[float]] = {(e, size): [] for e in ("local", "ray") for size in (n, 2 * n)}
    for r in range(args.repeats):
        for (engine, size), got in walls.items():
            got.append(one_run(folders[size], work / "out", engine, args.workers, args.batch_size))
            print(f"  repeat {r + 1}: {engine:<5s} {size:4d} images {got[-1]:7.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    print(
        f"\nscenes_vgg, Grad-CAM + 4 views, {args.workers} workers, batch {args.batch_size}, median of {args.repeats}"
    )
    rate = {}
    for engine in ("local", "ray"):
        rate[engine] = n / (med[engine, 2 * n] - med[engine, n])
        print(
            f"  {engine:<5s} {n} images {med[engine, n]:6.1f} s, {2 * n} images {med[engine, 2 * n]:6.1f} s; "
            f"marginal {rate[engine]:6.1f} images/s = {rate[engine] / args.workers:5.1f} images/s per worker; "
            f"start-up about {med[engine, n] - n / rate[engine]:5.1f} s"
        )
    print(
        f"\n  ray / local wall time ({2 * n} images) = {med['ray', 2 * n] / med['local', 2 * n]:.2f};  "
        f"ray / local marginal throughput = {rate['ray'] / rate['local']:.2f}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
