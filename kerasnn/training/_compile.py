"""`compile`: picks the optimizer and the loss, compiles the model (steps 2 and 3 of the recipe)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasnn import optimizers
from kerasnn.training._tasks import default_loss, default_metrics, infer_task

__all__ = ["compile"]


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
