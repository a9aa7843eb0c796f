"""Run folders: written in a staging folder, moved into place only when the run finishes.

A run writes into ``<name>.partial/`` beside its target folder and is renamed to ``<name>/`` at
the end, so a crash, a kill or an exception never leaves a half-written run at the target and
never touches an earlier run there. The staging folder keeps the
`keras.callbacks.BackupAndRestore` backup, which `resume=True` continues from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from kerasnn import _atomic, _json

__all__ = ["FINISHED_MARKER", "RunFolder", "next_free"]

FINISHED_MARKER = "metrics.json"


class RunFolder:
    """A run's output folder, staged until `finalize`.

    Args:
        path: the final folder, e.g. ``runs/digits_mlp``.
        overwrite: replace a finished run already at `path` (only once the new run has
            finished). Defaults to `False`: a finished run there is an error.
        resume: continue from the staging folder left by an interrupted run. Defaults to
            `False`: a stale staging folder is cleared.
        figures: draw the run's figures (``history.png``, ``lr.png``, ...) when training
            ends. Defaults to `True`; a search's trial folders keep only their files
            (``history.csv``, ``metrics.json``, ``model.keras``), a figure costing about as
            much as a short trial's epoch.

    Raises:
        FileExistsError: `path` holds a finished run (or other files) and `overwrite` is off.
        FileNotFoundError: `resume=True` but there is no interrupted run to resume.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with RunFolder(root / "run") as run:
    ...     _ = run.write_json("metrics.json", {"accuracy": 1.0})
    >>> sorted(p.name for p in (root / "run").iterdir())
    ['metrics.json']
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        overwrite: bool = False,
        resume: bool = False,
        figures: bool = True,
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.resume = resume
        self.figures = figures
        self.staging = self.path.parent / f"{self.path.name}.partial"
        self._open = False

    @property
    def backup_dir(self) -> Path:
        """Where `keras.callbacks.BackupAndRestore` keeps its checkpoint."""
        return self.staging / "backup"

    @property
    def state_dir(self) -> Path:
        """Where resumable callback state (early stopping) is kept."""
        return self.staging / "state"

    def open(self) -> RunFolder:
        """Checks the target and prepares the staging folder."""
        if self._open:
            return self
        if self.path.exists() and any(self.path.iterdir()) and not self.overwrite:
            what = "a finished run" if (self.path / FINISHED_MARKER).exists() else "files"
            raise FileExistsError(
                f"Received an invalid value for argument run_dir, expected a new or empty "
                f"folder: {self.path} already holds {what}. Choose another folder or pass "
                f"overwrite=True (CLI: --overwrite). Received: run_dir={str(self.path)!r}"
            )
        if self.resume:
            if not self.backup_dir.exists():
                raise FileNotFoundError(
                    f"Nothing to resume: no interrupted run at {self.staging} "
                    f"(expected a backup in {self.backup_dir}). Run without resume to start."
                )
        else:
            if self.staging.exists():
                shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True, exist_ok=True)
        self._open = True
        return self

    def file(self, name: str) -> Path:
        """Path of `name` inside the staging folder."""
        return self.staging / name

    def write_text(self, name: str, text: str) -> Path:
        """Writes a text file atomically (`kerasnn._atomic.write_text`: a temporary file
        renamed into place; the file gets the umask's mode)."""
        return _atomic.write_text(self.file(name), text)

    def write_json(self, name: str, data: Any) -> Path:
        """Writes `data` as indented strict JSON: NaN/±inf become ``null``, the reason under
        ``"non_finite"`` (`kerasnn._json`; read it back with `kerasnn._json.read`)."""
        return self.write_text(name, _json.dumps(data, indent=2) + "\n")

    def write_yaml(self, name: str, data: Any) -> Path:
        """Writes `data` as block-style YAML, keys in insertion order."""
        return self.write_text(name, yaml.safe_dump(data, sort_keys=False))

    def finalize(self) -> Path:
        """Drops the backup and moves the staging folder to `path`; returns `path`."""
        for folder in (self.backup_dir, self.state_dir):
            if folder.exists():
                shutil.rmtree(folder)
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            os.replace(self.path, old)
        os.replace(self.staging, self.path)
        if old is not None:
            shutil.rmtree(old)
        self._open = False
        return self.path

    def __enter__(self) -> RunFolder:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finalize()
        # On an exception the staging folder stays, for inspection and `resume=True`.


def next_free(path: str | os.PathLike) -> Path:
    """`path` if free, else the first free ``path-2``, ``path-3``…"""
    path = Path(path)
    candidate, n = path, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = path.parent / f"{path.name}-{n}"
    return candidate
