"""Stops training on a NaN/inf loss and says where it happened."""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="kerasnn")
class NaNGuard(keras.callbacks.TerminateOnNaN):
    """`keras.callbacks.TerminateOnNaN` that records the epoch and step of the bad loss.

    Training stops gracefully (so `EarlyStopping` still restores the best weights and the run
    folder is still written); `message` then says where the loss became NaN/inf, and
    `kerasnn.fit` reports it as the stop reason ``"nan_loss"``.

    With ``steps_per_execution > 1`` Keras reports losses once per execution, so `step` is the
    last step of the execution in which the loss went bad.

    Example:

    >>> guard = NaNGuard()
    >>> guard.message is None
    True
    """

    def __init__(self) -> None:
        super().__init__(raise_error=False)
        self.epoch: int | None = None
        self.step: int | None = None
        self.message: str | None = None
        self._current_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = self.step = self.message = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)) or self.message is not None:
            return
        self.epoch, self.step = self._current_epoch, batch
        self.message = (
            f"Training stopped: the loss became {float(loss)} at epoch {self.epoch + 1}, "
            f"step {self.step + 1}. The best weights so far were kept; try a lower learning "
            "rate, gradient clipping (clipnorm) or standardized inputs."
        )
        print(f"\n{self.message}")
        self.model.stop_training = True

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Handled in `on_train_batch_end` (the parent's hook would also fire in evaluate)."""

    def get_config(self) -> dict:
        return {}
