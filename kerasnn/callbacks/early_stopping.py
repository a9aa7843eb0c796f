"""Early stopping that records why training stopped and survives a restart."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerasnn import _atomic, _epoch_state

__all__ = ["EarlyStopping", "missing_monitor_message"]


@keras.saving.register_keras_serializable(package="kerasnn")
class EarlyStopping(keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` with best-weight restore on, a stop reason, and a state dir.

    Behaves exactly like Keras's callback (same monitor/patience/min_delta logic, which this
    class inherits) and adds:

    - `restore_best_weights=True` and `monitor="val_loss"`, `patience=10` by default;
    - `stop_reason` (``"early_stopping"`` or `None`), `stopped_epoch` and `message` (what was
      monitored, since when it had not improved), read by `kerasnn.fit` into `FitResult`;
    - a monitor that is not in the logs is an error naming the quantities that are (Keras
      only warns, and then never stops);
    - an epoch whose ``loss``, ``val_loss`` or monitored value is NaN or ±inf is never the best
      one, not even the first epoch (Keras would keep its NaN weights as the "best" when no
      epoch before it was evaluated); it counts as an epoch without improvement;
    - `state_dir`: when given, the patience counter, best value, best epoch and best weights are
      written there after every epoch, and restored when training resumes from a
      `keras.callbacks.BackupAndRestore` backup, so an interrupted run stops at the same epoch
      with the same best weights as an uninterrupted one.

    Args:
        monitor: quantity to monitor. Defaults to ``"val_loss"``.
        patience: epochs without improvement before stopping. Defaults to 10.
        restore_best_weights: restore the best epoch's weights when training ends.
            Defaults to `True`.
        state_dir: folder for the resumable state. Defaults to `None` (not persisted).
        **kwargs: `min_delta`, `mode`, `baseline`, `start_from_epoch`, `verbose` as in Keras.

    Example:

    >>> cb = EarlyStopping(patience=3)
    >>> (cb.monitor, cb.restore_best_weights)
    ('val_loss', True)
    """

    _STATE_FILE = "early_stopping.json"

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        *,
        restore_best_weights: bool = True,
        state_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(
                "Received an invalid value for argument patience, expected an integer >= 0. "
                f"Received: patience={patience!r}"
            )
        super().__init__(
            monitor=monitor, patience=patience, restore_best_weights=restore_best_weights, **kwargs
        )
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.stop_reason: str | None = None
        self.message: str | None = None
        self._first_epoch_seen = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self.stop_reason = None
        self.message = None
        self._first_epoch_seen = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self._first_epoch_seen:
            self._first_epoch_seen = True
            if epoch > 0 and self.state_dir is not None:
                self._restore_state(epoch - 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and self.monitor not in logs:
            raise ValueError(missing_monitor_message(self.monitor, logs))
        if _finite_epoch(logs, self.monitor):
            super().on_epoch_end(epoch, logs)
        elif epoch >= self.start_from_epoch:
            # Keras's rule for an epoch without improvement, minus any use of its weights.
            self.wait += 1
            if self.wait >= self.patience and epoch > 0:
                self.stopped_epoch = epoch
                self.model.stop_training = True
        if self.model.stop_training and self.stopped_epoch == epoch:
            self.stop_reason = "early_stopping"
            if self.best is None:  # every epoch so far was non-finite: nothing to restore
                self.message = (
                    f"Early stopping at epoch {epoch + 1}: {self.monitor} had not been finite "
                    f"for {self.wait} epochs (no epoch had a finite value; no weights were "
                    "restored)."
                )
            else:
                self.message = (
                    f"Early stopping at epoch {epoch + 1}: {self.monitor} had not improved for "
                    f"{self.wait} epochs (best {float(self.best):.6g} at epoch "
                    f"{self.best_epoch + 1}"
                    + (", whose weights were restored)." if self.restore_best_weights else ").")
                )
        if self.state_dir is not None:
            self._save_state(epoch)

    def get_config(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "patience": self.patience,
            "restore_best_weights": self.restore_best_weights,
            "state_dir": None if self.state_dir is None else str(self.state_dir),
            "min_delta": abs(self.min_delta),
            "mode": self.mode,
            "baseline": self.baseline,
            "start_from_epoch": self.start_from_epoch,
            "verbose": self.verbose,
        }

    # -- resumable state ------------------------------------------------------------------------
    def _save_state(self, epoch: int) -> None:
        """Keeps the state after this epoch and after the previous one (a kill may land between
        this write and the backup's, in which case training resumes one epoch earlier)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        weights_file = None
        if self.restore_best_weights and self.best_weights is not None:
            weights_file = f"best-epoch-{self.best_epoch}.npz"
            target = self.state_dir / weights_file
            if not target.exists():
                with _atomic.replacing(target, suffix=".npz") as tmp:
                    np.savez(tmp, *self.best_weights)
        entry = {
            "epoch": epoch,
            "wait": self.wait,
            "best": None if self.best is None else float(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "weights_file": weights_file,
        }
        entries = _epoch_state.save_entry(self.state_dir / self._STATE_FILE, entry)
        _epoch_state.prune(self.state_dir, "best-epoch-*.npz", {e["weights_file"] for e in entries})

    def _restore_state(self, last_done_epoch: int) -> None:
        state = _epoch_state.find_entry(self.state_dir / self._STATE_FILE, last_done_epoch)
        if state is None:
            warnings.warn(
                f"EarlyStopping found no saved state for epoch {last_done_epoch + 1} in "
                f"{self.state_dir}; patience restarts from 0 on this resumed run.",
                stacklevel=2,
            )
            return
        self.wait = state["wait"]
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]
        if state["weights_file"] is not None:
            with np.load(self.state_dir / state["weights_file"]) as f:
                self.best_weights = [f[f"arr_{i}"] for i in range(len(f.files))]


def _finite_epoch(logs: dict | None, monitor: str) -> bool:
    """Whether the epoch's training loss, validation loss and monitored value are finite."""
    values = [(logs or {}).get(k) for k in ("loss", "val_loss", monitor)]
    return all(v is None or math.isfinite(float(v)) for v in values)


def missing_monitor_message(monitor: str, available: Any) -> str:
    """The error for an early-stopping monitor that training does not log."""
    return (
        "Received an invalid value for argument monitor, expected one of the quantities "
        f"training logs: {', '.join(sorted(available))}. Received: monitor={monitor!r}"
    )
