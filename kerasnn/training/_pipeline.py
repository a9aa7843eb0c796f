"""The input pipeline of `fit`: `tf.data` batches in a seeded per-epoch order, and how many
training steps run per graph execution."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._validation import positive_int

__all__ = [
    "CHUNK_BATCHES",
    "CHUNK_BYTES",
    "EVAL_BATCH_SIZE",
    "MAX_STEPS_PER_EXECUTION",
    "EpochCounter",
    "array_batches",
    "auto_steps_per_execution",
    "pipeline_options",
    "resolve_steps_per_execution",
    "set_steps_per_execution",
    "streams_epochs",
    "train_pipeline",
    "validation_pipeline",
]

# Most steps fused into one graph execution: a whole epoch of the lectures' small data sets.
# Beyond that the per-execution overhead is already small, and callbacks' batch hooks (called
# once per execution) stay reasonably frequent.
MAX_STEPS_PER_EXECUTION = 64
EVAL_BATCH_SIZE = 1024
# A chunk of the arrays gathered at once by the pipeline: up to this many batches and about this
# many bytes (at least one batch), so that a shuffled pass never holds a second copy of the data.
CHUNK_BATCHES = 64
CHUNK_BYTES = 32 * 2**20
_FOREVER = 2**62  # the end of a repeated stream's epoch range


class EpochCounter(keras.callbacks.Callback):
    """Publishes the current epoch to the input pipeline, which derives its shuffle from it."""

    def __init__(self, variable: tf.Variable) -> None:
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.variable.assign(epoch)


def pipeline_options() -> tf.data.Options:
    """Deterministic, without tf.data's autotuning and static rewrites.

    The pipeline below has nothing to tune or rewrite (one gather per chunk of batches), and
    both cost time: autotuning's model thread can hold up the deletion of a finished epoch's
    iterator for seconds (2.5 s measured on 60 000 MNIST-shaped samples), and the default
    rewrites serialize the dataset's graph, with the arrays it holds, when its first iterator
    is made (0.5 s for those 188 MB, at every `fit`).

    Across workers the batches are shared out (`AutoShardPolicy.DATA`): the arrays are no
    files to divide.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_optimization.inject_prefetch = False
    return options


def array_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Batches of ``(x, y)`` in the arrays' order, one pass, made without running a function.

    The whole batches are slices of one copy of the arrays (the remainder one more batch), so
    an iterator costs about what `tf.data.Dataset.range` costs: a dataset that runs a function
    pays for instantiating it (grappler included) at every iterator, 5-20 ms measured on 2
    cores, which is most of an epoch of the lectures' small data sets. Two batches are made
    ahead of the step that takes them.
    """
    full = len(x) // batch_size  # whole batches; the remainder makes one more
    cut = full * batch_size
    parts = []
    if full:
        whole = tuple(a[:cut].reshape(full, batch_size, *a.shape[1:]) for a in (x, y))
        parts.append(tf.data.Dataset.from_tensor_slices(whole))
    if cut < len(x):
        parts.append(tf.data.Dataset.from_tensors((x[cut:], y[cut:])))
    ds = parts[0] if len(parts) == 1 else parts[0].concatenate(parts[1])
    return ds.prefetch(2).with_options(pipeline_options())


def _shuffled_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int, epoch: tf.Variable, repeat: bool
) -> tf.data.Dataset:
    """Batches of ``(x, y)``, epoch e in the order fixed by ``(seed, e)``, from the epoch
    `epoch` holds when the first batch is taken.

    With `repeat` the epochs follow one another in one endless stream (one iterator, hence one
    instantiation of its functions, for a whole `fit`); without, the dataset is that one epoch.

    The samples are taken in chunks of whole batches (at most `CHUNK_BATCHES` batches and about
    `CHUNK_BYTES`): one gather of the epoch's samples ``order[start:stop]`` per chunk, then cut into
    batches without running a function per batch (which, run by tf.data for each batch, cost
    more than the batch's gather), so that a pass never holds a second copy of the data.
    """
    n = len(x)
    full = n // batch_size
    x_t, y_t = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    row_bytes = x[:1].nbytes + y[:1].nbytes
    per_chunk = max(1, min(CHUNK_BATCHES, CHUNK_BYTES // max(1, row_bytes * batch_size)))
    chunk_rows = per_chunk * batch_size

    def order(e: tf.Tensor) -> tf.Tensor:
        key = tf.stack([tf.constant(seed, tf.int64), e])
        return tf.argsort(tf.random.stateless_uniform([n], seed=key))

    def rows(indices: tf.Tensor, start: Any, stop: Any) -> tuple[tf.Tensor, tf.Tensor]:
        taken = indices[start:stop]
        return tf.gather(x_t, taken), tf.gather(y_t, taken)

    def one_pass(epoch: tf.Tensor) -> tf.data.Dataset:
        indices = order(epoch)

        def chunk(c: tf.Tensor) -> tf.data.Dataset:
            start = c * chunk_rows
            xs, ys = rows(indices, start, tf.minimum(start + chunk_rows, full * batch_size))
            shape = (tf.reshape(t, [-1, batch_size, *t.shape[1:]]) for t in (xs, ys))
            return tf.data.Dataset.from_tensor_slices(tuple(shape))

        ds = tf.data.Dataset.range(math.ceil(full / per_chunk)).flat_map(chunk)
        if full * batch_size < n:
            rest = tf.data.Dataset.from_tensors(0).map(
                lambda _: rows(indices, full * batch_size, n)
            )
            ds = ds.concatenate(rest)
        return ds

    def epochs(_: tf.Tensor) -> tf.data.Dataset:
        first = tf.cast(epoch.read_value(), tf.int64)
        return tf.data.Dataset.range(first, _FOREVER if repeat else first + 1)

    ds = tf.data.Dataset.from_tensors(0).flat_map(epochs).flat_map(one_pass)
    steps = tf.data.INFINITE_CARDINALITY if repeat else math.ceil(n / batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(2).with_options(pipeline_options())


def train_pipeline(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    seed: int,
    epoch: tf.Variable | None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Training batches of ``(x, y)``: one epoch, or with `repeat` every epoch in one stream.

    With `epoch`, the samples of epoch e come in an order that depends only on ``(seed, e)``,
    the stream starting at the epoch `epoch` holds when its first batch is taken: a run
    resumed at epoch k sees the same batches as an uninterrupted one, however many iterators
    Keras opens. Without, the arrays' order every epoch.

    A repeated stream keeps one iterator for the whole `fit` when Keras is given
    ``steps_per_epoch``; that is exact only when every graph execution stays within one
    epoch (the steps per execution divide the steps per epoch: `streams_epochs`).
    """
    if epoch is None:
        ds = array_batches(x, y, batch_size)
        return ds.repeat() if repeat else ds
    return _shuffled_batches(x, y, batch_size, seed=seed, epoch=epoch, repeat=repeat)


def streams_epochs(model: keras.Model, steps_per_epoch: int, steps_per_execution: int) -> bool:
    """Whether `fit` trains from one repeated stream (`train_pipeline` with ``repeat=True``).

    Only when each execution of ``steps_per_execution`` steps ends within an epoch, and on a
    single replica (a strategy shards the stream across replicas and workers per batch, which
    would mix epochs).
    """
    return (
        steps_per_epoch % steps_per_execution == 0
        and model.distribute_strategy.num_replicas_in_sync == 1
    )


def validation_pipeline(
    x_val: np.ndarray | None, y_val: np.ndarray | None, batch_size: int
) -> tf.data.Dataset | None:
    """Validation batches of at least `EVAL_BATCH_SIZE` samples (`None` without validation)."""
    if x_val is None:
        return None
    return array_batches(x_val, y_val, max(batch_size, EVAL_BATCH_SIZE))


def auto_steps_per_execution(n_samples: int, batch_size: int) -> int:
    """Steps fused per execution: a whole epoch, capped at `MAX_STEPS_PER_EXECUTION`."""
    return max(1, min(math.ceil(n_samples / batch_size), MAX_STEPS_PER_EXECUTION))


def resolve_steps_per_execution(
    model: keras.Model,
    steps_per_execution: int | str,
    n_samples: int,
    batch_size: int,
) -> int:
    """`fit`'s ``steps_per_execution``, ``"auto"`` resolved and checked against the strategy.

    ``"auto"`` fuses a whole epoch (`auto_steps_per_execution`), and 1 under a strategy with
    several replicas.

    Raises:
        ValueError: not a positive integer, or above 1 under several replicas.
    """
    replicas = model.distribute_strategy.num_replicas_in_sync
    if steps_per_execution == "auto":
        # Keras 3.15 / TF 2.21 cannot fuse steps across replicas (the multi-step loop fails
        # with "You must feed a value for placeholder tensor"): one step per execution there.
        steps_per_execution = 1 if replicas > 1 else auto_steps_per_execution(n_samples, batch_size)
    positive_int("steps_per_execution", steps_per_execution)
    if replicas > 1 and steps_per_execution > 1:
        raise ValueError(
            "Received an invalid value for argument steps_per_execution, expected 1 or 'auto' "
            f"for a model built under a strategy with {replicas} replicas (Keras cannot fuse "
            "several steps into one execution across replicas). Received: "
            f"steps_per_execution={steps_per_execution}"
        )
    return steps_per_execution


def set_steps_per_execution(model: keras.Model, steps: int) -> None:
    """Sets the model's steps per execution, rebuilding its train and test functions."""
    if model.steps_per_execution != steps:
        model.steps_per_execution = steps
        model.make_train_function(force=True)
        model.make_test_function(force=True)
