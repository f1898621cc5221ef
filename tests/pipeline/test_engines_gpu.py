"""Ray actors ask for GPUs when the device is a GPU, checked without a GPU or Ray: a fake ``ray``
module records the resources ``_run_ray`` asks for and runs the actor class in this process."""

from __future__ import annotations

import types

import numpy as np
import pytest

from methods.errors import EngineError
from methods.pipeline import engines


class Doubler:
    """A worker spec: each item's ``n`` doubled."""

    def build(self):
        return lambda items: [{"n": it["n"] * 2} for it in items]


def fake_ray(cluster_gpus: float) -> types.SimpleNamespace:
    calls: dict = {}

    class Dataset:
        def __init__(self, rows):
            self.rows = rows

        def map_batches(self, fn, *, fn_constructor_kwargs, batch_size, **resources):
            calls["resources"] = resources
            actor = fn(**fn_constructor_kwargs)
            batches = [self.rows[i : i + batch_size] for i in range(0, len(self.rows), batch_size)]
            outs = [actor({"item": np.array([r["item"] for r in b], dtype=object)}) for b in batches]
            return types.SimpleNamespace(iter_batches=lambda **kw: iter(outs))

    data = types.SimpleNamespace(
        DataContext=types.SimpleNamespace(get_current=lambda: types.SimpleNamespace()),
        from_items=Dataset,
        ActorPoolStrategy=lambda size: ("actors", size),
    )
    return types.SimpleNamespace(
        calls=calls,
        data=data,
        is_initialized=lambda: True,  # "already running": nothing to start or stop
        cluster_resources=lambda: {"CPU": 8.0, "GPU": cluster_gpus} if cluster_gpus else {"CPU": 8.0},
        shutdown=lambda: None,
    )


@pytest.mark.parametrize(
    ("num_gpus", "workers", "cluster", "asked"),
    [(1.0, 2, 1.0, 0.5), (1.0, 2, 4.0, 1.0), (1.0, 4, 2.0, 0.5), (0.0, 2, 1.0, None)],
)
def test_each_actor_asks_for_its_share_of_the_gpus(monkeypatch, num_gpus, workers, cluster, asked):
    ray = fake_ray(cluster)
    monkeypatch.setattr(engines, "import_ray", lambda: ray)
    got: list[dict] = []
    items = [{"n": i} for i in range(5)]
    engines.run_items(
        Doubler(), items, on_results=got.extend, engine="ray", workers=workers, batch_size=2, num_gpus=num_gpus
    )
    assert sorted(r["n"] for r in got) == [0, 2, 4, 6, 8]
    resources = {k: ray.calls["resources"][k] for k in ("compute", "num_cpus", "num_gpus")}
    assert resources == {"compute": ("actors", workers), "num_cpus": 1, "num_gpus": asked}


def test_gpus_asked_of_a_cluster_without_any_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(engines, "import_ray", lambda: fake_ray(0.0))
    with pytest.raises(EngineError, match="the Ray cluster has no GPU; use --device cpu"):
        engines.run_items(Doubler(), [{"n": 1}], on_results=lambda r: None, engine="ray", workers=1, num_gpus=1.0)


@pytest.mark.parametrize("command", ["batch", "evaluate"])
def test_the_commands_ask_ray_for_a_gpu_per_actor_when_the_device_is_cuda(monkeypatch, tmp_path, command):
    """batch and evaluate with ``device="cuda"`` on Ray: each actor asks for one GPU (the faked
    machine has one; no kernel runs: the actor's model cannot reach a GPU that is not there, and
    that start-up failure is the EngineError the command reports)."""
    import torch
    from PIL import Image

    from methods.data.scenes import make_scene
    from methods.pipeline.batch import run_batch
    from methods.pipeline.evaluate import evaluate

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    ray = fake_ray(1.0)
    monkeypatch.setattr(engines, "import_ray", lambda: ray)
    (tmp_path / "in").mkdir()
    Image.fromarray(make_scene(1).image).save(tmp_path / "in" / "a.png")
    with pytest.raises(EngineError, match="a worker could not start"):
        if command == "batch":
            run_batch(
                "scenes_vgg",
                tmp_path / "in",
                tmp_path / "out",
                methods="gradcam",
                device="cuda",
                engine="ray",
                workers=1,
            )
        else:
            evaluate(
                "scenes_vgg",
                "scenes:1",
                methods=["gradcam"],
                steps=5,
                progress=False,
                device="cuda",
                engine="ray",
                workers=1,
            )
    assert ray.calls["resources"]["num_gpus"] == 1.0
