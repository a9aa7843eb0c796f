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
    names = [
        k
        for k in history
        if not k.startswith("val_")
        and k not in ("learning_rate", "lr", "momentum")
        and "/" not in k
        and k != "grad_norm"
    ]
    return sorted(names, key=lambda k: (k != "loss", k))


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
            ax.fill_between(epochs, train, list(val), color="tab:red", alpha=0.12, label="gap")
            gaps = [f"gap at end {val[-1] - train[-1]:+.3g}"]
            if best_epoch is not None and 0 <= best_epoch < len(train):
                gaps.insert(0, f"gap at best {val[best_epoch] - train[best_epoch]:+.3g}")
            ax.text(0.02, 0.02, "\n".join(gaps), transform=ax.transAxes, fontsize=7, va="bottom")
        if best_epoch is not None and 0 <= best_epoch < len(train):
            ax.axvline(
                best_epoch + 1, color="gray", ls="--", lw=1, label=f"best ({best_epoch + 1})"
            )
            if val:
                ax.plot([best_epoch + 1], [val[best_epoch]], "o", color="tab:orange", ms=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        if name == "loss" and min(train) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _finish(fig: matplotlib.figure.Figure, path: str | os.PathLike | None) -> Any:
    """Lays the figure out and writes it as PNG (atomically) when `path` is given."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
        plt.close(fig)
    return fig


def _history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    return getattr(history, "history", history)


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
    import numpy as np

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
        data = _history_dict(history) if history is not None else {}
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
    return _finish(fig, path)


def plot_lr_find(result: Any, *, path: str | os.PathLike | None = None) -> matplotlib.figure.Figure:
    """Plots an lr_find curve: loss (raw and smoothed) against the rate, suggestions marked.

    Args:
        result: a `kerasnn.callbacks.LRFindResult`.
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.
    """
    import numpy as np

    lrs = np.array(result.learning_rates)
    smoothed = np.array(result.smoothed_losses)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(lrs, result.losses, color="tab:blue", alpha=0.3, lw=1, label="loss")
    ax.plot(lrs, smoothed, color="tab:blue", label="smoothed loss")
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:
        low, high = float(finite.min()), float(finite[0])
        ax.set_ylim(low - 0.1 * abs(high - low) - 1e-3, max(high, low) * 1.6 + 1e-3)
    colors = {"valley": "tab:red", "steepest": "tab:green", "minimum/10": "tab:purple"}
    for name, rate in result.suggestions.items():
        ax.axvline(rate, color=colors.get(name, "gray"), ls="--", lw=1, label=f"{name} {rate:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_grad_norms(
    history: Mapping[str, Sequence[float]] | Any, *, path: str | os.PathLike | None = None
) -> matplotlib.figure.Figure:
    """Plots the global and per-layer gradient norms (log scale) over training.

    Args:
        history: per-epoch logs with ``grad_norm`` and ``grad_norm/<layer>`` (History,
            `FitResult`) or a `kerasnn.callbacks.GradientNorms` (its per-step records).
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.

    Raises:
        ValueError: no ``grad_norm`` values.
    """
    records = getattr(history, "records", None)
    if records is not None:
        xs = [r.step for r in records]
        series = {k: [r.norms.get(k, float("nan")) for r in records] for k in records[0].norms}
        xlabel = "step"
    else:
        data = _history_dict(history)
        series = {k: list(v) for k, v in data.items() if k.startswith("grad_norm")}
        xs = list(range(1, len(series.get("grad_norm", [])) + 1))
        xlabel = "epoch"
    if not series or "grad_norm" not in series:
        raise ValueError(
            "Received an invalid value for argument history, expected 'grad_norm' values "
            "(from kerasnn.callbacks.GradientNorms)."
        )
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(xs, series.pop("grad_norm"), color="black", lw=2, label="global")
    for name, values in series.items():
        ax.plot(xs, values, lw=1, label=name.split("/", 1)[1])
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gradient L2 norm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _finish(fig, path)


def plot_activation_stats(
    stats: Any, *, path: str | os.PathLike | None = None
) -> matplotlib.figure.Figure:
    """Activation mean / std / dead-or-saturated fraction per layer over epochs, and the
    "colorful dimension": each layer's histograms over time (log counts) as an image.

    Args:
        stats: a `kerasnn.callbacks.ActivationStats` after training (or its `history`: a list
            of ``(epoch, [LayerStats])``).
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.

    Raises:
        ValueError: nothing recorded.
    """
    import numpy as np

    history = getattr(stats, "history", stats)
    if not history:
        raise ValueError(
            "Received an invalid value for argument stats, expected recorded epochs (train "
            "with the ActivationStats callback first). Received: an empty history"
        )
    epochs = [e + 1 for e, _ in history]
    names = [s.name for s in history[0][1]]
    has_hist = history[0][1][0].histogram is not None
    rows = 2 if has_hist else 1
    fig, axes = plt.subplots(
        rows,
        max(3, len(names) if has_hist else 3),
        figsize=(3.6 * max(3, len(names)), 3.2 * rows),
        squeeze=False,
    )
    for i, name in enumerate(names):
        per = [next(s for s in layer_stats if s.name == name) for _, layer_stats in history]
        axes[0][0].plot(epochs, [s.mean for s in per], label=name)
        axes[0][1].plot(epochs, [s.std for s in per], label=name)
        frac = [
            s.dead_fraction if s.dead_fraction is not None else s.saturated_fraction for s in per
        ]
        if frac[0] is not None:
            axes[0][2].plot(epochs, frac, label=name)
        if has_hist:
            ax = axes[1][i]
            counts = np.stack([s.histogram[0] for s in per], axis=1)
            edges = per[0].histogram[1]
            ax.imshow(
                np.log1p(counts),
                origin="lower",
                aspect="auto",
                cmap="viridis",
                extent=(epochs[0] - 0.5, epochs[-1] + 0.5, edges[0], edges[-1]),
            )
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("epoch")
            ax.set_ylabel("activation")
    for ax, label in zip(axes[0][:3], ("mean", "std", "dead / saturated fraction"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    for ax in axes[0][3:]:
        ax.axis("off")
    if has_hist:
        for ax in axes[1][len(names) :]:
            ax.axis("off")
    return _finish(fig, path)


def plot_sanity(report: Any, *, path: str | os.PathLike | None = None) -> matplotlib.figure.Figure:
    """The tiny-subset overfitting curve of a `kerasnn.diagnostics.SanityReport`, with each
    check's PASS/FAIL line.

    Args:
        report: a `SanityReport`.
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.
    """
    history = {k: v for k, v in report.overfit_history.items() if k != "final"}
    fig, ax = plt.subplots(figsize=(6, 3.8))
    if history.get("loss"):
        epochs = range(1, len(history["loss"]) + 1)
        ax.plot(epochs, history["loss"], color="tab:blue", label="training loss")
        if "accuracy" in history:
            twin = ax.twinx()
            twin.plot(epochs, history["accuracy"], color="tab:orange", label="training accuracy")
            twin.set_ylabel("accuracy", color="tab:orange")
            twin.set_ylim(0, 1.05)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    text = "\n".join(f"{'PASS' if c.passed else 'FAIL'} {c.name}" for c in report.checks)
    ax.set_title("sanity check: " + ("passed" if report.passed else "FAILED"), fontsize=10)
    ax.text(0.98, 0.95, text, transform=ax.transAxes, fontsize=7, ha="right", va="top")
    return _finish(fig, path)
