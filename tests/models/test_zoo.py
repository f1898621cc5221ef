"""Tests for methods/models (catalog.py and its sources): catalog, offline torchvision loading, safe checkpoints, preprocessing.

Nothing touches the network: every test runs with TORCH_HOME in a temporary folder, sockets
refuse to connect, and torch.hub's downloader fails the test if it is called unexpectedly.
"Cached weights" are random weights written where the real file would be, so loading is checked
by comparing outputs with the model they were saved from.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import get_model, get_model_weights

from methods import models as zoo
from methods.cams.core.layers import default_layer
from methods.data import scenes
from methods.errors import CheckpointError, GradLensError, UnknownModelError, WeightsNotAvailableError
from methods.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LoadedModel,
    list_models,
    load_checkpoint,
    load_model,
    weights_file,
)
from methods.models.scenes import nets as sm
from methods.models.torchvision_zoo import TORCHVISION

TV_NAMES = ["vgg16", "resnet18", "resnet50", "densenet121", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny"]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Empty torch hub cache, no sockets, and a downloader that must not be called."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    attempts: list[str] = []  # checked after the test: library code may catch the exceptions

    def no_connect(*args, **kwargs):
        attempts.append(f"socket.connect{args[1:]}")
        raise AssertionError("a test attempted a network connection")

    def no_download(*args, **kwargs):
        attempts.append(f"download_url_to_file{args}")
        raise AssertionError("download_url_to_file was called without allow_download=True")

    def no_lookup(host, *args, **kwargs):
        attempts.append(f"getaddrinfo({host!r})")
        raise OSError("name lookups are blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    yield tmp_path / "torch_home"
    allowed = ([], ["socket.connect(('127.0.0.1', 9),)"], ["getaddrinfo('download.pytorch.org')"])
    assert attempts in allowed, attempts


def _x(n: int = 1, size: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))  # (n, 3, s, s)


def _same_outputs(a: nn.Module, b: nn.Module, size: int = 32) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(_x(size=size)), b.eval()(_x(size=size)))


def _saved(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def resnet18_10() -> nn.Module:
    torch.manual_seed(0)
    return get_model("resnet18", weights=None, num_classes=10).eval()


# ----------------------------------------------------------------------------- catalog


def test_catalog_torchvision_entries(offline):
    entries = {e.name: e for e in list_models()}
    assert set(TV_NAMES) <= set(entries)
    for name in TV_NAMES:
        e = entries[name]
        assert e.source == "torchvision"
        assert e.input_size == (224, 224)
        assert e.available is False  # empty cache
        url = get_model_weights(name).DEFAULT.url
        assert e.expected_file == str(offline / "hub" / "checkpoints" / url.rsplit("/", 1)[1])
    # the documented example, literally
    assert entries["vgg16"].expected_file == str(offline / "hub" / "checkpoints" / "vgg16-397923af.pth")
    assert weights_file("vgg16") == offline / "hub" / "checkpoints" / "vgg16-397923af.pth"


def test_availability_follows_the_cache_file(offline):
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    entries = {e.name: e for e in list_models()}
    assert entries["resnet18"].available is True
    assert entries["resnet50"].available is False


@pytest.mark.parametrize("name", TV_NAMES)
def test_catalog_default_layer_matches_the_generic_rule(name):
    """The hard-coded default layers equal what methods.cams.core.layers.default_layer finds (meta device:
    shapes only, no arithmetic)."""
    with torch.device("meta"):
        model = get_model(name, weights=None)
    assert TORCHVISION[name].default_layer == default_layer(model)


def test_model_names_and_checkpoint_architectures():
    names = zoo.model_names()
    assert names[:8] == [
        "scenes_vgg",
        "scenes_resnet",
        "scenes_vit",
        "scenes_det",
        "scenes_seg",
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ]
    assert set(TV_NAMES) <= set(names)
    archs = zoo.checkpoint_architectures()
    tv = [a for a in archs if not a.startswith("timm:")]
    timm_archs = [a for a in archs if a.startswith("timm:")]
    assert set(TV_NAMES) <= set(tv) and "resnet34" in tv and tv == sorted(tv)
    assert archs == tv + timm_archs  # torchvision first, then the short timm list
    assert 5 <= len(timm_archs) <= 20 and "timm:convnext_tiny" in timm_archs


# ----------------------------------------------------------------------------- load_model offline


def test_missing_weights_fail_fast_with_path_and_instructions(offline):
    with pytest.raises(WeightsNotAvailableError) as info:
        load_model("vgg16")
    msg = str(info.value)
    assert str(offline / "hub" / "checkpoints" / "vgg16-397923af.pth") in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert "allow_download=True" in msg
    assert isinstance(info.value, GradLensError)


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError, match=r"'resnet5'.*Did you mean 'resnet50'") as info:
        load_model("resnet5")
    assert isinstance(info.value, ValueError) and isinstance(info.value, GradLensError)
    with pytest.raises(TypeError):
        load_model(None)  # type: ignore[arg-type]


def test_load_cached_torchvision_weights():
    torch.manual_seed(1)
    ref = get_model("resnet18", weights=None).eval()
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), path)

    lm = load_model("resnet18")
    assert isinstance(lm, LoadedModel)
    assert lm.source == "torchvision" and lm.digest is None
    assert lm.input_size == (224, 224)
    assert lm.mean == IMAGENET_MEAN and lm.std == IMAGENET_STD
    assert len(lm.class_names) == lm.num_classes == 1000
    assert lm.class_names[0] == "tench"
    assert lm.default_layer == "layer4"
    assert "IMAGENET1K_V1" in lm.note and str(path) in lm.note
    assert not lm.model.training
    assert not any(t.is_meta for t in list(lm.model.parameters()) + list(lm.model.buffers()))
    assert _same_outputs(ref, lm.model)


def test_densenet_legacy_file_keys_and_format():
    """torchvision's DenseNet file uses pre-2018 key names (``norm.1``), the legacy (non-zip)
    torch.save format and has no ``num_batches_tracked``; it must load all the same."""
    torch.manual_seed(2)
    ref = get_model("densenet121", weights=None).eval()
    old = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in ref.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    path = weights_file("densenet121")
    path.parent.mkdir(parents=True)
    torch.save(old, path, _use_new_zipfile_serialization=False)

    lm = load_model("densenet121")
    assert lm.default_layer == "features.norm5:act"
    assert _same_outputs(ref, lm.model)


def test_corrupt_cached_file():
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 half a download")
    with pytest.raises(WeightsNotAvailableError, match="cannot be read.*Delete it"):
        load_model("resnet18")


def test_cached_file_of_the_wrong_model():
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(get_model("mobilenet_v3_small", weights=None).state_dict(), path)
    with pytest.raises(
        CheckpointError,
        match="does not fit 'resnet18': its keys and shapes are those of mobilenet_v3_small with 1000 classes",
    ):
        load_model("resnet18")


def test_allow_download_fails_fast_offline():
    """With sockets and name lookups blocked (the fixture), ``allow_download=True`` fails at once
    with the download's reason and today's instructions; nothing is left in the cache. The full
    download flow runs against a loopback server in tests/models/test_downloads.py."""
    with pytest.raises(
        WeightsNotAvailableError, match=r"Downloading the weights of 'resnet18' failed.*expected the file"
    ):
        load_model("resnet18", allow_download=True)
    folder = weights_file("resnet18").parent
    assert not folder.exists() or list(folder.iterdir()) == []


# ----------------------------------------------------------------------------- bundled models


def test_bundled_entries_and_loading(tmp_path, monkeypatch):
    """Random weights are saved to a temporary file and weights_path is pointed at it, so the
    loading path is checked against known weights (not only the bundled file)."""
    from safetensors.torch import save_file

    entries = list_models()
    assert [e.name for e in entries[:2]] == ["scenes_vgg", "scenes_resnet"]
    assert all(e.source == "bundled" and e.input_size == (128, 128) for e in entries[:2])
    assert entries[0].expected_file == str(sm.weights_path("scenes_vgg"))

    torch.manual_seed(4)
    ref = sm.build("scenes_vgg").eval()
    fake = tmp_path / "scenes_vgg.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(fake))
    monkeypatch.setattr(sm, "weights_path", lambda name: fake)

    assert {e.name: e for e in list_models()}["scenes_vgg"].available is True
    lm = load_model("scenes_vgg")
    assert lm.source == "bundled"
    assert lm.input_size == (128, 128)
    assert lm.class_names == tuple(scenes.CLASS_NAMES)
    assert lm.default_layer == sm.DEFAULT_LAYERS["scenes_vgg"]
    assert lm.mean == tuple(sm.MEAN) and lm.std == tuple(sm.STD)
    assert _same_outputs(ref, lm.model, size=128)


def test_bundled_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(sm, "weights_path", lambda name: tmp_path / "nope.safetensors")
    assert {e.name: e for e in list_models()}["scenes_resnet"].available is False
    with pytest.raises(WeightsNotAvailableError, match="nope.safetensors"):
        load_model("scenes_resnet")


# ----------------------------------------------------------------------------- checkpoints: good


def test_checkpoint_from_path_bytes_and_uploads(tmp_path, resnet18_10):
    data = _saved(resnet18_10.state_dict())
    p = tmp_path / "mine.pt"
    p.write_bytes(data)

    class Upload(io.BytesIO):
        name = "mine.pt"

    up = Upload(data)
    up.read()  # position at the end
    with open(p, "rb") as fh:
        loaded = [
            load_checkpoint(p, arch="resnet18", num_classes=10),
            load_checkpoint(str(p), arch="resnet18", num_classes=10),
            load_checkpoint(data, arch="resnet18", num_classes=10),
            load_checkpoint(up, arch="resnet18", num_classes=10),
            load_checkpoint(fh, arch="resnet18", num_classes=10),
        ]
    digest = hashlib.sha256(data).hexdigest()
    for lm in loaded:
        assert lm.source == "checkpoint"
        assert lm.digest == digest
        assert lm.name == f"resnet18-{digest[:8]}"
        assert lm.class_names == tuple(f"class {i}" for i in range(10))
        assert lm.default_layer == "layer4"
        assert lm.input_size == (224, 224) and lm.mean == IMAGENET_MEAN and lm.std == IMAGENET_STD
        assert _same_outputs(resnet18_10, lm.model)
    assert "'mine.pt'" in loaded[0].note and digest[:12] in loaded[0].note


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict"])
def test_checkpoint_wrapped_state_dict(resnet18_10, key):
    data = _saved({"epoch": 7, "optimizer": {"lr": 0.1}, key: resnet18_10.state_dict()})
    assert _same_outputs(resnet18_10, load_checkpoint(data, arch="resnet18", num_classes=10).model)


def test_checkpoint_dataparallel_prefix(resnet18_10):
    data = _saved({f"module.{k}": v for k, v in resnet18_10.state_dict().items()})
    assert _same_outputs(resnet18_10, load_checkpoint(data, arch="resnet18", num_classes=10).model)


def test_checkpoint_safetensors_file_and_half_precision(tmp_path, resnet18_10):
    from safetensors.torch import save, save_file

    p = tmp_path / "mine.safetensors"
    save_file(resnet18_10.state_dict(), str(p))
    lm = load_checkpoint(p, arch="resnet18", num_classes=10, class_names=list("abcdefghij"))
    assert _same_outputs(resnet18_10, lm.model)
    assert lm.class_names == tuple("abcdefghij")
    assert "safetensors" in lm.note

    half = save({k: (v.half() if v.is_floating_point() else v) for k, v in resnet18_10.state_dict().items()})
    lm16 = load_checkpoint(half, arch="resnet18", num_classes=10)
    assert all(p.dtype == torch.float32 for p in lm16.model.parameters())
    with torch.no_grad():
        assert torch.allclose(lm16.model(_x()), resnet18_10(_x()), atol=0.05, rtol=0.05)


def test_checkpoint_overrides_and_generic_default_layer():
    torch.manual_seed(5)
    ref = get_model("resnet34", weights=None, num_classes=3).eval()  # not in the catalog
    lm = load_checkpoint(
        _saved(ref.state_dict()),
        arch="resnet34",
        num_classes=3,
        input_size=(96, 128),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        name="mine",
    )
    assert lm.name == "mine"
    assert lm.input_size == (96, 128) and lm.mean == (0.5, 0.5, 0.5) and lm.std == (0.25, 0.25, 0.25)
    assert lm.default_layer == "layer4"  # found by methods.cams.core.layers.default_layer
    assert lm.preprocess(np.zeros((10, 20, 3), np.uint8)).shape == (3, 96, 128)


def test_checkpoint_googlenet_without_aux_heads():
    torch.manual_seed(6)
    ref = get_model("googlenet", weights=None, num_classes=4, aux_logits=False, init_weights=False).eval()
    lm = load_checkpoint(_saved(ref.state_dict()), arch="googlenet", num_classes=4)
    assert _same_outputs(ref, lm.model)


# ----------------------------------------------------------------------------- checkpoints: refused


class _Payload:
    """Unpickling this would write a marker file: exactly what an attacker's checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, resnet18_10, monkeypatch, zipped):
    marker = tmp_path / "marker.txt"
    state = dict(resnet18_10.state_dict())
    state["payload"] = _Payload(marker)
    data = _saved(state, _use_new_zipfile_serialization=zipped)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # must not weaken our explicit choice

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(data, arch="resnet18", num_classes=10)
    msg = str(info.value)
    assert "this file contains Python objects that could run code" in msg
    assert "save only the state_dict: torch.save(model.state_dict(), path)" in msg.lower()
    assert not marker.exists()

    # control: the payload is live - an unsafe load really runs it (this proves the test's point)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    torch.load(io.BytesIO(data), weights_only=False)
    assert marker.read_text() == "pwned"


def test_malicious_cached_torchvision_file(tmp_path):
    marker = tmp_path / "marker2.txt"
    path = weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save({"x": _Payload(marker)}, path)
    with pytest.raises(WeightsNotAvailableError, match="could run code"):
        load_model("resnet18")
    assert not marker.exists()


def test_whole_pickled_model_is_refused(resnet18_10):
    with pytest.raises(CheckpointError, match=r"could run code \(it refers to torchvision\.models\.resnet\.ResNet\)"):
        load_checkpoint(_saved(resnet18_10), arch="resnet18", num_classes=10)


def test_num_classes_mismatch_is_explained(resnet18_10):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(_saved(resnet18_10.state_dict()), arch="resnet18", num_classes=1000)
    msg = str(info.value)
    assert "classifier 'fc.weight' has 10 outputs" in msg
    assert "(10, 512)" in msg and "(1000, 512)" in msg
    assert "pass num_classes=10" in msg
    assert "fc.bias" not in msg  # the bias is part of the same explanation, not a second problem


def test_num_classes_mismatch_conv_classifier():
    """SqueezeNet's classifier is a 1x1 conv; it is still recognised as the classifier."""
    torch.manual_seed(7)
    ref = get_model("squeezenet1_1", weights=None, num_classes=5)
    with pytest.raises(CheckpointError, match=r"classifier 'classifier\.1\.weight' has 5 outputs.*num_classes=5"):
        load_checkpoint(_saved(ref.state_dict()), arch="squeezenet1_1", num_classes=7)


@pytest.mark.parametrize("arch", ["resnet34", "resnet50", "vgg11"])
def test_wrong_architecture_is_one_sentence_naming_the_files_architecture(resnet18_10, arch):
    """A resnet18 file (10 classes) given as another architecture: one sentence naming resnet18,
    not a list of 80 missing keys or "num_classes=10 expects shape (10, 2048); pass num_classes=10"
    (what the audit saw for resnet50)."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(_saved(resnet18_10.state_dict()), arch=arch, num_classes=10)
    assert str(info.value) == (
        f"The uploaded checkpoint does not fit arch={arch!r}: its keys and shapes are those "
        "of resnet18 with 10 classes: choose arch='resnet18'."
    )
    with pytest.raises(
        CheckpointError, match=r"those of resnet18 with 10 classes: choose arch='resnet18' and num_classes=10\.$"
    ):
        load_checkpoint(_saved(resnet18_10.state_dict()), arch=arch, num_classes=1000)


def test_same_keys_different_widths_are_told_apart():
    """wide_resnet50_2 has resnet50's keys; only the shapes say which one a file is."""
    state = get_model("wide_resnet50_2", weights=None, num_classes=3).state_dict()
    with pytest.raises(
        CheckpointError, match=r"those of wide_resnet50_2 with 3 classes: choose arch='wide_resnet50_2'\.$"
    ):
        load_checkpoint(_saved(state), arch="resnet50", num_classes=3)


def test_shape_mismatch_inside_the_network(resnet18_10):
    state = dict(resnet18_10.state_dict())
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(
        CheckpointError, match=r"'conv1\.weight' is \(64, 3, 5, 5\) in the file, the model needs \(64, 3, 7, 7\)"
    ):
        load_checkpoint(_saved(state), arch="resnet18", num_classes=10)


def test_unexpected_keys(resnet18_10):
    state = dict(resnet18_10.state_dict())
    state["extra_head.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\): 'extra_head\.weight'"):
        load_checkpoint(_saved(state), arch="resnet18", num_classes=10)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", "empty"),
        (b"hello, not a checkpoint", "not a readable PyTorch checkpoint"),
        (b"PK\x03\x04truncated zip", "not a readable PyTorch checkpoint"),
        (None, "truncated or corrupt"),  # half of a real checkpoint
        (_saved([1, 2, 3]), "expected a state_dict"),
        (_saved({"epoch": 3}), "no state_dict found"),
    ],
)
def test_unreadable_checkpoints(resnet18_10, data, pattern):
    if data is None:
        full = _saved(resnet18_10.state_dict())
        data = full[: len(full) // 2]
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(data, arch="resnet18", num_classes=10)


def test_truncated_safetensors(resnet18_10):
    from safetensors.torch import save

    data = save(resnet18_10.state_dict())
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(data[: len(data) // 2], arch="resnet18", num_classes=10)


def test_checkpoint_argument_validation(tmp_path):
    with pytest.raises(UnknownModelError, match=r"'resnt18'.*'resnet18'"):
        load_checkpoint(b"x", arch="resnt18", num_classes=10)
    with pytest.raises(ValueError, match="num_classes"):
        load_checkpoint(b"x", arch="resnet18", num_classes=0)
    with pytest.raises(ValueError, match="class_names has 2 names but num_classes=3"):
        load_checkpoint(b"x", arch="resnet18", num_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="std"):
        load_checkpoint(b"x", arch="resnet18", num_classes=3, std=(1, 1))
    with pytest.raises(CheckpointError, match="No such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pt", arch="resnet18", num_classes=3)


# ----------------------------------------------------------------------------- preprocessing


def _lm(size=(4, 6), mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0)) -> LoadedModel:
    return LoadedModel("tiny", nn.Conv2d(3, 1, 1), size, mean, std, ("a", "b"), "0", "checkpoint")


def test_preprocess_normalization_exact_values():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
    x = _lm().preprocess(img)
    assert x.shape == (3, 4, 6) and x.dtype == torch.float32
    expected = (img.astype(np.float32) / 255.0 - np.array([0.5, 0.25, 0.0], np.float32)) / np.array(
        [0.5, 0.25, 1.0], np.float32
    )
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-6)


def test_preprocess_resizes_whole_image_no_centre_crop():
    """A 16-pixel red band along the top of a 256x256 image survives at 224x224: torchvision's
    resize(256) + centre_crop(224) would have cut it off (16 px on each side)."""
    img = np.full((256, 256, 3), 255, np.uint8)
    img[:16] = (255, 0, 0)
    lm = _lm(size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    back = lm.denormalize(lm.preprocess(img))  # (224, 224, 3)
    assert back.shape == (224, 224, 3)
    assert np.all(back[:12, :, 1] < 10)  # 16 * 224/256 = 14 red rows
    assert np.all(back[16:, :, 1] > 245)


def test_preprocess_downscale_is_antialiased():
    """A 1-pixel checkerboard shrunk 3x must come out grey (each output pixel averages its
    footprint, as PIL's bilinear does); plain bilinear would sample single pixels (0 or 255)."""
    board = (np.indices((672, 672)).sum(0) % 2 * 255).astype(np.uint8)
    img = np.repeat(board[:, :, None], 3, axis=2)
    lm = _lm(size=(224, 224), mean=(0, 0, 0), std=(1, 1, 1))
    x = lm.preprocess(img) * 255  # (3, 224, 224) back in 0..255
    assert abs(float(x.mean()) - 127.5) < 2
    assert float(x.std()) < 5  # measured 1.6; plain bilinear gives 127.5


def test_preprocess_non_square_and_constant_images():
    lm = _lm(size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1))
    x = lm.preprocess(np.full((30, 7, 3), 51, np.uint8))
    assert x.shape == (3, 8, 8)
    torch.testing.assert_close(x, torch.full((3, 8, 8), 0.2), rtol=0, atol=1e-6)


def test_denormalize_roundtrip_and_batch():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (4, 6, 3), dtype=np.uint8) for _ in range(3)]
    lm = _lm()
    batch = lm.preprocess_batch(imgs)
    assert batch.shape == (3, 3, 4, 6)
    back = lm.denormalize(batch)
    assert back.shape == (3, 4, 6, 3) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, np.stack(imgs))
    np.testing.assert_array_equal(lm.denormalize(batch[0]), imgs[0])
    # values outside the image range are clipped, not wrapped
    assert lm.denormalize(torch.full((3, 2, 2), 100.0)).max() == 255
    assert lm.denormalize(torch.full((3, 2, 2), -100.0)).min() == 0


def test_preprocess_batch_mixed_sizes():
    lm = _lm()
    batch = lm.preprocess_batch([np.zeros((10, 10, 3), np.uint8), np.zeros((3, 50, 3), np.uint8)])
    assert batch.shape == (2, 3, 4, 6)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 6), np.uint8),
        np.zeros((4, 6, 4), np.uint8),
        np.zeros((4, 6, 3), np.float32),
        np.zeros((0, 6, 3), np.uint8),
    ],
)
def test_preprocess_rejects_wrong_arrays(bad):
    with pytest.raises(ValueError, match=r"uint8 array of shape \(H, W, 3\)"):
        _lm().preprocess(bad)


def test_preprocess_batch_and_denormalize_validation():
    with pytest.raises(ValueError, match="empty"):
        _lm().preprocess_batch([])
    with pytest.raises(ValueError, match=r"\(3, h, w\)"):
        _lm().denormalize(torch.zeros(4, 5))


def test_loaded_model_validation_and_identity():
    with pytest.raises(ValueError, match="source"):
        LoadedModel("x", nn.Conv2d(3, 1, 1), (4, 4), (0, 0, 0), (1, 1, 1), ("a",), "0", "internet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std must be positive"):
        LoadedModel("x", nn.Conv2d(3, 1, 1), (4, 4), (0, 0, 0), (1, 0, 1), ("a",), "0", "bundled")
    with pytest.raises(ValueError, match="input_size"):
        LoadedModel("x", nn.Conv2d(3, 1, 1), (4, 0), (0, 0, 0), (1, 1, 1), ("a",), "0", "bundled")
    a, b = _lm(), _lm()
    assert a != b and len({a: 1, b: 2}) == 2  # identity semantics: usable as a cache value/key
    assert LoadedModel("x", nn.Conv2d(3, 1, 1), 5, [0, 0, 0], [1, 1, 1], ["a"], "0", "bundled").input_size == (5, 5)
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]


def test_no_network_guard_is_active():
    """The autouse fixture really blocks sockets (so the offline tests above mean something)."""
    s = socket.socket()
    try:
        with pytest.raises(AssertionError, match="network"):
            s.connect(("127.0.0.1", 9))
    finally:
        s.close()
    assert os.environ["TORCH_HOME"].endswith("torch_home")
