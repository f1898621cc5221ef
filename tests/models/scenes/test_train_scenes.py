"""Tests of methods.models.scenes.train: a tiny run writes loadable weights and an honest card, the data
stream is deterministic, the evaluation counts what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from methods.data.scenes import CLASS_NAMES, TRAIN_SEEDS, make_scene
from methods.models.scenes import nets as sm
from methods.models.scenes import train as ts
from methods.models.scenes.evaluation import peak_in_mask


@pytest.mark.parametrize("arch", ts.ARCHS)
def test_tiny_run_writes_files_that_load(arch, tmp_path):
    card = ts.train(
        arch, steps=3, batch_size=4, seed=1, out_dir=tmp_path, eval_single=8, eval_two=4, log=None, workers=0
    )
    name = f"scenes_{arch}"
    weights, card_file = tmp_path / f"{name}.safetensors", tmp_path / f"{name}.json"
    assert weights.is_file() and card_file.is_file()
    assert json.loads(card_file.read_text()) == card
    model = sm.load_weights(name, weights)
    assert not model.training
    # the weights moved away from a fresh initialisation (3 AdamW steps)
    fresh = sm.build(name).state_dict()
    assert any(not torch.equal(v, fresh[k]) for k, v in model.state_dict().items() if v.is_floating_point())
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 128)).shape == (1, len(CLASS_NAMES))
    m = card["metrics"]
    for key in ("accuracy", "pointing", "two_object"):
        assert 0.0 <= m[key] <= 1.0
    assert m["n_single"] == 8 and m["n_two"] == 4
    t = card["training"]
    assert t["steps"] == 3 and t["seed"] == 1
    assert t["cpu_seconds"] == pytest.approx(
        t["cpu_seconds_training_process"] + t["cpu_seconds_loader_workers"], abs=0.11
    )
    assert t["cpu_seconds_training_process"] > 0 and t["seconds"] > 0
    assert card["default_layer"] == sm.DEFAULT_LAYERS[name]
    assert card["weights_bytes"] == weights.stat().st_size


def test_same_seed_same_weights(tmp_path):
    """Same seed, same bits in every tensor. (The files themselves may differ byte-wise:
    safetensors 0.8 does not always write the header in the same order.)"""
    from safetensors.torch import load_file

    kw = dict(steps=2, batch_size=4, seed=7, eval_single=0, eval_two=0, log=None, workers=0, threads=1)
    ts.train("vgg", out_dir=tmp_path / "a", **kw)
    ts.train("vgg", out_dir=tmp_path / "b", **kw)
    a = load_file(str(tmp_path / "a" / "scenes_vgg.safetensors"))
    b = load_file(str(tmp_path / "b" / "scenes_vgg.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        bits_a = a[k].view(torch.int32) if a[k].dtype == torch.float32 else a[k]
        bits_b = b[k].view(torch.int32) if b[k].dtype == torch.float32 else b[k]
        assert torch.equal(bits_a, bits_b), k
    ts.train("vgg", out_dir=tmp_path / "c", **{**kw, "seed": 8})
    c = load_file(str(tmp_path / "c" / "scenes_vgg.safetensors"))
    assert not torch.equal(a["classifier.1.weight"], c["classifier.1.weight"])


def test_batches_do_not_depend_on_the_number_of_workers():
    ds = ts._Batches(seed=3, steps=4, batch_size=3, crop=64, crop_steps=2, two_share=0.34)
    direct = list(ds)
    loaded = list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
    assert len(direct) == len(loaded) == 4
    for (x1, y1), (x2, y2) in zip(direct, loaded):
        torch.testing.assert_close(x1, x2, rtol=0, atol=0)
        torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    # crop phase: 64x64 single-object batches; then full scenes, one in three with two objects
    assert direct[0][0].shape == (3, 3, 64, 64) and direct[2][0].shape == (3, 3, 128, 128)
    assert (direct[0][1].max(1).values == 1.0).all()
    assert sorted(direct[2][1].max(1).values.tolist()) == [0.5, 1.0, 1.0]
    torch.testing.assert_close(direct[2][1].sum(1), torch.ones(3))


def test_training_seeds_stay_in_the_training_range():
    rng = np.random.default_rng(0)
    seeds = rng.integers(TRAIN_SEEDS.start, TRAIN_SEEDS.stop, size=10_000)
    assert seeds.max() < ts.EVAL_SINGLE_START and seeds.max() < ts.EVAL_TWO_START


def test_crop_keeps_the_whole_object():
    rng = np.random.default_rng(0)
    for seed in range(50):
        sc = make_scene(seed)
        mask3 = np.repeat(sc.mask[..., None], 3, axis=2).astype(np.uint8)
        crop = ts._crop_around(mask3, sc.mask, 64, rng)
        assert crop.shape == (64, 64, 3)
        assert crop[..., 0].sum() == sc.mask.sum()  # no object pixel cut off


def test_peak_in_mask_counts_hits_by_hand():
    maps = torch.zeros(3, 4, 4)
    maps[0, 1, 1] = 1.0  # inside
    maps[1, 3, 3] = 1.0  # outside
    maps[2, 0, 0] = 1.0  # inside
    masks = np.zeros((3, 4, 4), bool)
    masks[0, 1, 1] = masks[1, 0, 0] = masks[2, 0, 0] = True
    np.testing.assert_array_equal(peak_in_mask(maps, masks), [True, False, True])


def _pixels_key(x: torch.Tensor) -> bytes:
    """The uint8 pixels behind one normalized (3, H, W) input, as bytes (exact: rounding undoes
    the float normalization)."""
    mean, std = torch.tensor(sm.MEAN).view(3, 1, 1), torch.tensor(sm.STD).view(3, 1, 1)
    return torch.round((x * std + mean) * 255.0).to(torch.uint8).numpy().tobytes()


def test_evaluate_scores_an_oracle_cam_perfect_and_its_complement_zero():
    """A CAM that returns the true mask of the target class scores 1.0 on every measure; one that
    returns the complement scores 0.0 - whatever the (untrained) model predicts."""
    from methods.data.scenes import make_batch

    truth = {}
    for start, n_obj, count in ((ts.EVAL_SINGLE_START, 1, 10), (ts.EVAL_TWO_START, 2, 6)):
        images, labels, masks = make_batch(range(start, start + count), n_objects=n_obj)
        for i in range(count):
            key = _pixels_key(ts.to_tensor(images[i : i + 1])[0])
            labs, ms = (labels[i], masks[i]) if n_obj == 2 else ([labels[i]], masks[i][None])
            for lab, m in zip(labs, ms):
                truth[(key, int(lab))] = m

    def oracle(flip: bool):
        def cam(model, x, layer, target):
            out = torch.stack([torch.from_numpy(truth[(_pixels_key(xi), int(t))]).float() for xi, t in zip(x, target)])
            return 1.0 - out if flip else out  # (N, 128, 128)

        return cam

    model = sm.build("scenes_vgg")
    kw = dict(n_single=10, n_two=6, batch_size=4)
    good = ts.evaluate(model, sm.DEFAULT_LAYERS["scenes_vgg"], cam=oracle(False), **kw)
    bad = ts.evaluate(model, sm.DEFAULT_LAYERS["scenes_vgg"], cam=oracle(True), **kw)
    assert good["pointing"] == 1.0 and good["two_object"] == 1.0 and good["two_object_both"] == 1.0
    assert bad["pointing"] == 0.0 and bad["two_object"] == 0.0
    assert good["single_seeds"] == [ts.EVAL_SINGLE_START, ts.EVAL_SINGLE_START + 10]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(arch="alexnet"), "arch"),
        (dict(arch="vgg", steps=0), "steps"),
        (dict(arch="vgg", crop=8), "crop"),
    ],
)
def test_bad_options_are_refused(kwargs, match, tmp_path):
    arch = kwargs.pop("arch")
    with pytest.raises(ValueError, match=match):
        ts.train(arch, out_dir=tmp_path, log=None, **kwargs)


def test_cli_parses_and_runs(tmp_path, capsys):
    argv = ["--arch", "resnet", "--steps", "2", "--out", str(tmp_path), "--batch-size", "4", "--workers", "0"]
    assert ts.main(argv + ["--eval-single", "4", "--eval-two", "2"]) == 0
    assert (tmp_path / "scenes_resnet.safetensors").is_file()
    assert "wrote" in capsys.readouterr().out
