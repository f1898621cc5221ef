"""Your own checkpoint for a timm architecture: ``load_checkpoint(..., arch="timm:<name>")``.

Random timm models (``timm.create_model(name, pretrained=False, num_classes=5)``) are saved as a
state_dict, loaded through the library (weights_only, meta-device build) and explained. Nothing
touches the network: sockets and name lookups fail the test.
"""

from __future__ import annotations

import io
import socket

import pytest
import torch

import methods
from methods.errors import CheckpointError, UnknownModelError
from methods.models import checkpoint_architectures, load_checkpoint


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    def blocked(*args, **kwargs):
        raise AssertionError("a test attempted a network connection or name lookup")

    monkeypatch.setattr(socket.socket, "connect", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)


def _random(arch: str, seed: int, **kwargs) -> torch.nn.Module:
    import timm

    torch.manual_seed(seed)
    return timm.create_model(arch, pretrained=False, num_classes=5, **kwargs).eval()


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize(("arch", "layer", "grid"), [("regnetx_002", "s4", 2), ("convnext_nano", "stages.3", 2)])
def test_timm_checkpoint_round_trip_and_explain(arch, layer, grid, monkeypatch):
    """Same outputs as the saved model, read with weights_only=True, default layer from the
    generic rule, and a Grad-CAM map there (64 x 64 input -> a 2 x 2 grid at stride 32)."""
    ref = _random(arch, seed=3)
    data = _saved(ref.state_dict())
    calls: list[dict] = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    lm = load_checkpoint(data, arch=f"timm:{arch}", num_classes=5, class_names=list("abcde"), input_size=64)
    # one read of the declarations (meta tensors, no data) and one of the data: both weights_only
    assert len(calls) == 2 and all(c["weights_only"] is True for c in calls)
    assert lm.source == "checkpoint" and lm.domain == "unknown" and lm.name.startswith(f"timm:{arch}-")
    assert lm.default_layer == layer and lm.class_names == tuple("abcde")
    assert not any(t.is_meta for t in list(lm.model.parameters()) + list(lm.model.buffers()))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # (2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(lm.model(x), ref(x))
    exp = methods.explain(lm, x, "gradcam", target=[1, 4])
    assert exp.layers == (layer,) and exp.maps[layer].shape == (2, grid, grid)
    assert torch.isfinite(exp.maps[layer]).all() and exp.maps[layer].abs().sum() > 0
    assert exp.targets.tolist() == [1, 4]


def test_timm_name_with_a_pretrained_tag():
    ref = _random("resnet18", seed=4)
    lm = load_checkpoint(_saved(ref.state_dict()), arch="timm:resnet18.a1_in1k", num_classes=5, input_size=64)
    assert lm.default_layer == "layer4"
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(lm.model(x), ref(x))


def test_timm_errors_are_explained():
    data = _saved(_random("regnetx_002", seed=5).state_dict())
    with pytest.raises(UnknownModelError, match=r"unknown timm architecture 'timm:regnetx_02'.*'regnetx_002'"):
        load_checkpoint(data, arch="timm:regnetx_02", num_classes=5)
    with pytest.raises(CheckpointError, match=r"classifier 'head\.fc\.weight' has 5 outputs.*pass num_classes=5"):
        load_checkpoint(data, arch="timm:regnetx_002", num_classes=7)
    with pytest.raises(CheckpointError, match=r"does not fit arch='timm:regnety_002'.*missing key"):
        load_checkpoint(data, arch="timm:regnety_002", num_classes=5)
    with pytest.raises(UnknownModelError, match=r"or 'timm:' followed by a timm model name"):
        load_checkpoint(data, arch="convnext_nan", num_classes=5)


def test_menu_lists_a_short_timm_list_only():
    archs = checkpoint_architectures()
    import timm

    timm_archs = [a for a in archs if a.startswith("timm:")]
    assert len(timm_archs) < 20 < len(timm.list_models())
    assert all(timm.is_model(a.split(":", 1)[1]) for a in timm_archs)


@pytest.mark.parametrize(
    ("arch", "layer", "grid"),
    [
        ("vit_tiny_patch16_224", "blocks.11.norm1", 14),  # tokens: class token + 14 x 14
        ("deit_tiny_distilled_patch16_224", "blocks.11.norm1", 14),  # class + distillation tokens
        ("swin_tiny_patch4_window7_224", "layers.3", 7),  # channels last (N, 7, 7, 768)
    ],
)
def test_timm_transformer_checkpoints_load_and_explain(arch, layer, grid):
    """Vision transformers load like CNNs; their default layer is the family's (docs/transformers.md)
    and the map is on the patch grid, not a (7, 768) misreading."""
    ref = _random(arch, seed=5)
    lm = load_checkpoint(_saved(ref.state_dict()), arch=f"timm:{arch}", num_classes=5, input_size=224)
    assert lm.default_layer == layer
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(lm.model(x), ref(x))
    exp = methods.explain(lm, x, "gradcam", target=2)
    assert exp.maps[layer].shape == (1, grid, grid) and exp.maps[layer].abs().sum() > 0
