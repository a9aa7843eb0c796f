"""Argument checks shared by the public functions: one message shape everywhere.

Every error names the argument, states the rule and shows what was received, in Keras's words:
``Received an invalid value for argument units, expected a positive integer. Received: units=0``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any


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
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Received an invalid value for argument {argument}, expected one of "
        f"{', '.join(map(repr, sorted(allowed)))}.{hint} Received: {argument}={value!r}"
    )
