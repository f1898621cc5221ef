"""The dashboard on a GPU, tested without one by faking what is honest to fake: how many CUDA
devices torch reports (the sidebar's menu, the default device), where a model is asked to go
(``devices.place`` records the device and leaves the weights where they are), which device type
autocast is entered on, and the per-GPU bound on concurrent work. What needs a real GPU (maps on
the GPU equal the CPU's) is marked ``gpu`` and skipped here (benchmarks/gpu_run.sh runs it)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import streamlit as st
import torch
from torch import nn

from app_kit import assert_clean, run_page
from dashboard.app import cache
from dashboard.core import devices, services
from dashboard.core.state import Choices, ViewState
from methods._internal.torch_utils import ForwardRunner
from methods.errors import OptionError


def fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int, *, bf16: bool = True) -> None:
    """torch reports ``count`` CUDA GPUs named "Fake GPU <i>" (no kernel ever runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: f"Fake GPU {i}")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.delenv("GRADLENS_DEVICE", raising=False)
    monkeypatch.delenv("GRADLENS_PRECISION", raising=False)


def test_the_menu_lists_the_devices_present(monkeypatch):
    fake_gpus(monkeypatch, 0)
    assert devices.present() == ("cpu",) and devices.default() == torch.device("cpu")
    fake_gpus(monkeypatch, 2)
    assert devices.present()[:3] == ("cpu", "cuda:0", "cuda:1")
    assert devices.default() == torch.device("cuda", 0)  # the first GPU, with its index: a menu entry
    assert devices.chosen(devices.AUTO) == torch.device("cuda", 0) and devices.chosen("cuda:1").index == 1
    with pytest.raises(OptionError, match=r"'cuda:2' is not on this machine; choose one of cpu, cuda:0, cuda:1"):
        devices.chosen("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.present() == ("cpu", "cuda:0", "cuda:1", "mps")


def test_a_link_names_a_device_of_this_machine_or_falls_back():
    choices = Choices(devices=("cpu", "cuda:0"))
    state, messages = ViewState.from_query({"device": "cuda:0"}, choices)
    assert state.device == "cuda:0" and messages == [] and state.to_query() == {"device": "cuda:0"}
    state, messages = ViewState.from_query({"device": "cuda:7"}, choices)
    assert state.device == "" and messages == [
        "URL parameter device='cuda:7': not a known device on this machine (valid: cpu, cuda:0); "
        "using this machine's default device."
    ]


class Recorder(nn.Module):
    """A module that records where ``.to`` asks it to go (and stays on the CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list = []

    def to(self, *args, **kwargs):  # type: ignore[override]
        self.asked.append(args[0] if args else kwargs.get("device"))
        return self


def test_place_moves_the_model_to_the_device_asked_for():
    class Loaded:
        model = Recorder()

    loaded = Loaded()
    assert devices.place(loaded, "cuda:1") is loaded
    assert loaded.model.asked == [torch.device("cuda", 1)]


def test_maps_leave_the_device_in_one_transfer(monkeypatch):
    """Every map of a computation is copied to the host once (a GPU syncs once, not per layer)."""
    calls = []
    real = torch.Tensor.cpu

    def counted(self, *a, **k):
        calls.append(tuple(self.shape))
        return real(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "cpu", counted)
    gen = torch.Generator().manual_seed(0)
    maps = [torch.randn(7, 7, generator=gen), torch.randn(14, 14, generator=gen), torch.randn(1, 3, generator=gen)]
    host = devices.host_arrays([m.to(torch.bfloat16) if i == 2 else m for i, m in enumerate(maps)])
    assert calls == [(7 * 7 + 14 * 14 + 3,)]
    assert [h.shape for h in host] == [(7, 7), (14, 14), (1, 3)] and all(h.dtype == np.float32 for h in host)
    np.testing.assert_array_equal(host[0], maps[0].numpy())
    np.testing.assert_array_equal(host[1], maps[1].numpy())
    np.testing.assert_array_equal(host[2], maps[2].to(torch.bfloat16).float().numpy())


def test_auto_precision_is_bf16_autocast_on_a_cuda_gpu_with_bf16(monkeypatch):
    fake_gpus(monkeypatch, 1, bf16=True)
    assert devices.auto_precision("cuda:0") == "bf16"
    fake_gpus(monkeypatch, 1, bf16=False)
    assert devices.auto_precision("cuda:0") == "fp32"
    entered = []

    @contextmanager
    def autocast(device_type, dtype=None, **kwargs):
        entered.append((device_type, dtype))
        yield

    monkeypatch.setattr(torch, "autocast", autocast)
    with ForwardRunner(precision="bf16", device=torch.device("cuda", 0), total=1) as run:
        assert run.autocast_device == "cuda"
    assert entered == [("cuda", torch.bfloat16)]


def test_one_gpu_runs_at_most_gpu_slots_computations_at_once():
    """GPU_SLOTS + 2 threads ask for the same GPU: never more than GPU_SLOTS run at once; the CPU
    is not bounded (all of them run together)."""
    for device, bound in (("cuda:0", cache.GPU_SLOTS), ("cpu", cache.GPU_SLOTS + 2)):
        running, peak, lock = [0], [0], threading.Lock()

        def work(device=device, running=running, peak=peak, lock=lock):
            with cache._device_slot(device):
                with lock:
                    running[0] += 1
                    peak[0] = max(peak[0], running[0])
                time.sleep(0.15)
                with lock:
                    running[0] -= 1

        threads = [threading.Thread(target=work) for _ in range(cache.GPU_SLOTS + 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert peak[0] == bound, (device, peak[0])


def test_the_sidebar_offers_the_gpus_and_the_model_goes_to_the_chosen_one(monkeypatch):
    """Two faked GPUs: the menu offers cpu, cuda:0, cuda:1 with the first GPU chosen (the default
    device); the model is asked onto it, the map's cache key carries what "auto" means there, and
    every GPU slot is given back. Choosing cuda:1 (or the CPU) loads the model there and puts the
    device in the link."""
    fake_gpus(monkeypatch, 2)
    placed: list[tuple[str, str]] = []
    asked: list[str] = []
    real_auto = devices.auto_precision
    monkeypatch.setattr(devices, "place", lambda loaded, device: placed.append((loaded.name, str(device))) or loaded)
    monkeypatch.setattr(devices, "auto_precision", lambda device: asked.append(str(device)) or real_auto(device))
    st.cache_resource.clear()  # models cached on the CPU by other tests are not what this test loads
    try:
        at = run_page(model="scenes_vgg")
        assert_clean(at)
        menu = at.selectbox(key="w_device")
        assert menu.options == ["CPU", "CUDA GPU 0 (Fake GPU 0) (default)", "CUDA GPU 1 (Fake GPU 1)"]
        assert menu.value == "cuda:0" and "device" not in at.query_params  # the default: not in the link
        assert ("scenes_vgg", "cuda:0") in placed and asked and set(asked) == {"cuda:0"}
        line = next(c.value for c in at.sidebar.caption if "Models run on" in c.value)
        assert "default device is CUDA GPU 0 (Fake GPU 0)" in line  # the weights stayed on the CPU: said so
        assert cache._GPU_GATES["cuda:0"]._value == cache.GPU_SLOTS  # every slot released

        at.selectbox(key="w_device").set_value("cuda:1").run()
        assert_clean(at)
        assert placed[-1] == ("scenes_vgg", "cuda:1") and at.query_params["device"] == "cuda:1"
        at.selectbox(key="w_device").set_value("cpu").run()
        assert_clean(at)
        assert placed[-1] == ("scenes_vgg", "cpu") and at.query_params["device"] == "cpu"
    finally:
        st.cache_resource.clear()


@pytest.mark.gpu
def test_maps_on_a_real_gpu_equal_the_cpus():
    """On a real GPU: the dashboard's map computation gives the CPU's maps (fp32 gradient maps) and
    leaves the model and its input on the GPU."""
    from methods import load_model
    from methods.data.scenes import make_scene

    image = make_scene(3).image
    out = {}
    for device in ("cpu", "cuda:0"):
        loaded = devices.place(load_model("scenes_vgg"), device)
        ctx = services.image_context(loaded, "scene", "k", image)
        assert ctx.x.device.type == torch.device(device).type
        out[device] = services.compute_maps(loaded, ctx.x, ["gradcam", "layercam"], [loaded.default_layer], 0)
    for method in ("gradcam", "layercam"):
        a = out["cpu"]["maps"][method][loaded.default_layer]
        b = out["cuda:0"]["maps"][method][loaded.default_layer]
        assert np.abs(a - b).max() <= 1e-4 * max(np.abs(a).max(), 1e-12)


def test_the_long_jobs_run_on_the_chosen_gpu_inside_one_of_its_slots(monkeypatch):
    """The Benchmark page's evaluation and the Advisor run their own model copy on the sidebar's
    device, each holding one of that GPU's slots while it runs (a faked GPU: the call is recorded,
    then run on the CPU), and give the slot back."""
    from dashboard.views.advisor import settings as advisor_settings
    from dashboard.views.benchmark import evaluation
    from methods.advisor import advise as real_advise
    from methods.pipeline.evaluate import evaluate as real_evaluate

    fake_gpus(monkeypatch, 1)
    monkeypatch.setattr(devices, "place", lambda loaded, device: loaded)
    seen: list[tuple[str, str, int]] = []

    def gate_value() -> int:
        return cache._GPU_GATES["cuda:0"]._value

    def evaluate(*args, device=None, **kwargs):
        seen.append(("evaluate", str(device), gate_value()))
        return real_evaluate(*args, device="cpu", **kwargs)

    def advise(*args, device=None, **kwargs):
        seen.append(("advise", str(device), gate_value()))
        return real_advise(*args, device="cpu", **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", evaluate)
    monkeypatch.setattr(advisor_settings, "advise", advise)
    st.cache_resource.clear()
    try:
        at = run_page("benchmark", model="scenes_vgg")
        at.multiselect(key="bm_methods").set_value(["gradcam"]).run()
        at.number_input(key="bm_n").set_value(1).run()
        at.slider(key="bm_steps").set_value(3).run()
        at.button(key="bm_run").click().run()
        assert_clean(at)
        at.switch_page("pages/10_Advisor.py").run()
        at.selectbox(key="adv_model").select("scenes_vgg").run()
        at.number_input(key="adv_n").set_value(1).run()
        at.multiselect(key="adv_methods").set_value(["gradcam"]).run()
        at.radio(key="adv_layers").set_value("default").run()
        at.slider(key="adv_steps").set_value(3).run()
        at.number_input(key="adv_sanity").set_value(0).run()
        at.button(key="adv_run").click().run()
        assert_clean(at)
        held = cache.GPU_SLOTS - 1
        assert seen == [("evaluate", "cuda:0", held), ("advise", "cuda:0", held)]
        assert gate_value() == cache.GPU_SLOTS  # given back
    finally:
        st.cache_resource.clear()
