"""Per-epoch callback state kept for a resume: the entries of the last two epochs.

A kill may land between a callback's write at the end of an epoch and
`keras.callbacks.BackupAndRestore`'s, in which case training resumes one epoch earlier: so the
state after this epoch and after the previous one are both kept. Used by
`kerasnn.callbacks.EarlyStopping` and `kerasnn.callbacks.SeedState`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kerasnn import _json

__all__ = ["find_entry", "prune", "save_entry"]


def save_entry(path: Path, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Adds `entry` (with an ``"epoch"``) to the state file at `path`, atomically, keeping one
    earlier epoch; returns the entries kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = _json.read(path)["entries"] if path.exists() else []
    entries = [*[e for e in entries if e["epoch"] < entry["epoch"]][-1:], entry]
    _json.write(path, {"entries": entries}, indent=None)
    return entries


def find_entry(path: Path, epoch: int) -> dict[str, Any] | None:
    """The entry saved for `epoch` in the state file at `path`, or `None`."""
    entries = _json.read(path)["entries"] if path.exists() else []
    match = [e for e in entries if e["epoch"] == epoch]
    return match[0] if match else None


def prune(folder: Path, pattern: str, keep: set[str | None]) -> None:
    """Deletes the files in `folder` matching `pattern` whose names are not in `keep`."""
    for old in folder.glob(pattern):
        if old.name not in keep:
            old.unlink()
