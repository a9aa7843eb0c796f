"""The training facade: `compile`, `fit`, `evaluate` — steps 3 to 5 of the lectures' recipe.

`fit` feeds in-memory arrays through `tf.data` (shuffle, batch, prefetch), runs several steps
per graph execution, fixes seeds, stops early on the validation loss with best-weight restore,
stops cleanly on a NaN loss (naming the exact step, keeping only finite weights), and can write
a run folder (history, metrics, model, curves) that a killed run resumes from.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn import callbacks as callback_registry
from kerasnn import data_formats, optimizers, schedules
from kerasnn._validation import fraction, invalid, positive_int
from kerasnn.callbacks import (
    ActivationStats,
    EarlyStopping,
    GradientNorms,
    HistoryLog,
    LearningRateLogger,
    NaNGuard,
    SeedState,
    read_history_csv,
)
from kerasnn.callbacks.early_stopping import missing_monitor_message
from kerasnn.callbacks.nan_guard import NonFiniteLoss
from kerasnn.datasets import Dataset, split, validate_arrays
from kerasnn.runs import RunFolder

ArrayPair = tuple[Any, Any]
Data = Dataset | ArrayPair

# Most steps fused into one graph execution: a whole epoch of the lectures' small data sets.
# Beyond that the per-execution overhead is already small, and callbacks' batch hooks (called
# once per execution) stay reasonably frequent.
MAX_STEPS_PER_EXECUTION = 64
EVAL_BATCH_SIZE = 1024
# Training samples ActivationStats probes when fit fills its probe batch in.
PROBE_SAMPLES = 512


# --------------------------------------------------------------------------------------------
# compile
# --------------------------------------------------------------------------------------------
def default_loss(task: str) -> keras.losses.Loss:
    """The loss that matches the task's output layer (softmax/sigmoid/linear)."""
    return {
        "classification": keras.losses.SparseCategoricalCrossentropy,
        "binary": keras.losses.BinaryCrossentropy,
        "regression": keras.losses.MeanSquaredError,
    }[task]()


def default_metrics(task: str) -> list[keras.metrics.Metric]:
    """Accuracy for classification, accuracy + AUC for binary, MAE + RMSE for regression."""
    if task == "classification":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if task == "binary":
        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    return [
        keras.metrics.MeanAbsoluteError(name="mae"),
        keras.metrics.RootMeanSquaredError(name="rmse"),
    ]


def infer_task(model: keras.Model) -> str:
    """Reads the task from the model's output activation (softmax, sigmoid or linear).

    Raises:
        ValueError: the output activation does not say (pass `task=` or `loss=` to `compile`).
    """
    last = model.layers[-1]
    fn = getattr(last, "activation", None)
    name = getattr(fn, "__name__", None)
    units = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if name == "softmax":
        return "classification"
    if name == "sigmoid" and units == 1:
        return "binary"
    if name == "linear":
        return "regression"
    raise ValueError(
        "Could not tell the task from the model's output layer "
        f"({last.name!r}, activation {name!r}, {units} units): pass task='classification', "
        "'binary' or 'regression', or an explicit loss, to kerasnn.compile."
    )


def task_of(model: keras.Model) -> str | None:
    """The task implied by a compiled model's loss, or `None` for other losses."""
    loss = model.loss
    name = loss if isinstance(loss, str) else type(loss).__name__
    name = name.lower().replace("_", "")
    if name in ("sparsecategoricalcrossentropy", "categoricalcrossentropy"):
        return "classification"
    if name == "binarycrossentropy":
        return "binary"
    if name in ("meansquarederror", "mse", "meanabsoluteerror", "mae", "huber"):
        return "regression"
    return None


def compile(
    model: keras.Model,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    *,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    loss: Any = None,
    metrics: Sequence[Any] | None = None,
    task: str | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    jit_compile: bool | str = False,
    **optimizer_kwargs: Any,
) -> keras.Model:
    """Picks the optimizer and the loss, and compiles `model` (steps 2 and 3 of the recipe).

    Args:
        model: a `keras.Model`, e.g. from `kerasnn.models`.
        optimizer: a name from `kerasnn.optimizers.names()` (``"sgd"``, ``"momentum"``,
            ``"nesterov"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``…) or an optimizer instance.
            Defaults to ``"adam"``.
        learning_rate: a float or a `LearningRateSchedule`. Defaults to the optimizer's default.
        loss: a Keras loss (name or object). Defaults to the task's: sparse categorical
            cross-entropy, binary cross-entropy or mean squared error.
        metrics: Keras metrics. Defaults to the task's (accuracy; accuracy + AUC; MAE + RMSE).
        task: ``"classification"``, ``"binary"`` or ``"regression"``. Defaults to what the
            output layer's activation says (softmax, single sigmoid, linear).
        clipnorm: clip each gradient to this L2 norm. Defaults to `None`.
        clipvalue: clip each gradient element to ±this value. Defaults to `None`.
        jit_compile: compile the train step with XLA. Defaults to `False`: on the CPU benchmarks
            in `bench/` XLA made the digits MLP (batch 32) slower and the 784-512-512 MLP
            (batch 128) about 1.1x faster; measure for your model.
        **optimizer_kwargs: other optimizer arguments, e.g. ``momentum=0.95``,
            ``weight_decay=1e-4``.

    Returns:
        The same model, compiled.

    Raises:
        ValueError: unknown optimizer, bad learning rate, or a task that cannot be inferred.

    Example:

    >>> import kerasnn as knn
    >>> model = knn.models.mlp((4,), hidden=[8], outputs=3)
    >>> _ = compile(model, "momentum", learning_rate=0.05)
    >>> type(model.loss).__name__
    'SparseCategoricalCrossentropy'
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Received an invalid value for argument model, expected a keras.Model. "
            f"Received: model of type {type(model)}"
        )
    # Optimizer and metric variables belong to the strategy the model was built under
    # (kerasnn.devices.strategy): create them in its scope (a no-op without one).
    with model.distribute_strategy.scope():
        opt = optimizers.get(
            optimizer,
            learning_rate=learning_rate,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            **optimizer_kwargs,
        )
        if loss is None or metrics is None:
            task = task or infer_task(model)
        loss = default_loss(task) if loss is None else loss
        metrics = default_metrics(task) if metrics is None else list(metrics)
        model.compile(optimizer=opt, loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    Attributes:
        history: metric name -> one value per epoch (complete across resumed runs). After a
            NaN stop the last epoch's values are those of the epoch the loss went bad in.
        epochs: number of epochs trained (the one a NaN stop cut short included).
        best_epoch: 0-based index of the best epoch: the best monitored value when early
            stopping is on, else the last epoch — after a NaN stop without early stopping, the
            last epoch that ended with a finite loss; `None` when no epoch did.
        best_metrics: the logs of `best_epoch` (empty when it is `None`).
        final_metrics: the logs of the last epoch trained.
        test_metrics: metrics on the test split when `data` was a `Dataset`, else `None`;
            also `None` when no trained weights were kept (`kept_weights` ``"initial"`` or
            ``"none"``).
        stop_reason: ``"completed"``, ``"early_stopping"`` or ``"nan_loss"``.
        message: human-readable detail of an early or NaN stop (where the loss went bad,
            which weights the model holds, what the run folder has), else `None`.
        wall_time: seconds spent in `model.fit` (this process only).
        run_dir: the finished run folder, or `None`.
        steps_per_execution: training steps fused per graph execution.
        stopped_epoch: 0-based epoch after which early stopping or the NaN guard stopped
            training, else `None`.
        kept_weights: the weights the model holds at the end (and the run folder's
            ``model.keras``): ``"best"`` (early stopping restored its best epoch), ``"last"``
            (the last epoch trained), ``"last_finite"`` (after a NaN stop: the last epoch
            that ended with a finite loss, optimizer state included), ``"initial"`` (after a
            NaN stop in the first epoch: the weights and optimizer state from before
            training, put back; no ``model.keras`` is written) or ``"none"`` (the weights
            were not finite even before training; no ``model.keras``).
        kept_epoch: 0-based epoch whose weights the model holds; `None` for ``"initial"`` and
            ``"none"``.
        non_finite_loss: after a NaN stop, where the loss first became NaN/inf (a
            `kerasnn.callbacks.nan_guard.NonFiniteLoss`: epoch, 1-based step, optimizer
            step, value), else `None`.
    """

    history: dict[str, list[float]]
    epochs: int
    best_epoch: int | None
    best_metrics: dict[str, float]
    final_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    stop_reason: str
    message: str | None
    wall_time: float
    run_dir: Path | None
    steps_per_execution: int
    stopped_epoch: int | None = None
    kept_weights: str = "last"
    kept_epoch: int | None = None
    non_finite_loss: NonFiniteLoss | None = None

    def to_dict(self) -> dict[str, Any]:
        """A dict of plain values (history included). NaN/inf stay floats: write it with
        `kerasnn._json.dumps`, which makes them ``null`` and records why (strict JSON)."""
        out = dataclasses.asdict(self)
        out["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        return out

    def summary(self) -> str:
        """One line: the headline test (else validation) metrics, epochs and time."""
        shown = self.test_metrics or {
            k: v for k, v in self.best_metrics.items() if k.startswith("val_")
        }
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) or "none"
        where = "test" if self.test_metrics else "validation"
        best = "no finite epoch" if self.best_epoch is None else f"best {self.best_epoch + 1}"
        return (
            f"{where}: {metrics} | {self.epochs} epochs ({best}, "
            f"{self.stop_reason}) in {self.wall_time:.1f} s"
        )


def _arrays(data: Data, split_name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, Dataset):
        if split_name == "train":
            return data.x_train, data.y_train
        return data.x_test, data.y_test
    if isinstance(data, tuple | list) and len(data) == 2:
        return np.asarray(data[0]), np.asarray(data[1])
    raise TypeError(
        "Received an invalid value for argument data, expected a kerasnn Dataset or an "
        f"(x, y) pair of arrays. Received: data of type {type(data)}"
    )


def check_data(model: keras.Model, x: np.ndarray, y: np.ndarray, argument: str) -> None:
    """Checks arrays against the model before any training: shape, finiteness, label range."""
    expected = tuple(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None
    if expected is not None:
        got = tuple(x.shape[1:])
        fits = len(got) == len(expected) and all(
            e is None or e == g for e, g in zip(expected, got, strict=True)
        )
        if not fits:
            raise ValueError(
                f"Received an invalid value for argument {argument}, expected samples of shape "
                f"{expected} (the model's input). Received: samples of shape {got} "
                f"(x.shape={x.shape})"
            )
    task = task_of(model)
    num_classes = None
    if task == "classification":
        num_classes = int(model.output_shape[-1])
    if task is None:
        task = "regression"  # unknown loss: only check finiteness and lengths
    validate_arrays(x, y, task=task, num_classes=num_classes, argument=argument)


class _EpochCounter(keras.callbacks.Callback):
    """Publishes the current epoch to the input pipeline, which derives its shuffle from it."""

    def __init__(self, variable: tf.Variable) -> None:
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.variable.assign(epoch)


def _train_pipeline(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int, epoch: tf.Variable | None
) -> tf.data.Dataset:
    """Batches of ``(x, y)``, one pass per epoch.

    With `epoch`, the samples of epoch e come in an order that depends only on ``(seed, e)``:
    a run resumed at epoch k sees the same batches as an uninterrupted one, however many
    iterators Keras opens.
    """
    n = len(x)
    if epoch is None:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        return ds.prefetch(tf.data.AUTOTUNE)
    x_t, y_t = tf.constant(x), tf.constant(y)

    def shuffled_epoch(_: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=key))
        arrays = (tf.gather(x_t, order), tf.gather(y_t, order))
        return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)

    ds = tf.data.Dataset.from_tensors(0).flat_map(shuffled_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(math.ceil(n / batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)


def auto_steps_per_execution(n_samples: int, batch_size: int) -> int:
    """Steps fused per execution: a whole epoch, capped at `MAX_STEPS_PER_EXECUTION`."""
    return max(1, min(math.ceil(n_samples / batch_size), MAX_STEPS_PER_EXECUTION))


def _set_steps_per_execution(model: keras.Model, steps: int) -> None:
    if model.steps_per_execution != steps:
        model.steps_per_execution = steps
        model.make_train_function(force=True)
        model.make_test_function(force=True)


def _early_stopping(
    early_stopping: bool | int | dict | EarlyStopping, has_validation: bool
) -> EarlyStopping | None:
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
            `GradientNorms` without a batch gets the first `batch_size` training samples,
            `ActivationStats` without a probe the first 512. Defaults to none.
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
            epoch, up to 64 steps (at most `every_n_steps` of a `GradientNorms` callback; 1
            under a strategy with several replicas, where Keras cannot fuse steps). Defaults
            to ``"auto"``.
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
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    fraction("validation_split", validation_split, allow_zero=True)
    if not model.compiled:
        raise RuntimeError(
            "The model is not compiled: call kerasnn.compile(model, ...) (or model.compile) "
            "before kerasnn.fit."
        )
    data_formats.check_data_formats(model)  # channels_first layers this CPU cannot run
    x, y = _arrays(data, "train")
    check_data(model, x, y, "data")
    if validation_data is not None:
        x_val, y_val = _arrays(validation_data, "train")
        check_data(model, x_val, y_val, "validation_data")
    elif validation_split > 0:
        stratify = task_of(model) in ("classification", "binary")
        x, x_val, y, y_val = split(x, y, test_size=validation_split, seed=seed, stratify=stratify)
    else:
        x_val = y_val = None
    replicas = model.distribute_strategy.num_replicas_in_sync
    extra = [callback_registry.get(cb) for cb in callbacks]
    steps_per_epoch = math.ceil(len(x) / batch_size)
    if steps_per_execution == "auto":
        # Keras 3.15 / TF 2.21 cannot fuse steps across replicas (the multi-step loop fails
        # with "You must feed a value for placeholder tensor"): one step per execution there.
        steps_per_execution = 1 if replicas > 1 else auto_steps_per_execution(len(x), batch_size)
        for cb in extra:
            if isinstance(cb, GradientNorms):
                steps_per_execution = min(steps_per_execution, cb.every_n_steps)
    positive_int("steps_per_execution", steps_per_execution)
    if replicas > 1 and steps_per_execution > 1:
        raise ValueError(
            "Received an invalid value for argument steps_per_execution, expected 1 or 'auto' "
            f"for a model built under a strategy with {replicas} replicas (Keras cannot fuse "
            "several steps into one execution across replicas). Received: "
            f"steps_per_execution={steps_per_execution}"
        )
    schedule = None
    if lr_schedule is not None:
        schedule = schedules.from_spec(
            lr_schedule,
            learning_rate=float(np.asarray(model.optimizer.learning_rate)),
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
        )
        if isinstance(schedule, schedules.OneCycle) and schedule.cycle_momentum:
            schedules.momentum_attribute(model.optimizer)  # raises for SGD, before training
    for cb in extra:
        if isinstance(cb, GradientNorms) and cb.batch is None:
            cb.batch = (x[:batch_size], y[:batch_size])
        if isinstance(cb, ActivationStats) and cb.probe is None:
            cb.probe = x[:PROBE_SAMPLES]
    stopper = _early_stopping(early_stopping, has_validation=x_val is not None)
    if stopper is not None:
        _check_monitor(model, stopper.monitor, (x_val, y_val), extra)

    folder: RunFolder | None = None
    owns_folder = False
    if isinstance(run_dir, RunFolder):
        folder = run_dir.open()
    elif run_dir is not None:
        folder = RunFolder(run_dir, overwrite=overwrite, resume=resume).open()
        owns_folder = True

    keras.utils.set_random_seed(seed)
    _set_steps_per_execution(model, steps_per_execution)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False) if shuffle else None
    train_ds = _train_pipeline(x, y, batch_size, seed=seed, epoch=epoch)
    val_ds = None
    if x_val is not None:
        eval_batch = max(batch_size, EVAL_BATCH_SIZE)
        val_ds = (
            tf.data.Dataset.from_tensor_slices((x_val, y_val))
            .batch(eval_batch)
            .prefetch(tf.data.AUTOTUNE)
        )

    # Stops at the first non-finite batch loss (its exact step: `guard.watch` below) and puts
    # back the last finite epoch's weights and optimizer state.
    guard = NaNGuard(verbose=0 if verbose == 0 else 1)
    unbind_momentum = None
    if schedule is not None:
        model.optimizer.learning_rate = schedule
        if isinstance(schedule, schedules.OneCycle) and schedule.cycle_momentum:
            unbind_momentum = schedules.bind_momentum(schedule, model.optimizer)
        model.make_train_function(force=True)
    lr_logger = LearningRateLogger(log_momentum=unbind_momentum is not None)
    # kerasnn's callbacks that write into `logs` run first, so the others (TensorBoard,
    # CSVLogger, checkpoints) see their values whatever order the user listed them in.
    writes_logs = (GradientNorms, ActivationStats, LearningRateLogger)
    producers = [cb for cb in extra if isinstance(cb, writes_logs)]
    consumers = [cb for cb in extra if not isinstance(cb, writes_logs)]
    cbs: list[keras.callbacks.Callback] = [lr_logger, guard, *producers, *consumers]
    if epoch is not None:
        cbs.insert(0, _EpochCounter(epoch))
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

    start = time.perf_counter()
    try:
        with guard.watch(model):
            keras_history = model.fit(
                train_ds,
                epochs=epochs,
                validation_data=val_ds,
                callbacks=cbs,
                verbose=verbose,
                shuffle=False,  # train_ds shuffles itself, per (seed, epoch)
            )
    finally:
        if unbind_momentum is not None:
            unbind_momentum()  # the optimizer's config holds floats again (saving needs it)
            model.make_train_function(force=True)
    wall_time = time.perf_counter() - start

    if folder is not None:
        rows = read_history_csv(folder.file("history.csv"))
        history = {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}
    else:
        history = {k: [float(v) for v in vals] for k, vals in keras_history.history.items()}
    n_epochs = len(history["loss"])
    best_epoch: int | None = n_epochs - 1
    if stopper is not None and stopper.best is not None:
        best_epoch = stopper.best_epoch
    # Early stopping's best epoch is always a finite one (kerasnn's EarlyStopping skips the
    # others); its on_train_end restores those weights after the guard put back its state.
    restored_best = (
        stopper is not None and stopper.restore_best_weights and stopper.best_weights is not None
    )
    kept_weights, kept_epoch = ("best", stopper.best_epoch) if restored_best else ("last", None)
    message, stopped_epoch = None, None
    if guard.where is not None:
        stop_reason, stopped_epoch = "nan_loss", guard.where.epoch
        if not restored_best:
            kept_epoch = guard.restored_epoch
            if kept_epoch is None:
                kept_weights = "none"
            elif kept_epoch < 0:
                kept_weights, kept_epoch = "initial", None
            else:
                kept_weights = "last_finite"
            if stopper is None or stopper.best is None:
                best_epoch = kept_epoch
        message = _nan_message(guard, stopper, kept_weights, kept_epoch, folder is not None)
    elif stopper is not None and stopper.stop_reason:
        stop_reason, message = stopper.stop_reason, stopper.message
        stopped_epoch = stopper.stopped_epoch
    else:
        stop_reason = "completed"
    if kept_weights == "last":
        kept_epoch = n_epochs - 1
    trained = kept_weights not in ("initial", "none")
    test_metrics = evaluate(model, data) if isinstance(data, Dataset) and trained else None
    result = FitResult(
        history=history,
        epochs=n_epochs,
        best_epoch=best_epoch,
        best_metrics={} if best_epoch is None else {k: v[best_epoch] for k, v in history.items()},
        final_metrics={k: v[-1] for k, v in history.items()},
        test_metrics=test_metrics,
        stop_reason=stop_reason,
        message=message,
        wall_time=wall_time,
        run_dir=None,
        steps_per_execution=steps_per_execution,
        stopped_epoch=stopped_epoch,
        kept_weights=kept_weights,
        kept_epoch=kept_epoch,
        non_finite_loss=guard.where,
    )
    if folder is not None:
        _write_run(folder, model, result, extra)
        result.run_dir = folder.path
        if owns_folder:
            folder.finalize()
    return result


def _check_monitor(
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


def _nan_message(
    guard: NaNGuard,
    stopper: EarlyStopping | None,
    kept_weights: str,
    kept_epoch: int | None,
    has_folder: bool,
) -> str:
    """What a NaN stop did: where the loss went bad, which weights the model holds and why."""
    saved = " (they are the run folder's model.keras)" if has_folder else ""
    not_saved = (
        "; the run folder has no model.keras (history.csv and metrics.json describe the run)"
        if has_folder
        else ""
    )
    if kept_weights == "best":
        if guard.restored_epoch is None:
            optimizer = "was not finite at any epoch's end and was left as it was"
        elif guard.restored_epoch < 0:
            optimizer = "is the one from before training"
        else:
            optimizer = f"is that of epoch {guard.restored_epoch + 1}, the last with a finite loss"
        kept = (
            f"The model holds the weights of epoch {kept_epoch + 1}, the best "
            f"{stopper.monitor} ({float(stopper.best):.6g}), restored by early stopping{saved}; "
            f"its optimizer state {optimizer}."
        )
    elif kept_weights == "last_finite":
        kept = (
            f"The model holds the weights and optimizer state of epoch {kept_epoch + 1}, the "
            f"last epoch that ended with a finite loss{saved}."
        )
    elif kept_weights == "initial":
        kept = (
            "No epoch ended with a finite loss, so no trained weights were kept: the model "
            f"holds its weights and optimizer state from before training again{not_saved}."
        )
    else:
        kept = (
            "No finite weights were kept: the model's weights were not finite before "
            f"training{not_saved}."
        )
    return (
        f"Training stopped: {guard.where.describe()}. {kept} Try a lower learning rate, "
        "gradient clipping (clipnorm) or standardized inputs."
    )


def _write_run(
    folder: RunFolder,
    model: keras.Model,
    result: FitResult,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> None:
    from kerasnn import plots  # matplotlib is imported only when a run folder is written

    if result.kept_weights in ("initial", "none"):
        # Untrained or non-finite weights are no result: no model.keras (nor a stale one).
        folder.file("model.keras").unlink(missing_ok=True)
    else:
        model.save(folder.file("model.keras"))
    summary = result.to_dict()
    summary.pop("history")
    summary["run_dir"] = str(folder.path)
    folder.write_json("metrics.json", summary)
    # best_epoch None (no finite epoch): -1 lies outside the epochs, so nothing is marked.
    best = -1 if result.best_epoch is None else result.best_epoch
    plots.plot_history(result.history, best_epoch=best, path=folder.file("history.png"))
    if len(set(result.history.get("learning_rate", []))) > 1:  # a constant rate: no figure
        plots.plot_lr(result.history, path=folder.file("lr.png"))
    if "grad_norm" in result.history:
        plots.plot_grad_norms(result.history, path=folder.file("grad_norms.png"))
    for cb in callbacks:
        if isinstance(cb, ActivationStats) and cb.history:
            plots.plot_activation_stats(cb, path=folder.file("activation_stats.png"))


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------
def evaluate(model: keras.Model, data: Data, *, batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Computes the compiled loss and metrics on the test split (step 5 of the recipe).

    Args:
        model: a compiled `keras.Model`.
        data: a `kerasnn.datasets.Dataset` (its test split is used) or an ``(x, y)`` pair.
        batch_size: evaluation batch size (does not change the result). Defaults to 1024.

    Returns:
        A dict ``{"loss": ..., "accuracy": ..., ...}`` of Python floats.

    Raises:
        ValueError: data that does not fit the model (shape, NaN/inf, label range).

    Example:

    >>> import kerasnn as knn
    >>> data = knn.datasets.load("iris")
    >>> model = knn.compile(knn.models.mlp(data, hidden=[4]))
    >>> sorted(evaluate(model, data))
    ['accuracy', 'loss']
    """
    positive_int("batch_size", batch_size)
    x, y = _arrays(data, "test")
    check_data(model, x, y, "data")
    results = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}
