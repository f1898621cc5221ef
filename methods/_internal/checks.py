"""Argument checks shared by every room: one rule per kind of value, one wording per message.

Each check returns the cleaned value or raises :class:`methods.errors.OptionError` (a
``ValueError``) / :class:`methods.errors.WrongTypeError` (a ``TypeError``) naming the argument,
the bad value and what is valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard, TypeVar

import numpy as np

from methods.errors import OptionError, WrongTypeError

__all__ = ["is_int", "is_number", "check_int", "check_number", "check_choice", "check_bool", "size2", "floats3"]


def is_int(value: Any) -> bool:
    """An int (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """An int or float (Python or numpy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within [minimum, maximum].

    Examples:
        >>> check_int("steps", 5, 1)
        5
        >>> check_int("steps", 0, 1)
        Traceback (most recent call last):
        ...
        methods.errors.OptionError: steps must be an int >= 1; got 0
    """
    if not is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = " and ".join(
            b
            for b in (f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None else "")
            if b
        )
        raise OptionError(f"{name} must be an int{' ' + bounds if bounds else ''}; got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """``value`` as a finite float within the bounds."""
    ok = is_number(value) and np.isfinite(float(value))
    if ok and minimum is not None:
        ok = float(value) > minimum if exclusive_minimum else float(value) >= minimum
    if ok and maximum is not None:
        ok = float(value) <= maximum
    if not ok:
        bounds = " and ".join(
            b
            for b in (
                f"{'>' if exclusive_minimum else '>='} {minimum:g}" if minimum is not None else "",
                f"<= {maximum:g}" if maximum is not None else "",
            )
            if b
        )
        raise OptionError(f"{name} must be a finite number{' ' + bounds if bounds else ''}; got {value!r}")
    return float(value)


_S = TypeVar("_S", bound=str)


def check_choice(name: str, value: Any, choices: Sequence[_S]) -> _S:
    """``value`` if it is one of ``choices``.

    Examples:
        >>> check_choice("kind", "deletion", ("deletion", "insertion"))
        'deletion'
    """
    if not _is_choice(value, choices):
        raise OptionError(f"{name}={value!r} is not one of {list(choices)}")
    return value


def _is_choice(value: Any, choices: Sequence[_S]) -> TypeGuard[_S]:
    return isinstance(value, str) and value in choices


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (numpy bools too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise WrongTypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def size2(value: Any, what: str = "input_size") -> tuple[int, int]:
    """``(height, width)`` from two positive ints, or one int for a square.

    Examples:
        >>> size2(224), size2((128, 96))
        ((224, 224), (128, 96))
    """
    if is_int(value):
        value = (value, value)
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) and v > 0 for v in value)
    if not ok:
        raise OptionError(f"{what} must be (height, width) with two positive ints, got {value!r}")
    return int(value[0]), int(value[1])


def floats3(value: Any, what: str) -> tuple[float, float, float]:
    """Three finite numbers (R, G, B)."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(np.isfinite(out)):
        raise OptionError(f"{what} must be three finite numbers (R, G, B), got {value!r}")
    return out
