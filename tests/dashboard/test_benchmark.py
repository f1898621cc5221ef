"""The Benchmark page (dashboard/views/benchmark/, pages/8_Benchmark.py) under AppTest.

The evaluate table is made here by the library's own API (``methods.pipeline.evaluate.evaluate`` on two
two-object scenes, Grad-CAM and the references, 5 steps), and every number the page shows is
checked against :func:`methods.metrics.benchmark.leaderboard.leaderboard` of that same table, whose own
numbers are checked by hand in tests/metrics/test_leaderboard.py.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_kit import HOME, TIMEOUT, assert_clean, live_markup, plotly_specs, texts
from dashboard.app import cache
from dashboard.core import pages, services
from dashboard.core.scene_ids import parse_scene_id
from dashboard.core.state import ViewState
from dashboard.views.benchmark import data as bd
from methods import load_model
from methods.data.scenes import make_scene
from methods.errors import InputError
from methods.metrics.benchmark.leaderboard import leaderboard, per_class
from methods.pipeline.evaluate import evaluate
from methods.pipeline.manifest import frame as manifest_frame

BENCH = pages.page("benchmark").script
EVAL = dict(methods=["gradcam"], steps=5, workers=1, progress=False, log=lambda _s: None)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Two two-object scenes: 4 (image, class) pairs x (gradcam, random, centre)."""
    df = evaluate("scenes_vgg", "scenes2:2", **EVAL)
    folder = tmp_path_factory.mktemp("bench")
    df.to_parquet(folder / "eval.parquet", index=False)
    df.to_csv(folder / "eval.csv", index=False)
    return df, folder


@pytest.fixture(autouse=True)
def _results_root(tmp_path_factory, monkeypatch):
    """The path box reads below $GRADLENS_RESULTS_ROOT only: here the session's temporary folder,
    which holds every table these tests write."""
    monkeypatch.setenv(bd.RESULTS_ENV, str(tmp_path_factory.getbasetemp().resolve()))


def _values(y) -> list[float]:
    """A Plotly trace's values: a list, or Plotly's typed-array form ``{"bdata": base64, "dtype"}``."""
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
    return list(y)


def _open(path) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(BENCH).run()
    assert_clean(at)
    at.text_input(key="bm_path").input(str(path))
    return at.button(key="bm_open").click().run()


def _methods_link(at: AppTest):
    links = [l for l in at.get("page_link") if l.proto.label.startswith("Open ")]
    assert len(links) == 1, [l.proto.label for l in at.get("page_link")]
    return links[0].proto


def test_page_shows_the_librarys_leaderboard(table):
    df, folder = table
    at = _open(folder / "eval.parquet")
    assert_clean(at)
    assert not live_markup(at)
    board = leaderboard(bd.read_table((folder / "eval.parquet").read_bytes(), "eval.parquet").frame)
    want = bd.leaderboard_tables(board)
    shown = [d.value for d in at.dataframe]
    pd.testing.assert_frame_equal(shown[0], want["means"])
    pd.testing.assert_frame_equal(shown[1], want["random"])
    pd.testing.assert_frame_equal(shown[2], want["centre"])
    # the cells are the library's numbers: Grad-CAM's mean deletion AUC is the plain mean of its 4 rows
    mean = df.loc[df["method"] == "gradcam", "deletion_auc"].mean()
    row = board[(board["method"] == "gradcam") & (board["metric"] == "deletion_auc")].iloc[0]
    assert row["mean"] == pytest.approx(mean) and row["n"] == 4
    assert shown[0].loc[0, "Deletion AUC ↓"] == f"{mean:.3f} [{row['low']:.3f}, {row['high']:.3f}]"
    assert shown[1].loc[0, "Deletion AUC ↓"].endswith(f"p={row['random_p']:.3f}")
    # 4 pairs, all of one sign at best: the smallest exact Wilcoxon p is 2/16
    assert row["random_p"] >= 0.125 - 1e-12
    # per class: one row per (image, class), each class once here
    classes = per_class(bd.read_table((folder / "eval.parquet").read_bytes(), "e.parquet").frame, "deletion_auc")
    grad = classes[classes["method"] == "gradcam"]
    per_class_shown = shown[3].set_index("class")["gradcam"]
    for r in grad.itertuples():
        assert per_class_shown[r.target_name] == f"{bd.cell(r.mean, r.low, r.high, 'deletion_auc')} (n={r.n})"
    # the distribution: one box per map kind, with the per-row values
    spec = plotly_specs(at)[0]
    assert [t["name"] for t in spec["data"]] == ["Grad-CAM", "Random", "Centre"]
    assert sorted(_values(spec["data"][0]["y"])) == pytest.approx(
        sorted(df.loc[df["method"] == "gradcam", "deletion_auc"])
    )


def test_csv_gives_the_same_numbers_as_parquet(table):
    _, folder = table
    a = bd.read_table((folder / "eval.parquet").read_bytes(), "eval.parquet").frame
    b = bd.read_table((folder / "eval.csv").read_bytes(), "eval.csv").frame
    la, lb_ = leaderboard(a, n_boot=300), leaderboard(b, n_boot=300)
    num = ["mean", "low", "high", "random_diff", "random_p", "centre_diff", "centre_p"]
    np.testing.assert_allclose(la[num].to_numpy(float), lb_[num].to_numpy(float), rtol=1e-9, equal_nan=True)


def test_link_opens_that_image_on_the_methods_page(table):
    df, folder = table
    at = _open(folder / "eval.parquet")
    link = _methods_link(at)
    query = {k: v[0] for k, v in parse_qs(link.query_string).items()}
    # the worst Grad-CAM row on deletion (highest AUC) comes first and is the one linked
    worst = df[df["method"] == "gradcam"].sort_values("deletion_auc", ascending=False).iloc[0]
    seed = int(worst["image"].split(":")[1])
    assert query["image"] == f"scene2:{seed}" and query["target"] == str(int(worst["target"]))
    assert query.get("methods", "gradcam").split(",") == ["gradcam"] or "methods" not in query
    assert link.page.endswith("Methods")
    methods_page = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    methods_page.query_params.update(query)
    methods_page.run()
    methods_page.switch_page(pages.page("methods").script).run()
    assert_clean(methods_page)
    assert methods_page.selectbox(key="w_image").value == f"scene2:{seed}"
    assert int(methods_page.selectbox(key="w_target").value) == int(worst["target"])
    assert not methods_page.warning, texts(methods_page.warning)  # no "not a sample" fallback
    # the picture the Methods page explains is the scored scene, pixel for pixel
    np.testing.assert_array_equal(cache.image_for(f"scene2:{seed}"), make_scene(seed, n_objects=2).image)


def test_bad_files_give_messages(tmp_path):
    at = _open(tmp_path / "missing.parquet")
    assert "No .parquet or .csv table named" in texts(at.error)
    assert not at.exception
    hostile = tmp_path / "[click](http:evil) **bold**.csv"
    hostile.write_bytes(b"\x00\x01garbage,\n\xff\xfe")
    at = _open(hostile)
    assert not at.exception
    assert "'[click](http:evil) **bold**.csv' cannot be read as csv: UnicodeDecodeError" in texts(at.error)
    assert not live_markup(at)
    hostile.write_text("image,<img src=x>,[a](http:b)\n1,2,3\n")
    at = _open(hostile)
    message = texts(at.error)
    assert (
        "neither an evaluate result nor a batch manifest: it has no column(s) ['method', 'layer', 'target']" in message
    )
    assert "<img src=x>" in message and not live_markup(at)
    with pytest.raises(InputError, match="cannot be read as parquet"):
        bd.read_table(b"not parquet", "x.parquet")
    with pytest.raises(InputError, match="neither a .parquet nor a .csv"):
        bd.read_table(b"a,b\n1,2\n", "x.txt")
    with pytest.raises(InputError, match=r"has no column\(s\) \['method', 'layer', 'target'\]"):
        bd.read_table(b"image,deletion_auc\na,0.1\n", "x.csv")


def test_run_a_small_evaluation_from_the_page(table):
    """Two scenes, scored one at a time by the page: the same rows as one evaluate call."""
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(BENCH).run()
    at.multiselect(key="bm_methods").set_value(["gradcam"]).run()
    at.number_input(key="bm_n").set_value(2).run()
    at.slider(key="bm_steps").set_value(5).run()
    assert "forward passes" in " ".join(m.value for m in at.markdown)
    at.button(key="bm_run").click().run()
    assert_clean(at)
    held, _digest = at.session_state["_bm_table"]
    whole, _ = table
    keys = ["image", "method", "layer", "target"]
    got = held.frame.sort_values(keys).reset_index(drop=True)
    want = whole.sort_values(keys).reset_index(drop=True)
    assert got[keys].astype(str).values.tolist() == want[keys].astype(str).values.tolist()
    for col in ("deletion_auc", "insertion_auc", "avg_drop", "energy_pg"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].astype(float).to_numpy(), atol=1e-6)
    assert at.dataframe[0].value["n"].tolist() == [4, 4, 4]


def test_manifest_shows_summary_and_pictures_inside_its_folder(tmp_path):
    out = tmp_path / "batch"
    (out / "a.png").mkdir(parents=True)
    picture = np.zeros((8, 8, 3), np.uint8)
    for name in ("original.png", "gradcam__l4__heatmap.png", "gradcam__l4__overlay.png"):
        Image.fromarray(picture).save(out / "a.png" / name)
    base = dict(
        image="a.png",
        method="gradcam",
        layer="l4",
        target=3,
        target_name="cat <b>",
        prob=0.5,
        label=3,
        predicted=3,
        top5=[3],
        top5_names=["cat"],
        top5_probs=[0.5],
        original="a.png/original.png",
        grayscale="a.png/g.png",
        heatmap="a.png/gradcam__l4__heatmap.png",
        overlay="../../etc/passwd",
        maps="a.png/maps.npz",
        map_key="gradcam__l4",
        map_height=7,
        map_width=7,
        seconds=0.25,
        notes="",
        model="m",
        precision="fp32",
        precision_requested="auto",
        device="cpu",
        norm="minmax",
        relu=True,
        scope="per_map",
        percentile_low=1.0,
        percentile_high=99.0,
        cmap="jet",
        alpha=0.5,
        settings_id="x",
        file_size=1,
        file_mtime_ns=1,
    )
    second = dict(base, image="b.png", target=1, predicted=2, label=1, prob=0.75, seconds=0.75)
    manifest_frame([base, second]).to_parquet(out / "manifest.parquet", index=False)
    at = _open(out / "manifest.parquet")
    assert_clean(at)
    summary = at.dataframe[0].value
    assert summary.loc[0, "rows"] == 2 and summary.loc[0, "images"] == 2
    assert summary.loc[0, "seconds per map"] == pytest.approx(0.5)
    assert summary.loc[0, "top-1 accuracy (%)"] == pytest.approx(50.0)  # b.png: predicted 2, label 1
    assert len(at.image) == 2  # original and heatmap; the overlay path leaves the folder
    assert any("is not in the manifest's folder" in t.value for t in at.text)
    assert not live_markup(at)


def test_scene_ids_in_links():
    assert parse_scene_id("scene:10000001") == (10_000_001, 1)
    assert parse_scene_id("scene2:5") == (5, 2)
    for bad in ("scene:", "scene:+1", "scene: 1", "scene:1e3", "scene:١", "scene3:1", None, 3):
        assert parse_scene_id(bad) is None
    np.testing.assert_array_equal(cache.image_for("scene:7"), make_scene(7).image)
    choices = services.choices()
    view, messages = ViewState.from_query({"image": ["scene2:11000001"]}, choices)
    assert view.image == "scene2:11000001" and not messages
    view, messages = ViewState.from_query({"image": ["scene2:x"]}, choices)
    assert view.image == "" and messages


def test_the_path_box_reads_only_tables_in_the_results_folder(tmp_path, monkeypatch):
    """It opened any .csv/.parquet the server could read and told facts about any path ("is not a
    file", "neither a .parquet nor a .csv", sizes, ~ expanded). Now: one message for every refusal,
    symbolic links resolved before the check, and an off switch."""
    root = tmp_path / "results"
    root.mkdir()
    outside = tmp_path / "secret.csv"
    outside.write_text("username,password\nroot,hunter2\n")
    (root / "link.csv").symlink_to(outside)
    (root / "notes.txt").write_text("x")
    (root / "sub").mkdir()
    messages = set()
    for typed in (
        str(outside),
        "../secret.csv",
        "link.csv",
        "notes.txt",
        "sub",
        "missing.csv",
        "~/.bashrc",
        "/etc/passwd",
        "/proc/self/environ",
    ):
        with pytest.raises(InputError) as info:
            bd.read_path(typed, root.resolve())
        text = str(info.value).replace(repr(typed[:200]), "<typed>")
        assert "username" not in text and "MB" not in text and "not a file" not in text
        messages.add(text)
    assert len(messages) == 1, messages  # the same words whatever the path: no oracle
    good = bd.read_table  # a real table inside the folder opens, by relative or absolute path
    df = pd.DataFrame({"image": ["a"], "method": ["m"], "layer": ["l"], "target": [0], "deletion_auc": [0.5]})
    df.to_csv(root / "ok.csv", index=False)
    assert bd.read_path("ok.csv", root.resolve()).frame["deletion_auc"].tolist() == [0.5]
    assert bd.read_path(str(root / "ok.csv"), root.resolve()).kind == "evaluate" and good
    monkeypatch.setenv(bd.RESULTS_ENV, "off")
    assert bd.results_root() is None
    with pytest.raises(InputError, match="turned off"):
        bd.read_path("ok.csv")
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page(BENCH).run()
    assert not at.text_input and "turned off" in texts(at.info)


def test_tables_beyond_the_row_cap_are_refused_before_the_leaderboard(monkeypatch):
    """A 200,000-row upload took 24 s and a 10 M-row one gigabytes; the page now opens MAX_ROWS rows."""
    monkeypatch.setattr(bd, "MAX_ROWS", 10)
    rows = pd.DataFrame(
        {"image": [str(i) for i in range(11)], "method": "m", "layer": "l", "target": 0, "deletion_auc": 0.5}
    )
    with pytest.raises(InputError, match="has more than 10 rows; this page opens tables of up to 10 rows"):
        bd.read_table(rows.to_csv(index=False).encode(), "big.csv")


def test_the_page_started_on_its_own_opens_a_table_without_a_page_link_error(table):
    """Issue 25: ``st.page_link`` to the Methods page raised StreamlitPageNotFoundError when the
    Benchmark page ran alone (AppTest of that page, or ``streamlit run dashboard/pages/8_Benchmark.py``)."""
    _, folder = table
    at = AppTest.from_file(str(pages_root() / BENCH), default_timeout=TIMEOUT).run()
    at.text_input(key="bm_path").input(str(folder / "eval.parquet"))
    at.button(key="bm_open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("page_link") or all(not l.proto.label.startswith("Open ") for l in at.get("page_link"))
    assert any("open it on the Methods page of the whole app" in c.value for c in at.caption)


def pages_root():
    from app_kit import ROOT

    return ROOT / "dashboard"


def test_an_evaluate_table_of_an_annotated_mask_folder_opens_with_its_classes(tmp_path_factory):
    """A user's annotated set (a mask folder of four scenes, labelled by their masks, not by the
    scene generator) scored by evaluate: the page shows its leaderboard and one per-class row per
    annotated class, with the pointing game computed against the user's masks."""
    root = tmp_path_factory.mktemp("masks_set")
    scenes = [make_scene(2_000 + i) for i in range(4)]
    names = load_model("scenes_vgg").class_names
    (root / "classes.txt").write_text("\n".join(["background", *names]) + "\n")
    for i, s in enumerate(scenes):
        (root / "images").mkdir(exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(s.image).save(root / "images" / f"s{i}.png")
        Image.fromarray((s.mask.astype(np.uint8) * (s.label + 1)).astype(np.uint8), mode="L").save(
            root / "masks" / f"s{i}.png"
        )
    df = evaluate("scenes_vgg", f"masks:{root}", **EVAL)
    assert sorted(df.loc[df["method"] == "gradcam", "target_name"]) == sorted(names[s.label] for s in scenes)
    assert df["pointing_hit"].notna().all()  # the masks came through
    df.to_parquet(root / "eval.parquet", index=False)
    at = _open(root / "eval.parquet")
    assert_clean(at)
    assert not live_markup(at)
    shown = [d.value for d in at.dataframe]
    board = leaderboard(df)
    row = board[(board["method"] == "gradcam") & (board["metric"] == "pointing_hit")].iloc[0]
    assert row["n"] == 4
    assert shown[0].loc[0, "method"] == "gradcam"
    per_class_shown = shown[3].set_index("class")
    assert sorted(per_class_shown.index) == sorted({names[s.label] for s in scenes})
