"""Coarse-to-fine search: a KerasTuner space narrowed around the best trials of a first stage.

Random search first samples the whole space coarsely; a second stage then samples narrowed
ranges around the best configurations (Bergstra & Bengio 2012). `narrowed_space` builds the
second stage's space from the first's `keras_tuner.HyperParameters` and the top trials'
values; the search replaces its oracle's ``hyperparameters`` with it. `describe_narrowing`
says what changed (``search.json``, the summary).

The narrowed copy keeps every hyperparameter's name and conditions, in the declared order, so
the hypermodel's own declarations (``hp.Float("lr", 1e-4, 1e-1, sampling="log")``) still find
them — KerasTuner matches a declaration to a registered hyperparameter by name and conditions
only — and return the value the oracle drew from the narrowed range. Per kind:

- ``Float``/``Int``: the span of the top values, widened on each side by ``margin`` times the
  original range's width (in log space for ``sampling="log"``, else linear), clipped to the
  original range; an ``Int`` (or a ``Float`` with a ``step``) is rounded outward to its
  original grid (``min_value + k * step``; ``min_value * step**k`` on a log scale).
- ``Choice``: the options the top trials used, in the original order (a single one stays a
  one-option ``Choice``).
- ``Boolean``: unchanged if the top trials used both values, else a ``Fixed`` of the one they
  used (a ``Choice`` would turn `True` into ``1``; a ``Boolean`` cannot be restricted).
- ``Fixed``, and any hyperparameter that no top trial had active: unchanged.

Defaults are moved inside the new ranges and options (the first kept option, the nearest
bound).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras_tuner

from kerasnn._validation import invalid, is_number

__all__ = ["describe_narrowing", "narrowed_space"]

# Snaps a bound that lies on the step grid up to float error onto it (in steps).
_GRID_TOLERANCE = 1e-9


def narrowed_space(
    hps: keras_tuner.HyperParameters,
    top: Sequence[Mapping[str, Any]],
    *,
    margin: float = 0.25,
) -> keras_tuner.HyperParameters:
    """A copy of the space `hps` narrowed around the values of the `top` trials.

    Each range becomes the span of the top trials' values widened by `margin` times the
    original range's width on each side (log width for ``sampling="log"``), clipped to the
    original range; an ``Int`` is rounded outward to its step grid and stays an ``Int``. A
    ``Choice`` keeps the options the top trials used, in order; a ``Boolean`` they all set
    one way becomes a ``Fixed`` of that value. ``Fixed`` hyperparameters and those no top
    trial had active are unchanged. Names, conditions and order are kept exactly, so a
    hypermodel re-declaring the original space retrieves the narrowed hyperparameters.

    Args:
        hps: the first stage's space (the oracle's ``hyperparameters``). Not modified.
        top: the ``values`` of the top trials (a conditional hyperparameter is absent where it
            was inactive; a value counts only where its conditions hold).
        margin: the widening on each side, a fraction of the original range's width >= 0.
            Defaults to 0.25.

    Returns:
        A new `keras_tuner.HyperParameters`, whose ``values`` are the defaults of the
        hyperparameters active with them (the oracle draws its own).

    Raises:
        ValueError: `top` is empty (or not a list of mappings), `margin` is negative or not
            a number, or a top value does not fit its hyperparameter (not a number for a
            range, not an option of a choice, not a bool for a boolean).

    Example:

    >>> hp = keras_tuner.HyperParameters()
    >>> _ = hp.Float("lr", 1e-4, 1e-1, sampling="log")
    >>> narrow = narrowed_space(hp, [{"lr": 1e-3}, {"lr": 1e-2}], margin=0.0)
    >>> narrow.space[0].min_value, narrow.space[0].max_value
    (0.001, 0.01)
    """
    if not isinstance(hps, keras_tuner.HyperParameters):
        raise invalid("hps", "a keras_tuner.HyperParameters", hps)
    if (
        isinstance(top, str | bytes | Mapping)
        or not isinstance(top, Sequence)
        or not top
        or not all(isinstance(values, Mapping) for values in top)
    ):
        raise invalid("top", "a non-empty list of the top trials' values (mappings)", top)
    if not is_number(margin) or margin < 0:
        raise invalid("margin", "a number >= 0", margin)
    config = copy.deepcopy(hps.get_config())
    space = []
    for hp, entry in zip(hps.space, config["space"], strict=True):
        used = _used_values(hp, top)
        space.append(_narrow_entry(entry, used, float(margin)) if used else entry)
    narrowed = keras_tuner.HyperParameters.from_config({"space": space, "values": {}})
    for hp in narrowed.space:  # the defaults, as registering the space would set them
        if hp.name not in narrowed.values and narrowed.is_active(hp):
            narrowed.values[hp.name] = hp.default
    return narrowed


def describe_narrowing(
    before: keras_tuner.HyperParameters, after: keras_tuner.HyperParameters
) -> dict[str, dict]:
    """What `narrowed_space` changed: each changed hyperparameter's range or options.

    Args:
        before: the space before narrowing.
        after: its narrowed copy (the same hyperparameters, names and conditions, in order).

    Returns:
        ``{name: {"before": ..., "after": ...}}`` for each hyperparameter whose range or
        options changed, in the space's order (JSON-serializable): ``[min, max]`` for
        ``Float``/``Int``, the options for ``Choice``, ``[True, False]`` for ``Boolean``,
        ``[value]`` for ``Fixed``. A name that two hyperparameters share (under different
        conditions) is followed by its conditions, e.g. ``"units (when model in ['mlp'])"``.

    Raises:
        ValueError: `after` does not hold the hyperparameters of `before` (names and
            conditions, in order).

    Example:

    >>> hp = keras_tuner.HyperParameters()
    >>> _ = hp.Choice("optimizer", ["sgd", "adam"])
    >>> describe_narrowing(hp, narrowed_space(hp, [{"optimizer": "adam"}]))
    {'optimizer': {'before': ['sgd', 'adam'], 'after': ['adam']}}
    """
    for name, value in (("before", before), ("after", after)):
        if not isinstance(value, keras_tuner.HyperParameters):
            raise invalid(name, "a keras_tuner.HyperParameters", value)
    if [(hp.name, hp.conditions) for hp in before.space] != [
        (hp.name, hp.conditions) for hp in after.space
    ]:
        raise invalid(
            "after",
            "a narrowed copy of `before` (the same hyperparameter names and conditions, in "
            f"the same order: {[hp.name for hp in before.space]})",
            [hp.name for hp in after.space],
        )
    names = [hp.name for hp in before.space]
    changes: dict[str, dict] = {}
    for old, new in zip(before.get_config()["space"], after.get_config()["space"], strict=True):
        was, now = _extent(old), _extent(new)
        if was != now:
            name = old["config"]["name"]
            if names.count(name) > 1:
                name = f"{name} (when {_conditions_text(old['config']['conditions'])})"
            changes[name] = {"before": was, "after": now}
    return changes


def _used_values(hp: Any, top: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The values of `hp` in the `top` trials where it was active (its conditions held)."""
    probe = keras_tuner.HyperParameters()
    used = []
    for values in top:
        probe.values = dict(values)
        if hp.name in values and probe.is_active(hp):
            used.append(values[hp.name])
    return used


def _narrow_entry(entry: dict[str, Any], used: list[Any], margin: float) -> dict[str, Any]:
    """One serialized hyperparameter (``{"class_name", "config"}``) narrowed to `used`."""
    kind, config = entry["class_name"], entry["config"]
    name = config["name"]
    if kind == "Boolean":
        if not all(isinstance(v, bool) for v in used):
            raise _value_error(name, "true/false values", used)
        if len(set(used)) == 2:
            return entry
        fixed = {"name": name, "value": used[0], "conditions": config["conditions"]}
        return {"class_name": "Fixed", "config": fixed}
    if kind == "Choice":
        options = config["values"]
        foreign = [v for v in used if v not in options or isinstance(v, bool)]
        if foreign:
            raise _value_error(name, f"values among its options {options}", foreign)
        kept = [v for v in options if v in used]
        config["values"] = kept
        if config.get("default") not in kept:
            config["default"] = kept[0]
        return entry
    if kind in ("Float", "Int"):
        if not all(is_number(v) for v in used):
            raise _value_error(name, "numbers", used)
        low, high = _narrow_range(config, used, margin, is_int=kind == "Int")
        config["min_value"], config["max_value"] = low, high
        default = config.get("default")
        if default is not None:
            config["default"] = min(max(default, low), high)
        return entry
    return entry  # Fixed (or a class of a later KerasTuner): unchanged


def _narrow_range(
    config: Mapping[str, Any], used: list[Any], margin: float, *, is_int: bool
) -> tuple[Any, Any]:
    """The narrowed ``(min_value, max_value)`` of a serialized ``Float`` (or ``Int``)."""
    low0, high0, step = config["min_value"], config["max_value"], config.get("step")
    log = config.get("sampling") == "log"  # reverse_log: narrowed in linear space
    lowest = min(max(min(used), low0), high0)  # the top values, clipped to the range
    highest = min(max(max(used), low0), high0)
    if margin == 0:
        low, high = lowest, highest
    elif log:
        widen = margin * (math.log(high0) - math.log(low0))
        low = math.exp(math.log(lowest) - widen)
        high = math.exp(math.log(highest) + widen)
    else:
        widen = margin * (high0 - low0)
        low, high = lowest - widen, highest + widen
    # Clipped to the original range; the top values stay inside whatever the float error.
    low, high = max(low0, min(low, lowest)), min(high0, max(high, highest))
    if step is not None:
        if log:  # the grid low0 * step**k
            k_low = math.floor(math.log(low / low0, step) + _GRID_TOLERANCE)
            k_high = math.ceil(math.log(high / low0, step) - _GRID_TOLERANCE)
            low, high = low0 * step**k_low, low0 * step**k_high
        else:  # the grid low0 + k * step
            k_low = math.floor((low - low0) / step + _GRID_TOLERANCE)
            k_high = math.ceil((high - low0) / step - _GRID_TOLERANCE)
            low, high = low0 + k_low * step, low0 + k_high * step
        low, high = max(low0, low), min(high0, high)
    if is_int:
        low, high = max(low0, math.floor(low)), min(high0, math.ceil(high))
        return int(low), int(high)
    return float(low), float(high)


def _extent(entry: Mapping[str, Any]) -> list[Any]:
    """A serialized hyperparameter's range (``[min, max]``) or options, as a list."""
    kind, config = entry["class_name"], entry["config"]
    if kind in ("Float", "Int"):
        return [config["min_value"], config["max_value"]]
    if kind == "Choice":
        return list(config["values"])
    if kind == "Boolean":
        return [True, False]
    if kind == "Fixed":
        return [config["value"]]
    return [config.get("default")]


def _conditions_text(conditions: Sequence[Mapping[str, Any]]) -> str:
    parts = [f"{c['config']['name']} in {list(c['config']['values'])}" for c in conditions]
    return " and ".join(parts) or "always"


def _value_error(name: str, expected: str, received: Any) -> ValueError:
    return ValueError(
        f"Received an invalid value for argument top, expected {expected} for "
        f"hyperparameter {name!r}. Received: top values of {name}={received!r}"
    )
