"""`FitResult`: what `kerasnn.fit` returns and what a run folder's ``metrics.json`` holds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kerasnn.callbacks.nan_guard import NonFiniteLoss

__all__ = ["FitResult"]


@dataclasses.dataclass
class FitResult:
    """What `fit` returns.

    Epochs are counted from 1, as a person reads them: the n-th epoch trained is epoch n (the
    rows of ``history.csv``'s ``epoch`` column; ``history[k][n - 1]`` is its value of `k`).

    Attributes:
        history: metric name -> one value per epoch (complete across resumed runs). After a
            NaN stop the last epoch's values are those of the epoch the loss went bad in.
        epochs: number of epochs trained (the one a NaN stop cut short included).
        best_epoch: the best epoch (1-based): the best monitored value when early stopping is
            on, else the last epoch — after a NaN stop without early stopping, the last epoch
            that ended with a finite loss; `None` when no epoch did.
        best_metrics: the logs of `best_epoch` (empty when it is `None`).
        final_metrics: the logs of the last epoch trained.
        test_metrics: metrics on the test split when `data` was a `Dataset`, else `None`;
            also `None` when no trained weights were kept (`kept_weights` ``"initial"`` or
            ``"none"``).
        stop_reason: ``"completed"``, ``"early_stopping"`` or ``"nan_loss"``.
        message: human-readable detail of an early or NaN stop (where the loss went bad,
            which weights the model holds, what the run folder has), else `None`.
        wall_time: seconds spent in `model.fit` (this process only).
        run_dir: the finished run folder, or `None`.
        steps_per_execution: training steps fused per graph execution.
        stopped_epoch: the epoch (1-based) after which early stopping or the NaN guard
            stopped training, else `None`.
        kept_weights: the weights the model holds at the end (and the run folder's
            ``model.keras``): ``"best"`` (early stopping restored its best epoch), ``"last"``
            (the last epoch trained), ``"last_finite"`` (after a NaN stop: the last epoch
            that ended with a finite loss, optimizer state included), ``"initial"`` (after a
            NaN stop in the first epoch: the weights and optimizer state from before
            training, put back; no ``model.keras`` is written) or ``"none"`` (the weights
            were not finite even before training; no ``model.keras``).
        kept_epoch: the epoch (1-based) whose weights the model holds; `None` for
            ``"initial"`` and ``"none"``.
        non_finite_loss: after a NaN stop, where the loss first became NaN/inf (a
            `kerasnn.callbacks.nan_guard.NonFiniteLoss`: 1-based epoch and step, optimizer
            step, value), else `None`.
        notes: what the instruments flagged, one sentence each (e.g. an
            `kerasnn.callbacks.UpdateRatios` layer far from ~1e-3); printed under the summary.
    """

    history: dict[str, list[float]]
    epochs: int
    best_epoch: int | None
    best_metrics: dict[str, float]
    final_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    stop_reason: str
    message: str | None
    wall_time: float
    run_dir: Path | None
    steps_per_execution: int
    stopped_epoch: int | None = None
    kept_weights: str = "last"
    kept_epoch: int | None = None
    non_finite_loss: NonFiniteLoss | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A dict of plain values (history included). NaN/inf stay floats: write it with
        `kerasnn._json.dumps`, which makes them ``null`` and records why (strict JSON)."""
        out = dataclasses.asdict(self)
        out["run_dir"] = None if self.run_dir is None else str(self.run_dir)
        return out

    def summary(self) -> str:
        """One line: the headline test (else validation) metrics, epochs and time; then one
        line per note (``note: …``)."""
        shown = self.test_metrics or {
            k: v for k, v in self.best_metrics.items() if k.startswith("val_")
        }
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) or "none"
        where = "test" if self.test_metrics else "validation"
        best = "no finite epoch" if self.best_epoch is None else f"best {self.best_epoch}"
        line = (
            f"{where}: {metrics} | {self.epochs} epochs ({best}, "
            f"{self.stop_reason}) in {self.wall_time:.1f} s"
        )
        return "\n".join([line, *(f"note: {note}" for note in self.notes)])
