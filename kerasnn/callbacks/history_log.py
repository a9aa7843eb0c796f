"""Per-epoch history written to CSV as it happens, correct across resumed runs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import keras

from kerasnn import _atomic

__all__ = ["HistoryLog", "read_history_csv"]


@keras.saving.register_keras_serializable(package="kerasnn")
class HistoryLog(keras.callbacks.Callback):
    """Writes one CSV row per epoch (``epoch`` counted from 1, then every entry of `logs`).

    The n-th epoch trained is row n, epoch n (as `kerasnn.FitResult.best_epoch` and the
    history plots count). Unlike `keras.callbacks.CSVLogger` with ``append=True``, a resumed
    run first drops rows of epochs that are about to be trained again, so the file never holds
    an epoch twice. Each row is flushed and fsynced before the next epoch starts, and the file
    is replaced atomically (`kerasnn._atomic`).

    Args:
        path: CSV file to write.

    Example:

    >>> HistoryLog("history.csv").path.name
    'history.csv'
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = Path(path)
        self._rows: list[dict[str, str]] = []
        self._started = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._started:
            return
        self._started = True
        # Keras's `epoch` (0-based) is the number of epochs already done: their rows stay.
        self._rows = [r for r in read_history_csv(self.path) if int(r["epoch"]) <= epoch]
        self._write()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": str(epoch + 1)}
        row.update({k: repr(float(v)) for k, v in (logs or {}).items()})
        self._rows.append(row)
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fields: list[str] = []
        for row in self._rows:
            fields += [k for k in row if k not in fields]
        with _atomic.replacing(self.path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields or ["epoch"], restval="")
            writer.writeheader()
            writer.writerows(self._rows)
            f.flush()
            os.fsync(f.fileno())

    def get_config(self) -> dict:
        return {"path": str(self.path)}


def read_history_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a history CSV (empty list if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
