"""The search engine: KerasTuner's random, grid, Hyperband and Bayesian search, made dependable.

KerasTuner's oracles (`kerasnn.tuning.oracles`) choose the configurations and keep the trial
state; kerasnn supplies the trial (the kerasnn fit path: seeded build, stratified validation
split or K stratified folds, early stopping with best-weight restore, NaN stop, a resumable run
folder per fit: `kerasnn.tuning.trial_run`), and what surrounds the search. `run_search` takes
any `keras_tuner.HyperModel` whose `build(hp)` returns a compiled model (and, optionally,
`fit_arguments(hp)`), a loaded dataset and `SearchSettings`; `kerasnn.search`
(`kerasnn.recipe.hypermodel`) is the user-facing call that reads a recipe.

- the seed is honoured exactly and different seeds sample independent configurations
  (`kerasnn.tuning.oracles`);
- a time budget stops the search: no new trial starts once it is spent, and the running one
  stops at its next epoch boundary (stop reason ``time_budget``); a resumed search gets what
  was left of it;
- coarse-to-fine (`Refine`): a second stage samples narrowed ranges around the first stage's
  best (`kerasnn.tuning.refine`), decided on validation/CV scores; ``stage`` in the table;
- memory is released between trials: `keras.backend.clear_session`, the trial's entries in
  TensorFlow's gradient registry (which otherwise pin every trial's traced graphs, about 6.5 MB
  a fit; see `kerasnn._graph_memory`) and a garbage collection;
- a failed trial (NaN loss, a sampled combination the builder refuses, out of memory) is
  recorded with its reason and the search goes on; a configuration error stops it before the
  first trial;
- the results table (`kerasnn.tuning.results`) is rebuilt from the trial files after every
  trial and written atomically, so a kill never corrupts it, and ``resume=True`` continues the
  search without redoing finished trials; KerasTuner re-queues the interrupted one, which
  continues from its last completed epoch;
- one line per trial and per retrained member (`kerasnn.tuning.progress`), and with
  ``tensorboard`` the HParams dashboard (`kerasnn.tuning.hparams_board`);
- the best configuration (or the k best) is retrained, or taken as its trial trained it
  (``retrain=False``), and saved as `best.keras` (`kerasnn.tuning.ensemble`);
- distributed search uses KerasTuner's own chief/worker oracle (``KERASTUNER_TUNER_ID``,
  ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) over a shared directory.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from kerasnn import _atomic, _graph_memory, _json, training
from kerasnn.datasets import Dataset
from kerasnn.tuning.budget import SearchClock, check_folder
from kerasnn.tuning.ensemble import (
    Describe,
    OnBest,
    ranked_trials,
    retrain_best,
    trial_arguments,
)
from kerasnn.tuning.oracles import hyperband_trials, seeded_oracle, trial_seed
from kerasnn.tuning.progress import format_values, trial_line
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
from kerasnn.tuning.settings import Refine, SearchSettings
from kerasnn.tuning.trial_run import cv_folds, fit_trial

__all__ = [
    "Refine",
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


class _Tuner(keras_tuner.Tuner):
    """A KerasTuner `Tuner` whose trials run through `kerasnn.fit` (`fit_trial`)."""

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        hypermodel: keras_tuner.HyperModel,
        *,
        settings: SearchSettings,
        fit_arguments: Mapping[str, Any],
        folds: list | None,
        board: Any = None,
        **kwargs: Any,
    ) -> None:
        self.settings = settings
        self.seed = settings.seed
        self.base_fit_arguments = dict(fit_arguments)
        self.results = settings.directory
        self.folds = folds
        self.board = board
        self.stage = 1
        self.total: int | str = settings.max_trials
        self.clock = SearchClock(settings)
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
            "stage": self.stage,
            "started": time.time(),
        }
        with open(Path(self.project_dir) / f"runs-{self.tuner_id}.jsonl", "a") as log:
            fields = ("trial", "trial_id", "stage", "started")
            log.write(_json.dumps({k: record[k] for k in fields}, indent=None) + "\n")
        start = time.perf_counter()
        objective = self.oracle.objective.name
        try:
            arguments = trial_arguments(self.hypermodel, hp, self.base_fit_arguments)
            warm, initial = self._hyperband_start(hp, arguments, record)

            def build() -> keras.Model:
                # A HyperModel that does not seed its build (a user's own) starts from the
                # search seed; `kerasnn.fit` seeds the training itself.
                keras.utils.set_random_seed(self.seed)
                return self.hypermodel.build(hp)

            callbacks = []
            if self.board is not None:
                callbacks = self.board.trial_callbacks(record["trial"], _active(hp))
            fits = fit_trial(
                build,
                x,
                y,
                trial_dir=Path(self.get_trial_dir(trial.trial_id)),
                arguments=arguments,
                seed=self.seed,
                objective=objective,
                folds=self.folds,
                deadline=self.clock.deadline,
                callbacks=callbacks,
                warm_start=warm,
                initial_epoch=initial,
            )
        except keras_tuner.errors.FatalError:
            raise
        except Exception as err:  # a trial's own failure: recorded, the search goes on
            reason = f"{type(err).__name__}: {err}".strip().splitlines()[0]
            self._finish(record, start, status=FAILED, reason=reason)
            raise keras_tuner.errors.FailedTrialError(reason) from err
        record |= {
            "epochs": fits.epochs,
            "best_epoch": fits.best_epoch,
            "stop_reason": fits.stop_reason,
            "best_metrics": fits.best_metrics,
        }
        if fits.folds is not None:
            record["folds"] = fits.folds
        if fits.resumed_epochs:
            record["resumed_epochs"] = fits.resumed_epochs
        if fits.stop_reason == "nan_loss":
            self._finish(record, start, status=FAILED, reason=fits.message)
            raise keras_tuner.errors.FailedTrialError(fits.message)
        if objective not in fits.best_metrics:
            raise keras_tuner.errors.FatalError(
                f"Received an invalid value for argument objective, expected one of the "
                f"metrics the trials report ({', '.join(fits.best_metrics)}). "
                f"Received: objective={objective!r}"
            )
        self._finish(record, start, status=COMPLETED, reason=None)
        return {objective: float(fits.best_metrics[objective])}

    def _hyperband_start(
        self, hp: Any, arguments: dict[str, Any], record: dict[str, Any]
    ) -> tuple[Path | None, int]:
        """A Hyperband trial's epochs (``tuner/epochs`` in all, from ``tuner/initial_epoch``)
        and the folder of the trial it continues (``tuner/trial_id``), if any."""
        values = hp.values
        if "tuner/epochs" not in values:
            return None, 0
        initial = int(values.get("tuner/initial_epoch", 0))
        arguments["epochs"] = int(values["tuner/epochs"]) - initial
        past = values.get("tuner/trial_id")
        record |= {"bracket": values.get("tuner/bracket"), "round": values.get("tuner/round")}
        if past is None:
            return None, 0
        record["continues"] = trial_number(past)
        return Path(self.get_trial_dir(past)), initial

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
            rows = write_results(self.results)
            if _role() != "worker":
                self.clock.save(self.results)
            self._report(trial, rows)

    def _report(self, trial: Any, rows: list[dict]) -> None:
        """The trial's progress line (``verbose=1``) and its objective on the dashboard."""
        objective = self.oracle.objective.name
        row = next((r for r in rows if r["trial_id"] == trial.trial_id), None)
        if row is None:
            return
        score = row.get(objective)
        if self.board is not None:
            self.board.write_objective(row["trial"], score, status=row["status"])
        if not self.settings.verbose:
            return
        done = [r for r in rows if r["status"] == COMPLETED and r.get(objective) is not None]
        pick = max if direction(objective) == "max" else min
        best = pick(done, key=lambda r: r[objective]) if done else None
        line = trial_line(
            {
                **row,
                "score": score,
                "folds": [v for k, v in row.items() if k[:4] == "fold" and k[4:].isdigit()],
                "config": format_values(_active(trial.hyperparameters)),
            },
            total=self.total,
            objective=objective,
            best=None if best is None else {"score": best[objective], "trial": best["trial"]},
            budget_left=self.clock.left(),
        )
        print(line, flush=True)


def _active(hp: keras_tuner.HyperParameters) -> dict[str, Any]:
    """A trial's active values, in the space's order (KerasTuner's bookkeeping left out)."""
    return {
        p.name: hp.values[p.name]
        for p in hp.space
        if p.name in hp.values and hp.is_active(p) and not p.name.startswith("tuner/")
    }


def _max_epochs(hypermodel: keras_tuner.HyperModel, base_fit: Mapping[str, Any]) -> int:
    """The trials' epochs (Hyperband's ``max_epochs``): the HyperModel's `fit_arguments` at
    the space's defaults, else `base_fit`'s, else `kerasnn.fit`'s default (100)."""
    arguments = dict(base_fit)
    if hasattr(hypermodel, "fit_arguments"):
        arguments |= hypermodel.fit_arguments(keras_tuner.HyperParameters())
    return int(arguments.get("epochs", 100))


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
    """Runs a search of `hypermodel` and retrains the best configuration(s).

    Trials see only `data`'s train split (with a stratified validation split taken out by
    `kerasnn.fit`, or K stratified folds of it); the test split is used once, for the
    retrained best model.

    Args:
        hypermodel: a `keras_tuner.HyperModel` whose `build(hp)` returns a compiled model;
            its `fit_arguments(hp)`, when it has one, adds `kerasnn.fit` arguments per trial.
        data: a `kerasnn.datasets.Dataset`.
        settings: the `SearchSettings` (folder, objective, seed, tuner, budget…).
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
        ValueError: an objective the trials do not report, more folds than the smallest
            class, refine in a distributed search, or a resumed search run with another
            objective, tuner, seed, cv or refine — before the first trial.
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
    if role != "local" and settings.refine is not None:
        raise ValueError(
            "Received an invalid value for argument refine, expected it in a search on one "
            "machine (a chief serves one stage to its workers). Received: refine with "
            f"{role} role"
        )
    folds = None
    if settings.cv is not None:
        folds = cv_folds(data.y_train, settings.cv, seed=seed, task=data.task)
    meta: dict[str, Any] = {}
    if role != "worker":
        meta = check_folder(settings)
    out.mkdir(parents=True, exist_ok=True)
    refine = settings.refine
    first = settings.max_trials
    second = refine.stage_trials(first) if refine is not None else 0
    max_epochs = _max_epochs(hypermodel, base_fit)
    plan = None
    if kind == "hyperband":
        plan = hyperband_trials(
            max_epochs, settings.hyperband_factor, settings.hyperband_iterations
        )
    meta |= {
        "name": settings.name,
        "kind": kind,
        "objective": objective,
        "direction": direction(objective),
        "seed": seed,
        "max_trials": plan["trials"] if plan else first + second,
        "time_budget": settings.time_budget,
        "cv": settings.cv,
        "refine": refine is not None,
    }
    if plan is not None:
        meta["hyperband"] = {
            "max_epochs": max_epochs,
            "factor": settings.hyperband_factor,
            "iterations": settings.hyperband_iterations,
            "brackets": plan["brackets"],
            "trials": plan["trials"],
            "epochs": plan["epochs"],
        }
    if role != "worker":
        _atomic.write_text(out / "search.json", _json.dumps(meta) + "\n")
    if settings.verbose and plan is not None:
        print(
            f"hyperband: max_epochs {max_epochs} (fit.epochs), factor "
            f"{settings.hyperband_factor}, {settings.hyperband_iterations} iteration(s): "
            f"{plan['brackets']} brackets, {plan['trials']} trials, {plan['epochs']} epochs "
            "in all" + (" (the time budget may end it first)" if settings.time_budget else ""),
            flush=True,
        )

    oracle = seeded_oracle(
        kind,
        objective=objective,
        max_trials=first + second,
        seed=seed,
        max_failures=settings.max_failures,
        max_epochs=max_epochs,
        factor=settings.hyperband_factor,
        iterations=settings.hyperband_iterations,
        initial_points=settings.initial_points,
    )
    board = None
    if settings.tensorboard is not None:
        from kerasnn.tuning.hparams_board import HParamsBoard

        board = HParamsBoard(settings.tensorboard, objective=objective)
    tuner = _Tuner(
        oracle,
        hypermodel,
        settings=settings,
        fit_arguments=base_fit,
        folds=folds,
        board=board,
        directory=str(out),
        project_name=PROJECT,
        overwrite=False,
    )
    tuner.total = meta["max_trials"]
    oracle.deadline = tuner.clock.deadline
    search_start = time.perf_counter()
    if refine is None:
        _stage(tuner, data, board, stop_after=None)
    else:
        if meta.get("stage", 1) == 1:
            if tuner.clock.budget is not None:
                oracle.deadline = tuner.clock.started + (
                    tuner.clock.budget * (1 - refine.budget_share) - tuner.clock.spent_before
                )
            _stage(tuner, data, board, stop_after=first)
            oracle.deadline = tuner.clock.deadline
            meta |= _narrow(tuner, refine, objective)
            _atomic.write_text(out / "search.json", _json.dumps(meta | _spent(out)) + "\n")
        oracle.deadline, oracle.stopped_by = tuner.clock.deadline, None
        tuner.stage = 2
        _stage(tuner, data, board, stop_after=first + second)
    search_seconds = time.perf_counter() - search_start
    stopped_by = oracle.stopped_by or (
        "time_budget" if tuner.clock.left() is not None and tuner.clock.left() <= 0 else None
    )
    meta = (load_json(out / "search.json") or meta) | {"stopped_by": stopped_by}
    if role != "worker":
        _atomic.write_text(out / "search.json", _json.dumps(meta) + "\n")
    rows = write_results(out, objective)
    if role == "worker":
        return SearchResult(out, objective, direction(objective), rows, None, role)

    trials, specs = read_trials(out)
    if trials:
        plot_results(trials, specs, objective, out / "results.png")
    retrain_start = time.perf_counter()
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
            retrain=settings.retrain,
            metrics=metrics,
            describe=describe,
            on_best=on_best,
            verbose=settings.verbose,
        )
    return SearchResult(
        out,
        objective,
        direction(objective),
        rows,
        best,
        role,
        tuner=kind,
        stopped_by=stopped_by,
        time_budget=settings.time_budget,
        search_seconds=search_seconds,
        retrain_seconds=time.perf_counter() - retrain_start,
    )


def _spent(out: Path) -> dict[str, Any]:
    meta = load_json(out / "search.json") or {}
    return {"trial_seconds": meta["trial_seconds"]} if "trial_seconds" in meta else {}


def _stage(tuner: _Tuner, data: Dataset, board: Any, *, stop_after: int | None) -> None:
    """Runs trials until the oracle stops (its trials, `stop_after`, the deadline)."""
    tuner.oracle.stop_after = stop_after
    if board is not None:
        board.write_experiment(tuner.oracle.get_space(), _board_metrics(tuner, data))
    tuner.search(data.x_train, data.y_train, verbose=0)


def _board_metrics(tuner: _Tuner, data: Dataset) -> list[str]:
    names = ["loss", *(m.name for m in training.default_metrics(data.task))]
    return [*names, *(f"val_{n}" for n in names)]


def _narrow(tuner: _Tuner, refine: Refine, objective: str) -> dict[str, Any]:
    """Narrows the oracle's space around the first stage's `refine.top` best trials; returns
    what search.json records of it (the trials it used and the ranges before and after)."""
    from kerasnn.tuning.refine import describe_narrowing, narrowed_space

    first = ranked_trials(tuner, objective)[: refine.top]  # only first-stage trials so far
    if not first:
        raise RuntimeError(
            "Coarse-to-fine search stopped after its first stage: no trial completed, so "
            "there is nothing to narrow the ranges around."
        )
    before = tuner.oracle.hyperparameters
    after = narrowed_space(
        before, [dict(t.hyperparameters.values) for t in first], margin=refine.margin
    )
    tuner.oracle.hyperparameters = after
    tuner.oracle.save()
    return {
        "stage": 2,
        "refined_around": [trial_number(t.trial_id) for t in first],
        "refined": describe_narrowing(before, after),
    }
