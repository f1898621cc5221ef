"""Layer names beyond module names: call sites of a reused module, and post-activation outputs.

A *layer* is named by a string; the module part is a name from ``model.named_modules()``:

============================  ============================================================
``"features.29"``             the output of that module
``"act#1"``                   the output of the SECOND call (0-based, forward order) of module
                              ``act``, for a module object used in several places in one forward
``"features.norm5:act"``      the output of ``features.norm5`` after the activation function that
                              takes it next (a functional ``F.relu`` or an activation module)
``"act#1:act"``               both suffixes together
============================  ============================================================

Why ``#k``: a module object may run more than once in one forward (torchvision's ResNet blocks
call one ``relu`` two or three times; the reference EfficientNet-Lite code uses ONE ReLU6 for the
stem and the head). "The output of ``relu``" is then ambiguous; ``relu#1`` is not.

Why ``:act``: torchvision's DenseNet applies ``F.relu`` to ``features.norm5`` inside its own
``forward``, so the tensor its classifier sees is not the output of any module.
``"features.norm5:act"`` names it (and is DenseNet's default layer, :mod:`methods.cams.core.layers`).

How ``:act`` is seen (:class:`TensorWatch`): a :class:`torch.overrides.TorchFunctionMode` is
active during the forward and watches the tensor the module returned. The FIRST torch function
that consumes that tensor decides: an activation function (:data:`ACTIVATIONS`, matched by the
function's name, so ``F.relu``, ``torch.relu_``, ``Tensor.relu`` and ``nn.ReLU`` all count; ReLU6
arrives as ``hardtanh``) gives the post-activation tensor; any other function (a convolution, the
in-place ``add_`` of a skip connection) means no activation follows, and the caller says so.
Calls that only read metadata (``.shape``, ``.size()``: they return no tensor) or return the
watched tensor itself (``.contiguous()``, ``.to()``) are ignored. Torch function modes are
thread-local: a forward running in another thread (another model in a dashboard server) is never
seen, and nothing is patched globally (unlike ``torch.fx`` tracing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from methods.errors import LayerError, brief, suggest

__all__ = ["ACTIVATIONS", "LayerRef", "parse_layer", "site_name", "TensorWatch"]

ACTIVATIONS: frozenset[str] = frozenset(
    {
        "relu",
        "relu_",
        "relu6",
        "hardtanh",
        "hardtanh_",
        "silu",
        "silu_",
        "gelu",
        "hardswish",
        "hardswish_",
        "mish",
        "mish_",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "selu",
        "selu_",
        "celu",
        "celu_",
        "softplus",
    }
)
"""Names of the torch functions that count as "the activation that follows a layer"."""

# functions that hand the watched tensor itself back without using its values
_PASSTHROUGH = frozenset({"contiguous", "to", "cpu", "cuda", "float", "type", "type_as", "requires_grad_", "__get__"})


@dataclass(frozen=True)
class LayerRef:
    """One parsed layer name.

    Attributes:
        spec: the name as given (``"act#1:act"``); the key of maps and recordings.
        module: the module's name in ``model.named_modules()`` (``"act"``).
        call: which call of the module (0-based), or None = the module's only call.
        post_act: the output after the activation that takes it next.
    """

    spec: str
    module: str
    call: int | None = None
    post_act: bool = False

    @property
    def call_index(self) -> int:
        """The call whose output is used (0 when ``call`` is None)."""
        return 0 if self.call is None else self.call


def site_name(module: str, call: int) -> str:
    """The name of call ``call`` of ``module``: ``"relu#1"``."""
    return f"{module}#{call}"


def parse_layer(spec: Any, named: Mapping[str, nn.Module]) -> LayerRef:
    """Parse a layer name against ``named`` (``dict(model.named_modules())``).

    A string that is itself a module name is always that module (a module may have ``#`` or
    ``:`` in its name); otherwise ``:act`` and ``#k`` are split off the end.

    Raises:
        LayerError: not a string, an unknown module (with the closest names), a bad ``#k``.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU())
        >>> named = dict(net.named_modules())
        >>> parse_layer("0:act", named), parse_layer("1#0", named).call
        (LayerRef(spec='0:act', module='0', call=None, post_act=True), 0)
    """
    if not isinstance(spec, str) or spec == "":
        raise LayerError(f"a layer must be a non-empty name or a module of the model; got {brief(spec)}")
    if spec in named:
        return LayerRef(spec=spec, module=spec)
    rest, post_act = (spec[: -len(":act")], True) if spec.endswith(":act") else (spec, False)
    call = None
    if "#" in rest:
        rest, _, index = rest.rpartition("#")
        if not index.isdigit():
            raise LayerError(f"layer {spec!r}: the call site after '#' must be a number (0, 1, ...); got {index!r}")
        call = int(index)
    if rest not in named or rest == "":
        candidates = [n for n in named if n]
        raise LayerError(
            f"layer {spec!r} is not a module of the model.{suggest(rest, candidates)} "
            "Use methods.candidate_layers(model) to list the layers that give spatial maps "
            "(a name may end in '#k' for call k of a reused module, or ':act' for the output after its activation)."
        )
    return LayerRef(spec=spec, module=rest, call=call, post_act=post_act)


Handler = Callable[[Any, Callable, tuple, dict], Any]


class TensorWatch(TorchFunctionMode):
    """A torch function mode that reports the first function consuming each watched tensor.

    ``watch(tensor, key)`` starts watching. When the first consuming call is an activation applied
    to the tensor (its first argument), ``on_activation(key, func, args, kwargs)`` computes that
    call's result instead (the default runs it) and :attr:`activations` records the function's name;
    any other consuming call is recorded in :attr:`first_use` (``key -> function name``). Either way
    the tensor is not watched any more.

    Use as a context manager around the forward only (enter it inside every other context).
    """

    def __init__(self, on_activation: Handler | None = None) -> None:
        super().__init__()
        self._watched: dict[int, tuple[torch.Tensor, Any]] = {}
        self.on_activation = on_activation
        self.activations: dict[Any, str] = {}
        self.first_use: dict[Any, str] = {}

    def watch(self, tensor: torch.Tensor, key: Any) -> None:
        self._watched[id(tensor)] = (tensor, key)  # the reference keeps the id unique

    def _find(self, args: tuple) -> tuple[int, torch.Tensor, Any] | None:
        for a in args:
            items = a if isinstance(a, (list, tuple)) else (a,)
            for t in items:
                hit = self._watched.get(id(t)) if isinstance(t, torch.Tensor) else None
                if hit is not None and hit[0] is t:
                    return id(t), t, hit[1]
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        found = self._find(args) if self._watched else None
        if found is None:
            return func(*args, **kwargs)
        ident, tensor, key = found
        name = getattr(func, "__name__", "")
        if name in ACTIVATIONS and args and args[0] is tensor:
            del self._watched[ident]
            self.activations[key] = name
            if self.on_activation is not None:
                return self.on_activation(key, func, args, kwargs)
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor) or (out is tensor and name in _PASSTHROUGH):
            return out  # metadata, or the same tensor handed on: keep watching
        del self._watched[ident]
        self.first_use[key] = name or repr(func)
        return out
