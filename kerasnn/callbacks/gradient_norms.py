"""Gradient norms (global and per layer) in `logs`: watch for vanishing or exploding gradients."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._validation import invalid, positive_int

__all__ = ["DEFAULT_EVERY_N_STEPS", "GradientNormRecord", "GradientNorms"]

DEFAULT_EVERY_N_STEPS = 100


@dataclasses.dataclass(frozen=True)
class GradientNormRecord:
    """Gradient norms at one training step.

    Attributes:
        step: optimizer steps taken when the norms were computed (the weights after that step).
        epoch: 0-based epoch.
        norms: ``{"grad_norm": global, "grad_norm/<layer>": per layer, ...}``.
    """

    step: int
    epoch: int
    norms: dict[str, float]


@keras.saving.register_keras_serializable(package="kerasnn")
class GradientNorms(keras.callbacks.Callback):
    """Logs the L2 norm of the loss gradient, overall and per layer, during training.

    The gradient of the model's compiled loss (regularization losses included), in training
    mode, is computed with `tf.GradientTape` on a fixed batch ``(x, y)`` at the current weights,
    every `every_n_steps` optimizer steps and at the end of every epoch. Works on any compiled
    Sequential or functional Keras model, with `model.fit` or `kerasnn.fit`: nothing to
    subclass. The computation does not change training: the model's non-trainable state (dropout
    seeds, batch-norm statistics) and its metrics are restored afterwards, and no weight moves.

    The batch stays the same all along (so values are comparable across steps); the network
    may come to fit it, and the norms then fall with its loss on it.

    Each epoch's `logs` get ``grad_norm`` (global norm) and ``grad_norm/<layer>`` (norm over the
    layer's trainable weights) at the epoch's last step, so History, CSV and TensorBoard show
    them; `records` keeps every computed value with its step. A model-level batch hook runs
    once per *execution*: with ``steps_per_execution > 1`` a record falls on the first step
    boundary at or after each multiple of `every_n_steps` (`kerasnn.fit` with
    ``steps_per_execution="auto"`` fuses at most `every_n_steps` steps so they coincide).

    Args:
        batch: the fixed batch ``(x, y)``. Defaults to `None`: `kerasnn.fit` fills in the
            first `batch_size` training samples; with `model.fit`, pass it.
        every_n_steps: record every this many steps, > 0. Defaults to 100.
        per_layer: also log the per-layer norms. Defaults to `True`.

    Raises:
        ValueError: `every_n_steps` <= 0, or (at training start) no batch.

    Example:

    >>> GradientNorms(every_n_steps=10).every_n_steps
    10
    """

    def __init__(
        self,
        batch: tuple[Any, Any] | None = None,
        every_n_steps: int = DEFAULT_EVERY_N_STEPS,
        per_layer: bool = True,
    ) -> None:
        super().__init__()
        self.every_n_steps = positive_int("every_n_steps", every_n_steps)
        self.per_layer = bool(per_layer)
        self.batch = None if batch is None else self._check_batch(batch)
        self.records: list[GradientNormRecord] = []
        self._function: Any = None
        self._groups: list[tuple[str, list[int]]] = []
        self._epoch = 0
        self._last_recorded_step = -1

    @staticmethod
    def _check_batch(batch: Any) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise invalid("batch", "an (x, y) pair of arrays", type(batch).__name__)
        return tuple(np.asarray(part) for part in batch)  # type: ignore[return-value]

    # -- the computation -----------------------------------------------------------------------
    def _layer_groups(self) -> list[tuple[str, list[int]]]:
        """``(layer name, indices into model.trainable_variables)`` for each layer with weights."""
        index = {id(v): i for i, v in enumerate(self.model.trainable_variables)}
        groups = []
        for layer in self.model.layers:
            ids = [index[id(v)] for v in layer.trainable_variables if id(v) in index]
            if ids:
                groups.append((layer.name, ids))
        return groups

    def _build(self) -> None:
        model = self.model
        trainable = model.trainable_variables
        state = list(model.non_trainable_variables)
        state += [v for metric in model.metrics for v in metric.variables]

        @tf.function(reduce_retracing=True)
        def squared_norms(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            saved = [tf.identity(v.value) for v in state]
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            grads = tape.gradient(loss, trainable)
            for variable, value in zip(state, saved, strict=True):
                variable.assign(value)
            return tf.stack(
                [
                    tf.zeros((), tf.float32)
                    if g is None
                    else tf.reduce_sum(tf.square(tf.cast(tf.convert_to_tensor(g), tf.float32)))
                    for g in grads
                ]
            )

        self._function = squared_norms
        self._groups = self._layer_groups()
        self._tensors = tuple(tf.convert_to_tensor(part) for part in self.batch)

    def compute(self) -> dict[str, float]:
        """Gradient norms on the fixed batch at the model's current weights.

        Returns:
            ``{"grad_norm": ..., "grad_norm/<layer>": ...}`` (per layer with `per_layer`).
        """
        if self._function is None:
            self._build()
        squares = self._function(*self._tensors).numpy().astype(np.float64)
        norms = {"grad_norm": float(np.sqrt(squares.sum()))}
        if self.per_layer:
            for name, ids in self._groups:
                norms[f"grad_norm/{name}"] = float(np.sqrt(squares[ids].sum()))
        return norms

    def _record(self, step: int) -> dict[str, float]:
        norms = self.compute()
        self.records.append(GradientNormRecord(step=step, epoch=self._epoch, norms=norms))
        self._last_recorded_step = step
        return norms

    # -- hooks ----------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.batch is None:
            raise ValueError(
                "Received an invalid value for argument batch, expected an (x, y) pair to "
                "compute gradient norms on: pass GradientNorms(batch=(x, y)) (kerasnn.fit fills "
                "it in from the training data). Received: batch=None"
            )
        self.records = []
        self._function = None
        self._last_recorded_step = -1
        self._last_boundary = int(self.model.optimizer.iterations.numpy()) // self.every_n_steps

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        boundary = step // self.every_n_steps
        if boundary > self._last_boundary:
            self._last_boundary = boundary
            norms = self._record(step)
            if logs is not None:
                logs.update(norms)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        norms = self.records[-1].norms if self._last_recorded_step == step else self._record(step)
        if logs is not None:
            logs.update(norms)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> keras.callbacks.Callback:
        """Rebuilds the callback from `get_config` (callbacks are not Keras layers)."""
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        return {"every_n_steps": self.every_n_steps, "per_layer": self.per_layer}
