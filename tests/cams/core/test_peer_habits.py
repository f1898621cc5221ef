"""pytorch-grad-cam and torch-cam habits (issue 25): module objects as layers, the peers' method
names as aliases, and messages that name a module by its class instead of printing it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import methods
from methods.cams.core import registry
from methods.cams.core.registry import get_method
from methods.errors import LayerError, UnknownMethodError
from tiny_models import GapNet


def _same_maps(a: methods.Explanation, b: methods.Explanation) -> None:
    assert a.layers == b.layers
    for layer in a.layers:
        torch.testing.assert_close(a.maps[layer], b.maps[layer], rtol=0, atol=0)


def test_a_module_object_is_the_layer_of_its_name():
    """``layers=model.features[2]`` (pytorch-grad-cam's ``target_layers`` habit) was refused with
    "a layer name must be a non-empty string" and the module's printout; it is the layer
    ``features.2``, the maps equal those of the name."""
    net, x = GapNet(classes=4, seed=3), torch.randn(2, 3, 12, 12)
    by_name = methods.explain(net, x, "gradcam", layers="features.2", target=1)
    _same_maps(methods.explain(net, x, "gradcam", layers=net.features[2], target=1), by_name)
    _same_maps(methods.explain(net, x, "gradcam", layers=[net.features[2]], target=1), by_name)
    mixed = methods.explain_many(net, x, ["gradcam", "layercam"], layers=[net.features[4], "features.2"], target=1)
    assert mixed["layercam"].layers == ("features.4", "features.2")
    torch.testing.assert_close(mixed["gradcam"].maps["features.2"], by_name.maps["features.2"], rtol=0, atol=0)


def test_a_sequential_is_one_layer_not_a_list_of_its_children():
    """An ``nn.Sequential`` iterates its children; ``layers=model.features`` is ONE layer."""
    net, x = GapNet(classes=4, seed=3), torch.randn(1, 3, 12, 12)
    exp = methods.explain(net, x, "gradcam", layers=net.features, target=0)
    assert exp.layers == ("features",)
    _same_maps(exp, methods.explain(net, x, "gradcam", layers="features", target=0))


def test_record_accepts_modules_too():
    net, x = GapNet(classes=3, seed=1), torch.randn(1, 3, 8, 8)
    rec = methods.record(net, x, [net.features[1]], target=2)
    ref = methods.record(net, x, ["features.1"], target=2)
    assert list(rec.activations) == ["features.1"]
    torch.testing.assert_close(rec.gradients["features.1"], ref.gradients["features.1"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "layers, names",
    [
        (lambda net: [nn.Conv2d(3, 8, 3)], "a Conv2d module is not inside the model"),
        (lambda net: GapNet().features[0], "a Conv2d module is not inside the model"),  # equal, not the same
        (lambda net: net, "a GapNet module is the model itself"),
        (lambda net: [net.features[0], net.features[0]], "'features.0', 'features.0'] contain duplicates"),
    ],
)
def test_module_errors_are_one_line_naming_the_class(layers, names):
    net = GapNet(classes=3, seed=1)
    with pytest.raises(LayerError) as info:
        methods.explain(net, torch.randn(1, 3, 8, 8), "gradcam", layers=layers(net))
    text = str(info.value)
    assert names in text
    assert "\n" not in text and "kernel_size" not in text and len(text) < 300


def test_no_message_prints_a_module():
    """A module where a name, a method or a target is expected: its class, never its printout."""
    net, x = GapNet(classes=3, seed=1), torch.randn(1, 3, 8, 8)
    calls = [
        lambda: methods.explain(net, x, net.features),  # a module as the method
        lambda: methods.explain(net, x, "gradcam", layers="features.0", target=net.fc),
        lambda: methods.explain(net, x, "gradcam", layers="features.0").upsampled(net.features[0]),
        lambda: methods.explain(net, x, "gradcam", layers=[3]),
    ]
    for call in calls:
        with pytest.raises(methods.GradLensError) as info:
            call()
        text = str(info.value)
        assert "\n" not in text and "kernel_size" not in text and "in_features" not in text, text
    with pytest.raises(UnknownMethodError, match="unknown method a Sequential module"):
        calls[0]()


#: pytorch-grad-cam's class names (pytorch_grad_cam/__init__.py) of the methods GradLens has
GRAD_CAM = {
    "GradCAM": "gradcam",
    "GradCAMPlusPlus": "gradcampp",
    "XGradCAM": "xgradcam",
    "HiResCAM": "hirescam",
    "LayerCAM": "layercam",
    "EigenCAM": "eigencam",
    "EigenGradCAM": "eigengradcam",
    "GradCAMElementWise": "gradcam_elementwise",
    "ScoreCAM": "scorecam",
    "AblationCAM": "ablationcam",
    "FullGrad": "fullgrad",
    "GuidedBackpropReLUModel": "guidedbackprop",
    "RandomCAM": "random",
}
#: torch-cam's (torchcam/methods/__init__.py)
TORCH_CAM = {
    "CAM": "cam",
    "GradCAM": "gradcam",
    "GradCAMpp": "gradcampp",
    "SmoothGradCAMpp": "smoothgradcampp",
    "XGradCAM": "xgradcam",
    "LayerCAM": "layercam",
    "ScoreCAM": "scorecam",
    "SSCAM": "sscam",
    "ISCAM": "iscam",
}


@pytest.mark.parametrize("alias, key", sorted({**GRAD_CAM, **TORCH_CAM}.items()))
def test_peer_names_are_aliases_of_the_same_method(alias, key):
    assert get_method(alias) is get_method(key)
    assert get_method(alias.upper()) is get_method(key)  # case does not matter


def test_the_alias_table_lives_in_the_registry_and_points_at_registered_keys():
    table = registry.ALIASES
    assert {**GRAD_CAM, **TORCH_CAM}.items() <= table.items()
    assert set(table.values()) <= {s.name for s in methods.list_methods()}


def test_explain_with_an_alias_equals_the_key():
    net, x = GapNet(classes=4, seed=2), torch.randn(1, 3, 12, 12)
    alias = methods.explain(net, x, "GradCAMPlusPlus", layers="features.4", target=2)
    key = methods.explain(net, x, "gradcampp", layers="features.4", target=2)
    assert alias.method == "gradcampp"
    _same_maps(alias, key)
    many = methods.explain_many(
        net, x, ["XGradCAM", "RandomCAM"], layers="features.4", target=2, options={"RandomCAM": {"seed": 4}}
    )
    assert sorted(many) == ["random", "xgradcam"]
    assert many["random"].options["seed"] == 4
    assert methods.create_method("SmoothGradCAMpp", num_samples=2).spec.name == "smoothgradcampp"
    with pytest.raises(methods.OptionError, match="duplicates"):
        methods.explain_many(net, x, ["GradCAM", "gradcam"], layers="features.4")


def test_unknown_names_still_get_suggestions():
    with pytest.raises(UnknownMethodError, match=r"unknown method 'KPCA_CAM'\. Did you mean"):
        get_method("KPCA_CAM")
    with pytest.raises(UnknownMethodError, match="Did you mean 'gradcampp'"):
        get_method("gradcamp")
