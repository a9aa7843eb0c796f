"""What `fit` writes into a run folder once training ends: ``model.keras``, ``metrics.json``
and the figures (``history.csv`` is written epoch by epoch, by `kerasnn.callbacks.HistoryLog`)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerasnn.callbacks import ActivationStats, read_history_csv
from kerasnn.runs import RunFolder
from kerasnn.training.result import FitResult

__all__ = ["HISTORY_FILE", "read_history", "write_run"]

HISTORY_FILE = "history.csv"


def read_history(folder: RunFolder) -> dict[str, list[float]]:
    """The run's whole history from its ``history.csv`` (a resumed run's earlier epochs too)."""
    rows = read_history_csv(folder.file(HISTORY_FILE))
    return {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}


def write_run(
    folder: RunFolder,
    model: keras.Model,
    result: FitResult,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> None:
    """Writes the finished training's model, metrics and (`RunFolder.figures`) figures into
    the staging folder."""
    if result.kept_weights in ("initial", "none"):
        # Untrained or non-finite weights are no result: no model.keras (nor a stale one).
        folder.file("model.keras").unlink(missing_ok=True)
    else:
        model.save(folder.file("model.keras"))
    summary = result.to_dict()
    summary.pop("history")
    summary["run_dir"] = str(folder.path)
    folder.write_json("metrics.json", summary)
    if folder.figures:
        _write_figures(folder, result, callbacks)


def _write_figures(
    folder: RunFolder, result: FitResult, callbacks: Sequence[keras.callbacks.Callback]
) -> None:
    """The run's figures: its history, and the rate, gradient norms, update ratios and
    activation statistics it logged."""
    from kerasnn import plots  # matplotlib is imported only when a figure is drawn

    # No finite epoch (best_epoch None): 0 marks nothing.
    best = result.best_epoch or 0
    plots.plot_history(result.history, best_epoch=best, path=folder.file("history.png"))
    if len(set(result.history.get("learning_rate", []))) > 1:  # a constant rate: no figure
        plots.plot_lr(result.history, path=folder.file("lr.png"))
    if "grad_norm" in result.history:
        plots.plot_grad_norms(result.history, path=folder.file("grad_norms.png"))
    if any(k.startswith("update_ratio/") for k in result.history):
        plots.plot_update_ratios(result.history, path=folder.file("update_ratios.png"))
    for cb in callbacks:
        if isinstance(cb, ActivationStats) and cb.history:
            plots.plot_activation_stats(cb, path=folder.file("activation_stats.png"))
