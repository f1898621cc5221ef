"""Task targets (methods.targets) on hand-set tiny models: scores and maps computed by hand.

Models: tests/task_models.py (a one-conv detector in torchvision's output format, a 1x1-conv
segmenter returning OrderedDict(out=...), a GAP embedder).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import methods
from methods.cams.perturb import rise_masks
from methods.errors import RecorderError, TargetError
from methods.targets import BoxTarget, ClassTarget, EmbeddingTarget, RegionTarget, detect
from task_models import BOX1, BOX2, BoxDetector, Embedder, PixelSegmenter


def _image(seed: int = 0, n: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_box_target_scores_the_matched_detection_and_its_similarities():
    x = _image()
    a = x.mean(dim=1)[0]  # (8, 8): the detector's conv
    out = BoxDetector()(x)
    s1 = float(a[2:6, 2:6].mean())
    assert float(BoxTarget(BOX1, 1).scores(out).detach()) == pytest.approx(s1, rel=1e-6)
    ref = (2.0, 2.0, 6.0, 8.0)  # IoU with BOX1 = 16 / 24
    assert float(BoxTarget(ref, 1, similarity="class_x_iou").scores(out).detach()) == pytest.approx(
        s1 * 2 / 3, rel=1e-6
    )
    assert float(BoxTarget(ref, 1, similarity="class_plus_iou").scores(out).detach()) == pytest.approx(
        s1 + 2 / 3, rel=1e-6
    )
    assert float(BoxTarget(BOX2, 2).scores(out).detach()) == pytest.approx(float(a.mean()), rel=1e-6)
    # the label must match: no class-1 box overlaps BOX2 with IoU >= 0.5 (16 / 64): 0, or an error when strict
    assert float(BoxTarget(BOX2, 1).scores(out).detach()) == 0.0
    with pytest.raises(TargetError, match="IoU 0.25 at most"):
        BoxTarget(BOX2, 1).scores(out, strict=True)


def test_hirescam_on_a_box_is_the_box_mean_gradient_times_the_activation():
    """y = mean_{BOX1} A, so dy/dA = 1/16 on the box, 0 elsewhere; HiResCAM = A / 16 on the box."""
    x = _image(1)
    exp = methods.explain(BoxDetector(), x, "hirescam", layers="conv", target=BoxTarget(BOX1, 1))
    a = x.mean(dim=1)[0]
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = a[2:6, 2:6] / 16
    torch.testing.assert_close(exp.maps["conv"][0], expected, rtol=1e-5, atol=1e-7)
    assert exp.logits.shape == (1, 1) and float(exp.logits) == pytest.approx(float(a[2:6, 2:6].mean()), rel=1e-6)
    assert torch.equal(exp.probs, exp.logits) and exp.targets.tolist() == [0]
    assert isinstance(exp.target, BoxTarget)


def test_rise_and_scorecam_reread_the_box_score_on_masked_inputs(fp32):
    """RISE on a box target = (1 / (N p)) sum_i s1(x o M_i) M_i with the raw score (no softmax)."""
    x = _image(2)
    det = BoxDetector()
    exp = methods.explain(det, x, "rise", target=BoxTarget(BOX1, 1), num_masks=40, cell=4, seed=3)
    masks = rise_masks(40, (8, 8), cell=4, p=0.5, seed=3)  # (40, 8, 8)
    s = (x * masks[:, None]).mean(dim=1)[:, 2:6, 2:6].mean(dim=(1, 2))  # (40,)
    expected = (s[:, None, None] * masks).sum(0) / (40 * 0.5)
    torch.testing.assert_close(exp.maps[exp.layers[0]][0], expected, rtol=1e-5, atol=1e-6)
    # Score-CAM at the conv (one channel A): w = s1(x o norm(A)), raw map = w A
    sc = methods.explain(det, x, "scorecam", layers="conv", target=BoxTarget(BOX1, 1))
    a = x.mean(dim=1)[0]
    h = (a - a.min()) / (a.max() - a.min())
    w = (x * h).mean(dim=1)[0, 2:6, 2:6].mean()
    torch.testing.assert_close(sc.maps["conv"][0], w * a, rtol=1e-5, atol=1e-6)


def test_a_detection_that_falls_below_the_threshold_scores_zero_on_masked_inputs(fp32):
    x = torch.full((1, 3, 8, 8), 0.5)
    det = BoxDetector(thresh=0.3)
    saliency = torch.zeros(8, 8)
    saliency[2:6, 2:6] = 1.0  # the box is deleted first
    curve = methods.deletion_curve(det, x, saliency, BoxTarget(BOX1, 1), steps=4, baseline="zero")
    # k pixels of the box set to 0: s1 = 0.5 (16 - k) / 16, dropped (0) once below 0.3
    assert curve.scores.tolist() == pytest.approx([0.5, 0.0, 0.0, 0.0, 0.0])  # 16 box pixels go at the first step
    curve = methods.deletion_curve(det, x, saliency, BoxTarget(BOX1, 1), steps=64, baseline="zero")
    expected = [0.5 * (16 - k) / 16 if 0.5 * (16 - k) / 16 >= 0.3 else 0.0 for k in range(17)]
    assert curve.scores[:17].tolist() == pytest.approx(expected)
    with pytest.raises(TargetError, match="no detection matches"):  # nothing to explain on the input itself
        methods.explain(det, torch.zeros(1, 3, 8, 8), "gradcam", layers="conv", target=BoxTarget(BOX1, 1))


def test_one_target_per_sample_equals_separate_calls():
    x = _image(3, n=2)
    targets = [BoxTarget(BOX1, 1), BoxTarget(BOX2, 2)]
    many = methods.explain_many(BoxDetector(), x, ["hirescam", "gradcam"], layers="conv", target=targets)
    for i, t in enumerate(targets):
        one = methods.explain(BoxDetector(), x[i : i + 1], "gradcam", layers="conv", target=t)
        torch.testing.assert_close(many["gradcam"].maps["conv"][i], one.maps["conv"][0])
    assert many["gradcam"].target == tuple(targets) and many["hirescam"].logits.shape == (2, 1)
    with pytest.raises(TargetError, match="3 task targets but the batch has 2"):
        methods.explain(BoxDetector(), x, "gradcam", layers="conv", target=targets + targets[:1])


def test_a_shared_box_target_scores_every_sample_and_the_model_comes_back_as_it_was():
    det = BoxDetector().train()
    det.conv.weight.requires_grad_(True)
    x = _image(4, n=3)
    exp = methods.explain(det, x, "gradcam", layers="conv", target=BoxTarget(BOX1, 1))
    expected = x.mean(dim=1)[:, 2:6, 2:6].mean(dim=(1, 2))
    torch.testing.assert_close(exp.logits[:, 0], expected)
    assert det.training and det.conv.weight.requires_grad
    assert not det.conv._forward_hooks
    assert [d["labels"].tolist() for d in detect(det, x)] == [[1, 2]] * 3


def test_region_target_is_the_seg_grad_cam_score():
    """y = sum_{R} (W_1 . x)_{ij}; Grad-CAM at the conv: alpha_1 = |R| / 64, alpha_0 = 0, raw map = alpha_1 A_1
    (GradLens's maps are raw and signed: the ReLU is a display step)."""
    x = _image(5)
    seg = PixelSegmenter()
    logits = torch.einsum("kc,nchw->nkhw", PixelSegmenter.W, x)  # (1, 2, 8, 8)
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[1:4, 0:5] = True
    t = RegionTarget(1, mask=region)
    exp = methods.explain(seg, x, "gradcam", layers="conv", target=t)
    assert float(exp.logits) == pytest.approx(float(logits[0, 1][region].sum()), rel=1e-5)
    torch.testing.assert_close(exp.maps["conv"][0], 15 / 64 * logits[0, 1], rtol=1e-5, atol=1e-6)
    hires = methods.explain(seg, x, "hirescam", layers="conv", target=t)
    torch.testing.assert_close(hires.maps["conv"][0], logits[0, 1] * region, rtol=1e-5, atol=1e-6)
    mean = RegionTarget(1, box=(0, 1, 5, 4), reduce="mean")  # the same 3 x 5 region as a box
    assert float(mean.scores(seg(x))) == pytest.approx(float(logits[0, 1][region].mean()), rel=1e-5)
    with pytest.raises(TargetError, match="out of range: the segmenter has 2 classes"):
        methods.explain(seg, x, "gradcam", layers="conv", target=RegionTarget(2))


def test_embedding_target_is_the_cosine_and_its_gradient_closed_form():
    """f = mean_hw A (A = W x), y = cos(f, e); dy/df = e / (|f||e|) - y f / |f|^2; Grad-CAM weights dy/df / 64."""
    x = _image(6)
    emb = Embedder()
    e = torch.tensor([0.5, -1.0, 2.0, 0.1])
    a = torch.einsum("dc,nchw->ndhw", Embedder.W, x)[0]  # (4, 8, 8)
    f = a.mean(dim=(1, 2))
    y = F.cosine_similarity(f, e, dim=0)
    g = e / (f.norm() * e.norm()) - y * f / f.norm() ** 2
    exp = methods.explain(emb, x, "gradcam", layers="conv", target=EmbeddingTarget(e))
    assert float(exp.logits) == pytest.approx(float(y), rel=1e-5)
    torch.testing.assert_close(exp.maps["conv"][0], (g[:, None, None] / 64 * a).sum(0), rtol=1e-4, atol=1e-7)
    ref = _image(7)
    by_image = methods.explain(emb, x, "gradcam", layers="conv", target=EmbeddingTarget(ref))
    by_vector = methods.explain(emb, x, "gradcam", layers="conv", target=EmbeddingTarget(emb(ref)[0].detach()))
    torch.testing.assert_close(by_image.maps["conv"], by_vector.maps["conv"])
    assert isinstance(by_image.target, EmbeddingTarget) and by_image.target.is_image


def test_class_targets_keep_working_and_wrong_outputs_point_to_the_right_target():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = _image(8)
    a = methods.explain(net, x, "gradcam", layers="0", target=1)
    b = methods.explain(net, x, "gradcam", layers="0", target=ClassTarget(1))
    torch.testing.assert_close(a.maps["0"], b.maps["0"])
    assert b.target is None and b.logits.shape == (1, 2)
    with pytest.raises(RecorderError, match="looks like a detector.*BoxTarget"):
        methods.explain(BoxDetector(), x, "gradcam", layers="conv")
    with pytest.raises(RecorderError, match="looks like a segmenter.*RegionTarget"):
        methods.explain(PixelSegmenter(), x, "gradcam", layers="conv")
    with pytest.raises(TargetError, match="needs a detector"):
        methods.explain(net, x, "gradcam", layers="0", target=BoxTarget(BOX1, 1))
    with pytest.raises(TargetError, match="empty"):
        BoxTarget((3, 3, 3, 5), 1)


SMALL = {"rise": {"num_masks": 16, "cell": 4}, "drise": {"num_masks": 16, "cell": 4}, "sscam": {"num_samples": 2}}
SMALL["occlusion"] = {"window": 4, "stride": 4}
TASKS = {
    "box": (BoxDetector, lambda: BoxTarget(BOX1, 1)),
    "region": (PixelSegmenter, lambda: RegionTarget(1)),
    "embedding": (Embedder, lambda: EmbeddingTarget(torch.tensor([1.0, 0.0, 0.0, 0.0]))),
}
CASES = [(kind, s.name) for kind in TASKS for s in methods.list_methods(target=kind)]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_every_method_that_takes_a_task_target_gives_a_finite_map_and_leaves_the_model_clean(kind, name):
    make, target = TASKS[kind]
    model = make().train()
    exp = methods.explain(model, _image(9), name, layers="conv", target=target(), **SMALL.get(name, {}))
    assert torch.isfinite(exp.maps["conv"]).all() and exp.logits.shape == (1, 1)
    assert model.training and not model.conv._forward_hooks and model.conv.weight.requires_grad
