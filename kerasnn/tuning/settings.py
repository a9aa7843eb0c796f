"""What a search runs: its settings, checked when built (before anything is written).

Nothing here imports Keras, TensorFlow or KerasTuner: a recipe's ``search:`` block and the
CLI's options are checked with these before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kerasnn._validation import fraction, invalid, is_number, one_of, positive_int, unknown_key

__all__ = ["REFINE_KEYS", "TUNERS", "Refine", "SearchSettings", "refine_settings"]

#: KerasTuner's oracles a search runs on: `RandomSearchOracle`, `GridSearchOracle`,
#: `HyperbandOracle`, `BayesianOptimizationOracle`.
TUNERS = ("random", "grid", "hyperband", "bayesian")
REFINE_KEYS = ("trials", "top", "budget_share", "margin")


@dataclasses.dataclass(frozen=True)
class Refine:
    """Coarse-to-fine search: a second stage sampling narrowed ranges around the best.

    After the first stage, the `top` best configurations (by the validation or CV objective)
    decide the second stage's space (`kerasnn.tuning.refine.narrowed_space`): each log range
    shrunk, in log space, to the span of their values widened by `margin` of the original
    range's width on each side (linear ranges alike, in linear space), each choice kept to the
    options they used.

    Args:
        trials: the second stage's trials, a positive integer. Defaults to `None`: half the
            first stage's (at least 1).
        top: how many of the first stage's best configurations the ranges are narrowed
            around, a positive integer. Defaults to 5.
        budget_share: with a time budget, the fraction of it left to the second stage (the
            first stops at 1 - budget_share of it), in (0, 1). Defaults to 0.35.
        margin: the widening, a fraction of the original range's width >= 0. Defaults to
            0.25.
    """

    trials: int | None = None
    top: int = 5
    budget_share: float = 0.35
    margin: float = 0.25

    def __post_init__(self) -> None:
        if self.trials is not None:
            positive_int("refine.trials", self.trials)
        positive_int("refine.top", self.top)
        fraction("refine.budget_share", self.budget_share)
        if not is_number(self.margin) or self.margin < 0:
            raise invalid("refine.margin", "a number >= 0", self.margin)

    def stage_trials(self, first: int) -> int:
        """The second stage's trials after a first stage of `first`."""
        return self.trials if self.trials is not None else max(1, first // 2)


def refine_settings(value: Any) -> Refine | None:
    """`Refine` from ``refine``: `True` (the defaults), `False`/`None` (off), a mapping of
    `Refine` arguments or a `Refine`.

    Raises:
        ValueError: another value, an unknown key, or a bad setting, named.
    """
    if value is None or value is False:
        return None
    if value is True:
        return Refine()
    if isinstance(value, Refine):
        return value
    if isinstance(value, Mapping):
        for key in value:
            if key not in REFINE_KEYS:
                raise unknown_key("search.refine", key, REFINE_KEYS)
        return Refine(**value)
    raise invalid("refine", f"true, false or a mapping of {', '.join(REFINE_KEYS)}", value)


def _seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise invalid("seed", "an integer >= 0", seed)


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """What a search runs, checked when built (before anything is written).

    Args:
        directory: the search folder.
        objective: the metric to optimize, e.g. ``"val_accuracy"`` (maximized) or
            ``"val_loss"`` (minimized).
        name: the search's name, recorded in ``search.json``. Defaults to ``"search"``.
        seed: seeds the sampled configurations (trial n's from `trial_seed(seed, n)`) and
            every trial's weights, shuffles, split and folds; an integer >= 0. Defaults to 0.
        max_trials: number of trials of a random, grid or Bayesian search (Hyperband's
            follows from its epochs), a positive integer. Defaults to 20.
        max_failures: consecutive failed trials after which the search stops (KerasTuner's
            ``max_consecutive_failed_trials``), a positive integer. Defaults to 5.
        ensemble: how many of the best configurations are retrained into best.keras, a
            positive integer. Defaults to 1.
        retrain: `True` retrains the `ensemble` best configurations on train+validation
            for their best epoch count; `False` takes the trials' own models (best epoch's
            weights; a K-fold trial's K fold models), so nothing trains after the trials.
            Defaults to `True`.
        tuner: one of `TUNERS`: ``"random"``, ``"grid"``, ``"hyperband"`` (its
            ``max_epochs`` is the trials' ``epochs``) or ``"bayesian"``. Defaults to
            ``"random"``.
        grid: `True` is ``tuner="grid"`` (kept as an alias). Defaults to `False`.
        time_budget: seconds for the trials, > 0: no new trial starts once they are spent,
            and a running one stops at its next epoch boundary (recorded with stop reason
            ``time_budget``). Retraining the best is not counted in it. Defaults to `None`
            (no budget).
        cv: K >= 2: each trial's objective is the mean over K stratified folds of the
            training split. Defaults to `None` (one validation split).
        refine: a `Refine` (coarse-to-fine second stage; random search only), or `None`.
        hyperband_factor: Hyperband's reduction factor, an integer >= 2. Defaults to 3.
        hyperband_iterations: Hyperband's iterations, a positive integer. Defaults to 1.
        initial_points: random trials before Bayesian optimization's Gaussian process, a
            positive integer. Defaults to 10.
        tensorboard: a folder for TensorBoard's HParams dashboard (one run per trial), or
            `None`.
        resume: continue the interrupted search in `directory`. Defaults to `False`.
        overwrite: delete an earlier search in `directory` first. Defaults to `False`.
        verbose: 1 prints one line per trial and per retrained member. Defaults to 0.

    Raises:
        ValueError: a seed < 0, a count that is not a positive integer (0 included), an
            unknown tuner, a budget <= 0, K < 2, or refine with another tuner than random.
    """

    directory: Path
    objective: str
    name: str = "search"
    seed: int = 0
    max_trials: int = 20
    max_failures: int = 5
    ensemble: int = 1
    retrain: bool = True
    tuner: str = "random"
    grid: bool = False
    time_budget: float | None = None
    cv: int | None = None
    refine: Refine | None = None
    hyperband_factor: int = 3
    hyperband_iterations: int = 1
    initial_points: int = 10
    tensorboard: Path | None = None
    resume: bool = False
    overwrite: bool = False
    verbose: int = 0

    def __post_init__(self) -> None:
        _seed(self.seed)
        positive_int("max_trials", self.max_trials)
        positive_int("max_failures", self.max_failures)
        positive_int("ensemble", self.ensemble)
        if not isinstance(self.retrain, bool):
            raise invalid("retrain", "true or false", self.retrain)
        positive_int("hyperband_iterations", self.hyperband_iterations)
        positive_int("initial_points", self.initial_points)
        factor = self.hyperband_factor
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
            raise invalid("hyperband_factor", "an integer >= 2", factor)
        tuner = one_of("tuner", self.tuner, TUNERS)
        if self.grid:
            if tuner not in ("random", "grid"):
                raise ValueError(
                    "Received conflicting values for arguments grid and tuner: grid=True is "
                    f"tuner='grid'. Received: grid=True, tuner={tuner!r}"
                )
            object.__setattr__(self, "tuner", "grid")
        budget = self.time_budget
        if budget is not None and (not is_number(budget) or budget <= 0):
            raise invalid("time_budget", "a number of seconds > 0", budget)
        cv = self.cv
        if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
            raise invalid("cv", "an integer K >= 2 (folds)", cv)
        object.__setattr__(self, "refine", refine_settings(self.refine))
        if self.refine is not None and self.tuner != "random":
            raise ValueError(
                "Received an invalid value for argument refine, expected it with tuner "
                "'random' only (the grid has no ranges to narrow; Hyperband and Bayesian "
                f"optimization choose their own next trials). Received: refine with "
                f"tuner={self.tuner!r}"
            )
        object.__setattr__(self, "directory", Path(self.directory))
        if self.tensorboard is not None:
            object.__setattr__(self, "tensorboard", Path(self.tensorboard))

    @property
    def kind(self) -> str:
        """The tuner: ``"random"``, ``"grid"``, ``"hyperband"`` or ``"bayesian"``."""
        return self.tuner
