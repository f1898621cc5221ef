"""The blocks a model-parameter randomization test destroys, and how each is re-initialised.

Used by :func:`methods.metrics.sanity.check.sanity_check` on a DEEP COPY of the model (the caller's
model is never touched).

Default blocks (:func:`default_blocks`): the parameterised units of the model, in REVERSE forward
order (the logits layer first), found by the walk :func:`methods.block_layers` uses:

* the root and every plain container (exactly ``nn.Sequential`` / ``nn.ModuleList`` /
  ``nn.ModuleDict``) are looked inside; any other module with parameters is one block (a ResNet
  ``Bottleneck``, an ``MBConv``, a ``Conv2dNormActivation``);
* a normalization layer (BatchNorm, InstanceNorm, LayerNorm, GroupNorm) that directly follows a
  parameterised layer in the same container joins that layer's block (conv + its BatchNorm is
  one step); modules without parameters and modules that never run are not blocks;
* when this yields a single block (a model that wraps everything in one custom module) the walk
  goes one level down, until there are several; a plain container holding a single block is
  named as the container (``layer4`` rather than ``layer4.0``).

So a model that IS one ``nn.Sequential`` gets one block per parameterised layer (norms joined to
the layer before them); torchvision's ResNet-50 gets ``fc, layer4.2 ... layer1.0, conv1 + bn1``
(18 blocks); VGG-16 ``classifier.6, classifier.3, classifier.0, features.28 ... features.0``
(16); ``scenes_vgg`` ``classifier`` then its 6 conv + BatchNorm pairs ``features.18 + features.19
... features.0 + features.1`` (7); ``scenes_resnet`` ``fc, layer4, layer3, layer2, layer1,
conv1 + bn1`` (6); timm's EfficientNet-Lite0 ``classifier``, ``conv_head + bn2``, its 16
inverted-residual blocks, ``conv_stem + bn1`` (19).

Re-initialisation of a block (:func:`reinitialise`), under ``torch.manual_seed(s)`` in a forked
RNG (the caller's global RNG is left alone), ``s`` drawn from ``numpy.random.SeedSequence([seed,
i])`` for the block's index ``i`` in the list, so block ``i`` gets the same weights in cascading
and independent mode:

1. every module of the block that has its own ``reset_parameters()`` calls it: PyTorch's own
   initialisation (Kaiming-uniform for conv and linear layers; BatchNorm: ``gamma = 1``,
   ``beta = 0``, running mean 0, running variance 1 - the trained normalisation is gone);
2. every parameter NOT covered by step 1 (a module without ``reset_parameters``, e.g. a
   layer-scale vector) is drawn from ``N(0, sigma^2)`` with ``sigma`` the trained tensor's
   standard deviation (its mean absolute value when that is 0 or it has one element);
3. running statistics of modules without ``reset_parameters`` but with ``reset_running_stats()``
   are reset too. Other buffers are left as they are.

Deviation: Adebayo et al. (arXiv:1810.03292) re-initialise with the model's training-time
initializer (truncated normal in their TensorFlow models); PyTorch's ``reset_parameters`` is its
equivalent here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from methods.cams.core.blocks import forward_order
from methods.cams.core.layers import PLAIN_CONTAINERS
from methods.errors import OptionError, WrongTypeError, suggest

__all__ = ["Block", "default_blocks", "check_blocks", "reinitialise", "block_seed", "NORM_LAYERS"]

#: Normalization layers: they join the block of the parameterised layer just before them.
NORM_LAYERS: tuple[type, ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


@dataclass(frozen=True)
class Block:
    """One randomization step: the modules it re-initialises together.

    Attributes:
        name: display name (the module names joined with ``" + "``).
        modules: the dotted module names.
    """

    name: str
    modules: tuple[str, ...]


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _walk(prefix: str, module: nn.Module, order: dict[str, int]) -> list[list[str]]:
    """Parameterised units under ``module`` in forward order, norms joined to the unit before."""
    units: list[tuple[int, str, bool]] = []  # (finish order, name, is a direct leaf child)
    for child_name, child in module.named_children():
        full = f"{prefix}.{child_name}" if prefix else child_name
        if not _has_params(child):
            continue
        if type(child) in PLAIN_CONTAINERS:
            inner = _walk(full, child, order)
            if len(inner) == 1 and len(inner[0]) == 1:
                inner = [[full]]  # the container holds one block: name it by the container
            units += [(max(order.get(m, -1) for m in group), "\0".join(group), False) for group in inner]
        elif full in order:
            units.append((order[full], full, next(child.children(), None) is None or isinstance(child, NORM_LAYERS)))
        elif next(child.children(), None) is not None:  # a holder whose children the parent calls
            units += [
                (max(order.get(m, -1) for m in group), "\0".join(group), False) for group in _walk(full, child, order)
            ]
    units.sort()
    groups: list[list[str]] = []
    previous_direct = False
    for _, name, direct in units:
        module_obj = None if "\0" in name else _get(module, name, prefix)
        if direct and previous_direct and groups and isinstance(module_obj, NORM_LAYERS):
            groups[-1].append(name)
        else:
            groups.append(name.split("\0"))
        previous_direct = direct
    return groups


def _get(root: nn.Module, name: str, prefix: str) -> nn.Module:
    rel = name[len(prefix) + 1 :] if prefix else name
    return root.get_submodule(rel)


def default_blocks(model: nn.Module, input_size: Sequence[int] = (224, 224)) -> list[Block]:
    """The model's parameterised blocks, logits layer FIRST (the rule is in the module docstring).

    Runs one probe forward (:func:`methods.forward_order`) to know the forward order.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> [b.name for b in default_blocks(net, (8, 8))]
        ['6', '3', '0 + 1']
    """
    order = {name: i for i, name in enumerate(forward_order(model, input_size))}
    groups = _walk("", model, order)
    while len(groups) == 1 and len(groups[0]) == 1:  # one block: look one level down
        deeper = _walk(groups[0][0], model.get_submodule(groups[0][0]), order)
        if not deeper:
            break
        groups = deeper
    return [Block(name=" + ".join(g), modules=tuple(g)) for g in reversed(groups)]


def check_blocks(model: nn.Module, blocks: Any) -> list[Block]:
    """The ``blocks`` argument as :class:`Block` entries: each item a module name, a list of
    names (re-initialised together) or a Block; every module must exist and hold parameters.

    Raises:
        WrongTypeError: not a list of names / lists of names / Blocks.
        OptionError: an empty list, an unknown module (with suggestions), a module without
            parameters, or a module in two blocks.
    """
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence):
        raise WrongTypeError(
            f"blocks must be a list of module names (or lists of names), top block first; got {blocks!r}"
        )
    if not blocks:
        raise OptionError("blocks is empty; give at least one module name, or None for the default blocks")
    named = dict(model.named_modules())
    out, seen = [], set()
    for item in blocks:
        if isinstance(item, Block):
            names = list(item.modules)
        elif isinstance(item, str):
            names = [item]
        elif isinstance(item, Sequence) and item and all(isinstance(n, str) for n in item):
            names = list(item)
        else:
            raise WrongTypeError(f"each block must be a module name or a list of module names; got {item!r}")
        for name in names:
            if name not in named or name == "":
                raise OptionError(
                    f"block module {name!r} is not a module of {type(model).__name__}."
                    f"{suggest(name, [n for n in named if n])}"
                )
            if not _has_params(named[name]):
                raise OptionError(
                    f"block module {name!r} ({type(named[name]).__name__}) has no parameters to "
                    "re-initialise; choose a layer with weights"
                )
            if name in seen:
                raise OptionError(f"block module {name!r} appears in two blocks")
            seen.add(name)
        out.append(item if isinstance(item, Block) else Block(name=" + ".join(names), modules=tuple(names)))
    return out


def block_seed(seed: int, index: int) -> int:
    """The torch seed of block ``index``: ``SeedSequence([seed, index]).generate_state(1)[0]``.

    Examples:
        >>> block_seed(0, 0) == block_seed(0, 0), block_seed(0, 0) == block_seed(0, 1)
        (True, False)
    """
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def reinitialise(model: nn.Module, block: Block, *, seed: int) -> None:
    """Re-initialise the modules of ``block`` in ``model`` IN PLACE (call it on a copy), seeded
    with ``seed`` (see the module docstring for what happens to each tensor)."""
    device_ids = sorted({t.device.index or 0 for t in model.parameters() if t.device.type == "cuda"})
    with torch.random.fork_rng(devices=device_ids), torch.no_grad():
        torch.manual_seed(seed)
        covered: set[int] = set()
        modules = [model.get_submodule(name) for name in block.modules]
        for top in modules:
            for m in top.modules():
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
                    covered.update(id(p) for p in m.parameters(recurse=False))
                elif callable(reset_stats := getattr(m, "reset_running_stats", None)):
                    reset_stats()
        for top in modules:
            for p in top.parameters():
                if id(p) in covered:
                    continue
                flat = p.detach().float().reshape(-1)
                sigma = float(flat.std()) if flat.numel() > 1 else 0.0
                if not sigma > 0:
                    sigma = float(flat.abs().mean())
                p.copy_(torch.randn(p.shape, dtype=torch.float32).to(p) * sigma)
                covered.add(id(p))
