"""Argument checks shared by the public functions: one message shape everywhere.

Every error names the argument, states the rule and shows what was received, in Keras's words:
``Received an invalid value for argument units, expected a positive integer. Received: units=0``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "close_match",
    "fraction",
    "invalid",
    "is_number",
    "non_negative_float",
    "one_of",
    "positive_int",
    "strict_bool",
    "unknown_key",
]


def close_match(value: Any, allowed: Iterable[str]) -> str | None:
    """The entry of `allowed` closest to `value` (difflib), or `None`: the one "did you mean"."""
    if not isinstance(value, str):
        return None
    close = difflib.get_close_matches(value, list(allowed), n=1)
    return close[0] if close else None


def _hint(value: Any, allowed: Iterable[str]) -> str:
    close = close_match(value, allowed)
    return f" Did you mean {close!r}?" if close else ""


def invalid(argument: str, expected: str, value: Any) -> ValueError:
    """Builds the standard error for a bad argument value."""
    return ValueError(
        f"Received an invalid value for argument {argument}, expected {expected}. "
        f"Received: {argument}={value!r}"
    )


def is_number(value: Any) -> bool:
    """Whether `value` is a finite int or float (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(argument: str, value: Any) -> int:
    """Returns `value` if it is an integer > 0 (bools refused), else raises `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise invalid(argument, "a positive integer", value)
    return value


def non_negative_float(argument: str, value: Any) -> float:
    """Returns `value` as a float if it is a real number >= 0, else raises `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise invalid(argument, "a number >= 0", value)
    return float(value)


def fraction(argument: str, value: Any, *, allow_zero: bool = False) -> float:
    """Returns `value` if it lies in (0, 1) (or [0, 1) with `allow_zero`), else raises."""
    low_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not (low_ok and value < 1):
        rule = "a float in [0, 1)" if allow_zero else "a float in (0, 1)"
        raise invalid(argument, rule, value)
    return float(value)


def one_of(argument: str, value: Any, allowed: Iterable[str]) -> str:
    """Returns `value` if it is one of `allowed`, else raises with the list and a close match."""
    allowed = list(allowed)
    if value in allowed:
        return value
    raise ValueError(
        f"Received an invalid value for argument {argument}, expected one of "
        f"{', '.join(map(repr, sorted(allowed)))}.{_hint(value, allowed)} "
        f"Received: {argument}={value!r}"
    )


def unknown_key(where: str, key: Any, allowed: Iterable[str]) -> ValueError:
    """The error for a key that is not allowed in a mapping (a recipe section, a spec).

    Args:
        where: the mapping's dotted place, e.g. ``"model"``; ``""`` for the top level.
        key: the key received.
        allowed: the keys allowed there.

    Example:

    >>> str(unknown_key("model", "hiden", ["hidden", "dropout"]))  # doctest: +ELLIPSIS
    "Unknown recipe key model.hiden. Did you mean 'hidden'? Allowed keys in model: dropout, ..."
    """
    allowed = sorted(allowed)
    full = f"{where}.{key}" if where else str(key)
    place = f"in {where}" if where else "at the top level"
    return ValueError(
        f"Unknown recipe key {full}.{_hint(key, allowed)} Allowed keys {place}: "
        f"{', '.join(allowed)}."
    )


def strict_bool(argument: str, value: Any) -> bool:
    """Returns `value` if it is `True` or `False` (not ``"yes"``, not 1), else raises."""
    if not isinstance(value, bool):
        raise invalid(argument, "true or false", value)
    return value
