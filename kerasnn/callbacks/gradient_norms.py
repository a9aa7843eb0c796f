"""Norms of the gradients the optimizer applies, global and per layer, clipping included."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._validation import positive_int
from kerasnn.callbacks._step_figures import StepFigures, StepRecord
from kerasnn.callbacks._step_probe import (
    innermost_optimizer,
    layer_groups,
    replicas_in_sync,
    sum_over_replicas,
)

__all__ = ["DEFAULT_EVERY_N_STEPS", "GradientNormRecord", "GradientNorms", "clipping"]

DEFAULT_EVERY_N_STEPS = 100


@dataclasses.dataclass(frozen=True)
class GradientNormRecord(StepRecord):
    """Gradient norms of one optimizer step (``step`` = k for the k-th update, ``epoch`` from 1).

    ``values`` (also `norms`): ``grad_norm`` (global), ``grad_norm/<layer>`` (per layer) and,
    when the optimizer clips, ``grad_norm_clipped`` and ``clipped`` (1.0 when clipping acted).
    """

    @property
    def norms(self) -> dict[str, float]:
        """The figures (an alias of `values`)."""
        return self.values


def clipping(optimizer: keras.optimizers.Optimizer) -> tuple[str, float] | None:
    """The clipping Keras applies for `optimizer`: ``("clipnorm" | "global_clipnorm" |
    "clipvalue", threshold)`` in Keras's order of precedence, or `None`."""
    for name in ("clipnorm", "global_clipnorm", "clipvalue"):
        value = getattr(optimizer, name, None)
        if value and value > 0:
            return name, float(value)
    return None


def _clip(grads: list[tf.Tensor], rule: tuple[str, float]) -> tuple[list[tf.Tensor], tf.Tensor]:
    """`grads` clipped by Keras's rule, and 1.0 if clipping changed them (else 0.0)."""
    name, threshold = rule
    squares = [tf.reduce_sum(tf.square(g)) for g in grads]
    if name == "clipnorm":  # each tensor: g * c / max(|g|, c)
        acted = tf.reduce_any(tf.stack(squares) > threshold**2)
        clipped = [tf.clip_by_norm(g, threshold) for g in grads]
    elif name == "global_clipnorm":  # all: g * c / max(|G|, c)
        total = tf.sqrt(tf.add_n(squares))
        acted = total > threshold
        scale = threshold * tf.minimum(1.0 / total, 1.0 / threshold) + (total - total)
        clipped = [g * scale for g in grads]
    else:  # clipvalue: each element into [-c, c]
        acted = tf.reduce_any(tf.stack([tf.reduce_any(tf.abs(g) > threshold) for g in grads]))
        clipped = [tf.clip_by_value(g, -threshold, threshold) for g in grads]
    return clipped, tf.cast(acted, tf.float32)


@keras.saving.register_keras_serializable(package="kerasnn")
class GradientNorms(StepFigures):
    """Logs the L2 norm of the gradients the optimizer applies, overall and per layer.

    Every optimizer step measures, inside the train step, the gradients Keras hands to the
    optimizer (``optimizer.apply``): their global norm (``grad_norm``) and the norm over each
    layer's trainable weights (``grad_norm/<layer>``), *before* clipping. When the optimizer
    clips (``clipnorm``, ``global_clipnorm`` or ``clipvalue``, by Keras's rule and precedence),
    also the global norm after clipping (``grad_norm_clipped``) and whether clipping acted
    (``clipped``: 1.0 or 0.0). No extra batch and no second backward pass: it works on plain
    `model.fit` and `kerasnn.fit`, with any Keras optimizer and kerasnn's fused ones, with
    ``steps_per_execution > 1`` (a record per optimizer step inside the fused execution: the
    k-th update is ``record.step == k``) and under `tf.distribute` strategies (the norm of the
    gradient summed over the replicas, which is the one applied). Training is unchanged bit for
    bit. With a `LossScaleOptimizer` the norms are of the unscaled gradients; with
    ``gradient_accumulation_steps`` each step's gradient is the micro-batch's.

    `records` keeps every `every_n_steps`-th step and each epoch's last step; each epoch's
    `logs` get the figures of its last step (so History, CSV and TensorBoard show them), and
    a batch hook's `logs` the latest record. The per-step cost is one sum of squares per
    weight tensor (bench/callbacks.py measures it).

    Args:
        every_n_steps: keep a record every this many optimizer steps, > 0. Defaults to 100.
        per_layer: also report the per-layer norms. Defaults to `True`.
        log_dir: also write every record into TensorBoard (``<log_dir>/train``, tags
            ``step_grad_norm``, ``step_grad_norm/<layer>``…, at the optimizer step). Defaults
            to `None`.

    Raises:
        ValueError: `every_n_steps` <= 0, or (at training start) a model without optimizer.

    Example:

    >>> GradientNorms(every_n_steps=10).every_n_steps
    10
    """

    record_type = GradientNormRecord

    def __init__(
        self,
        every_n_steps: int = DEFAULT_EVERY_N_STEPS,
        per_layer: bool = True,
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(positive_int("every_n_steps", every_n_steps), log_dir)
        self.per_layer = bool(per_layer)

    def _columns(self) -> int:
        self._variables = list(self.model.trainable_variables)
        self._groups = layer_groups(self.model)
        self._clipping = clipping(innermost_optimizer(self.model.optimizer))
        # squared norm per model variable, of any other variable, then clipped² and acted
        return len(self._variables) + 1 + (2 if self._clipping else 0)

    def _measure(self, grads: list[Any], variables: list[Any], apply: Any) -> tf.Tensor:
        optimizer = innermost_optimizer(self.model.optimizer)
        position = {id(v): i for i, v in enumerate(self._variables)}
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        dense = [tf.cast(tf.convert_to_tensor(g), tf.float32) for g, _ in pairs]
        scale = optimizer.loss_scale_factor
        if scale is not None:  # the optimizer divides by it before anything else
            dense = [g / scale for g in dense]
        extra: list[tf.Tensor] = []
        if self._clipping:
            clipped, acted = _clip(dense, self._clipping)
            extra = [*clipped, acted]
        if replicas_in_sync() > 1:  # the gradient applied is the sum over the replicas
            summed = sum_over_replicas([*dense, *extra])
            dense, extra = summed[: len(dense)], summed[len(dense) :]
        # Halved squared norms (tf.nn.l2_loss: one kernel per tensor); doubled on the host.
        # Variables without a gradient stay 0; any the model does not list go in the last slot.
        halves: list[list[tf.Tensor]] = [[] for _ in range(len(self._variables) + 1)]
        for (_, variable), g in zip(pairs, dense, strict=True):
            halves[position.get(id(variable), len(self._variables))].append(tf.nn.l2_loss(g))
        if self._clipping:
            halves.append([tf.nn.l2_loss(g) for g in extra[:-1]])
            halves.append([tf.cast(extra[-1] > 0, tf.float32) / 2])
        row = tf.stack([tf.add_n(h) if h else tf.zeros((), tf.float32) for h in halves])
        apply()
        return row

    def _figures_of(self, rows: np.ndarray) -> list[dict[str, float]]:
        squares = 2 * rows  # the graph wrote halved squares (and the clipping flag halved)
        n = len(self._variables)
        names, columns = ["grad_norm"], [np.sqrt(squares[:, : n + 1].sum(axis=1))]
        if self.per_layer:
            for name, ids in self._groups:
                names.append(f"grad_norm/{name}")
                columns.append(np.sqrt(squares[:, ids].sum(axis=1)))
        if self._clipping:
            names += ["grad_norm_clipped", "clipped"]
            columns += [np.sqrt(squares[:, n + 1]), squares[:, n + 2]]
        table = np.stack(columns, axis=1).tolist()
        return [dict(zip(names, values, strict=True)) for values in table]

    def get_config(self) -> dict[str, Any]:
        return {
            "every_n_steps": self.every_n_steps,
            "per_layer": self.per_layer,
            "log_dir": self.log_dir,
        }
