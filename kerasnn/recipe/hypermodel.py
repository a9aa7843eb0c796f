"""`kerasnn.search`: a recipe's hyperparameter search, and the KerasTuner HyperModels on recipes.

A recipe with a ``search:`` block (`kerasnn.recipe.search_block`) says what to sample;
`RecipeHyperModel` writes each trial's sampled values into the recipe and builds it, and
`search` checks the settings once and hands the search to the recipe-free engine,
`kerasnn.tuning.run_search`. What only a recipe has is added here: each retrained member's
recipe in ``best.json``, a trainable ``best_recipe.yaml``, and the verified export the recipe's
``export`` block asks for.

Example:

```python
import kerasnn as knn

result = knn.search("recipes/digits_mlp.yaml", max_trials=20, seed=0)
data = knn.datasets.load("digits")
result = knn.search(MLPHyperModel(data), max_trials=20, directory="runs/mlp")
print(result.summary())
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import keras_tuner

from kerasnn import _atomic, datasets
from kerasnn.datasets import Dataset
from kerasnn.recipe.keys import EXPORT_DEFAULTS
from kerasnn.recipe.run import export_trained
from kerasnn.recipe.search_block import check_search_block, resolve_space
from kerasnn.recipe.spec import Recipe
from kerasnn.tuning.results import SearchResult
from kerasnn.tuning.space import SearchSpace
from kerasnn.tuning.tuner import SearchSettings, default_objective, run_search

__all__ = ["CNNHyperModel", "MLPHyperModel", "RecipeHyperModel", "search"]


def _probe(config: Mapping[str, Any]) -> Recipe:
    """The recipe check `check_search_block` probes each entry's key with."""
    return Recipe.from_dict(config)


class RecipeHyperModel(keras_tuner.HyperModel):
    """A `keras_tuner.HyperModel` that samples a recipe's entries from a `SearchSpace`.

    `build(hp)` declares the space, writes the sampled values into the recipe, seeds with the
    recipe's seed, builds and compiles the model (LSUV-initialised when the recipe's
    ``model.lsuv`` says so); `fit_arguments(hp)` gives the matching `kerasnn.fit` arguments
    (batch size…).

    Args:
        recipe: a `kerasnn.Recipe` (its data, model, optimizer and fit sections are the base).
        data: the loaded `kerasnn.datasets.Dataset`. Defaults to loading the recipe's.
        space: a `SearchSpace`, a space mapping or ``"default"``. Defaults to the recipe's
            ``search.space``, else the builder's ready space.

    Raises:
        ValueError: an invalid space (its keys checked against the recipe, its names against
            kerasnn's registries), before anything is trained.
    """

    def __init__(self, recipe: Recipe, data: Dataset | None = None, space: Any = None) -> None:
        if space is None:
            space = (recipe.search or {}).get("space", "default")
        self._setup(recipe, data, resolve_space(space, recipe, probe=_probe))

    @classmethod
    def from_checked(
        cls, recipe: Recipe, space: SearchSpace, data: Dataset | None = None
    ) -> RecipeHyperModel:
        """The HyperModel of a space already resolved for `recipe` (by `resolve_space` or
        `check_search_block`): its keys are not probed again."""
        hypermodel = cls.__new__(cls)
        hypermodel._setup(recipe, data, space)
        return hypermodel

    def _setup(self, recipe: Recipe, data: Dataset | None, space: SearchSpace) -> None:
        super().__init__(name=recipe.name)
        space.check_values()  # the names, against kerasnn's registries (imports Keras)
        self.space = space
        self.recipe = recipe
        self.data = (
            data if data is not None else datasets.load(**({"seed": recipe.seed} | recipe.data))
        )

    def recipe_for(self, hp: keras_tuner.HyperParameters) -> tuple[Recipe, dict[str, Any]]:
        """The recipe with `hp`'s sampled values applied, and those values.

        The recipe is not checked again: its base was, and the space's entries were checked
        against it when the space was resolved.
        """
        values = self.space.declare(hp)
        base = self.recipe.to_dict()
        base.pop("search", None)
        config = self.space.apply(base, values)
        return Recipe.from_dict(config, default_name=self.recipe.name, check=False), values

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The trial's model: built from the recipe with `hp` applied, compiled."""
        recipe, _ = self.recipe_for(hp)
        # The recipe's seed (as `Recipe.build` seeds), which may differ from the search's:
        # the search seed then changes the sampled values and the training, not the weights.
        keras.utils.set_random_seed(recipe.seed)
        return recipe.build_model(self.data)

    def fit_arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """`kerasnn.fit` arguments of the recipe with `hp` applied (epochs, batch size…)."""
        recipe, _ = self.recipe_for(hp)
        return dict(recipe.fit)


def _ready(builder: str, data: Dataset, fit: Mapping[str, Any] | None) -> Recipe:
    config = {
        "name": f"{data.name}_{builder}",
        "data": {"name": data.name},
        "model": {"builder": builder},
        "fit": dict(fit or {}),
    }
    return Recipe.from_dict(config)


class MLPHyperModel(RecipeHyperModel):
    """The ready MLP `HyperModel` on a loaded dataset (space: `default_mlp_space()`).

    Args:
        data: a `kerasnn.datasets.Dataset`.
        space: a space mapping or `SearchSpace`. Defaults to `default_mlp_space()`.
        fit: base `kerasnn.fit` arguments (epochs, early_stopping…). Defaults to fit's.
    """

    def __init__(self, data: Dataset, space: Any = None, fit: Mapping[str, Any] | None = None):
        super().__init__(_ready("mlp", data, fit), data, space if space is not None else "default")


class CNNHyperModel(RecipeHyperModel):
    """The ready CNN `HyperModel` on an image dataset (space: `default_cnn_space()`).

    Args:
        data: a `kerasnn.datasets.Dataset` with an image view (``load("digits", view="image")``).
        space: a space mapping or `SearchSpace`. Defaults to `default_cnn_space()`.
        fit: base `kerasnn.fit` arguments. Defaults to fit's.
    """

    def __init__(self, data: Dataset, space: Any = None, fit: Mapping[str, Any] | None = None):
        super().__init__(_ready("cnn", data, fit), data, space if space is not None else "default")


def _first(*values: Any) -> Any:
    """The first value that is not `None` (an explicit 0 is kept, and refused later)."""
    return next(v for v in values if v is not None)


def _describe(hypermodel: RecipeHyperModel) -> Any:
    """best.json's ``recipe`` of each member: what retrains it alone (a member taken from
    its trial without retraining: the trial's recipe, validation split and all)."""

    def describe(hp: keras_tuner.HyperParameters, result: Any) -> dict[str, Any]:
        member, _ = hypermodel.recipe_for(hp.copy())
        config = member.to_dict()
        if result is None:  # the trial's own model (no retraining): the trial's recipe
            return {"recipe": config}
        config["fit"] = {
            **config["fit"],
            "epochs": result.epochs,
            "validation_split": 0.0,
            "early_stopping": False,
        }
        return {"recipe": config}

    return describe


def _on_best(hypermodel: RecipeHyperModel, data: Dataset, out: Path) -> Any:
    """Writes best_recipe.yaml and the verified export the recipe's ``export`` block asks for."""

    def on_best(model: keras.Model, best: dict[str, Any]) -> None:
        _atomic.write_text(out / "best_recipe.yaml", Recipe.from_dict(best["recipe"]).to_yaml())
        spec = hypermodel.recipe.export
        if spec is not None:
            target = out / (EXPORT_DEFAULTS | spec)["path"]
            exported = export_trained(model, data, spec, target)
            best["export"] = {
                "path": str(target),
                "format": exported.format,
                "max_abs_diff": exported.max_abs_diff,
            }

    return on_best


def search(
    recipe_or_hypermodel: Recipe | str | os.PathLike | keras_tuner.HyperModel,
    data: Dataset | None = None,
    *,
    max_trials: int | None = None,
    objective: str | None = None,
    seed: int | None = None,
    directory: str | os.PathLike | None = None,
    space: Any = None,
    fit: Mapping[str, Any] | None = None,
    tuner: str | None = None,
    grid: bool = False,
    time_budget: float | None = None,
    cv: int | None = None,
    refine: bool | Mapping[str, Any] | None = None,
    tensorboard: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    max_failures: int | None = None,
    ensemble: int | None = None,
    retrain: bool | None = None,
    verbose: int = 0,
) -> SearchResult:
    """Runs a hyperparameter search and retrains the best configuration(s).

    Args:
        recipe_or_hypermodel: a `kerasnn.Recipe` (or the path of a YAML recipe) whose
            ``search:`` block (or `space`) says what to sample, or a `keras_tuner.HyperModel`
            (e.g. `MLPHyperModel`) whose `build(hp)` returns a compiled model.
        data: a `kerasnn.datasets.Dataset`. Required with a plain HyperModel; defaults to the
            recipe's data. Trials see only its train split (with a stratified validation split
            taken out by `kerasnn.fit`); the test split is used once, for the best model.
        max_trials: number of trials, a positive integer. Defaults to the recipe's
            ``search.trials``, else 20.
        objective: the metric to optimize, e.g. ``"val_accuracy"`` (maximized) or
            ``"val_loss"`` (minimized). Defaults to ``search.objective``, else val_accuracy
            (classification) or val_loss (regression).
        seed: seeds the sampled configurations (trial n's from
            `kerasnn.tuning.trial_seed(seed, n)`: different seeds sample independent
            configurations) and every trial's shuffles and split (a HyperModel that does not
            seed its build: its weights too); 0 is a seed like any other. Defaults to the
            recipe's seed (0).
        directory: the search folder. Defaults to ``runs/<name>-search`` (``-grid``,
            ``-hyperband``, ``-bayesian`` for those tuners).
        space: a space mapping, a `kerasnn.tuning.SearchSpace` or ``"default"``; overrides
            the recipe's.
        fit: `kerasnn.fit` arguments for every trial (epochs, early_stopping…), on top of the
            recipe's. Defaults to none.
        tuner: ``"random"`` (`keras_tuner.oracles.RandomSearchOracle`), ``"grid"``,
            ``"hyperband"`` (its ``max_epochs`` is the trials' ``fit.epochs``; the number of
            trials follows from it) or ``"bayesian"`` (Gaussian-process Bayesian
            optimization, after ``search.bayesian.initial_points`` random trials, 10 by
            default). Defaults to ``search.tuner``, else ``"random"``.
        grid: `True` is ``tuner="grid"``: the lectures' grid baseline. Defaults to `False`.
        time_budget: seconds for the trials, > 0: no new trial starts once they are spent;
            the running one stops at its next epoch boundary (its stop reason
            ``time_budget``). Retraining the best is apart (`SearchResult.retrain_seconds`).
            Defaults to ``search.time_budget``, else none.
        cv: K >= 2: each trial's objective is the mean over K stratified folds of the
            training split (``fold1``… ``foldK``, ``cv_mean``, ``cv_std`` in results.csv);
            the test split is never seen by the search. Defaults to ``search.cv``, else one
            validation split.
        refine: coarse-to-fine (random search): a second stage of trials samples ranges
            narrowed around the first stage's best (`kerasnn.tuning.Refine`: `True` or a
            mapping of its arguments); results.csv's ``stage`` says which. Defaults to
            ``search.refine``, else off.
        tensorboard: a folder for TensorBoard's HParams dashboard, one run per trial
            (hyperparameters, objective, per-epoch metrics). Defaults to none.
        resume: continue the interrupted search in `directory`: finished trials are kept, the
            interrupted one is run again. Defaults to `False`.
        overwrite: delete an earlier search in `directory` first. Defaults to `False`.
        max_failures: consecutive failed trials after which the search stops (KerasTuner's
            ``max_consecutive_failed_trials``), a positive integer. Defaults to
            ``search.max_failures``, else 5.
        ensemble: how many of the best configurations (ranked by the objective on the
            validation split) are retrained on train+validation; with more than one,
            `best.keras` is `kerasnn.tuning.ensemble_model` of them (their outputs averaged)
            and `best.json` lists each member. Fewer are used when fewer trials completed.
            Defaults to ``search.ensemble``, else 1 (the best configuration alone).
        retrain: `False` makes the members the trials' own models (their best epoch's
            weights, trained without the validation split; K models for a K-fold trial):
            nothing trains after the time budget. Defaults to ``search.retrain``, else
            `True`.
        verbose: 1 prints one line per trial (trial i/N, objective, time, budget left, its
            configuration) and per retrained member. Defaults to 0.

    Returns:
        A `kerasnn.tuning.SearchResult`. The directory holds `results.csv`, `results.json`,
        `results.png`, `best.keras`, `best.json`, `best_recipe.yaml` (recipes only; the best
        configuration alone), `search.json` and KerasTuner's `tuner/` project. Trials are
        numbered from 1 (the ``trial`` column, ``best.json``, the summary), as KerasTuner's
        ``Trial #N``.

    Raises:
        ValueError: an invalid space, objective or argument (a count of 0 included), before
            the first trial.
        FileExistsError: `directory` holds a search and neither `resume` nor `overwrite`.
        FileNotFoundError: `resume` with no search in `directory`.
        RuntimeError: too many consecutive failed trials (KerasTuner's limit).
    """
    if isinstance(recipe_or_hypermodel, str | os.PathLike):
        recipe_or_hypermodel = Recipe.from_yaml(recipe_or_hypermodel)
    trials = failures = members = block_objective = None
    block_settings: dict[str, Any] = {}
    if isinstance(recipe_or_hypermodel, Recipe):
        recipe = recipe_or_hypermodel.resolved()
        block = check_search_block(recipe, probe=_probe)
        trials, failures, members = block.trials, block.max_failures, block.ensemble
        block_objective = block.objective
        block_settings = dict(block.settings)
        chosen = block.space if space is None else resolve_space(space, recipe, probe=_probe)
        hypermodel: keras_tuner.HyperModel = RecipeHyperModel.from_checked(recipe, chosen, data)
        data = hypermodel.data
        name = recipe.name
        seed = recipe.seed if seed is None else seed
    elif isinstance(recipe_or_hypermodel, keras_tuner.HyperModel):
        hypermodel = recipe_or_hypermodel
        if not isinstance(data, Dataset):
            data = getattr(hypermodel, "data", data)
        if not isinstance(data, Dataset):
            raise TypeError(
                "Received an invalid value for argument data, expected a kerasnn Dataset "
                f"(its train split feeds the trials, its test split the best model). "
                f"Received: data of type {type(data)}"
            )
        name = hypermodel.name or data.name
        seed = 0 if seed is None else seed
    else:
        raise TypeError(
            "Received an invalid value for argument recipe_or_hypermodel, expected a "
            "kerasnn Recipe, a recipe path or a keras_tuner.HyperModel. "
            f"Received: recipe_or_hypermodel of type {type(recipe_or_hypermodel)}"
        )
    chosen_settings = block_settings | {
        k: v
        for k, v in (
            ("tuner", tuner),
            ("time_budget", time_budget),
            ("cv", cv),
            ("refine", refine),
            ("retrain", retrain),
        )
        if v is not None
    }
    if grid:
        chosen_settings["tuner"] = "grid" if tuner in (None, "grid", "random") else tuner
    kind = chosen_settings.get("tuner", "random")
    suffix = "search" if kind == "random" else kind
    settings = SearchSettings(
        directory=Path(directory) if directory is not None else Path("runs") / f"{name}-{suffix}",
        objective=_first(objective, block_objective, default_objective(data.task)),
        name=name,
        seed=seed,
        max_trials=_first(max_trials, trials, 20),
        max_failures=_first(max_failures, failures, 5),
        ensemble=_first(ensemble, members, 1),
        grid=grid,
        tensorboard=tensorboard,
        resume=resume,
        overwrite=overwrite,
        verbose=verbose,
        **chosen_settings,
    )
    hooks: dict[str, Any] = {}
    if isinstance(hypermodel, RecipeHyperModel):
        hooks = {
            "metrics": hypermodel.recipe.metrics,
            "describe": _describe(hypermodel),
            "on_best": _on_best(hypermodel, data, settings.directory),
        }
    return run_search(hypermodel, data, settings, fit=fit, **hooks)
