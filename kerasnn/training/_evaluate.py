"""`evaluate`: the compiled loss and metrics on the test split (step 5 of the recipe)."""

from __future__ import annotations

import keras

from kerasnn._validation import positive_int
from kerasnn.training._data import Data, arrays, check_data
from kerasnn.training._pipeline import EVAL_BATCH_SIZE, array_batches

__all__ = ["evaluate"]


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
    x, y = arrays(data, "test")
    check_data(model, x, y, "data")
    results = model.evaluate(array_batches(x, y, batch_size), verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}
