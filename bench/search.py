"""Tuners side by side on the digits: random, Bayesian, Hyperband, refine, KerasTuner, SVC.

What is measured:
    `kerasnn.search` on ``recipes/digits_mlp.yaml`` (``--recipe`` another): scikit-learn's 8x8
    digits, the recipe's fixed 80/20 stratified split (its seed, 0), its fit settings and its
    ``search:`` space (the ready MLP space written out with ``shift_noise`` augmentation fixed,
    at most 300 epochs, patience 40). Every search gets the same time budget for its trials
    (``--budget``, 560 s: no new trial starts once it is spent, a running one stops at its next
    epoch boundary) and a trial count too large to matter (``--max-trials``, 1000), so the
    budget ends them all; then the recipe's ``search.ensemble`` best configurations (5;
    ``--ensemble``) are averaged into best.keras, evaluated once on the test split. The
    recipe says ``retrain: false``: the members are the trials' own models (best epoch's
    weights), because retraining 5 configurations on train+validation took 378-979 s in the
    earlier 20-trial runs (History below), more than the whole limit leaves. Retraining (or
    loading the members) is outside the budget, inside ``--total-limit`` (600 s: the issue's
    10 minutes on 2 cores): ``within_total_limit`` says whether the whole search call
    stayed within it.

    Variants (``--variants``, all by default), each run for search seeds ``--seeds`` (0-4):

    - ``random``, ``bayesian``, ``hyperband``: ``kerasnn.search(tuner=...)``; ``refine``:
      random search with ``refine=True`` (a second stage sampling ranges narrowed around the
      first stage's best, after 65 % of the budget). The others get ``refine=False``, whatever
      the recipe's ``search:`` block says. kerasnn seeds trial n of every tuner from (seed, n),
      so Bayesian optimization's 10 initial random trials are random search's first 10: the
      two differ from trial 11 on (a paired comparison).
    - ``kt_random``, the baseline: plain KerasTuner over the same space, the recipe's
      hypermodel (`kerasnn.recipe.RecipeHyperModel`, whose build(hp) returns the compiled
      model) trained by KerasTuner's own ``Tuner.run_trial``: ``model.fit(x_train, y_train,
      validation_split=0.1, epochs, batch_size=<the trial's>, callbacks=[EarlyStopping(
      "val_loss", patience, restore_best_weights=True)])``, fit settings from
      ``hypermodel.fit_arguments(hp)``. Its oracle is ``RandomSearchOracle`` with the same seed
      (0 set through the oracle's public state: KerasTuner replaces a falsy seed by a random
      one; seeds s and s + 1 then draw shifted copies of one stream, KerasTuner's own
      behaviour) whose ``populate_space`` returns ``{"status": "STOPPED"}`` once the budget is
      spent; a callback stops the running trial at its next epoch boundary, as kerasnn's
      budget does. The best model is ``tuner.get_best_models(1)[0]`` (trained on 90 % of the
      training split: no retraining, ``retrain_seconds`` 0). Its validation figures are
      KerasTuner's (the best epoch's val_accuracy on the unshuffled last 10 %), not comparable
      with kerasnn's (a stratified split, the objective at early stopping's restored epoch).
    - ``svc``: scikit-learn's ``GridSearchCV(SVC(), C in [0.1, 1, 10, 100], gamma in [scale,
      1e-4, 1e-3, 1e-2, 1e-1], cv=StratifiedKFold(5, shuffle=True, random_state=0))`` fitted
      on the features the networks see (``kerasnn.datasets.load(**recipe.data, seed=
      recipe.seed)``: standardized pixels) of the same training split, evaluated on the same
      test split. Seed-independent: run once.

    Per run (one JSON line appended to ``--results``): test accuracy of best.keras, the best
    configuration's alone (``best_single_test_accuracy``) and each member's; the best trial's
    validation score (``best_validation``) and ``top5_mean_validation``, the mean objective
    of the 5 best completed configurations (a less optimistic validation figure than the
    maximum; a Hyperband configuration counts once, at its best round); with ``--cv K`` the
    best trial's CV mean and std (the objective is then the K-fold mean); trials completed and
    failed; ``search_seconds`` (the trials), ``retrain_seconds``, ``total_seconds`` (the whole
    search call), ``within_total_limit``, ``stopped_by`` (``time_budget``, ``max_trials``, or
    `None`: the tuner ended by itself, e.g. Hyperband's brackets done); the 1-minute load
    average before and after and the process's peak RSS (a thread samples ``/proc/self/statm``
    every 0.2 s).

    Every (variant, seed) run is a fresh ``python bench/search.py --one VARIANT SEED ...``
    process, so one search's memory and graphs never reach the next, and a crash is recorded
    (``status: crashed``, the tail of its stderr, kept whole in ``<variant>-s<seed>.log``)
    without losing the other runs. A run already in ``--results`` (same variant, seed,
    recipe file contents, budget, trials, ensemble, cv, quick) is skipped, so the long bench
    (5 searches x 5 seeds x ~10 min, about 4-4.5 hours, plus the SVC's seconds) can be run in
    pieces across sessions and aggregated; crashed runs are tried again.

    The report (one JSON object on stdout; nothing is asserted): per variant the median and
    mean test accuracy over its seeds, each seed's figures, the median
    ``top5_mean_validation``. That is the decision figure: ``winner_by_validation`` is the
    kerasnn variant with the highest median ``top5_mean_validation`` among those run on every
    requested seed, never chosen on the test split. Target checks from the issue: mean test
    accuracy >= 99.0 % and above the tuned SVC, every run within the total limit. Versions,
    CPU count and load are reported: other processes skew the times (not the accuracies of
    kerasnn's variants: same seed, same table on CPU, unless the budget cuts a trial short).

How to run (from the repository root):
    /work/venv/bin/python bench/search.py --out runs/bench-search \\
        --results runs/bench-search/results.jsonl     # everything, ~4-5 h on 2 CPUs, resumable
    /work/venv/bin/python bench/search.py --variants svc,kt_random --seeds 0,2 --results R.jsonl
    /work/venv/bin/python bench/search.py --quick      # smoke run: 20 s budget, 5 epochs, 1 seed

History (single searches, kept as what they were; ``--first``/``--total`` trial counts, no
budget; ensemble of 5, 360 test images so one image is 0.28 %):
    - Levers, scratch measurements (two-layer ReLU MLPs with Adam, mean of 3-4 seeds): no
      augmentation 97.7 %; +-1 pixel shifts 98.5-98.7 %; shifts + input noise 0.3 with
      512-512 units, dropout 0.3, Adam 1e-3: 99.2 % (90 % of train), 99.4 % (whole train, 150
      epochs); shifts with 10-degree rotations and 0.1 zooms 96.3 % (bilinear interpolation
      blurs 8x8 strokes). Same ranking in 5-fold CV on the train split alone (errors out of
      1437: none 33, shifts 25, shifts + noise 20). That 512-512 model stopped at epoch 58-81
      with patience 15 (4-5 test errors), 157-168 with patience 40 (3): hence patience 40.
    - The space, seed 0 of KerasTuner's old overlapping seed stream, after 20 / 50 trials:
      every augmentation sampled, one learning-rate range, L2 up to 1e-2: 98.06 / 98.61 %;
      shift_noise fixed: 98.89 / 98.89 %; plus a learning-rate range per optimizer, L2 up to
      1e-3, ties by validation loss: 98.89 / 99.44 % (20 trials in 229 s); plus patience 40
      (this recipe): 99.17 / 98.89 % (20 trials in 419 s).
    - Independent seeds (trial n of seed s samples from a hash of (s, n)), 20 trials: seeds
      0-4 gave 98.89, 99.44, 98.89, 99.17, 98.89 % (mean 99.06 %); the trials took 320-895 s
      (over 600 s in 1 of 5), with retraining 378-979 s (over 600 s in 3 of 5).
    - Memory: before kerasnn released each trial's entries in TensorFlow's gradient registry
      (`kerasnn._graph_memory`) RSS grew 142.5 MB from trial 2 to 20 (seed 0, old stream),
      34.6 MB after; with independent seeds 1.2-2.8 MB a trial.
    - SVC: ``SVC()`` on the standardized split 98.61 %; ``SVC(C=10, gamma=0.001)`` on raw
      pixels of the same split 98.89 %.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

__all__ = [
    "KERASNN_VARIANTS",
    "VARIANTS",
    "RssSampler",
    "aggregate",
    "main",
    "parse_seeds",
    "parse_variants",
    "run_key",
    "top_validation",
]

#: The kerasnn variants and their `kerasnn.search` arguments.
KERASNN_VARIANTS: dict[str, dict[str, Any]] = {
    "random": {"tuner": "random", "refine": False},
    "bayesian": {"tuner": "bayesian", "refine": False},
    "hyperband": {"tuner": "hyperband", "refine": False},
    "refine": {"tuner": "random", "refine": True},
}
VARIANTS = (*KERASNN_VARIANTS, "kt_random", "svc")
SVC_GRID = {"C": [0.1, 1, 10, 100], "gamma": ["scale", 1e-4, 1e-3, 1e-2, 1e-1]}
TARGET_ACCURACY = 0.99
QUICK_BUDGET, QUICK_EPOCHS = 20.0, 5
RECORD_PREFIX = "BENCH_RECORD "  # the child's record line on stdout (anything else is noise)
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    """Samples this process's resident set size (MB) every `interval` seconds.

    Args:
        interval: seconds between samples. Defaults to 0.2.
    """

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with open("/proc/self/statm") as f:
                self.samples.append(int(f.read().split()[1]) * PAGE_MB)
            time.sleep(self.interval)

    def peak(self) -> float | None:
        """The largest RSS sampled (MB), or `None` before the first sample."""
        return round(max(self.samples), 1) if self.samples else None


# -- arguments ---------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """The seeds of ``--seeds``: comma-separated seeds and ranges, in order, without repeats.

    Args:
        text: e.g. ``"0-4"``, ``"0,2,3"`` or ``"0-2,5"``.

    Returns:
        The seeds, e.g. ``[0, 1, 2, 3, 4]``.

    Raises:
        ValueError: an empty list, a seed < 0, a range a-b with a > b, or not a number.

    Example:

    >>> parse_seeds("0-2,5")
    [0, 1, 2, 5]
    """
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            first = int(low)
            last = int(high) if sep else first
            if first < 0 or last < first:
                raise ValueError(part)
            seeds += [s for s in range(first, last + 1) if s not in seeds]
    except ValueError:
        seeds = []
    if not seeds:
        raise ValueError(
            "Received an invalid value for argument --seeds, expected comma-separated seeds "
            f">= 0 or ranges a-b with a <= b (e.g. 0-4 or 0,2,3). Received: --seeds={text!r}"
        )
    return seeds


def parse_variants(text: str) -> list[str]:
    """The variants of ``--variants``: a comma list of `VARIANTS`, in the given order.

    Args:
        text: e.g. ``"random,kt_random"`` or ``"all"``.

    Returns:
        The variants, without repeats.

    Raises:
        ValueError: an empty list or a name not in `VARIANTS`.
    """
    if text.strip() == "all":
        return list(VARIANTS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if not names or unknown:
        raise ValueError(
            "Received an invalid value for argument --variants, expected a comma list of "
            f"{', '.join(VARIANTS)} (or all). Received: --variants={text!r}"
        )
    return list(dict.fromkeys(names))


def run_config(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """What a run's result depends on besides its variant and seed (the ``--results`` key)."""
    recipe = Path(args.recipe).resolve()
    shown = recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else recipe
    config: dict[str, Any] = {
        "recipe": str(shown),
        "recipe_sha256": hashlib.sha256(_recipe_identity(recipe).encode()).hexdigest()[:16],
    }
    if variant == "svc":
        return config
    config |= {"budget": args.budget, "max_trials": args.max_trials, "quick": args.quick}
    if variant in KERASNN_VARIANTS:
        config |= {"ensemble": args.ensemble, "cv": args.cv}
    return config


#: ``search:`` keys every run sets itself (the variant, ``--budget``, ``--max-trials``,
#: ``--cv``): a recipe differing only there (e.g. its default tuner) keeps its results.
OVERRIDDEN_SEARCH_KEYS = ("tuner", "refine", "cv", "time_budget", "trials")


def _recipe_identity(path: Path) -> str:
    """The recipe's content as the runs use it: comments and `OVERRIDDEN_SEARCH_KEYS` left out."""
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    search = config.get("search")
    if isinstance(search, dict):
        config["search"] = {k: v for k, v in search.items() if k not in OVERRIDDEN_SEARCH_KEYS}
    return json.dumps(config, sort_keys=True)


def run_key(variant: str, seed: int | None, config: dict[str, Any]) -> str:
    """The identity of a (variant, seed) run with `config`, as one string."""
    return json.dumps([variant, seed, config], sort_keys=True)


# -- one run (the child process) ---------------------------------------------------------------


def load_recipe(path: Path, quick: bool) -> Any:
    """The recipe, with ``--quick``'s 5 epochs in its fit and in its space's fixed
    ``fit.epochs`` (a space entry overrides the recipe's fit)."""
    import kerasnn as knn

    recipe = knn.Recipe.from_yaml(path)
    if not quick:
        return recipe
    config = recipe.to_dict()
    config["fit"] = {**config["fit"], "epochs": QUICK_EPOCHS}
    space = (config.get("search") or {}).get("space")
    fixed = isinstance(space, dict) and not isinstance(space.get("fit.epochs", {}), dict)
    if fixed:  # a fixed number of epochs in the space, not a range
        space["fit.epochs"] = QUICK_EPOCHS
    return knn.Recipe.from_dict(config)


def _recipe_data(recipe: Any) -> Any:
    """The recipe's dataset, loaded as `RecipeHyperModel` loads it."""
    import kerasnn as knn

    return knn.datasets.load(**({"seed": recipe.seed} | recipe.data))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _patience(early_stopping: Any) -> int | None:
    """The patience a `kerasnn.fit` ``early_stopping`` value means (`None`: no stopping)."""
    if early_stopping is None or early_stopping is False:
        return None
    if early_stopping is True:
        return 10  # kerasnn.callbacks.EarlyStopping's default
    if isinstance(early_stopping, dict):
        return int(early_stopping.get("patience", 10))
    return int(early_stopping)


def top_validation(
    rows: list[dict[str, Any]], names: list[str], direction: str, k: int = 5
) -> float | None:
    """The mean score of the `k` best completed configurations.

    A configuration (its values of `names`, KerasTuner's ``tuner/`` bookkeeping left out)
    counts once, at its best score: a Hyperband configuration is trained again in later
    rounds.

    Args:
        rows: trials with ``status``, ``score`` and the hyperparameter values.
        names: the hyperparameter names.
        direction: ``"max"`` or ``"min"``.
        k: how many configurations. Defaults to 5.

    Returns:
        The mean, or `None` without a completed trial.

    Example:

    >>> rows = [{"status": "COMPLETED", "score": s, "u": u} for s, u in [(0.9, 1), (0.8, 1)]]
    >>> top_validation(rows, ["u"], "max")
    0.9
    """
    sign = -1.0 if direction == "max" else 1.0
    best: dict[str, float] = {}
    for row in rows:
        if row.get("status") != "COMPLETED" or row.get("score") is None:
            continue
        config = json.dumps([[n, row.get(n)] for n in names if not n.startswith("tuner/")])
        score = float(row["score"])
        if config not in best or sign * score < sign * best[config]:
            best[config] = score
    ranked = sorted(best.values(), key=lambda s: sign * s)[:k]
    return round(statistics.fmean(ranked), 6) if ranked else None


def _run_kerasnn(variant: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import kerasnn as knn

    recipe = load_recipe(args.recipe, args.quick)
    start = time.perf_counter()
    result = knn.search(
        recipe,
        **KERASNN_VARIANTS[variant],
        time_budget=args.budget,
        cv=args.cv,
        max_trials=args.max_trials,
        seed=seed,
        directory=out,
        overwrite=True,
        ensemble=args.ensemble,
        verbose=1,
    )
    total = time.perf_counter() - start
    rows, specs = knn.tuning.read_trials(out)
    meta = json.loads((out / "search.json").read_text())
    best = result.best or {}
    members = best.get("members") or []
    best_row = next((r for r in rows if r["trial"] == best.get("trial")), {})
    stopped_by = result.stopped_by
    if stopped_by is None and len(rows) >= meta.get("max_trials", float("inf")):
        stopped_by = "max_trials"
    return {
        "tuner": result.tuner,
        "refine": bool(meta.get("refine")),
        "cv": meta.get("cv"),
        "objective": result.objective,
        "test_accuracy": _round(best.get("test_metrics", {}).get("accuracy")),
        "test_loss": _round(best.get("test_metrics", {}).get("loss")),
        "best_single_test_accuracy": (
            _round(members[0]["test_metrics"]["accuracy"]) if members else None
        ),
        "member_test_accuracies": [_round(m["test_metrics"]["accuracy"]) for m in members],
        "ensemble": best.get("ensemble"),
        "retrained": best.get("retrained"),
        "best_trial": best.get("trial"),
        "best_validation": _round(best.get("score")),
        "top5_mean_validation": top_validation(rows, list(specs), result.direction),
        "cv_mean": best_row.get("cv_mean"),
        "cv_std": best_row.get("cv_std"),
        "trials_completed": result.completed,
        "trials_failed": result.failed,
        "trials_stage2": sum(r.get("stage") == 2 for r in rows),
        "epochs_trained": sum(r.get("epochs") or 0 for r in rows),
        "search_seconds": round(result.search_seconds, 1),
        "retrain_seconds": round(result.retrain_seconds or 0.0, 1),
        "total_seconds": round(total, 1),
        "stopped_by": stopped_by,
    }


def _run_kt_random(seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Plain KerasTuner random search over the recipe's space, stopped by the budget."""
    import keras
    import keras_tuner

    from kerasnn.recipe import RecipeHyperModel

    recipe = load_recipe(args.recipe, args.quick).resolved()
    hypermodel = RecipeHyperModel(recipe)
    data = hypermodel.data
    objective = (recipe.search or {}).get("objective", "val_accuracy")
    deadline = time.time() + args.budget

    class BudgetOracle(keras_tuner.oracles.RandomSearchOracle):
        """`RandomSearchOracle` that starts no trial once the budget is spent."""

        stopped_by: str | None = None

        def populate_space(self, trial_id: str) -> dict[str, Any]:
            if time.time() >= deadline:
                self.stopped_by = "time_budget"
                return {"status": "STOPPED"}
            return super().populate_space(trial_id)

    trained = {"epochs": 0}  # shared by KerasTuner's per-trial copies of the callback

    class StopAtDeadline(keras.callbacks.Callback):
        """Stops the running trial at the first epoch boundary after the deadline."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            trained["epochs"] += 1
            if time.time() >= deadline:
                self.model.stop_training = True

    class PlainTuner(keras_tuner.Tuner):
        """KerasTuner's `Tuner.run_trial` with the trial's own fit settings."""

        def run_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Any:
            fit = hypermodel.fit_arguments(trial.hyperparameters)
            callbacks: list[keras.callbacks.Callback] = [StopAtDeadline()]
            patience = _patience(fit.get("early_stopping", True))
            if patience is not None:
                callbacks.insert(
                    0,
                    keras.callbacks.EarlyStopping(
                        monitor="val_loss", patience=patience, restore_best_weights=True
                    ),
                )
            fit_kwargs |= {
                "epochs": int(fit.get("epochs", 100)),
                "batch_size": int(fit.get("batch_size", 32)),
                "validation_split": float(fit.get("validation_split", 0.1)),
                "callbacks": callbacks,
            }
            return super().run_trial(trial, *fit_args, **fit_kwargs)

    oracle = BudgetOracle(
        objective=objective,
        max_trials=args.max_trials,
        seed=seed or 1,
        max_consecutive_failed_trials=5,  # kerasnn's default (KerasTuner's: 3)
    )
    state = oracle.get_state()  # KerasTuner turns seed 0 into a random seed: set it back
    state["seed"] = state["seed_state"] = seed
    oracle.set_state(state)
    tuner = PlainTuner(oracle, hypermodel, directory=str(out), project_name="tuner", overwrite=True)
    start = time.perf_counter()
    tuner.search(data.x_train, data.y_train, verbose=0)
    search_seconds = time.perf_counter() - start
    model = tuner.get_best_models(1)[0]
    test = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    total = time.perf_counter() - start
    trials = list(oracle.trials.values())
    done = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    best = oracle.get_best_trials(1)  # the trial get_best_models picked
    scores = sorted(
        (float(t.score) for t in done if math.isfinite(t.score)),
        reverse=oracle.objective.direction == "max",
    )
    stopped_by = oracle.stopped_by
    if stopped_by is None and len(trials) >= args.max_trials:
        stopped_by = "max_trials"
    accuracy = _round(test.get("accuracy"))
    return {
        "tuner": "keras_tuner.RandomSearchOracle",
        "objective": objective,
        "test_accuracy": accuracy,
        "test_loss": _round(test.get("loss")),
        "best_single_test_accuracy": accuracy,
        "member_test_accuracies": [accuracy],
        "ensemble": 1,
        "best_trial": int(best[0].trial_id) + 1 if best else None,
        "best_validation": _round(best[0].score) if best else None,
        "top5_mean_validation": round(statistics.fmean(scores[:5]), 6) if scores else None,
        "trials_completed": len(done),
        "trials_failed": sum(t.status in ("FAILED", "INVALID") for t in trials),
        "epochs_trained": trained["epochs"],
        "search_seconds": round(search_seconds, 1),
        "retrain_seconds": 0.0,
        "total_seconds": round(total, 1),
        "stopped_by": stopped_by,
    }


def _run_svc(args: argparse.Namespace) -> dict[str, Any]:
    """scikit-learn's SVC tuned by 5-fold grid search on the networks' training split."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    data = _recipe_data(load_recipe(args.recipe, quick=False))
    start = time.perf_counter()
    grid = GridSearchCV(SVC(), SVC_GRID, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    grid.fit(data.x_train, data.y_train)
    test = float(grid.score(data.x_test, data.y_test))
    total = time.perf_counter() - start
    return {
        "test_accuracy": round(test, 6),
        "best_single_test_accuracy": round(test, 6),
        "best_validation": round(float(grid.best_score_), 6),  # the 5-fold CV mean
        "cv_mean": round(float(grid.best_score_), 6),
        "cv_std": round(float(grid.cv_results_["std_test_score"][grid.best_index_]), 6),
        "best_params": grid.best_params_,
        "trials_completed": len(grid.cv_results_["params"]),
        "search_seconds": round(total, 1),
        "retrain_seconds": 0.0,
        "total_seconds": round(total, 1),
    }


def run_one(variant: str, seed: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """One (variant, seed) run in this process: its record (see the module docstring)."""
    load_before = os.getloadavg()[0]
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    out = Path(args.out) / run_name(variant, seed)
    # KerasTuner and the per-trial lines print on stdout: the record alone goes there.
    with contextlib.redirect_stdout(sys.stderr):
        if variant == "svc":
            figures = _run_svc(args)
        elif variant == "kt_random":
            figures = _run_kt_random(int(seed), args, out)
        else:
            figures = _run_kerasnn(variant, int(seed), args, out)
    sampler.stopped.set()
    record = {"variant": variant, "seed": seed, "status": "ok", **figures}
    if variant != "svc":
        record["directory"] = str(out)
    record |= {
        "within_total_limit": figures["total_seconds"] <= args.total_limit,
        "process_seconds": round(time.perf_counter() - start, 1),
        "loadavg_1min_before": round(load_before, 2),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "rss_max_mb": sampler.peak(),
    }
    return record


def run_name(variant: str, seed: int | None) -> str:
    """The run's folder (and log) name in ``--out``: ``<variant>-s<seed>`` (svc: ``svc``)."""
    return variant if seed is None else f"{variant}-s{seed}"


# -- the bench (the parent process) ------------------------------------------------------------


def _child_command(variant: str, seed: int | None, args: argparse.Namespace) -> list[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        variant,
        "none" if seed is None else str(seed),
        "--recipe",
        str(args.recipe),
        "--out",
        str(args.out),
        "--budget",
        str(args.budget),
        "--max-trials",
        str(args.max_trials),
        "--total-limit",
        str(args.total_limit),
    ]
    if args.quick:
        command.append("--quick")
    if args.ensemble is not None:
        command += ["--ensemble", str(args.ensemble)]
    if args.cv is not None:
        command += ["--cv", str(args.cv)]
    return command


def spawn(variant: str, seed: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """Runs one (variant, seed) in a fresh process; its record, or a ``crashed`` one with
    the tail of its stderr (the whole of it in ``<out>/<variant>-s<seed>.log``)."""
    log = Path(args.out) / f"{run_name(variant, seed)}.log"
    start = time.perf_counter()
    with open(log, "w") as err:
        try:
            done = subprocess.run(
                _child_command(variant, seed, args),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=args.timeout,
                cwd=ROOT,
            )
            returncode, stdout = done.returncode, done.stdout
        except subprocess.TimeoutExpired:
            returncode, stdout = f"timeout after {args.timeout:g} s", ""
    lines = [line for line in stdout.splitlines() if line.startswith(RECORD_PREFIX)]
    if returncode == 0 and lines:
        return json.loads(lines[-1].removeprefix(RECORD_PREFIX))
    tail = log.read_text(errors="replace").strip().splitlines()[-25:]
    return {
        "variant": variant,
        "seed": seed,
        "status": "crashed",
        "returncode": returncode,
        "process_seconds": round(time.perf_counter() - start, 1),
        "stderr_tail": "\n".join(tail),
        "log": str(log),
    }


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """The records of a ``--results`` file by `run_key`; the last one of a key wins, and a
    finished record is never replaced by a later crash."""
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        key = run_key(record["variant"], record["seed"], record["config"])
        if record["status"] == "ok" or records.get(key, {}).get("status") != "ok":
            records[key] = record
    return records


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 6) if values else None


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 6) if values else None


PER_SEED = (
    "seed",
    "test_accuracy",
    "best_single_test_accuracy",
    "member_test_accuracies",
    "best_validation",
    "top5_mean_validation",
    "cv_mean",
    "trials_completed",
    "trials_failed",
    "trials_stage2",
    "epochs_trained",
    "search_seconds",
    "retrain_seconds",
    "total_seconds",
    "within_total_limit",
    "stopped_by",
    "rss_max_mb",
    "loadavg_1min_before",
)


def aggregate(
    records: dict[str, dict[str, Any]], variants: list[str], seeds: list[int]
) -> dict[str, Any]:
    """The per-variant figures, the winner by validation and the target checks.

    Args:
        records: the finished records (see `read_results`) of the requested runs, by key.
        variants: the requested variants.
        seeds: the requested seeds.

    Returns:
        ``{"variants": {name: {...}}, "winner_by_validation": ..., "validation_ranking":
        [...], "targets": {...}}``.
    """
    by_variant: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for record in records.values():
        if record["variant"] in by_variant:
            by_variant[record["variant"]].append(record)
    svc = next((r for r in by_variant.get("svc", []) if r["status"] == "ok"), None)
    svc_accuracy = svc["test_accuracy"] if svc else None
    summary: dict[str, Any] = {}
    for variant, runs in by_variant.items():
        ok = sorted((r for r in runs if r["status"] == "ok"), key=lambda r: r["seed"] or 0)
        wanted = [None] if variant == "svc" else seeds
        done = {r["seed"] for r in ok}
        tests = [r.get("test_accuracy") for r in ok]
        mean_test = _mean(tests)
        entry: dict[str, Any] = {
            "runs": len(ok),
            "missing_seeds": [s for s in wanted if s not in done],
            "test_accuracy_median": _median(tests),
            "test_accuracy_mean": mean_test,
            "best_single_test_accuracy_median": _median(
                [r.get("best_single_test_accuracy") for r in ok]
            ),
            "top5_mean_validation_median": _median([r.get("top5_mean_validation") for r in ok]),
            "best_validation_median": _median([r.get("best_validation") for r in ok]),
            "trials_completed_median": _median([r.get("trials_completed") for r in ok]),
            "search_seconds_median": _median([r.get("search_seconds") for r in ok]),
            "total_seconds_median": _median([r.get("total_seconds") for r in ok]),
            "within_total_limit": f"{sum(bool(r.get('within_total_limit')) for r in ok)}/{len(ok)}",
            "per_seed": [{k: r.get(k) for k in PER_SEED if k in r} for r in ok],
        }
        if variant == "svc" and svc is not None:
            entry["best_params"] = svc.get("best_params")
            entry["cv_mean"] = svc.get("cv_mean")
        crashed = [r for r in runs if r["status"] != "ok" and r["seed"] not in done]
        if crashed:
            entry["crashed"] = [
                {"seed": r["seed"], "returncode": r.get("returncode"), "log": r.get("log")}
                for r in crashed
            ]
        if variant != "svc" and mean_test is not None:
            entry["target_mean_test_accuracy_met"] = mean_test >= TARGET_ACCURACY
            entry["target_above_svc_met"] = (
                None if svc_accuracy is None else mean_test > svc_accuracy
            )
            entry["target_all_within_total_limit_met"] = all(
                r.get("within_total_limit") for r in ok
            )
        summary[variant] = entry
    # The decision: kerasnn variants run on every requested seed, by validation figures only.
    complete = [
        v
        for v in variants
        if v in KERASNN_VARIANTS
        and not summary[v]["missing_seeds"]
        and summary[v]["top5_mean_validation_median"] is not None
    ]
    ranking = sorted(
        complete,
        key=lambda v: (
            -summary[v]["top5_mean_validation_median"],
            -(summary[v]["best_validation_median"] or 0.0),
        ),
    )
    winner = ranking[0] if ranking else None
    tied = [
        v
        for v in ranking[1:]
        if summary[v]["top5_mean_validation_median"]
        == summary[winner]["top5_mean_validation_median"]
    ]
    return {
        "variants": summary,
        "winner_by_validation": winner,
        "validation_ranking": [
            {"variant": v, "top5_mean_validation_median": summary[v]["top5_mean_validation_median"]}
            for v in ranking
        ],
        "winner_tied_with": tied,  # equal decision figure: the winner by best_validation
        "winner_incomplete_variants": [
            v for v in variants if v in KERASNN_VARIANTS and v not in complete
        ],
        "targets": {
            "mean_test_accuracy_min": TARGET_ACCURACY,
            "above_svc_test_accuracy": svc_accuracy,
            "total_seconds_max": None,  # filled by main with --total-limit
            "winner_met": (
                None
                if winner is None
                else bool(
                    summary[winner].get("target_mean_test_accuracy_met")
                    and summary[winner].get("target_above_svc_met")
                    and summary[winner].get("target_all_within_total_limit_met")
                )
            ),
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="all", help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0-4", help="search seeds: 0-4 or 0,2,3")
    parser.add_argument("--budget", type=float, default=560.0, help="seconds for the trials")
    parser.add_argument(
        "--total-limit", type=float, default=600.0, help="trials + retraining limit (reported)"
    )
    parser.add_argument(
        "--recipe", type=Path, default=ROOT / "recipes" / "digits_mlp.yaml", help="recipe searched"
    )
    parser.add_argument("--out", type=Path, help="folder of the searches (default: temporary)")
    parser.add_argument(
        "--results", type=Path, help="JSON-lines file of finished runs (default: OUT/results.jsonl)"
    )
    parser.add_argument(
        "--max-trials", type=int, default=1000, help="trial cap, large: the budget decides"
    )
    parser.add_argument("--ensemble", type=int, help="members of best.keras (default: recipe's)")
    parser.add_argument("--cv", type=int, help="K-fold CV objective for the kerasnn variants")
    parser.add_argument(
        "--timeout", type=float, help="seconds before a run is killed (default: 3 x total limit)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20 s budget, 5 epochs, ensemble 1, 1 seed"
    )
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    return parser


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    try:
        variants = parse_variants(args.variants)
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))
    if args.quick:
        args.budget, args.ensemble, seeds = QUICK_BUDGET, 1, seeds[:1]
    args.timeout = args.timeout or 3 * args.total_limit
    args.recipe = args.recipe.resolve()  # the children run from the repository root

    if args.one is not None:  # a child: one run, its record on stdout
        variant, seed_text = args.one
        seed = None if seed_text == "none" else int(seed_text)
        record = run_one(variant, seed, args)
        record["config"] = run_config(variant, args)
        print(RECORD_PREFIX + json.dumps(record), flush=True)
        return

    load_before = os.getloadavg()[0]
    temporary = args.out is None
    with contextlib.ExitStack() as stack:
        if temporary:
            args.out = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        args.out = args.out.resolve()
        args.out.mkdir(parents=True, exist_ok=True)
        results = args.results or args.out / "results.jsonl"
        results.parent.mkdir(parents=True, exist_ok=True)
        known = read_results(results)
        plan = [(v, None if v == "svc" else s) for v in variants for s in seeds]
        plan = list(dict.fromkeys(plan))  # svc once
        wanted: dict[str, dict[str, Any]] = {}
        for i, (variant, seed) in enumerate(plan, start=1):
            key = run_key(variant, seed, run_config(variant, args))
            if known.get(key, {}).get("status") == "ok":
                wanted[key] = known[key]
                print(f"[{i}/{len(plan)}] {run_name(variant, seed)}: in {results}", file=sys.stderr)
                continue
            record = spawn(variant, seed, args)
            record["config"] = run_config(variant, args)
            with open(results, "a") as f:
                f.write(json.dumps(record) + "\n")
            wanted[key] = record
            line = f"[{i}/{len(plan)}] {run_name(variant, seed)}: {record['status']}"
            if record["status"] == "ok":
                line += (
                    f", test {record.get('test_accuracy')}, top-5 validation "
                    f"{record.get('top5_mean_validation')}, {record.get('trials_completed')} "
                    f"trials, {record.get('total_seconds')} s"
                )
            print(line, file=sys.stderr, flush=True)
        report = aggregate(wanted, variants, seeds)

    import keras_tuner
    import sklearn
    from _common import environment

    report["targets"]["total_seconds_max"] = args.total_limit
    env = environment(load_before)
    env["versions"] |= {"keras_tuner": keras_tuner.__version__, "sklearn": sklearn.__version__}
    print(
        json.dumps(
            {
                "bench": "search",
                "quick": args.quick,
                "recipe": run_config("svc", args)["recipe"],
                "seeds": seeds,
                "budget_s": args.budget,
                "total_limit_s": args.total_limit,
                "max_trials": args.max_trials,
                "ensemble": args.ensemble,
                "cv": args.cv,
                "results": None if temporary and args.results is None else str(results),
                **report,
                **env,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
