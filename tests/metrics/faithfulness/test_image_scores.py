"""methods.metrics.faithfulness.image_scores: several maps of one image scored with the shared forwards run once.

The reference is the one-map functions (deletion_curve, insertion_curve, confidence_change), whose
numbers test_faithfulness.py checks against closed forms: every score must be theirs, and the
model must see exactly ``forward_count`` images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from methods.errors import InputError, TargetError
from methods.metrics.faithfulness import curves as fa
from methods.metrics.faithfulness.image_scores import forward_count, image_scores


class Counting(nn.Module):
    """A small conv net that counts the images it is fed."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, 4),
        )
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.net(x)


@pytest.mark.parametrize("baseline, insertion_baseline, batch_size", [("zero", "blur", 7), ("mean", "mean", 32)])
def test_every_score_equals_the_one_map_functions(baseline, insertion_baseline, batch_size):
    net = Counting().eval()
    x = torch.rand(1, 3, 12, 10)
    gen = torch.Generator().manual_seed(3)
    maps = [torch.rand(6, 5, generator=gen), torch.rand(3, 3, generator=gen), np.arange(12.0).reshape(3, 4)]
    steps = 6
    out = image_scores(
        net,
        x,
        maps,
        2,
        steps=steps,
        baseline=baseline,
        insertion_baseline=insertion_baseline,
        batch_size=batch_size,
        precision="fp32",
    )
    assert net.seen == forward_count(3, steps, same_baselines=baseline == insertion_baseline)
    for m, sc in zip(maps, out):
        d = fa.deletion_curve(net, x, m, 2, steps=steps, baseline=baseline, precision="fp32")
        i = fa.insertion_curve(net, x, m, 2, steps=steps, baseline=insertion_baseline, precision="fp32")
        c = fa.confidence_change(net, x, m, 2, precision="fp32")
        for ours, ref in ((sc.deletion, d), (sc.insertion, i)):
            np.testing.assert_allclose(ours.scores, ref.scores, atol=1e-6)
            np.testing.assert_array_equal(ours.counts, ref.counts)
            np.testing.assert_array_equal(ours.fractions, ref.fractions)
            assert ours.auc == pytest.approx(ref.auc, abs=1e-6)
            assert (ours.kind, ours.baseline, ours.steps, ours.target, ours.precision) == (
                ref.kind,
                ref.baseline,
                ref.steps,
                ref.target,
                ref.precision,
            )
        assert sc.confidence.drop == pytest.approx(c.drop, abs=1e-4)
        assert sc.confidence.increase == c.increase
        assert sc.confidence.score == pytest.approx(c.score, abs=1e-7)


def test_shared_endpoints_are_the_same_images_for_every_map():
    """Deletion starts at p(x) and ends at p(baseline) for every map; insertion the other way round."""
    net = Counting().eval()
    x = torch.rand(1, 3, 8, 8)
    out = image_scores(net, x, [torch.rand(4, 4), torch.rand(2, 2)], 1, steps=3, baseline="zero", precision="fp32")
    default = image_scores(net, x, [torch.rand(4, 4)], 1, steps=3, precision="fp32")[0]  # blur for both curves
    with torch.inference_mode():
        p = net(torch.cat([x, torch.zeros_like(x), fa.blur(x)])).softmax(1)[:, 1].double()
    for sc in out:
        assert sc.deletion.scores[0] == pytest.approx(float(p[0]), abs=1e-6) == sc.insertion.scores[-1]
        assert sc.deletion.scores[-1] == pytest.approx(float(p[1]), abs=1e-6)
        assert sc.insertion.scores[0] == pytest.approx(float(p[2]), abs=1e-6)
    assert default.deletion.baseline == default.insertion.baseline == "blur"
    assert default.deletion.scores[-1] == pytest.approx(float(p[2]), abs=1e-6) == default.insertion.scores[0]


def test_forward_count_and_progress():
    assert forward_count(3, 50) == 300 and forward_count(1, 1) == 4 and forward_count(2, 4, same_baselines=True) == 16
    seen = []
    net = Counting().eval()
    image_scores(
        net,
        torch.rand(1, 3, 6, 6),
        [torch.rand(3, 3)],
        0,
        steps=4,
        batch_size=3,
        precision="fp32",
        progress=lambda d, t: seen.append((d, t)),
    )
    total = forward_count(1, 4, same_baselines=True)  # blur deletion and blur insertion share their end images
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_bad_input():
    net = Counting().eval()
    with pytest.raises(InputError, match="saliencies is empty"):
        image_scores(net, torch.rand(1, 3, 6, 6), [], 0)
    with pytest.raises(TargetError, match="out of range"):
        image_scores(net, torch.rand(1, 3, 6, 6), [torch.rand(2, 2)], 9, steps=2)


def test_a_thread_tuner_changes_no_score():
    """The evaluate worker runs the chunks on 1 thread or all (methods._internal.threads): the same
    numbers as torch's own setting, and the same images (built in place) as the one-map functions."""
    from methods._internal.threads import ThreadTuner
    from methods.metrics.faithfulness.perturbation import perturb

    net = Counting().eval()
    x = torch.rand(1, 3, 12, 10)
    maps = [torch.rand(6, 5, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    plain = image_scores(net, x, maps, 1, steps=7, batch_size=5, precision="fp32")
    t = ThreadTuner(probe_every=2)
    tuned = image_scores(net, x, maps, 1, steps=7, batch_size=5, precision="fp32", threads=t)
    assert t.units == len(range(0, forward_count(3, 7, same_baselines=True), 5)) - 1  # the first chunk unrecorded
    for a, b in zip(plain, tuned):
        np.testing.assert_allclose(a.deletion.scores, b.deletion.scores, atol=1e-7)
        np.testing.assert_allclose(a.insertion.scores, b.insertion.scores, atol=1e-7)
        assert a.confidence.drop == pytest.approx(b.confidence.drop, abs=1e-6)
    chosen = torch.rand(4, 1, 12, 10) < 0.5
    sub = torch.zeros_like(x)
    for kind in ("deletion", "insertion"):
        out = torch.empty(6, 3, 12, 10, memory_format=torch.channels_last)
        perturb(kind, x, sub, chosen, out=out[1:5])
        assert torch.equal(out[1:5], perturb(kind, x, sub, chosen))
