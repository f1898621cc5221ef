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
  (the recorder refuses the bare name too, and records a call site ``layer1.0.relu#1``, see
  :mod:`methods.cams.core.sites`). Modules that never run (unused heads) are not listed;
* ``name:act`` follows a layer whose output goes next into a FUNCTIONAL activation (an
  ``F.relu`` in a ``forward``, not a module of its own): DenseNet's ``features.norm5:act`` is the
  only way to name the tensor its classifier sees. Where the activation is a module used in
  several places (one ReLU6 for a network's stem and head), ``name:act`` is listed for the
  default layer only (every such ``name:act`` and ``module#k`` can still be recorded).

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
DenseNet-121        ``features.norm5:act``  ``features`` is the whole backbone (sees the image);
                                            the model's final ReLU is functional, not a module
MobileNetV3-L       ``features.16``         last block; ``features`` sees the image
EfficientNet-B0     ``features.8``          last block
ConvNeXt-T          ``features.7``          last stage
=================== ======================= =====================================================

and for timm (checked in tests/cams/core/test_layers.py):

=========================== ==================== =================================================
model                       default              why
=========================== ==================== =================================================
tf_efficientnet_lite0, B0   ``bn2``              BN + activation after ``conv_head`` (its Identity
                                                 ``bn2.drop`` no longer hides it)
resnet50                    ``layer4``           the last stage
convnext_tiny               ``stages.3``         ``stages`` holds four stages of different sizes
regnety_008                 ``s4``               ``final_conv`` is an Identity
densenet121                 ``features.norm5``   the last normalization layer before the head
=========================== ==================== =================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from methods._internal.checks import size2
from methods._internal.torch_utils import HookScope, eval_mode
from methods.cams.core.families import family_default
from methods.cams.core.layouts import Layout, decide_layout, model_facts
from methods.cams.core.sites import TensorWatch
from methods.errors import LayerError, WrongTypeError

__all__ = [
    "LayerInfo",
    "FiredModule",
    "PLAIN_CONTAINERS",
    "candidate_layers",
    "candidates_and_default",
    "default_layer",
    "is_candidate",
    "output_shape",
    "probe_modules",
]

#: Containers that only chain or hold their children (exact types: a subclass such as
#: torchvision's ``Conv2dNormActivation`` is a unit of its own). :func:`methods.cams.core.blocks.block_layers` and the
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
class FiredModule:
    """What the probe saw for one module (internal)."""

    name: str
    module: nn.Module
    calls: int
    order: int  # when it first finished
    output: Any  # the output object of the first call (strong reference, dropped after the probe)
    takes_input: bool  # the model's input tensor was one of its positional inputs
    passes_through: bool  # its output IS one of its inputs (Identity, Dropout in eval mode)
    act: tuple[str, str | None] | None = None  # (activation, module it runs in) consuming the output first
    layout: Layout | None = None  # how its output reads as (C, h, w); None: not a map (see refused)
    refused: str = ""  # why its output is not a map, when it is a 3-D / 4-D tensor


def _in_channels(model: nn.Module) -> int:
    """Channels the model expects: those of its first conv (3 if it has none)."""
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return 3


def probe_modules(model: nn.Module, input_size: tuple[int, int]) -> list[FiredModule]:
    """Run one no-grad forward with hooks on every named module; return what fired, in order.

    A :class:`methods.cams.core.sites.TensorWatch` also sees which function first consumes each
    module's 4-D output, and inside which module that happens (:attr:`FiredModule.act`).
    """
    if not isinstance(model, nn.Module):
        raise WrongTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.get_default_device()
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    gen = torch.Generator().manual_seed(0)  # leaves the global RNG alone
    x = torch.randn(1, _in_channels(model), *input_size, generator=gen).to(device=device, dtype=dtype)  # (1, C, H, W)

    fired: dict[str, FiredModule] = {}
    facts = model_facts(model, input_size)
    counter = [0]
    stack: list[str] = []
    acts: dict[int, tuple[str, str | None]] = {}  # id(output) -> (activation name, module running it)

    def on_activation(key: int, func, args, kwargs):
        acts[key] = (getattr(func, "__name__", "activation"), stack[-1] if stack else None)
        return func(*args, **kwargs)

    watch = TensorWatch(on_activation)

    def pre(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            stack.append(name)

        return hook

    def make_hook(name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if stack and stack[-1] == name:
                stack.pop()
            rec = fired.get(name)
            if rec is not None:
                rec.calls += 1
                return
            fired[name] = FiredModule(
                name=name,
                module=module,
                calls=1,
                order=counter[0],
                output=output,
                takes_input=any(a is x for a in args),
                passes_through=any(a is output for a in args),
            )
            counter[0] += 1
            if isinstance(output, torch.Tensor) and output.dim() in (3, 4):
                try:
                    fired[name].layout = decide_layout(facts, name, module, output, 1)
                except LayerError as exc:
                    fired[name].refused = str(exc)
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                watch.watch(output, id(output))

        return hook

    with eval_mode(model), HookScope() as hooks, torch.no_grad():
        for name, module in model.named_modules():
            if name:  # the root is the whole model, never a layer
                hooks.forward_pre(module, pre(name))
                hooks.forward(module, make_hook(name))
        with watch:
            model(x)
    for rec in fired.values():
        rec.act = acts.get(id(rec.output)) if isinstance(rec.output, torch.Tensor) else None
    return sorted(fired.values(), key=lambda r: r.order)


def _act_entry(rec: FiredModule, fired: dict[str, FiredModule], named: dict[str, nn.Module]) -> str | None:
    """ "functional" / "reused" when ``rec``'s output goes to an activation that is not a module
    of its own (then ``name:act`` is the only way to reach it), else None."""
    if rec.act is None:
        return None
    _, inside = rec.act
    if inside is None or len(list(named[inside].children())) > 0:
        return "functional"
    return "reused" if fired[inside].calls > 1 else None


def is_candidate(rec: FiredModule) -> bool:
    """Runs once and gives a map (any layout :mod:`methods.cams.core.layouts` decides) with h * w > 1."""
    return rec.calls == 1 and rec.layout is not None and rec.layout.grid[0] * rec.layout.grid[1] > 1


def output_shape(rec: FiredModule) -> tuple[int, int, int]:
    """``(C, h, w)`` of the map the module's output reads as."""
    assert rec.layout is not None  # only asked of candidates
    return rec.layout.shape


def candidate_layers(model: nn.Module, input_size: int | Sequence[int] = (224, 224)) -> list[LayerInfo]:
    """List the layers of ``model`` whose output is a spatial feature map, in forward order.

    Runs one forward pass on a (1, C, H, W) random input (C = the first conv's in_channels) under
    ``torch.no_grad()`` on the model's device and dtype; the model's modes are restored. See the
    module docstring for the exact rules (containers kept, reused modules excluded, ``name:act``
    after functional activations; its ``type`` is the activation function's name, ``"relu"``).

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
    return candidates_and_default(model, size)[0]


def candidates_and_default(
    model: nn.Module, size: tuple[int, int], probe: list[FiredModule] | None = None
) -> tuple[list[LayerInfo], str | None]:
    """The candidate list and the default layer from ONE probe (``probe``: one already run)."""
    probe = probe_modules(model, size) if probe is None else probe
    fired = {r.name: r for r in probe}
    named = dict(model.named_modules())
    cands = [r for r in probe if is_candidate(r)]
    default = family_default(model, [r.name for r in cands]) or _default(cands, fired, named)
    # name:act entries: after the last alias of the tensor, for the alias the default rule picks
    entries: list[tuple[str, str, tuple[int, int, int]]] = []
    done: set[int] = set()
    for r in cands:
        entries.append((r.name, type(r.module).__name__, output_shape(r)))
        group = [g for g in cands if g.output is r.output]
        if r is not group[-1] or id(r.output) in done:
            continue
        done.add(id(r.output))
        chosen = _outermost(group, cands)
        kind = _act_entry(chosen, fired, named)
        if kind == "functional" or (kind == "reused" and default == chosen.name + ":act"):
            assert chosen.act is not None  # _act_entry gives a kind only to a module with an act
            entries.append((chosen.name + ":act", chosen.act[0], output_shape(chosen)))
    infos = [LayerInfo(name=n, type=t, shape=sh, index=i) for i, (n, t, sh) in enumerate(entries)]
    return infos, default


def _outermost(group: list[FiredModule], cands: list[FiredModule]) -> FiredModule:
    """Of modules sharing one output tensor (forward order), the outermost that is not the whole
    backbone (it does not see the model's input, nor hold several stages: :func:`_spans_stages`)."""
    inner = [r for r in group if not r.takes_input and not _spans_stages(r, cands)]
    return (inner or group)[-1]


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
    When the model applies an activation to that output that no module of its own gives (a
    functional ``F.relu``, or an activation module that also runs elsewhere), the default is
    ``"<name>:act"``: the tensor the classifier sees (DenseNet: ``features.norm5:act``).

    Raises:
        LayerError: the model has no candidate layer (no 4-D output with h * w > 1).
        OptionError: bad ``input_size``.
    """
    size = size2(input_size)
    default = candidates_and_default(model, size)[1]
    if default is None:
        raise LayerError(
            f"{type(model).__name__} has no layer with a spatial output (a 4-D tensor with h*w > 1) "
            f"for input_size={size}; Grad-CAM-style maps need a convolutional layer"
        )
    return default


def _default(cands: list[FiredModule], fired: dict[str, FiredModule], named: dict[str, nn.Module]) -> str | None:
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
        return None
    group = [r for r in cands if r.output is final.output and not isinstance(r.module, _NOT_DEFAULT)]  # forward order
    chosen = _outermost(group, cands)
    # the classifier sees the output after an activation that no module of its own gives: explain that
    return chosen.name + ":act" if _act_entry(chosen, fired, named) else chosen.name


def _spans_stages(rec: FiredModule, cands: list[FiredModule]) -> bool:
    """``rec`` is a container of several stages: its direct children give maps of more than one
    spatial size (timm's ``stages``, torchvision's ``features``). A stage (``layer4``, whose blocks
    all give 7 x 7) is not."""
    prefix = rec.name + "."
    sizes = {
        r.layout.grid for r in cands if r.layout and r.name.startswith(prefix) and "." not in r.name[len(prefix) :]
    }
    return len(sizes) > 1
