"""A recipe's ``search:`` block: its keys, counts and space, checked before TensorFlow loads.

```yaml
search:
  trials: 20                 # positive integers (0 refused): the budget,
  max_failures: 5            #   consecutive failed trials that stop the search,
  ensemble: 1                #   how many of the best configurations best.keras averages
  retrain: true              # retrain them on train+validation (false: the trials' own models)
  objective: val_accuracy    # a metric name
  tuner: random              # random | grid | hyperband | bayesian
  time_budget: 480           # seconds for the trials (retraining apart)
  cv: 5                      # each trial's objective: the mean over 5 stratified folds
  refine: true               # coarse-to-fine second stage (or {trials, top, budget_share, margin})
  hyperband: {factor: 3, iterations: 1}
  bayesian: {initial_points: 10}
  space: default             # the builder's ready space, or a space mapping
```

`check_search_block` is the recipe check's part for this block (`kerasnn.recipe.Recipe.check`
calls it) and what `kerasnn.search` reads the block with. The space is parsed
(`kerasnn.tuning.SearchSpace.from_config`) and every entry's recipe key is checked by writing
the entry's first value into the recipe and asking `probe` whether the result is still a valid
recipe, so a typo'd key (``model.hiden``) fails here, named. Nothing here imports Keras,
TensorFlow or KerasTuner, nor `kerasnn.recipe.spec` (which imports this module): the recipe
comes in as an argument, and the probe as a callable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kerasnn import datasets
from kerasnn._validation import unknown_key
from kerasnn.tuning.ready import DEFAULT_AUGMENT, DEFAULT_SPACES, IMAGE_AUGMENT
from kerasnn.tuning.settings import SearchSettings
from kerasnn.tuning.space import VIRTUAL_KEYS, SearchSpace

__all__ = ["SEARCH_KEYS", "SearchBlock", "check_search_block", "resolve_space"]

SEARCH_KEYS = (
    "trials",
    "objective",
    "space",
    "max_failures",
    "ensemble",
    "retrain",
    "tuner",
    "time_budget",
    "cv",
    "refine",
    "hyperband",
    "bayesian",
)
HYPERBAND_KEYS = ("factor", "iterations")
BAYESIAN_KEYS = ("initial_points",)

#: ``probe(config)`` raises `ValueError` when `config` is not a valid recipe mapping
#: (`kerasnn.recipe.Recipe.check` passes ``lambda c: Recipe.from_dict(c)``).
Probe = Callable[[Mapping[str, Any]], Any]


class Recipe(Protocol):
    """What this module reads of a `kerasnn.recipe.Recipe` (it does not import the spec)."""

    data: dict[str, Any]
    model: dict[str, Any]
    search: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class SearchBlock:
    """A checked ``search:`` block; `None` where the recipe leaves a setting out.

    Attributes:
        trials: the number of trials.
        objective: the metric to optimize.
        max_failures: consecutive failed trials that stop the search.
        ensemble: how many of the best configurations best.keras averages.
        space: the parsed space (the builder's ready one for ``default`` or no ``space``).
        settings: the other `kerasnn.tuning.SearchSettings` arguments the block sets
            (``retrain``, ``tuner``, ``time_budget``, ``cv``, ``refine``, ``hyperband_factor``,
            ``hyperband_iterations``, ``initial_points``), checked.
    """

    trials: int | None
    objective: str | None
    max_failures: int | None
    ensemble: int | None
    space: SearchSpace
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)


def check_search_block(recipe: Recipe, *, probe: Probe) -> SearchBlock:
    """Checks `recipe`'s ``search:`` block; returns it with the space parsed.

    The block holds ``trials`` (a positive integer), ``objective`` (e.g. ``val_accuracy``),
    ``max_failures`` (consecutive failed trials that stop the search), ``ensemble`` (how many
    of the best configurations are retrained and averaged into best.keras), ``space`` (a
    space mapping, or ``default`` for the builder's ready space), ``retrain``, ``tuner``,
    ``time_budget``, ``cv``, ``refine``, ``hyperband`` and ``bayesian`` (see
    `kerasnn.tuning.SearchSettings`). All are optional.

    Args:
        recipe: a `kerasnn.recipe.Recipe` whose other sections are checked.
        probe: raises `ValueError` for a recipe mapping that is not valid (see `Probe`).

    Returns:
        The `SearchBlock`.

    Raises:
        ValueError: an unknown key, a count that is not a positive integer (0 and booleans
            refused), an objective that is not a string, or an invalid space entry, named.
    """
    block = dict(recipe.search or {})
    for key in block:
        if key not in SEARCH_KEYS:
            raise unknown_key("search", key, SEARCH_KEYS)
    for key in ("trials", "max_failures", "ensemble"):
        value = block.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise ValueError(
                f"Received an invalid value for recipe key search.{key}, expected a positive "
                f"integer. Received: {key}={value!r}"
            )
    objective = block.get("objective")
    if objective is not None and not isinstance(objective, str):
        raise ValueError(
            "Received an invalid value for recipe key search.objective, expected a metric "
            f"name such as val_accuracy or val_loss. Received: objective={objective!r}"
        )
    return SearchBlock(
        trials=block.get("trials"),
        objective=objective,
        max_failures=block.get("max_failures"),
        ensemble=block.get("ensemble"),
        space=resolve_space(block.get("space", "default"), recipe, probe=probe),
        settings=_tuner_settings(block),
    )


def _tuner_settings(block: Mapping[str, Any]) -> dict[str, Any]:
    """The block's tuner, budget, folds, refine and tuner options as `SearchSettings`
    arguments, checked by building the settings once (nothing is written)."""
    settings: dict[str, Any] = {
        k: block[k] for k in ("retrain", "tuner", "time_budget", "cv", "refine") if k in block
    }
    for section, keys, names in (
        (
            "hyperband",
            HYPERBAND_KEYS,
            {"factor": "hyperband_factor", "iterations": "hyperband_iterations"},
        ),
        ("bayesian", BAYESIAN_KEYS, {"initial_points": "initial_points"}),
    ):
        options = block.get(section) or {}
        if not isinstance(options, Mapping):
            raise ValueError(
                f"Received an invalid value for recipe key search.{section}, expected a "
                f"mapping of {', '.join(keys)}. Received: {section}={options!r}"
            )
        for key, value in options.items():
            if key not in keys:
                raise unknown_key(f"search.{section}", key, keys)
            settings[names[key]] = value
    try:
        SearchSettings(directory=".", objective="val_loss", **settings)
    except ValueError as err:
        message = str(err).replace("argument ", "recipe key search.", 1)
        for name, key in (
            ("hyperband_factor", "hyperband.factor"),
            ("hyperband_iterations", "hyperband.iterations"),
            ("initial_points", "bayesian.initial_points"),
        ):
            message = message.replace(f"search.{name}", f"search.{key}")
        raise ValueError(message) from None
    return settings


def resolve_space(space: Any, recipe: Recipe, *, probe: Probe) -> SearchSpace:
    """Parses `space` for `recipe` and checks every entry's key against the recipe.

    Args:
        space: a space mapping, a `kerasnn.tuning.SearchSpace`, ``"default"`` or `None` (the
            builder's ready space; with the image augmentations for the image datasets).
        recipe: the `kerasnn.recipe.Recipe` the space samples into.
        probe: raises `ValueError` for a recipe mapping that is not valid (see `Probe`).

    Returns:
        The `SearchSpace`, for the recipe's builder.

    Raises:
        ValueError: an invalid entry, no ready space for the builder, or a key the recipe
            does not accept (``Invalid search entry 'model.hiden': ...``).
    """
    builder = recipe.model.get("builder", "mlp")
    if space is None or space == "default":
        if builder not in DEFAULT_SPACES:
            raise ValueError(
                f"Received an invalid value for recipe key search.space: there is no ready space "
                f"for builder {builder!r} (ready: {', '.join(DEFAULT_SPACES)}); write one. "
                f"Received: space={space!r}"
            )
        image = recipe.data.get("name") in datasets.IMAGE_DATASETS
        space = DEFAULT_SPACES[builder](augment=IMAGE_AUGMENT if image else DEFAULT_AUGMENT)
    if isinstance(space, SearchSpace):
        space = space.for_builder(builder)
    else:
        space = SearchSpace.from_config(space, builder=builder)
    base = recipe.to_dict()
    base.pop("search", None)
    for entry in space.entries:
        if entry.name in VIRTUAL_KEYS:
            continue
        values = {entry.name: entry.values[0]}
        if entry.name == "optimizer.momentum":
            values["optimizer.name"] = "momentum"
        try:
            probe(space.apply(base, values))
        except ValueError as err:
            raise ValueError(f"Invalid search entry {entry.name!r}: {err}") from None
    return space
