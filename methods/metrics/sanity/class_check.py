"""Class sensitivity: does a method's map change with the class it is asked to explain?

A map that is the same whatever class is explained explains the image, not the decision (the
class-discrimination argument of Grad-CAM, Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391,
and the "explains the image" failure of Adebayo et al. 2018, https://arxiv.org/abs/1810.03292).
:func:`class_sensitivity` explains ONE image for several classes ``c_0, c_1, ...`` (by default the
top-1 class ``c_0`` and the LEAST probable class, as in the Grad-CAM paper's check: two
near-synonyms such as "tiger cat" and "Egyptian cat" share their evidence and would pass a
class-blind method's maps as alike for a good reason) at one layer, one :func:`methods.explain_many` call
per class (each map is exactly ``explain(model, x, target=c)``), and measures the agreement of each map ``M_{c_j}`` with ``M_{c_0}``
(:func:`methods.map_agreement`, on the layer's grid). Class-agnostic methods (Eigen-CAM, the
controls: ``MethodSpec.class_agnostic``) give the same map for every class by design.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from methods._internal.checks import check_choice, check_int, check_number, is_int
from methods._internal.torch_utils import check_input, eval_mode, unwrap_model
from methods.cams.core.explain import explain_many
from methods.cams.core.layers import default_layer
from methods.cams.core.recorder import resolve_modules
from methods.cams.core.registry import create_method
from methods.errors import OptionError, TargetError
from methods.metrics.agreement.maps import METRICS, Agreement, map_agreement
from methods.metrics.sanity.check import Verdict

__all__ = ["ClassSensitivity", "class_sensitivity"]

_LABELS = {
    "spearman": "Spearman rank correlation",
    "pearson": "Pearson correlation",
    "iou_top": "top-region IoU",
    "mass_overlap": "mass overlap",
    "mass_share": "mass share",
}


@dataclass(frozen=True, eq=False)
class ClassSensitivity:
    """The maps of one image for several classes, and how much they agree.

    Attributes:
        method, label: registry key and display name.
        layer: the explained layer.
        classes: the explained classes; ``classes[0]`` is the reference (top-1 by default).
        probs: softmax probability of each class.
        maps: raw (h, w) float32 map per class.
        agreements: :class:`Agreement` of ``maps[j]`` with ``maps[0]``, for j = 1, 2, ...
        class_agnostic: the method ignores the class by design (its spec says so).
        class_names: one name per class of the model when it has them (a LoadedModel), else empty.
    """

    method: str
    label: str
    layer: str
    classes: tuple[int, ...]
    probs: tuple[float, ...]
    maps: tuple[torch.Tensor, ...]
    agreements: tuple[Agreement, ...]
    class_agnostic: bool
    class_names: tuple[str, ...] = ()

    def class_label(self, c: int) -> str:
        """``'"tiger cat" (282)'`` where the model names its classes, else ``"class 282"``."""
        return f'"{self.class_names[c]}" ({c})' if 0 <= c < len(self.class_names) else f"class {c}"

    def verdict(self, *, metric: str = "iou_top", threshold: float = 0.5) -> Verdict:
        """Passes when the map of the second class differs from the first: ``metric`` of
        ``agreements[0]`` below ``threshold`` (default: the two top-10 % regions overlap by less
        than half, IoU < 0.5).

        Why the top region and not the whole-map Spearman: measured on the bundled scene models'
        two-object scenes, Grad-CAM++ and LayerCAM maps of the two classes rank-correlate 0.65 -
        0.90 (the background keeps its ranking) while their top regions do not overlap at all
        (IoU 0.00 - 0.37): they do point at different objects (docs/sanity.md)."""
        metric = check_choice("metric", metric, METRICS)
        threshold = check_number("threshold", threshold, minimum=-1.0, maximum=1.0)
        value = float(getattr(self.agreements[0], metric))
        what = _LABELS[metric]
        c0, c1 = self.class_label(self.classes[0]), self.class_label(self.classes[1])
        criterion = f"{what} between the maps of {c0} and {c1} below {threshold:g}"
        if self.agreements[0].flags and "constant" in " ".join(self.agreements[0].flags):
            return Verdict(
                None,
                metric,
                value,
                threshold,
                1,
                criterion,
                f"{self.label}: cannot tell - a map is constant at layer {self.layer}.",
            )
        if value < threshold:
            text = (
                f"{self.label} passes: its map changes with the class ({what} {value:.2f} < {threshold:g} "
                f"between {c0} and {c1}), so it explains the decision, not only the image."
            )
        else:
            why = " It is class-agnostic by design." if self.class_agnostic else ""
            text = (
                f"{self.label} fails: its maps for {c0} and {c1} are alike ({what} {value:.2f} >= "
                f"{threshold:g}): it explains the image, not the decision.{why}"
            )
        return Verdict(value < threshold, metric, value, threshold, 1, criterion, text)


def _classes(classes: Any, logits: torch.Tensor) -> list[int]:
    k = int(logits.shape[1])
    order = logits[0].argsort(descending=True, stable=True)  # (K,) most probable first
    if isinstance(classes, str) and classes == "least":
        if k < 2:
            raise OptionError(f"classes='least' needs a model with at least two classes; this one has {k}")
        return [int(order[0]), int(order[-1])]
    if is_int(classes):
        count = check_int("classes", classes, 2, k)
        return [int(c) for c in order[:count]]
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or len(classes) < 2:
        raise OptionError(
            f"classes must be 'least' (the top-1 and the least probable class), a count >= 2 (the top "
            f"classes) or a list of at least two class "
            f"indices (the first is the reference); got {classes!r}"
        )
    out = []
    for c in classes:
        if not is_int(c) or not 0 <= int(c) < k:
            raise TargetError(f"classes entry {c!r} is not a class index in [0, {k - 1}]")
        out.append(int(c))
    if len(set(out)) != len(out):
        raise OptionError(f"classes {out} contain duplicates")
    return out


def class_sensitivity(
    model: Any,
    x: torch.Tensor,
    *,
    method: str = "gradcam",
    layer: str | None = None,
    classes: Literal["least"] | int | Sequence[int] = "least",
    options: Mapping[str, Any] | None = None,
    top: float = 0.1,
) -> ClassSensitivity:
    """Explain one image for several classes and measure how much the maps agree.

    Args:
        model: an ``nn.Module`` returning logits, or a :class:`methods.LoadedModel`.
        x: ONE preprocessed image, (1, C, H, W); never modified.
        method: a registry key (every registered method works, with its ``options``).
        layer: the explained layer (default: the model's default layer).
        classes: ``"least"`` (default: the top-1 class and the least probable one, the dissimilar
            pair of the Grad-CAM paper's check), a count ``k >= 2`` (the model's top-k classes, most
            probable first; neighbours are often near-synonyms whose maps agree for a good reason)
            or a list of class indices (the first is the reference).
        options: the method's keyword options.
        top: the top fraction of :func:`methods.map_agreement`.

    Returns:
        A :class:`ClassSensitivity` (``.verdict()`` gives pass / fail in words).

    Raises:
        InputError, LayerError, TargetError, OptionError, UnknownMethodError (GradLensError).

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> res = class_sensitivity(net, torch.rand(1, 3, 8, 8), method="eigencam", layer="1", classes=[0, 2])
        >>> res.classes, res.agreements[0].spearman, res.class_agnostic
        ((0, 2), 1.0, True)
    """
    net, loaded_default = unwrap_model(model)
    names = tuple(str(c) for c in (getattr(model, "class_names", None) or ()))
    check_input(x, batch=1)
    if options is not None and not isinstance(options, Mapping):
        raise OptionError(f"options must be a dict of the method's keyword options; got {options!r}")
    configured = create_method(method, **dict(options or {}))
    input_size = (int(x.shape[-2]), int(x.shape[-1]))
    layer = layer if layer is not None else (loaded_default or default_layer(net, input_size))
    resolve_modules(net, [layer])
    with eval_mode(net), torch.inference_mode():
        logits = net(x.detach().clone()).float()  # (1, K)
    chosen = _classes(classes, logits)
    if len(names) != int(logits.shape[1]):  # names that do not match the logits name nothing
        names = ()
    # one call per class (not one batch): a map must equal explain(model, x, target=c) exactly, and
    # some methods draw per batch row (Random's channel weights), which would differ between rows
    exps = [explain_many(net, x, [configured], layers=[layer], target=c)[configured.spec.name] for c in chosen]
    maps = tuple(e.maps[layer][0] for e in exps)
    probs = tuple(float(e.probs[0, c]) for e, c in zip(exps, chosen))
    return ClassSensitivity(
        method=configured.spec.name,
        label=configured.spec.label,
        layer=layer,
        classes=tuple(chosen),
        probs=probs,
        maps=maps,
        agreements=tuple(map_agreement(maps[0], m, top=top) for m in maps[1:]),
        class_agnostic=configured.spec.class_agnostic,
        class_names=names,
    )
