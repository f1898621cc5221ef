"""The engines: the same folder through the local process pool and through Ray Data gives the same
manifest rows and maps; a worker that raises on one image reports it and finishes the rest; a
worker that cannot start is a clear EngineError.

The Ray tests start ONE small local Ray instance for the module (2 CPUs, no dashboard) and stop it
at the end; the pool tests spawn 2 processes. Both load the bundled scenes_vgg model once per worker.
"""

from __future__ import annotations

import builtins
import os
import pathlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from methods.data.scenes import make_scene
from methods.errors import EngineError
from methods.pipeline import batch, engines
from methods.pipeline import evaluate as ev

FLOATS = ("prob", "top5_probs")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("engines") / "in"
    (root / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(make_scene(10_000_000 + i).image).save(root / ("sub" if i == 1 else ".") / f"s{i}.png")
    Image.fromarray(np.full((40, 40, 3), 90, dtype=np.uint8)).save(root / "flat.png")  # fails_on_flat raises on it
    (root / "broken.png").write_bytes(b"not an image")
    return root


def run(folder, out, engine):
    return batch.run_batch(
        "scenes_vgg",
        folder,
        out,
        methods="gradcam,fails_on_flat",
        plugins="batch_plugins",
        engine=engine,
        workers=2,
        batch_size=2,
    )


def test_local_pool_and_ray_give_the_same_rows_and_maps(folder, tmp_path, ray_local, plugin):
    local = run(folder, tmp_path / "local", "local")
    remote = run(folder, tmp_path / "ray", "ray")
    for res in (local, remote):
        assert [f[0] for f in res.failed] == ["flat.png"] and "constant image" in res.failed[0][1]
        assert [s[0] for s in res.skipped] == ["broken.png"]
        assert res.done == 3 and sorted(res.manifest["image"].unique()) == ["s0.png", "s2.png", "sub/s1.png"]
    a, b = (pd.read_parquet(r.out / "manifest.parquet") for r in (local, remote))
    exact = [c for c in a.columns if c not in FLOATS + ("seconds",)]
    pd.testing.assert_frame_equal(a[exact], b[exact])
    np.testing.assert_allclose(a["prob"], b["prob"], atol=1e-5)
    np.testing.assert_allclose(np.stack(a["top5_probs"]), np.stack(b["top5_probs"]), atol=1e-5)
    for rel in a["image"].unique():
        ma, mb = np.load(local.out / rel / "maps.npz"), np.load(remote.out / rel / "maps.npz")
        assert ma.files == mb.files
        for key in ma.files:
            np.testing.assert_allclose(ma[key], mb[key], atol=1e-5)


def test_evaluate_on_ray_equals_the_local_run(ray_local):
    opts = dict(steps=3, progress=False, methods=["gradcam"])
    here = ev.evaluate("scenes_vgg", "scenes:2", engine="local", workers=1, **opts)
    there = ev.evaluate("scenes_vgg", "scenes:2", engine="ray", workers=2, **opts)
    cols = [c for c in ev.COLUMNS if c not in ("seconds", "eval_seconds")]
    pd.testing.assert_frame_equal(here[cols], there[cols], atol=1e-6)


def test_object_rows_on_ray_equal_the_local_run(ray_local):
    """A segmenter's one-row-per-object table goes through the same worker on Ray."""
    opts = dict(steps=2, progress=False, methods=["gradcam"], precision="fp32")
    here = ev.evaluate("scenes_seg", "scenes2:2", engine="local", workers=1, **opts)
    there = ev.evaluate("scenes_seg", "scenes2:2", engine="ray", workers=2, **opts)
    cols = [c for c in ev.OBJECT_COLUMNS if c not in ("seconds", "eval_seconds")]
    assert len(here) == 2 * 2 * 3  # 2 scenes x 2 objects x (gradcam, random, centre)
    pd.testing.assert_frame_equal(here[cols], there[cols], atol=1e-6)


def test_a_worker_that_cannot_start_is_an_engine_error(ray_local):
    from batch_plugins import BrokenSpec

    with pytest.raises(EngineError, match="worker could not start: FileNotFoundError: weights.safetensors is missing"):
        engines.run_items(BrokenSpec(), [{"i": 0}, {"i": 1}], on_results=lambda r: None, engine="local", workers=2)
    with pytest.raises(EngineError, match="weights.safetensors is missing"):
        engines.run_items(BrokenSpec(), [{"i": 0}], on_results=lambda r: None, engine="ray", workers=1)


def test_missing_ray_is_a_clear_error(monkeypatch):
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(EngineError, match=r"pip install 'gradlens\[ray\]'"):
        engines.import_ray()


def test_default_workers_is_the_cores_this_process_may_use():
    assert engines.default_workers() == len(os.sched_getaffinity(0))
    assert engines.check_engine("local", None) == ("local", engines.default_workers())


def test_a_checkpoint_travels_to_ray_actors_as_its_path_and_gives_the_local_rows(folder, tmp_path, ray_local):
    """issue 23: a ModelRef (path, arch, config), not a pickled module, is sent; each actor re-loads it."""
    import torch
    import torchvision

    from methods.models.model_config import ModelConfig
    from methods.models.user_models import ModelRef

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "w.pt")
    ref = ModelRef("checkpoint", str(tmp_path / "w.pt"), "resnet18", ModelConfig(("a", "b", "c"), input_size=64))
    opts = dict(steps=2, progress=False, methods=["gradcam"], precision="fp32")
    here = ev.evaluate(ref.load(), str(folder), engine="local", workers=1, **opts)
    there = ev.evaluate(ref, str(folder), engine="ray", workers=2, **opts)
    cols = [c for c in ev.COLUMNS if c in here.columns and c not in ("seconds", "eval_seconds")]
    pd.testing.assert_frame_equal(here[cols].reset_index(drop=True), there[cols].reset_index(drop=True), atol=1e-6)
