"""Keeps a model's random-generator states with a run, so a resumed run draws the same numbers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras
import numpy as np

from kerasnn import _atomic, _epoch_state

__all__ = ["SeedState"]


@keras.saving.register_keras_serializable(package="kerasnn")
class SeedState(keras.callbacks.Callback):
    """Saves the seed-generator states of the model's layers after every epoch, and restores
    them when training resumes from a `keras.callbacks.BackupAndRestore` backup.

    `Dropout`, `AlphaDropout`, `GaussianNoise` and the random augmentation layers each draw from
    a `keras.random.SeedGenerator` whose state advances every training step. Those states are
    among `model.variables` but not `model.weights`, so `BackupAndRestore` (which saves the
    weights and the optimizer) does not keep them: without this callback a resumed run draws
    other dropout masks and noise than an uninterrupted one from the first resumed epoch on.

    The states after the last two epochs are kept (a kill may land between this write and the
    backup's, in which case training resumes one epoch earlier). Put it before
    `BackupAndRestore` in the callback list, as `kerasnn.fit` does.

    Args:
        state_dir: the folder for the saved states (`kerasnn.runs.RunFolder.state_dir`).

    Example:

    >>> cb = SeedState("/tmp/state")
    >>> cb.state_dir.name
    'state'
    """

    _STATE_FILE = "seed_state.json"

    def __init__(self, state_dir: str | os.PathLike) -> None:
        super().__init__()
        self.state_dir = Path(state_dir)
        self._first_epoch_seen = False

    def _states(self) -> list:
        """The model's variables that are not weights: its seed-generator states."""
        weights = {id(w) for w in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._first_epoch_seen = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self._first_epoch_seen:
            self._first_epoch_seen = True
            if epoch > 0:
                self._restore(epoch - 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        name = f"seed-state-epoch-{epoch}.npz"
        with _atomic.replacing(self.state_dir / name, suffix=".npz") as tmp:
            np.savez(tmp, *[np.asarray(v) for v in self._states()])
        entries = _epoch_state.save_entry(
            self.state_dir / self._STATE_FILE, {"epoch": epoch, "file": name}
        )
        _epoch_state.prune(self.state_dir, "seed-state-epoch-*.npz", {e["file"] for e in entries})

    def _restore(self, last_done_epoch: int) -> None:
        entry = _epoch_state.find_entry(self.state_dir / self._STATE_FILE, last_done_epoch)
        if entry is None:
            warnings.warn(
                f"SeedState found no saved generator state for epoch {last_done_epoch + 1} in "
                f"{self.state_dir}: this resumed run draws other dropout masks and noise than "
                "an uninterrupted one would.",
                stacklevel=2,
            )
            return
        states = self._states()
        with np.load(self.state_dir / entry["file"]) as saved:
            if len(saved.files) != len(states):
                raise ValueError(
                    f"Cannot resume the random-generator state: {self.state_dir} holds "
                    f"{len(saved.files)} generator states, the model has {len(states)} "
                    "(the model differs from the one the interrupted run trained)."
                )
            for i, variable in enumerate(states):
                variable.assign(saved[f"arr_{i}"])

    def get_config(self) -> dict:
        return {"state_dir": str(self.state_dir)}
