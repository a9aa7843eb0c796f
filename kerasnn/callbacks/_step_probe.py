"""Figures computed inside each training step, around the optimizer's own update.

`StepProbe` wraps the ``apply`` method of a model's optimizer (the call Keras's train step makes
with the gradients it is about to apply) on that instance only. Each call — each optimizer
step, also inside a fused execution of ``steps_per_execution > 1`` steps — runs a measurement
that sees the gradients, the variables and the update itself, and writes one row of floats into
a small ring buffer (a variable of ``capacity`` rows; step k writes row (k - 1) % capacity).
The callbacks read the buffer from the host once per execution, so no step pays for a transfer
and no second backward pass runs: the gradients are the ones the optimizer applies.

The measurement only reads: the gradients and the update are those without the probe, so
training is unchanged bit for bit. Several probes share one wrapper per optimizer (installed
with the first, removed with the last); the train function is rebuilt on attach and on detach
(Keras traces the step anew, with or without the probes).

For a `keras.optimizers.LossScaleOptimizer` the probe wraps its inner optimizer: it sees the
unscaled gradients of the steps that are applied (steps skipped for non-finite gradients are
not optimizer steps and write nothing). Under a `tf.distribute` strategy each replica runs the
measurement on its own gradients; measurements sum across replicas with `all_reduce` when they
need the aggregated gradient, and the row of the first replica is the one read.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = ["Measure", "StepProbe", "innermost_optimizer", "layer_groups", "per_replica_variable"]

# measure(grads, variables, apply) -> float32 vector of the probe's width; it calls `apply()`
# exactly once (the optimizer's update) and may read the variables before and after.
Measure = Callable[[list[Any], list[Any], Callable[[], Any]], tf.Tensor]

# optimizer -> the probes attached to it, in attach order; the wrapper reads this at trace time.
_ATTACHED: weakref.WeakKeyDictionary[Any, list[StepProbe]] = weakref.WeakKeyDictionary()
# optimizer -> its own instance attribute `apply` before the wrapper (None: the class's).
_OWN_APPLY: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def innermost_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that applies the updates: the inner one of a `LossScaleOptimizer`."""
    while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


def layer_groups(model: keras.Model) -> list[tuple[str, list[int]]]:
    """``(layer name, indices into model.trainable_variables)`` for each top-level layer with
    trainable weights, in the model's layer order."""
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    groups = []
    for layer in model.layers:
        ids = [index[id(v)] for v in layer.trainable_variables if id(v) in index]
        if ids:
            groups.append((layer.name, ids))
    return groups


def replicas_in_sync() -> int:
    """Replicas of the current replica context (1 outside any strategy)."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def sum_over_replicas(tensors: list[tf.Tensor]) -> list[tf.Tensor]:
    """`tensors` summed over the replicas in sync (themselves with one replica)."""
    if replicas_in_sync() == 1 or not tensors:
        return tensors
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tensors)


def _probed_apply(optimizer: Any, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def apply(grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> Any:
        probes = list(_ATTACHED.get(optimizer, ()))
        given = None if trainable_variables is None else list(trainable_variables)

        def run(depth: int) -> Any:
            if depth == len(probes):
                return original(grads, given)
            probe = probes[depth]
            variables = given if given is not None else list(probe.model.trainable_variables)
            return probe._step(list(grads), variables, lambda: run(depth + 1))

        return run(0)

    return apply


def per_replica_variable(model: keras.Model, initial: tf.Tensor, name: str) -> tf.Variable:
    """A non-trainable variable with one copy per replica of the model's strategy, each
    written by its own replica inside the train step; reads give the first replica's."""
    with model.distribute_strategy.scope():
        return tf.Variable(
            initial,
            name=name,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            trainable=False,
        )


class StepProbe:
    """One measurement per optimizer step of `model`, kept in a ring buffer of `capacity` rows.

    Args:
        model: the compiled model (its optimizer is the one wrapped).
        width: floats the measurement writes per step.
        measure: ``measure(grads, variables, apply)``: returns the step's row (float32, shape
            ``(width,)``) and calls ``apply()`` once, where the update is to happen.
        capacity: rows kept: at least the steps between two reads (`model.steps_per_execution`).

    Example:

    >>> StepProbe.__name__
    'StepProbe'
    """

    def __init__(self, model: keras.Model, width: int, measure: Measure, capacity: int) -> None:
        self.model = model
        self.width = width
        self.capacity = max(1, int(capacity))
        self._measure = measure
        self.optimizer = innermost_optimizer(model.optimizer)
        self._iterations = self.optimizer.iterations  # before the update: k - 1 at step k
        # Written in replica context; the first replica's copy is read.
        self._rows = per_replica_variable(
            model, tf.zeros((self.capacity, width), tf.float32), "probe_rows"
        )

    # -- in the graph ---------------------------------------------------------------------------
    def _step(self, grads: list[Any], variables: list[Any], apply: Any) -> Any:
        # Step k (the k-th update) writes row (k - 1) % capacity: the host knows which steps
        # ran since its last read from the iteration count, so no step number is stored.
        slot = tf.math.floormod(tf.cast(self._iterations, tf.int32), self.capacity)
        result: list[Any] = []

        def run_update() -> Any:
            result.append(apply())
            return result[-1]

        row = tf.reshape(tf.cast(self._measure(grads, variables, run_update), tf.float32), [-1])
        if len(result) != 1:
            raise RuntimeError("A StepProbe measurement must call apply() exactly once.")
        index, update = tf.reshape(slot, [1, 1]), row[tf.newaxis]
        if isinstance(self._rows, tf.distribute.DistributedValues):
            # A per-replica variable takes whole assignments only (no scatter in replica context).
            self._rows.assign(tf.tensor_scatter_nd_update(self._rows, index, update))
        else:
            self._rows.scatter_nd_update(index, update)  # in place: one kernel
        return result[0]

    # -- on the host ----------------------------------------------------------------------------
    def read(self, after: int, until: int) -> list[tuple[int, np.ndarray]]:
        """``(step, row)`` of steps ``after + 1 … until`` (the last `capacity` of them: the
        ones still in the buffer), by step."""
        rows = self.model.distribute_strategy.experimental_local_results(self._rows)[0].numpy()
        first = max(after + 1, until - self.capacity + 1)
        return [(step, rows[(step - 1) % self.capacity]) for step in range(first, until + 1)]

    def attach(self) -> StepProbe:
        """Wraps the optimizer's ``apply`` (once per optimizer) and rebuilds the train function."""
        optimizer = self.optimizer
        probes = _ATTACHED.setdefault(optimizer, [])
        if not probes:
            _OWN_APPLY[optimizer] = vars(optimizer).get("apply")
            object.__setattr__(optimizer, "apply", _probed_apply(optimizer, optimizer.apply))
        if self not in probes:
            probes.append(self)
        self.model.make_train_function(force=True)
        return self

    def detach(self) -> None:
        """Removes this probe; the last one puts the optimizer's ``apply`` back."""
        optimizer = self.optimizer
        probes = _ATTACHED.get(optimizer, [])
        if self in probes:
            probes.remove(self)
        if not probes and optimizer in _ATTACHED:
            del _ATTACHED[optimizer]
            own = _OWN_APPLY.pop(optimizer, None)
            if own is None:
                object.__delattr__(optimizer, "apply")
            else:
                object.__setattr__(optimizer, "apply", own)
        self.model.make_train_function(force=True)
