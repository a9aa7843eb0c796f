"""What `fit` and `evaluate` take: a `Dataset` or an ``(x, y)`` pair, checked against the model."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasnn.datasets import Dataset, validate_arrays
from kerasnn.training._tasks import task_of

__all__ = ["ArrayPair", "Data", "arrays", "check_data"]

ArrayPair = tuple[Any, Any]
Data = Dataset | ArrayPair


def arrays(data: Data, split_name: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` arrays of one split of `data`.

    Args:
        data: a `kerasnn.datasets.Dataset` or an ``(x, y)`` pair of arrays.
        split_name: ``"train"`` (a `Dataset`'s training split) or any other name (its test
            split). An ``(x, y)`` pair is returned as arrays whatever the name.

    Returns:
        ``(x, y)`` as NumPy arrays.

    Raises:
        TypeError: `data` is neither a `Dataset` nor an ``(x, y)`` pair.

    Example:

    >>> x, y = arrays(([[0.0, 1.0]], [1]), "train")
    >>> x.shape, y.shape
    ((1, 2), (1,))
    """
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
