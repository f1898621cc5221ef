"""The dashboard's complete view state, and its round trip through URL query parameters.

Pure: no streamlit import. One frozen :class:`ViewState` holds everything that decides what a
page shows (page, model, image, target, methods, layers, normalization, colormap, alpha,
faithfulness settings). Pages render from it, the sidebar writes it, the URL carries it, and a
saved snapshot (``to_dict``/``from_dict``) restores it.

Query parameters (only values that differ from the defaults are written)::

    page      home | methods | layers | normalization | faithfulness (read from old links; the
              path names the page, so it is not written)
    model     a zoo name ("scenes_vgg", "resnet18") or "upload:<digest>"; absent = efficientnet_lite0
    image     a sample ("chelsea") or "upload:<digest>"; absent = the model's default (photo or scene),
              or an evaluated scene "scene:<seed>" / "scene2:<seed>" (dashboard.core.scene_ids; Benchmark links)
    target    class index (int); absent = the model's top-1 class
    methods   comma-separated method keys (Methods, Faithfulness pages)
    method    one method key (Layers, Normalization pages)
    layer     module name; absent = the model's default layer
    layers    comma-separated module names (Layers page); absent = every layer of ``layerset``
    layerset  blocks (one per block, ``methods.cams.core.blocks.block_layers``) | all candidate layers
    lpage     the Layers page's page of panels (1, 2, ...), when its layers need several
    norm      raw | minmax | max | percentile
    relu      1 | 0
    scope     per_map | shared
    plo, phi  percentiles for norm=percentile, 0 <= plo < phi <= 100
    cmap      colormap name (methods.viz.render.COLORMAPS)
    alpha     overlay opacity in [0, 1]
    device    where the models run: cpu | cuda:0 ... | mps, one present on the machine (dashboard.core.devices);
              absent = the machine's default device. Not restored from a snapshot (a machine's own)
    baseline  deletion/insertion baseline: blur (default, the library's and the evaluate command's) | zero |
              mean | rise (RISE's pairing: deletion to zero, insertion from blur)
    steps     number of deletion/insertion steps
    step      the step whose perturbed image is shown
    slow      NOT a link parameter: a link never starts slow work. The switch is for the session
              that turns it on; ``from_query`` reports ``slow=1`` and ignores it
    opts      non-default method options, ``method.option:value`` comma-separated
              (``scorecam.batch_size:8,random.seed:3``; bools are true/false)
    models, depths, metric (Compare page), mode, seed, classes (Sanity page), box, region
              (Detection page): dashboard/core/params.py

``from_query`` never raises on a hand-edited URL: every bad value falls back to its default and
produces one human-readable message saying what was wrong.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from dashboard.core.pages import VIEW_PAGES
from dashboard.core.params import PAGE_PARSERS, UPLOAD_PREFIX, InvalidParam, is_upload
from dashboard.core.scene_ids import is_scene_id
from methods.viz.ranges import display_colormap

__all__ = [
    "LAYER_SETS",
    "DEFAULT_MODEL",
    "DEFAULT_BASELINES",
    "STEPS_RANGE",
    "SESSION_ONLY",
    "UPLOAD_PREFIX",
    "Choices",
    "InvalidParam",
    "ViewState",
    "is_upload",
    "option_text",
]

LAYER_SETS: tuple[str, ...] = ("blocks", "all")  # the Layers page: one map per block, or every candidate layer
DEFAULT_MODEL = "efficientnet_lite0"  # the first screen: ImageNet-pretrained, from PyPI, no download
#: Baselines documented for methods.metrics.faithfulness.curves; the dashboard asks the module when it exists.
DEFAULT_BASELINES: tuple[str, ...] = ("blur", "zero", "mean", "rise")
STEPS_RANGE: tuple[int, int] = (5, 200)


@dataclass(frozen=True)
class Choices:
    """The valid values that depend on the library and the machine; None = do not check.

    ``from_query`` checks names against these. Layer names and class indices depend on the
    chosen model, so they are checked later (by the dashboard, with the model at hand).
    """

    models: tuple[str, ...] | None = None
    images: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    norms: tuple[str, ...] = ("raw", "minmax", "max", "percentile")
    scopes: tuple[str, ...] = ("per_map", "shared")
    colormaps: tuple[str, ...] | None = None
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    metrics: tuple[str, ...] | None = None  # the Compare heatmap's agreement numbers
    modes: tuple[str, ...] | None = None  # the Sanity page's randomization modes
    devices: tuple[str, ...] | None = None  # the devices present (dashboard.core.devices.present)
    #: ``parse_option(method, option, text) -> value``: checks one method option against the
    #: library (raises :class:`InvalidParam`); None = take the value's literal type unchecked.
    parse_option: Callable[[str, str, str], Any] | None = None


@dataclass(frozen=True)
class ViewState:
    """Everything that decides what a dashboard page shows. Frozen: change it with ``replace``.

    Attributes:
        page: which page (one of :data:`dashboard.core.pages.VIEW_PAGES`, from the page table).
        model: model id (zoo name or ``"upload:<digest>"``).
        image: image id (sample name or ``"upload:<digest>"``); "" = the default sample.
        target: class index to explain; None = the model's top-1 prediction.
        methods: method keys compared side by side (Methods, Faithfulness).
        method: the one method of the Layers and Normalization pages.
        layer: layer to explain; None = the model's default layer.
        layers: layers of the Layers page; empty = every layer of ``layer_set``.
        norm: normalization mode (``methods.viz.normalize.MODES``).
        relu: rectify before scaling.
        scope: ``"per_map"`` or ``"shared"`` scale.
        p_lo, p_hi: percentiles for ``norm="percentile"``.
        cmap: colormap name (``methods.viz.render.COLORMAPS``).
        alpha: overlay opacity.
        device: where the models run (``"cpu"``, ``"cuda:0"`` ...); "" = this machine's default.
        baseline: what deleted pixels become and inserted ones start from (faithfulness); default
            ``"blur"`` for both curves, as the library and ``python -m methods.evaluate``; ``"rise"`` =
            RISE's pairing (deletion to zeros, insertion from blur).
        steps: number of deletion/insertion steps.
        step: the step whose perturbed image is shown (0..steps).
        slow: run slow methods without a button press (this session only: never from a link).
        options: non-default method options, sorted ``(method, option, value)`` triples.
        layer_set: the Layers page's layers when none are chosen: ``"blocks"`` or ``"all"``.
        models ... classes: the Compare and Sanity pages' fields (:mod:`dashboard.core.params`).
        box, region: the Detection page's object: the detection's rank (0 = highest score); for a
            segmenter, the class is ``target`` (None = the largest predicted object class) and
            ``region`` its predicted ``"mask"`` or that mask's ``"box"``.
    """

    page: str = "home"
    model: str = DEFAULT_MODEL
    image: str = ""
    target: int | None = None
    methods: tuple[str, ...] = ("gradcam", "gradcampp", "layercam")
    method: str = "gradcam"
    layer: str | None = None
    layers: tuple[str, ...] = ()
    norm: str = "minmax"
    relu: bool = True
    scope: str = "per_map"
    p_lo: float = 1.0
    p_hi: float = 99.0
    cmap: str = "jet"
    alpha: float = 0.5
    device: str = ""
    baseline: str = "blur"
    steps: int = 50
    step: int = 10
    slow: bool = False
    options: tuple[tuple[str, str, Any], ...] = ()
    layer_set: str = "blocks"
    layer_page: int = 1  # Layers: which page of panels (dashboard.views.layers.PER_PAGE each)
    models: tuple[str, ...] = ()  # Compare: the models beside `model` (empty: the page's default partner)
    depths: int = 4  # Compare: matched depths, the rows
    metric: str = "spearman"  # Compare: the layer x layer heatmap's agreement number
    mode: str = "cascading"  # Sanity: cascading | independent randomization
    seed: int = 0  # Sanity: seed of the re-initialisations
    classes: int = 3  # Sanity: top classes of the class-sensitivity check
    box: int = 0  # Detection: the detection's rank in the model's output
    region: str = "mask"  # Detection, segmenters: "mask" | "box"

    def options_of(self, method: str) -> dict[str, Any]:
        """The non-default options of ``method`` as keyword arguments."""
        return {name: value for m, name, value in self.options if m == method}

    # ---------------------------------------------------------------------------------------
    # snapshots

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON-friendly values (tuples become lists)."""
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = [list(i) if isinstance(i, tuple) else i for i in v]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], choices: Choices | None = None) -> tuple[ViewState, list[str]]:
        """Inverse of :meth:`to_dict`, validated like :meth:`from_query` (session-only fields,
        such as ``slow``, and the saving machine's ``device`` are not restored)."""
        return cls.from_query(
            {_PARAM[k]: _encode_value(k, v) for k, v in data.items() if k in _FIELD_NAMES and k not in _NOT_RESTORED},
            choices,
        )

    @property
    def draw_cmap(self) -> str:
        """The colormap maps are DRAWN with: the diverging one for a signed display (no ReLU, max or
        raw normalization), else the chosen one (:func:`methods.viz.ranges.display_colormap`)."""
        return display_colormap(self.cmap, mode=self.norm, relu=self.relu)

    # ---------------------------------------------------------------------------------------
    # URL

    def to_query(self) -> dict[str, str]:
        """The query parameters of this view: only values that differ from the defaults, without
        ``page`` (the URL's path names the page) and the session-only fields (``slow``)."""
        default = ViewState()
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name) or f.name in _NOT_IN_LINKS:
                continue
            out[_PARAM[f.name]] = _encode_value(f.name, value)
        return out

    @classmethod
    def from_query(cls, params: Mapping[str, Any], choices: Choices | None = None) -> tuple[ViewState, list[str]]:
        """Read a view from query parameters; bad values fall back to defaults with a message.

        Args:
            params: parameter -> value (str, or a list of str of which the last counts, as in
                ``st.query_params``). Unknown parameters are reported and ignored.
            choices: valid names to check against (default: check only what needs no library).

        Returns:
            ``(state, messages)``; ``messages`` is empty when every parameter was valid.
        """
        choices = choices or Choices()
        default = cls()
        values: dict[str, Any] = {}
        messages: list[str] = []
        known = {v: k for k, v in _PARAM.items()}
        for param, raw in params.items():
            if isinstance(raw, (list, tuple)):
                raw = raw[-1] if raw else ""
            raw = str(raw)
            name = known.get(param)
            if name is None:
                messages.append(f"URL parameter {param!r} is not used by the dashboard; ignored.")
                continue
            if name in SESSION_ONLY:
                if raw.strip() not in ("", "0", "false"):
                    messages.append(
                        f"URL parameter {param}={raw!r}: a link never starts slow work; each slow "
                        "method waits for its Run button (or the switch on its page, in your session)."
                    )
                continue
            try:
                values[name] = _PARSERS[name](raw.strip(), choices)
            except InvalidParam as exc:
                shown = _FALLBACK_TEXT.get(name) or _encode_value(name, getattr(default, name))
                messages.append(f"URL parameter {param}={raw!r}: {exc}; using {shown}.")
        state = replace(default, **values)
        if state.p_lo >= state.p_hi:
            messages.append(
                f"URL parameters plo={state.p_lo:g}, phi={state.p_hi:g}: need plo < phi; "
                f"using {default.p_lo:g} and {default.p_hi:g}."
            )
            state = replace(state, p_lo=default.p_lo, p_hi=default.p_hi)
        if state.step > state.steps:
            messages.append(f"URL parameter step={state.step}: larger than steps={state.steps}; using {state.steps}.")
            state = replace(state, step=state.steps)
        return state, messages

    @staticmethod
    def parameter_names() -> frozenset[str]:
        """Every URL parameter :meth:`from_query` reads (``plo``, ``opts``, ... not field names)."""
        return frozenset(_PARAM.values())


_FIELD_NAMES = tuple(f.name for f in fields(ViewState))
#: Fields a link never sets: a URL is a view anyone can send, and a click on it must not start
#: minutes of computation on a shared server.
SESSION_ONLY: tuple[str, ...] = ("slow",)
_NOT_IN_LINKS = frozenset(SESSION_ONLY) | {"page"}
_NOT_RESTORED = frozenset(SESSION_ONLY) | {"device"}
_FALLBACK_TEXT = {
    "image": "the model's default sample",
    "target": "the top-1 class",
    "layer": "the default layer",
    "layers": "every layer of the layer set",
    "options": "every method's default options",
    "models": "the default partner",
    "device": "this machine's default device",
}
_PARAM: dict[str, str] = {name: name for name in _FIELD_NAMES}
_PARAM.update({"p_lo": "plo", "p_hi": "phi", "options": "opts", "layer_set": "layerset", "layer_page": "lpage"})


def option_text(value: Any) -> str:
    """One option value as the URL writes it: true/false, numbers exactly, strings as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _encode_value(name: str, value: Any) -> str:
    if name == "options":
        return ",".join(f"{m}.{o}:{option_text(v)}" for m, o, v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ------------------------------------------------------------------------------------------
# parsers: raw string -> value, InvalidParam with a short reason


def _one_of(value: str, valid: Iterable[str] | None, what: str) -> str:
    if not value:
        raise InvalidParam(f"empty {what}")
    if valid is not None and value not in valid:
        raise InvalidParam(f"not a known {what} (valid: {', '.join(valid)})")
    return value


def _name_list(value: str, valid: Iterable[str] | None, what: str, *, allow_empty: bool) -> tuple[str, ...]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items and not allow_empty:
        raise InvalidParam(f"no {what} given")
    if len(set(items)) != len(items):
        raise InvalidParam(f"a {what} is listed twice")
    if valid is not None:
        bad = [v for v in items if v not in valid]
        if bad:
            raise InvalidParam(f"unknown {what} {', '.join(repr(b) for b in bad)} (valid: {', '.join(valid)})")
    return tuple(items)


def _id(value: str, valid: Iterable[str] | None, what: str) -> str:
    """A model or image id: a known name, or an upload id (``upload:`` and hex digits; whether the
    session has it is checked later)."""
    if is_upload(value):
        digest = value[len(UPLOAD_PREFIX) :]
        if not digest:
            raise InvalidParam(f"empty upload id for the {what}")
        if len(digest) > 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidParam(f"not an upload id (upload: and hex digits) for the {what}")
        return value
    return _one_of(value, valid, what)


def _int(value: str, lo: int, hi: int | None, what: str) -> int:
    try:
        number = int(value)
    except ValueError:  # int() of this one string, nothing else
        raise InvalidParam(f"{what} must be a whole number") from None
    if number < lo or (hi is not None and number > hi):
        raise InvalidParam(f"{what} must be in [{lo}, {hi}]" if hi is not None else f"{what} must be >= {lo}")
    return number


def _float(value: str, lo: float, hi: float, what: str) -> float:
    try:
        number = float(value)
    except ValueError:  # float() of this one string, nothing else
        raise InvalidParam(f"{what} must be a number") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InvalidParam(f"{what} must be in [{lo:g}, {hi:g}]")
    return number


def _bool(value: str) -> bool:
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise InvalidParam("must be 1 or 0")


def _target(value: str, choices: Choices) -> int | None:
    if value in ("", "top1", "auto"):
        return None
    return _int(value, 0, None, "the class index")


def _layer(value: str, choices: Choices) -> str | None:
    return value or None


def _literal(text: str) -> Any:
    """An option value without the library at hand: true/false, an int, a float, else the text."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:  # not this kind: try the next one
            pass
    return text


def _options(value: str, choices: Choices) -> tuple[tuple[str, str, Any], ...]:
    seen: dict[tuple[str, str], Any] = {}
    for item in (v.strip() for v in value.split(",") if v.strip()):
        key, sep, text = item.partition(":")
        method, dot, name = key.partition(".")
        if not (sep and dot and method and name):
            raise InvalidParam(f"{item!r} is not method.option:value")
        if choices.methods is not None and method not in choices.methods:
            raise InvalidParam(f"unknown method {method!r} in {item!r}")
        if (method, name) in seen:
            raise InvalidParam(f"{method}.{name} is given twice")
        parse = choices.parse_option
        seen[(method, name)] = parse(method, name, text.strip()) if parse is not None else _literal(text.strip())
    return tuple(sorted((m, n, v) for (m, n), v in seen.items()))


_PARSERS = {
    "page": lambda v, c: _one_of(v, VIEW_PAGES, "page"),
    "model": lambda v, c: _id(v, c.models, "model"),
    "image": lambda v, c: (v if is_scene_id(v) else _id(v, c.images, "image")) if v else "",
    "target": _target,
    "methods": lambda v, c: _name_list(v, c.methods, "method", allow_empty=False),
    "method": lambda v, c: _one_of(v, c.methods, "method"),
    "layer": _layer,
    "layers": lambda v, c: _name_list(v, None, "layer", allow_empty=True),
    "norm": lambda v, c: _one_of(v, c.norms, "normalization mode"),
    "relu": lambda v, c: _bool(v),
    "scope": lambda v, c: _one_of(v, c.scopes, "scope"),
    "p_lo": lambda v, c: _float(v, 0.0, 100.0, "the low percentile"),
    "p_hi": lambda v, c: _float(v, 0.0, 100.0, "the high percentile"),
    "cmap": lambda v, c: _one_of(v, c.colormaps, "colormap"),
    "alpha": lambda v, c: _float(v, 0.0, 1.0, "alpha"),
    "device": lambda v, c: _one_of(v, c.devices, "device on this machine"),
    "baseline": lambda v, c: _one_of(v, c.baselines, "baseline"),
    "steps": lambda v, c: _int(v, STEPS_RANGE[0], STEPS_RANGE[1], "steps"),
    "step": lambda v, c: _int(v, 0, STEPS_RANGE[1], "step"),
    "slow": lambda v, c: _bool(v),
    "options": _options,
    "layer_set": lambda v, c: _one_of(v, LAYER_SETS, "layer set"),
    **PAGE_PARSERS,
}
assert set(_PARSERS) == set(_FIELD_NAMES), "every ViewState field needs a parser"
