"""The registry: specs, lookup errors with suggestions, and a user's plugin."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import methods
from methods.cams.core.registry import _REGISTRY, get_method, list_methods, register_method
from tiny_models import GapNet

BUILT_IN = [
    "gradcam",
    "gradcampp",
    "xgradcam",
    "hirescam",
    "layercam",
    "eigengradcam",
    "gradcam_elementwise",
    "smoothgradcampp",
    "cam",
    "scorecam",
    "sscam",
    "iscam",
    "ablationcam",
    "guidedbackprop",
    "guidedgradcam",
    "fullgrad",
    "rise",
    "occlusion",
    "eigencam",
    "random",
    "centre",
    "rollout",
    "chefer",
    "legrad",
]


def test_the_24_built_in_methods_are_registered_with_complete_specs():
    names = [s.name for s in list_methods()]
    assert names[: len(BUILT_IN)] == BUILT_IN and len(BUILT_IN) == 24
    for spec in list_methods():
        assert spec.label and spec.cost and spec.summary
        assert spec.family in ("gradient", "activation", "score", "pixel", "baseline", "attention")
        if spec.family == "gradient":
            assert spec.needs_gradients
        if spec.family in ("score", "activation", "baseline"):
            assert not spec.needs_gradients
        if spec.family != "baseline" or spec.name == "eigencam":
            assert spec.paper.startswith("https://")
        assert get_method(spec.name) is spec and spec.cls.spec is spec
        assert spec.resolution == ("input" if spec.family == "pixel" else "layer")


def test_spec_flags_of_the_new_families():
    slow = {s.name for s in list_methods() if s.slow}
    assert slow == {"scorecam", "sscam", "iscam", "ablationcam", "rise", "occlusion"}
    independent = {s.name for s in list_methods() if s.layer_independent}
    assert independent == {"guidedbackprop", "fullgrad", "rise", "occlusion"}
    agnostic = {s.name for s in list_methods() if s.class_agnostic}
    assert agnostic == {"guidedbackprop", "fullgrad", "eigencam", "random", "centre", "rollout"}
    assert {s.name for s in list_methods() if s.requires is not None} == {"rollout", "chefer", "legrad"}
    assert [s.name for s in list_methods() if s.final_layer_only] == ["cam"]
    with pytest.raises(ValueError, match="layer_independent=True needs resolution='input'"):
        register_method(name="badflags", label="x", family="gradient", cost="x", summary="x", layer_independent=True)


def test_every_gradient_family_method_has_the_smoothing_options():
    for spec in list_methods(family="gradient"):
        assert "aug_smooth" in spec.option_names
        if spec.name != "eigengradcam":  # already the principal component
            assert "eigen_smooth" in spec.option_names


def test_family_filter():
    assert [s.name for s in list_methods(family="gradient")] == BUILT_IN[:8]
    assert [s.name for s in list_methods(family="pixel")] == [
        "guidedbackprop",
        "guidedgradcam",
        "fullgrad",
        "rise",
        "occlusion",
    ]
    with pytest.raises(ValueError, match="family='grad'"):
        list_methods(family="grad")


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_method("gradcam").label = "x"


def test_unknown_name_suggests_closest():
    with pytest.raises(methods.UnknownMethodError) as info:
        get_method("grad_cam++")
    assert "'grad_cam++'" in str(info.value) and "Did you mean" in str(info.value) and "gradcam" in str(info.value)
    with pytest.raises(methods.UnknownMethodError, match="Registered methods: .*layercam"):
        get_method("zzz")


def test_user_plugin_registers_with_one_decorator():
    @register_method(
        name="maxgrad_test",
        label="MaxGrad",
        family="gradient",
        cost="1 fwd + 1 bwd",
        summary="Channel weights = max of the gradient.",
    )
    class MaxGrad(methods.GradientMethod):
        def compute(self, activations, gradients):
            return torch.einsum("nc,nchw->nhw", gradients.amax(dim=(2, 3)), activations)

    try:
        assert "maxgrad_test" in [s.name for s in list_methods(family="gradient")]
        net = GapNet()
        x = torch.randn(1, 3, 16, 16)
        exp = methods.explain(net, x, "maxgrad_test", layers=["features.4"], target=0)
        rec = methods.record(net, x, ["features.4"], target=0)
        a, g = rec.activations["features.4"], rec.gradients["features.4"]
        torch.testing.assert_close(exp.maps["features.4"], torch.einsum("nc,nchw->nhw", g.amax(dim=(2, 3)), a))
    finally:
        _REGISTRY.pop("maxgrad_test", None)


def test_bad_registrations():
    with pytest.raises(ValueError, match="lower_snake_case"):
        register_method(name="Bad-Name", label="x", family="gradient", cost="x", summary="x")
    with pytest.raises(ValueError, match="family"):
        register_method(name="okname", label="x", family="magic", cost="x", summary="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):

        @register_method(name="gradcam", label="x", family="gradient", cost="x", summary="x")
        class Clash(methods.GradientMethod):
            pass


def test_option_validation():
    with pytest.raises(TypeError, match="valid options: seed"):
        methods.create_method("random", sed=1)
    with pytest.raises(ValueError, match="seed=.a. is not valid; expected an int"):
        methods.create_method("random", seed="a")
    with pytest.raises(ValueError, match="sigma=0 is not valid; expected a number > 0"):
        methods.create_method("centre", sigma=0)
