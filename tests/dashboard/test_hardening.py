"""The dashboard against hostile links and uploads, long work, and shared use (issue 16), under AppTest.

Each test names what the audit saw before the fix. Slow work is played by test methods registered
for one test (a "score" family method whose maps wait for the test), so nothing here takes long.
"""

from __future__ import annotations

import gc
import io
import struct
import threading
import weakref

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_kit import (
    HOME,
    PAGES,
    ROOT,
    TIMEOUT,
    assert_clean,
    live_markup,
    map_images,
    open_app,
    plain,
    plotly_specs,
    run_page,
    texts,
)
from dashboard.app import cache, jobs, navigation, uploads, widgets
from methods.errors import Cancelled
from methods.runtime import ProgressTracker
from methods.viz import render

METHODS_PAGE = str(ROOT / "dashboard" / PAGES["methods"])
LAYERS_PAGE = str(ROOT / "dashboard" / PAGES["layers"])
EVIL = "http://evil.example"


def _checkpoint(kind: str = "plain", num_classes: int = 3) -> bytes:
    import torchvision

    torch.manual_seed(0)
    sd = torchvision.models.squeezenet1_1(num_classes=num_classes).state_dict()
    if kind == "int":
        sd = {k: (v * 100).to(torch.int64) for k, v in sd.items()}
    elif kind == "complex":
        sd = {k: v.to(torch.complex64) if v.is_floating_point() else v for k, v in sd.items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def _load(at: AppTest, name: str, data: bytes, num_classes: int) -> AppTest:
    at.file_uploader(key="w_ckpt_file").set_value((name, data, "application/octet-stream"))
    at.selectbox(key="w_ckpt_arch").set_value("squeezenet1_1")
    at.number_input(key="w_ckpt_classes").set_value(num_classes)
    at.run()
    return at.button(key="w_ckpt_load").click().run()


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _tiff_pillow_chokes_on() -> bytes:
    """An 8x8 TIFF whose StripOffsets tag claims the ASCII type: Pillow 13 raises a TypeError
    ("'str' object cannot be interpreted as an integer") while decoding it (found by mutating
    tag types of a valid file)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="TIFF")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<HI", data, entry + 2, 2, 1)  # type ASCII, count 1
    return bytes(data)


# ------------------------------------------------------------------------------------------
# no traceback ever


@pytest.mark.parametrize("kind", ["int", "complex"])
def test_strange_checkpoint_weights_are_messages_not_tracebacks(kind):
    """Integer weights replaced the whole page with a traceback, complex ones broke Home."""
    at = _load(run_page(), f"{kind}.pt", _checkpoint(kind), 3)
    assert not at.exception, [e.value[:300] for e in at.exception]
    assert at.error, "the failure is said"
    for error in at.error:
        assert "Traceback" not in error.value and len(plain(error.value)) < 400  # short; details folded away
    assert [t.value for t in at.title] == ["GradLens"] and at.sidebar.selectbox(key="w_model")


def test_a_tiff_that_makes_pillow_raise_typeerror_is_a_message():
    at = run_page()
    at.file_uploader(key="w_image_upload").set_value(("odd.tif", _tiff_pillow_chokes_on(), "image/tiff")).run()
    assert not at.exception
    (error,) = at.sidebar.error
    assert plain(error.value).startswith("odd.tif: ") and "Traceback" not in error.value
    assert not at.selectbox(key="w_image").value.startswith("upload:")  # the page keeps its image
    assert len(map_images(at)) == 4


def _boom(*args, **kwargs):
    raise RuntimeError("a planted bug, with a long message that must stay in the details")


@pytest.mark.parametrize(
    "target",
    [
        "dashboard.core.menus.sample_choices",
        "dashboard.core.menus.model_choices",
        "dashboard.app.widgets.layer_select",
        "dashboard.draw.figures.map_figure",
        "dashboard.app.save_panel.identity_panel",
    ],
    ids=["sidebar image", "sidebar model", "controls", "show", "save panel"],
)
def test_a_bug_in_any_part_of_a_page_is_a_short_message(monkeypatch, target):
    """Every part of a page (each sidebar section, controls, show, the save panel) goes through
    errors.shown_errors: a short message with an error id (the traceback only in the server log),
    the rest of the page drawn."""
    monkeypatch.setattr(target, _boom)
    at = run_page("methods")
    assert not at.exception, [e.value[:300] for e in at.exception]
    errors = [plain(e.value) for e in at.error]
    assert any(e.startswith("Something went wrong while") for e in errors), errors
    assert not any("planted" in e for e in errors)
    assert not any(x.label == "Details" for x in at.expander) and not any("Traceback" in c.value for c in at.code)
    assert any("Error id" in e for e in errors)
    assert [t.value for t in at.title] == ["Methods side by side"]


# ------------------------------------------------------------------------------------------
# markdown injection


def test_values_echoed_from_a_link_render_as_text():
    """``?model=[Click to re-login](http://…)`` was a live link inside a warning, and
    ``?image=upload:x ![t](http://…)`` fetched a remote image; a parameter NAME too."""
    query = {
        "model": f"[Click to re-login]({EVIL}/login)",
        "image": f"upload:x ![t]({EVIL}/t.png)",
        f"[name]({EVIL}/n)": "1",
        "layer": f"[layer]({EVIL}/l)",
        "methods": f"gradcam,[m]({EVIL})",
        "opts": f"gradcam.[o]({EVIL}):1",
        "cmap": f"<img src={EVIL}/c.png>",
        "target": "www.evil.example",
    }
    at = open_app(METHODS_PAGE)
    at.query_params.update(query)
    at.run()
    assert_clean(at)
    shown = texts(at.warning)
    for value in (f"[Click to re-login]({EVIL}/login)", f"[name]({EVIL}/n)", f"[layer]({EVIL}/l)", f"<img src={EVIL}"):
        assert value in shown, value  # said, as text
    assert live_markup(at) == []
    assert len(plotly_specs(at)) == 1  # and the page still draws its maps


@pytest.mark.parametrize("bad", [f"[x]({EVIL})", f"![t]({EVIL}/t.png)"])
def test_a_hostile_snapshot_id_is_text(bad):
    at = AppTest.from_file(str(ROOT / "dashboard" / PAGES["review"]), default_timeout=TIMEOUT)
    at.query_params["snapshot"] = bad
    at.run()
    assert not at.exception and len(at.error) == 1
    assert live_markup(at) == []


# ------------------------------------------------------------------------------------------
# slow work: a click in this session, cancellable, stopped with its session, the model left free


@pytest.fixture
def score_method():
    """Registers a score-family (slow) test method for one test; ``make(name, compute)``."""
    from methods import ForwardMethod, register_method
    from methods.cams.core.registry import _REGISTRY

    names = []

    def make(name: str, compute):
        @register_method(
            name=name, label=name.replace("_", "-"), family="score", cost="8 forwards", summary="test only"
        )
        class Method(ForwardMethod):
            def compute_layer(self, ctx):
                return compute(ctx)

        names.append(name)
        return Method

    yield make
    for name in names:
        _REGISTRY.pop(name, None)  # the registry has no public unregister; keep it clean


def test_a_link_never_starts_slow_work(score_method):
    """``?slow=1`` ran every slow method of the page with no click (SS-CAM on every layer)."""
    ran = []

    def compute(ctx):
        ran.append(1)
        return ctx.activations.mean(dim=1)  # (N, h, w)

    score_method("test_linkcam", compute)
    at = open_app(METHODS_PAGE)
    at.query_params.update({"methods": "gradcam,test_linkcam", "slow": "1"})
    at.run()
    assert_clean(at)
    assert ran == []
    assert "never starts slow work" in texts(at.warning)
    assert at.toggle(key="w_slow").value is False
    assert any("test-linkcam is slow" in m.value for m in at.markdown)
    at.button(key="methods_run_test_linkcam").click().run()  # a click in this session runs it
    assert_clean(at)
    assert ran == [1]


class _Blocker:
    """A slow test method's body: it tells when it starts, then waits for the test (calling the
    progress callback between "batches", as the score engine does) and records how it ended."""

    def __init__(self) -> None:
        self.started, self.release, self.ended = threading.Event(), threading.Event(), threading.Event()
        self.how = None

    def __call__(self, ctx):
        self.started.set()
        try:
            while not self.release.wait(0.02):
                ctx.progress(0, 1)
            self.how = "finished"
        except Cancelled:
            self.how = "cancelled"
            raise
        finally:
            self.ended.set()
        return ctx.activations.mean(dim=1)


def _start_in_background(at: AppTest, button: str) -> threading.Thread:
    thread = threading.Thread(target=lambda: at.button(key=button).click().run(timeout=TIMEOUT), daemon=True)
    thread.start()
    return thread


def test_a_slow_job_leaves_the_model_free_for_other_sessions(score_method):
    """A second session on the same model did not render for 150 s while SS-CAM held the model's
    lock: now a slow job runs on its own copy, and the shared model is free meanwhile."""
    blocker = _Blocker()
    score_method("test_blockcam", blocker)
    first = open_app(METHODS_PAGE)
    first.query_params.update({"methods": "gradcam,test_blockcam"})
    first.run()
    job = _start_in_background(first, "methods_run_test_blockcam")
    try:
        assert blocker.started.wait(TIMEOUT)
        second = open_app(HOME).run()  # another session, same model
        rng = np.random.default_rng(16)
        picture = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)  # new pixels: prediction and map run
        second.file_uploader(key="w_image_upload").set_value(("new.png", _png(picture), "image/png")).run()
        assert_clean(second)
        assert len(map_images(second)) == 4
        assert not blocker.ended.is_set()  # ...while the first session's job still runs
        assert cache.model_handle("scenes_vgg").lock.acquire(timeout=5)  # the shared lock is free
        cache.model_handle("scenes_vgg").lock.release()
    finally:
        blocker.release.set()
        job.join(TIMEOUT)
    assert blocker.how == "finished"


def test_a_job_stops_when_its_session_ends(score_method, monkeypatch):
    """The server kept computing 50 s after the tab closed: the job's progress callback now
    checks the session between batches."""
    blocker = _Blocker()
    score_method("test_orphancam", blocker)
    alive = threading.Event()
    alive.set()
    monkeypatch.setattr(jobs, "_session_alive", lambda session_id: alive.is_set())
    at = open_app(METHODS_PAGE)
    at.query_params.update({"methods": "gradcam,test_orphancam"})
    at.run()
    job = _start_in_background(at, "methods_run_test_orphancam")
    try:
        assert blocker.started.wait(TIMEOUT)
        alive.clear()  # the browser tab is closed
        assert blocker.ended.wait(30)
        assert blocker.how == "cancelled"  # stopped at its next batch, not released by the test
    finally:
        blocker.release.set()
        job.join(TIMEOUT)
    for _ in range(cache.SLOW_SLOTS):  # every slot is free again
        assert cache._SLOW_SLOTS.acquire(timeout=5)
    for _ in range(cache.SLOW_SLOTS):
        cache._SLOW_SLOTS.release()


@pytest.mark.parametrize("busy", ["slot", "model lock"])
def test_waiting_for_a_busy_model_can_be_cancelled(monkeypatch, busy):
    """A job waiting for the model (or for a free slow slot) stops when it is cancelled, instead
    of waiting for the other session's job to end."""
    handle = cache.model_handle("scenes_vgg")
    monkeypatch.setattr(cache, "_SLOW_SLOTS", threading.BoundedSemaphore(1))
    lock = cache._SLOW_SLOTS if busy == "slot" else handle.lock
    assert lock.acquire(timeout=5)  # someone else holds it
    tracker, outcome = ProgressTracker(), []

    def job():
        try:
            with cache._private_model(handle, tracker):
                outcome.append("ran")
        except Cancelled:
            outcome.append("cancelled")

    thread = threading.Thread(target=job, daemon=True)
    try:
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and outcome == []  # waiting
        tracker.cancelled = True
        thread.join(10)
        assert outcome == ["cancelled"]
    finally:
        lock.release()


def test_a_private_copy_is_the_same_model_and_leaves_the_shared_one_alone():
    handle = cache.model_handle("scenes_vgg")
    with cache._private_model(handle, None) as own:
        assert own.model is not handle.loaded.model
        shared = dict(handle.loaded.model.state_dict())
        for name, tensor in own.model.state_dict().items():
            assert torch.equal(tensor, shared[name]) and tensor.data_ptr() != shared[name].data_ptr()
        assert handle.lock.acquire(blocking=False)  # not held during the job
        handle.lock.release()


# ------------------------------------------------------------------------------------------
# uploads: bounded per session, released with it


def test_uploaded_checkpoints_are_capped_per_session(monkeypatch):
    """4 × 45 MB checkpoints added 418 MB to one session; now the oldest go beyond the limit."""
    monkeypatch.setitem(uploads.UPLOAD_LIMITS, "models", (2, 10**10))
    at = run_page()
    for n in (3, 4, 5):
        _load(at, f"m{n}.pt", _checkpoint("plain", n), n)
        assert_clean(at)
    shown = [o for o in at.selectbox(key="w_model").options if o.startswith("Uploaded")]
    assert shown == ["Uploaded: m4.pt (squeezenet1_1)", "Uploaded: m5.pt (squeezenet1_1)"]
    assert "Dropped the oldest uploaded checkpoint, m3.pt" in texts(at.sidebar.info)
    assert at.selectbox(key="w_model").value.startswith("upload:")  # the newest is shown


def test_the_upload_byte_limit_drops_the_oldest_and_refuses_a_too_large_one(monkeypatch):
    one = sum(
        t.numel() * t.element_size()
        for t in torch.load(io.BytesIO(_checkpoint("plain", 3)), weights_only=True).values()
    )
    monkeypatch.setitem(uploads.UPLOAD_LIMITS, "models", (10, int(one * 1.5)))
    at = _load(run_page(), "a.pt", _checkpoint("plain", 3), 3)
    _load(at, "b.pt", _checkpoint("plain", 4), 4)
    assert [o for o in at.selectbox(key="w_model").options if o.startswith("Uploaded")] == [
        "Uploaded: b.pt (squeezenet1_1)"
    ]
    monkeypatch.setitem(uploads.UPLOAD_LIMITS, "models", (10, one // 2))
    _load(at, "c.pt", _checkpoint("plain", 5), 5)
    (error,) = at.sidebar.error
    assert "more than the" in plain(error.value) and "MB a session may hold" in plain(error.value)


def test_uploaded_images_are_capped_per_session(monkeypatch):
    monkeypatch.setitem(uploads.UPLOAD_LIMITS, "images", (2, 10**9))
    at = run_page()
    for i in range(3):
        at.file_uploader(key="w_image_upload").set_value(
            (f"p{i}.png", _png(np.full((32, 32, 3), 40 * i, np.uint8)), "image/png")
        ).run()
    shown = [o for o in at.selectbox(key="w_image").options if o.startswith("Uploaded")]
    assert shown == ["Uploaded: p1.png", "Uploaded: p2.png"]
    assert "Dropped the oldest uploaded image, p0.png" in texts(at.sidebar.info)


class _Probe(np.ndarray):
    """An ndarray that can be weakly referenced (a plain one cannot)."""


def test_uploads_are_held_by_their_session_and_freed_with_it(monkeypatch):
    """Checkpoints were kept by st.cache_resource after their session ended; now the session's
    state holds the loaded model and the decoded image, and nothing else does."""
    real = uploads.load_image
    monkeypatch.setattr(uploads, "load_image", lambda data: real(data).view(_Probe))
    at = _load(run_page(), "gone.pt", _checkpoint("plain", 3), 3)
    at.file_uploader(key="w_image_upload").set_value(
        ("gone.png", _png(np.full((40, 40, 3), 9, np.uint8)), "image/png")
    ).run()
    assert_clean(at)
    (model,) = at.session_state["_uploaded_models"].values()
    (image,) = at.session_state["_uploaded_images"].values()
    model_ref, image_ref = weakref.ref(model["handle"].loaded.model), weakref.ref(image["image"])
    del model, image
    gc.collect()
    assert model_ref() is not None and image_ref() is not None  # the session holds them...
    del at
    gc.collect()
    assert model_ref() is None and image_ref() is None  # ...and only the session


# ------------------------------------------------------------------------------------------
# downloads, labels, colour scales, small texts


@pytest.mark.parametrize("page", [None, "methods", "layers", "normalization"])
def test_download_buttons_never_rerun_the_page(page):
    """The rerun a download button sent before asking for its file made the file's id stale:
    "Table as CSV" did nothing in 2 of 5 clicks right after a settings change."""
    at = run_page(page)
    buttons = at.get("download_button")
    assert buttons and all(b.proto.ignore_rerun for b in buttons), [b.proto.label for b in buttons]


def test_the_target_label_follows_the_image_in_the_same_run():
    """The class box kept "Top-1 prediction: star (85.8%)" after an image change, until the next rerun."""
    at = run_page()
    at.run()  # a plain rerun: nothing to refresh
    assert not at.selectbox(key="w_target").proto.set_value
    at.selectbox(key="w_image").set_value("scene_cross_noise").run()
    box = at.selectbox(key="w_target")
    top = at.dataframe[0].value.iloc[0]  # this run's Prediction table
    assert box.proto.set_value and box.proto.raw_value == f"Top-1 prediction: {top['Class']} ({top['Probability']:.1%})"


def _ramp_row(picture: np.ndarray, cmap: str, min_length: int = 120) -> bool:
    """True when some row of ``picture`` holds a colour bar: a run of at least ``min_length``
    pixels that are exactly the colormap's colours, in order, from its low end to its high end."""
    lut = render.heatmap(np.arange(256, dtype=np.float32)[None] / 255, (1, 256), colormap=cmap)[0]  # (256, 3)
    index = {tuple(c): i for i, c in enumerate(lut)}
    for row in picture:
        ids = [index.get(tuple(p), -1) for p in row]
        start = 0
        for x in range(1, len(ids) + 1):
            if x == len(ids) or ids[x] < 0 or ids[x] < ids[x - 1] or ids[start] < 0:
                if x - start >= min_length and ids[start] <= 2 and ids[x - 1] >= 253:
                    return True
                start = x
    return False


@pytest.mark.parametrize("page", [None, "methods", "layers", "normalization"])
def test_every_exported_map_picture_carries_its_colour_scale(monkeypatch, page):
    """Exports had no colour bar and no word on the normalization or the value range."""
    made = []
    monkeypatch.setattr(
        widgets,
        "download_png",
        lambda label, picture, file_name, key, *, info=None: made.append((label, picture, info)),
    )
    at = run_page(page)
    assert_clean(at)
    assert made
    for label, picture, info in made:
        image = picture()
        assert _ramp_row(image, "jet"), label
        assert info and "GradLens normalization" in info and "GradLens colour range" in info, (label, info)
    if page is None:
        assert "0 (left) to 1 (right)" in made[0][2]["GradLens colour range"]  # min-max: the colours span [0, 1]


def test_pages_draw_colour_bars():
    at = run_page()
    (bar,) = [img for img in at.image if "colours:" in img.proto.imgs[0].caption]
    assert "0 (left) to 1 (right)" in bar.proto.imgs[0].caption
    at.switch_page(PAGES["layers"]).run()
    assert len([img for img in at.image if "colours:" in img.proto.imgs[0].caption]) == 1


def test_a_shared_scale_across_methods_says_their_units_differ():
    """Grad-CAM++'s raw maximum (22.8) next to the others' (about 0.19) blanked them, silently."""
    at = open_app(METHODS_PAGE)
    at.query_params.update({"methods": "gradcam,gradcampp,layercam", "scope": "shared", "norm": "raw"})
    at.run()
    assert_clean(at)
    (note,) = [plain(i.value) for i in at.info if "units differ" in plain(i.value)]
    for label in ("Grad-CAM", "Grad-CAM++", "LayerCAM"):
        assert label in note
    assert "apart" in note and "Layers page" in note
    at.radio(key="w_scope").set_value("per_map").run()
    assert not [i for i in at.info if "units differ" in plain(i.value)]


def test_layers_states_what_the_maps_cost(score_method):
    """Layers said "from one pass" for Score-CAM, where 1,536 masked forwards ran."""
    score_method("test_costcam", lambda ctx: ctx.activations.mean(dim=1))
    rows, _ = cache.layer_infos(cache.model_handle("scenes_vgg"))
    picked = [rows[0].name, rows[-1].name]
    at = open_app(LAYERS_PAGE)
    at.query_params.update({"method": "test_costcam", "layers": ",".join(picked)})
    at.run()
    at.button(key="layers_run_test_costcam").click().run()
    assert_clean(at)
    caption = plain(at.caption[0].value)
    channels = rows[0].shape[0] + rows[-1].shape[0]
    assert "costs 8 forwards for each layer" in caption and f"{channels:,} channels over these 2 layers" in caption
    assert "one pass" not in caption
    at.selectbox(key="w_method").set_value("gradcam").run()
    assert "1 fwd + 1 bwd records all 2 layers at once" in plain(at.caption[0].value)


def test_a_layer_from_a_link_that_the_model_lacks_is_said_on_every_page():
    """``?layer=nonexistent`` was kept silently on Layers (and Home), then used elsewhere."""
    for page in (LAYERS_PAGE, HOME):
        at = open_app(page)
        at.query_params.update({"layer": "nonexistent", "image": "nosuch"})
        at.run()
        assert_clean(at)
        shown = texts(at.warning)
        assert "'nonexistent' is not a layer" in shown and "Showing the default layer" in shown
        assert "using the model's default sample" in shown  # not "using ."
        assert "layer" not in at.query_params


def test_the_page_icon_needs_no_network():
    """``:material/…:`` page icons are fetched from fonts.gstatic.com, which fails offline."""
    assert not navigation.PAGE_ICON.startswith(":") and len(navigation.PAGE_ICON) <= 2


def test_csv_downloads_neutralise_formulas(monkeypatch):
    """The Methods table download wrote "=HYPERLINK(...)" cells as formulas; every dashboard CSV now
    goes through methods.review.csv_safe (a leading quote on text that starts a formula)."""
    import pandas as pd

    made = {}
    monkeypatch.setattr(widgets.st, "download_button", lambda label, data, **kw: made.setdefault(kw["key"], data))
    frame = pd.DataFrame(
        {"Method": ['=HYPERLINK("http://127.0.0.1:8999/x","y")', "@SUM(1+1)", "Grad-CAM"], "AUC": [-0.5, 0.25, 1.0]}
    )
    widgets.download_csv("t", frame, "t.csv", key="k")
    text = made["k"]().decode()
    assert text.splitlines() == [
        "Method,AUC",
        '"\'=HYPERLINK(""http://127.0.0.1:8999/x"",""y"")",-0.5',
        "'@SUM(1+1),0.25",
        "Grad-CAM,1.0",
    ]
