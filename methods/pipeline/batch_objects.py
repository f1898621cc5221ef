"""The batch command for a detector or a segmenter: each object of a picture gets its own maps.

For each picture (:class:`methods.pipeline.batch_worker.BatchWorker` hands it here when
``LoadedModel.task`` is ``"detection"`` or ``"segmentation"``) the objects are the model's own
(a folder of pictures has no ground truth; :func:`methods.pipeline.evaluate_objects.image_objects`):
a detector's boxes with score >= ``min_score``, a segmenter's predicted classes (background left
out, largest first), at most ``max_objects``. Each object is explained with its task target (a
:class:`methods.targets.BoxTarget` or a :class:`methods.targets.RegionTarget` over its predicted
mask), drawn as the classifier's maps are, and written under names that carry the object::

    OUTDIR/<image>/object<k>__<method>__<layer>__<view>.png
    OUTDIR/<image>/maps.npz                      key object<k>__<method>__<layer>

Each manifest row also has the pointing game and the energy inside the object (box or mask) of
the map and of the ``random`` / ``centre`` references (:func:`methods.metrics.objects.object_scores`,
no curves: the batch command computes no forwards beyond the maps'). A picture with no object is
reported as skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from methods.cams.core.explain import explain_many
from methods.metrics.objects import object_scores
from methods.pipeline.batch_files import VIEWS, image_dir, read_npz, view_name, write_npz, write_png
from methods.pipeline.evaluate_objects import image_objects
from methods.pipeline.sources import Sample
from methods.viz.normalize import as_mode, as_scope, normalize_many
from methods.viz.ranges import display_colormap, display_ranges
from methods.viz.render import render_views

__all__ = ["object_prefix", "object_rows_of"]


def object_prefix(k: int) -> str:
    """The file-name prefix of object ``k``'s maps.

    Examples:
        >>> object_prefix(2) + "gradcam__stage4__overlay.png"
        'object2__gradcam__stage4__overlay.png'
    """
    return f"object{k}__"


def object_rows_of(worker: Any, item: dict, picture: Any, pairs: list, options: dict) -> list[dict]:
    """Write the maps of every object of one picture; its manifest rows (none: no object).
    ``worker`` is the :class:`methods.pipeline.batch_worker.BatchWorker` (its spec, model, output
    folder and :meth:`settings_row`)."""
    s, loaded, rel = worker.spec, worker.loaded, item["image"]
    x = loaded.preprocess(picture)[None]
    objects = image_objects(loaded, x, Sample(rel, picture), min_score=s.min_score, max_objects=s.max_objects)
    if not objects:
        return []
    names = list(dict.fromkeys(m for m, _ in pairs))
    layers = list(dict.fromkeys(layer for _, layer in pairs))
    folder = image_dir(worker.out, rel)
    mode, scope = as_mode(s.norm), as_scope(s.scope)
    cmap = display_colormap(s.cmap, mode=s.norm, relu=s.relu)
    place = getattr(loaded, "placement", None)
    placement = place(picture.shape[:2]) if callable(place) else None
    write_png(folder / "original.png", picture)
    arrays = read_npz(folder / "maps.npz") if item.get("merge") else {}
    class_names = loaded.class_names
    rows = []
    for k, obj in enumerate(objects):
        exps = explain_many(loaded, x, names, layers=layers, target=obj.target, options=options)
        raws = [exps[m].maps[layer][0].detach().float().cpu() for m, layer in pairs]
        norms = normalize_many(
            [r.numpy() for r in raws], mode=mode, relu=s.relu, scope=scope, percentiles=s.percentiles
        )
        ranges = display_ranges(norms, mode=s.norm, relu=s.relu, scope=s.scope)
        pre = object_prefix(k)
        for (m, layer), norm, value_range in zip(pairs, norms, ranges):
            views = render_views(
                picture, norm, colormap=cmap, alpha=s.alpha, value_range=value_range, placement=placement
            )
            for v in VIEWS:
                write_png(folder / (pre + view_name(m, layer, v)), getattr(views, v))
        arrays.update({f"{pre}{m}__{layer}": raw.numpy() for (m, layer), raw in zip(pairs, raws)})
        score = obj.score if obj.score is not None else float(exps[names[0]].logits[0, 0])
        for (m, layer), raw in zip(pairs, raws):
            sc = object_scores(None, x, raw, obj.target, curves=False)
            row = worker.settings_row(item)
            row.update(
                method=m,
                layer=layer,
                target=obj.label,
                target_name=class_names[obj.label] if obj.label < len(class_names) else str(obj.label),
                prob=float("nan"),
                predicted=obj.label,
                top5=[],
                top5_names=[],
                top5_probs=[],
                map_key=f"{pre}{m}__{layer}",
                map_height=int(raw.shape[0]),
                map_width=int(raw.shape[1]),
                seconds=float(exps[m].seconds),
                notes="; ".join(exps[m].notes),
                precision=exps[m].precision,
                object=k,
                box=",".join(f"{v:g}" for v in obj.box),
                score=score,
                pointing_hit=sc.pointing["map"],
                pointing_random=sc.pointing["random"],
                pointing_centre=sc.pointing["centre"],
                energy_pg=sc.energy["map"],
                energy_random=sc.energy["random"],
                energy_centre=sc.energy["centre"],
                **{v: f"{rel}/{pre}{view_name(m, layer, v)}" for v in VIEWS},
            )
            rows.append(row)
    write_npz(folder / "maps.npz", arrays)
    return rows
