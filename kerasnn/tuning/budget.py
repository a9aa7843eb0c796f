"""A search's clock and folder: the time budget, what is left of it after a resume, and the
checks of an earlier search in the folder.

The seconds a search's trials have taken are recorded in ``search.json`` (``trial_seconds``)
after every trial, so a resumed search gets only what was left of its budget.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from kerasnn import _atomic, _json
from kerasnn.tuning.results import PROJECT, load_json
from kerasnn.tuning.settings import SearchSettings

__all__ = ["SearchClock", "check_folder"]


class SearchClock:
    """The time budget: `deadline` (a `time.time()` value) and what is left of it.

    The seconds already spent by a resumed search are read from ``search.json``
    (``trial_seconds``) and counted against the budget.
    """

    def __init__(self, settings: SearchSettings) -> None:
        self.budget = settings.time_budget
        self.started = time.time()
        meta = (load_json(settings.directory / "search.json") or {}) if settings.resume else {}
        self.spent_before = float(meta.get("trial_seconds") or 0.0)
        self.deadline = (
            None if self.budget is None else self.started + self.budget - self.spent_before
        )

    def spent(self) -> float:
        return self.spent_before + time.time() - self.started

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def save(self, directory: Path) -> None:
        """Records the seconds spent in ``search.json`` (a resumed search continues them)."""
        path = directory / "search.json"
        meta = load_json(path)
        if meta is not None:
            meta["trial_seconds"] = round(self.spent(), 3)
            _atomic.write_text(path, _json.dumps(meta) + "\n")


def check_folder(settings: SearchSettings) -> dict[str, Any]:
    """Checks the search folder against `settings` (an earlier search there, resume); returns
    the earlier ``search.json`` (empty for a new search)."""
    out = settings.directory
    project = out / PROJECT
    exists = (project / "oracle.json").exists()
    if settings.overwrite and out.exists():
        shutil.rmtree(out)
        exists = False
    if exists and not settings.resume:
        raise FileExistsError(
            f"Received an invalid value for argument directory, expected a folder without "
            f"a search: {out} already holds one. Pass resume=True (CLI: --resume) to "
            f"continue it or overwrite=True (--overwrite) to start again. "
            f"Received: directory={str(out)!r}"
        )
    if settings.resume and not exists:
        raise FileNotFoundError(
            f"Nothing to resume: no search in {out} (expected {project / 'oracle.json'}). "
            "Run without resume to start one."
        )
    meta = (load_json(out / "search.json") or {}) if exists else {}
    current = {
        "objective": settings.objective,
        "kind": settings.kind,
        "seed": settings.seed,
        "cv": settings.cv,
        "refine": settings.refine is not None,
    }
    for key, value in current.items():
        if key in meta and meta[key] != value:
            raise ValueError(
                f"Received an invalid value for argument {key}, expected the resumed "
                f"search's {meta[key]!r}. Received: {key}={value!r}"
            )
    return meta
