"""Your model, everywhere: ``--checkpoint PATH --arch ARCH``, ``--model module:function`` and
``--model-config`` for the batch and evaluate commands.

Checked against an independent path: the same weights loaded through the Python API
(:func:`methods.load_checkpoint`, or the factory called by hand) and run through
:func:`methods.pipeline.batch.run_batch` / :func:`methods.pipeline.evaluate.evaluate` give the same
rows, class names, top-5 and raw maps as the commands (which load the model themselves, in this
process and in worker processes that re-load it from its path). Then every refused input exits 2
with a message that names it.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

import methods
from methods.cli import batch as batch_cli
from methods.cli import evaluate as evaluate_cli
from methods.data.scenes import make_scene
from methods.errors import CheckpointError
from methods.models.catalog import model_names
from methods.models.user_models import ModelRef
from methods.pipeline import batch
from methods.pipeline import evaluate as ev

NAMES = ["disc", "square", "ring"]
CONFIG = {"class_names": NAMES, "input_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
FACTORY = """
import torch
from torch import nn

def build():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    )

def not_a_model():
    return 42

def two_outputs():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A resnet18(num_classes=3) state_dict, its config, two scene pictures, a factory module."""
    root = tmp_path_factory.mktemp("user_models")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3)
    for m in net.modules():  # non-trivial BN statistics, so preprocessing and eval mode matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), root / "w.pt")
    (root / "cfg.json").write_text(json.dumps(CONFIG))
    (root / "in").mkdir()
    for i in range(2):
        Image.fromarray(make_scene(10_000_000 + i).image).save(root / "in" / f"s{i}.png")
    (root / "user_factories.py").write_text(textwrap.dedent(FACTORY))
    return root


@pytest.fixture
def factory_path(files, monkeypatch):
    """The factory module importable for one test; the names it registers are removed after."""
    from methods.models.sources.user import USER_MODELS

    monkeypatch.syspath_prepend(str(files))
    yield files
    for name in [n for n in USER_MODELS if n.startswith("user_factories:")]:
        USER_MODELS.pop(name)


def api_model(files):
    return methods.load_checkpoint(
        files / "w.pt",
        arch="resnet18",
        num_classes=3,
        class_names=NAMES,
        input_size=64,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    )


SAME = ["image", "method", "layer", "target", "target_name", "prob", "predicted", "top5", "top5_names", "top5_probs"]


def test_checkpoint_batch_equals_the_python_api_in_worker_processes(files, tmp_path, fp32):
    out = tmp_path / "cli"
    argv = ["--checkpoint", str(files / "w.pt"), "--arch", "resnet18", "--model-config", str(files / "cfg.json")]
    code = batch_cli.main(argv + ["--images", str(files / "in"), "--out", str(out), "--workers", "2", "--quiet"])
    assert code == 0
    res = batch.run_batch(api_model(files), files / "in", tmp_path / "api", workers=1)
    assert res.done == 2
    got, want = pd.read_parquet(out / "manifest.parquet"), pd.read_parquet(tmp_path / "api" / "manifest.parquet")
    assert len(got) == 2 and set(got["target_name"]) <= set(NAMES)
    pd.testing.assert_frame_equal(
        got[SAME].sort_values("image").reset_index(drop=True),
        want[SAME].sort_values("image").reset_index(drop=True),
        atol=1e-5,
        check_exact=False,
    )
    assert (got["model"] == want["model"]).all() and got["model"].iloc[0].startswith("resnet18-")
    for rel in ("s0.png", "s1.png"):
        a, b = np.load(out / rel / "maps.npz"), np.load(tmp_path / "api" / rel / "maps.npz")
        np.testing.assert_allclose(a["gradcam__layer4"], b["gradcam__layer4"], atol=1e-5)


def test_the_ref_travels_as_paths_not_modules(files):
    ref = ModelRef(
        "checkpoint", str(files / "w.pt"), "resnet18", methods.models.model_config.read_model_config(files / "cfg.json")
    )
    blob = pickle.dumps(ref)
    assert b"torch" not in blob and len(blob) < 2000  # no module, no tensor in what is sent
    loaded = pickle.loads(blob).load()
    assert loaded.class_names == tuple(NAMES) and loaded.input_size == (64, 64) and loaded.std == (0.25,) * 3
    pinned = dataclasses.replace(ref, sha256="0" * 64)  # what a worker gets: the driver's digest
    with pytest.raises(CheckpointError, match="changed since the run started"):
        pinned.load()
    # without a config: the number of classes is what the file's fc.weight declares
    bare = ModelRef("checkpoint", str(files / "w.pt"), "resnet18").load()
    assert bare.class_names == ("class 0", "class 1", "class 2") and bare.input_size == (224, 224)


def test_checkpoint_evaluate_equals_the_python_api(files, tmp_path, fp32):
    out = tmp_path / "r.csv"
    argv = ["--checkpoint", str(files / "w.pt"), "--arch", "resnet18", "--model-config", str(files / "cfg.json")]
    argv += ["--images", str(files / "in"), "--out", str(out), "--steps", "2", "--workers", "1", "--quiet"]
    assert evaluate_cli.main(argv) == 0
    got = pd.read_csv(out)
    want = ev.evaluate(api_model(files), str(files / "in"), steps=2, progress=False, workers=1)
    cols = [c for c in ("image", "method", "layer", "predicted", "deletion_auc", "insertion_auc") if c in want.columns]
    assert len(got) == len(want) >= 2 and len(cols) >= 4
    g = got[cols].sort_values(["image", "method"]).reset_index(drop=True)
    w = want[cols].sort_values(["image", "method"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(g, w, check_dtype=False, atol=1e-5, check_exact=False)


def test_factory_runs_both_commands_and_is_a_model_source(factory_path, tmp_path, fp32):
    (factory_path / "small.json").write_text(json.dumps({"class_names": NAMES, "input_size": [48, 40]}))
    model = ["--model", "user_factories:build", "--model-config", str(factory_path / "small.json")]
    out = tmp_path / "b"
    assert (
        batch_cli.main(model + ["--images", str(factory_path / "in"), "--out", str(out), "--workers", "1", "--quiet"])
        == 0
    )
    assert "user_factories:build" in model_names()  # listed beside the catalog's models
    import user_factories

    loaded = methods.LoadedModel(
        "user_factories:build",
        user_factories.build().eval(),
        (48, 40),
        methods.models.loaded.IMAGENET_MEAN,
        methods.models.loaded.IMAGENET_STD,
        NAMES,
        "3",
        "user",
    )
    want = batch.run_batch(loaded, factory_path / "in", tmp_path / "api", workers=1)
    assert want.done == 2
    got, exp = pd.read_parquet(out / "manifest.parquet"), pd.read_parquet(tmp_path / "api" / "manifest.parquet")
    assert got["layer"].iloc[0] == "3"  # the last conv's ReLU: default_layer of the bare module
    pd.testing.assert_frame_equal(
        got[SAME].sort_values("image").reset_index(drop=True), exp[SAME].sort_values("image").reset_index(drop=True)
    )
    csv = tmp_path / "r.csv"
    assert (
        evaluate_cli.main(model + ["--images", str(factory_path / "in"), "--out", str(csv), "--steps", "2", "--quiet"])
        == 0
    )
    assert set(pd.read_csv(csv)["image"]) == {"s0.png", "s1.png"}


def _bad(files, tmp_path, name, value):
    cfg = dict(CONFIG, **{name: value}) if value is not None else {name: 1}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return ["--checkpoint", str(files / "w.pt"), "--arch", "resnet18", "--model-config", str(path)]


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing", "is not a file"),
        ("arch", "unknown arch 'resnet181'"),
        ("no_arch", "--checkpoint needs --arch"),
        ("both", "not both"),
        ("input_size", "sides 8 to 4096"),
        ("mean", "mean must be three finite numbers"),
        ("std", "std must be three numbers > 0"),
        ("field", "unknown field 'clas_names'"),
        ("count", "gives 4 class names but the checkpoint's classifier has 3 outputs"),
        ("not_module", "returned a int; it must return a torch.nn.Module"),
        ("factory_count", "has 2 outputs but 3 class names"),
        ("no_module", "module 'no_such_mod' cannot be imported"),
        ("config_for_catalog", "--model-config goes with --checkpoint"),
    ],
)
def test_bad_inputs_exit_2_with_a_clear_message(factory_path, tmp_path, capsys, case, needle):
    files = factory_path
    ckpt = ["--checkpoint", str(files / "w.pt"), "--arch", "resnet18"]
    argv = {
        "missing": ["--checkpoint", str(tmp_path / "nope.pt"), "--arch", "resnet18"],
        "arch": ["--checkpoint", str(files / "w.pt"), "--arch", "resnet181"],
        "no_arch": ["--checkpoint", str(files / "w.pt")],
        "both": ckpt + ["--model", "scenes_vgg"],
        "input_size": _bad(files, tmp_path, "input_size", 4),
        "mean": _bad(files, tmp_path, "mean", [0.5, 0.5]),
        "std": _bad(files, tmp_path, "std", [0.2, 0.0, 0.2]),
        "field": _bad(files, tmp_path, "clas_names", None),
        "count": _bad(files, tmp_path, "class_names", ["a", "b", "c", "d"]),
        "not_module": ["--model", "user_factories:not_a_model"],
        "factory_count": ["--model", "user_factories:two_outputs", "--model-config", str(files / "cfg.json")],
        "no_module": ["--model", "no_such_mod:build"],
        "config_for_catalog": ["--model", "scenes_vgg", "--model-config", str(files / "cfg.json")],
    }[case]
    common = ["--images", str(files / "in"), "--quiet", "--workers", "1"]
    assert batch_cli.main(argv + common + ["--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err
    assert evaluate_cli.main(argv + common + ["--out", str(tmp_path / "r.csv"), "--steps", "1"]) == 2
    assert needle in capsys.readouterr().err


def test_timm_safetensors_and_a_classes_file(tmp_path):
    """The class count of a timm checkpoint in safetensors comes from its declared head; a classes
    file (relative to the config) names them; a config's count that differs is refused."""
    import timm
    from safetensors.torch import save_file

    from methods.models.model_config import read_model_config

    torch.manual_seed(0)
    net = timm.create_model("resnet10t", pretrained=False, num_classes=4)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp_path / "w.safetensors")
    bare = ModelRef("checkpoint", str(tmp_path / "w.safetensors"), "timm:resnet10t").load()
    assert bare.num_classes == 4 and bare.source == "checkpoint"
    (tmp_path / "names.txt").write_text("ant\nbee\n\ncat\ndog\n")
    (tmp_path / "cfg.json").write_text(json.dumps({"classes_file": "names.txt", "resize": "crop", "crop_pct": 0.875}))
    named = ModelRef(
        "checkpoint", str(tmp_path / "w.safetensors"), "timm:resnet10t", read_model_config(tmp_path / "cfg.json")
    )
    loaded = named.load()
    assert loaded.class_names == ("ant", "bee", "cat", "dog") and loaded.resize == "crop" and loaded.crop_pct == 0.875
    x = torch.rand(1, 3, 224, 224)
    torch.testing.assert_close(loaded.model(x), net.eval()(x), atol=1e-5, rtol=1e-5)  # the file's weights


def test_a_pickle_that_would_run_code_is_refused_before_anything_runs(tmp_path, capsys):
    class Boom:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"fc.weight": torch.zeros(3, 512), "x": Boom()}, tmp_path / "evil.pt")
    argv = ["--checkpoint", str(tmp_path / "evil.pt"), "--arch", "resnet18", "--images", str(tmp_path), "--quiet"]
    assert batch_cli.main(argv + ["--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert "ran" not in captured.out and "could run code" in captured.err
