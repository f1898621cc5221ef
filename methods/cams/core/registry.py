"""The one plugin registry of CAM methods.

Every method registers itself with :func:`register_method`, a class decorator that attaches a
frozen :class:`MethodSpec`. Everything that lists methods asks this module: the dashboard's menus
and cost warnings, the test parametrisation and the README's method table. Nothing else keeps a
list of method names.

A user's own module registers a plugin the same way::

    from methods import GradientMethod, register_method

    @register_method(name="my_cam", label="My-CAM", family="gradient",
                     cost="1 fwd + 1 bwd", paper="https://arxiv.org/abs/...",
                     summary="Channel weights = max of the gradient.")
    class MyCam(GradientMethod):
        def compute(self, activations, gradients):
            weights = gradients.amax(dim=(2, 3))                          # (N, C)
            return torch.einsum("nc,nchw->nhw", weights, activations)      # (N, h, w)

Importing that module is all it takes: ``methods.explain(model, x, method="my_cam")`` works.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeAlias, TypeVar

from methods.cams.core.options import OptionInfo, Options, describe
from methods.errors import OptionError, UnknownMethodError, WrongTypeError, brief, suggest

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13

__all__ = [
    "ALIASES",
    "Family",
    "MethodSpec",
    "MethodClass",
    "TARGET_KINDS",
    "UnknownMethodError",
    "register_method",
    "get_method",
    "list_methods",
    "create_method",
    "suggest",
]

Family = Literal["gradient", "activation", "score", "pixel", "baseline", "attention"]
FAMILIES: tuple[str, ...] = ("gradient", "activation", "score", "pixel", "baseline", "attention")
TARGET_KINDS: tuple[str, ...] = ("class", "box", "region", "embedding")
"""What a map can explain: a classifier's class, or a task target of :mod:`methods.targets`."""
Resolution = Literal["layer", "input"]
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class MethodShape(Protocol):
    """What the registry needs from a method: a :class:`methods.cams.core.base.CamMethod`, described
    by its shape here because :mod:`~methods.cams.core.base` imports this module.

    Its class, called with validated keyword options, builds the method; ``options_class`` is its
    options dataclass (what menus and the option widgets read); ``spec`` is set on registration.
    """

    spec: ClassVar[MethodSpec]
    options_class: ClassVar[type[Options]]

    def __init__(self, **options: Any) -> None: ...


MethodClass: TypeAlias = "type[MethodShape]"
"""A registered method's class (a :class:`methods.cams.core.base.CamMethod` subclass)."""


@dataclass(frozen=True)
class MethodSpec:
    """What a registered method is, for menus, cost warnings, tests and the README.

    Attributes:
        name: registry key, lower_snake (``"gradcampp"``).
        label: display name (``"Grad-CAM++"``).
        family: ``"gradient"`` (layer maps from one forward + one backward), ``"activation"``
            (layer maps from one forward and the model's own weights: CAM), ``"score"`` (layer maps
            from many forwards, no gradients), ``"pixel"`` (maps at the input's resolution:
            guided backprop, FullGrad, RISE, occlusion ...), ``"baseline"`` (a reference that a
            real method must beat) or ``"attention"`` (maps from a transformer's recorded attention
            weights, on its patch grid: rollout, Chefer, LeGrad).
        needs_gradients: whether the method runs a backward pass (layer or input gradients).
        cost: human cost note (``"1 fwd + 1 bwd"``, ``"C/batch forwards"``).
        paper: URL of the paper (empty for baselines without one).
        summary: one line saying how the map is made.
        cls: the implementing class (a :class:`methods.cams.core.base.CamMethod` subclass).
        class_agnostic: the map does not depend on the explained class (Eigen-CAM, the controls), or
            barely does (guided backpropagation, see its docstring): class-discrimination checks skip
            it and the dashboard says so.
        slow: the method runs many passes (the dashboard asks before running it, with its cost);
            default: the score family.
        resolution: ``"layer"`` (maps at the layer's grid, (N, h, w)) or ``"input"`` (maps at the
            input's size, (N, H, W)); default ``"input"`` for the pixel family.
        layer_independent: one map per call whatever the layer (guided backprop, FullGrad, RISE,
            occlusion): :func:`methods.explain_many` computes it once and every requested layer key
            of :attr:`methods.Explanation.maps` holds that same tensor.
        final_layer_only: the method works only at the layer whose output reaches the logits by
            global average pooling and one linear map (CAM); elsewhere it raises
            :class:`methods.errors.HeadError` (a page offers it at that layer only).
        targets: the target kinds the method explains (:data:`TARGET_KINDS`: ``"class"`` for a
            classifier's class, ``"box"``, ``"region"``, ``"embedding"`` for :mod:`methods.targets`);
            every built-in method takes all of them but D-RISE (boxes only) and CAM (classes only).
        requires: ``model -> None`` when the method applies to the model, else a one-line reason
            (attention methods on a CNN); None: it applies to every model. Menus call
            :meth:`why_not` to show "does not apply" instead of running into an error.
    """

    name: str
    label: str
    family: Family
    needs_gradients: bool
    cost: str
    paper: str
    summary: str
    cls: MethodClass
    class_agnostic: bool = False
    slow: bool = False
    resolution: Resolution = "layer"
    layer_independent: bool = False
    final_layer_only: bool = False
    targets: tuple[str, ...] = TARGET_KINDS
    requires: Callable[[Any], str | None] | None = None

    def why_not(self, model: Any) -> str | None:
        """None when the method applies to ``model``; else the one-line reason it does not."""
        return self.requires(model) if self.requires is not None else None

    def applies_to(self, model: Any) -> bool:
        """Whether the method applies to ``model`` (see :attr:`requires`)."""
        return self.why_not(model) is None

    @property
    def options(self) -> list[OptionInfo]:
        """The method's options (name, kind, default, help, valid range), from its frozen
        options dataclass: what docs, errors and the dashboard's widgets read."""
        return describe(self.cls.options_class)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    @property
    def is_slow(self) -> bool:
        """The same as :attr:`slow` (kept for callers of the first release)."""
        return self.slow


_REGISTRY: dict[str, MethodSpec] = {}

ALIASES: dict[str, str] = {
    # pytorch-grad-cam (jacobgil/pytorch-grad-cam, pytorch_grad_cam/__init__.py) class names
    "GradCAM": "gradcam",
    "GradCAMPlusPlus": "gradcampp",
    "XGradCAM": "xgradcam",
    "HiResCAM": "hirescam",
    "LayerCAM": "layercam",
    "EigenCAM": "eigencam",
    "EigenGradCAM": "eigengradcam",
    "GradCAMElementWise": "gradcam_elementwise",
    "ScoreCAM": "scorecam",
    "AblationCAM": "ablationcam",
    "FullGrad": "fullgrad",
    "GuidedBackpropReLUModel": "guidedbackprop",
    "RandomCAM": "random",
    # torch-cam (frgfm/torch-cam, torchcam/methods) class names
    "CAM": "cam",
    "GradCAMpp": "gradcampp",
    "SmoothGradCAMpp": "smoothgradcampp",
    "SSCAM": "sscam",
    "ISCAM": "iscam",
    # Captum (captum.attr) class names
    "GuidedBackprop": "guidedbackprop",
    "GuidedGradCam": "guidedgradcam",
    "Occlusion": "occlusion",
}
"""Other libraries' names for a GradLens method -> its registry key, for users who bring their habits
(``methods.explain(model, x, "GradCAMPlusPlus")``). :func:`get_method` also matches these names and
the registry keys without regard to case (``"gradCAM"``). An entry is here only where the method is
the same one: the same formula from the same paper; where GradLens departs from the paper, its
docstring's "Deviation:" line says so, and that holds under every name. The one control,
pytorch-grad-cam's ``RandomCAM``, draws its channel weights from U(-1, 1) where ``random`` draws
N(0, 1): the same control (activations weighted by random channel weights), other numbers.
Not here, because GradLens has no such method: pytorch-grad-cam's ``KPCA_CAM``, ``FinerCAM``,
``ShapleyCAM`` and ``DeepFeatureFactorization``; they get the "did you mean" suggestions."""

_C = TypeVar("_C", bound=type)


def register_method(
    *,
    name: str,
    label: str,
    family: Family,
    cost: str,
    summary: str,
    paper: str = "",
    needs_gradients: bool | None = None,
    class_agnostic: bool = False,
    slow: bool | None = None,
    resolution: Resolution | None = None,
    layer_independent: bool = False,
    final_layer_only: bool = False,
    targets: tuple[str, ...] = TARGET_KINDS,
    requires: Callable[[Any], str | None] | None = None,
) -> Callable[[_C], _C]:
    """Class decorator: register a CAM method under ``name`` with a frozen spec.

    Args:
        name: lower_snake key, unique.
        label: display name.
        family: one of :data:`FAMILIES` (see :class:`MethodSpec`).
        cost: human cost note.
        summary: one-line description.
        paper: paper URL.
        needs_gradients: defaults to ``family == "gradient"``.
        class_agnostic: the map does not (or barely) depend on the target class.
        slow: many passes, ask before running; defaults to ``family == "score"``.
        resolution: ``"layer"`` or ``"input"``; defaults to ``"input"`` for ``family="pixel"``.
        layer_independent: the map is the same for every layer (computed once per call).
        final_layer_only: only the layer before a GAP + linear head works (CAM).
        targets: the target kinds the method explains (default: all of :data:`TARGET_KINDS`).
        requires: ``model -> None | reason``: which models the method applies to (default: all).

    Returns:
        The decorator; it sets ``cls.spec`` and returns the class unchanged otherwise.

    Raises:
        ValueError: a malformed name, an unknown family, or a name already taken by another class.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise OptionError(f"method name {name!r} must be lower_snake_case, e.g. 'my_cam'")
    if family not in FAMILIES:
        raise OptionError(f"family={family!r} is not one of {list(FAMILIES)}")
    resolution = resolution or ("input" if family == "pixel" else "layer")
    if resolution not in ("layer", "input"):
        raise OptionError(f"resolution={resolution!r} is not one of ['layer', 'input']")
    if layer_independent and resolution != "input":
        raise OptionError(
            "layer_independent=True needs resolution='input' (a map at a layer's grid depends on the layer)"
        )

    bad = [t for t in targets if t not in TARGET_KINDS]
    if bad or not targets:
        raise OptionError(f"targets={targets!r} must be a non-empty tuple of {list(TARGET_KINDS)}")

    def decorator(cls: _C) -> _C:
        if not _is_method_class(cls):
            raise WrongTypeError(
                f"{cls.__qualname__} cannot be registered as a method: it needs an options_class "
                "(a methods.cams.core.options.Options subclass); derive it from methods.CamMethod"
            )
        existing = _REGISTRY.get(name)
        if existing is not None and existing.cls.__qualname__ != cls.__qualname__:
            raise OptionError(
                f"method name {name!r} is already registered by {existing.cls.__module__}."
                f"{existing.cls.__qualname__}; choose another name"
            )
        spec = MethodSpec(
            name=name,
            label=label,
            family=family,
            needs_gradients=(family == "gradient") if needs_gradients is None else needs_gradients,
            cost=cost,
            paper=paper,
            summary=summary,
            cls=cls,
            class_agnostic=bool(class_agnostic),
            slow=(family == "score") if slow is None else bool(slow),
            resolution=resolution,
            layer_independent=bool(layer_independent),
            final_layer_only=bool(final_layer_only),
            targets=tuple(targets),
            requires=requires,
        )
        cls.spec = spec
        _REGISTRY[name] = spec
        return cls

    return decorator


def _is_method_class(cls: type) -> TypeIs[MethodClass]:
    """Whether ``cls`` has what the registry reads: an ``options_class`` that is an Options subclass."""
    options_class = getattr(cls, "options_class", None)
    return isinstance(options_class, type) and issubclass(options_class, Options)


def _lookup(name: str) -> MethodSpec | None:
    """The spec of a registry key, or of a peer library's name (:data:`ALIASES`), ignoring case."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    folded = {key.lower(): key for key in _REGISTRY}
    folded.update({alias.lower(): key for alias, key in ALIASES.items() if key in _REGISTRY})
    key = folded.get(name.strip().lower())
    return _REGISTRY[key] if key is not None else None


def get_method(name: str) -> MethodSpec:
    """The spec registered under ``name``: a registry key, or another library's name for the same
    method (:data:`ALIASES`: ``"GradCAMPlusPlus"`` -> ``gradcampp``); case does not matter.

    Raises:
        UnknownMethodError: ``name`` is neither registered nor an alias; the message lists the
            closest names and all registered names.

    Examples:
        >>> get_method("GradCAMPlusPlus").name, get_method("SmoothGradCAMpp").name
        ('gradcampp', 'smoothgradcampp')
    """
    spec = _lookup(name) if isinstance(name, str) else None
    if spec is None:
        names = sorted(_REGISTRY)
        raise UnknownMethodError(
            f"unknown method {brief(name)}.{suggest(str(name) if isinstance(name, str) else '', names)} "
            f"Registered methods: {', '.join(names)}"
        )
    return spec


def list_methods(family: Family | None = None, *, target: str | None = "class") -> list[MethodSpec]:
    """Registered methods in registration order, optionally of one family, that explain ``target``
    (a kind of :data:`TARGET_KINDS`; default ``"class"``: what a classifier's pages offer;
    ``target=None``: every method, D-RISE included)."""
    if family is not None and family not in FAMILIES:
        raise OptionError(f"family={family!r} is not one of {list(FAMILIES)}")
    if target is not None and target not in TARGET_KINDS:
        raise OptionError(f"target={target!r} is not one of {list(TARGET_KINDS)} (or None for every method)")
    return [
        s
        for s in _REGISTRY.values()
        if (family is None or s.family == family) and (target is None or target in s.targets)
    ]


def create_method(name: str, **options: Any):
    """Instantiate the method ``name`` (a registry key or an alias, see :func:`get_method`) with
    validated keyword options."""
    return get_method(name).cls(**options)
