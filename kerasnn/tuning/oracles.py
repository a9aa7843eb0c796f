"""The search's oracles: KerasTuner's own four, seeded exactly and stoppable by a budget.

`seeded_oracle` builds KerasTuner's `RandomSearchOracle`, `GridSearchOracle`, `HyperbandOracle`
or `BayesianOptimizationOracle` (`TUNERS`) with what kerasnn adds to each, in one mixin
(`_SearchControl`) over their public `populate_space` contract:

- the seed is honoured exactly, 0 included (KerasTuner turns a falsy seed into a random one;
  the oracle is built with a fixed non-zero seed and the search seed set back through its
  public state), and each trial samples from its own seed, `trial_seed` (search seed, trial
  id): KerasTuner draws value k of a search from seed + k, so seeds s and s + 1 would sample
  shifted copies of one stream;
- random draws take a trial's values in an order of their own (`_sampling_order`: parents
  before the entries conditional on them, then by name), so the order a space's keys are
  declared in does not change what is sampled (the grid walks the declared order);
- no new trial starts once ``deadline`` (a `time.time()` value: the time budget) has passed
  or the stage has ``stop_after`` trials (coarse-to-fine's first stage): `populate_space`
  answers ``STOPPED``, KerasTuner's own way for an oracle to end a search, and
  ``stopped_by`` says why.

`hyperband_trials` counts the trials (and epochs) one Hyperband iteration gives.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import time
from typing import Any

import keras_tuner

from kerasnn.tuning.results import direction
from kerasnn.tuning.settings import TUNERS

__all__ = [
    "BAYESIAN_INITIAL_POINTS",
    "HYPERBAND_FACTOR",
    "TUNERS",
    "hyperband_trials",
    "seeded_oracle",
    "trial_seed",
]

#: Hyperband's reduction factor (KerasTuner's default).
HYPERBAND_FACTOR = 3
#: Random trials before Bayesian optimization fits its Gaussian process. KerasTuner's default
#: is three per hyperparameter (42 for the digits space), more than a 20-trial budget.
BAYESIAN_INITIAL_POINTS = 10
#: The seed the oracles are built with when the search seed is 0 (then set back to 0): their
#: constructors replace a falsy seed by a random one, and the Bayesian oracle seeds its
#: random state and Gaussian process from the constructor's seed.
_ZERO_STAND_IN = 1_000_003


def trial_seed(seed: int, trial_id: str | int) -> int:
    """The seed trial `trial_id` of a search with seed `seed` samples its configuration from.

    The first 62 bits of SHA-256 of ``"kerasnn.search:<seed>:<int(trial_id)>"`` (KerasTuner's
    id, from 0; the number people read, `kerasnn.tuning.results.trial_number`, is one more):
    the streams of different search seeds are independent, and a trial's configuration depends
    only on the search seed and its id (KerasTuner's oracle then draws the trial's k-th value
    from this seed + k, and retries a configuration already tried from where it stopped).

    Args:
        seed: the search seed, an integer >= 0.
        trial_id: the trial's id (KerasTuner's, zero-padded, from 0: ``"07"`` is Trial #8).

    Returns:
        An integer in [0, 2**62).
    """
    digest = hashlib.sha256(f"kerasnn.search:{int(seed)}:{int(trial_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def _sampling_order(hps: keras_tuner.HyperParameters) -> keras_tuner.HyperParameters:
    """A copy of `hps` whose space lists every hyperparameter after its conditions' parents,
    otherwise by name (then as declared): the order random draws take a trial's values in,
    whatever order the hyperparameters were declared in."""
    space = list(hps.space)
    parents = [{getattr(c, "name", None) for c in hp.conditions} for hp in space]
    waiting = [
        {j for j, other in enumerate(space) if other.name in parents[i]} for i in range(len(space))
    ]
    ready = [(hp.name, i) for i, hp in enumerate(space) if not waiting[i]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(space[i])
        for j in range(len(space)):
            if i in waiting[j]:
                waiting[j].discard(i)
                if not waiting[j]:
                    heapq.heappush(ready, (space[j].name, j))
    order += [hp for i, hp in enumerate(space) if waiting[i]]  # none: parents come first in KT
    ordered = keras_tuner.HyperParameters()
    ordered.merge(order)
    ordered.values = dict(hps.values)
    return ordered


class _SearchControl:
    """What kerasnn adds to a KerasTuner oracle: per-trial seeds, the sampling order, and the
    stops (a deadline, a stage's trial count).

    Attributes:
        deadline: `time.time()` after which no new trial starts, or `None`.
        stop_after: the number of trials after which no new trial starts (a stage's end), or
            `None`.
        stopped_by: ``"time_budget"`` once the deadline refused a trial, else `None`.
    """

    deadline: float | None = None
    stop_after: int | None = None
    stopped_by: str | None = None
    reorder = True

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if self.deadline is not None and time.time() >= self.deadline:
            self.stopped_by = "time_budget"
            return {"status": "STOPPED"}
        if self.stop_after is not None and len(self.trials) >= self.stop_after:
            return {"status": "STOPPED"}
        state = self.get_state()
        state["seed_state"] = trial_seed(self.seed, trial_id)
        self.set_state(state)
        if not self.reorder:
            return super().populate_space(trial_id)
        declared = self.hyperparameters
        self.hyperparameters = _sampling_order(declared)
        try:
            return super().populate_space(trial_id)
        finally:
            self.hyperparameters = declared


class _RandomSearchOracle(_SearchControl, keras_tuner.oracles.RandomSearchOracle):
    """`keras_tuner.oracles.RandomSearchOracle` with `_SearchControl`."""


class _GridSearchOracle(_SearchControl, keras_tuner.oracles.GridSearchOracle):
    """`keras_tuner.oracles.GridSearchOracle` with `_SearchControl`. The grid walk itself draws
    nothing (KerasTuner 1.4: it starts from the defaults and steps through the values in the
    declared order), so the seed changes only the trials' weights, shuffles and split."""

    reorder = False


class _HyperbandOracle(_SearchControl, keras_tuner.oracles.HyperbandOracle):
    """`keras_tuner.oracles.HyperbandOracle` with `_SearchControl`: its random draws (each
    bracket's first round) are seeded per trial; promoted trials keep their values."""


class _BayesianOracle(_SearchControl, keras_tuner.oracles.BayesianOptimizationOracle):
    """`keras_tuner.oracles.BayesianOptimizationOracle` with `_SearchControl`: the initial
    random points are seeded per trial; the Gaussian process's restarts draw from the
    oracle's own random state (seeded once from the search seed), so a resumed Bayesian search
    proposes from the same trials but not necessarily the same next configuration."""


def seeded_oracle(
    kind: str,
    *,
    objective: str,
    max_trials: int,
    seed: int,
    max_failures: int,
    max_epochs: int | None = None,
    factor: int = HYPERBAND_FACTOR,
    iterations: int = 1,
    initial_points: int = BAYESIAN_INITIAL_POINTS,
) -> keras_tuner.Oracle:
    """The search's oracle, its seed set exactly.

    Args:
        kind: one of `TUNERS`.
        objective: the metric to optimize (its direction from its name).
        max_trials: the trials of a random, grid or Bayesian search (Hyperband's count comes
            from `max_epochs`, `factor` and `iterations`).
        seed: the search seed, >= 0.
        max_failures: consecutive failed trials that stop the search.
        max_epochs: Hyperband's ``max_epochs`` (the trials' ``fit.epochs``).
        factor: Hyperband's reduction factor. Defaults to 3.
        iterations: Hyperband's ``hyperband_iterations``. Defaults to 1.
        initial_points: Bayesian optimization's random trials before its Gaussian process.
            Defaults to `BAYESIAN_INITIAL_POINTS`.

    Returns:
        The `keras_tuner.Oracle`.
    """
    common = {
        "objective": keras_tuner.Objective(objective, direction(objective)),
        "seed": seed or _ZERO_STAND_IN,
        "max_consecutive_failed_trials": max_failures,
    }
    if kind == "hyperband":
        oracle = _HyperbandOracle(
            max_epochs=max_epochs, factor=factor, hyperband_iterations=iterations, **common
        )
    elif kind == "bayesian":
        oracle = _BayesianOracle(max_trials=max_trials, num_initial_points=initial_points, **common)
    else:
        cls = _GridSearchOracle if kind == "grid" else _RandomSearchOracle
        oracle = cls(max_trials=max_trials, **common)
    state = oracle.get_state()
    state["seed"] = state["seed_state"] = seed
    oracle.set_state(state)
    return oracle


def hyperband_trials(max_epochs: int, factor: int = HYPERBAND_FACTOR, iterations: int = 1) -> dict:
    """What KerasTuner's Hyperband runs: its brackets, trials and epochs.

    KerasTuner 1.4's `HyperbandOracle` (min_epochs 1) plays ``ceil(log_factor(max_epochs))``
    brackets per iteration, the most exploratory first. Bracket b's round r trains
    ``ceil(ceil(1 + log_factor(max_epochs)) / (b + 1) * factor**(b - r))`` configurations up to
    ``ceil(max_epochs / factor**(b - r))`` epochs; a promoted one continues from its previous
    round's epochs. `tests/test_tuning_oracles.py` checks these counts against the oracle.

    Args:
        max_epochs: the most epochs one configuration trains.
        factor: the reduction factor. Defaults to 3.
        iterations: Hyperband iterations. Defaults to 1.

    Returns:
        ``{"brackets": B, "trials": T, "epochs": E, "per_bracket": [{"bracket", "trials",
        "epochs", "rounds": [[size, epochs], ...]}, ...]}`` for all `iterations`; ``epochs``
        counts the epochs actually trained (promoted trials only train the difference).
    """
    brackets, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end = math.ceil(1 + math.log(max_epochs, factor))
    per_bracket = []
    for b in range(brackets - 1, -1, -1):
        rounds = [
            [
                math.ceil(end / (b + 1) * factor ** (b - r)),
                math.ceil(max_epochs / factor ** (b - r)),
            ]
            for r in range(b + 1)
        ]
        trained = sum(
            size * (ep - (rounds[r - 1][1] if r else 0)) for r, (size, ep) in enumerate(rounds)
        )
        per_bracket.append(
            {
                "bracket": b,
                "trials": sum(size for size, _ in rounds),
                "epochs": trained,
                "rounds": rounds,
            }
        )
    return {
        "brackets": brackets,
        "trials": iterations * sum(p["trials"] for p in per_bracket),
        "epochs": iterations * sum(p["epochs"] for p in per_bracket),
        "per_bracket": per_bracket,
    }
