"""The learning-rate range test on a model and data: `lr_find`.

`lr_find` trains the model it is given with the `kerasnn.callbacks.LRFinder` callback (the rate
ramped up exponentially, stopped once the loss diverges), then puts every variable of the model
and its optimizer back exactly as it was (`Snapshot`), and returns the callback's
`LRFindResult`: the curve and the suggested rates.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from kerasnn import training
from kerasnn._validation import positive_int
from kerasnn.callbacks.lr_finder import DIVERGE_FACTOR, LRFinder, LRFindResult, has_schedule
from kerasnn.diagnostics._snapshot import Snapshot

__all__ = ["lr_find"]


def lr_find(
    model: keras.Model,
    data: Any,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 32,
    smoothing: float = 0.98,
    diverge_factor: float = DIVERGE_FACTOR,
    seed: int = 0,
    path: str | os.PathLike | None = None,
) -> LRFindResult:
    """Learning-rate range test: the loss over an exponential ramp of rates.

    Trains `model` for up to `num_steps` steps on shuffled batches of the training data, the
    rate rising exponentially from `min_lr` to `max_lr`, and stops once the smoothed loss
    exceeds `diverge_factor` × its minimum. Afterwards the model's weights, non-trainable state
    and the optimizer's state (iterations, learning rate, slots) are exactly as before.

    Args:
        model: a compiled Keras model with a plain (float) learning rate.
        data: a `kerasnn.datasets.Dataset` (train split) or an ``(x, y)`` pair.
        min_lr: first rate, > 0. Defaults to 1e-7.
        max_lr: last rate, > `min_lr`. Defaults to 10.
        num_steps: steps of the ramp (the data is cycled if shorter). Defaults to 100.
        batch_size: samples per step. Defaults to 32.
        smoothing: ``β`` of the loss moving average. Defaults to 0.98.
        diverge_factor: divergence threshold. Defaults to 4.
        seed: shuffle seed. Defaults to 0.
        path: PNG file for the plot (`kerasnn.plots.plot_lr_find`). Defaults to `None`
            (no file).

    Returns:
        An `LRFindResult` (curve, `suggestions`, `suggested`).

    Raises:
        ValueError: bad bounds (reversed, non-positive) or other arguments, data that does not
            fit the model, or a model compiled with a learning-rate schedule — before any step.

    Example:

    >>> import kerasnn as knn
    >>> data = knn.datasets.load("iris")
    >>> model = knn.compile(knn.models.mlp(data, hidden=[16]))
    >>> result = lr_find(model, data, num_steps=20, min_lr=1e-4, max_lr=1.0)
    >>> 1e-4 <= result.suggested <= 1.0
    True
    """
    finder = LRFinder(min_lr, max_lr, num_steps, smoothing, diverge_factor)
    positive_int("batch_size", batch_size)
    if not model.compiled:
        raise RuntimeError("The model is not compiled: call kerasnn.compile(model, ...) first.")
    x, y = training.arrays(data, "train")
    training.check_data(model, x, y, "data")
    if has_schedule(model.optimizer):
        raise ValueError(
            "Received an invalid value for argument model, expected a model compiled with a "
            "plain learning rate: lr_find sets the rate itself. Received: a model whose "
            "optimizer has a learning rate schedule"
        )
    steps_per_epoch = math.ceil(len(x) / batch_size)
    epochs = math.ceil(num_steps / steps_per_epoch)
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(2)
        .with_options(training.pipeline_options())  # no autotuning: see pipeline_options
    )
    snapshot = Snapshot(model)
    try:
        model.steps_per_execution = 1
        model.make_train_function(force=True)
        keras.utils.set_random_seed(seed)
        model.fit(dataset, epochs=epochs, callbacks=[finder], verbose=0, shuffle=False)
    finally:
        snapshot.restore()
    result = finder.result()
    if path is not None:
        from kerasnn import plots  # matplotlib: imported only when a figure is written

        plots.plot_lr_find(result, path=Path(path))
    return result
