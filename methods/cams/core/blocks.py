"""Block outputs and forward order: the short list of layers a person reads a network by.

Real networks have hundreds of candidate layers (:func:`methods.cams.core.layers.candidate_layers`:
every conv, norm and activation). :func:`block_layers` keeps one per block (the rule is in its
docstring); :func:`forward_order` lists every module that runs, in the order it finishes. Both
come from the same one-pass probe as the candidate layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from methods._internal.checks import size2
from methods.cams.core.layers import (
    PLAIN_CONTAINERS,
    FiredModule,
    LayerInfo,
    candidates_and_default,
    is_candidate,
    output_shape,
    probe_modules,
)
from methods.cams.core.task_layers import task_blocks

__all__ = ["block_layers", "forward_order"]


def forward_order(model: nn.Module, input_size: int | Sequence[int] = (224, 224)) -> list[str]:
    """Names of the modules that run in one forward pass, in the order they FINISH (a container
    right after its last child); modules that never run are absent. One probe pass, as for
    :func:`candidate_layers`.

    Examples:
        >>> from torch import nn
        >>> forward_order(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Sequential(nn.ReLU())), (4, 4))
        ['0', '1.0', '1']
    """
    return [r.name for r in probe_modules(model, size2(input_size))]


def block_layers(model: nn.Module, input_size: int | Sequence[int] = (224, 224)) -> list[LayerInfo]:
    """A short list of the candidate layers that end a block: one map per block, in forward order.

    Real networks have hundreds of candidate layers (every conv, norm and activation); the block
    outputs are what a person reads a network by. The rule walks the module tree from the root:

    * a plain container (exactly ``nn.Sequential`` / ``nn.ModuleList`` / ``nn.ModuleDict``, and
      the root itself) is looked inside: its children are the units;
    * any other module with children is ONE unit (a ResNet ``Bottleneck``, an ``MBConv``, a
      ``Conv2dNormActivation``, a DenseNet ``_DenseBlock``), unless its output is not a
      candidate (then it is looked inside too);
    * consecutive leaf children of one container whose outputs have the same shape are one unit,
      represented by the last of them (conv -> BatchNorm -> ReLU gives the ReLU);
    * a plain container that yields a single unit with its own output is named as the container
      (``layer4`` rather than ``layer4.0``).

    =================== =============================================================================
    model               block layers (224 x 224 input)
    =================== =============================================================================
    ResNet-18 / 50      ``relu, maxpool, layer1.0 ... layer4.1`` (10) / ``... layer4.2`` (18)
    VGG-16              the last layer of each run of equal shape: ``features.3, .4, .8, .9, .15,
                        .16, .22, .29, .30`` and ``avgpool`` (10)
    DenseNet-121        ``features.relu0, pool0, denseblock1, transition1 ... denseblock4, norm5`` (10)
    EfficientNet-B0     ``features.0, features.1, features.2.0 ... features.6.3, features.7, features.8`` (18)
    MobileNetV3-L       ``features.0 ... features.16`` (17)
    ConvNeXt-T          ``features.0, features.1.0 ... features.7.2`` (25)
    scenes_vgg (128^2)  ``features.2, .3, .6, .7, .13, .14, .20`` (7)
    scenes_resnet       ``relu, layer1, layer2, layer3, layer4`` (5)
    =================== =============================================================================

    Args:
        model: any ``nn.Module`` taking one image tensor.
        input_size: ``(H, W)`` of the probe input, or one int.

    Returns:
        :class:`LayerInfo` entries in forward order; ``index`` is the layer's position in
        :func:`candidate_layers` (so a relative depth can be read against either list).

    Raises:
        OptionError: bad ``input_size``.
        WrongTypeError: ``model`` is not an ``nn.Module``.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        ...                     nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        >>> [(i.name, i.shape, i.index) for i in block_layers(net, (8, 8))]
        [('2', (4, 8, 8), 2), ('3', (4, 4, 4), 3), ('5', (8, 4, 4), 5)]
    """
    size = size2(input_size)
    probe = probe_modules(model, size)
    fired = {r.name: r for r in probe}
    kept = [r for r in sorted(fired.values(), key=lambda r: r.order) if is_candidate(r)]
    index = {r.name: i for i, r in enumerate(kept)}
    names = task_blocks(model, list(index)) or _units("", model, fired, index)  # torchvision detectors / segmenters
    position = {
        info.name: info.index for info in candidates_and_default(model, size, probe)[0]
    }  # counts the name:act entries
    return [
        LayerInfo(name=n, type=type(fired[n].module).__name__, shape=output_shape(fired[n]), index=position[n])
        for n in names
    ]


def _units(prefix: str, module: nn.Module, fired: dict[str, FiredModule], index: dict[str, int]) -> list[str]:
    """The block-output names under ``module`` (see :func:`block_layers`), in forward order."""
    entries: list[tuple[int, str, bool]] = []  # (forward position, name, is a direct leaf child)
    for child_name, child in module.named_children():
        full = f"{prefix}.{child_name}" if prefix else child_name
        has_children = next(child.children(), None) is not None
        if has_children and (type(child) in PLAIN_CONTAINERS or full not in index):
            inner = _units(full, child, fired, index)
            if len(inner) == 1 and full in index and fired[full].output is fired[inner[0]].output:
                inner = [full]  # the container is that one unit: use its (outer) name
            entries += [(index[n], n, False) for n in inner]
        elif full in index:
            entries.append((index[full], full, not has_children))
    entries.sort()
    out: list[str] = []
    for pos, (_, name, leaf) in enumerate(entries):
        nxt = entries[pos + 1] if pos + 1 < len(entries) else None
        if leaf and nxt is not None and nxt[2] and output_shape(fired[nxt[1]]) == output_shape(fired[name]):
            continue  # the next leaf of the same shape stands for this one
        out.append(name)
    return out
