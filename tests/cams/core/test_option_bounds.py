"""Every option that sizes work or memory declares an upper bound (issue 26): a huge value is an
OptionError naming the option, the value and the bounds, never a raw error or hours of work."""

from __future__ import annotations

import pytest
import torch

import methods
from methods.cams.core import options as options_module
from tiny_models import GapNet

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64-bit seeds

#: (method, option, its upper bound): what the option's help text states
BOUNDS = [
    ("random", "seed", MAX_SEED),
    ("rise", "seed", MAX_SEED),
    ("smoothgradcampp", "seed", MAX_SEED),
    ("sscam", "seed", MAX_SEED),
    ("rise", "num_masks", 20_000),
    ("rise", "cell", 512),
    ("rise", "batch_size", 1024),
    ("occlusion", "window", 4096),
    ("occlusion", "stride", 4096),
    ("occlusion", "batch_size", 1024),
    ("smoothgradcampp", "num_samples", 256),
    ("sscam", "num_samples", 256),
    ("iscam", "steps", 256),
    ("scorecam", "batch_size", 1024),
    ("sscam", "batch_size", 1024),
    ("iscam", "batch_size", 1024),
    ("ablationcam", "batch_size", 1024),
]


def test_random_seed_2_to_the_70_is_an_option_error():
    """It raised a raw ValueError from torch.Generator.manual_seed ("Overflow when unpacking long")."""
    assert getattr(options_module, "MAX_SEED", None) == MAX_SEED
    net, x = GapNet(classes=3, seed=1), torch.randn(1, 3, 8, 8)
    with pytest.raises(methods.OptionError) as info:
        methods.explain(net, x, "random", seed=2**70, layers="features.4")
    text = str(info.value)
    assert text.startswith(f"Random: seed={2**70} is not valid; expected an int >= 0 and <= {MAX_SEED}")
    with pytest.raises(methods.OptionError, match="seed=-1 is not valid"):
        methods.explain(net, x, "random", seed=-1, layers="features.4")
    top = methods.explain(net, x, "random", seed=MAX_SEED, layers="features.4")  # the bound itself runs
    again = methods.explain(net, x, "random", seed=MAX_SEED, layers="features.4")
    torch.testing.assert_close(top.maps["features.4"], again.maps["features.4"], rtol=0, atol=0)


@pytest.mark.parametrize("method, name, maximum", BOUNDS)
def test_work_sizing_options_have_an_upper_bound_stated_in_their_help(method, name, maximum):
    info = {o.name: o for o in methods.get_method(method).options}[name]
    assert info.maximum == maximum
    stated = "2**63 - 1" if maximum == MAX_SEED else f"at most {maximum}"
    assert stated in info.help
    assert methods.create_method(method, **{name: maximum}).options[name] == maximum
    with pytest.raises(methods.OptionError) as err:
        methods.create_method(method, **{name: maximum + 1})
    assert f"{name}={maximum + 1} is not valid" in str(err.value) and f"<= {maximum}" in str(err.value)


def test_every_int_option_is_bounded_or_sizes_nothing():
    """A new int option of a registered method must declare a maximum, or be listed here as one
    that sizes no work (``channels``: k >= C keeps every channel)."""
    unbounded = {
        (spec.name, o.name)
        for spec in methods.list_methods(target=None)
        for o in spec.options
        if o.kind in ("int", "int_or_choice") and o.maximum is None
    }
    assert unbounded == set()  # channels too, since issue 26 (at most 65536)


@pytest.mark.parametrize("spec", methods.list_methods(target=None), ids=lambda s: s.name)
def test_every_numeric_option_declares_finite_bounds(spec):
    """Contract over the registry (issue 26): every int and float option of every method declares a
    finite minimum AND maximum, and the maximum itself is accepted while maximum x 2 + 1 is refused
    with an OptionError naming the option (a new method is checked the moment it registers)."""
    import math

    for o in spec.options:
        if o.kind not in ("int", "float", "int_or_choice"):
            continue
        assert o.minimum is not None and o.maximum is not None, f"{spec.name}.{o.name} has no declared bounds"
        assert math.isfinite(o.minimum) and math.isfinite(o.maximum) and o.minimum <= o.maximum
        assert methods.create_method(spec.name, **{o.name: o.maximum}).options[o.name] == o.maximum
        over = o.maximum * 2 + 1
        with pytest.raises(methods.OptionError, match=f"{o.name}="):
            methods.create_method(spec.name, **{o.name: int(over) if o.kind != "float" else float(over)})
