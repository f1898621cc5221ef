"""methods/_internal/torch_utils.py: the shared torch helpers (eval mode, hook scope, the batched runner)."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
from torch import nn

import methods
from methods._internal import device as _device
from methods._internal import torch_utils as _torch
from methods.errors import GradLensWarning, InputError, RecorderError
from methods.metrics.faithfulness import curves as fa
from methods.metrics.faithfulness import perturbation


def test_hook_scope_removes_hooks_also_when_the_forward_raises():
    net = nn.Sequential(nn.Conv2d(1, 1, 1))
    with pytest.raises(ZeroDivisionError):
        with _torch.HookScope() as hooks:
            hooks.forward(net[0], lambda m, a, o: 1 / 0)
            hooks.forward_pre(net[0], lambda m, a: None)
            assert hooks.count == 2
            net(torch.zeros(1, 1, 2, 2))
    assert not net[0]._forward_hooks and not net[0]._forward_pre_hooks


@pytest.mark.parametrize("device_type", ["cuda", "xpu", "cpu"])
def test_runner_autocasts_on_the_devices_own_type(monkeypatch, device_type):
    """bf16 autocast follows the device it is given (never a hard-coded "cpu"): the runner enters
    ``torch.autocast(device_type=<that device's type>)``. The autocast itself is replaced by a
    recorder, so the check runs on a machine without that device."""
    seen = []

    @contextlib.contextmanager
    def fake_autocast(device_type, dtype=None, **kwargs):
        seen.append((device_type, dtype))
        yield

    monkeypatch.setattr(torch, "autocast", fake_autocast)
    with _torch.ForwardRunner(precision="bf16", device=torch.device(device_type), total=1) as run:
        assert run.autocast_device == device_type
    assert seen == [(device_type, torch.bfloat16)]
    seen.clear()
    with _torch.ForwardRunner(precision="fp32", device=torch.device(device_type), total=1) as run:
        assert run.autocast_device is None
    assert seen == []


def test_curves_run_on_the_inputs_device(monkeypatch):
    """Deletion curves hand the input's own device to the runner (so bf16 faithfulness on a CUDA
    model autocasts on CUDA); here a spy records the device of a CPU run."""
    devices = []
    real = perturbation.runner_for

    def spy(x, precision, total, progress=None):
        devices.append((x.device, precision))
        return real(x, precision, total, progress)

    monkeypatch.setattr(fa, "runner_for", spy)
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.rand(1, 3, 4, 4)
    fa.deletion_curve(net, x, torch.rand(4, 4), 0, steps=2, precision="bf16")
    assert devices == [(x.device, "bf16")]


def test_runner_reports_a_model_without_logits():
    with pytest.raises(RecorderError, match="logits"):
        with _torch.ForwardRunner(precision="fp32", device="cpu", total=1) as run:
            run(lambda b, fmt: b, torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize(
    "bad", [torch.full((1, 3, 4, 4), float("nan")), torch.zeros(3, 4, 4), torch.zeros(1, 3, 4, 4, dtype=torch.int64)]
)
def test_explain_refuses_nan_and_malformed_inputs(bad):
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(InputError):
        methods.explain(net, bad, "gradcam", layers="0")


def test_a_methods_warning_becomes_a_note_of_its_explanation():
    @methods.register_method(
        name="noted_test_method", label="Noted", family="baseline", cost="1 fwd", summary="Test: warns once."
    )
    class Noted(methods.RecordedMethod):
        def compute(self, activations, gradients):
            warnings.warn("layer is mostly negative", GradLensWarning, stacklevel=2)
            return activations.sum(dim=1)

    from methods.cams.core import registry

    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    try:
        with pytest.warns(GradLensWarning, match="mostly negative"):
            exp = methods.explain(net, torch.rand(1, 3, 4, 4), "noted_test_method", layers=["0"])
        assert exp.notes == ("layer is mostly negative",)
    finally:
        registry._REGISTRY.pop("noted_test_method")


# ------------------------------------------------------------------------------------------
# precision="auto" and the device rule


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_bf16_is_native(monkeypatch, native, expected):
    """The ONE rule: "auto" is bf16 exactly where bf16 is native; explicit choices are obeyed.
    Both outcomes are forced here, so every machine tests both branches."""
    monkeypatch.delenv(_torch.PRECISION_ENV, raising=False)
    seen = []
    monkeypatch.setattr(_torch, "bf16_is_native", lambda device=None: seen.append(device) or native)
    assert _torch.resolve_precision("auto", "cpu") == expected
    assert seen == ["cpu"]
    assert _torch.resolve_precision("fp32", "cpu") == "fp32" and _torch.resolve_precision("bf16", "cpu") == "bf16"
    assert len(seen) == 1  # an explicit choice never asks the hardware
    with _torch.ForwardRunner(precision="auto", device="cpu", total=1) as run:
        assert run.precision == expected and run.autocast_device == ("cpu" if native else None)


def test_bf16_detection_agrees_with_the_cpu_flags():
    """The hardware answer matches what the kernel reports (AMX or AVX512-BF16), whichever CPU runs this."""
    flags = set(open("/proc/cpuinfo").read().split())
    native = bool(flags & {"amx_bf16", "amx_tile", "avx512_bf16"})
    assert _torch.bf16_is_native("cpu") is native


@pytest.mark.parametrize("native", [True, False])
def test_precision_env_decides_what_auto_means(monkeypatch, native):
    """$GRADLENS_PRECISION=fp32 is the one switch for reproducible results: "auto" becomes fp32 even
    where bf16 is native; =bf16 forces bf16 where it is not; "auto" or unset keeps the hardware rule;
    explicit arguments are obeyed whatever the variable says; a bad value is a clear error."""
    monkeypatch.setattr(_torch, "bf16_is_native", lambda device=None: native)
    hardware = "bf16" if native else "fp32"
    for value, expected in (("fp32", "fp32"), ("bf16", "bf16"), (" FP32 ", "fp32"), ("auto", hardware), ("", hardware)):
        monkeypatch.setenv(_torch.PRECISION_ENV, value)
        assert _torch.resolve_precision("auto", "cpu") == expected, value
    monkeypatch.setenv(_torch.PRECISION_ENV, "fp32")
    assert _torch.resolve_precision("bf16", "cpu") == "bf16"
    with _torch.ForwardRunner(precision="auto", device="cpu", total=1) as run:
        assert run.precision == "fp32" and run.autocast_device is None
    monkeypatch.setenv(_torch.PRECISION_ENV, "half")
    with pytest.raises(methods.OptionError, match=r"\$GRADLENS_PRECISION='half' is not valid.*'fp32'"):
        _torch.resolve_precision("auto", "cpu")
    assert _torch.resolve_precision("fp32", "cpu") == "fp32"  # an explicit choice never reads it


def test_bad_precision_names_the_choices():
    with pytest.raises(
        methods.OptionError, match=r"precision='fp16' is not valid; expected one of \['auto', 'fp32', 'bf16'\]"
    ):
        _torch.resolve_precision("fp16")


@pytest.mark.parametrize("native", [True, False])
def test_results_record_the_resolved_precision(monkeypatch, native):
    """Explanation.precision / options (score family) and Curve.precision say what RAN, not "auto"."""
    monkeypatch.delenv(_torch.PRECISION_ENV, raising=False)
    monkeypatch.setattr(_torch, "bf16_is_native", lambda device=None: native)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    x = torch.rand(1, 3, 8, 8)
    exp = methods.explain(net, x, "scorecam", layers="1")
    assert exp.options["precision"] == exp.precision == ("bf16" if native else "fp32")
    assert methods.explain(net, x, "scorecam", layers="1", precision="fp32").options["precision"] == "fp32"
    grad = methods.explain(net, x, "gradcam", layers="1")
    assert "precision" not in grad.options and grad.precision == "fp32"  # gradient maps: always fp32
    curve = fa.deletion_curve(net, x, torch.rand(4, 4), 0, steps=2)
    assert curve.precision == ("bf16" if native else "fp32")


def test_default_device_env_override(monkeypatch):
    monkeypatch.delenv(_device.DEVICE_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _device.default_device().type == expected
    monkeypatch.setenv(_device.DEVICE_ENV, "cpu")
    assert _device.default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the env var wins over a present GPU
    assert _device.default_device() == torch.device("cpu")
    monkeypatch.delenv(_device.DEVICE_ENV)
    assert _device.default_device() == torch.device("cuda")  # a GPU is used when present


def test_unusable_devices_are_clear_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(_device.DEVICE_ENV, "cuda")
    with pytest.raises(methods.OptionError, match=r"\$GRADLENS_DEVICE='cuda'.*0 CUDA device"):
        _device.default_device()
    with pytest.raises(methods.OptionError, match="'toaster' is not a device"):
        _device.resolve_device("toaster")


@pytest.mark.parametrize("name", ["meta", "cpu:1", " cpu:3 "])
def test_devices_that_cannot_run_a_model_are_refused(monkeypatch, name):
    """Issue 26: ``GRADLENS_DEVICE=meta`` or ``cpu:1`` was accepted and then every batch image failed."""
    monkeypatch.setenv(_device.DEVICE_ENV, name)
    with pytest.raises(methods.OptionError, match=rf"^\$GRADLENS_DEVICE='{name.strip()}'"):
        _device.default_device()
    with pytest.raises(methods.OptionError, match=r"cannot run a model|one CPU device"):
        _device.resolve_device(name.strip())
    assert _device.resolve_device("cpu:0") == torch.device("cpu:0")
