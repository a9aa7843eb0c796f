"""`fit`: trains a compiled model (step 4 of the recipe).

`fit` feeds in-memory arrays through `tf.data` (shuffle, batch, prefetch), runs several steps
per graph execution, fixes seeds, stops early on the validation loss with best-weight restore,
stops cleanly on a NaN loss (naming the exact step, keeping only finite weights), and can write
a run folder (history, metrics, model, curves) that a killed run resumes from.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from kerasnn import callbacks as callback_registry
from kerasnn import data_formats, schedules
from kerasnn._seeding import seed_everything
from kerasnn._validation import fraction, positive_int
from kerasnn.callbacks import EarlyStopping, NaNGuard, UpdateRatios
from kerasnn.datasets import Dataset, split
from kerasnn.runs import RunFolder
from kerasnn.training._callbacks import (
    callback_list,
    check_monitor,
    early_stopping_callback,
    fill_probes,
)
from kerasnn.training._data import ArrayPair, Data, arrays, check_data
from kerasnn.training._evaluate import evaluate
from kerasnn.training._outcome import outcome
from kerasnn.training._pipeline import (
    resolve_steps_per_execution,
    set_steps_per_execution,
    streams_epochs,
    train_pipeline,
    validation_pipeline,
)
from kerasnn.training._run_files import read_history, write_run
from kerasnn.training._tasks import task_of
from kerasnn.training.result import FitResult

__all__ = ["fit"]


def fit(
    model: keras.Model,
    data: Data,
    *,
    epochs: int = 100,
    batch_size: int = 32,
    validation_split: float = 0.1,
    validation_data: ArrayPair | None = None,
    callbacks: Sequence[keras.callbacks.Callback | str | dict] = (),
    early_stopping: bool | int | dict | EarlyStopping = True,
    lr_schedule: str | dict | keras.optimizers.schedules.LearningRateSchedule | None = None,
    seed: int = 0,
    shuffle: bool = True,
    steps_per_execution: int | str = "auto",
    run_dir: str | os.PathLike | RunFolder | None = None,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int | str = "auto",
) -> FitResult:
    """Trains a compiled model (step 4 of the recipe).

    A NaN or ±inf loss stops training (`kerasnn.callbacks.NaNGuard`): every training step
    checks its own batch loss in the graph, so `FitResult.non_finite_loss` names the first bad
    step exactly (epoch, step within it, optimizer step) whatever `steps_per_execution`, at
    no change to the results. The model then never keeps non-finite weights: it holds early
    stopping's best epoch if there is one, else the weights and optimizer state of the last
    epoch that ended with a finite loss, else (NaN in the first epoch) those from before
    training, and the run folder then gets no ``model.keras``; `FitResult.kept_weights` and
    the message say which.

    Args:
        model: a compiled `keras.Model` (see `kerasnn.compile`).
        data: a `kerasnn.datasets.Dataset` (its train split is used; its test split is
            evaluated at the end into `FitResult.test_metrics`) or an ``(x, y)`` pair.
        epochs: maximum number of epochs. Defaults to 100.
        batch_size: samples per gradient step. Under a `tf.distribute` strategy (model built
            in ``strategy.scope()``) this is the global batch, split evenly across the
            replicas; see `kerasnn.devices.global_batch_size`. Defaults to 32.
        validation_split: fraction of the training data held out for validation, split
            stratified (classification) with `seed` — unlike Keras's, which takes the last
            samples unshuffled. 0 disables it. Ignored when `validation_data` is given.
            Defaults to 0.1.
        validation_data: an explicit ``(x_val, y_val)`` pair. Defaults to `None`.
        callbacks: extra Keras callbacks, or their recipe forms (``"activation_stats"``,
            ``{"gradient_norms": {"every_n_steps": 10}}``, see `kerasnn.callbacks.get`).
            `ActivationStats` without a probe gets the first 512 training samples. Defaults
            to none.
        early_stopping: `True` (patience 10 on ``val_loss``, best weights restored), an int
            patience, a dict of `kerasnn.callbacks.EarlyStopping` arguments, an instance, or
            `False`. Needs validation data. Defaults to `True`.
        lr_schedule: a learning-rate schedule for this training: a `LearningRateSchedule`, a
            name or ``{name: {argument: value}}`` from `kerasnn.schedules.names()` (α₀ defaults
            to the optimizer's rate; steps per epoch and epochs are filled in). It replaces the
            optimizer's rate. Defaults to `None` (keep the optimizer's rate). The rate of each
            epoch (and the momentum a ``one_cycle`` schedule cycles) is in the history as
            ``learning_rate`` (``momentum``) whatever the schedule.
        seed: seeds Python, NumPy, TensorFlow (weights, dropout), the shuffle order and the
            validation split: the same seed gives the same result on CPU. Defaults to 0.
        shuffle: reshuffle the training data every epoch, in an order fixed by `seed` and the
            epoch number (so a resumed run sees the same batches). Defaults to `True`.
        steps_per_execution: training steps run per graph execution; ``"auto"`` fuses a whole
            epoch, up to 64 steps (1 under a strategy with several replicas, where Keras
            cannot fuse steps). Defaults to ``"auto"``.
        run_dir: folder for the run's `history.csv`, `metrics.json`, `model.keras` and
            `history.png`; written in a staging folder and moved into place at the end. Either
            a path or an open `kerasnn.runs.RunFolder` (which the caller then finalizes).
            Defaults to `None` (nothing written).
        resume: continue an interrupted run in `run_dir` from its last completed epoch
            (`keras.callbacks.BackupAndRestore`). Defaults to `False`.
        overwrite: replace a finished run in `run_dir` once this one finishes. Defaults to
            `False`.
        verbose: Keras progress output (0, 1, 2 or ``"auto"``). Defaults to ``"auto"``.

    Returns:
        A `FitResult`.

    Raises:
        ValueError: non-positive epochs/batch size, a validation split outside [0, 1), data
            that does not fit the model (shape, NaN/inf, labels outside [0, classes)), or a
            `run_dir` that already holds a run — all before any training.
        RuntimeError: the model is not compiled.

    Example:

    >>> import kerasnn as knn
    >>> data = knn.datasets.load("iris")
    >>> model = knn.compile(knn.models.mlp(data, hidden=[16]), learning_rate=0.01)
    >>> result = fit(model, data, epochs=5, verbose=0)
    >>> len(result.history["loss"])
    5
    """
    _check_arguments(model, epochs=epochs, batch_size=batch_size, split=validation_split)
    x, y, x_val, y_val = _training_arrays(model, data, validation_data, validation_split, seed)
    extra = [callback_registry.get(cb) for cb in callbacks]
    steps_per_execution = resolve_steps_per_execution(
        model, steps_per_execution, len(x), batch_size
    )
    steps_per_epoch = math.ceil(len(x) / batch_size)
    schedule = _schedule(model, lr_schedule, steps_per_epoch=steps_per_epoch, epochs=epochs)
    fill_probes(extra, x)
    stopper = early_stopping_callback(early_stopping, has_validation=x_val is not None)
    if stopper is not None:
        check_monitor(model, stopper.monitor, (x_val, y_val), extra)
    folder, owns_folder = _open_folder(run_dir, overwrite=overwrite, resume=resume)

    seed_everything(seed)
    set_steps_per_execution(model, steps_per_execution)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False) if shuffle else None
    repeat = streams_epochs(model, steps_per_epoch, steps_per_execution)
    train_ds = train_pipeline(x, y, batch_size, seed=seed, epoch=epoch, repeat=repeat)
    val_ds = validation_pipeline(x_val, y_val, batch_size)
    # Stops at the first non-finite batch loss (its exact step: `guard.watch`) and puts back
    # the last finite epoch's weights and optimizer state.
    guard = NaNGuard(verbose=0 if verbose == 0 else 1)
    log_momentum = _cycles_momentum(schedule)
    cbs = callback_list(extra, guard, stopper, folder, epoch, log_momentum=log_momentum)
    with _scheduled(model, schedule):
        history, wall_time = _train(
            model,
            train_ds,
            val_ds,
            cbs,
            guard,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch if repeat else None,
            verbose=verbose,
            folder=folder,
        )

    result = _result(
        model,
        data,
        history,
        stopper,
        guard,
        has_folder=folder is not None,
        wall_time=wall_time,
        steps_per_execution=steps_per_execution,
        notes=[note for cb in extra if isinstance(cb, UpdateRatios) for note in cb.flags()],
    )
    if folder is not None:
        write_run(folder, model, result, extra)
        result.run_dir = folder.path
        if owns_folder:
            folder.finalize()
    return result


def _check_arguments(model: keras.Model, *, epochs: int, batch_size: int, split: float) -> None:
    """`fit`'s checks of its numbers and of the model, before anything else."""
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    fraction("validation_split", split, allow_zero=True)
    if not model.compiled:
        raise RuntimeError(
            "The model is not compiled: call kerasnn.compile(model, ...) (or model.compile) "
            "before kerasnn.fit."
        )
    data_formats.check_data_formats(model)  # channels_first layers this CPU cannot run


def _training_arrays(
    model: keras.Model,
    data: Data,
    validation_data: ArrayPair | None,
    validation_split: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(x, y, x_val, y_val)``, checked against the model; no validation: ``x_val is None``."""
    x, y = arrays(data, "train")
    check_data(model, x, y, "data")
    if validation_data is not None:
        x_val, y_val = arrays(validation_data, "train")
        check_data(model, x_val, y_val, "validation_data")
    elif validation_split > 0:
        stratify = task_of(model) in ("classification", "binary")
        x, x_val, y, y_val = split(x, y, test_size=validation_split, seed=seed, stratify=stratify)
    else:
        x_val = y_val = None
    return x, y, x_val, y_val


def _schedule(
    model: keras.Model,
    lr_schedule: str | dict | keras.optimizers.schedules.LearningRateSchedule | None,
    *,
    steps_per_epoch: int,
    epochs: int,
) -> keras.optimizers.schedules.LearningRateSchedule | None:
    """`fit`'s `lr_schedule` as a schedule object, checked before training (or `None`)."""
    if lr_schedule is None:
        return None
    schedule = schedules.get(
        lr_schedule,
        learning_rate=float(np.asarray(model.optimizer.learning_rate)),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
    )
    if isinstance(schedule, schedules.OneCycle) and schedule.cycle_momentum:
        schedules.momentum_attribute(model.optimizer)  # raises for SGD, before training
    return schedule


def _cycles_momentum(
    schedule: keras.optimizers.schedules.LearningRateSchedule | None,
) -> bool:
    """Whether `schedule` is a one-cycle schedule that also cycles the momentum."""
    return isinstance(schedule, schedules.OneCycle) and bool(schedule.cycle_momentum)


@contextlib.contextmanager
def _scheduled(
    model: keras.Model, schedule: keras.optimizers.schedules.LearningRateSchedule | None
) -> Iterator[None]:
    """Trains with `schedule` as the optimizer's rate, a one-cycle schedule's momentum bound
    to the optimizer (and unbound on exit, so that the model saves)."""
    if schedule is None:
        yield
        return
    model.optimizer.learning_rate = schedule
    unbind_momentum = None
    if _cycles_momentum(schedule):
        unbind_momentum = schedules.bind_momentum(schedule, model.optimizer)
    model.make_train_function(force=True)
    try:
        yield
    finally:
        if unbind_momentum is not None:
            unbind_momentum()  # the optimizer's config holds floats again (saving needs it)
            model.make_train_function(force=True)


def _train(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    callbacks: list[keras.callbacks.Callback],
    guard: NaNGuard,
    *,
    epochs: int,
    steps_per_epoch: int | None,
    verbose: int | str,
    folder: RunFolder | None,
) -> tuple[dict[str, list[float]], float]:
    """Runs Keras's training loop, every step's loss checked by `guard`.

    With `steps_per_epoch`, `train_ds` is one endless stream of epochs and Keras keeps its
    iterator from epoch to epoch; without, `train_ds` is one epoch, iterated anew each epoch.

    Returns:
        ``(history, seconds)``: the whole history (from the run folder's ``history.csv``
        when there is one, so a resumed run's earlier epochs are in it) and the seconds
        spent training in this process.
    """
    start = time.perf_counter()
    with guard.watch(model):
        keras_history = model.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=val_ds,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # train_ds shuffles itself, per (seed, epoch)
        )
    wall_time = time.perf_counter() - start
    if folder is not None:
        return read_history(folder), wall_time
    return {k: [float(v) for v in vals] for k, vals in keras_history.history.items()}, wall_time


def _open_folder(
    run_dir: str | os.PathLike | RunFolder | None, *, overwrite: bool, resume: bool
) -> tuple[RunFolder | None, bool]:
    """The open run folder (or `None`) and whether `fit` finalizes it (it made it)."""
    if isinstance(run_dir, RunFolder):
        return run_dir.open(), False
    if run_dir is not None:
        return RunFolder(run_dir, overwrite=overwrite, resume=resume).open(), True
    return None, False


def _result(
    model: keras.Model,
    data: Data,
    history: dict[str, list[float]],
    stopper: EarlyStopping | None,
    guard: NaNGuard,
    *,
    has_folder: bool,
    wall_time: float,
    steps_per_execution: int,
    notes: list[str],
) -> FitResult:
    """The `FitResult` of a finished training; the test split is evaluated when trained
    weights were kept."""
    n_epochs = len(history["loss"])
    end = outcome(n_epochs, stopper, guard, has_folder)
    trained = end.kept_weights not in ("initial", "none")
    best = end.best_epoch
    return FitResult(
        history=history,
        epochs=n_epochs,
        best_epoch=best,
        best_metrics={} if best is None else {k: v[best - 1] for k, v in history.items()},
        final_metrics={k: v[-1] for k, v in history.items()},
        test_metrics=evaluate(model, data) if isinstance(data, Dataset) and trained else None,
        stop_reason=end.stop_reason,
        message=end.message,
        wall_time=wall_time,
        run_dir=None,
        steps_per_execution=steps_per_execution,
        stopped_epoch=end.stopped_epoch,
        kept_weights=end.kept_weights,
        kept_epoch=end.kept_epoch,
        non_finite_loss=guard.where,
        notes=notes,
    )
