"""Reading, the model and writing overlapped (:mod:`methods.pipeline.overlap`, ``BatchWorker.stream``).

* the overlapped worker writes the same files, byte for byte, and gives the same results (rows in
  the same order) as the stages run one after the other (``BatchWorker.__call__``), with a
  broken file, an odd-sized flat picture and a label file's targets among the parts;
* an exception in the writer (or the decoder, or the model's stage) reaches the caller, after the
  parts finished before it; it is never swallowed and the threads are stopped;
* the queues are bounded: with the writer (or the caller) stalled, the decode thread pulls at
  most ``2 * depth + 3`` parts (``3 * depth + 3``), not the thousand on offer, and everything
  comes out in order afterwards.

No timing is asserted.
"""

from __future__ import annotations

import pathlib
import threading

import numpy as np
import pytest
from PIL import Image

from methods.data.scenes import make_scene
from methods.pipeline.batch_worker import BatchSpec
from methods.pipeline.engines import chunks
from methods.pipeline.overlap import overlapped


def make_items(root: pathlib.Path) -> list[dict]:
    root.mkdir(parents=True)
    names = []
    for i in range(7):
        Image.fromarray(make_scene(10_000_000 + i).image).save(root / f"s{i}.png")
        names.append(f"s{i}.png")
    Image.fromarray(np.full((40, 50, 3), 90, dtype=np.uint8)).save(root / "flat.png")
    (root / "broken.png").write_bytes(b"not an image")
    names += ["flat.png", "broken.png"]
    pairs = [["gradcam", "features.20"], ["gradcampp", "features.13"]]
    return [
        {"image": n, "pairs": pairs, "label": i % 3, "file_size": i, "file_mtime_ns": i, "merge": False}
        for i, n in enumerate(sorted(names))
    ]


def files(out: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def without_seconds(results: list[dict]) -> list[dict]:
    return [dict(r, rows=[{k: v for k, v in row.items() if k != "seconds"} for row in r["rows"]]) for r in results]


def test_overlapped_worker_writes_the_same_bytes_and_rows_as_inline(tmp_path):
    items = make_items(tmp_path / "in")
    outs = {}
    for how in ("inline", "overlapped"):
        spec = BatchSpec(
            model="scenes_vgg", model_name="scenes_vgg", root=str(tmp_path / "in"), out=str(tmp_path / how)
        )
        worker = spec.build()
        parts = list(chunks(items, 3))
        got = [worker(p) for p in parts] if how == "inline" else list(worker.stream(iter(parts)))
        outs[how] = (without_seconds([r for part in got for r in part]), files(tmp_path / how))
    (rows_a, files_a), (rows_b, files_b) = outs["inline"], outs["overlapped"]
    assert rows_a == rows_b
    assert [r["status"] for r in rows_a].count("done") == 8 and [r["status"] for r in rows_a].count("skipped") == 1
    assert len(files_a) == 8 * (1 + 2 * 3 + 1)  # original, 3 views per map, maps.npz
    assert files_a == files_b  # every PNG and maps.npz byte for byte
    assert not [n for n in files_b if n.endswith(".partial")]


def test_an_error_in_the_writer_reaches_the_caller_after_what_was_written():
    def finish(x):
        if x == 30:
            raise OSError("disk full at part 3")
        return x

    gen = overlapped(range(1, 100), lambda p: p, lambda p: p * 10, finish)
    seen = []
    with pytest.raises(OSError, match="disk full at part 3"):
        for v in gen:
            seen.append(v)
    assert seen == [10, 20]  # in order, nothing after the failed part
    assert not [t for t in threading.enumerate() if t.name.startswith("gradlens-")]


@pytest.mark.parametrize("stage", ["decode", "compute"])
def test_an_error_in_the_other_stages_reaches_the_caller(stage):
    def boom(p):
        if p == 2:
            raise ValueError(f"bad part in {stage}")
        return p

    fns = {"decode": lambda p: p, "compute": lambda p: p}
    fns[stage] = boom
    with pytest.raises(ValueError, match=f"bad part in {stage}"):
        list(overlapped(range(5), fns["decode"], fns["compute"], lambda p: p))
    assert not [t for t in threading.enumerate() if t.name.startswith("gradlens-")]


def test_a_worker_whose_writer_breaks_raises_from_stream(tmp_path):
    items = make_items(tmp_path / "in")
    worker = BatchSpec(
        model="scenes_vgg", model_name="scenes_vgg", root=str(tmp_path / "in"), out=str(tmp_path / "out")
    ).build()
    calls = []

    def broken_finish(pieces):
        calls.append(1)
        raise RuntimeError("the writer broke")

    worker._finish = broken_finish  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="the writer broke"):
        list(worker.stream(chunks(items, 4)))
    assert calls == [1]


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("stalled", ["writer", "caller"])
def test_the_queues_are_bounded_when_the_writer_or_the_caller_stalls(depth, stalled):
    pulled = []
    release = threading.Event()
    full = threading.Event()
    # decoder holding 1 + depth queued, model holding 1 + depth queued, writer holding 1 (+ depth
    # written and waiting, and the one in the caller's hands, when the caller is the one that stalls)
    bound = 2 * depth + 3 if stalled == "writer" else 3 * depth + 3

    def parts():
        for i in range(1000):
            pulled.append(i)
            if len(pulled) == depth + 2:  # the pipeline is filling
                full.set()
            yield i

    def finish(x):
        if stalled == "writer":
            release.wait(30)
        return x

    out: list = []

    def consume():
        for v in overlapped(parts(), lambda p: p, lambda p: p * 2, finish, depth=depth):
            if stalled == "caller":
                release.wait(30)
            out.append(v)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        assert full.wait(30)
        for _ in range(200):  # give an unbounded queue every chance to show itself meanwhile
            threading.Event().wait(0.001)
        assert depth + 2 <= len(pulled) <= bound  # not the thousand on offer
    finally:
        release.set()
        consumer.join(60)
    assert out == [2 * i for i in range(1000)]


def test_run_batch_overlapped_equals_in_turn_and_in_turn_is_the_default(tmp_path, monkeypatch):
    from methods.pipeline import batch
    from methods.pipeline.batch_worker import BatchWorker

    assert BatchWorker.overlap is False  # measured slower on an idle 2-core machine: an opt-in
    make_items(tmp_path / "in")
    out = {}
    for overlap in (False, True):
        monkeypatch.setattr(BatchWorker, "overlap", overlap)
        res = batch.run_batch("scenes_vgg", tmp_path / "in", tmp_path / f"out{overlap}", workers=1, batch_size=3)
        assert (res.done, len(res.skipped)) == (8, 1)
        df = res.manifest.drop(columns=["seconds"]).reset_index(drop=True)
        out[overlap] = (df, {k: v for k, v in files(tmp_path / f"out{overlap}").items() if ".manifest-parts" not in k})
    assert out[False][0].equals(out[True][0])
    names = [k for k in out[False][1] if not k.startswith("manifest")]
    assert names and {k: out[False][1][k] for k in names} == {k: out[True][1][k] for k in names}
