"""The callbacks `fit` runs: early stopping from its argument, probe batches filled in, and the
order that lets every callback see what kerasnn's write into `logs`."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from kerasnn._validation import invalid
from kerasnn.callbacks import (
    ActivationStats,
    EarlyStopping,
    GradientNorms,
    HistoryLog,
    LearningRateLogger,
    NaNGuard,
    SeedState,
    UpdateRatios,
)
from kerasnn.callbacks.early_stopping import missing_monitor_message
from kerasnn.runs import RunFolder
from kerasnn.training._data import ArrayPair
from kerasnn.training._pipeline import EpochCounter

__all__ = [
    "PROBE_SAMPLES",
    "callback_list",
    "check_monitor",
    "early_stopping_callback",
    "fill_probes",
]

# Training samples ActivationStats probes when fit fills its probe batch in.
PROBE_SAMPLES = 512
# kerasnn's callbacks that write into `logs`: they run before the user's.
_WRITE_LOGS = (GradientNorms, UpdateRatios, ActivationStats, LearningRateLogger)


def early_stopping_callback(
    early_stopping: bool | int | dict | EarlyStopping, has_validation: bool
) -> EarlyStopping | None:
    """The `EarlyStopping` that `fit`'s `early_stopping` argument asks for, or `None`.

    Raises:
        ValueError: `early_stopping` is none of the accepted forms.
    """
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    if early_stopping is False or early_stopping is None:
        return None
    if not has_validation:
        return None
    if early_stopping is True:
        return EarlyStopping()
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        return EarlyStopping(patience=early_stopping)
    if isinstance(early_stopping, dict):
        return EarlyStopping(**early_stopping)
    raise invalid(
        "early_stopping",
        "a bool, a patience (int), a dict of EarlyStopping arguments or an EarlyStopping instance",
        early_stopping,
    )


def check_monitor(
    model: keras.Model,
    monitor: str,
    validation: ArrayPair,
    extra: Sequence[keras.callbacks.Callback],
) -> None:
    """Refuses, before training, an early-stopping monitor that no epoch will log."""
    if monitor in ("loss", "val_loss", "learning_rate", "momentum"):
        return
    if monitor.startswith(("grad_norm", "act_")):
        return  # per-layer keys of GradientNorms / ActivationStats: checked at the first epoch
    if any(type(cb).__module__.split(".")[0] not in ("kerasnn", "keras") for cb in extra):
        return  # the user's own callbacks may log more: EarlyStopping checks at the first epoch
    # Compiled metrics are named only once built: one evaluation batch builds them.
    x_val, y_val = validation
    results = model.evaluate(x_val[:1], y_val[:1], verbose=0, return_dict=True)
    model.reset_metrics()
    logged = {"learning_rate", *results, *(f"val_{k}" for k in results)}
    if monitor not in logged:
        raise ValueError(missing_monitor_message(monitor, logged))


def fill_probes(callbacks: Sequence[keras.callbacks.Callback], x: np.ndarray) -> None:
    """Gives `ActivationStats` without a probe the first `PROBE_SAMPLES` training samples."""
    for cb in callbacks:
        if isinstance(cb, ActivationStats) and cb.probe is None:
            cb.probe = x[:PROBE_SAMPLES]


def callback_list(
    extra: Sequence[keras.callbacks.Callback],
    guard: NaNGuard,
    stopper: EarlyStopping | None,
    folder: RunFolder | None,
    epoch: tf.Variable | None,
    *,
    log_momentum: bool,
) -> list[keras.callbacks.Callback]:
    """Every callback of one `fit`, in the order they must run.

    The epoch counter first (the pipeline's shuffle), the learning-rate logger and the NaN
    guard, then kerasnn's callbacks that write into `logs` so that the others (TensorBoard,
    CSVLogger, checkpoints) see their values whatever order the user listed them in, then
    early stopping (after the guard, so that its best weights win), then the run folder's
    history, generator states and backup.
    """
    producers = [cb for cb in extra if isinstance(cb, _WRITE_LOGS)]
    consumers = [cb for cb in extra if not isinstance(cb, _WRITE_LOGS)]
    cbs: list[keras.callbacks.Callback] = [
        LearningRateLogger(log_momentum=log_momentum),
        guard,
        *producers,
        *consumers,
    ]
    if epoch is not None:
        cbs.insert(0, EpochCounter(epoch))
    if stopper is not None:
        if folder is not None and stopper.state_dir is None:
            stopper.state_dir = folder.state_dir
        cbs.append(stopper)
    if folder is not None:
        cbs += [
            HistoryLog(folder.file("history.csv")),
            # Dropout/noise/augmentation generator states: BackupAndRestore does not keep them.
            SeedState(folder.state_dir),
            keras.callbacks.BackupAndRestore(str(folder.backup_dir)),
        ]
    return cbs
