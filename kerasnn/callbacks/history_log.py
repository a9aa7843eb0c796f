"""Per-epoch history written to CSV as it happens, correct across resumed runs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import keras


@keras.saving.register_keras_serializable(package="kerasnn")
class HistoryLog(keras.callbacks.Callback):
    """Writes one CSV row per epoch (``epoch`` 0-based, then every entry of `logs`).

    Unlike `keras.callbacks.CSVLogger` with ``append=True``, a resumed run first drops rows of
    epochs that are about to be trained again, so the file never holds an epoch twice. Each row
    is flushed and fsynced before the next epoch starts.

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
        self._rows = [r for r in read_history_csv(self.path) if int(r["epoch"]) < epoch]
        self._write()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": str(epoch)}
        row.update({k: repr(float(v)) for k, v in (logs or {}).items()})
        self._rows.append(row)
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fields: list[str] = []
        for row in self._rows:
            fields += [k for k in row if k not in fields]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields or ["epoch"], restval="")
            writer.writeheader()
            writer.writerows(self._rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def get_config(self) -> dict:
        return {"path": str(self.path)}


def read_history_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a history CSV (empty list if the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
