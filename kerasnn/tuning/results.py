"""A search's results: the table rebuilt from the trial files, its plot, what `search` returns.

KerasTuner writes one ``trial.json`` per trial into ``<directory>/tuner/trial_<id>/``, kerasnn's
trial adds ``kerasnn.json`` beside it (epochs, best epoch, seconds, stop reason, the reason of a
failure). `write_results` rebuilds ``results.csv`` and ``results.json`` from them (atomically,
after every trial), `plot_results` draws ``results.png``.

Trials are numbered from 1 wherever a person reads them (the ``trial`` column, ``best.json``,
the summary, the plot), as KerasTuner's own ``Trial #N`` display does; ``trial_id`` keeps
KerasTuner's id (``"0"``, or ``"00"`` with 10 trials or more: Trial #1).
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import json
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kerasnn import _atomic, _json

__all__ = [
    "COMPLETED",
    "FAILED",
    "PROJECT",
    "TRIAL_FILE",
    "SearchResult",
    "direction",
    "load_json",
    "plot_results",
    "read_trials",
    "trial_number",
    "write_results",
]

PROJECT = "tuner"  # KerasTuner's project folder inside the search directory
TRIAL_FILE = "kerasnn.json"  # what kerasnn adds to KerasTuner's trial folder
COMPLETED, FAILED = "COMPLETED", "FAILED"
_MAXIMIZED = ("accuracy", "auc", "precision", "recall", "f1", "r2")


def direction(objective: str) -> str:
    """``"max"`` for accuracy-like metrics (accuracy, auc…), else ``"min"``."""
    return "max" if any(objective.endswith(k) for k in _MAXIMIZED) else "min"


def trial_number(trial_id: str | int) -> int:
    """The number KerasTuner displays for trial `trial_id` (``Trial #N``): its id + 1.

    Example:

    >>> trial_number("00")
    1
    """
    return int(trial_id) + 1


def load_json(path: str | os.PathLike) -> dict | None:
    """The JSON file at `path`, or `None` when it is missing or being written."""
    try:
        return _json.read(path)
    except (OSError, json.JSONDecodeError):
        return None  # a file being written by another process: picked up next time


def read_trials(directory: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """Every trial of a search directory, in trial order, and the hyperparameter specs.

    Returns:
        ``(rows, specs)``: one row per trial (``trial``: its number from 1, ``trial_id``,
        ``status``, ``score``, each
        hyperparameter, ``epochs``, ``best_epoch``, ``seconds``, ``stop_reason``,
        ``tuner_id``, ``reason``, ``stage``; with cross-validation ``fold1``… ``foldK``,
        ``cv_mean`` and ``cv_std``; a Hyperband trial's ``bracket``, ``round`` and the trial
        it ``continues``) and ``{name: {"log": bool, "numeric": bool, "fixed": bool}}``
        (``fixed``: a `Fixed` hyperparameter, or a choice or range of one value).
    """
    project = Path(directory) / PROJECT
    rows, specs = [], {}
    paths = glob.glob(os.path.join(glob.escape(str(project)), "trial_*", "trial.json"))
    for path in sorted(paths, key=lambda p: int(Path(p).parent.name.removeprefix("trial_"))):
        trial = load_json(path)
        if trial is None:
            continue
        extra = load_json(os.path.join(os.path.dirname(path), TRIAL_FILE)) or {}
        for hp in trial["hyperparameters"]["space"]:
            config = hp["config"]
            numeric = hp["class_name"] in ("Int", "Float") or (
                hp["class_name"] == "Choice"
                and all(
                    isinstance(v, int | float) and not isinstance(v, bool)
                    for v in config.get("values", [])
                )
            )
            fixed = (
                hp["class_name"] == "Fixed"
                or (hp["class_name"] == "Choice" and len(config.get("values", [])) < 2)
                or (
                    hp["class_name"] in ("Int", "Float")
                    and config.get("min_value") == config.get("max_value")
                )
            )
            specs.setdefault(
                config["name"],
                {"log": config.get("sampling") == "log", "numeric": numeric, "fixed": fixed},
            )
        reason = extra.get("reason")
        if reason is None and trial.get("message"):
            reason = trial["message"].strip().splitlines()[-1]
        status = trial["status"]
        if status == "INVALID":
            status = FAILED
        row = {
            "trial": trial_number(trial["trial_id"]),
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
            "stage": extra.get("stage", 1),
        }
        for key in ("continues", "bracket", "round"):  # a Hyperband trial's place
            if extra.get(key) is not None:
                row[key] = extra[key]
        folds = extra.get("folds")
        if folds:
            row |= {f"fold{i}": score for i, score in enumerate(folds, start=1)}
            row |= {"cv_mean": statistics.fmean(folds), "cv_std": statistics.pstdev(folds)}
        rows.append(row)
    return rows, specs


def write_results(directory: str | os.PathLike, objective: str | None = None) -> list[dict]:
    """Rebuilds `results.csv` and `results.json` from the trial files (atomic writes).

    Returns:
        The trials as written to results.json (the score under the objective's name).
    """
    directory = Path(directory)
    rows, specs = read_trials(directory)
    meta = load_json(str(directory / "search.json")) or {}
    objective = objective or meta.get("objective", "score")
    hp_names = list(specs)
    folds = max(
        (int(k[4:]) for r in rows for k in r if k[:4] == "fold" and k[4:].isdigit()), default=0
    )
    cv = [*(f"fold{i}" for i in range(1, folds + 1)), "cv_mean", "cv_std"] if folds else []
    hyperband = [k for k in ("bracket", "round", "continues") if any(k in r for r in rows)]
    columns = [
        "trial",
        "trial_id",
        "status",
        objective,
        "stage",
        *cv,
        *hp_names,
        *hyperband,
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
    _atomic.write_text(directory / "results.csv", out.getvalue())
    table = {
        "objective": objective,
        "direction": meta.get("direction"),
        "hyperparameters": specs,
        "trials": [
            {**{k: v for k, v in row.items() if k != "score"}, objective: row["score"]}
            for row in rows
        ],
    }
    _atomic.write_text(directory / "results.json", _json.dumps(table) + "\n")
    return table["trials"]


def plot_results(
    rows: list[dict], specs: Mapping[str, Mapping[str, bool]], objective: str, path: os.PathLike
) -> Any:
    """`results.png`: the objective of each completed trial against each sampled
    hyperparameter.

    Only hyperparameters that were sampled get a panel: not the fixed ones (a `Fixed`, or a
    choice or range of one value) nor those no completed trial used (a condition never met).
    Log-sampled hyperparameters get a log x axis; choices of strings/booleans are placed at
    their option's position. The title counts the failed trials and names the best one (red
    star) by its number.

    Returns:
        The matplotlib `Figure` (closed after saving).
    """
    import matplotlib.pyplot as plt

    from kerasnn import plots  # noqa: F401  (selects matplotlib's Agg backend)

    done = [r for r in rows if r["status"] == COMPLETED and r["score"] is not None]
    names = [
        n
        for n, spec in specs.items()
        if not spec.get("fixed") and any(r.get(n) is not None for r in done)
    ]
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
    star = f"red star: best, trial {best['trial']}" if best is not None else "red star: best"
    fig.suptitle(f"{len(done)} completed trials, {failed} failed ({star})")
    fig.tight_layout()
    with _atomic.replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return fig


@dataclasses.dataclass
class SearchResult:
    """What `kerasnn.search` returns.

    Attributes:
        directory: the search folder (results.csv/json/png, best.keras, tuner/).
        objective: the metric the search optimized, and `direction` (``"max"``/``"min"``).
        trials: the results table, one dict per trial (``trial``: its number from 1).
        best: `best.json`'s content (the best trial's ``trial`` number, from 1, and
            KerasTuner's ``trial_id``; hyperparameters, validation score, test metrics after
            retraining; ``members``: one record per retrained configuration, several with
            ``ensemble``), or `None` (no completed trial, or a worker).
        role: ``"local"``, ``"chief"`` or ``"worker"``.
        tuner: ``"random"``, ``"grid"``, ``"hyperband"`` or ``"bayesian"``.
        stopped_by: ``"time_budget"`` when the time budget ended the search, else `None`.
        time_budget: the budget in seconds, or `None`.
        search_seconds: the trials' wall time in this process (retraining apart).
        retrain_seconds: the wall time of retraining the best configuration(s) (without
            retraining: of loading and evaluating the trials' models).
    """

    directory: Path
    objective: str
    direction: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    role: str
    tuner: str = "random"
    stopped_by: str | None = None
    time_budget: float | None = None
    search_seconds: float | None = None
    retrain_seconds: float | None = None

    @property
    def completed(self) -> int:
        """How many trials completed."""
        return sum(t["status"] == COMPLETED for t in self.trials)

    @property
    def failed(self) -> int:
        """How many trials failed (NaN loss, a combination the builder refused…)."""
        return sum(t["status"] == FAILED for t in self.trials)

    def summary(self) -> str:
        """One line: trials completed and failed (and whether the time budget ended the
        search), the best trial (numbered as KerasTuner's ``Trial #N``) and its test metrics,
        the trials' and the retraining's times, the folder."""
        line = f"{self.completed} trials completed, {self.failed} failed"
        if self.stopped_by == "time_budget":
            line += f" (the time budget of {self.time_budget:g} s ended the search)"
        if self.best is not None:
            test = ", ".join(f"{k} {v:.4f}" for k, v in self.best["test_metrics"].items())
            members = self.best.get("members") or []
            what = "retrained on train+validation"
            if self.best.get("retrained") is False:
                what = "its trial's own model"
                if (self.best.get("models") or 1) > len(members):  # K fold models each
                    what = "its trial's own fold models"
            if len(members) > 1:
                what = f"averaged with the next {len(members) - 1} best (each {what})"
            line += (
                f"; best trial {self.best['trial']} {self.objective} "
                f"{self.best['score']:.4f}, {what} -> test: {test}"
            )
        if self.search_seconds is not None:
            line += f" | trials {self.search_seconds:.0f} s"
            if self.retrain_seconds is not None and self.best is not None:
                step = "retraining" if self.best.get("retrained", True) else "ensembling"
                line += f", {step} {self.retrain_seconds:.0f} s"
        return f"{line} | {self.directory}"
