"""The batch command end to end on the bundled scenes_vgg model, in this process (workers=1).

What is checked against an independent computation:

* the maps in ``maps.npz`` equal :func:`methods.explain` of each image on its own (1e-5);
* every PNG equals :func:`methods.viz.render.render_views` of those raw maps after
  :func:`methods.viz.normalize.normalize_many` and :func:`methods.viz.ranges.display_ranges` with
  the same settings (the dashboard's pipeline), pixel for pixel;
* manifest rows: target = argmax of the model's probabilities, top-5 in order, one row per image
  x method x layer, paths that exist.

Resuming, a killed run (SIGKILL of a real subprocess), failures and bad arguments follow.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import methods
from methods.cli import batch as batch_cli
from methods.data.scenes import make_scene
from methods.errors import Cancelled, OptionError, UnknownMethodError
from methods.pipeline import batch
from methods.pipeline.manifest import COLUMNS
from methods.viz.normalize import normalize_many
from methods.viz.ranges import display_colormap, display_ranges
from methods.viz.render import render_views

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write_folder(folder: pathlib.Path, n_scenes: int = 3) -> list[str]:
    """Scenes as PNGs (one in a subfolder), an odd-sized image, a broken file, a hidden file."""
    (folder / "sub").mkdir(parents=True)
    names = []
    for i in range(n_scenes):
        rel = f"sub/s{i}.png" if i == 1 else f"s{i}.png"
        Image.fromarray(make_scene(10_000_000 + i).image).save(folder / rel)
        names.append(rel)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8)).save(folder / "odd.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / ".hidden.png").write_bytes(b"")
    return sorted(names + ["odd.png"])


@pytest.fixture(scope="module")
def vgg():
    return methods.load_model("scenes_vgg")


def png(path: pathlib.Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_views_maps_and_manifest_are_the_dashboards(tmp_path, vgg):
    images = write_folder(tmp_path / "in")
    settings = dict(norm="max", relu=False, scope="shared", cmap="turbo", alpha=0.3)
    res = batch.run_batch(
        vgg,
        tmp_path / "in",
        tmp_path / "out",
        methods=["gradcam", "gradcampp"],
        layers="features.13,features.20",
        workers=1,
        batch_size=3,
        **settings,
    )
    assert (res.done, res.already, res.failed) == (4, 0, [])
    assert [s[0] for s in res.skipped] == ["broken.png"] and "not an image" in res.skipped[0][1]
    df = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert list(df.columns) == list(COLUMNS) and len(df) == 4 * 2 * 2
    assert sorted(df["image"].unique()) == images
    out = tmp_path / "out"
    for rel in images:
        image = methods.load_image(tmp_path / "in" / rel)
        x = vgg.preprocess(image)[None]
        exps = methods.explain_many(vgg, x, ["gradcam", "gradcampp"], layers=["features.13", "features.20"])
        view = png(out / rel / "original.png")
        assert np.array_equal(view, image)  # issue 25: the picture at its own size (odd.png: 60 x 90)
        stored = np.load(out / rel / "maps.npz")
        rows = df[df["image"] == rel]
        pairs = list(zip(rows["method"], rows["layer"]))
        raws = [stored[f"{m}__{layer}"] for m, layer in pairs]
        for (m, layer), raw in zip(pairs, raws):
            np.testing.assert_allclose(raw, exps[m].maps[layer][0].numpy(), atol=1e-5)
        norms = normalize_many(raws, mode="max", relu=False, scope="shared")
        ranges = display_ranges(norms, mode="max", relu=False, scope="shared")
        for (m, layer), norm, rg in zip(pairs, norms, ranges):
            # a signed display (max, no ReLU) is drawn with the diverging colormap whatever --cmap says
            cmap = display_colormap("turbo", mode="max", relu=False)
            assert cmap == "diverging"
            views = render_views(
                view, norm, colormap=cmap, alpha=0.3, value_range=rg, placement=vgg.placement(view.shape[:2])
            )
            row = rows[(rows["method"] == m) & (rows["layer"] == layer)].iloc[0]
            for name in ("grayscale", "heatmap", "overlay"):
                assert row[name] == f"{rel}/{m}__{layer}__{name}.png"
                assert np.array_equal(png(out / row[name]), getattr(views, name)), (rel, m, layer, name)
        probs = exps["gradcam"].probs[0]
        first = rows.iloc[0]
        assert first["target"] == first["predicted"] == int(probs.argmax())
        assert list(first["top5"]) == probs.argsort(descending=True)[:5].tolist()
        np.testing.assert_allclose(first["top5_probs"], probs.sort(descending=True).values[:5].numpy(), atol=1e-5)
        assert first["target_name"] == vgg.class_names[first["target"]]
    assert (df["precision"] == "fp32").all() and (df["precision_requested"] == "auto").all()
    assert (df["device"] == "cpu").all() and (df["cmap"] == "turbo").all() and (df["scope"] == "shared").all()
    assert df["label"].isna().all() and (df["seconds"] > 0).all()
    assert pd.read_csv(out / "skipped.csv")["image"].tolist() == ["broken.png"]


def test_default_pictures_and_label_file(tmp_path, vgg):
    """Defaults are the dashboard's (min-max after ReLU, per map, jet, 0.5); labels by index or name."""
    write_folder(tmp_path / "in", n_scenes=2)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"image,label\ns0.png,3\nsub/s1.png,{vgg.class_names[5]}\n")
    res = batch.run_batch("scenes_vgg", tmp_path / "in", tmp_path / "out", targets=labels, workers=1)
    assert res.done == 2 and sorted(s for s, _ in res.skipped) == ["broken.png", "odd.png"]  # odd.png: no label
    df = res.manifest.set_index("image")
    assert df.loc["s0.png", "target"] == df.loc["s0.png", "label"] == 3
    assert df.loc["sub/s1.png", "target"] == 5 and df.loc["sub/s1.png", "target_name"] == vgg.class_names[5]
    rel = "s0.png"
    raw = np.load(tmp_path / "out" / rel / "maps.npz")["gradcam__features.20"]
    np.testing.assert_allclose(
        raw,
        methods.explain(vgg, vgg.preprocess(methods.load_image(tmp_path / "in" / rel))[None], "gradcam", target=3)
        .maps["features.20"][0]
        .numpy(),
        atol=1e-5,
    )
    norm = methods.normalize(raw)  # minmax, ReLU, per map
    view = png(tmp_path / "out" / rel / "original.png")
    expected = render_views(view, norm, colormap="jet", alpha=0.5, value_range=(0.0, 1.0))
    assert np.array_equal(png(tmp_path / "out" / rel / "gradcam__features.20__overlay.png"), expected.overlay)
    bad = tmp_path / "bad.csv"
    bad.write_text("image,label\ns0.png,99\n")
    with pytest.raises(OptionError, match="not classes of the model.*s0.png: '99'"):
        batch.run_batch("scenes_vgg", tmp_path / "in", tmp_path / "out2", targets=bad, workers=1)


def test_second_run_resumes(tmp_path, vgg):
    write_folder(tmp_path / "in", n_scenes=2)
    out = tmp_path / "out"
    first = batch.run_batch(vgg, tmp_path / "in", out, workers=1, batch_size=2)
    assert first.done == 3
    stamp = (out / "s0.png" / "gradcam__features.20__overlay.png").stat().st_mtime_ns
    again = batch.run_batch(vgg, tmp_path / "in", out, workers=1)
    assert (again.done, again.already) == (0, 3)
    assert (out / "s0.png" / "gradcam__features.20__overlay.png").stat().st_mtime_ns == stamp  # not rewritten
    more = batch.run_batch(vgg, tmp_path / "in", out, methods="gradcam,hirescam", workers=1)
    assert more.done == 3 and len(more.manifest) == 6
    assert sorted(np.load(out / "s0.png" / "maps.npz").files) == ["gradcam__features.20", "hirescam__features.20"]
    assert (out / "s0.png" / "gradcam__features.20__overlay.png").stat().st_mtime_ns == stamp  # only hirescam ran
    os.utime(tmp_path / "in" / "s0.png", ns=(1, 1))  # a changed input file is done again
    changed = batch.run_batch(vgg, tmp_path / "in", out, methods="gradcam,hirescam", workers=1)
    assert (changed.done, changed.already) == (1, 2)
    recolour = batch.run_batch(vgg, tmp_path / "in", out, cmap="viridis", workers=1)  # other settings: redone
    assert recolour.done == 3 and set(recolour.manifest.query("method == 'gradcam'")["cmap"]) == {"viridis"}
    assert len(recolour.manifest) == 6  # one row per image x method x layer, the newest kept


def test_a_killed_run_loses_nothing_written_and_resumes(tmp_path):
    """SIGKILL a real ``python -m methods.batch`` once its first batch is in the manifest parts; every
    file under a final name must be complete, and the next run must finish only what is missing."""
    folder = tmp_path / "in"
    folder.mkdir()
    base = make_scene(10_000_000).image
    for i in range(40):
        Image.fromarray(np.roll(base, 3 * i, axis=1)).save(folder / f"img{i:02d}.png")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "methods.batch",
        "--model",
        "scenes_vgg",
        "--images",
        str(folder),
        "--out",
        str(out),
        "--workers",
        "1",
        "--batch-size",
        "1",
        "--methods",
        "gradcam,gradcampp,layercam",
        "--quiet",
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = out / ".manifest-parts"
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and not (parts.is_dir() and len(list(parts.glob("part-*"))) >= 2)
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    for path in out.rglob("*"):  # everything under a final name is complete
        if not path.is_file() or (path.name.startswith(".") and path.name.endswith(".partial")):
            continue
        if path.suffix == ".png":
            Image.open(path).load()
        elif path.name == "maps.npz":
            assert len(np.load(path).files) == 3
        elif path.suffix == ".parquet":
            pd.read_parquet(path)
    res = batch.run_batch("scenes_vgg", folder, out, methods="gradcam,gradcampp,layercam", workers=1, batch_size=8)
    assert 0 < res.already < 40 and res.done == 40 - res.already  # the killed run's batches were kept
    assert len(res.manifest) == 40 * 3 and res.manifest["image"].nunique() == 40
    assert not [p for p in out.rglob("*.partial")] and not list((out / ".manifest-parts").glob("*"))
    for rel in res.manifest["image"].unique():
        assert len(np.load(out / rel / "maps.npz").files) == 3


def test_an_image_that_fails_is_reported_and_the_rest_finish(tmp_path, vgg, capsys, plugin):
    folder = tmp_path / "in"
    write_folder(folder, n_scenes=2)
    Image.fromarray(np.full((50, 50, 3), 128, dtype=np.uint8)).save(folder / "flat.png")
    res = batch.run_batch(
        vgg, folder, tmp_path / "out", methods="gradcam,fails_on_flat", plugins="batch_plugins", workers=1, batch_size=4
    )
    assert [f[0] for f in res.failed] == ["flat.png"] and "constant image" in res.failed[0][1]
    assert res.done == 3 and sorted(res.manifest["image"].unique()) == ["odd.png", "s0.png", "sub/s1.png"]
    assert not (tmp_path / "out" / "flat.png" / "maps.npz").exists()
    code = batch_cli.main(
        [
            "--model",
            "scenes_vgg",
            "--images",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--methods",
            "gradcam,fails_on_flat",
            "--plugins",
            "batch_plugins",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 1  # the failure is retried and reported again; the others were already done
    captured = capsys.readouterr()
    assert "failed flat.png: RuntimeError: this method cannot explain a constant image" in captured.err
    assert "0 image(s) done, 3 already in the manifest, 1 skipped, 1 failed" in captured.out


def test_progress_and_cancel_keep_what_finished(tmp_path, vgg):
    write_folder(tmp_path / "in", n_scenes=3)
    seen = []

    def stop_after_first(done, total):
        seen.append((done, total))
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        batch.run_batch(vgg, tmp_path / "in", tmp_path / "out", workers=1, batch_size=2, progress=stop_after_first)
    assert seen == [(2, 5)]  # the first batch: broken.png (skipped) and odd.png
    kept = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert kept["image"].tolist() == ["odd.png"]
    res = batch.run_batch(vgg, tmp_path / "in", tmp_path / "out", workers=1, batch_size=2)
    assert (res.already, res.done) == (1, 3)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--methods", "gradcm"], "gradcam"),
        (["--norm", "loud"], "'loud'"),
        (["--cmap", "rainbowz"], "'rainbowz'"),
        (["--alpha", "2"], "alpha"),
        (["--precision", "fp16"], "'fp16'"),
        (["--engine", "spark"], "'spark'"),
        (["--workers", "0"], "workers"),
        (["--images", "/no/such/folder"], "not a folder"),
        (["--targets", "/no/labels.csv"], "label file"),
        (["--layers", "nope"], "nope"),
        (["--percentiles", "50,10"], "percentiles"),
        (["--plugins", "no_such_module_xyz"], "no_such_module_xyz"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, capsys, argv, needle):
    (tmp_path / "in").mkdir()
    args = {"--images": str(tmp_path / "in"), "--out": str(tmp_path / "out")}
    args.update(dict(zip(argv[::2], argv[1::2])))
    assert batch_cli.main(["--model", "scenes_vgg", "--quiet"] + [v for kv in args.items() for v in kv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err


def test_unknown_method_is_a_gradlens_error(tmp_path):
    with pytest.raises(UnknownMethodError):
        batch.run_batch("scenes_vgg", tmp_path, tmp_path / "o", methods=["nope"])


def test_a_cropping_model_writes_the_picture_at_its_size_with_the_unseen_border_dimmed(tmp_path, vgg):
    """Issue 25: batch wrote original.png and overlays at the model's 128 x 128. A model that
    centre-crops (as the ImageNet weights were evaluated) gets a 90 x 150 picture back at 90 x 150,
    each map drawn on the crop and the border outside it dimmed (not explained)."""
    import dataclasses

    from methods.viz.render import UNSEEN_DIM

    cropping = dataclasses.replace(vgg, resize="crop", crop_pct=0.875)
    (tmp_path / "in").mkdir()
    picture = np.full((90, 150, 3), 180, np.uint8)
    picture[20:70, 40:110] = make_scene(10_000_001).image[:50, :70]
    Image.fromarray(picture).save(tmp_path / "in" / "wide.png")
    batch.run_batch(cropping, tmp_path / "in", tmp_path / "out", methods=["gradcam"], workers=1)
    folder = tmp_path / "out" / "wide.png"
    assert np.array_equal(png(folder / "original.png"), picture)
    over = png(folder / "gradcam__features.20__overlay.png")
    assert over.shape == (90, 150, 3)
    place = cropping.placement((90, 150))
    # 90 x 150 -> 146 x 243 (short side floor(128 / 0.875)), crop corner (9, 58): rows 5.5 .. 84.5,
    # columns 35.8 .. 114.8 of the picture are seen
    assert place.resized == (146, 243) and place.offset == (9, 58)
    top, left, bottom, right = place.seen
    assert (top, left, bottom, right) == pytest.approx((9 * 90 / 146, 58 * 150 / 243, 137 * 90 / 146, 186 * 150 / 243))
    dim = np.round(picture * UNSEEN_DIM).astype(np.uint8)
    assert (over[:, :35] == dim[:, :35]).all() and (over[:, 116:] == dim[:, 116:]).all()
    assert (over[:5] == dim[:5]).all() and (over[85:] == dim[85:]).all()
    assert (over[10:80, 40:110] != dim[10:80, 40:110]).any()
    raw = np.load(folder / "maps.npz")["gradcam__features.20"]
    want = render_views(picture, methods.normalize(raw), placement=place).overlay
    assert np.array_equal(over, want)
