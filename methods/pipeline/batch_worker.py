"""The batch command's worker: a batch of image paths in, the pictures, raw maps and manifest rows out.

One :class:`BatchWorker` lives in each worker process or Ray actor (built once from a
:class:`BatchSpec`, so the model is loaded once). For a batch of items it

1. reads each image with :func:`methods.data.images.load_image` (an unreadable file becomes a
   ``"skipped"`` result with the reason);
2. preprocesses all images to the model's input size and explains them TOGETHER: one
   :func:`methods.explain_many` call, so every gradient method and layer of the batch share one
   forward+backward over B images (on scenes_vgg 3.9 ms per image at B = 16 against 6.5 ms at B = 1),
   on the CPU on 1 torch thread or on all, whichever this process measured faster for the last
   batches (:mod:`methods._internal.threads`);
3. per image, draws exactly the dashboard's pictures: :func:`methods.viz.normalize.normalize_many`
   (the run's mode, ReLU, scope and percentiles; ``scope="shared"`` = one scale over all maps of
   the image), :func:`methods.viz.ranges.display_ranges` and :func:`methods.viz.render.render_views`
   over the user's own picture at its size (each map where the model input lies on it,
   ``LoadedModel.placement``); writes ``original.png``, three PNGs per map and ONE
   compressed ``maps.npz``, each atomically (:func:`methods.pipeline.batch_files.write_atomic`);
4. returns one result per item: ``"done"`` with its manifest rows, ``"skipped"`` or ``"failed"``.

A failure never takes the batch down: if the batched computation raises, each image is run on
its own, and the image that raises again is reported as ``"failed"`` with the error.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods._internal.threads import tuner
from methods._internal.torch_utils import resolve_precision
from methods.cams.core.explain import explain_many
from methods.cams.core.registry import get_method
from methods.data.images import load_image
from methods.errors import GradLensError
from methods.pipeline.batch_files import VIEWS, image_dir, read_npz, view_name, write_npz, write_png
from methods.pipeline.batch_objects import object_rows_of
from methods.pipeline.common import worker_setup
from methods.pipeline.evaluate_objects import OBJECT_TASKS
from methods.pipeline.overlap import overlapped
from methods.viz.normalize import as_mode, as_scope, normalize_many
from methods.viz.ranges import display_colormap, display_ranges
from methods.viz.render import render_views

__all__ = ["BatchSpec", "BatchWorker", "result"]


@dataclass
class _Writes:
    """A group's maps, computed; ``write(i)`` draws and writes image ``i``'s files -> its result."""

    worker: BatchWorker
    group: list[tuple[dict, np.ndarray]]
    pairs: list[tuple[str, str]]
    raws: dict
    exps: dict

    def write(self, i: int) -> dict:
        item = self.group[i][0]
        try:
            rows = self.worker._write(i, item, self.group[i][1], self.raws, self.exps, self.pairs, len(self.group))
            return result(item, "done", rows=rows)
        except Exception as exc:
            return result(item, "failed", f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class BatchSpec:
    """Everything a worker needs (picklable: it travels to worker processes and Ray actors).

    Attributes:
        model: a catalog name (each worker loads it) or a ``LoadedModel`` (sent to each worker).
        model_name: the name the manifest records.
        root, out: the images folder and the output folder (paths every worker can read / write).
        norm, relu, scope, percentiles, cmap, alpha: the pictures' settings (as the dashboard's).
        precision: ``"auto" | "fp32" | "bf16"`` for forward methods (resolved on the worker's device).
        device: the device to run on (None: the worker's :func:`methods._internal.device.default_device`).
        plugins: modules to import first (they register a user's own methods).
        sid: the settings id the rows carry (:func:`methods.pipeline.manifest.settings_id`).
        min_score, max_objects: a detector's boxes kept (score >= min_score), and at most this many
            objects per picture (:mod:`methods.pipeline.batch_objects`).
    """

    model: Any
    model_name: str
    root: str
    out: str
    norm: str = "minmax"
    relu: bool = True
    scope: str = "per_map"
    percentiles: tuple[float, float] = (1.0, 99.0)
    cmap: str = "jet"
    alpha: float = 0.5
    precision: str = "auto"
    device: str | None = None
    plugins: tuple[str, ...] = ()
    sid: str = ""
    min_score: float = 0.5
    max_objects: int = 20

    def build(self) -> BatchWorker:
        return BatchWorker(self)


def result(item: dict, status: str, reason: str = "", rows: list | None = None) -> dict:
    return {"image": item["image"], "status": status, "reason": reason, "rows": rows or []}


class BatchWorker:
    """Loads the model once; ``worker(items) -> results`` (see the module docstring)."""

    overlap: bool = False
    """Whether the in-process engine runs :meth:`stream` (reading, model, writing overlapped) instead
    of calling the worker part by part. Off: on an idle 2-core machine the overlap measured 7-19 %
    SLOWER (the model's torch threads already fill the cores; docs/batch.md), so it is an opt-in
    until it is measured to pay (more cores, a slow disk, a GPU)."""

    def __init__(self, spec: BatchSpec) -> None:
        self.spec = spec
        self.loaded, self.device = worker_setup(spec.model, spec.device, spec.plugins)
        self.precision = resolve_precision(spec.precision, self.device)
        self.root, self.out = pathlib.Path(spec.root), pathlib.Path(spec.out)
        # decoding and writing (PIL, OpenCV, zlib, file I/O release the GIL) use this worker's
        # cores while the model waits; the model itself runs in the calling thread
        self.pool = ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()))

    def _read(self, item: dict) -> tuple[dict, np.ndarray | None, str]:
        try:
            return item, load_image(self.root / item["image"]), ""
        except (GradLensError, OSError, ValueError) as exc:
            return item, None, str(exc)

    def __call__(self, items: list[dict]) -> list[dict]:
        """One part, the stages one after the other (what a process-pool task or a Ray actor runs)."""
        return self._finish(self._compute(self._decode(items)))

    def stream(self, parts: Iterable[list[dict]]) -> Iterator[list[dict]]:
        """``self(part)`` for every part, in order, with reading the next part and writing the
        previous one overlapped with the model (:func:`methods.pipeline.overlap.overlapped`): the
        same results and files; each part's results come out only once its files are written."""
        return overlapped(parts, self._decode, self._compute, self._finish)

    # ----------------------------------------------------------------------------------------

    def _decode(self, items: list[dict]) -> tuple[list[dict], dict]:
        """Read the part's images: ``(skipped results, {pairs: [(item, picture)]})``."""
        skipped: list[dict] = []
        groups: dict[tuple, list[tuple[dict, np.ndarray]]] = {}
        for item, image, why in self.pool.map(self._read, items):
            if image is None:
                skipped.append(result(item, "skipped", why))
                continue
            groups.setdefault(tuple(tuple(p) for p in item["pairs"]), []).append((item, image))
        return skipped, groups

    def _compute(self, decoded: tuple[list[dict], dict]) -> list:
        """The model's work of a part: a list of pieces, each ready results or a :class:`_Writes`."""
        skipped, groups = decoded
        pieces: list = [skipped]
        for pairs, group in groups.items():
            try:
                pieces.append(self._maps(group, list(pairs)))
            except Exception:  # find the image that fails: each on its own
                for one in group:
                    try:
                        pieces.append(self._maps([one], list(pairs)))
                    except Exception as exc:
                        pieces.append([result(one[0], "failed", f"{type(exc).__name__}: {exc}")])
        return pieces

    def _finish(self, pieces: list) -> list[dict]:
        """Encode and write the pictures of a part (images in parallel): its results, in order."""
        results: list[dict] = []
        for piece in pieces:
            results += (
                list(self.pool.map(piece.write, range(len(piece.group)))) if isinstance(piece, _Writes) else piece
            )
        return results

    def _maps(self, group: list[tuple[dict, np.ndarray]], pairs: list[tuple[str, str]]) -> _Writes | list[dict]:
        names = list(dict.fromkeys(m for m, _ in pairs))
        layers = list(dict.fromkeys(layer for _, layer in pairs))
        options = {m: {"precision": self.precision} for m in names if "precision" in get_method(m).option_names}
        if self.loaded.task in OBJECT_TASKS:  # a detector / segmenter: each object its own maps
            return self._objects(group, pairs, options)
        labels = [item.get("label") for item, _ in group]
        known = [int(v) for v in labels if v is not None]
        # a run's images are all labelled (a label file) or none are (top-1): batch.py skips the unlabelled
        assert not known or len(known) == len(labels), "some images of the group have no label"
        target = known or None
        on_cpu = self.device.type == "cpu"  # 1 or all threads, whichever is faster here now
        with tuner("batch.model").run(len(group)) if on_cpu else contextlib.nullcontext():
            x = self.loaded.preprocess_batch([image for _, image in group])  # (B, 3, H, W)
            exps = explain_many(self.loaded, x, names, layers=layers, target=target, options=options)
        raws = {(m, layer): exps[m].maps[layer].detach().float().cpu().numpy() for m, layer in pairs}  # (B, h, w) each
        return _Writes(self, group, pairs, raws, exps)

    def _write(
        self, i: int, item: dict, picture: np.ndarray, all_raws: dict, exps: dict, pairs: list, batch: int
    ) -> list[dict]:
        """Write one image's pictures: ``original.png`` is the picture at its own size, and each map
        is drawn where the model input lies on it (``LoadedModel.placement``: outside a centre crop
        the picture is dimmed, not explained)."""
        s, rel = self.spec, item["image"]
        folder = image_dir(self.out, rel)
        raws = [all_raws[pair][i] for pair in pairs]  # each (h, w)
        mode, scope = as_mode(s.norm), as_scope(s.scope)
        norms = normalize_many(raws, mode=mode, relu=s.relu, scope=scope, percentiles=s.percentiles)
        ranges = display_ranges(norms, mode=s.norm, relu=s.relu, scope=s.scope)
        cmap = display_colormap(s.cmap, mode=s.norm, relu=s.relu)  # signed maps: diverging, zero white
        place = getattr(self.loaded, "placement", None)
        placement = place(picture.shape[:2]) if callable(place) else None
        write_png(folder / "original.png", picture)
        for (m, layer), norm, value_range in zip(pairs, norms, ranges):
            views = render_views(
                picture, norm, colormap=cmap, alpha=s.alpha, value_range=value_range, placement=placement
            )
            for name in VIEWS:
                write_png(folder / view_name(m, layer, name), getattr(views, name))
        arrays = read_npz(folder / "maps.npz") if item.get("merge") else {}
        arrays.update({f"{m}__{layer}": raw for (m, layer), raw in zip(pairs, raws)})
        write_npz(folder / "maps.npz", arrays)
        return self._rows(i, item, exps, pairs, raws, batch)

    def _objects(self, group: list, pairs: list, options: dict) -> list[dict]:
        """One result per picture of a detector / segmenter: ``"skipped"`` when it finds no object."""
        out = []
        for item, picture in group:
            try:
                rows = object_rows_of(self, item, picture, pairs, options)
            except Exception as exc:
                out.append(result(item, "failed", f"{type(exc).__name__}: {exc}"))
                continue
            why = f"no object (a detection with score >= {self.spec.min_score:g}, or a predicted class)"
            out.append(result(item, "done", rows=rows) if rows else result(item, "skipped", why))
        return out

    def settings_row(self, item: dict) -> dict:
        """The columns every row of one image shares: the file, its label and the run's settings."""
        s, rel = self.spec, item["image"]
        return {
            "image": rel,
            "label": item.get("label"),
            "original": f"{rel}/original.png",
            "maps": f"{rel}/maps.npz",
            "model": s.model_name,
            "precision_requested": s.precision,
            "device": str(self.device),
            "norm": s.norm,
            "relu": s.relu,
            "scope": s.scope,
            "percentile_low": float(s.percentiles[0]),
            "percentile_high": float(s.percentiles[1]),
            "cmap": s.cmap,
            "alpha": float(s.alpha),
            "settings_id": s.sid,
            "file_size": item["file_size"],
            "file_mtime_ns": item["file_mtime_ns"],
        }

    def _rows(self, i: int, item: dict, exps: dict, pairs: list, raws: list, batch: int) -> list[dict]:
        rel = item["image"]
        names = self.loaded.class_names
        first = exps[pairs[0][0]]
        probs = first.probs[i].detach().float().cpu()  # (K,)
        top = torch.topk(probs, min(5, probs.numel()))
        target = int(first.targets[i])
        base = self.settings_row(item)
        base.update(
            {
                "target": target,
                "target_name": names[target] if target < len(names) else str(target),
                "prob": float(probs[target]),
                "predicted": int(probs.argmax()),
                "top5": [int(k) for k in top.indices],
                "top5_names": [names[int(k)] for k in top.indices],
                "top5_probs": [float(v) for v in top.values],
            }
        )
        rows = []
        for (m, layer), raw in zip(pairs, raws):
            exp = exps[m]
            row = dict(
                base,
                method=m,
                layer=layer,
                map_key=f"{m}__{layer}",
                map_height=int(raw.shape[0]),
                map_width=int(raw.shape[1]),
                seconds=float(exp.seconds) / batch,
                notes="; ".join(exp.notes),
                precision=exp.precision,
            )
            row.update({v: f"{rel}/{view_name(m, layer, v)}" for v in VIEWS})
            rows.append(row)
        return rows
