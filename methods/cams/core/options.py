"""Typed method options: one frozen dataclass per method, validated at construction.

A method declares its options once, as a frozen dataclass derived from :class:`Options` whose
fields are made with :func:`option` (a default, a one-line help, and the valid values)::

    @dataclass(frozen=True)
    class RandomOptions(Options):
        seed: int = option(0, "generator seed of the channel weights", minimum=0)

That one declaration is what the IDE shows, what ``methods.explain(..., seed=3)`` validates,
what the docs list and what the dashboard turns into widgets (:func:`describe`). Validation runs in
``__post_init__``: every message names the method, the option, the bad value and the valid range.

Supported field types: ``bool``, ``int``, ``float``, ``str`` with ``choices``, and ``int | str``
for options such as ``channels`` that take ``"all"`` or a number (``choices`` then lists the
allowed strings).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from methods.errors import OptionError, WrongTypeError, suggest

__all__ = ["Options", "NoOptions", "OptionInfo", "option", "describe", "build_options", "MAX_SEED"]

MAX_SEED = 2**63 - 1
"""The largest seed an option accepts (``torch.Generator.manual_seed`` takes 64-bit seeds; a larger
Python int raised a raw ValueError). Every ``seed`` option is ``0 <= seed <= MAX_SEED``."""


def option(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Sequence[Any] | None = None,
    exclusive_minimum: bool = False,
) -> Any:
    """A dataclass field for an option: its default, one-line help and valid values.

    Args:
        default: the default value.
        help: one line for docs, errors and the dashboard.
        minimum, maximum: bounds of a number (inclusive; ``exclusive_minimum`` makes the lower
            bound strict, e.g. ``sigma > 0``).
        choices: the allowed values of a string option (or the allowed strings of ``int | str``).
    """
    meta = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "choices": tuple(choices) if choices is not None else None,
    }
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionInfo:
    """One option as the docs and the dashboard see it.

    Attributes:
        name: keyword name (``"batch_size"``).
        kind: ``"bool" | "int" | "float" | "choice" | "int_or_choice"``.
        default: the default value.
        help: the one-line help.
        minimum, maximum: bounds of a number (None = unbounded).
        exclusive_minimum: the lower bound is strict.
        choices: allowed strings (``"choice"``, ``"int_or_choice"``), else ().
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] = ()


def _kind(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    text = text.replace(" ", "")
    kinds = {
        "bool": "bool",
        "int": "int",
        "float": "float",
        "str": "choice",
        "int|str": "int_or_choice",
        "str|int": "int_or_choice",
    }
    if text not in kinds:
        raise WrongTypeError(f"option type {annotation!r} is not supported (bool, int, float, str, int | str)")
    return kinds[text]


def describe(options_class: type[Options]) -> list[OptionInfo]:
    """The options of a method, in declaration order (what the dashboard builds widgets from).

    Examples:
        >>> from methods.cams.baselines import RandomOptions
        >>> [(o.name, o.kind, o.default) for o in describe(RandomOptions)]
        [('seed', 'int', 0)]
    """
    out = []
    for f in dataclasses.fields(options_class):
        meta = f.metadata
        out.append(
            OptionInfo(
                name=f.name,
                kind=_kind(f.type),
                default=f.default,
                help=meta.get("help", ""),
                minimum=meta.get("minimum"),
                maximum=meta.get("maximum"),
                exclusive_minimum=bool(meta.get("exclusive_minimum")),
                choices=meta.get("choices") or (),
            )
        )
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _bound(value: float) -> str:
    """A bound as text: an int exactly (``2**63 - 1`` is not ``9.22337e+18``), a float with ``:g``."""
    return str(value) if _is_int(value) else f"{value:g}"


def _range_text(info: OptionInfo, number: str) -> str:
    parts = []
    if info.minimum is not None:
        parts.append(f"{'>' if info.exclusive_minimum else '>='} {_bound(info.minimum)}")
    if info.maximum is not None:
        parts.append(f"<= {_bound(info.maximum)}")
    return f"{number} {' and '.join(parts)}".strip() if parts else number


@dataclass(frozen=True)
class Options:
    """Base of every method's options: typed fields, defaults, validation in ``__post_init__``.

    Messages name the option, the bad value and what is valid; :func:`build_options` puts the
    method's label in front.
    """

    def __post_init__(self) -> None:
        for info in describe(type(self)):
            value = getattr(self, info.name)
            object.__setattr__(self, info.name, self._checked(info, value))
        self.validate()

    def validate(self) -> None:
        """Cross-field checks (override as needed); raise :class:`OptionError`."""

    def _bad(self, info: OptionInfo, value: Any, expected: str) -> OptionError:
        return OptionError(f"{info.name}={value!r} is not valid; expected {expected} ({info.help})")

    def _checked(self, info: OptionInfo, value: Any) -> Any:
        raw = value  # messages show the value as given
        if info.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise self._bad(info, value, "True or False")
            return bool(value)
        if info.kind == "choice":
            if value not in info.choices:
                raise self._bad(info, value, f"one of {list(info.choices)}")
            return value
        if info.kind == "int_or_choice" and isinstance(value, str):
            if value not in info.choices:
                raise self._bad(info, value, f"one of {list(info.choices)} or {_range_text(info, 'an int')}")
            return value
        if info.kind in ("int", "int_or_choice"):
            expected = _range_text(info, "an int")
            if info.kind == "int_or_choice":
                expected = f"{' or '.join(map(repr, info.choices))} or {expected}"
            if not _is_int(value):
                raise self._bad(info, value, expected)
            value = int(value)
        else:  # float
            if not _is_number(value) or not math.isfinite(float(value)):
                raise self._bad(info, value, _range_text(info, "a number"))
            value = float(value)
        low_bad = info.minimum is not None and (
            value <= info.minimum if info.exclusive_minimum else value < info.minimum
        )
        high_bad = info.maximum is not None and value > info.maximum
        if low_bad or high_bad:
            raise self._bad(info, raw, _range_text(info, "a number" if info.kind == "float" else "an int"))
        return value

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (field order)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class NoOptions(Options):
    """A method without options."""


def build_options(options_class: type[Options], label: str, given: dict[str, Any]) -> Options:
    """Construct ``options_class`` from keyword options; an unknown keyword is a WrongTypeError
    that lists the valid ones."""
    valid = [f.name for f in dataclasses.fields(options_class)]
    unknown = sorted(set(given) - set(valid))
    if unknown:
        hint = suggest(unknown[0], valid)
        raise WrongTypeError(
            f"{label} got unknown option(s) {', '.join(map(repr, unknown))};{hint} "
            f"valid options: {', '.join(valid) or 'none'}"
        )
    try:
        return options_class(**given)
    except OptionError as exc:
        raise type(exc)(f"{label}: {exc}") from None
