"""methods/_internal/inputs.py: inputs that do not fit the model are InputErrors before any forward pass.

Before the model-aware check, a float64 batch for float32 weights raised torch's RuntimeError
("Input type (double) and bias type (float) should be the same") and a 2-channel batch for an RGB
stem "expected input[1, 2, 16, 16] to have 3 channels", from inside the forward pass.
"""

from __future__ import annotations

import pytest
import torch

import methods
from methods.errors import InputError
from methods.metrics.faithfulness.confidence import confidence_change
from methods.metrics.faithfulness.curves import deletion_curve, insertion_curve
from tiny_models import GapNet

BAD = {
    "float64": (
        lambda: torch.rand(1, 3, 16, 16, dtype=torch.float64),
        r"x is torch\.float64 but the model's weights are torch\.float32; convert it with x\.to\(torch\.float32\)",
    ),
    "2 channels": (
        lambda: torch.rand(1, 2, 16, 16),
        r"x has 2 channel\(s\) \(shape \(1, 2, 16, 16\)\) but the model's first convolution 'features\.0' takes 3",
    ),
    "1-D": (lambda: torch.rand(16), r"must be a preprocessed \(N, C, H, W\) tensor; got shape \(16,\)"),
}


@pytest.mark.parametrize("method", [spec.name for spec in methods.list_methods()])
@pytest.mark.parametrize("bad", list(BAD))
def test_every_method_refuses_inputs_that_do_not_fit_the_model(method, bad):
    make, pattern = BAD[bad]
    with pytest.raises(InputError, match=pattern):
        methods.explain(GapNet().eval(), make(), method)


@pytest.mark.parametrize("bad", list(BAD))
def test_the_metrics_refuse_them_too(bad):
    make, pattern = BAD[bad]
    net, sal = GapNet().eval(), torch.rand(4, 4)
    x = make()
    one = x if x.ndim != 4 else x[:1]
    if bad == "1-D":
        pattern = r"ONE preprocessed image"
    for run in (
        lambda: deletion_curve(net, one, sal, 0, steps=2),
        lambda: insertion_curve(net, one, sal, 0, steps=2),
        lambda: confidence_change(net, one, sal, 0),
    ):
        with pytest.raises(InputError, match=pattern):
            run()


def test_a_double_model_takes_double_inputs():
    net = GapNet().double().eval()
    ex = methods.explain(net, torch.rand(1, 3, 16, 16, dtype=torch.float64), "gradcam")
    assert all(torch.isfinite(m).all() for m in ex.maps.values())
    with pytest.raises(InputError, match=r"x is torch\.float32 but the model's weights are torch\.float64"):
        methods.explain(net, torch.rand(1, 3, 16, 16), "gradcam")


def test_lazy_first_convolution_is_not_used_for_channels():
    net = torch.nn.Sequential(
        torch.nn.LazyConv2d(4, 3), torch.nn.Conv2d(4, 2, 1), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    from methods._internal.inputs import first_conv

    assert first_conv(net)[0] == "1"
