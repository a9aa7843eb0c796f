"""What a search prints while it runs: one line per trial, one per retrained member.

The lines are plain text, one per event, so a log file (output that is not a terminal) reads
as a table: no escape codes, no carriage returns. In a terminal a retrained member's epoch
count is also shown as it goes (`MemberEpochs`: the line rewritten with ``\\r``), then its line.

```
trial 3/20 | val_accuracy 0.9861 (best 0.9931, trial 2) | 12.3 s | budget left 7.7 min | depth=2 ...
member 2/5 (trial 7) | 143 epochs in 11.2 s | test accuracy 0.9889
```
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import keras

__all__ = ["MemberEpochs", "format_values", "member_line", "trial_line"]


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.3g}"


def format_values(values: Mapping[str, Any]) -> str:
    """``name=value`` pairs of a trial's configuration (KerasTuner's ``tuner/*`` bookkeeping
    left out; floats to 3 significant digits)."""
    return " ".join(
        f"{k}={_number(v)}" for k, v in values.items() if not str(k).startswith("tuner/")
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def trial_line(
    row: Mapping[str, Any],
    *,
    total: int | str,
    objective: str,
    best: Mapping[str, Any] | None,
    budget_left: float | None,
) -> str:
    """The line of a finished trial.

    Args:
        row: the trial's row of the results table (``trial``, ``status``, ``score``,
            ``seconds``, ``stop_reason``, ``reason``, the hyperparameters…).
        total: the search's number of trials (or a bound such as ``"<=20"``).
        objective: the objective's name.
        best: the best completed row so far, or `None`.
        budget_left: seconds left of the time budget, or `None` (no budget).
    """
    parts = [f"trial {row['trial']}/{total}"]
    if row.get("stage", 1) != 1:
        parts[0] += f" (stage {row['stage']})"
    if row["status"] == "COMPLETED" and row.get("score") is not None:
        score = f"{objective} {row['score']:.4f}"
        if best is not None:
            score += f" (best {best['score']:.4f}, trial {best['trial']})"
        if row.get("folds"):
            folds = [f for f in row["folds"] if f is not None and math.isfinite(f)]
            score += f" over {len(folds)} folds"
        parts.append(score)
    else:
        parts.append(f"failed: {row.get('reason') or row['status']}")
    if row.get("stop_reason") == "time_budget":
        parts.append("stopped by the time budget")
    if row.get("seconds") is not None:
        parts.append(f"{row['seconds']:.1f} s")
    if budget_left is not None:
        parts.append(f"budget left {_duration(max(0.0, budget_left))}")
    parts.append(row.get("config", ""))
    return " | ".join(p for p in parts if p)


def member_line(index: int, count: int, record: Mapping[str, Any]) -> str:
    """The line of member `index` of `count`: its trial, its retraining's epochs (or, not
    retrained, how many of its trial's models it averages), time, test metrics."""
    test = ", ".join(f"{k} {v:.4f}" for k, v in (record.get("test_metrics") or {}).items())
    if record.get("retrain_epochs") is None:
        models = int(record.get("models") or 1)
        what = "its trial's model" if models == 1 else f"its trial's {models} fold models"
        what += " loaded"
    else:
        what = f"{record['retrain_epochs']} epochs"
    return (
        f"member {index}/{count} (trial {record['trial']}) | {what} "
        f"in {record['retrain_seconds']:.1f} s | test {test}"
    )


class MemberEpochs(keras.callbacks.Callback):
    """In a terminal, rewrites ``member j/K (trial n): epoch e/E`` after each epoch of a
    retrained member; does nothing when `stream` is not a terminal.

    Args:
        label: ``member j/K (trial n)``.
        epochs: the epochs it retrains.
        stream: where to write. Defaults to `sys.stdout`.
    """

    def __init__(self, label: str, epochs: int, stream: TextIO | None = None) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs
        self.stream = stream or sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.live:
            self.stream.write(f"\r{self.label}: epoch {epoch + 1}/{self.epochs}")
            self.stream.flush()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")  # clears the line; the member's line follows
            self.stream.flush()
