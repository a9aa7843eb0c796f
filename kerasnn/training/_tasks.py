"""The task a model solves and the loss and metrics that go with it."""

from __future__ import annotations

import keras

__all__ = ["default_loss", "default_metrics", "infer_task", "task_of"]


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
