"""A training run's curves: train vs validation per metric, and the learning rate."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

from kerasnn.plots._figure import finish, history_dict, metric_names, plt

__all__ = ["plot_history", "plot_lr"]


def plot_history(
    history: Mapping[str, Sequence[float]] | Any,
    *,
    best_epoch: int | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Plots train vs validation curves, one panel per metric.

    The area between the training and validation curves is shaded (the generalization gap the
    lectures watch for overfitting), the best epoch is marked with its value, and the gap at the
    best and at the last epoch is written on each panel. Learning rate, gradient norms and
    activation statistics have their own plots (`plot_lr`, `plot_grad_norms`,
    `plot_activation_stats`).

    Args:
        history: ``{"loss": [...], "val_loss": [...], ...}``, a `keras.callbacks.History`
            or a `kerasnn.FitResult`.
        best_epoch: the epoch to mark, counted from 1 as on the x axis (and in
            `kerasnn.FitResult.best_epoch`); 0 marks none. Defaults to `None` (the lowest
            ``val_loss`` if present).
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
    names = metric_names(history)
    if not names:
        raise ValueError(
            "Received an invalid value for argument history, expected at least one metric "
            f"series. Received: keys={list(history)}"
        )
    if best_epoch is None and history.get("val_loss"):
        vals = list(history["val_loss"])
        best_epoch = min(range(len(vals)), key=vals.__getitem__) + 1
    best = None if best_epoch is None else best_epoch - 1  # the index of the marked epoch
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        train = list(history[name])
        epochs = range(1, len(train) + 1)
        ax.plot(epochs, train, label=f"train {name}", color="tab:blue")
        val = history.get(f"val_{name}")
        if val:
            ax.plot(epochs, list(val), label=f"validation {name}", color="tab:orange")
            ax.fill_between(epochs, train, list(val), color="tab:red", alpha=0.12, label="gap")
            gaps = [f"gap at end {val[-1] - train[-1]:+.3g}"]
            if best is not None and 0 <= best < len(train):
                gaps.insert(0, f"gap at best {val[best] - train[best]:+.3g}")
            ax.text(0.02, 0.02, "\n".join(gaps), transform=ax.transAxes, fontsize=7, va="bottom")
        if best is not None and 0 <= best < len(train):
            ax.axvline(best_epoch, color="gray", ls="--", lw=1, label=f"best ({best_epoch})")
            if val:
                ax.plot([best_epoch], [val[best]], "o", color="tab:orange", ms=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        if name == "loss" and min(train) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return finish(fig, path)


def plot_lr(
    history: Mapping[str, Sequence[float]] | Any | None = None,
    *,
    schedule: Any = None,
    steps: int | None = None,
    path: str | os.PathLike | None = None,
) -> matplotlib.figure.Figure:
    """Plots the learning rate: logged per epoch, or a schedule evaluated step by step.

    Args:
        history: a history with ``learning_rate`` (and ``momentum``) per epoch, a
            `keras.callbacks.History` or a `kerasnn.FitResult`. Defaults to `None`.
        schedule: a `LearningRateSchedule` to draw over `steps` steps instead.
            Defaults to `None`.
        steps: number of steps to evaluate `schedule` over. Defaults to `None`.
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.

    Raises:
        ValueError: neither a history with ``learning_rate`` nor a schedule with `steps`.

    Example:

    >>> fig = plot_lr({"learning_rate": [0.1, 0.05, 0.025]})
    >>> fig.axes[0].get_ylabel()
    'learning rate'
    """
    second = None
    if schedule is not None:
        if steps is None or steps <= 0:
            raise ValueError(
                "Received an invalid value for argument steps, expected a positive integer "
                f"to evaluate the schedule over. Received: steps={steps!r}"
            )
        xs = np.arange(steps)
        lrs = [float(schedule(int(i))) for i in xs]
        xlabel = "step"
        momentum = getattr(schedule, "momentum", None)
        if callable(momentum):
            second = [float(momentum(int(i))) for i in xs]
    else:
        data = history_dict(history) if history is not None else {}
        if not data or "learning_rate" not in data:
            raise ValueError(
                "Received an invalid value for argument history, expected a history with "
                "'learning_rate' (kerasnn.fit logs it) or a schedule with steps. Received: keys="
                f"{list(data)}"
            )
        lrs = list(data["learning_rate"])
        xs = np.arange(1, len(lrs) + 1)
        xlabel = "epoch"
        second = list(data["momentum"]) if "momentum" in data else None
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(xs, lrs, color="tab:blue", marker="." if len(lrs) < 60 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    if min(lrs) > 0 and max(lrs) / min(lrs) > 100:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if second is not None:
        twin = ax.twinx()
        twin.plot(xs, second, color="tab:green", ls="--")
        twin.set_ylabel("momentum", color="tab:green")
    return finish(fig, path)
