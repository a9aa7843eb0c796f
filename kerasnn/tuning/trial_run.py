"""One trial's training: a resumable run folder per fit, k-fold scores, Hyperband warm starts,
the time budget's stop at an epoch boundary.

Each fit of a trial writes a `kerasnn.runs.RunFolder` inside the trial's KerasTuner folder
(``run/``, or ``fold1/`` … ``foldK/`` with cross-validation): its staging folder keeps Keras's
`BackupAndRestore` checkpoint and kerasnn's resumable state (early stopping, the dropout and
augmentation generators), so a trial killed mid-training continues from its last completed
epoch when the search is resumed (KerasTuner re-queues it with the same values), and a fold
that had finished is read back, not trained again. The finished folder holds the trial's
``model.keras`` (its best epoch's weights), ``history.csv`` and ``metrics.json``.

With ``cv=K`` the training split is cut into K stratified folds (`sklearn`'s `StratifiedKFold`,
`KFold` for regression; the same folds for every trial of a search seed) and the objective is
the mean of the K validation scores. A Hyperband trial that continues an earlier one
(``tuner/trial_id``) starts from that trial's weights and trains the epochs it still lacks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerasnn import _json, training
from kerasnn.callbacks import read_history_csv
from kerasnn.runs import FINISHED_MARKER, RunFolder
from kerasnn.training._run_files import HISTORY_FILE

__all__ = ["TrialFits", "cv_folds", "fit_trial"]


class _Deadline(keras.callbacks.Callback):
    """Stops training at the end of the first epoch that ends after `deadline` (a
    `time.time()` value); ``stopped`` says whether it did."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.stopped = True


def cv_folds(y: np.ndarray, k: int, *, seed: int, task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The `k` folds of a training split: ``[(train_indices, validation_indices), ...]``.

    Stratified by class (`sklearn.model_selection.StratifiedKFold`) for classification, plain
    `KFold` for regression; shuffled with `seed`.

    Raises:
        ValueError: `k` is larger than the smallest class (stratification needs one sample of
            each class per fold) or than the number of samples.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray(y)
    if task != "regression":
        labels = labels.argmax(-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.ravel()
        smallest = int(np.bincount(labels.astype(int)).min(initial=len(labels)))
        if k > smallest:
            raise ValueError(
                f"Received an invalid value for argument cv, expected at most {smallest} folds "
                f"(the smallest class of the training split has {smallest} samples; each fold "
                f"needs one of each class). Received: cv={k}"
            )
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % 2**32)
        return list(splitter.split(np.zeros(len(labels)), labels))
    if k > len(labels):
        raise ValueError(
            f"Received an invalid value for argument cv, expected at most {len(labels)} folds "
            f"(the training split's samples). Received: cv={k}"
        )
    return list(KFold(n_splits=k, shuffle=True, random_state=seed % 2**32).split(labels))


@dataclasses.dataclass
class TrialFits:
    """What a trial's fits gave.

    Attributes:
        epochs: epochs trained (the mean over folds with cross-validation), counted from the
            start of a Hyperband chain.
        best_epoch: the best epoch (the median of the folds' best epochs), from the start of
            a Hyperband chain: how long the configuration is retrained.
        stop_reason: ``completed``, ``early_stopping``, ``nan_loss`` or ``time_budget`` (the
            budget stopped the fit at an epoch boundary).
        best_metrics: the metrics at the best epoch (means over folds).
        message: a NaN stop's detail, else `None`.
        folds: each fold's objective with cross-validation, else `None`.
        resumed_epochs: epochs restored from an interrupted fit's backup (a resumed search),
            summed over folds; 0 when every fit started from its first epoch.
    """

    epochs: int
    best_epoch: int | None
    stop_reason: str
    best_metrics: dict[str, float]
    message: str | None = None
    folds: list[float] | None = None
    resumed_epochs: int = 0


def _summary(result: training.FitResult) -> dict[str, Any]:
    return {
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "best_metrics": dict(result.best_metrics),
        "message": result.message,
    }


def _fit_once(
    build: Callable[[], keras.Model],
    train: tuple[np.ndarray, np.ndarray],
    *,
    run_dir: Path,
    arguments: Mapping[str, Any],
    seed: int,
    validation: tuple[np.ndarray, np.ndarray] | None,
    deadline: float | None,
    callbacks: Sequence[keras.callbacks.Callback],
    warm_start: Path | None,
) -> dict[str, Any]:
    """One resumable fit into `run_dir`; a finished one is read back."""
    if (run_dir / FINISHED_MARKER).exists():
        done = _json.read(run_dir / FINISHED_MARKER)
        keys = ("epochs", "best_epoch", "stop_reason", "best_metrics", "resumed_epochs")
        return {k: done.get(k) for k in keys}
    folder = RunFolder(run_dir, figures=False)  # results.png shows the search
    folder.resume = folder.backup_dir.exists()  # killed mid-fit: continue from its backup
    resumed = 0
    if folder.resume and folder.file(HISTORY_FILE).exists():
        resumed = len(read_history_csv(folder.file(HISTORY_FILE)))
    model = build()
    start = None if warm_start is None else warm_start / run_dir.name / "model.keras"
    if start is not None and start.exists() and not folder.resume:
        model.set_weights(keras.models.load_model(start, compile=False).get_weights())
    stop = _Deadline(deadline) if deadline is not None else None
    extra = [*callbacks, *([stop] if stop else [])]
    kwargs = dict(arguments)
    kwargs["callbacks"] = [*kwargs.get("callbacks", ()), *extra]
    if validation is not None:
        kwargs["validation_data"] = validation
    result = training.fit(model, train, seed=seed, verbose=0, run_dir=folder, **kwargs)
    summary = _summary(result) | {"resumed_epochs": resumed}
    if stop is not None and stop.stopped and result.stop_reason == "completed":
        summary["stop_reason"] = "time_budget"
    if result.stop_reason != "nan_loss":
        # Read back (the finished folder) on a resume; kept whatever the outcome.
        meta = _json.read(folder.file(FINISHED_MARKER))
        meta |= {"stop_reason": summary["stop_reason"], "resumed_epochs": resumed}
        folder.write_json(FINISHED_MARKER, meta)
    folder.finalize()
    del model
    return summary


def fit_trial(
    build: Callable[[], keras.Model],
    x: np.ndarray,
    y: np.ndarray,
    *,
    trial_dir: Path,
    arguments: Mapping[str, Any],
    seed: int,
    objective: str,
    folds: list[tuple[np.ndarray, np.ndarray]] | None = None,
    deadline: float | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    warm_start: Path | None = None,
    initial_epoch: int = 0,
) -> TrialFits:
    """Trains one trial's configuration: once, or once per fold.

    Args:
        build: returns the trial's compiled model (seeded: each fold starts from the same
            weights).
        x: the training split's inputs; `y` its targets.
        trial_dir: the trial's folder (KerasTuner's ``trial_<id>``).
        arguments: `kerasnn.fit` arguments (epochs, batch size, early stopping…).
        seed: the search seed (shuffles, validation split, dropout).
        objective: the metric the search optimizes (its value is what the folds average).
        folds: `cv_folds` of the training split, or `None` (`kerasnn.fit`'s validation split).
        deadline: the time budget's end (`time.time()`), or `None`.
        callbacks: extra Keras callbacks of the (first) fit, e.g. the HParams dashboard's.
        warm_start: a Hyperband trial's predecessor's folder: each fit starts from the
            weights of its namesake there (``run/model.keras``, ``fold<i>/model.keras``).
        initial_epoch: the epochs that predecessor trained (added to the epoch counts).

    Returns:
        A `TrialFits`.
    """
    if folds is None:
        runs = [
            _fit_once(
                build,
                (x, y),
                run_dir=trial_dir / "run",
                arguments=arguments,
                seed=seed,
                validation=None,
                deadline=deadline,
                callbacks=callbacks,
                warm_start=warm_start,
            )
        ]
    else:
        runs = []
        for i, (train, val) in enumerate(folds, start=1):
            runs.append(
                _fit_once(
                    build,
                    (x[train], y[train]),
                    run_dir=trial_dir / f"fold{i}",
                    arguments=arguments,
                    seed=seed,
                    validation=(x[val], y[val]),
                    deadline=deadline,
                    callbacks=callbacks if i == 1 else (),
                    warm_start=warm_start,
                )
            )
            if runs[-1]["stop_reason"] in ("nan_loss", "time_budget"):
                break
    last = runs[-1]
    if last["stop_reason"] == "nan_loss":
        return TrialFits(
            epochs=initial_epoch + int(last["epochs"]),
            best_epoch=None,
            stop_reason="nan_loss",
            best_metrics={},
            message=last.get("message"),
        )
    names = set.intersection(*(set(r["best_metrics"]) for r in runs))
    metrics = {k: float(np.mean([r["best_metrics"][k] for r in runs])) for k in sorted(names)}
    best = [r["best_epoch"] for r in runs if r["best_epoch"] is not None]
    stop = "time_budget" if any(r["stop_reason"] == "time_budget" for r in runs) else None
    fold_scores = None
    if folds is not None:
        fold_scores = [float(r["best_metrics"].get(objective, math.nan)) for r in runs]
        if len(runs) < len(folds):  # the budget cut the folds short: no full CV score
            stop = "time_budget"
    return TrialFits(
        epochs=initial_epoch + round(float(np.mean([r["epochs"] for r in runs]))),
        best_epoch=initial_epoch + int(np.median(best)) if best else None,
        stop_reason=stop or last["stop_reason"],
        best_metrics=metrics,
        folds=fold_scores,
        resumed_epochs=sum(int(r.get("resumed_epochs") or 0) for r in runs),
    )
