"""Multi-layer fusion: one map from a method's maps at several layers, computed from ONE recorded pass.

LayerCAM (Jiang, Zhang, Hou, Cheng, Wei, "LayerCAM: Exploring Hierarchical Class Activation Maps
for Localization", IEEE TIP 30, 2021, https://ieeexplore.ieee.org/document/9462463,
https://doi.org/10.1109/TIP.2021.3089943) combines the class activation maps of shallow layers
(fine detail) with those of deep ones (the object as a whole). Shallow layers give much smaller
values, so the paper scales their maps before combining them (its Eq. 9):

    ``M^_l = tanh(gamma * M_l / max(M_l))``,  ``gamma = 2``.

Here, for ``L`` layers with raw maps ``M_l`` (N, h_l, w_l) of one call of a gradient-family
method (all layers of one :func:`methods.explain_many` pass: one forward, one backward):

1. ``U_l = ReLU(up(M_l))`` — each map bilinearly resized (``align_corners=False``) to the fused
   grid ``(H, W)`` (default the input size), negative evidence dropped;
2. ``S_l = U_l / max U_l`` per sample (0 where ``max U_l = 0``: a layer with no positive evidence
   adds nothing, and the call notes it);
3. ``scale="shallow"`` (the paper): ``S^_l = tanh(gamma * S_l)`` for every layer but the deepest,
   whose ``S_l`` stays as it is; ``"all"``: tanh for every layer; ``"none"``: no tanh;
4. ``fuse="max"``: ``F = max_l S^_l`` element-wise (the paper's combination);
   ``fuse="mean"``: ``F = (1/L) sum_l S^_l``.

The fused map lies in [0, 1] (0 where no layer has positive evidence).

Deviation: the deepest layer is the one whose own grid has the fewest positions ``h_l * w_l``
(ties: the last one named); the paper picks the layers of VGG-16 by hand. The maps are resized
BEFORE they are divided by their maximum, so every ``S_l`` reaches exactly 1 on the fused grid.
The fused map is rectified (it has to be, to be scaled by its maximum); the raw, signed per-layer
maps stay in :attr:`FusedExplanation.explanation`. ``fuse="mean"`` is not in the paper
(pytorch-grad-cam averages the layers it is given); ``scale`` and ``gamma`` are options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from methods._internal.checks import size2
from methods._internal.torch_utils import ModelLike, upsample
from methods.cams.core.explain import Explanation, LayerSpec, TargetSpec, explain_many
from methods.cams.core.options import Options, option
from methods.cams.core.registry import create_method
from methods.errors import LayerError, OptionError

__all__ = ["FUSES", "SCALES", "FusionOptions", "FusedExplanation", "deepest_layer", "fuse_layer_maps", "explain_fused"]

FUSES: tuple[str, ...] = ("max", "mean")
SCALES: tuple[str, ...] = ("shallow", "all", "none")

#: The method families whose maps fusion combines (one map per layer from the shared pass).
FUSABLE_FAMILIES: tuple[str, ...] = ("gradient",)


@dataclass(frozen=True)
class FusionOptions(Options):
    """How the layers' maps become one (module docstring)."""

    fuse: str = option("max", "element-wise max (LayerCAM's) or mean of the scaled layer maps", choices=FUSES)
    scale: str = option(
        "shallow", "tanh(gamma * map / max) for the shallow layers (LayerCAM), every layer, or none", choices=SCALES
    )
    gamma: float = option(
        2.0, "tanh scale factor of LayerCAM's Eq. 9", minimum=0.0, maximum=100.0, exclusive_minimum=True
    )


@dataclass(frozen=True)
class FusedExplanation:
    """One fused map and the per-layer explanation it came from.

    Attributes:
        fused: (N, H, W) float32 in [0, 1].
        explanation: the method's :class:`Explanation` over the layers (raw, signed maps).
        options: the :class:`FusionOptions` used.
        deepest: the layer treated as the deepest (not tanh-scaled with ``scale="shallow"``).
        notes: what the user should know (a layer with no positive evidence, the method's notes).
    """

    fused: torch.Tensor
    explanation: Explanation
    options: FusionOptions
    deepest: str
    notes: tuple[str, ...] = ()

    @property
    def layers(self) -> tuple[str, ...]:
        return self.explanation.layers


def deepest_layer(shapes: Mapping[str, Sequence[int]]) -> str:
    """The layer whose grid ``(h, w)`` (last two sizes) has the fewest positions; ties: the last.

    Examples:
        >>> deepest_layer({"features.3": (1, 64, 64), "features.10": (1, 16, 16), "features.20": (1, 16, 16)})
        'features.20'
    """
    if not shapes:
        raise LayerError("no layers to fuse; give at least two layer names")
    names = list(shapes)
    return min(reversed(names), key=lambda k: int(shapes[k][-2]) * int(shapes[k][-1]))


def fuse_layer_maps(
    maps: Mapping[str, torch.Tensor],
    size: int | Sequence[int],
    *,
    fuse: str = "max",
    scale: str = "shallow",
    gamma: float = 2.0,
) -> torch.Tensor:
    """Fuse raw layer maps ``{layer: (N, h_l, w_l)}`` into one (N, H, W) map (module docstring).

    Args:
        maps: raw maps per layer, in order (one sample: (h_l, w_l) also works; tensors or arrays).
        size: the fused grid ``(H, W)`` (usually the input size).
        fuse, scale, gamma: :class:`FusionOptions`.

    Returns:
        (N, H, W) float32 in [0, 1] ((H, W) for 2-D maps).

    Examples:
        >>> a = torch.tensor([[[0.0, 2.0], [1.0, -1.0]]])       # shallow: max 2
        >>> b = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]])        # "deep": the last of two equal grids
        >>> fuse_layer_maps({"a": a, "b": b}, (2, 2), scale="none").tolist()
        [[[1.0, 1.0], [0.5, 0.0]]]
        >>> fuse_layer_maps({"a": a, "b": b}, (2, 2), fuse="mean", scale="none").tolist()
        [[[0.5, 0.5], [0.25, 0.0]]]
    """
    opts = FusionOptions(fuse=fuse, scale=scale, gamma=gamma)
    if not isinstance(maps, Mapping) or len(maps) == 0:
        raise LayerError("maps is empty; fusion needs the maps of at least one layer")
    grid = size2(size, "size")
    tensors = {k: m if isinstance(m, torch.Tensor) else torch.as_tensor(np.asarray(m)) for k, m in maps.items()}
    squeeze = all(m.ndim == 2 for m in tensors.values())
    stacked = {k: (m[None] if m.ndim == 2 else m).detach().float() for k, m in tensors.items()}  # (N, h, w)
    if len({m.shape[0] for m in stacked.values()}) != 1 or any(m.ndim != 3 for m in stacked.values()):
        raise OptionError(f"maps must all be (N, h, w) with one N; got {[tuple(m.shape) for m in stacked.values()]}")
    deep = deepest_layer({k: tuple(m.shape) for k, m in stacked.items()})
    scaled = []
    for layer, m in stacked.items():
        u = upsample(torch.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0), grid).clamp(min=0)  # (N, H, W)
        top = u.amax(dim=(1, 2), keepdim=True)  # (N, 1, 1)
        s = torch.where(top > 0, u / torch.where(top > 0, top, torch.ones_like(top)), torch.zeros_like(u))
        if opts.scale == "all" or (opts.scale == "shallow" and layer != deep):
            s = torch.tanh(opts.gamma * s)
        scaled.append(s)
    both = torch.stack(scaled)  # (L, N, H, W)
    out = both.amax(dim=0) if opts.fuse == "max" else both.mean(dim=0)  # (N, H, W)
    return out[0] if squeeze else out


def explain_fused(
    model: ModelLike,
    x: torch.Tensor,
    method: str = "layercam",
    *,
    layers: LayerSpec,
    fuse: str = "max",
    scale: str = "shallow",
    gamma: float = 2.0,
    target: TargetSpec = None,
    size: int | Sequence[int] | None = None,
    **options: Any,
) -> FusedExplanation:
    """A gradient-family method at several layers, fused into one map; ONE forward + backward.

    Args:
        model: an ``nn.Module`` returning (N, K) logits, or a ``LoadedModel``.
        x: preprocessed input (N, 3, H, W); never modified.
        method: a gradient-family key (``"layercam"`` default, ``"gradcam"``, ``"gradcampp"`` ...).
        layers: two or more layer names (or modules), or ``"all"``.
        fuse, scale, gamma: :class:`FusionOptions` (module docstring).
        target: as :func:`methods.explain`.
        size: the fused grid (default the input's ``(H, W)``).
        **options: the method's own options (``eigen_smooth=True`` ...).

    Returns:
        :class:`FusedExplanation`: ``fused`` (N, H, W) in [0, 1] and the per-layer explanation.

    Raises:
        OptionError: a method outside the gradient family, a bad fusion option.
        LayerError: fewer than two layers, or a layer that is not in the model.

    Examples:
        >>> import torch, methods
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        ...     torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
        ...     torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> f = methods.explain_fused(net, torch.rand(1, 3, 8, 8), "layercam", layers=["1", "3"])
        >>> tuple(f.fused.shape), f.deepest, bool(f.fused.max() <= 1)
        ((1, 8, 8), '3', True)
    """
    configured = create_method(method, **options)
    spec = configured.spec
    if spec.family not in FUSABLE_FAMILIES or spec.resolution != "layer":
        raise OptionError(
            f"fusion is an option of the gradient family; {spec.label} is a {spec.family!r} method. Choose one of "
            "layercam, gradcam, gradcampp, xgradcam, hirescam (methods.list_methods())"
        )
    opts = FusionOptions(fuse=fuse, scale=scale, gamma=gamma)
    if not isinstance(layers, (str, torch.nn.Module)) and layers is not None and len(list(layers)) < 2:
        raise LayerError(f"fusion needs two or more layers; got {list(layers)!r}. Use methods.explain for one layer")
    exp = explain_many(model, x, [configured], layers=layers, target=target)[spec.name]
    if len(exp.layers) < 2:
        raise LayerError(f"fusion needs two or more layers; {layers!r} gave {list(exp.layers)}")
    grid = size2(size, "size") if size is not None else exp.input_size
    fused = fuse_layer_maps(exp.maps, grid, fuse=opts.fuse, scale=opts.scale, gamma=opts.gamma)
    empty = [k for k, m in exp.maps.items() if bool((m.flatten(1).amax(dim=1) <= 0).any())]
    notes = tuple(exp.notes) + tuple(
        f"{layer}: no positive evidence in at least one sample; that layer adds nothing to the fused map"
        for layer in empty
    )
    deep = deepest_layer({k: tuple(m.shape) for k, m in exp.maps.items()})
    return FusedExplanation(fused=fused, explanation=exp, options=opts, deepest=deep, notes=notes)
