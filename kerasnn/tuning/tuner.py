"""The search engine: random (or grid) search on KerasTuner, made dependable.

KerasTuner's `RandomSearchOracle` / `GridSearchOracle` choose the configurations and keep the
trial state; kerasnn supplies the trial (the kerasnn fit path: seeded build, stratified
validation split, early stopping with best-weight restore, NaN stop), and what surrounds the
search. `run_search` takes any `keras_tuner.HyperModel` whose `build(hp)` returns a compiled
model (and, optionally, `fit_arguments(hp)`), a loaded dataset and `SearchSettings`;
`kerasnn.search` (`kerasnn.recipe.hypermodel`) is the user-facing call that reads a recipe.

- the seed is honoured exactly, 0 included (KerasTuner's oracle turns a falsy seed into a random
  one; kerasnn sets the oracle's seed back through its public `get_state`/`set_state`);
- each trial samples from its own seed, a hash of (search seed, trial id) (`trial_seed`):
  KerasTuner's oracle draws value k of a search from seed + k, so seeds s and s + 1 would
  sample shifted copies of one stream; here different seeds give independent configurations,
  and the same seed the same ones — after a resume too (a trial samples from its own seed,
  whatever ran before). Random search draws a trial's values in an order of its own (parents
  before the entries conditional on them, then by name), so the order a space's keys (or a
  HyperModel's hyperparameters) are declared in does not change what is sampled;
- memory is released between trials: `keras.backend.clear_session`, the trial's entries in
  TensorFlow's gradient registry (which otherwise pin every trial's traced graphs, about 6.5 MB
  a fit; see `kerasnn._graph_memory`) and a garbage collection;
- a failed trial (NaN loss, a sampled combination the builder refuses, out of memory) is
  recorded with its reason and the search goes on; a configuration error stops it before the
  first trial;
- the results table (`kerasnn.tuning.results`) is rebuilt from the trial files after every
  trial and written atomically, so a kill never corrupts it, and ``resume=True`` continues the
  search without redoing finished trials (KerasTuner re-queues the interrupted one);
- the best configuration (or the k best) is retrained and saved as `best.keras`
  (`kerasnn.tuning.ensemble`);
- distributed search uses KerasTuner's own chief/worker oracle (``KERASTUNER_TUNER_ID``,
  ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) over a shared directory.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import heapq
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from kerasnn import _atomic, _graph_memory, _json, training
from kerasnn._validation import positive_int
from kerasnn.datasets import Dataset
from kerasnn.tuning.ensemble import Describe, OnBest, retrain_best
from kerasnn.tuning.results import (
    COMPLETED,
    FAILED,
    PROJECT,
    TRIAL_FILE,
    SearchResult,
    direction,
    load_json,
    plot_results,
    read_trials,
    trial_number,
    write_results,
)

__all__ = [
    "SearchSettings",
    "check_objective",
    "default_objective",
    "run_search",
    "trial_seed",
]

ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
)


def _role() -> str:
    """``"chief"``, ``"worker"`` or ``"local"`` from KerasTuner's environment variables."""
    if ENV_ORACLE_IP not in os.environ:
        return "local"
    return "chief" if "chief" in os.environ.get(ENV_TUNER_ID, "") else "worker"


def default_objective(task: str) -> str:
    """The objective of a search on a `task` dataset: ``val_loss`` for regression, else
    ``val_accuracy``."""
    return "val_loss" if task == "regression" else "val_accuracy"


def check_objective(objective: str, task: str, *, custom_metrics: bool = False) -> None:
    """Checks that the trials of a `task` model report `objective`.

    Args:
        objective: the metric to optimize.
        task: ``"classification"``, ``"binary"`` or ``"regression"``.
        custom_metrics: the models are compiled with metrics of their own (a recipe's
            ``metrics``): their names are checked on the first trial's history instead.
            Defaults to `False`.

    Raises:
        ValueError: `objective` is not a metric the task's default metrics report.
    """
    if custom_metrics:
        return  # custom metric names: checked on the first trial's history
    names = ["loss", *(m.name for m in training.default_metrics(task))]
    allowed = [f"val_{n}" for n in names] + names
    if objective not in allowed:
        raise ValueError(
            "Received an invalid value for argument objective, expected a metric the trials "
            f"report ({', '.join(allowed)}; the val_ ones are measured on the validation "
            f"split). Received: objective={objective!r}"
        )


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """What a search runs, checked when built (before anything is written).

    Args:
        directory: the search folder.
        objective: the metric to optimize, e.g. ``"val_accuracy"`` (maximized) or
            ``"val_loss"`` (minimized).
        name: the search's name, recorded in ``search.json``. Defaults to ``"search"``.
        seed: seeds the sampled configurations (trial n's from `trial_seed(seed, n)`) and
            every trial's weights, shuffles and split; an integer >= 0. Defaults to 0.
        max_trials: number of trials, a positive integer. Defaults to 20.
        max_failures: consecutive failed trials after which the search stops (KerasTuner's
            ``max_consecutive_failed_trials``), a positive integer. Defaults to 5.
        ensemble: how many of the best configurations are retrained into best.keras, a
            positive integer. Defaults to 1.
        grid: grid search (`keras_tuner.oracles.GridSearchOracle`) instead of random search.
            Defaults to `False`.
        resume: continue the interrupted search in `directory`. Defaults to `False`.
        overwrite: delete an earlier search in `directory` first. Defaults to `False`.
        verbose: 1 prints KerasTuner's per-trial table. Defaults to 0.

    Raises:
        ValueError: a seed < 0, or a count that is not a positive integer (0 included).
    """

    directory: Path
    objective: str
    name: str = "search"
    seed: int = 0
    max_trials: int = 20
    max_failures: int = 5
    ensemble: int = 1
    grid: bool = False
    resume: bool = False
    overwrite: bool = False
    verbose: int = 0

    def __post_init__(self) -> None:
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(
                f"Received an invalid value for argument seed, expected an integer >= 0. "
                f"Received: seed={seed!r}"
            )
        positive_int("max_trials", self.max_trials)
        positive_int("max_failures", self.max_failures)
        positive_int("ensemble", self.ensemble)
        object.__setattr__(self, "directory", Path(self.directory))

    @property
    def kind(self) -> str:
        """``"grid"`` or ``"random"``."""
        return "grid" if self.grid else "random"


class _Tuner(keras_tuner.Tuner):
    """A KerasTuner `Tuner` whose trials run through `kerasnn.fit`."""

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        hypermodel: keras_tuner.HyperModel,
        *,
        seed: int,
        fit_arguments: Mapping[str, Any],
        results: Path,
        **kwargs: Any,
    ) -> None:
        self.seed = seed
        self.base_fit_arguments = dict(fit_arguments)
        self.results = results
        self._graphs_before: frozenset[str] | None = None
        super().__init__(oracle, hypermodel, **kwargs)

    def trial_file(self, trial_id: str) -> Path:
        """kerasnn's record of trial `trial_id` (``kerasnn.json`` in its KerasTuner folder)."""
        return Path(self.get_trial_dir(trial_id)) / TRIAL_FILE

    def run_trial(
        self, trial: Any, x: np.ndarray, y: np.ndarray, **_search_options: Any
    ) -> dict[str, float]:
        hp = trial.hyperparameters
        keras.backend.clear_session()
        gc.collect()
        self._graphs_before = _graph_memory.snapshot()
        record: dict[str, Any] = {
            "trial": trial_number(trial.trial_id),
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "started": time.time(),
        }
        with open(Path(self.project_dir) / f"runs-{self.tuner_id}.jsonl", "a") as log:
            log.write(
                _json.dumps(
                    {
                        "trial": record["trial"],
                        "trial_id": trial.trial_id,
                        "started": record["started"],
                    },
                    indent=None,
                )
            )
            log.write("\n")
        start = time.perf_counter()
        objective = self.oracle.objective.name
        try:
            # A HyperModel that does not seed its build (a user's own) starts from the search
            # seed; `kerasnn.fit` below seeds the training itself.
            keras.utils.set_random_seed(self.seed)
            model = self.hypermodel.build(hp)
            arguments = dict(self.base_fit_arguments)
            if hasattr(self.hypermodel, "fit_arguments"):
                arguments |= self.hypermodel.fit_arguments(hp)
            result = training.fit(model, (x, y), seed=self.seed, verbose=0, **arguments)
        except keras_tuner.errors.FatalError:
            raise
        except Exception as err:  # a trial's own failure: recorded, the search goes on
            reason = f"{type(err).__name__}: {err}".strip().splitlines()[0]
            self._finish(record, start, status=FAILED, reason=reason)
            raise keras_tuner.errors.FailedTrialError(reason) from err
        record |= {
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason,
            "best_metrics": result.best_metrics,
        }
        if result.stop_reason == "nan_loss":
            self._finish(record, start, status=FAILED, reason=result.message)
            raise keras_tuner.errors.FailedTrialError(result.message)
        if objective not in result.best_metrics:
            raise keras_tuner.errors.FatalError(
                f"Received an invalid value for argument objective, expected one of the "
                f"metrics the trials report ({', '.join(result.best_metrics)}). "
                f"Received: objective={objective!r}"
            )
        self._finish(record, start, status=COMPLETED, reason=None)
        del model
        return {objective: float(result.best_metrics[objective])}

    def _finish(self, record: dict, start: float, *, status: str, reason: str | None) -> None:
        record |= {"seconds": time.perf_counter() - start, "status": status, "reason": reason}
        _atomic.write_text(self.trial_file(record["trial_id"]), _json.dumps(record) + "\n")

    def on_trial_end(self, trial: Any) -> None:
        try:
            super().on_trial_end(trial)
        except RuntimeError:
            # Too many failed trials in a row: KerasTuner stops before saving the last one.
            trial.save(os.path.join(self.get_trial_dir(trial.trial_id), "trial.json"))
            raise
        finally:
            keras.backend.clear_session()
            _graph_memory.release(self._graphs_before)  # the trial's graphs (TF #97697)
            self._graphs_before = None
            gc.collect()
            write_results(self.results)


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


class _TrialSeeds:
    """Makes a KerasTuner oracle sample each trial from `trial_seed(oracle.seed, trial_id)`.

    KerasTuner's oracles keep one sampling seed for the whole search and add one to it per
    value drawn, so the search seeds s and s + 1 sample shifted copies of one stream.
    `populate_space` (each new trial; a re-queued trial keeps its values) first sets the
    oracle's seed state to the trial's own seed, through the oracle's public state round trip.
    """

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        state = self.get_state()
        state["seed_state"] = trial_seed(self.seed, trial_id)
        self.set_state(state)
        return super().populate_space(trial_id)


def _sampling_order(hps: keras_tuner.HyperParameters) -> keras_tuner.HyperParameters:
    """A copy of `hps` whose space lists every hyperparameter after its conditions' parents,
    otherwise by name (then as declared): the order random search draws a trial's values in,
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


class _RandomSearchOracle(_TrialSeeds, keras_tuner.oracles.RandomSearchOracle):
    """`keras_tuner.oracles.RandomSearchOracle` sampling each trial from `trial_seed`, its
    values drawn in `_sampling_order` (the oracle's space itself keeps the declared order:
    the results table's columns)."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        declared = self.hyperparameters
        self.hyperparameters = _sampling_order(declared)
        try:
            return super().populate_space(trial_id)
        finally:
            self.hyperparameters = declared


class _GridSearchOracle(_TrialSeeds, keras_tuner.oracles.GridSearchOracle):
    """`keras_tuner.oracles.GridSearchOracle` with `trial_seed` set per trial. The grid walk
    itself draws nothing (KerasTuner 1.4: it starts from the defaults and steps through the
    values in order), so the seed changes only the trials' weights, shuffles and split."""


def _seeded_oracle(
    kind: str, *, objective: str, max_trials: int, seed: int, max_failures: int
) -> keras_tuner.Oracle:
    """The search's oracle (``kind``: ``"random"`` or ``"grid"``) with its seed set exactly."""
    cls = _GridSearchOracle if kind == "grid" else _RandomSearchOracle
    oracle = cls(
        objective=keras_tuner.Objective(objective, direction(objective)),
        max_trials=max_trials,
        seed=seed,
        max_consecutive_failed_trials=max_failures,
    )
    # The oracle does `seed or random.randint(1, 10000)`: seed 0 would be random. Its public
    # state round trip sets the seed (the trials' seeds are derived from it) exactly.
    state = oracle.get_state()
    state["seed"] = state["seed_state"] = seed
    oracle.set_state(state)
    return oracle


def run_search(
    hypermodel: keras_tuner.HyperModel,
    data: Dataset,
    settings: SearchSettings,
    *,
    fit: Mapping[str, Any] | None = None,
    metrics: Any = None,
    describe: Describe | None = None,
    on_best: OnBest | None = None,
) -> SearchResult:
    """Runs a random (or grid) search of `hypermodel` and retrains the best configuration.

    Trials see only `data`'s train split (with a stratified validation split taken out by
    `kerasnn.fit`); the test split is used once, for the retrained best model.

    Args:
        hypermodel: a `keras_tuner.HyperModel` whose `build(hp)` returns a compiled model;
            its `fit_arguments(hp)`, when it has one, adds `kerasnn.fit` arguments per trial.
        data: a `kerasnn.datasets.Dataset`.
        settings: the `SearchSettings` (folder, objective, seed, budget…).
        fit: `kerasnn.fit` arguments for every trial (epochs, early_stopping…).
            Defaults to none.
        metrics: the models' compiled metrics when they are not the task's defaults (a
            recipe's ``metrics``): the objective is then checked on the first trial, and an
            ensemble is compiled with them. Defaults to `None` (the task's).
        describe: extra fields for each retrained member's record in best.json (see
            `kerasnn.tuning.ensemble.retrain_best`). Defaults to none.
        on_best: called with the best model and best.json's content before it is written
            (an export, a recipe written beside it). Defaults to none.

    Returns:
        A `SearchResult`. The directory holds `results.csv`, `results.json`, `results.png`,
        `best.keras`, `best.json`, `search.json` and KerasTuner's `tuner/` project.

    Raises:
        ValueError: an objective the trials do not report, or a resumed search run with
            another objective, kind or seed — before the first trial.
        FileExistsError: the directory holds a search and neither `resume` nor `overwrite`.
        FileNotFoundError: `resume` with no search in the directory.
        RuntimeError: too many consecutive failed trials (KerasTuner's limit).
    """
    check_objective(settings.objective, data.task, custom_metrics=metrics is not None)
    out, objective, seed, kind = (
        settings.directory,
        settings.objective,
        settings.seed,
        settings.kind,
    )
    base_fit = dict(fit or {})
    role = _role()

    project = out / PROJECT
    if role != "worker":
        exists = (project / "oracle.json").exists()
        if settings.overwrite and out.exists():
            shutil.rmtree(out)
            exists = False
        if exists and not settings.resume:
            raise FileExistsError(
                f"Received an invalid value for argument directory, expected a folder without "
                f"a search: {out} already holds one. Pass resume=True (CLI: --resume) to "
                f"continue it or overwrite=True (--overwrite) to start again. "
                f"Received: directory={str(out)!r}"
            )
        if settings.resume and not exists:
            raise FileNotFoundError(
                f"Nothing to resume: no search in {out} (expected {project / 'oracle.json'}). "
                "Run without resume to start one."
            )
        if exists:
            meta = load_json(out / "search.json") or {}
            for key, value in (("objective", objective), ("kind", kind), ("seed", seed)):
                if key in meta and meta[key] != value:
                    raise ValueError(
                        f"Received an invalid value for argument {key}, expected the resumed "
                        f"search's {meta[key]!r}. Received: {key}={value!r}"
                    )
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": settings.name,
        "kind": kind,
        "objective": objective,
        "direction": direction(objective),
        "seed": seed,
        "max_trials": settings.max_trials,
    }
    if role != "worker":
        _atomic.write_text(out / "search.json", _json.dumps(meta) + "\n")

    oracle = _seeded_oracle(
        kind,
        objective=objective,
        max_trials=settings.max_trials,
        seed=seed,
        max_failures=settings.max_failures,
    )
    tuner = _Tuner(
        oracle,
        hypermodel,
        seed=seed,
        fit_arguments=base_fit,
        results=out,
        directory=str(out),
        project_name=PROJECT,
        overwrite=False,
    )
    tuner.search(data.x_train, data.y_train, verbose=settings.verbose)
    rows = write_results(out, objective)
    if role == "worker":
        return SearchResult(out, objective, direction(objective), rows, None, role)

    trials, specs = read_trials(out)
    if trials:
        plot_results(trials, specs, objective, out / "results.png")
    with _graph_memory.releasing():  # the retrained models are saved, then discarded
        best = retrain_best(
            tuner,
            hypermodel,
            data,
            out,
            seed=seed,
            objective=objective,
            base_fit=base_fit,
            ensemble=settings.ensemble,
            metrics=metrics,
            describe=describe,
            on_best=on_best,
        )
    return SearchResult(out, objective, direction(objective), rows, best, role)
