"""Which layers of a CNN can be explained, and which one to explain by default.

Both answers come from one dummy forward pass with a forward hook on every named module (hooks
registered in ``try`` and removed in ``finally``; the model is put in eval mode for the pass so no
BatchNorm statistic changes, and every module's train/eval flag is restored afterwards).

What counts as a *candidate layer*:

* any named module except the root whose output is a single 4-D tensor ``(N, C, h, w)`` with more
  than one spatial position (``h * w > 1``) - a map needs a spatial grid;
* listed in the order the modules **finish** their forward (the order forward hooks fire). A
  container therefore comes right after its last child: ``layer4.2`` ... then ``layer4``;
* containers are kept even when their output is the very same tensor object as a child's output
  (``layer4`` is ``layer4.2``'s output; VGG's ``features`` is ``features.30``'s). Users look for
  block names like ``layer4``, and an alias costs nothing to record;
* a module that runs **more than once** in one forward is excluded: torchvision's ResNet blocks
  call one ``relu`` module three times, and "the output of ``layer1.0.relu``" would be ambiguous
  (the recorder refuses such modules too). Modules that never run (unused heads) are not listed.

The default layer (:func:`default_layer`) is "the end of the convolutional backbone": the last
candidate that is not pooling / dropout / flatten / identity (nor an alias of a pooling output),
then, among the modules that share that output tensor, the outermost one - unless that one is the
whole backbone (it receives the model's input image directly, or its direct children give maps of
several sizes, i.e. it holds several stages), in which case the next one inside it is used.
Identity and eval-mode Dropout hand on their input unchanged: they are never the default, but they
do not disqualify the module whose output they pass on. For torchvision this gives:

=================== ======================= =====================================================
model               default                 why
=================== ======================= =====================================================
VGG16               ``features.29``         last ReLU; ``features.30`` is a max-pool
ResNet-18/50        ``layer4``              the last stage (same tensor as ``layer4.x``)
DenseNet-121        ``features.norm5``      ``features`` is the whole backbone (sees the image);
                                            the model's final ReLU is functional, not a module
MobileNetV3-L       ``features.16``         last block; ``features`` sees the image
EfficientNet-B0     ``features.8``          last block
ConvNeXt-T          ``features.7``          last stage
=================== ======================= =====================================================

and for timm (checked in tests/cams/test_layers.py):

=========================== ================ =====================================================
model                       default          why
=========================== ================ =====================================================
tf_efficientnet_lite0, B0   ``bn2``          BN + activation after ``conv_head`` (its Identity
                                             ``bn2.drop`` no longer hides it)
resnet50                    ``layer4``       the last stage
convnext_tiny               ``stages.3``     ``stages`` holds four stages of different sizes
regnety_008                 ``s4``           ``final_conv`` is an Identity
densenet121                 ``features.norm5``
=========================== ================ =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from methods._checks import size2
from methods._torch import HookScope, eval_mode
from methods.errors import LayerError, WrongTypeError

__all__ = ["LayerInfo", "PLAIN_CONTAINERS", "candidate_layers", "default_layer", "block_layers", "forward_order"]

#: Containers that only chain or hold their children (exact types: a subclass such as
#: torchvision's ``Conv2dNormActivation`` is a unit of its own). :func:`block_layers` and the
#: sanity check's default blocks look inside them.
PLAIN_CONTAINERS: tuple[type, ...] = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

# Modules that only summarise or pass on the backbone's last map: never the default layer.
_NOT_DEFAULT = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
    nn.modules.dropout._DropoutNd,
    nn.Flatten,
    nn.Identity,
)


@dataclass(frozen=True)
class LayerInfo:
    """One candidate layer.

    Attributes:
        name: dotted module name, as in ``model.named_modules()`` (``"layer4"``, ``"features.29"``).
        type: class name of the module (``"ReLU"``, ``"Sequential"``, ``"Bottleneck"``).
        shape: ``(C, h, w)`` of the module's output for the probed input size.
        index: position in forward order, 0-based (the list index in :func:`candidate_layers`).
    """

    name: str
    type: str
    shape: tuple[int, int, int]
    index: int


@dataclass
class _Fired:
    """What the probe saw for one module (internal)."""

    name: str
    module: nn.Module
    calls: int
    order: int  # when it first finished
    output: Any  # the output object of the first call (strong reference, dropped after the probe)
    takes_input: bool  # the model's input tensor was one of its positional inputs
    passes_through: bool  # its output IS one of its inputs (Identity, Dropout in eval mode)


def _in_channels(model: nn.Module) -> int:
    """Channels the model expects: those of its first conv (3 if it has none)."""
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return 3


def _probe(model: nn.Module, input_size: tuple[int, int]) -> list[_Fired]:
    """Run one no-grad forward with hooks on every named module; return what fired, in order."""
    if not isinstance(model, nn.Module):
        raise WrongTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.get_default_device()
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    gen = torch.Generator().manual_seed(0)  # leaves the global RNG alone
    x = torch.randn(1, _in_channels(model), *input_size, generator=gen).to(device=device, dtype=dtype)  # (1, C, H, W)

    fired: dict[str, _Fired] = {}
    counter = [0]

    def make_hook(name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            rec = fired.get(name)
            if rec is not None:
                rec.calls += 1
                return
            fired[name] = _Fired(
                name=name,
                module=module,
                calls=1,
                order=counter[0],
                output=output,
                takes_input=any(a is x for a in args),
                passes_through=any(a is output for a in args),
            )
            counter[0] += 1

        return hook

    with eval_mode(model), HookScope() as hooks, torch.no_grad():
        for name, module in model.named_modules():
            if name:  # the root is the whole model, never a layer
                hooks.forward(module, make_hook(name))
        model(x)
    return sorted(fired.values(), key=lambda r: r.order)


def _is_candidate(rec: _Fired) -> bool:
    out = rec.output
    return (
        rec.calls == 1
        and isinstance(out, torch.Tensor)
        and out.dim() == 4
        and out.shape[2] * out.shape[3] > 1
    )


def _shape(rec: _Fired) -> tuple[int, int, int]:
    _, c, h, w = rec.output.shape
    return int(c), int(h), int(w)


def candidate_layers(model: nn.Module, input_size: int | Sequence[int] = (224, 224)) -> list[LayerInfo]:
    """List the layers of ``model`` whose output is a spatial feature map, in forward order.

    Runs one forward pass on a (1, C, H, W) random input (C = the first conv's in_channels) under
    ``torch.no_grad()`` on the model's device and dtype; the model's modes are restored. See the
    module docstring for the exact rules (containers kept, reused modules excluded).

    Args:
        model: any ``nn.Module`` taking one image tensor.
        input_size: ``(H, W)`` of the probe input, or one int for a square; shapes depend on it.

    Returns:
        list of :class:`LayerInfo`, ``index`` equal to the list position.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> [(i.name, i.type, i.shape) for i in candidate_layers(net, (8, 8))]
        [('0', 'Conv2d', (4, 6, 6)), ('1', 'ReLU', (4, 6, 6))]
        >>> default_layer(net, (8, 8))
        '1'

    Raises:
        OptionError: bad ``input_size``.
        WrongTypeError: ``model`` is not an ``nn.Module``.
    """
    size = size2(input_size)
    kept = [r for r in _probe(model, size) if _is_candidate(r)]
    return [LayerInfo(name=r.name, type=type(r.module).__name__, shape=_shape(r), index=i) for i, r in enumerate(kept)]


def default_layer(model: nn.Module, input_size: int | Sequence[int] = (224, 224)) -> str:
    """Name of a sensible layer to explain by default: the end of the convolutional backbone.

    Rule (module docstring has the tables for torchvision and timm models): walk the candidates
    backwards, skipping pooling / dropout / flatten / identity modules and any module whose output
    is the same tensor object as a pooling output (a container ending in a pool, such as VGG's
    ``features``); a pass-through (Identity, eval Dropout: output IS its input) disqualifies only
    itself. The first remaining one fixes the *final map*. Of all candidates whose output is that
    very tensor (a block and its last sub-block, a conv and its in-place ReLU), return the one that
    finished last (the outermost), skipping the whole backbone when another choice exists: a module
    that received the model's input directly (torchvision's ``features``) or whose direct children
    give maps of more than one size (timm's ``stages``).

    Raises:
        LayerError: the model has no candidate layer (no 4-D output with h * w > 1).
        OptionError: bad ``input_size``.
    """
    size = size2(input_size)
    cands = [r for r in _probe(model, size) if _is_candidate(r)]
    # Outputs of summarising modules; a container fires *after* its last child, so collect them
    # all first rather than while walking backwards. A pass-through (Identity, Dropout in eval
    # mode) makes no tensor of its own: it must not disqualify the module whose output it hands on
    # (timm's BatchNormAct2d ends in an Identity ``drop``; ConvNeXt's ``norm_pre`` is an Identity).
    summaries = [r.output for r in cands if isinstance(r.module, _NOT_DEFAULT) and not r.passes_through]
    final = None
    for rec in reversed(cands):
        if not isinstance(rec.module, _NOT_DEFAULT) and not any(rec.output is s for s in summaries):
            final = rec
            break
    if final is None:
        raise LayerError(
            f"{type(model).__name__} has no layer with a spatial output (a 4-D tensor with h*w > 1) "
            f"for input_size={size}; Grad-CAM-style maps need a convolutional layer"
        )
    group = [r for r in cands if r.output is final.output and not isinstance(r.module, _NOT_DEFAULT)]  # forward order
    inner = [r for r in group if not r.takes_input and not _spans_stages(r, cands)]
    return (inner or group)[-1].name


def _spans_stages(rec: _Fired, cands: list[_Fired]) -> bool:
    """``rec`` is a container of several stages: its direct children give maps of more than one
    spatial size (timm's ``stages``, torchvision's ``features``). A stage (``layer4``, whose blocks
    all give 7 x 7) is not."""
    prefix = rec.name + "."
    sizes = {tuple(r.output.shape[2:]) for r in cands if r.name.startswith(prefix) and "." not in r.name[len(prefix):]}
    return len(sizes) > 1


def forward_order(model: nn.Module, input_size: int | Sequence[int] = (224, 224)) -> list[str]:
    """Names of the modules that run in one forward pass, in the order they FINISH (a container
    right after its last child); modules that never run are absent. One probe pass, as for
    :func:`candidate_layers`.

    Examples:
        >>> from torch import nn
        >>> forward_order(nn.Sequential(nn.Conv2d(3, 2, 1), nn.Sequential(nn.ReLU())), (4, 4))
        ['0', '1.0', '1']
    """
    return [r.name for r in _probe(model, size2(input_size))]


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
    fired = {r.name: r for r in _probe(model, size)}
    kept = [r for r in sorted(fired.values(), key=lambda r: r.order) if _is_candidate(r)]
    index = {r.name: i for i, r in enumerate(kept)}
    names = _units("", model, fired, index)
    return [LayerInfo(name=n, type=type(fired[n].module).__name__, shape=_shape(fired[n]), index=index[n]) for n in names]


def _units(prefix: str, module: nn.Module, fired: dict[str, _Fired], index: dict[str, int]) -> list[str]:
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
        if leaf and nxt is not None and nxt[2] and _shape(fired[nxt[1]]) == _shape(fired[name]):
            continue  # the next leaf of the same shape stands for this one
        out.append(name)
    return out
