"""Stops training at the first non-finite loss, says at which step, keeps the last finite state."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._plain_softmax import plain_softmax
from kerasnn.callbacks._step_probe import per_replica_variable

__all__ = ["NaNGuard", "NonFiniteLoss"]


@dataclasses.dataclass(frozen=True)
class NonFiniteLoss:
    """Where the training loss first stopped being finite.

    Attributes:
        epoch: the epoch, counted from 1 (as `kerasnn.FitResult.best_epoch`: the n-th epoch
            trained is epoch n).
        step: 1-based step within that epoch. When `exact`, the first step whose *batch* loss
            was NaN or ±inf; otherwise the last step of the graph execution after which the
            loss Keras reports (the epoch's running mean) was first non-finite.
        first_step: 1-based first step of the range `step` is known to: `step` itself when
            `exact`, else the first step of that execution.
        steps: steps per epoch, `None` when Keras does not know.
        global_step: the optimizer step of `step` (``optimizer.iterations`` once that step has
            been applied).
        loss: the non-finite value: the batch loss when `exact`, else the reported mean.
        exact: whether the step was recorded inside the train step (`NaNGuard.watch`).
    """

    epoch: int
    step: int
    first_step: int
    steps: int | None
    global_step: int
    loss: float
    exact: bool

    def describe(self) -> str:
        """The place in words, e.g. ``the loss became nan at epoch 2, step 5 of 41 (optimizer
        step 46): the first step whose batch loss was not finite``."""
        of = "" if self.steps is None else f" of {self.steps}"
        if self.exact:
            return (
                f"the loss became {self.loss} at epoch {self.epoch}, step {self.step}{of} "
                f"(optimizer step {self.global_step}): the first step whose batch loss was not "
                "finite"
            )
        if self.first_step == self.step:
            return (
                f"the loss became {self.loss} at epoch {self.epoch}, step {self.step}{of} "
                f"(optimizer step {self.global_step}; the epoch's running mean, as Keras "
                "reports it)"
            )
        first_global = self.global_step - (self.step - self.first_step)
        return (
            f"the loss became {self.loss} at epoch {self.epoch} in one of steps "
            f"{self.first_step}-{self.step}{of} (optimizer steps {first_global}-"
            f"{self.global_step}; Keras reports the epoch's running mean once per graph "
            "execution)"
        )


@keras.saving.register_keras_serializable(package="kerasnn")
class NaNGuard(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that says where the loss went bad and undoes the damage.

    Training stops gracefully at the end of the graph execution in which the loss became NaN
    or ±inf (so `EarlyStopping` still restores its best weights and a run folder is still
    written); `where` then tells the place and `message` what happened.

    **Where.** Keras reports the loss once per graph execution (``steps_per_execution`` steps)
    and as the epoch's running mean. Inside `watch(model)` (as `kerasnn.fit` runs), every
    training step checks its own batch loss in the graph and a variable records the first
    non-finite one: `where.step` is then that exact step (`where.exact` is `True`). Outside
    `watch`, or for a custom ``train_step`` that does not call ``compute_loss``, only the
    execution is known (`where.exact` is `False`).

    **Undoing the damage.** With `restore` on, the weights and the optimizer state (slots,
    iteration count) are copied at the end of every epoch whose loss, validation loss and
    weights are all finite, and once before the first epoch. After a NaN stop they are put back
    in `on_train_end`: the model holds the last finite epoch's state (`restored_epoch`), or its
    state from before training (`restored_epoch == 0`) when no epoch ended finite. List the
    guard *before* an `EarlyStopping` that restores best weights, so that those win.

    Epochs are counted from 1 in `where` and `restored_epoch` (the n-th epoch trained is epoch
    n, as in `kerasnn.FitResult`); the hooks' `epoch` arguments are Keras's, from 0.

    Args:
        restore: put the last finite state back after a NaN stop. Defaults to `True`.
        verbose: print one line when stopping. Defaults to 1.

    Attributes:
        where: a `NonFiniteLoss` after a NaN stop, else `None`.
        restored_epoch: after a NaN stop with `restore`, the epoch (1-based) whose state the
            model holds again, 0 for the state before training (in a resumed run: the state
            it resumed from, the number of epochs done before, >= 1); else `None`.
        message: a sentence about the stop (where, what state was kept), else `None`.

    Example:

    >>> guard = NaNGuard()
    >>> guard.message is None and guard.where is None
    True
    """

    def __init__(self, *, restore: bool = True, verbose: int = 1) -> None:
        super().__init__(raise_error=False)
        self.restore = restore
        self.verbose = verbose
        self.where: NonFiniteLoss | None = None
        self.restored_epoch: int | None = None
        self.message: str | None = None
        self._record: tuple[tf.Variable, tf.Variable] | None = None
        self._current_epoch = 0
        self._epoch_start_iteration = 0
        self._execution_begin = 0
        self._state: list[np.ndarray] | None = None
        self._state_epoch: int | None = None

    # -- the in-graph record ------------------------------------------------------------------
    @contextlib.contextmanager
    def watch(self, model: keras.Model) -> Iterator[NaNGuard]:
        """Makes every training step of `model` check its batch loss, for the exact step.

        Trains through a ``train_step`` wrapper that, while a train step runs (is traced),
        checks the loss ``model.compute_loss`` returns (Keras's train step calls it once per
        step): a non-finite one writes that step's ``optimizer.iterations`` into a scalar
        variable, if none was written before. Other calls of ``compute_loss`` (evaluation, a
        callback's own probe batch) are not checked. A normal step costs one finiteness check
        and a conditional: ~1% of the step of a 16-unit MLP on this CPU, less for bigger
        models; the loss, gradients and updates are exactly those without the wrapper. While
        traced, the model's softmax outputs are computed with TensorFlow's plain kernels when
        its loss reads their logits (`kerasnn._plain_softmax`: oneDNN's softmax stalls the
        step on a busy CPU; only the probabilities the metrics see can differ, in the last
        bits).

        The check is made once per model: the train function built with it is kept after
        `watch` ends (it still checks, and nothing reads the record), so that the next `watch`
        of the same model reuses it instead of tracing (and, with XLA, compiling) the train
        step again. It is rebuilt only when something else rebuilt the train function
        (``compile``, a new ``steps_per_execution``). The model's methods are its own again on
        exit.

        Args:
            model: the compiled model about to be trained.

        Yields:
            This guard.
        """
        if model.optimizer is None:
            yield self
            return
        check = _LossCheck.of(model)
        own = vars(model).get("train_step")  # an instance attribute, if any
        object.__setattr__(model, "train_step", check.train_step)
        if model.train_function is None or model.train_function is not check.train_function:
            model.make_train_function(force=True)
        self._record = (check.first, check.value)
        try:
            yield self
        finally:
            # Rebuilt while the wrapper was the model's train step (e.g. by a step probe):
            # checked all the same.
            check.train_function = model.train_function
            if own is None:
                object.__delattr__(model, "train_step")
            else:
                object.__setattr__(model, "train_step", own)
            self._record = None

    def _recorded(self) -> tuple[int, float] | None:
        """``(optimizer.iterations before the step, batch loss)`` of the first bad step."""
        if self._record is None:
            return None
        strategy = self.model.distribute_strategy
        first, value = (strategy.experimental_local_results(v) for v in self._record)
        found = [(int(s.numpy()), float(v.numpy())) for s, v in zip(first, value, strict=True)]
        found = [f for f in found if f[0] >= 0]
        return min(found) if found else None

    # -- callback hooks -----------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        self.where = self.restored_epoch = self.message = None
        self._state = self._state_epoch = None
        if self._record is not None:
            local_results = self.model.distribute_strategy.experimental_local_results
            for variable, start in zip(self._record, (-1, 0.0), strict=True):
                for local in local_results(variable):
                    local.assign(start)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch
        self._epoch_start_iteration = self._iterations()
        if self.restore and self._state is None:  # after BackupAndRestore's on_train_begin
            optimizer = self.model.optimizer
            if optimizer is not None and not optimizer.built:
                # Its slots must exist now for the copy to hold all of its state (Keras would
                # build it at the first step; BackupAndRestore builds it early the same way).
                with self.model.distribute_strategy.scope():
                    optimizer.build(self.model.trainable_variables)
            self._keep_state(epoch)  # the state after `epoch` epochs (0: before training)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._execution_begin = batch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.where is not None:
            return
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(batch, float(loss))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.where is None and self._recorded() is not None:
            self._stop(self._execution_begin, math.nan)  # a bad batch the mean did not show
        if self.where is not None or not self.restore:
            return
        checked = [logs.get(k) for k in ("loss", "val_loss")]
        if all(v is None or math.isfinite(float(v)) for v in checked):
            self._keep_state(epoch + 1)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.where is None:
            return
        kept = ""
        if self.restore and self._state is not None:
            for variable, value in zip(self._variables(), self._state, strict=True):
                variable.assign(value)
            self.restored_epoch = self._state_epoch
            kept = (
                " The weights and optimizer state from before training were put back (no "
                "epoch ended with a finite loss)."
                if self._state_epoch == 0
                else f" The weights and optimizer state of epoch {self._state_epoch}, the "
                "last with a finite loss, were put back."
            )
        self.message = f"Training stopped: {self.where.describe()}.{kept}"

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Handled in `on_train_batch_end` (the parent's hook would also fire in evaluate)."""

    def get_config(self) -> dict[str, Any]:
        return {"restore": self.restore, "verbose": self.verbose}

    # -- helpers ------------------------------------------------------------------------------
    def _iterations(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _stop(self, last_batch: int, reported: float) -> None:
        steps = (self.params or {}).get("steps")
        recorded = self._recorded()
        if recorded is not None:
            index, loss = recorded
            step = index - self._epoch_start_iteration + 1
            self.where = NonFiniteLoss(
                epoch=self._current_epoch + 1,
                step=step,
                first_step=step,
                steps=steps,
                global_step=index + 1,
                loss=loss,
                exact=True,
            )
        else:
            self.where = NonFiniteLoss(
                epoch=self._current_epoch + 1,
                step=last_batch + 1,
                first_step=self._execution_begin + 1,
                steps=steps,
                global_step=self._iterations(),
                loss=reported,
                exact=False,
            )
        if self.verbose:
            print(f"\nNaNGuard: {self.where.describe()}; stopping training.")
        self.model.stop_training = True

    def _variables(self) -> list[Any]:
        optimizer = self.model.optimizer
        return [*self.model.variables, *(optimizer.variables if optimizer is not None else ())]

    def _keep_state(self, epoch: int) -> None:
        """Copies the weights and optimizer state as those after `epoch` epochs (1-based: the
        state at the end of epoch `epoch`; 0: before training), if every float is finite."""
        # Read values are snapshots (TensorFlow copies a variable's buffer before updating it
        # in place while a read of it is alive): no copy needed here. ~0.6 ms for the 255 000
        # values of the digits MLP 64-256-256-10 with Adam.
        values = [v.numpy() for v in self._variables()]
        floating = (v for v in values if np.issubdtype(v.dtype, np.floating))
        if all(np.isfinite(v).all() for v in floating):
            self._state, self._state_epoch = values, epoch


class _LossCheck:
    """One model's in-graph loss check (`NaNGuard.watch`): the record variables, the wrapped
    train step (traced with `plain_softmax`), and the train function last built with it. Kept
    on the model itself."""

    ATTRIBUTE = "_kerasnn_loss_check"

    def __init__(self, model: keras.Model) -> None:
        # One copy per replica (each replica checks its own batch); read per replica.
        self.first = per_replica_variable(model, tf.constant(-1, tf.int64), "first_bad_step")
        self.value = per_replica_variable(model, tf.constant(0.0, tf.float32), "first_bad_loss")
        self.train_function: Any = None
        step = model.train_step
        first, value = self.first, self.value

        @functools.wraps(step)
        def train_step(*args: Any, **kwargs: Any) -> Any:
            # Runs when the train function is traced: the step's compute_loss is checked.
            own = vars(model).get("compute_loss")
            compute_loss = model.compute_loss

            @functools.wraps(compute_loss)
            def checked(*args: Any, **kwargs: Any) -> Any:
                loss = compute_loss(*args, **kwargs)
                # A normal step runs only the check; the record runs once it fails. The
                # gradient is of `loss` alone: nothing here is on its path.
                finite = tf.math.is_finite(loss)
                if finite.shape.rank != 0:  # a custom compute_loss's non-scalar loss
                    finite = tf.reduce_all(finite)
                tf.cond(finite, lambda: tf.constant(False), lambda: record(loss))
                return loss

            object.__setattr__(model, "compute_loss", checked)
            try:
                with plain_softmax(model):  # oneDNN's softmax waits on the busy cores
                    return step(*args, **kwargs)
            finally:
                if own is None:
                    object.__delattr__(model, "compute_loss")
                else:
                    object.__setattr__(model, "compute_loss", own)

        def record(loss: tf.Tensor) -> tf.Tensor:
            new = tf.less(first, 0)
            iterations = tf.cast(model.optimizer.iterations, tf.int64)
            first.assign(tf.where(new, iterations, first))
            bad = tf.cast(tf.reduce_sum(loss), tf.float32)  # the loss itself when a scalar
            value.assign(tf.where(new, bad, value))
            return tf.constant(True)

        self.train_step = train_step

    @classmethod
    def of(cls, model: keras.Model) -> _LossCheck:
        """The model's check, made at its first `NaNGuard.watch`."""
        check = vars(model).get(cls.ATTRIBUTE)
        if check is None:
            check = cls(model)
            object.__setattr__(model, cls.ATTRIBUTE, check)  # not a tracked Keras attribute
        return check
