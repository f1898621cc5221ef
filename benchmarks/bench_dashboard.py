"""Speed of the dashboard as a user feels it, measured with ``streamlit.testing.v1.AppTest``.

    python benchmarks/bench_dashboard.py

AppTest runs the page scripts in this process with the real caches, so the numbers are the
server-side script time of a rerun (no browser rendering, no websocket). Measured in one run:

1. Time to the first map on Home with the default view (EfficientNet-Lite0 on chelsea, Grad-CAM
   at ``bn2``): a cold process (imports + model load + prediction + Grad-CAM + rendering), then a
   warm process with every Streamlit cache cleared, for Lite0 and for the bundled ``scenes_vgg``.
2. The rerun after a display change on the Methods page, on ``scenes_vgg`` (normalization mode, ReLU, scope,
   colormap, alpha), each applied repeatedly: median seconds per rerun and the model calls they
   made (goal: < 0.3 s, 0 model calls). For scale, the same page's rerun with a method added
   (a cache miss: one forward+backward) and a plain forward+backward of the model are printed too.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOME = str(ROOT / "dashboard" / "Home.py")
RUNS = 7


def main() -> None:
    t_start = time.perf_counter()
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(HOME, default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    views = [img for img in at.image if "colours:" not in img.proto.imgs[0].caption]  # not the colour bar
    assert not at.exception and len(views) == 4, "Home did not draw its four views"
    assert at.selectbox(key="w_model").value == "efficientnet_lite0" and at.selectbox(key="w_image").value == "chelsea"
    print("\n== Time to the first map on Home (the default view: efficientnet_lite0 on chelsea, Grad-CAM at bn2)")
    print(f"  cold process: AppTest run {cold:6.2f} s  (+ {t0 - t_start:.2f} s to import streamlit's test harness)")

    import streamlit as st

    from dashboard.app import cache, navigation

    for model in ("efficientnet_lite0", "scenes_vgg"):
        warm = []
        for _ in range(3):
            st.cache_data.clear()
            st.cache_resource.clear()
            fresh = AppTest.from_file(HOME, default_timeout=600)
            fresh.query_params["model"] = model
            t0 = time.perf_counter()
            fresh.run()
            assert not fresh.exception
            warm.append(time.perf_counter() - t0)
        print(f"  warm process, caches cleared, {model:<18s}: median {statistics.median(warm):6.2f} s over {len(warm)}")

    # ---- reruns after display changes on the Methods page
    at = AppTest.from_file(HOME, default_timeout=600)
    at.query_params["model"] = "scenes_vgg"
    at.run()
    at.switch_page("pages/1_Methods.py").run()
    assert not at.exception
    net = cache.model_handle("scenes_vgg").loaded.model
    forwards = [0]
    hook = net.register_forward_pre_hook(lambda m, a: forwards.__setitem__(0, forwards[0] + 1))
    changes = {
        "normalization mode": ("selectbox", "w_norm", ["max", "minmax"]),
        "ReLU on/off": ("checkbox", "w_relu", [False, True]),
        "scope per map/shared": ("radio", "w_scope", ["shared", "per_map"]),
        "colormap": ("selectbox", "w_cmap", ["viridis", "jet"]),
        "alpha": ("slider", "w_alpha", [0.3, 0.6]),
    }
    print("\n== Rerun of the Methods page (3 methods) after a display change")
    rows = []
    try:
        for label, (kind, key, values) in changes.items():
            calls, fwd = sum(cache.MODEL_CALLS.values()), forwards[0]
            times = []
            for i in range(RUNS):
                getattr(at, kind)(key=key).set_value(values[i % 2])
                t0 = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t0)
            assert not at.exception
            made = sum(cache.MODEL_CALLS.values()) - calls
            rows.append((label, statistics.median(times), made, forwards[0] - fwd))
        extra = ["xgradcam", "hirescam", "eigencam", "gradcampp"]
        miss = []
        for name in extra:  # each adds a method not cached yet: one explain call
            at.multiselect(key="w_methods").set_value(["gradcam", name])
            t0 = time.perf_counter()
            at.run()
            miss.append(time.perf_counter() - t0)
    finally:
        hook.remove()
    for label, t, made, fwd in rows:
        verdict = "met" if t < 0.3 and made == 0 and fwd == 0 else "NOT met"
        print(
            f"  {label:<24s} median {t * 1000:7.1f} ms   model calls {made}   forwards {fwd}   (goal < 300 ms, 0 calls: {verdict})"
        )
    print(f"  {'method added (cache miss)':<24s} median {statistics.median(miss) * 1000:7.1f} ms")

    import torch

    handle = cache.model_handle("scenes_vgg")
    x = torch.as_tensor(handle.loaded.preprocess(cache.image_for(at.session_state[navigation.VIEW_KEY].image)))[None]
    x.requires_grad_(True)
    plain = []
    with handle.lock:
        for _ in range(RUNS):
            t0 = time.perf_counter()
            torch.autograd.grad(handle.loaded.model(x).max(), x)  # gradient to the input only: no .grad left
            plain.append(time.perf_counter() - t0)
    base = statistics.median(plain)
    print(f"  {'plain forward+backward':<24s} median {base * 1000:7.1f} ms  (to the input, same model and image)")
    worst = max(t for _, t, _, _ in rows)
    print(f"  slowest display rerun / plain forward+backward = {worst / base:.2f}")


if __name__ == "__main__":
    main()
