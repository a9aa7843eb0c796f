"""The learning rate (and momentum) in `logs` every epoch, whatever the schedule."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerasnn.schedules import momentum_value

__all__ = ["LearningRateLogger"]


@keras.saving.register_keras_serializable(package="kerasnn")
class LearningRateLogger(keras.callbacks.Callback):
    """Writes ``learning_rate`` (and ``momentum`` with `log_momentum`) into each epoch's logs.

    The value is the rate of the epoch's first step (``optimizer.learning_rate`` read when the
    epoch begins: a schedule is evaluated at ``optimizer.iterations``), like
    `keras.callbacks.LearningRateScheduler` reports it. Put it before `CSVLogger` /
    `TensorBoard` in the callback list so they see the value (`kerasnn.fit` adds it first).

    Args:
        log_momentum: also log ``momentum`` (SGD's momentum or Adam's ``beta_1``).
            Defaults to `False`.

    Example:

    >>> LearningRateLogger().log_momentum
    False
    """

    def __init__(self, log_momentum: bool = False) -> None:
        super().__init__()
        self.log_momentum = bool(log_momentum)
        self._values: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        self._values = {"learning_rate": float(np.asarray(optimizer.learning_rate))}
        if self.log_momentum:
            value = momentum_value(optimizer)
            if value is not None:
                self._values["momentum"] = value

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs.update(self._values)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> keras.callbacks.Callback:
        """Rebuilds the callback from `get_config` (callbacks are not Keras layers)."""
        return cls(**config)

    def get_config(self) -> dict:
        return {"log_momentum": self.log_momentum}
