"""Detection and segmentation models: the LoadedModel task field, torchvision detectors and segmenters
from checkpoints (weights_only, declarations checked first) and their COCO/VOC weights through the
download flow (a loopback server; nothing else is reachable)."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch
from torchvision.models import get_model

from loopback_kit import block_network, loopback_server
from methods.errors import CheckpointError, OptionError
from methods.models import downloads, list_models, load_checkpoint, load_model, weights_file
from methods.models.downloads import WeightsSource
from methods.models.loaded import LoadedModel
from methods.models.task_zoo import TASK_MODELS, task_layers


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_task_field_defaults_and_checks():
    net = torch.nn.Conv2d(3, 2, 1)
    lm = LoadedModel("m", net, (8, 8), (0, 0, 0), (1, 1, 1), ("a", "b"), "", "checkpoint")
    assert lm.task == "classification"
    with pytest.raises(OptionError, match="task must be one of"):
        LoadedModel("m", net, (8, 8), (0, 0, 0), (1, 1, 1), ("a", "b"), "", "checkpoint", task="pose")
    tasks = {e.name: e.task for e in list_models()}
    assert tasks["scenes_vgg"] == "classification" and tasks["resnet18"] == "classification"
    assert tasks["scenes_det"] == "detection" and tasks["scenes_seg"] == "segmentation"
    assert tasks["fasterrcnn_mobilenet_v3_large_fpn"] == "detection" and tasks["fcn_resnet50"] == "segmentation"


def test_task_layers_agree_with_the_table():
    """The structural rule (used for checkpoints) gives the catalog's default layers."""
    for name in (
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "retinanet_resnet50_fpn",
        "lraspp_mobilenet_v3_large",
        "ssdlite320_mobilenet_v3_large",
    ):
        with torch.device("meta"):
            net = get_model(name, weights=None, weights_backbone=None)
        layer, blocks = task_layers(net)
        assert layer == TASK_MODELS[name].default_layer, name
        assert dict(net.named_modules())[layer] is not None
        if "fpn" in name:
            assert blocks and all(b.startswith("backbone.fpn.layer_blocks.") for b in blocks)


def test_detector_checkpoint_weights_only_and_declarations():
    """A Faster R-CNN with random weights and 3 classes: loaded from bytes (weights_only), same boxes
    as the original; a wrong num_classes is refused before the tensors are read, naming the layer."""
    torch.manual_seed(0)
    ref = get_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None, num_classes=3).eval()
    data = _bytes(ref.state_dict())
    lm = load_checkpoint(data, arch="fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=3, input_size=160)
    assert lm.task == "detection" and lm.default_layer == "backbone.body.16"
    assert lm.mean == (0.0, 0.0, 0.0) and lm.std == (1.0, 1.0, 1.0)  # the detector normalises inside
    ref.roi_heads.score_thresh = lm.model.roi_heads.score_thresh = 0.0
    x = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = ref(x)[0], lm.model(x)[0]
    assert a["boxes"].shape[0] > 0 and torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
    with pytest.raises(CheckpointError, match=r"cls_score.weight' is \(3, 1024\).*count the background"):
        load_checkpoint(data, arch="fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=5)
    with pytest.raises(OptionError, match="normalises its input inside"):
        load_checkpoint(data, arch="fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=3, mean=(0.5, 0.5, 0.5))
    evil = _bytes({"w": torch.zeros(1), "x": torch.nn.ReLU()})  # a module object: code, not tensors
    with pytest.raises(CheckpointError):
        load_checkpoint(evil, arch="fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=3)


def test_segmenter_checkpoint():
    torch.manual_seed(0)
    ref = get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=4).eval()
    lm = load_checkpoint(_bytes(ref.state_dict()), arch="lraspp_mobilenet_v3_large", num_classes=4, input_size=96)
    assert lm.task == "segmentation" and lm.default_layer == "backbone.16"
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(ref(x)["out"], lm.model(x)["out"])


@pytest.fixture
def loopback(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    refused = block_network(monkeypatch)
    with loopback_server() as srv:
        yield srv
    assert refused == []


def test_detector_weights_download_then_load(loopback, monkeypatch):
    """SSDlite's COCO weights (here: a random state_dict with COCO's 91 labels) through download_weights
    on the loopback server: hash-checked into the cache, then load_model builds the detector from it."""
    name = "ssdlite320_mobilenet_v3_large"
    real = downloads.weights_source("fcn_resnet50")  # the published file: its sha256 prefix is checked
    assert real.url.endswith("fcn_resnet50_coco-1167a1af.pth") and real.sha256_prefix == "1167a1af"
    torch.manual_seed(0)
    ref = get_model(name, weights=None, weights_backbone=None, num_classes=91).eval()
    loopback.payload = _bytes(ref.state_dict())
    sha = hashlib.sha256(loopback.payload).hexdigest()
    path = weights_file(name)
    src = WeightsSource(name, f"http://127.0.0.1:{loopback.server_port}/ok/{path.name}", path, sha[:8], None)
    monkeypatch.setattr(downloads, "weights_source", lambda n: src)
    lm = load_model(name, allow_download=True)
    assert path.is_file() and lm.task == "detection" and lm.class_names[1] == "person"
    assert lm.default_layer == "backbone.features.1" and lm.input_size == (320, 320)
    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(ref(x)[0]["scores"], lm.model(x)[0]["scores"])


def test_batch_and_evaluate_refuse_a_detector_clearly():
    from methods.pipeline.common import load_model_arg

    with pytest.raises(OptionError, match="scenes_det is a detection model: batch and evaluate explain a classifier"):
        load_model_arg("scenes_det")
    assert load_model_arg("scenes_vgg").task == "classification"
