"""Tests of methods.metrics.faithfulness.curves: exact curves on a model whose probabilities are known in closed form.

The "sum classifier" has two classes and logits ``(a * S + b, 0)`` with ``S`` the sum of every
input value, so ``p_0 = sigmoid(a * S + b)``. Deleting pixel set D with the zero baseline leaves
``S = sum over pixels not in D of (sum over channels of x)``: every point of a deletion or insertion
curve is computable by hand, and so is its trapezoid AUC.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
from torch import nn

from methods.metrics.faithfulness import curves as fa
from methods.models.catalog import load_model
from precision_kit import tolerance


class SumClassifier(nn.Module):
    """logits = (a * sum(x), 0) + (b, 0); records the train/eval flag it ran in."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.lin = nn.Linear(1, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[a], [0.0]]))
            self.lin.bias.copy_(torch.tensor([b, 0.0]))
        self.seen_training: list[bool] = []
        self.batch_sizes: list[int] = []

    def forward(self, x):
        self.seen_training.append(self.training)
        self.batch_sizes.append(x.shape[0])
        s = x.sum(dim=(1, 2, 3))[:, None]  # (N, 1)
        return self.lin(s)  # (N, 2)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def trapezoid(f, s) -> float:
    return sum((f[i + 1] - f[i]) * (s[i] + s[i + 1]) / 2 for i in range(len(f) - 1))


def small_conv_net(seed: int = 0, classes: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, classes),
    ).eval()


# A 4x4 image with 2 channels; pixel j has channel sum v[j]. Values chosen so every subset sum differs.
V = np.array([0.3, -0.2, 0.5, 0.1, 0.7, -0.4, 0.2, 0.05, -0.1, 0.6, 0.15, -0.3, 0.4, 0.25, -0.05, 0.35])
A, B = 1.3, -0.2


def image() -> torch.Tensor:
    x = torch.zeros(1, 2, 4, 4, dtype=torch.float32)
    flat = torch.tensor(V, dtype=torch.float32)
    x[0, 0] = (0.25 * flat).view(4, 4)
    x[0, 1] = (0.75 * flat).view(4, 4)
    return x


# A map with distinct values: the order is known by hand.
ORDER = [5, 0, 12, 3, 9, 14, 1, 7, 10, 2, 15, 8, 4, 11, 6, 13]


def saliency_for(order) -> torch.Tensor:
    m = torch.zeros(16)
    for rank, pix in enumerate(order):
        m[pix] = 16 - rank
    return m.view(4, 4)


def test_deletion_curve_matches_closed_form(precision):
    """In fp32 to 1e-6; in bf16 (forced on every machine) to the stated bf16 tolerance."""
    model = SumClassifier(A, B)
    curve = fa.deletion_curve(model, image(), saliency_for(ORDER), 0, steps=4, baseline="zero")
    counts = [0, 4, 8, 12, 16]
    expected = [sigmoid(A * sum(V[j] for j in ORDER[k:]) + B) for k in counts]
    assert curve.kind == "deletion" and curve.baseline == "zero" and curve.target == 0
    assert list(curve.counts) == counts
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    assert curve.precision == precision
    tol = tolerance(precision, rtol=0, atol=1e-6)
    np.testing.assert_allclose(curve.scores, expected, **tol)
    assert curve.auc == pytest.approx(trapezoid(curve.fractions, expected), abs=tol["atol"], rel=tol["rtol"])


def test_insertion_curve_matches_closed_form_and_uneven_steps_round_half_up(precision):
    model = SumClassifier(A, B)
    curve = fa.insertion_curve(model, image(), saliency_for(ORDER), 0, steps=3, baseline="zero")
    counts = [0, 5, 11, 16]  # round(16 * i / 3): 5.33 -> 5, 10.67 -> 11
    expected = [sigmoid(A * sum(V[j] for j in ORDER[:k]) + B) for k in counts]
    assert list(curve.counts) == counts
    np.testing.assert_allclose(curve.fractions, np.array(counts) / 16)
    assert curve.precision == precision
    tol = tolerance(precision, rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(curve.scores, expected, **tol)
    assert curve.auc == pytest.approx(trapezoid(np.array(counts) / 16, expected), abs=tol["atol"], rel=tol["rtol"])
    # round half up, exact integers: N = 4, S = 8 -> k = 0, 0.5, 1, 1.5, ... -> 0 1 1 2 2 3 3 4 4
    assert fa.step_counts(4, 8).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_mean_and_tensor_baselines_closed_form(fp32):
    model = SumClassifier(A, B)
    x = image()
    mean_sum = float(V.mean())  # channel means of this image sum to mean(v) per pixel
    curve = fa.deletion_curve(model, x, saliency_for(ORDER), 0, steps=2, baseline="mean")
    expected = [sigmoid(A * (sum(V[j] for j in ORDER[k:]) + k * mean_sum) + B) for k in (0, 8, 16)]
    np.testing.assert_allclose(curve.scores, expected, atol=1e-6)
    assert curve.baseline == "mean"

    sub = torch.full_like(x, 0.5)  # each replaced pixel contributes 2 * 0.5 = 1
    curve = fa.deletion_curve(model, x, saliency_for(ORDER), 0, steps=2, baseline=sub[0])
    expected = [sigmoid(A * (sum(V[j] for j in ORDER[k:]) + k * 1.0) + B) for k in (0, 8, 16)]
    np.testing.assert_allclose(curve.scores, expected, atol=1e-6)
    assert curve.baseline == "tensor"


def test_blur_matches_a_numpy_reference_and_keeps_constants():
    """Reference: an explicit 2-D correlation with the outer product of the 1-D Gaussian, numpy 'reflect' padding."""
    rng = np.random.default_rng(0)
    img = rng.standard_normal((3, 12, 10)).astype(np.float64)
    sigma = 1.5
    r = math.ceil(3 * sigma)
    t = np.arange(-r, r + 1)
    k1 = np.exp(-(t**2) / (2 * sigma**2))
    k1 /= k1.sum()
    k2 = np.outer(k1, k1)
    ref = np.zeros_like(img)
    for ch in range(3):
        p = np.pad(img[ch], r, mode="reflect")
        for i in range(12):
            for j in range(10):
                ref[ch, i, j] = (p[i : i + 2 * r + 1, j : j + 2 * r + 1] * k2).sum()
    out = fa.blur(torch.from_numpy(img), sigma)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    const = torch.full((1, 3, 20, 20), 0.7)
    torch.testing.assert_close(fa.blur(const), const)  # default sigma = 1.0 px: no edge darkening


def test_insertion_starts_from_the_blurred_image_by_default(fp32):
    model = SumClassifier(A, B)
    x = image()
    curve = fa.insertion_curve(model, x, saliency_for(ORDER), 0, steps=2)
    assert curve.baseline == "blur"
    assert curve.scores[0] == pytest.approx(sigmoid(A * float(fa.blur(x).sum()) + B), abs=1e-6)
    assert curve.scores[-1] == pytest.approx(sigmoid(A * V.sum() + B), abs=1e-6)


def test_ties_are_broken_by_pixel_index(fp32):
    m = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert fa.perturbation_order(m, (2, 2)).tolist() == [0, 1, 3, 2]
    assert fa.perturbation_order(torch.zeros(4, 4), (4, 4)).tolist() == list(range(16))
    nan_first = torch.tensor([[float("nan"), 0.0], [2.0, 1.0]])
    assert fa.perturbation_order(nan_first, (2, 2)).tolist() == [2, 3, 1, 0]  # NaN ranks last
    model = SumClassifier(A, B)
    flat = fa.deletion_curve(model, image(), torch.zeros(4, 4), 0, steps=16, baseline="zero")
    by_index = fa.deletion_curve(model, image(), saliency_for(list(range(16))), 0, steps=16, baseline="zero")
    np.testing.assert_array_equal(flat.scores, by_index.scores)
    expected = [sigmoid(A * V[k:].sum() + B) for k in range(17)]
    np.testing.assert_allclose(flat.scores, expected, atol=1e-6)


def test_map_is_upsampled_bilinearly_for_ranking():
    # a 2x2 map with its peak at the top-right: the 4x4 upsampled peak is pixel (0, 3) alone
    m = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    order = fa.perturbation_order(m, (4, 4))
    assert order[0].item() == 3
    up = torch.nn.functional.interpolate(m[None, None], size=(4, 4), mode="bilinear", align_corners=False)[0, 0]
    expected = torch.argsort(up.flatten().double(), descending=True, stable=True)
    assert order.tolist() == expected.tolist()


@pytest.mark.parametrize("steps", [1, 7, 50])
def test_auc_of_a_constant_curve_is_the_constant(steps, fp32):
    model = SumClassifier(0.0, 0.8)  # output ignores the input
    curve = fa.deletion_curve(model, image(), torch.rand(3, 3), 0, steps=steps)
    assert np.all(curve.scores == curve.scores[0])
    assert curve.auc == pytest.approx(sigmoid(0.8), abs=1e-7)
    assert fa.auc([0, 0.3, 1.0], [0.25, 0.25, 0.25]) == pytest.approx(0.25)


def test_batched_equals_unbatched_and_chunks_are_bounded():
    net = small_conv_net()
    x = torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    sal = torch.rand(6, 6, generator=torch.Generator().manual_seed(2))
    one = fa.deletion_curve(net, x, sal, 2, steps=20, batch_size=1)
    many = fa.deletion_curve(net, x, sal, 2, steps=20, batch_size=32)
    odd = fa.insertion_curve(net, x, sal, 2, steps=20, batch_size=6)
    odd1 = fa.insertion_curve(net, x, sal, 2, steps=20, batch_size=1)
    np.testing.assert_allclose(one.scores, many.scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(odd.scores, odd1.scores, rtol=0, atol=1e-6)

    model = SumClassifier(A, B)
    calls = []
    fa.deletion_curve(
        model, image(), torch.rand(4, 4), 0, steps=16, batch_size=5, progress=lambda d, t: calls.append((d, t))
    )
    assert model.batch_sizes == [5, 5, 5, 2]  # 17 points in chunks of 5, never all at once
    assert calls == [(5, 17), (10, 17), (15, 17), (17, 17)]


def test_bf16_is_close_to_fp32():
    net = small_conv_net(seed=3)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 2
    sal = torch.rand(8, 8, generator=torch.Generator().manual_seed(5))
    for fn in (fa.deletion_curve, fa.insertion_curve):
        c32 = fn(net, x, sal, 1, steps=10)
        c16 = fn(net, x, sal, 1, steps=10, precision="bf16")
        assert c16.precision == "bf16"
        assert abs(c16.auc - c32.auc) < 0.01
        np.testing.assert_allclose(c16.scores, c32.scores, atol=0.02)


def test_inputs_never_mutated_and_model_state_restored():
    net = small_conv_net()
    net.train()
    net[0].weight.requires_grad_(False)
    weights_before = {n: p for n, p in net.named_parameters()}
    values_before = {n: p.detach().clone() for n, p in net.named_parameters()}
    bn_stats = net[1].running_mean.clone()
    x = torch.randn(3, 16, 16)
    x_copy = x.clone()
    sal = torch.rand(4, 4)
    sal_copy = sal.clone()
    base = torch.randn(3, 16, 16)
    base_copy = base.clone()
    fa.deletion_curve(net, x, sal, 0, steps=4, baseline=base)
    fa.insertion_curve(net, x, sal, 0, steps=4)
    fa.confidence_change(net, x, sal, 0)
    torch.testing.assert_close(x, x_copy, rtol=0, atol=0)
    torch.testing.assert_close(sal, sal_copy, rtol=0, atol=0)
    torch.testing.assert_close(base, base_copy, rtol=0, atol=0)
    assert all(m.training for m in net.modules())  # train mode restored
    torch.testing.assert_close(net[1].running_mean, bn_stats, rtol=0, atol=0)  # ran in eval mode
    for n, p in net.named_parameters():
        assert p is weights_before[n]
        assert p.is_contiguous()  # the temporary channels_last layout is undone
        torch.testing.assert_close(p.detach(), values_before[n], rtol=0, atol=0)
    assert net[0].weight.requires_grad is False and net[3].weight.requires_grad is True


def test_model_restored_when_the_call_fails():
    model = SumClassifier(A, B)
    model.train()
    with pytest.raises(ValueError, match="target"):
        fa.deletion_curve(model, image(), torch.rand(4, 4), 7, steps=4)
    assert model.seen_training == [False]  # the first chunk ran in eval mode, then the target was refused
    assert model.training


def test_accepts_a_loaded_model_and_3d_input():
    model = SumClassifier(A, B)
    loaded = types.SimpleNamespace(model=model, mean=(0.0, 0.0), std=(1.0, 1.0))
    a = fa.deletion_curve(loaded, image()[0], saliency_for(ORDER), 0, steps=4)
    b = fa.deletion_curve(model, image(), saliency_for(ORDER).numpy(), 0, steps=4)
    np.testing.assert_array_equal(a.scores, b.scores)


@pytest.mark.parametrize(
    "kwargs, needles",
    [
        (dict(steps=0), ["steps", "0", ">= 1"]),
        (dict(steps=2.5), ["steps", "2.5"]),
        (dict(baseline="black"), ["baseline", "'black'", "'zero'", "'mean'", "'blur'"]),
        (dict(baseline=torch.zeros(3, 4, 4)), ["baseline", "(1, 2, 4, 4)", "(3, 4, 4)"]),
        (dict(batch_size=0), ["batch_size", "0", ">= 1"]),
        (dict(precision="fp16"), ["precision", "'fp16'", "'fp32'", "'bf16'"]),
        (dict(target=2), ["target=2", "2 classes", "0 .. 1"]),
        (dict(target=-1), ["target=-1", "0 .. 1"]),
        (dict(target=1.0), ["target", "1.0"]),
        (dict(saliency=torch.rand(2, 4, 4)), ["saliency", "(2, 4, 4)", "2-D"]),
        (dict(saliency=torch.rand(16)), ["saliency", "(16,)"]),
        (dict(x=torch.rand(2, 2, 4, 4)), ["x", "(2, 2, 4, 4)"]),
        (dict(blur_sigma=-1.0, baseline="blur"), ["blur_sigma", "-1.0"]),
    ],
)
def test_bad_arguments_name_the_argument_value_and_choices(kwargs, needles):
    args = dict(x=image(), saliency=torch.rand(4, 4), target=0)
    args.update(kwargs)
    x, sal, target = args.pop("x"), args.pop("saliency"), args.pop("target")
    for fn in (fa.deletion_curve, fa.insertion_curve):
        with pytest.raises(ValueError) as err:
            fn(SumClassifier(A, B), x, sal, target, **args)
        for needle in needles:
            assert needle in str(err.value), (needle, str(err.value))


def test_bad_model_output_and_model_type():
    with pytest.raises(ValueError, match="logits"):
        fa.deletion_curve(nn.Identity(), image(), torch.rand(4, 4), 0, steps=2)
    with pytest.raises(TypeError, match="LoadedModel"):
        fa.deletion_curve(object(), image(), torch.rand(4, 4), 0, steps=2)


def test_reference_maps_and_curves():
    from methods.cams.baselines import centre_gaussian

    maps = fa.reference_maps((5, 7), seed=3)
    assert set(maps) == {"random", "centre"}
    torch.testing.assert_close(maps["centre"], centre_gaussian(5, 7))
    torch.testing.assert_close(maps["random"], fa.reference_maps((5, 7), seed=3)["random"])
    assert not torch.equal(maps["random"], fa.reference_maps((5, 7), seed=4)["random"])
    model = SumClassifier(A, B)
    curves = fa.reference_curves(model, image(), 0, kind="insertion", size=(2, 2), seed=3, steps=4, baseline="zero")
    direct = fa.insertion_curve(
        model, image(), fa.reference_maps((2, 2), seed=3)["random"], 0, steps=4, baseline="zero"
    )
    np.testing.assert_array_equal(curves["random"].scores, direct.scores)
    assert curves["centre"].kind == "insertion"
    with pytest.raises(ValueError, match="kind='both'"):
        fa.reference_curves(model, image(), 0, kind="both")


def test_confidence_change_closed_form_input_and_pixel_space(fp32):
    x = image()
    w = torch.tensor([[0.0, 0.5, 1.0, 0.25]] * 4)  # already in [0, 1] with min 0 and max 1
    weights = w.flatten().numpy()
    y = sigmoid(A * V.sum() + B)
    o = sigmoid(A * float((weights * V).sum()) + B)
    res = fa.confidence_change(SumClassifier(A, B), x, w, 0)
    assert res.space == "input"
    assert res.score == pytest.approx(y, abs=1e-6) and res.masked_score == pytest.approx(o, abs=1e-6)
    assert res.drop == pytest.approx(max(0.0, y - o) / y * 100, abs=1e-4)
    assert res.increase == (o > y)
    # a negative slope makes the masked image MORE confident: drop 0, increase True
    res = fa.confidence_change(SumClassifier(-A, B), x, w, 0)
    assert res.drop == 0.0 and res.increase is True
    # pixel space: rgb = x * std + mean, E = (L * rgb - mean) / std
    mean, std = (0.5, 0.25), (2.0, 4.0)
    rgb = x * torch.tensor(std).view(1, 2, 1, 1) + torch.tensor(mean).view(1, 2, 1, 1)
    e = (rgb * w - torch.tensor(mean).view(1, 2, 1, 1)) / torch.tensor(std).view(1, 2, 1, 1)
    o_pix = sigmoid(A * float(e.sum()) + B)
    res = fa.confidence_change(SumClassifier(A, B), x, w, 0, space="pixel", mean=mean, std=std)
    assert res.masked_score == pytest.approx(o_pix, abs=1e-6)
    loaded = types.SimpleNamespace(model=SumClassifier(A, B), mean=mean, std=std)
    assert fa.confidence_change(loaded, x, w, 0, space="pixel").masked_score == pytest.approx(o_pix, abs=1e-6)
    with pytest.raises(ValueError, match="mean"):
        fa.confidence_change(SumClassifier(A, B), x, w, 0, space="pixel")
    with pytest.raises(ValueError, match="space='rgb'"):
        fa.confidence_change(SumClassifier(A, B), x, w, 0, space="rgb")


def test_confidence_change_normalizes_the_map_relu_then_minmax():
    x = image()
    raw = torch.tensor([[-3.0, 1.0, 3.0, 0.5]] * 4)  # ReLU -> (0, 1, 3, .5), min-max -> (0, 1/3, 1, 1/6)
    scaled = torch.tensor([[0.0, 1 / 3, 1.0, 1 / 6]] * 4)
    a = fa.confidence_change(SumClassifier(A, B), x, raw, 0)
    b = fa.confidence_change(SumClassifier(A, B), x, scaled, 0)
    assert a.masked_score == pytest.approx(b.masked_score, abs=1e-6)


def test_a_single_map_with_leading_singleton_dims_is_accepted():
    model = SumClassifier(A, B)
    sal = saliency_for(ORDER)
    flat = fa.deletion_curve(model, image(), sal, 0, steps=4)
    for shaped in (sal[None], sal[None, None]):
        np.testing.assert_array_equal(fa.deletion_curve(model, image(), shaped, 0, steps=4).scores, flat.scores)


def test_perturbed_image_is_the_image_the_curve_scores(fp32):
    model = SumClassifier(A, B)
    x = image()
    sal = saliency_for(ORDER)
    deleted = fa.perturbed_image(x, sal, 0.25, kind="deletion", baseline="zero")  # 4 pixels
    kept = torch.ones(16, dtype=torch.bool)
    kept[ORDER[:4]] = False
    torch.testing.assert_close(deleted, x * kept.view(1, 1, 4, 4))
    inserted = fa.perturbed_image(x, sal, 0.5, kind="insertion", baseline="zero")
    keep = torch.zeros(16, dtype=torch.bool)
    keep[ORDER[:8]] = True
    torch.testing.assert_close(inserted, x * keep.view(1, 1, 4, 4))
    curve = fa.insertion_curve(model, x, sal, 0, steps=2, baseline="zero")
    assert curve.scores[1] == pytest.approx(sigmoid(A * float(inserted.sum()) + B), abs=1e-6)
    start = fa.perturbed_image(x, sal, 0.0, kind="insertion")  # default insertion start: the blur
    torch.testing.assert_close(start, fa.blur(x))
    with pytest.raises(ValueError, match="fraction"):
        fa.perturbed_image(x, sal, 1.5)


# --------------------------------------------------------------------------------------------
# On a trained model: Grad-CAM must beat chance, on the bundled scenes_vgg.

# 11 points per curve: 200 scenes x 2 maps x 2 curves = 8800 forwards of scenes_vgg, fp32 (bf16 is slower
# on CPUs without AMX). Measured: 25 s on an idle 2-core machine, 228 s while other jobs shared it.
SCENE_STEPS = 10


@pytest.mark.slow
def test_gradcam_beats_the_random_map_on_200_fresh_scenes():
    """200 evaluation scenes never seen in training (seeds EVAL_SEED_START + 20_000 + i), the true
    class explained at scenes_vgg's default layer; the random map is reference_maps(..., seed=i)["random"]
    on the same 16 x 16 grid. 10 steps, fp32. Insertion from the blur (the default).

    Deletion uses the BLUR baseline here. With the default zero baseline the claim does not hold on
    this benchmark (measured on these 200 scenes, 10 steps: Grad-CAM 0.182 vs random 0.205): the
    scenes are classified by shape, and greying out exactly the object's pixels leaves a grey
    silhouette of the same shape (p(true class) 0.81 -> 0.68 for scenes_vgg; blurring them instead
    gives 0.60, and blurring the object dilated by 4 px 0.33). See docs/faithfulness.md.
    """
    from methods.cams.core.explain import explain
    from methods.data.scenes import EVAL_SEED_START, make_batch

    loaded = load_model("scenes_vgg")
    images, labels, _ = make_batch([EVAL_SEED_START + 20_000 + i for i in range(200)])
    x = loaded.preprocess_batch(list(images))  # (200, 3, 128, 128)
    maps = torch.cat(
        [
            explain(loaded, x[s : s + 50], "gradcam", target=torch.from_numpy(labels[s : s + 50])).maps[
                loaded.default_layer
            ]
            for s in range(0, 200, 50)
        ]
    )  # (200, 16, 16)
    auc = {(m, k): [] for m in ("gradcam", "random") for k in ("deletion", "insertion")}
    for i in range(200):
        xi, target = x[i : i + 1], int(labels[i])
        ref = fa.reference_maps(tuple(maps.shape[-2:]), seed=i)["random"]
        for name, sal in (("gradcam", maps[i]), ("random", ref)):
            auc[name, "deletion"].append(
                fa.deletion_curve(loaded, xi, sal, target, steps=SCENE_STEPS, baseline="blur", batch_size=64).auc
            )
            auc[name, "insertion"].append(
                fa.insertion_curve(loaded, xi, sal, target, steps=SCENE_STEPS, batch_size=64).auc
            )
    mean = {key: float(np.mean(v)) for key, v in auc.items()}
    print({f"{m} {k}": round(v, 4) for (m, k), v in mean.items()})
    assert mean["gradcam", "deletion"] <= 0.5 * mean["random", "deletion"], mean
    assert mean["gradcam", "insertion"] >= mean["random", "insertion"] + 0.2, mean


def test_both_curves_default_to_the_blur_baseline():
    """Deletion's default is blur too (RISE deletes to zero; see docs/faithfulness.md for why):
    the default curve and perturbed image equal the explicit blur ones, not the zero ones."""
    model = SumClassifier(A, B)
    x, sal = image(), saliency_for(ORDER)
    assert fa.DEFAULT_BASELINES == {"deletion": "blur", "insertion": "blur"}
    default = fa.deletion_curve(model, x, sal, 0, steps=4)
    assert default.baseline == "blur"
    assert default.scores.tolist() == fa.deletion_curve(model, x, sal, 0, steps=4, baseline="blur").scores.tolist()
    assert default.scores.tolist() != fa.deletion_curve(model, x, sal, 0, steps=4, baseline="zero").scores.tolist()
    torch.testing.assert_close(
        fa.perturbed_image(x, sal, 0.5, kind="deletion"),
        fa.perturbed_image(x, sal, 0.5, kind="deletion", baseline="blur"),
    )
