"""The Advisor's result as a Review item: a snapshot of the recommended map on one image, with
the whole report in its metrics and the markdown in its note (:mod:`methods.review.store`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from methods.advisor.normalizations import NORMALIZATIONS
from methods.advisor.result import Advice
from methods.advisor.work import INPUT
from methods.cams.core.explain import explain_many
from methods.errors import OptionError
from methods.review.codec import encode_png
from methods.review.records import LIMITS, NewSnapshot, NormSettings

__all__ = ["advice_snapshot"]


def advice_snapshot(advice: Advice, loaded: Any, image: np.ndarray, *, author: str) -> NewSnapshot:
    """A :class:`~methods.review.records.NewSnapshot` of the recommended method, layer and
    normalization on ``image`` ((H, W, 3) uint8), ready for ``SnapshotStore.save``.

    Raises:
        OptionError: the advice has no recommendation.
    """
    best = advice.best
    if not best:
        raise OptionError("this advice has no recommendation to save (nothing could be ranked)")
    method, layer, norm = str(best["method"]), str(best["layer"]), str(best["norm"])
    x = loaded.preprocess(image)[None]  # (1, 3, H, W)
    real = loaded.default_layer if layer == INPUT else layer
    exp = explain_many(loaded, x, [method], layers=[real])[method]
    t = int(exp.targets[0])
    spec = NORMALIZATIONS[norm]
    title = f"Advisor: {best['label']} at {layer}, {best['normalization']}"
    names = tuple(loaded.class_names)
    return NewSnapshot(
        image_png=encode_png(image),
        model_id=str(getattr(loaded, "name", "model"))[: LIMITS["model_id"]],
        author=author,
        methods=(method,),
        layers=(real,),
        maps={method: {real: exp.maps[real][0].detach().float().cpu().numpy()}},
        page="advisor",
        target_index=t,
        target_name=names[t] if t < len(names) else str(t),
        normalization=NormSettings(mode=spec.mode, relu=spec.relu),
        metrics={"advisor": advice.to_dict()},
        title=title[: LIMITS["title"]],
        note=advice.to_markdown()[: LIMITS["note"]],
    )
