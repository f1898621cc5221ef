"""explain / explain_many: one pass for many methods, equal to separate calls; the Explanation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import methods
from methods.cams.core.recorder import LayerError
from tiny_models import GapNet

#: every method that answers at any layer with a bounded number of passes (the score family, RISE
#: and occlusion run their own many forwards; CAM works only at the layer in front of the head)
RECORDED = [
    s.name
    for s in methods.list_methods()
    if s.family != "score" and not s.slow and not s.final_layer_only and s.requires is None  # CNN-wide methods
]
#: those that add no pass to the call's one recorded forward + backward (Smooth Grad-CAM++ runs its
#: noisy copies, guided backprop and Guided Grad-CAM their guided pass; FullGrad records in the shared one)
SHARED_PASS = [n for n in RECORDED if n not in ("smoothgradcampp", "guidedbackprop", "guidedgradcam")]


def test_explain_many_equals_separate_explain_calls():
    net = GapNet(classes=4, seed=5)
    x = torch.randn(3, 3, 16, 16)
    layers = ["features.0", "features.3", "features.5"]
    together = methods.explain_many(net, x, RECORDED, layers=layers, target=[0, 1, 3])
    for name in RECORDED:
        alone = methods.explain(net, x, name, layers=layers, target=[0, 1, 3])
        for layer in layers:
            torch.testing.assert_close(together[name].maps[layer], alone.maps[layer], rtol=0, atol=0)
        assert together[name].targets.tolist() == [0, 1, 3]


def test_cam_in_explain_many_equals_its_separate_call_at_the_head_layer():
    net = GapNet(classes=4, seed=5)
    x = torch.randn(3, 3, 16, 16)
    together = methods.explain_many(net, x, ["cam", "gradcam", "fullgrad"], layers=["features.5"], target=[0, 1, 3])
    for name in ("cam", "gradcam", "fullgrad"):
        alone = methods.explain(net, x, name, layers=["features.5"], target=[0, 1, 3])
        torch.testing.assert_close(together[name].maps["features.5"], alone.maps["features.5"], rtol=0, atol=0)


def test_explain_many_runs_one_forward_and_one_backward():
    net = GapNet()
    calls = {"fwd": 0}
    net.register_forward_hook(lambda *a: calls.__setitem__("fwd", calls["fwd"] + 1))
    methods.explain_many(net, torch.randn(2, 3, 16, 16), SHARED_PASS, layers=["features.0", "features.2", "features.4"])
    assert calls["fwd"] == 1


def test_batch_maps_equal_single_sample_maps():
    net = GapNet(seed=6)
    x = torch.randn(4, 3, 16, 16)
    batch = methods.explain(net, x, "gradcampp", layers=["features.2"])
    for i in range(4):
        one = methods.explain(net, x[i : i + 1], "gradcampp", layers=["features.2"], target=int(batch.targets[i]))
        torch.testing.assert_close(one.maps["features.2"][0], batch.maps["features.2"][i], rtol=1e-5, atol=1e-6)


def test_default_target_is_top1_and_logits_probs():
    net = GapNet()
    x = torch.randn(3, 3, 16, 16)
    exp = methods.explain(net, x, "gradcam", layers=["features.2"])
    with torch.no_grad():
        logits = net(x)
    assert exp.targets.tolist() == logits.argmax(1).tolist()
    torch.testing.assert_close(exp.logits, logits)
    torch.testing.assert_close(exp.probs, logits.softmax(1))
    assert exp.input_size == (16, 16) and exp.layers == ("features.2",)


def test_upsampled_is_bilinear_align_corners_false():
    exp = methods.explain(GapNet(), torch.randn(1, 3, 16, 16), "gradcam", layers=["features.2"])
    raw = exp.maps["features.2"]  # (1, 8, 8)
    expected = F.interpolate(raw[:, None], size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(exp.upsampled("features.2"), expected)
    assert exp.upsampled(size=(5, 7)).shape == (1, 5, 7)
    with pytest.raises(LayerError, match="not in this explanation"):
        exp.upsampled("features.0")


def test_maps_are_raw_and_signed():
    exp = methods.explain(GapNet(seed=1), torch.randn(2, 3, 16, 16), "hirescam", layers=["features.0"])
    m = exp.maps["features.0"]
    assert (m < 0).any() and (m > 0).any()


def test_loaded_model_like_object_uses_its_default_layer():
    class Loaded:
        model = GapNet()
        default_layer = "features.3"

    exp = methods.explain(Loaded(), torch.randn(1, 3, 16, 16))
    assert exp.layers == ("features.3",) and exp.maps["features.3"].shape == (1, 8, 8)


def test_bad_arguments():
    net = GapNet()
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(methods.UnknownMethodError, match="Did you mean 'gradcam'"):
        methods.explain(net, x, "gradcan", layers=["features.2"])
    with pytest.raises(ValueError, match="x must be"):
        methods.explain(net, x[0], "gradcam", layers=["features.2"])
    with pytest.raises(TypeError, match="unknown option"):
        methods.explain(net, x, "gradcam", layers=["features.2"], sead=3)
    with pytest.raises(LayerError, match="duplicates"):
        methods.explain(net, x, "gradcam", layers=["features.2", "features.2"])
    with pytest.raises(LayerError, match="empty"):
        methods.explain(net, x, "gradcam", layers=[])
    with pytest.raises(TypeError, match="nn.Module"):
        methods.explain("resnet", x, "gradcam")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_are_an_error_not_an_all_zero_map(bad):
    """Issue 26: NaN logits gave an all-zero map in silence (the NaN gradients were cleaned to 0);
    like a NaN input, they are now an error that says what the model returned and for which sample."""

    class BadNet(GapNet):
        def forward(self, x):
            out = super().forward(x)  # (N, K)
            return torch.cat([out[:1], out[1:] * torch.tensor(bad)])  # sample 1 only

    for name in RECORDED:
        with pytest.raises(
            methods.RecorderError, match=r"non-finite logits \(NaN or inf\) for 1 of 2 sample\(s\) \(sample 1\)"
        ):
            methods.explain(BadNet(), torch.randn(2, 3, 8, 8), name, layers=["features.2"], target=0)
    with pytest.raises(methods.RecorderError, match="non-finite logits"):
        methods.record(BadNet(), torch.randn(2, 3, 8, 8), ["features.2"], gradients=False)
