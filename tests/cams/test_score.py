"""Tests of the score-weighted family (methods/score.py, score_engine.py, score_tail.py).

Numbers, not shapes: a hand-set network whose class score per channel is known in closed form,
and an independent, deliberately naive re-implementation of each paper's formula (one channel at
a time, no batching, no skipping) that the batched code must match on a random conv net.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods
import methods.cams.score
from methods.cams.core.base import LayerContext
from methods.cams.score import ablation_path
from methods.cams.score.engine import noise
from precision_kit import tolerance
from tiny_models import count_hooks

SCORE = [s.name for s in methods.list_methods(family="score")]


def test_family_is_registered():
    assert SCORE == ["scorecam", "sscam", "iscam", "ablationcam"]
    for name in SCORE:
        spec = methods.get_method(name)
        assert spec.is_slow and not spec.needs_gradients and spec.paper.startswith("https://")


# --------------------------------------------------------------------------------------------
# A network whose scores can be written down by hand


class KnownNet(nn.Module):
    """Input X (1, 4, 8, 8): channel j is the indicator of a region R_j (R_3 empty).

    ``pre`` and ``feat`` are identity 1x1 convs, so the layer ``feat`` outputs A^k = X_k, whose
    min-max mask at the same resolution is X_k itself. Then global average pooling and a linear
    layer: ``z_0 = sum_j v_j mean(A_j) + b_0``, ``z_1 = b_1``. With a_k = |R_k| / 64 the masked
    input ``X o H_k`` keeps only region k, so ``z_0(X o H_k) = v_k a_k + b_0`` and
    ``p_0 = sigmoid(v_k a_k + b_0 - b_1)``. Contributions v_k a_k = 0.75, 0.5, 0.25, 0.
    """

    V = (3.0, 1.0, 2.0, 5.0)
    B = (-1.0, 0.0)
    AREA = (16 / 64, 32 / 64, 8 / 64, 0.0)

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv2d(4, 4, 1)
        self.feat = nn.Conv2d(4, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            for conv in (self.pre, self.feat):
                conv.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
                conv.bias.zero_()
            self.fc.weight.zero_()
            self.fc.weight[0] = torch.tensor(self.V)
            self.fc.bias.copy_(torch.tensor(self.B))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.feat(self.pre(x))).flatten(1))

    @staticmethod
    def image() -> torch.Tensor:
        x = torch.zeros(1, 4, 8, 8)
        x[0, 0, 0:2] = 1  # 16 pixels
        x[0, 1, 2:6] = 1  # 32 pixels
        x[0, 2, 6:8, 0:4] = 1  # 8 pixels
        return x  # channel 3 stays empty

    @classmethod
    def contributions(cls) -> torch.Tensor:
        return torch.tensor([v * a for v, a in zip(cls.V, cls.AREA)], dtype=torch.float64)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _hand_map(weights: list[float]) -> torch.Tensor:
    x = KnownNet.image()[0]
    return sum(w * x[k] for k, w in enumerate(weights))  # (8, 8)


def _explain(model, x, method, layer, **options):
    return methods.explain(model, x, method, layers=[layer], target=0, **options).maps[layer]


def _weights(model, x, method, layer, target=0, **options):
    rec = methods.record(model, x, [layer], target=target, gradients=False)
    ctx = LayerContext(model, x, layer, rec.activations[layer], rec.targets, rec.logits, None)
    return methods.create_method(method, **options).weights(ctx)


def test_scorecam_hand_computed(precision):
    net, x = KnownNet(), KnownNet.image()
    margin = KnownNet.B[0] - KnownNet.B[1]
    expected = [_sigmoid(c + margin) for c in KnownNet.contributions()[:3]] + [0.0]  # empty channel: 0
    tol = tolerance(precision, rtol=1e-5, atol=1e-6)
    w = _weights(net, x, "scorecam", "feat")[0]
    torch.testing.assert_close(w, torch.tensor(expected), **tol)
    assert w[:3].argsort(descending=True).tolist() == [0, 1, 2]
    torch.testing.assert_close(_explain(net, x, "scorecam", "feat")[0], _hand_map(expected), **tol)
    # Increase of Confidence: minus p on the all-zero baseline input, sigmoid(b0 - b1)
    base = _sigmoid(margin)
    w_ic = _weights(net, x, "scorecam", "feat", baseline_subtract=True)[0]
    torch.testing.assert_close(w_ic, torch.tensor([e - base for e in expected[:3]] + [0.0]), **tol)


def test_iscam_hand_computed():
    net, x = KnownNet(), KnownNet.image()
    margin = KnownNet.B[0] - KnownNet.B[1]
    m = 4
    expected = [sum(_sigmoid(i / m * c + margin) for i in range(1, m + 1)) / m for c in KnownNet.contributions()[:3]]
    w = _weights(net, x, "iscam", "feat", steps=m)[0]
    torch.testing.assert_close(w, torch.tensor(expected + [0.0]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        _explain(net, x, "iscam", "feat", steps=m)[0], _hand_map(expected + [0.0]), rtol=1e-5, atol=1e-6
    )
    # one step is Score-CAM
    torch.testing.assert_close(_weights(net, x, "iscam", "feat", steps=1), _weights(net, x, "scorecam", "feat"))


@pytest.mark.parametrize("noise_on", ["mask", "input"])
def test_sscam_hand_computed(noise_on, fp32):
    """z_0 is linear in the input, so each noisy score is v_k a_k + std * sum_j v_j mean(noise on R_j) + b_0."""
    net, x = KnownNet(), KnownNet.image()
    v, b = torch.tensor(KnownNet.V, dtype=torch.float64), KnownNet.B
    std, s, seed = 0.3, 3, 5
    expected = []
    for c in KnownNet.contributions()[:3]:
        total = 0.0
        for j in range(s):
            if noise_on == "mask":
                d = noise(seed, j, (1, 8, 8)).double()[0]  # shared by the 4 input channels
                shift = sum(v[i] * (x[0, i].double() * d).mean() for i in range(4))
            else:
                d = noise(seed, j, (4, 8, 8)).double()
                shift = sum(v[i] * d[i].mean() for i in range(4))
            total += _sigmoid(float(c + std * shift + b[0] - b[1]))
        expected.append(total / s)
    opts = dict(num_samples=s, std=std, seed=seed, noise_on=noise_on)
    w = _weights(net, x, "sscam", "feat", **opts)[0]
    torch.testing.assert_close(w, torch.tensor(expected + [0.0]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        _explain(net, x, "sscam", "feat", **opts)[0], _hand_map(expected + [0.0]), rtol=1e-5, atol=1e-6
    )
    # std = 0 is Score-CAM exactly
    torch.testing.assert_close(_weights(net, x, "sscam", "feat", std=0.0), _weights(net, x, "scorecam", "feat"))


def test_ablationcam_hand_computed():
    """y = sum_j v_j a_j + b_0 = 0.5; ablating k removes v_k a_k: w_k = v_k a_k / |y| = 1.5, 1, 0.5, 0."""
    net, x = KnownNet(), KnownNet.image()
    expected = [1.5, 1.0, 0.5, 0.0]
    for path in ("auto", "full"):
        w = _weights(net, x, "ablationcam", "feat", path=path)[0]
        torch.testing.assert_close(w, torch.tensor(expected), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            _explain(net, x, "ablationcam", "feat", path=path)[0], _hand_map(expected), rtol=1e-5, atol=1e-6
        )
    assert ablation_path(net, x, "feat") == (True, "")
    # a negative class logit does not flip the sign (|y| in the denominator)
    with torch.no_grad():
        net.fc.bias[0] = -3.0  # y = -1.5
    w = _weights(net, x, "ablationcam", "feat")[0]
    torch.testing.assert_close(w, torch.tensor([0.5, 1 / 3, 1 / 6, 0.0]), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Naive reference implementations on a random conv net with downsampling


class SmallNet(nn.Module):
    """conv (3->6, stride 2) -> ReLU -> conv (6->8) -> ReLU [``act``] -> GAP -> fc (8 -> 5).

    Channel 0 of ``act`` is all zero (bias -100) and channel 1 constant 0.7 (zero weights):
    the channels the code skips or shares.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        with torch.no_grad():
            self.conv2.bias[0] = -100.0
            self.conv2.weight[1].zero_()
            self.conv2.bias[1] = 0.7
            self.fc.weight.mul_(4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv2(self.relu1(self.conv1(x))))).flatten(1))


def _naive_masked(model, x, layer, target, transform, steps, baseline=False):
    """Score-CAM family straight from the formulas: one channel, one step, one forward at a time."""
    rec = methods.record(model, x, [layer], target=target, gradients=False)
    acts, targets = rec.activations[layer], rec.targets
    n, c = acts.shape[:2]
    w = torch.zeros(n, c, dtype=torch.float64)
    with torch.no_grad():
        p_base = model(torch.zeros_like(x[:1])).softmax(1)[0]
        for i in range(n):
            for k in range(c):
                up = F.interpolate(acts[i, k][None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
                lo, hi = up.min(), up.max()
                mask = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
                scores = [model(transform(x[i : i + 1], mask, j)).softmax(1)[0, targets[i]] for j in range(steps)]
                w[i, k] = sum(float(s) for s in scores) / steps
                if baseline:
                    w[i, k] -= float(p_base[targets[i]])
    return w.float(), torch.einsum("nc,nchw->nhw", w.float(), acts)


def _naive_ablation(model, x, layer, target):
    rec = methods.record(model, x, [layer], target=target, gradients=False)
    acts, targets = rec.activations[layer], rec.targets
    module = dict(model.named_modules())[layer]
    n, c = acts.shape[:2]
    w = torch.zeros(n, c)
    with torch.no_grad():
        y = model(x).gather(1, targets[:, None])[:, 0]
        for i in range(n):
            for k in range(c):
                ablated = acts[i : i + 1].clone()
                ablated[0, k] = 0
                handle = module.register_forward_hook(lambda m, a, o, ablated=ablated: ablated)
                try:
                    y_k = model(x[i : i + 1])[0, targets[i]]
                finally:
                    handle.remove()
                w[i, k] = (y[i] - y_k) / abs(y[i])
    return w, torch.einsum("nc,nchw->nhw", w, acts)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(1)
    return SmallNet(), torch.randn(3, 3, 16, 16)


REFERENCE_CASES = {
    "scorecam": (dict(), lambda x, m, j: x * m, 1, False),
    "scorecam_ic": (dict(baseline_subtract=True), lambda x, m, j: x * m, 1, True),
    "iscam": (dict(steps=3), lambda x, m, j: x * m * (j + 1) / 3, 3, False),
    "sscam_mask": (
        dict(num_samples=2, std=0.5, seed=3),
        lambda x, m, j: x * (m + 0.5 * noise(3, j, (1, 16, 16))),
        2,
        False,
    ),
    "sscam_input": (
        dict(num_samples=2, std=0.5, seed=3, noise_on="input"),
        lambda x, m, j: x * m + 0.5 * noise(3, j, (3, 16, 16)),
        2,
        False,
    ),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES))
def test_masked_family_matches_naive_reference(case, small, precision):
    """Batched, skipping code == the one-at-a-time fp32 formula (incl. the all-zero and constant
    channels): to 1e-4 relative in fp32, to the stated bf16 tolerance in bf16 (forced on every machine)."""
    net, x = small
    options, transform, steps, baseline = REFERENCE_CASES[case]
    method = case.split("_")[0]
    target = [0, 3, 1]
    w_ref, m_ref = _naive_masked(net, x, "act", target, transform, steps, baseline)
    w = _weights(net, x, method, "act", target=target, **options)
    # the all-zero channel 0 is skipped: weight 0 instead of p(X o 0), the same term 0 in the map
    assert torch.equal(w[:, 0], torch.zeros(3))
    assert baseline or float(w_ref[:, 0].abs().min()) > 0
    tol = tolerance(precision, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w[:, 1:], w_ref[:, 1:], **tol)
    exp = methods.explain(net, x, method, layers=["act"], target=target, **options)
    assert exp.precision == precision and exp.options["precision"] == precision
    torch.testing.assert_close(exp.maps["act"], m_ref, **tol)
    assert baseline or float(w_ref[:, 1].abs().min()) > 0  # the constant channel really has a weight


def test_ablation_matches_naive_reference(small, fp32):
    net, x = small
    w_ref, m_ref = _naive_ablation(net, x, "act", [0, 3, 1])
    for path in ("auto", "full"):
        w = _weights(net, x, "ablationcam", "act", target=[0, 3, 1], path=path)
        torch.testing.assert_close(w, w_ref, rtol=1e-4, atol=1e-5)
    exp = methods.explain(net, x, "ablationcam", layers=["act"], target=[0, 3, 1])
    torch.testing.assert_close(exp.maps["act"], m_ref, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Batching, channel choice, skipping, precision


class BatchCounter(nn.Module):
    """Wraps a model; records the batch size of every call of every leaf module (and the root)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return self.inner(x)


def _leaf_batches(model: nn.Module):
    sizes: list[int] = []
    handles = [
        m.register_forward_pre_hook(lambda mod, args: sizes.append(int(args[0].shape[0])))
        for m in model.modules()
        if not list(m.children())
    ]
    return sizes, handles


FAST = {"sscam": dict(num_samples=3), "iscam": dict(steps=3)}


@pytest.mark.parametrize("name", SCORE)
def test_batch_size_one_equals_sixty_four(name, small):
    net, x = small
    opts = FAST.get(name, {})
    one = methods.explain(net, x, name, layers=["act"], batch_size=1, **opts).maps["act"]
    big = methods.explain(net, x, name, layers=["act"], batch_size=64, **opts).maps["act"]
    torch.testing.assert_close(one, big, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", SCORE)
def test_model_never_sees_more_than_batch_size(name, small):
    net, x = small
    wrapped = BatchCounter(net)
    sizes, handles = _leaf_batches(net)
    try:
        methods.explain(wrapped, x, name, layers=["inner.act"], batch_size=5, **FAST.get(name, {}))
    finally:
        for h in handles:
            h.remove()
    assert wrapped.sizes[0] == 3  # the recorded pass of the caller's batch
    assert max(wrapped.sizes[1:]) <= 5 and max(sizes[1:]) <= 5
    assert 5 in sizes  # batches are filled up to the cap


@pytest.mark.parametrize("name", SCORE)
def test_top_k_all_channels_equals_all(name, small):
    net, x = small
    opts = FAST.get(name, {})
    full = methods.explain(net, x, name, layers=["act"], **opts).maps["act"]
    top = methods.explain(net, x, name, layers=["act"], channels=8, **opts).maps["act"]
    more = methods.explain(net, x, name, layers=["act"], channels=100, **opts).maps["act"]
    torch.testing.assert_close(top, full)
    torch.testing.assert_close(more, full)


def test_top_k_keeps_the_high_energy_channels(small):
    net, x = small
    rec = methods.record(net, x, ["act"], gradients=False)
    energy = rec.activations["act"].pow(2).sum(dim=(2, 3))  # (N, C)
    w = _weights(net, x, "scorecam", "act", channels=3)
    for i in range(x.shape[0]):
        kept = set(w[i].nonzero().flatten().tolist())
        assert kept == set(energy[i].topk(3).indices.tolist())


@pytest.mark.parametrize("name", SCORE)
def test_empty_channels_are_skipped_without_changing_the_map(name, small):
    """The all-zero channel 0 of SmallNet never gets a forward pass; the maps equal the naive
    reference (checked above), here: the number of forwards shows the skip happened."""
    net, x = small
    wrapped = BatchCounter(net)
    opts = dict(FAST.get(name, {}), **({"path": "full"} if name == "ablationcam" else {}))
    methods.explain(wrapped, x[:1], name, layers=["inner.act"], batch_size=1, **opts)
    per_channel = opts.get("num_samples", opts.get("steps", 1))
    rows = sum(wrapped.sizes[1:])
    if name == "ablationcam":
        assert rows == 1 + 7  # the unablated reference + 7 non-zero channels (channel 0 skipped)
    else:
        assert rows == per_channel * (6 + 1)  # 6 varying channels + the shared empty-mask score


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.mark.parametrize("name", ["scorecam", "ablationcam"])
def test_bf16_map_close_to_fp32(name):
    """torchvision resnet18 with random weights, layer3, 32x32 input, top-32 channels.

    Measured when written, in exactly this setting: Pearson(bf16, fp32) of the maps 0.99999997
    (Score-CAM) and 0.99993 (Ablation-CAM), of the scored channel weights 0.99970 and 0.99969.
    At 224x224, layer4, 128 channels: maps 0.9999998 and 0.99925. The test asserts the 0.99 the
    docs promise, on the maps and on the weights (the stricter: random-weight maps are close to
    sum_k A^k whatever the weights).
    """
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    acts = methods.record(net, x, ["layer3"], gradients=False).activations["layer3"][0]  # (C, h, w)
    ws = {p: _weights(net, x, name, "layer3", channels=32, precision=p, batch_size=32)[0] for p in ("fp32", "bf16")}
    maps = {p: torch.einsum("c,chw->hw", w, acts) for p, w in ws.items()}
    assert _pearson(maps["fp32"], maps["bf16"]) >= 0.99
    kept = ws["fp32"] != 0
    assert _pearson(ws["fp32"][kept], ws["bf16"][kept]) >= 0.99


# --------------------------------------------------------------------------------------------
# Ablation-CAM's fast path


def test_ablation_fast_path_equals_slow_path_on_resnet():
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=7)
    x = torch.randn(2, 3, 32, 32)
    for layer in ("layer4", "layer4.0", "layer3", "maxpool"):
        assert ablation_path(net, x, layer) == (True, "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fast path warns about nothing
        fast = _explain(net, x, "ablationcam", "layer3", channels=24, batch_size=32)
    slow = _explain(net, x, "ablationcam", "layer3", channels=24, batch_size=32, path="full")
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


class SmallVGG(nn.Module):
    """torchvision's VGG layout, narrow: ``features`` (conv/ReLU/max-pool), avgpool, ``classifier``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        cfg = [16, "M", 32, "M", 64, 64, "M", 64]
        layers, c_in = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(64 * 4, 32), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(32, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_ablation_fast_path_runs_only_the_tail():
    net = SmallVGG()
    x = torch.randn(1, 3, 32, 32)
    calls = {"trunk": 0}
    handle = net.features[0].register_forward_hook(lambda m, a, o: calls.__setitem__("trunk", calls["trunk"] + 1))
    try:
        fast = _explain(net, x, "ablationcam", "features.9", channels=24, batch_size=8)
        trunk_calls = calls["trunk"]
        slow = _explain(net, x, "ablationcam", "features.9", channels=24, batch_size=8, path="full")
    finally:
        handle.remove()
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
    # the first conv runs for: the recorded pass, the module-order pass; its forward is replaced
    # by a placeholder afterwards (its hook still fires: 1 check batch + 4 batches of 25 rows / 8)
    assert trunk_calls == 2 + 1 + 4


def test_ablation_inside_a_residual_block_falls_back_with_a_note():
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=7)
    x = torch.randn(1, 3, 32, 32)
    ok, why = ablation_path(net, x, "layer4.1.conv2")
    assert not ok and "bypasses the layer" in why
    with pytest.warns(methods.cams.score.ScoreWarning, match="bypasses the layer"):
        auto = _explain(net, x, "ablationcam", "layer4.1.conv2", channels=16)
    full = _explain(net, x, "ablationcam", "layer4.1.conv2", channels=16, path="full")
    torch.testing.assert_close(auto, full)


# --------------------------------------------------------------------------------------------
# Model state, hooks, errors, progress


class FlakyLayer(nn.Module):
    """Identity that raises from its ``fail_after``-th call on."""

    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.calls, self.fail_after = 0, fail_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls >= self.fail_after:
            raise RuntimeError("flaky layer failed")
        return x


def _forward_overrides(model: nn.Module) -> int:
    return sum("forward" in m.__dict__ for m in model.modules())


@pytest.mark.parametrize("name", SCORE)
def test_state_restored_and_no_hooks_left(name, small):
    net, x = small
    net.train()
    net.conv1.weight.requires_grad_(False)
    x_before = x.clone()
    try:
        methods.explain(net, x, name, layers=["act"], **FAST.get(name, {}))
        assert net.training and all(m.training for m in net.modules())
        assert not net.conv1.weight.requires_grad and net.conv2.weight.requires_grad
        assert torch.equal(x, x_before) and count_hooks(net) == 0 and _forward_overrides(net) == 0
        with pytest.raises(methods.TargetError):
            methods.explain(net, x, name, layers=["act"], target=9)
        assert count_hooks(net) == 0 and _forward_overrides(net) == 0 and net.training
    finally:
        net.conv1.weight.requires_grad_(True)
        net.eval()


@pytest.mark.parametrize("fail_after", [2, 4])
@pytest.mark.parametrize("name", SCORE)
def test_a_layer_that_raises_midway_leaves_no_trace(name, fail_after):
    net = SmallNet()
    net.flaky = FlakyLayer(fail_after=fail_after)  # the recorded pass (and a few more) succeed
    net.pool = nn.Sequential(net.flaky, nn.AdaptiveAvgPool2d(1))
    net.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", methods.cams.score.ScoreWarning)  # Ablation-CAM's fallback note
        with pytest.raises(RuntimeError, match="flaky"):
            methods.explain(net, torch.randn(1, 3, 16, 16), name, layers=["act"], batch_size=1)
    assert net.flaky.calls >= fail_after
    assert count_hooks(net) == 0 and _forward_overrides(net) == 0
    assert net.training and all(m.training for m in net.modules())


@pytest.mark.parametrize("name", SCORE)
def test_progress_reaches_total_after_every_batch(name, small):
    net, x = small
    calls = []
    methods.explain(
        net, x[:2], name, layers=["act"], batch_size=4, progress=lambda d, t: calls.append((d, t)), **FAST.get(name, {})
    )
    assert calls and calls[-1][0] == calls[-1][1] > 0
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))
    assert len(calls) >= 3  # one per batch, not just the end


def test_progress_of_the_layer_itself(small):
    """Straight from the method: (done, total) counts forward rows, after every batch."""
    net, x = small
    rec = methods.record(net, x[:1], ["act"], gradients=False)
    calls = []
    ctx = LayerContext(
        net, x[:1], "act", rec.activations["act"], rec.targets, rec.logits, lambda d, t: calls.append((d, t))
    )
    methods.create_method("scorecam", batch_size=3).compute_layer(ctx)
    assert calls == [(3, 7), (6, 7), (7, 7)]  # 6 varying channels + the shared empty mask, 3 per batch


def test_sscam_is_seeded_and_batch_independent(small):
    net, x = small
    a = _explain(net, x, "sscam", "act", num_samples=4, seed=1)
    b = _explain(net, x, "sscam", "act", num_samples=4, seed=1)
    c = _explain(net, x, "sscam", "act", num_samples=4, seed=2)
    alone = _explain(net, x[1:2], "sscam", "act", num_samples=4, seed=1)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    torch.testing.assert_close(alone[0], a[1], rtol=1e-5, atol=1e-6)


class ViewNet(nn.Module):
    """Uses ``.view`` on a conv output: fails on channels_last tensors; the runner falls back."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).view(x.shape[0], -1))


@pytest.mark.parametrize("name", SCORE)
def test_model_that_rejects_channels_last_still_works(name):
    net, x = ViewNet(), torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError):
        net(x.contiguous(memory_format=torch.channels_last))
    m = _explain(net, x, name, "conv", **FAST.get(name, {}))
    assert torch.isfinite(m).all() and m.abs().max() > 0


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("scorecam", {"batch_size": 0}, "batch_size=0"),
        ("scorecam", {"batch_size": True}, "batch_size=True"),
        ("iscam", {"channels": "top"}, "channels='top'"),
        ("iscam", {"channels": 0}, "channels=0"),
        ("sscam", {"precision": "fp16"}, "precision='fp16' is not valid; expected one of ['auto', 'fp32', 'bf16']"),
        ("sscam", {"std": -1.0}, "std=-1.0"),
        ("sscam", {"num_samples": 0}, "num_samples=0"),
        ("sscam", {"noise_on": "both"}, "noise_on='both'"),
        ("sscam", {"seed": -1}, "seed=-1"),
        ("iscam", {"steps": 0}, "steps=0"),
        ("scorecam", {"baseline_subtract": 1}, "baseline_subtract=1"),
        ("ablationcam", {"path": "fast"}, "path='fast' is not valid; expected one of ['auto', 'full']"),
    ],
)
def test_bad_options_name_the_option_and_the_choices(name, options, message):
    with pytest.raises(ValueError) as info:
        methods.create_method(name, **options)
    assert message in str(info.value)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="num_samples"):
        methods.create_method("scorecam", num_samples=3)


def test_explain_end_to_end(small, fp32):
    net, x = small
    exp = methods.explain(net, x, "scorecam", layers=["conv1", "act"], target=[0, 1, 2])
    assert exp.method == "scorecam" and exp.layers == ("conv1", "act")
    assert exp.maps["conv1"].shape == (3, 8, 8) and exp.maps["act"].shape == (3, 8, 8)
    _, m_ref = _naive_masked(net, x, "conv1", [0, 1, 2], lambda x, m, j: x * m, 1)
    torch.testing.assert_close(exp.maps["conv1"], m_ref, rtol=1e-4, atol=1e-6)
    many = methods.explain_many(net, x, ["gradcam", "scorecam", "ablationcam"], layers=["act"], target=[0, 1, 2])
    torch.testing.assert_close(many["scorecam"].maps["act"], exp.maps["act"])


# --------------------------------------------------------------------------------------------
# Conv -> BatchNorm folding (speed only: the numbers must not move)


class ReusedConvNet(nn.Module):
    """conv -> BN, but the conv's raw output is added back: the BN cannot be dropped."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            self.bn.weight.uniform_(0.5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc((self.bn(y) + y).mean(dim=(2, 3)))


def test_fold_finds_every_pair_of_resnet18_and_restores():
    import torchvision

    from methods._internal.bn_folding import FoldedBatchNorm
    from methods.cams.score.engine import eval_mode

    net = torchvision.models.resnet18(num_classes=4)
    x = torch.randn(1, 3, 32, 32)
    with eval_mode(net):
        with torch.no_grad():
            ref = net(x)
        with FoldedBatchNorm(net, x) as fold:
            assert fold.pairs == 20  # conv1/bn1, 8 blocks x 2, 3 downsample pairs
            with torch.no_grad():
                torch.testing.assert_close(net(x), ref, rtol=1e-4, atol=1e-5)
    assert _forward_overrides(net) == 0 and count_hooks(net) == 0 and net.training


def test_fold_refuses_when_the_raw_conv_output_is_reused():
    from methods._internal.bn_folding import FoldedBatchNorm
    from methods.cams.score.engine import eval_mode

    net = ReusedConvNet()
    with eval_mode(net), FoldedBatchNorm(net, torch.randn(1, 3, 8, 8)) as fold:
        assert fold.pairs == 0 and "used elsewhere" in fold.reason
        assert _forward_overrides(net) == 0


@pytest.mark.parametrize("name", ["scorecam", "sscam"])
def test_folding_does_not_change_the_map(name, monkeypatch, fp32):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=6).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 32, 32)
    opts = dict(channels=20, batch_size=20, **({"num_samples": 2} if name == "sscam" else {}))
    monkeypatch.setattr(methods.cams.score.masked, "FOLD_MIN_ROWS", 10**9)
    plain = _explain(net, x, name, "layer3", **opts)
    monkeypatch.setattr(methods.cams.score.masked, "FOLD_MIN_ROWS", 0)
    seen = []

    class Spy(methods.cams.score.masked.FoldedBatchNorm):
        def __enter__(self):
            out = super().__enter__()
            seen.append(self.pairs)
            return out

    monkeypatch.setattr(methods.cams.score.masked, "FoldedBatchNorm", Spy)
    folded = _explain(net, x, name, "layer3", **opts)
    assert seen == [20]  # folding really ran
    torch.testing.assert_close(folded, plain, rtol=1e-4, atol=1e-6)
    assert _forward_overrides(net) == 0 and count_hooks(net) == 0


def test_fold_is_undone_when_a_forward_raises(monkeypatch):
    monkeypatch.setattr(methods.cams.score.masked, "FOLD_MIN_ROWS", 0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        FlakyLayer(fail_after=5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with pytest.raises(RuntimeError, match="flaky"):
        methods.explain(net, torch.randn(1, 3, 8, 8), "scorecam", layers=["2"], batch_size=1)
    assert net[3].calls >= 5 and _forward_overrides(net) == 0 and count_hooks(net) == 0 and net.training


def test_bf16_is_native_answers_a_bool():
    from methods.cams.score import bf16_is_native

    assert bf16_is_native("cpu") in (True, False)
    assert bf16_is_native("meta") is False
