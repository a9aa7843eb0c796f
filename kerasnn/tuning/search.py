"""`kerasnn.search`: random (or grid) hyperparameter search on KerasTuner, made dependable.

KerasTuner's `RandomSearchOracle` / `GridSearchOracle` choose the configurations and keep the
trial state; kerasnn supplies the trial (the kerasnn fit path: seeded build, stratified
validation split, early stopping with best-weight restore, NaN stop), and what surrounds the
search:

- the seed is honoured exactly, 0 included (KerasTuner's oracle turns a falsy seed into a random
  one; kerasnn sets the oracle's seed back through its public `get_state`/`set_state`);
- each trial samples from its own seed, a hash of (search seed, trial number) (`trial_seed`):
  KerasTuner's oracle draws value k of a search from seed + k, so seeds s and s + 1 would
  sample shifted copies of one stream; here different seeds give independent configurations,
  and the same seed the same ones — after a resume too (trial n samples from its own seed,
  whatever ran before). Random search draws a trial's values in an order of its own (parents
  before the entries conditional on them, then by name), so the order a space's keys (or a
  HyperModel's hyperparameters) are declared in does not change what is sampled;
- memory is released between trials: `keras.backend.clear_session`, the trial's entries in
  TensorFlow's gradient registry (which otherwise pin every trial's traced graphs, about 6.5 MB
  a fit; see `kerasnn._graph_memory`) and a garbage collection;
- a failed trial (NaN loss, a sampled combination the builder refuses, out of memory) is
  recorded with its reason and the search goes on; a configuration error stops it before the
  first trial;
- the results table (`results.csv`, `results.json`) is rebuilt from the trial files after every
  trial and written atomically, so a kill never corrupts it, and `resume=True` continues the
  search without redoing finished trials (KerasTuner re-queues the interrupted one);
- `results.png` plots the objective against each hyperparameter (log axes for log-sampled
  ones); the best configuration is retrained on train+validation, evaluated on the test split
  and saved as `best.keras`, with `best.json` and a trainable `best_recipe.yaml`; with
  ``ensemble=k`` the k best configurations (by the objective, never by the test split) are
  each retrained and `best.keras` is their average (`ensemble_model`);
- distributed search uses KerasTuner's own chief/worker oracle (``KERASTUNER_TUNER_ID``,
  ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) over a shared directory.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import glob
import hashlib
import heapq
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from kerasnn import _graph_memory, _json, training
from kerasnn._validation import positive_int
from kerasnn.datasets import Dataset
from kerasnn.recipe import Recipe
from kerasnn.tuning.spaces import RecipeHyperModel, search_settings

PROJECT = "tuner"  # KerasTuner's project folder inside the search directory
TRIAL_FILE = "kerasnn.json"  # what kerasnn adds to KerasTuner's trial folder
COMPLETED, FAILED = "COMPLETED", "FAILED"
_MAXIMIZED = ("accuracy", "auc", "precision", "recall", "f1", "r2")
ENV_TUNER_ID, ENV_ORACLE_IP, ENV_ORACLE_PORT = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    """Writes `text` to a temporary sibling, then renames it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _role() -> str:
    """``"chief"``, ``"worker"`` or ``"local"`` from KerasTuner's environment variables."""
    if ENV_ORACLE_IP not in os.environ:
        return "local"
    return "chief" if "chief" in os.environ.get(ENV_TUNER_ID, "") else "worker"


def direction(objective: str) -> str:
    """``"max"`` for accuracy-like metrics (accuracy, auc…), else ``"min"``."""
    return "max" if any(objective.endswith(k) for k in _MAXIMIZED) else "min"


def _default_objective(task: str) -> str:
    return "val_loss" if task == "regression" else "val_accuracy"


def _check_objective(objective: str, task: str, recipe: Recipe | None) -> None:
    if recipe is not None and recipe.metrics is not None:
        return  # custom metric names: checked on the first trial's history
    names = ["loss", *(m.name for m in training.default_metrics(task))]
    allowed = [f"val_{n}" for n in names] + names
    if objective not in allowed:
        raise ValueError(
            "Received an invalid value for argument objective, expected a metric the trials "
            f"report ({', '.join(allowed)}; the val_ ones are measured on the validation "
            f"split). Received: objective={objective!r}"
        )


# --------------------------------------------------------------------------------------------
# the tuner
# --------------------------------------------------------------------------------------------
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

    def _trial_file(self, trial_id: str) -> Path:
        return Path(self.get_trial_dir(trial_id)) / TRIAL_FILE

    def run_trial(
        self, trial: Any, x: np.ndarray, y: np.ndarray, **_search_options: Any
    ) -> dict[str, float]:
        hp = trial.hyperparameters
        keras.backend.clear_session()
        gc.collect()
        self._graphs_before = _graph_memory.snapshot()
        record: dict[str, Any] = {
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "started": time.time(),
        }
        with open(Path(self.project_dir) / f"runs-{self.tuner_id}.jsonl", "a") as log:
            log.write(
                _json.dumps({"trial_id": trial.trial_id, "started": record["started"]}, indent=None)
            )
            log.write("\n")
        start = time.perf_counter()
        objective = self.oracle.objective.name
        try:
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
        _write_atomic(self._trial_file(record["trial_id"]), _json.dumps(record) + "\n")

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


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def _load_json(path: str) -> dict | None:
    try:
        return _json.read(path)
    except (OSError, json.JSONDecodeError):
        return None  # a file being written by another process: picked up next time


def read_trials(directory: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """Every trial of a search directory, in trial order, and the hyperparameter specs.

    Returns:
        ``(rows, specs)``: one row per trial (``trial_id``, ``status``, ``score``, each
        hyperparameter, ``epochs``, ``best_epoch``, ``seconds``, ``stop_reason``,
        ``tuner_id``, ``reason``) and ``{name: {"log": bool, "numeric": bool}}``.
    """
    project = Path(directory) / PROJECT
    rows, specs = [], {}
    for path in sorted(glob.glob(str(project / "trial_*" / "trial.json"))):
        trial = _load_json(path)
        if trial is None:
            continue
        extra = _load_json(os.path.join(os.path.dirname(path), TRIAL_FILE)) or {}
        for hp in trial["hyperparameters"]["space"]:
            config = hp["config"]
            numeric = hp["class_name"] in ("Int", "Float") or (
                hp["class_name"] == "Choice"
                and all(
                    isinstance(v, int | float) and not isinstance(v, bool)
                    for v in config.get("values", [])
                )
            )
            specs.setdefault(
                config["name"], {"log": config.get("sampling") == "log", "numeric": numeric}
            )
        reason = extra.get("reason")
        if reason is None and trial.get("message"):
            reason = trial["message"].strip().splitlines()[-1]
        status = trial["status"]
        if status == "INVALID":
            status = FAILED
        row = {
            "trial_id": trial["trial_id"],
            "status": status,
            "score": trial.get("score") if status == COMPLETED else None,
            **trial["hyperparameters"]["values"],
            "epochs": extra.get("epochs"),
            "best_epoch": extra.get("best_epoch"),
            "seconds": extra.get("seconds"),
            "stop_reason": extra.get("stop_reason"),
            "tuner_id": extra.get("tuner_id"),
            "reason": reason if status != COMPLETED else None,
        }
        rows.append(row)
    return rows, specs


def write_results(directory: str | os.PathLike, objective: str | None = None) -> list[dict]:
    """Rebuilds `results.csv` and `results.json` from the trial files (atomic writes).

    Returns:
        The trials as written to results.json (the score under the objective's name).
    """
    directory = Path(directory)
    rows, specs = read_trials(directory)
    meta = _load_json(str(directory / "search.json")) or {}
    objective = objective or meta.get("objective", "score")
    hp_names = list(specs)
    columns = [
        "trial_id",
        "status",
        objective,
        *hp_names,
        "epochs",
        "best_epoch",
        "seconds",
        "stop_reason",
        "tuner_id",
        "reason",
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, objective: row["score"]})
    _write_atomic(directory / "results.csv", out.getvalue())
    table = {
        "objective": objective,
        "direction": meta.get("direction"),
        "hyperparameters": specs,
        "trials": [
            {**{k: v for k, v in row.items() if k != "score"}, objective: row["score"]}
            for row in rows
        ],
    }
    _write_atomic(directory / "results.json", _json.dumps(table) + "\n")
    return table["trials"]


def plot_results(
    rows: list[dict], specs: Mapping[str, Mapping[str, bool]], objective: str, path: os.PathLike
) -> Any:
    """`results.png`: the objective of each completed trial against each hyperparameter.

    Log-sampled hyperparameters get a log x axis; choices of strings/booleans are placed at
    their option's position. Failed trials are counted in the title.

    Returns:
        The matplotlib `Figure` (closed after saving).
    """
    import matplotlib.pyplot as plt

    from kerasnn import plots  # noqa: F401  (selects matplotlib's Agg backend)

    done = [r for r in rows if r["status"] == COMPLETED and r["score"] is not None]
    names = list(specs)
    cols = min(4, max(1, len(names)))
    nrows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
    best = None
    if done:
        pick = max if direction(objective) == "max" else min
        best = pick(done, key=lambda r: r["score"])
    for ax, name in zip(axes.flat, names, strict=False):
        points = [(r[name], r["score"]) for r in done if r.get(name) is not None]
        spec = specs[name]
        if spec["numeric"]:
            xs = [float(p[0]) for p in points]
            ax.scatter(xs, [p[1] for p in points], s=18, alpha=0.75)
            if spec["log"]:
                ax.set_xscale("log")
            if best is not None and best.get(name) is not None:
                ax.scatter([float(best[name])], [best["score"]], s=60, marker="*", c="red")
        else:
            labels = sorted({str(p[0]) for p in points})
            index = {label: i for i, label in enumerate(labels)}
            ax.scatter([index[str(p[0])] for p in points], [p[1] for p in points], s=18, alpha=0.75)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
            if best is not None and best.get(name) is not None:
                ax.scatter([index[str(best[name])]], [best["score"]], s=60, marker="*", c="red")
        ax.set_xlabel(name + (" (log)" if spec["log"] else ""))
        ax.set_ylabel(objective)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    failed = sum(r["status"] == FAILED for r in rows)
    fig.suptitle(f"{len(done)} completed trials, {failed} failed (red star: best)")
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return fig


# --------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SearchResult:
    """What `search` returns.

    Attributes:
        directory: the search folder (results.csv/json/png, best.keras, tuner/).
        objective: the metric the search optimized, and `direction` (``"max"``/``"min"``).
        trials: the results table, one dict per trial.
        best: `best.json`'s content (best trial, hyperparameters, validation score, test
            metrics after retraining; ``members``: one record per retrained configuration,
            several with ``ensemble``), or `None` (no completed trial, or a worker).
        role: ``"local"``, ``"chief"`` or ``"worker"``.
    """

    directory: Path
    objective: str
    direction: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    role: str

    @property
    def completed(self) -> int:
        return sum(t["status"] == COMPLETED for t in self.trials)

    @property
    def failed(self) -> int:
        return sum(t["status"] == FAILED for t in self.trials)

    def summary(self) -> str:
        line = f"{self.completed} trials completed, {self.failed} failed"
        if self.best is not None:
            test = ", ".join(f"{k} {v:.4f}" for k, v in self.best["test_metrics"].items())
            members = self.best.get("members") or []
            what = "retrained on train+validation"
            if len(members) > 1:
                what = f"averaged with the next {len(members) - 1} best (each {what})"
            line += (
                f"; best trial {self.best['trial_id']} {self.objective} "
                f"{self.best['score']:.4f}, {what} -> test: {test}"
            )
        return f"{line} | {self.directory}"


def trial_seed(seed: int, trial_id: str | int) -> int:
    """The seed trial `trial_id` of a search with seed `seed` samples its configuration from.

    The first 62 bits of SHA-256 of ``"kerasnn.search:<seed>:<trial number>"``: the streams of
    different search seeds are independent, and a trial's configuration depends only on the
    search seed and its number (KerasTuner's oracle then draws the trial's k-th value from
    this seed + k, and retries a configuration already tried from where it stopped).

    Args:
        seed: the search seed, an integer >= 0.
        trial_id: the trial's id (KerasTuner's zero-padded trial number, e.g. ``"07"``).

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
    grid: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    max_failures: int | None = None,
    ensemble: int | None = None,
    verbose: int = 0,
) -> SearchResult:
    """Runs a random (or grid) hyperparameter search and retrains the best configuration.

    Args:
        recipe_or_hypermodel: a `kerasnn.Recipe` (or the path of a YAML recipe) whose
            ``search:`` block (or `space`) says what to sample, or a `keras_tuner.HyperModel`
            (e.g. `kerasnn.tuning.MLPHyperModel`) whose `build(hp)` returns a compiled model.
        data: a `kerasnn.datasets.Dataset`. Required with a plain HyperModel; defaults to the
            recipe's data. Trials see only its train split (with a stratified validation split
            taken out by `kerasnn.fit`); the test split is used once, for the best model.
        max_trials: number of trials. Defaults to the recipe's ``search.trials``, else 20.
        objective: the metric to optimize, e.g. ``"val_accuracy"`` (maximized) or
            ``"val_loss"`` (minimized). Defaults to ``search.objective``, else val_accuracy
            (classification) or val_loss (regression).
        seed: seeds the sampled configurations (trial n's from `trial_seed(seed, n)`:
            different seeds sample independent configurations) and every trial's weights,
            shuffles and split; 0 is a seed like any other. Defaults to the recipe's seed (0).
        directory: the search folder. Defaults to ``runs/<name>-search``
            (``-grid`` for grid search).
        space: a space mapping, a `SearchSpace` or ``"default"``; overrides the recipe's.
        fit: `kerasnn.fit` arguments for every trial (epochs, early_stopping…), on top of the
            recipe's. Defaults to none.
        grid: grid search (`keras_tuner.oracles.GridSearchOracle`) with the same budget
            instead of random search, for the lectures' comparison. Defaults to `False`.
        resume: continue the interrupted search in `directory`: finished trials are kept, the
            interrupted one is run again. Defaults to `False`.
        overwrite: delete an earlier search in `directory` first. Defaults to `False`.
        max_failures: consecutive failed trials after which the search stops (KerasTuner's
            ``max_consecutive_failed_trials``). Defaults to ``search.max_failures``, else 5.
        ensemble: how many of the best configurations (ranked by the objective on the
            validation split) are retrained on train+validation; with more than one,
            `best.keras` is `ensemble_model` of them (their outputs averaged) and `best.json`
            lists each member. Fewer are used when fewer trials completed. Defaults to
            ``search.ensemble``, else 1 (the best configuration alone).
        verbose: 1 prints KerasTuner's per-trial table. Defaults to 0.

    Returns:
        A `SearchResult`. The directory holds `results.csv`, `results.json`, `results.png`,
        `best.keras`, `best.json`, `best_recipe.yaml` (recipes only; the best configuration
        alone), `search.json` and KerasTuner's `tuner/` project.

    Raises:
        ValueError: an invalid space, objective or argument, before the first trial.
        FileExistsError: `directory` holds a search and neither `resume` nor `overwrite`.
        FileNotFoundError: `resume` with no search in `directory`.
        RuntimeError: too many consecutive failed trials (KerasTuner's limit).
    """
    recipe: Recipe | None = None
    if isinstance(recipe_or_hypermodel, str | os.PathLike):
        recipe_or_hypermodel = Recipe.from_yaml(recipe_or_hypermodel)
    settings: dict[str, Any] = {}
    if isinstance(recipe_or_hypermodel, Recipe):
        recipe = recipe_or_hypermodel.resolved()
        settings = search_settings(recipe)
        hypermodel = RecipeHyperModel(
            recipe, data, space if space is not None else settings["space"]
        )
        data = hypermodel.data
        name, task = recipe.name, data.task
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
        recipe = getattr(hypermodel, "recipe", None)
        name, task = hypermodel.name or data.name, data.task
        seed = 0 if seed is None else seed
    else:
        raise TypeError(
            "Received an invalid value for argument recipe_or_hypermodel, expected a "
            "kerasnn Recipe, a recipe path or a keras_tuner.HyperModel. "
            f"Received: recipe_or_hypermodel of type {type(recipe_or_hypermodel)}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"Received an invalid value for argument seed, expected an integer >= 0. "
            f"Received: seed={seed!r}"
        )
    max_trials = positive_int("max_trials", max_trials or settings.get("trials") or 20)
    max_failures = positive_int("max_failures", max_failures or settings.get("max_failures") or 5)
    if ensemble is None:
        ensemble = settings.get("ensemble") or 1
    ensemble = positive_int("ensemble", ensemble)
    objective = objective or settings.get("objective") or _default_objective(task)
    _check_objective(objective, task, recipe)
    base_fit = dict(fit or {})
    kind = "grid" if grid else "random"
    suffix = "grid" if grid else "search"
    out = Path(directory) if directory is not None else Path("runs") / f"{name}-{suffix}"
    role = _role()

    project = out / PROJECT
    if role != "worker":
        exists = (project / "oracle.json").exists()
        if overwrite and out.exists():
            shutil.rmtree(out)
            exists = False
        if exists and not resume:
            raise FileExistsError(
                f"Received an invalid value for argument directory, expected a folder without "
                f"a search: {out} already holds one. Pass resume=True (CLI: --resume) to "
                f"continue it or overwrite=True (--overwrite) to start again. "
                f"Received: directory={str(out)!r}"
            )
        if resume and not exists:
            raise FileNotFoundError(
                f"Nothing to resume: no search in {out} (expected {project / 'oracle.json'}). "
                "Run without resume to start one."
            )
        if exists:
            meta = _load_json(str(out / "search.json")) or {}
            for key, value in (("objective", objective), ("kind", kind), ("seed", seed)):
                if key in meta and meta[key] != value:
                    raise ValueError(
                        f"Received an invalid value for argument {key}, expected the resumed "
                        f"search's {meta[key]!r}. Received: {key}={value!r}"
                    )
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": name,
        "kind": kind,
        "objective": objective,
        "direction": direction(objective),
        "seed": seed,
        "max_trials": max_trials,
    }
    if role != "worker":
        _write_atomic(out / "search.json", _json.dumps(meta) + "\n")

    oracle = _seeded_oracle(
        kind, objective=objective, max_trials=max_trials, seed=seed, max_failures=max_failures
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
    tuner.search(data.x_train, data.y_train, verbose=verbose)
    if role == "worker":
        rows = write_results(out, objective)
        return SearchResult(out, objective, direction(objective), rows, None, role)

    rows = write_results(out, objective)
    trials, specs = read_trials(out)
    if trials:
        plot_results(trials, specs, objective, out / "results.png")
    with _graph_memory.releasing():  # the retrained models are saved, then discarded
        best = _retrain_best(
            tuner,
            hypermodel,
            data,
            out,
            seed=seed,
            objective=objective,
            base_fit=base_fit,
            ensemble=ensemble,
        )
    return SearchResult(out, objective, direction(objective), rows, best, role)


def ensemble_model(
    members: list[keras.Model], *, task: str, loss: Any = None, metrics: Any = None
) -> keras.Model:
    """One model averaging the outputs of trained `members` (a deep ensemble).

    Each member becomes a nested model named ``member_1``, ``member_2``… of a functional model
    whose output is `keras.layers.Average` of theirs (the mean of the softmax/sigmoid
    probabilities, or of the regression outputs), so the ensemble saves, reloads and exports
    as one `.keras` file. It is frozen (``trainable = False``) and compiled with `task`'s
    default loss and metrics (or `loss` / `metrics`) so `kerasnn.evaluate` works on it.

    Args:
        members: trained functional `keras.Model`s with the same input and output shapes.
        task: ``"classification"``, ``"binary"`` or ``"regression"``.
        loss: the compiled loss. Defaults to the task's.
        metrics: the compiled metrics. Defaults to the task's.

    Returns:
        The compiled ensemble `keras.Model` (named ``ensemble``).

    Raises:
        ValueError: fewer than two members, or members whose input/output shapes differ.
    """
    if len(members) < 2:
        raise ValueError(
            "Received an invalid value for argument members, expected at least 2 models to "
            f"average. Received: {len(members)} model(s)"
        )
    shapes = {(tuple(m.input_shape), tuple(m.output_shape)) for m in members}
    if len(shapes) != 1:
        raise ValueError(
            "Received an invalid value for argument members, expected models with one input "
            f"and output shape. Received: (input, output) shapes {sorted(shapes)}"
        )
    inputs = keras.Input(members[0].input_shape[1:], name="inputs")
    outputs = [
        keras.Model(m.input, m.output, name=f"member_{i}")(inputs)
        for i, m in enumerate(members, start=1)
    ]
    model = keras.Model(inputs, keras.layers.Average(name="average")(outputs), name="ensemble")
    model.trainable = False  # frozen: its (unused) optimizer then has no slots to save
    return training.compile(model, "adam", loss=loss, metrics=metrics, task=task)


def _retrain(
    tuner: _Tuner,
    hypermodel: keras_tuner.HyperModel,
    trial: Any,
    data: Dataset,
    *,
    seed: int,
    base_fit: Mapping[str, Any],
) -> tuple[keras.Model, Any]:
    """Retrains a trial's configuration on train+validation for its best epoch count."""
    record = _load_json(str(Path(tuner.get_trial_dir(trial.trial_id)) / TRIAL_FILE)) or {}
    epochs = int(record.get("best_epoch", 0)) + 1 if record else None
    hp = trial.hyperparameters
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hp)
    arguments = dict(base_fit)
    if hasattr(hypermodel, "fit_arguments"):
        arguments |= hypermodel.fit_arguments(hp)
    if epochs is not None:
        arguments["epochs"] = epochs
    arguments |= {"validation_split": 0.0, "early_stopping": False}
    result = training.fit(model, (data.x_train, data.y_train), seed=seed, verbose=0, **arguments)
    return model, result


def _ranked_trials(tuner: _Tuner, objective: str) -> list[Any]:
    """The completed trials, best first: by the objective, ties broken by the validation loss.

    Validation accuracy on a small validation split takes few distinct values (144 digits:
    steps of 0.7 %), so several trials often tie; the lower ``val_loss`` at their best epoch
    (recorded in each trial's file) then ranks them. Remaining ties keep trial order.
    """
    done = [t for t in tuner.oracle.trials.values() if t.status == COMPLETED]
    done = [t for t in done if t.score is not None]
    sign = -1.0 if direction(objective) == "max" else 1.0

    def val_loss(trial: Any) -> float:
        if objective == "val_loss":
            return 0.0
        record = _load_json(str(tuner._trial_file(trial.trial_id))) or {}
        loss = (record.get("best_metrics") or {}).get("val_loss")
        return float(loss) if loss is not None and math.isfinite(loss) else math.inf

    return sorted(done, key=lambda t: (sign * float(t.score), val_loss(t), t.trial_id))


def _retrain_best(
    tuner: _Tuner,
    hypermodel: keras_tuner.HyperModel,
    data: Dataset,
    out: Path,
    *,
    seed: int,
    objective: str,
    base_fit: Mapping[str, Any],
    ensemble: int = 1,
) -> dict[str, Any] | None:
    """Retrains the best configuration (the `ensemble` best) on train+validation for its best
    epoch count, evaluates it on the test split, and writes best.keras (atomically), best.json,
    best_recipe.yaml, and the verified export the recipe's ``export`` block asks for."""
    trials = _ranked_trials(tuner, objective)[:ensemble]
    if not trials:
        return None
    members, records = [], []
    for trial in trials:
        model, result = _retrain(tuner, hypermodel, trial, data, seed=seed, base_fit=base_fit)
        members.append(model)
        member = {
            "trial_id": trial.trial_id,
            "score": float(trial.score),
            "hyperparameters": dict(trial.hyperparameters.values),
            "retrain_epochs": result.epochs,
            "retrain_seconds": result.wall_time,
            "test_metrics": training.evaluate(model, data),
        }
        if isinstance(hypermodel, RecipeHyperModel):
            member_recipe, _ = hypermodel.recipe_for(trial.hyperparameters.copy())
            config = member_recipe.to_dict()
            config["fit"] = {
                **config["fit"],
                "epochs": result.epochs,
                "validation_split": 0.0,
                "early_stopping": False,
            }
            member["recipe"] = config
        records.append(member)
    if len(members) == 1:
        model = members[0]
        test_metrics = records[0]["test_metrics"]
    else:
        top = members[0]
        task = training.task_of(top) or data.task
        metrics = hypermodel.recipe.metrics if isinstance(hypermodel, RecipeHyperModel) else None
        model = ensemble_model(members, task=task, loss=top.loss, metrics=metrics)
        test_metrics = training.evaluate(model, data)
    tmp = out / ".best.tmp.keras"
    model.save(tmp)
    os.replace(tmp, out / "best.keras")
    first = records[0]
    best = {
        "trial_id": first["trial_id"],
        "objective": objective,
        "score": first["score"],
        "hyperparameters": first["hyperparameters"],
        "retrain_epochs": first["retrain_epochs"],
        "retrain_seconds": sum(r["retrain_seconds"] for r in records),
        "test_metrics": test_metrics,
        "ensemble": len(members),
        "members": [{k: v for k, v in r.items() if k != "recipe"} for r in records],
    }
    if isinstance(hypermodel, RecipeHyperModel):
        best["recipe"] = first["recipe"]
        if len(records) > 1:
            for summary, record in zip(best["members"], records, strict=True):
                summary["recipe"] = record["recipe"]
        _write_atomic(out / "best_recipe.yaml", Recipe.from_dict(first["recipe"]).to_yaml())
        if hypermodel.recipe.export is not None:  # the recipe asks for a verified export
            from kerasnn.recipe import EXPORT_DEFAULTS, export_trained

            target = out / (EXPORT_DEFAULTS | hypermodel.recipe.export)["path"]
            exported = export_trained(model, data, hypermodel.recipe.export, target)
            best["export"] = {
                "path": str(target),
                "format": exported.format,
                "max_abs_diff": exported.max_abs_diff,
            }
    _write_atomic(out / "best.json", _json.dumps(best) + "\n")
    return best
