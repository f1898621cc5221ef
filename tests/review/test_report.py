"""Tests for methods/report.py: the self-contained HTML report and the ZIP export.

Snapshots go through a real SnapshotStore (tmp_path) so the reports are built from what the store
gives back. Expected pictures are computed by hand or with methods.viz.render directly.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from methods.review.codec import encode_png
from methods.review.report import (
    StoredCurve,
    curves_of,
    display_ranges,
    html_report,
    rendered_maps,
    safe_name,
    zip_report,
)
from methods.review.store import NewSnapshot, NormSettings, SnapshotStore
from methods.viz import render

PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
)


# ----------------------------------------------------------------------------- helpers


class _Tags(HTMLParser):
    """Every start tag with its attributes (script/style bodies are text to the parser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def _tags(doc: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(doc)
    parser.close()
    return parser.tags


def _image(h: int = 40, w: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _curves() -> dict:
    f = np.linspace(0.0, 1.0, 11)
    return {
        "gradcam": {
            "deletion": {"fractions": f.tolist(), "scores": np.exp(-3 * f).tolist(), "auc": 0.3167},
            "insertion": {"fractions": f.tolist(), "scores": f.tolist(), "auc": 0.5},
        },
        "layercam": {"deletion": [0.9, 0.5, 0.1]},  # bare scores: fractions 0, .5, 1
    }


@pytest.fixture()
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "r.sqlite3")


@pytest.fixture()
def hostile(store: SnapshotStore):
    """A snapshot with an attack payload in every text field, plus hostile comments."""
    p0, p1, p2 = PAYLOADS
    rng = np.random.default_rng(1)
    maps = {
        p0: {p1: rng.standard_normal((4, 5)).astype(np.float32)},
        "gradcam": {"layer4": rng.standard_normal((4, 5)).astype(np.float32)},
    }
    metrics = {"auc": {p2: 0.25}, "curves": {p0: {"deletion": [0.9, 0.4, 0.2]}, **_curves()}}
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(_image()),
            model_id=p1,
            author=p2,
            methods=(p0, "gradcam"),
            layers=(p1, "layer4"),
            maps=maps,
            page=p0,
            target_index=3,
            target_name=p0,
            view={p1: p2, "cmap": p0},
            metrics=metrics,
            title=p0 + p1,
            note=p1 + "\n" + p2,
        )
    )
    store.add_comment(sid, author=p0, text=p1)
    store.add_comment(sid, author="ben", text=p2 + " & more")
    return store.get(sid), {sid: store.comments(sid)}


def _data_pngs(doc: str) -> list[np.ndarray]:
    out = []
    for tag, attrs in _tags(doc):
        if tag == "img":
            src = attrs["src"]
            assert src.startswith("data:image/png;base64,")
            out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))))
    return out


# ----------------------------------------------------------------------------- HTML: escaping


def test_html_escapes_every_user_text(hostile) -> None:
    snap, comments = hostile
    doc = html_report([snap], comments=comments, title=PAYLOADS[1])
    for payload in PAYLOADS:
        assert payload not in doc  # never raw
        assert html.escape(payload) in doc  # shown, as text
    # what the browser will build: only our own tags, no event handlers, scripts only inline plotly
    allowed = {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "h1",
        "p",
        "nav",
        "ol",
        "li",
        "a",
        "span",
        "section",
        "h2",
        "h3",
        "code",
        "div",
        "table",
        "tr",
        "th",
        "td",
        "details",
        "summary",
        "figure",
        "img",
        "figcaption",
        "i",
        "script",
    }
    tags = _tags(doc)
    assert {t for t, _ in tags} <= allowed
    assert not [(t, a) for t, a in tags for name in a if name.startswith("on")]
    assert [t for t, _ in tags].count("svg") == 0
    # the escaped texts are exactly the stored texts once the entities are decoded
    assert html.escape(snap.title) in doc and html.escape(snap.note) in doc
    assert html.escape(comments[snap.id][1].text) in doc  # "&" escaped too


def test_plotly_trace_names_cannot_break_out(hostile) -> None:
    snap, comments = hostile
    doc = html_report([snap], comments=comments)
    scripts = doc.split("<script")
    # inside the figure's JSON, the hostile method name is HTML-escaped and JSON-escaped: no "<" at all
    figure_script = next(s for s in scripts if "Plotly.newPlot" in s)
    assert "</script><script>" not in figure_script.split("</script>", 1)[0]
    assert "alert(1)" in figure_script and "<script>alert(1)" not in figure_script
    assert '"name":"&lt;script&gt;alert(1)&lt;\\u002fscript&gt;"' in figure_script  # escaped, then JSON


# ----------------------------------------------------------------------------- HTML: offline, content


def test_html_opens_offline_with_plotly_inline_once(store: SnapshotStore) -> None:
    ids = [
        store.save(
            NewSnapshot(
                image_png=encode_png(_image(seed=k)),
                model_id="m",
                author="a",
                maps={"gradcam": {"l": np.ones((2, 2), np.float32)}},
                metrics={"curves": _curves()},
            )
        )
        for k in range(2)
    ]
    doc = html_report([store.get(i) for i in ids])
    tags = _tags(doc)
    for tag, attrs in tags:
        for name in ("src", "href"):
            value = (attrs.get(name) or "").strip().lower()
            if tag == "a" and name == "href":
                assert value.startswith("#")  # in-page links only
            elif value:
                assert value.startswith("data:"), (tag, value[:60])
    assert "link" not in {t for t, _ in tags}
    scripts = [a for t, a in tags if t == "script"]
    assert scripts and all("src" not in a for a in scripts)
    assert doc.count("* plotly.js v") == 1  # the bundle, once for two figures
    assert doc.count("Plotly.newPlot(") == 2
    assert 'id="curves-' + ids[0] + '"' in doc and 'id="curves-' + ids[1] + '"' in doc


def test_html_without_curves_has_no_plotly(store: SnapshotStore) -> None:
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(_image()),
            model_id="m",
            author="a",
            maps={"gradcam": {"l": np.ones((2, 2), np.float32)}},
            metrics={"auc": 0.5},
        )
    )
    doc = html_report([store.get(sid)])
    assert "plotly" not in doc.lower() and "<script" not in doc
    assert len(doc) < 200_000


def test_html_content(hostile) -> None:
    snap, comments = hostile
    doc = html_report([snap, snap], comments=comments)  # a duplicate is shown once
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    assert doc.count('<section class="snapshot"') == 1
    pngs = _data_pngs(doc)
    assert len(pngs) == 1 + 2 * 2  # original + (heatmap, overlay) per map
    np.testing.assert_array_equal(pngs[0], snap.image_array())  # 40x30: not downscaled
    assert all(p.shape == (40, 30, 3) for p in pngs)
    for needle in (
        "Settings",
        "Comments (2)",
        "unreviewed",
        "minmax, relu=on, scope=per_map",
        "jet / 0.5",
        "30×40 px",
        snap.image_sha256,
        "AUC",
        "0.3167",
        "deletion",
    ):
        assert needle in doc
    assert '<table class="metrics">' in doc and "0.25" in doc


def test_html_downscales_large_images(store: SnapshotStore) -> None:
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(_image(300, 1200)),
            model_id="m",
            author="a",
            maps={"g": {"l": np.ones((3, 3), np.float32)}},
        )
    )
    pngs = _data_pngs(html_report([store.get(sid)], max_side=400))
    assert [p.shape for p in pngs] == [(100, 400, 3)] * 3


def test_html_empty() -> None:
    doc = html_report([])
    assert "No snapshots." in doc and "<section" not in doc


# ----------------------------------------------------------------------------- rendering numbers


def _snap(store: SnapshotStore, maps: dict, norm: NormSettings, **kw):
    return store.get(
        store.save(
            NewSnapshot(
                image_png=encode_png(kw.pop("image", _image(4, 4))),
                model_id="m",
                author="a",
                maps=maps,
                normalization=norm,
                **kw,
            )
        )
    )


def test_rendered_maps_apply_stored_normalization_by_hand(store: SnapshotStore) -> None:
    """minmax after ReLU: [[-1, 0], [1, 3]] -> [[0, 0], [1/3, 1]]; the 2x2 map drawn on a 2x2 image
    needs no resize, so the heatmap's pixels are the colormap at round(255 * value)."""
    raw = np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32)
    img = np.full((2, 2, 3), 100, np.uint8)
    snap = _snap(
        store, {"g": {"l": raw}}, NormSettings(mode="minmax", relu=True), image=img, colormap="hot", alpha=0.25
    )
    (r,) = rendered_maps(snap)
    np.testing.assert_allclose(r.normalized, [[0, 0], [1 / 3, 1]], atol=1e-7)
    assert r.value_range == (0.0, 1.0) and r.raw.tobytes() == raw.tobytes()
    lut = cv2.cvtColor(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_HOT), cv2.COLOR_BGR2RGB)[
        :, 0
    ]
    np.testing.assert_array_equal(r.heatmap, lut[[[0, 0], [85, 255]]])
    expected_overlay = np.round(0.75 * 100 + 0.25 * r.heatmap.astype(np.float32)).astype(np.uint8)
    np.testing.assert_array_equal(r.overlay, expected_overlay)


def test_rendered_maps_shared_scope_and_signed_max(store: SnapshotStore) -> None:
    a = np.array([[0.0, 2.0]], np.float32)
    b = np.array([[-4.0, 4.0]], np.float32)
    shared = _snap(store, {"m1": {"l": a}, "m2": {"l": b}}, NormSettings(mode="max", relu=False, scope="shared"))
    r1, r2 = rendered_maps(shared)
    np.testing.assert_allclose(r1.normalized, [[0.0, 0.5]])  # one peak (4) for both maps
    np.testing.assert_allclose(r2.normalized, [[-1.0, 1.0]])
    assert r1.value_range == r2.value_range == (-1.0, 1.0)  # signed: 0 stays mid-colormap
    per_map = _snap(store, {"m1": {"l": a}, "m2": {"l": b}}, NormSettings(mode="max", relu=True, scope="per_map"))
    r1, r2 = rendered_maps(per_map)
    np.testing.assert_allclose(r1.normalized, [[0.0, 1.0]])
    np.testing.assert_allclose(r2.normalized, [[0.0, 1.0]])
    assert r1.value_range == (0.0, 1.0)
    # the picture is what methods.viz.render draws from the same inputs: a signed display (max, no
    # ReLU) in the diverging colormap whatever the snapshot's colormap (jet) says
    img = shared.image_array()
    np.testing.assert_array_equal(
        rendered_maps(shared)[1].overlay,
        render.overlay(
            img, np.array([[-1.0, 1.0]], np.float32), colormap="diverging", alpha=0.5, value_range=(-1.0, 1.0)
        ),
    )


def test_display_ranges_raw_mode() -> None:
    """After ReLU: the values' own range. Without: symmetric [-a, a] (0 in the middle of the colours)."""
    a, b = np.array([[1.0, 3.0]]), np.array([[-2.0, 0.0]])
    assert display_ranges([a, b], mode="raw", relu=True, scope="per_map") == [(1.0, 3.0), (-2.0, 0.0)]
    assert display_ranges([a, b], mode="raw", relu=True, scope="shared") == [(-2.0, 3.0)] * 2
    assert display_ranges([a, b], mode="raw", relu=False, scope="per_map") == [(-3.0, 3.0), (-2.0, 2.0)]
    assert display_ranges([a, b], mode="raw", relu=False, scope="shared") == [(-3.0, 3.0)] * 2
    assert display_ranges([np.zeros((2, 2))], mode="raw", relu=True, scope="per_map") == [(0.0, 1.0)]
    assert display_ranges([np.zeros((2, 2))], mode="raw", relu=False, scope="per_map") == [(-1.0, 1.0)]
    assert display_ranges([a], mode="percentile", relu=False, scope="shared") == [(0.0, 1.0)]


# ----------------------------------------------------------------------------- curves


def test_curves_of_formats_and_malformed_entries() -> None:
    curves = curves_of(
        {
            "curves": {
                **_curves(),
                "bad1": {"deletion": "not a list", "insertion": {"fractions": [0, 1], "scores": [1, 2, 3]}},
                "bad2": {"deletion": [1, "x"], "insertion": {"scores": []}},
                "bad3": [1, 2, 3],
            }
        }
    )
    assert [(c.method, c.kind) for c in curves] == [
        ("gradcam", "deletion"),
        ("gradcam", "insertion"),
        ("layercam", "deletion"),
    ]
    assert curves[1] == StoredCurve(
        method="gradcam",
        kind="insertion",
        fractions=tuple(np.linspace(0, 1, 11).tolist()),
        scores=tuple(np.linspace(0, 1, 11).tolist()),
        auc=0.5,
    )
    assert curves[2].fractions == (0.0, 0.5, 1.0) and curves[2].auc is None
    assert curves_of({}) == [] and curves_of({"curves": [1]}) == []


# ----------------------------------------------------------------------------- ZIP


def test_zip_contents(store: SnapshotStore) -> None:
    img = _image(24, 36, seed=5)
    rng = np.random.default_rng(2)
    maps = {
        "gradcam": {
            "layer3": rng.standard_normal((3, 4)).astype(np.float32),
            "layer4": rng.standard_normal((6, 8)).astype(np.float32),
        },
        "layercam": {"layer4": rng.standard_normal((6, 8)).astype(np.float32)},
    }
    metrics = {"auc": float("nan"), "curves": _curves()}
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(img),
            model_id="resnet50",
            author="ana",
            maps=maps,
            methods=("gradcam", "layercam"),
            layers=("layer3", "layer4"),
            metrics=metrics,
            title="t",
            note="n",
            verdict="spurious",
            colormap="viridis",
        )
    )
    store.add_comment(sid, author="ben", text="hm")
    plain = store.save(NewSnapshot(image_png=encode_png(_image(5, 7)), model_id="m", author="a", maps={}))
    snaps = [store.get(sid), store.get(plain)]
    data = zip_report(snaps, comments={sid: store.comments(sid)})
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    stems = ["gradcam__layer3", "gradcam__layer4", "layercam__layer4"]
    expected = {"report.html"}
    expected |= {f"{sid}/{n}" for n in ("original.png", "settings.json", "metrics.json", "review.json", "curves.csv")}
    expected |= {f"{sid}/{s}{suffix}" for s in stems for suffix in (".npy", "_heatmap.png", "_overlay.png")}
    expected |= {f"{plain}/{n}" for n in ("original.png", "settings.json", "metrics.json", "review.json")}
    assert set(zf.namelist()) == expected

    for name in zf.namelist():
        if name.endswith(".png"):
            with Image.open(io.BytesIO(zf.read(name))) as im:
                im.load()
                assert im.format == "PNG"
                assert im.size == ((36, 24) if name.startswith(sid) else (7, 5))  # (W, H) of the image
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(zf.read(f"{sid}/original.png")))), img)
    rendered = {f"{r.method}__{r.layer}": r for r in rendered_maps(snaps[0])}
    for stem in stems:
        arr = np.load(io.BytesIO(zf.read(f"{sid}/{stem}.npy")), allow_pickle=False)
        method, layer = stem.split("__")
        assert arr.dtype == np.float32 and arr.tobytes() == maps[method][layer].tobytes()
        heat = np.asarray(Image.open(io.BytesIO(zf.read(f"{sid}/{stem}_heatmap.png"))))
        np.testing.assert_array_equal(heat, rendered[stem].heatmap)

    settings = json.loads(zf.read(f"{sid}/settings.json"))
    assert settings["colormap"] == "viridis" and settings["normalization"]["mode"] == "minmax"
    assert [(m["method"], m["layer"], m["files"]["raw"]) for m in settings["maps"]] == [
        ("gradcam", "layer3", "gradcam__layer3.npy"),
        ("gradcam", "layer4", "gradcam__layer4.npy"),
        ("layercam", "layer4", "layercam__layer4.npy"),
    ]
    metrics_json = json.loads(zf.read(f"{sid}/metrics.json"))  # strict JSON: NaN became null
    assert metrics_json["auc"] is None and metrics_json["curves"]["layercam"]["deletion"] == [0.9, 0.5, 0.1]
    review = json.loads(zf.read(f"{sid}/review.json"))
    assert (review["verdict"], review["title"], [c["text"] for c in review["comments"]]) == ("spurious", "t", ["hm"])

    rows = list(csv.reader(io.StringIO(zf.read(f"{sid}/curves.csv").decode())))
    assert rows[0] == ["method", "kind", "fraction", "score"]
    assert len(rows) == 1 + 11 + 11 + 3
    assert rows[-1] == ["layercam", "deletion", "1.0", "0.1"]
    assert {(r[0], r[1]) for r in rows[1:]} == {
        ("gradcam", "deletion"),
        ("gradcam", "insertion"),
        ("layercam", "deletion"),
    }
    assert zf.read("report.html").decode().startswith("<!DOCTYPE html>")


def test_zip_names_cannot_escape_their_folder(hostile, store: SnapshotStore) -> None:
    snap, comments = hostile
    evil = store.get(
        store.save(
            NewSnapshot(
                image_png=encode_png(_image()),
                model_id="m",
                author="a",
                title="../../../etc/passwd",
                maps={
                    "../../evil": {"/abs/path": np.ones((2, 2), np.float32), "a\\b": np.ones((2, 2), np.float32)},
                    "a/b": {"x": np.ones((2, 2), np.float32)},
                    "a_b": {"x": np.ones((2, 2), np.float32)},
                    "..": {"..": np.ones((2, 2), np.float32)},
                },
            )
        )
    )
    zf = zipfile.ZipFile(io.BytesIO(zip_report([snap, evil], comments=comments)))
    names = zf.namelist()
    assert len(names) == len(set(names))
    for name in names:
        parts = name.split("/")
        assert name == "report.html" or (len(parts) == 2 and parts[0] in (snap.id, evil.id)), name
        assert all(p not in ("", ".", "..") and not p.startswith(".") for p in parts)
        assert "\\" not in name and ":" not in name and not name.startswith("/")
    evil_files = {n.split("/")[1] for n in names if n.startswith(evil.id + "/")}
    # "a/b" and "a_b" both sanitise to "a_b": the second gets a suffix instead of overwriting the first
    assert {"a_b__x.npy", "a_b__x-2.npy", "evil__abs_path.npy", "evil__a_b.npy", "unnamed__unnamed.npy"} <= evil_files
    assert len([n for n in evil_files if n.endswith(".npy")]) == 5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("layer4.1.conv2", "layer4.1.conv2"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "unnamed"),
        ("", "unnamed"),
        (".hidden", "hidden"),
        ("a b/c\\d", "a_b_c_d"),
        ("ünïcode", "n_code"),
        ("x" * 200, "x" * 80),
    ],
)
def test_safe_name(text: str, expected: str) -> None:
    assert safe_name(text) == expected


# ----------------------------------------------------------------------------- top-5, curve styles, CSV


def test_top5_is_a_table_not_a_python_list(store: SnapshotStore) -> None:
    top5 = [[3, "tabby <cat>", 0.858], [7, "tiger cat", 0.1], [1, "lynx", 0.02]]
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(_image()),
            model_id="m",
            author="a",
            metrics={"top5": top5, "target_probability": 0.858},
        )
    )
    doc = html_report([store.get(sid)])
    assert "[[3," not in doc and "[3, " not in doc
    assert (
        '<table class="top5"><tr><th>#</th><th>Class</th><th>Index</th><th>Probability</th></tr>'
        "<tr><td>1</td><td>tabby &lt;cat&gt;</td><td>3</td><td>85.8%</td></tr>"
        "<tr><td>2</td><td>tiger cat</td><td>7</td><td>10.0%</td></tr>"
    ) in doc
    assert "<th>target_probability</th><td>0.858</td>" in doc  # the other metrics stay in their table


def test_report_curves_use_the_dashboards_colours_and_labels() -> None:
    """The report's chart and the dashboard's Faithfulness chart give each key the same colour and
    dash, the same subplot titles; legend names are registry labels and the reference labels."""
    from dashboard.draw import figures
    from methods.review.report_curves import curves_figure
    from methods.viz.styles import REFERENCE_KEYS

    keys = ["gradcampp", "scorecam", "ref:random", "ref:centre", "mine"]
    f = [0.0, 0.5, 1.0]
    stored = [
        StoredCurve(method=k, kind=kind, fractions=tuple(f), scores=(0.9, 0.5, 0.1), auc=None)
        for k in keys
        for kind in ("deletion", "insertion")
    ]
    ours = curves_figure(stored)
    theirs = figures.curves_figure(
        {k: (f, [0.9, 0.5, 0.1]) for k in keys}, {k: (f, [0.9, 0.5, 0.1]) for k in keys}, references=REFERENCE_KEYS
    )

    def styles(fig):
        return {(t.legendgroup, t.xaxis): (t.line.color, t.line.dash) for t in fig.data}

    assert styles(ours) == styles(theirs)
    assert [a.text for a in ours.layout.annotations] == [a.text for a in theirs.layout.annotations]
    names = {t.legendgroup: t.name for t in ours.data}
    assert names == {
        "gradcampp": "Grad-CAM++",
        "scorecam": "Score-CAM",
        "ref:random": "Random map (reference)",
        "ref:centre": "Centre map (reference)",
        "mine": "mine",
    }
    assert styles(ours)[("ref:random", "x")] == ("#888888", "dot")


def test_zip_curves_csv_neutralises_formulas(store: SnapshotStore) -> None:
    evil = '=HYPERLINK("http://evil.example","click")'
    curves = {evil: {"deletion": {"fractions": [0.0, 1.0], "scores": [-0.5, 0.25]}}}
    sid = store.save(NewSnapshot(image_png=encode_png(_image()), model_id="m", author="a", metrics={"curves": curves}))
    with zipfile.ZipFile(io.BytesIO(zip_report([store.get(sid)]))) as zf:
        rows = list(csv.reader(io.StringIO(zf.read(f"{sid}/curves.csv").decode("utf-8"))))
    assert rows[1] == ["'" + evil, "deletion", "0.0", "-0.5"]  # the text is neutralised, the number is not


@pytest.mark.parametrize(
    ("view", "metrics", "model", "named"),
    [
        ({"image": "chelsea"}, {}, "efficientnet_lite0", "chelsea (gallery sample): Chelsea the cat"),
        ({"image": ""}, {}, "efficientnet_lite0", "chelsea (gallery sample, the model's default)"),
        ({"image": "upload:ab12"}, {}, "m", "an uploaded file (upload:ab12; its file name was not saved)"),
        ({"image": "upload:ab12"}, {"image_name": "my cat.jpg"}, "m", "my cat.jpg"),
    ],
)
def test_reports_name_the_image(store: SnapshotStore, view, metrics, model, named) -> None:
    """Issue 25: a report said only "30×40 px, SHA-256 …"; it now names the image (its gallery
    name, or the file name where one was saved) beside the size and hash, in the HTML and the ZIP."""
    sid = store.save(
        NewSnapshot(
            image_png=encode_png(_image()),
            model_id=model,
            author="a",
            maps={"gradcam": {"l": np.ones((2, 2), np.float32)}},
            view=view,
            metrics=metrics,
        )
    )
    snap = store.get(sid)
    doc = html.unescape(html_report([snap]))
    assert f"{named}" in doc and "30×40 px" in doc
    assert f"<figcaption>original: {named}" in doc
    with zipfile.ZipFile(io.BytesIO(zip_report([snap]))) as z:
        (settings,) = [n for n in z.namelist() if n.endswith("settings.json")]
        assert json.loads(z.read(settings))["image"]["name"].startswith(named)
