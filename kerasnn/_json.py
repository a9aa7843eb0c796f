"""Strict JSON for every file kerasnn writes: NaN and ±inf become ``null``, their reason kept.

Python's `json` writes NaN and the infinities as the bare words ``NaN``, ``Infinity`` and
``-Infinity``, which are not JSON (RFC 8259): strict parsers (JavaScript's ``JSON.parse``, jq,
``json.loads(text, parse_constant=...)`` raising) reject the whole file. kerasnn writes them as
follows instead.

**The convention.** A non-finite number is written as ``null``, and the *outermost JSON object*
that contains it gets one extra key, ``"non_finite"``, mapping the value's JSON Pointer
(RFC 6901) relative to that object to ``"nan"``, ``"inf"`` or ``"-inf"``::

    {
      "final_metrics": {"loss": null, "accuracy": 0.1},
      "history": {"loss": [0.9, null]},
      "non_finite": {"/final_metrics/loss": "nan", "/history/loss/1": "inf"}
    }

The outermost object is the document itself when it is an object; in a document that is a
list of objects (a table of rows) each row holds the pointers of its own values. Nested
objects keep their keys unchanged (a metrics dict still has only metric names), so readers that
iterate them see ``None`` where the value was not finite. A non-finite number outside any
object (in a top-level list of numbers) becomes ``null`` with no reason: JSON has no place
for one. `loads` and `read` undo the conversion (the values come back as ``float("nan")``,
``float("inf")``, ``float("-inf")`` and the ``"non_finite"`` key is dropped), so
``loads(dumps(x)) == x`` for finite data and holds value for value otherwise.

NumPy scalars and arrays become Python numbers and lists; tuples become lists; keys become
strings as `json` makes them (``1`` -> ``"1"``, ``True`` -> ``"true"``). ``"non_finite"`` is
reserved in outermost objects: data that already has that key there is refused.

To adopt it, replace ``json.dumps(data, indent=2)`` by ``kerasnn._json.dumps(data)`` (same
text for finite data) or write the file with `write`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kerasnn import _atomic

__all__ = ["NON_FINITE_KEY", "dumps", "loads", "read", "to_strict", "write"]

NON_FINITE_KEY = "non_finite"
_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _reason(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _key(key: Any) -> str:
    """A dict key as `json` writes it (it accepts str, int, float, bool and None keys)."""
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise TypeError(
        f"Cannot write strict JSON: keys must be str, int, float, bool or None, not "
        f"{type(key).__name__} (key {key!r})"
    )


def _escape(token: str) -> str:
    """One JSON Pointer reference token (RFC 6901: ``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _convert(value: Any, pointer: str, reasons: dict[str, str] | None) -> Any:
    """A strict copy of `value`; non-finite numbers go to `reasons` (None: no enclosing object)."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist() if isinstance(value, np.ndarray) else value.item()
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if reasons is not None:
            reasons[pointer] = _reason(value)
        return None
    if isinstance(value, Mapping):
        if reasons is None:  # the outermost object on this path: it holds the reasons
            own: dict[str, str] = {}
            out = {}
            for k, v in value.items():
                key = _key(k)
                if key == NON_FINITE_KEY:
                    raise ValueError(
                        f"Cannot write strict JSON: the key {NON_FINITE_KEY!r} is reserved in "
                        "outermost objects for the reasons of non-finite values "
                        f"(kerasnn._json). Received: an object with keys {list(map(_key, value))}"
                    )
                out[key] = _convert(v, f"/{_escape(key)}", own)
            if own:
                out[NON_FINITE_KEY] = own
            return out
        return {
            (key := _key(k)): _convert(v, f"{pointer}/{_escape(key)}", reasons)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_convert(v, f"{pointer}/{i}", reasons) for i, v in enumerate(value)]
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_strict(data: Any) -> Any:
    """A copy of `data` that `json.dumps(..., allow_nan=False)` accepts (see the module doc).

    Args:
        data: dicts, lists, tuples, strings, numbers (Python or NumPy), NumPy arrays, `None`.

    Returns:
        Dicts, lists, strings, Python numbers and `None`, non-finite numbers replaced by `None`
        and listed under ``"non_finite"`` in their outermost object.

    Raises:
        TypeError: a value or key JSON cannot hold.
        ValueError: an outermost object already has the reserved key ``"non_finite"``.

    Example:

    >>> to_strict({"loss": float("nan"), "acc": np.float32(0.5)})
    {'loss': None, 'acc': 0.5, 'non_finite': {'/loss': 'nan'}}
    """
    return _convert(data, "", None)


def dumps(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """`data` as strict JSON text (no ``NaN``/``Infinity``; see the module doc).

    Args:
        data: as for `to_strict`.
        indent: `json.dumps` indentation. Defaults to 2.
        sort_keys: sort object keys. Defaults to `False`.

    Returns:
        The JSON text, without a trailing newline.

    Raises:
        TypeError: a value or key JSON cannot hold.
        ValueError: an outermost object already has the reserved key ``"non_finite"``.

    Example:

    >>> print(dumps({"loss": float("inf"), "steps": [1, 2]}, indent=None))
    {"loss": null, "steps": [1, 2], "non_finite": {"/loss": "inf"}}
    """
    return json.dumps(to_strict(data), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> Path:
    """Writes `dumps(data)` plus a newline to `path` atomically (`kerasnn._atomic.write_text`:
    a temporary sibling renamed over `path`; the file gets the umask's mode).

    Returns:
        The path written.
    """
    text = dumps(data, indent=indent) + "\n"  # before the file is touched: errors leave no file
    return _atomic.write_text(path, text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Not strict JSON: the bare constant {name} (write it with kerasnn._json)")


def _restore(obj: dict[str, Any], reasons: Any) -> None:
    if not isinstance(reasons, dict):
        raise ValueError(
            f"Received an invalid value for {NON_FINITE_KEY!r}, expected an object of JSON "
            f"Pointers to 'nan', 'inf' or '-inf'. Received: {reasons!r}"
        )
    for pointer, reason in reasons.items():
        if reason not in _NAMES or not pointer.startswith("/"):
            raise ValueError(
                f"Received an invalid value for {NON_FINITE_KEY!r}, expected JSON Pointers "
                f"to 'nan', 'inf' or '-inf'. Received: {pointer!r}: {reason!r}"
            )
        *parents, last = [_unescape(t) for t in pointer[1:].split("/")]
        target: Any = obj
        try:
            for token in parents:
                target = target[int(token)] if isinstance(target, list) else target[token]
            index: Any = int(last) if isinstance(target, list) else last
            found = target[index]
        except (KeyError, IndexError, ValueError, TypeError):
            found = ...
        if found is not None:
            raise ValueError(
                f"Received an invalid value for {NON_FINITE_KEY!r}: the pointer {pointer!r} "
                "does not lead to a null in its object."
            )
        target[index] = _NAMES[reason]


def _restore_all(value: Any) -> Any:
    if isinstance(value, dict):
        if NON_FINITE_KEY in value:
            _restore(value, value.pop(NON_FINITE_KEY))
    elif isinstance(value, list):
        for item in value:
            _restore_all(item)
    return value


def loads(text: str) -> Any:
    """Parses strict JSON and puts back the non-finite values `dumps` recorded.

    Raises:
        ValueError: bare ``NaN``/``Infinity`` (not JSON), invalid JSON, or a malformed
            ``"non_finite"`` entry.

    Example:

    >>> loads('{"loss": null, "non_finite": {"/loss": "nan"}}')
    {'loss': nan}
    """
    return _restore_all(json.loads(text, parse_constant=_reject_constant))


def read(path: str | os.PathLike) -> Any:
    """`loads` of a file's text."""
    return loads(Path(path).read_text())
