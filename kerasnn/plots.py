"""Figures people look at while training, drawn with matplotlib's Agg backend into PNG files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot's import
import matplotlib.pyplot as plt


def _metric_names(history: Mapping[str, Sequence[float]]) -> list[str]:
    """Training metric names (``loss`` first), each plotted with its ``val_`` twin if present."""
    names = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    return sorted(names, key=lambda k: (k != "loss", k))


def plot_history(
    history: Mapping[str, Sequence[float]] | Any,
    *,
    best_epoch: int | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Plots train vs validation curves, one panel per metric.

    The area between the training and validation loss is shaded (the generalization gap the
    lectures watch for overfitting) and the best epoch is marked.

    Args:
        history: ``{"loss": [...], "val_loss": [...], ...}``, a `keras.callbacks.History`
            or a `kerasnn.FitResult`.
        best_epoch: 0-based epoch to mark. Defaults to `None` (the lowest ``val_loss`` if
            present).
        path: PNG file to write. Defaults to `None` (not saved).
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` (closed after saving when `path` is given).

    Example:

    >>> fig = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    >>> len(fig.axes)
    1
    """
    if hasattr(history, "best_epoch") and best_epoch is None:
        best_epoch = history.best_epoch
    history = getattr(history, "history", history)
    names = _metric_names(history)
    if not names:
        raise ValueError(
            "Received an invalid value for argument history, expected at least one metric "
            f"series. Received: keys={list(history)}"
        )
    if best_epoch is None and history.get("val_loss"):
        vals = list(history["val_loss"])
        best_epoch = min(range(len(vals)), key=vals.__getitem__)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        train = list(history[name])
        epochs = range(1, len(train) + 1)
        ax.plot(epochs, train, label=f"train {name}", color="tab:blue")
        val = history.get(f"val_{name}")
        if val:
            ax.plot(epochs, list(val), label=f"validation {name}", color="tab:orange")
            if name == "loss":
                ax.fill_between(epochs, train, list(val), color="tab:red", alpha=0.12, label="gap")
        if best_epoch is not None and 0 <= best_epoch < len(train):
            ax.axvline(
                best_epoch + 1, color="gray", ls="--", lw=1, label=f"best ({best_epoch + 1})"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        if name == "loss" and min(train) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
