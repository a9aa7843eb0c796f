"""Diagnostics figures: lr_find, gradient norms, update ratios, activations, sanity, depth."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

from kerasnn._update_ratio_rule import HIGH_RATIO, LOW_RATIO, TARGET_RATIO
from kerasnn.plots._figure import finish, history_dict, plt

__all__ = [
    "plot_activation_stats",
    "plot_grad_norms",
    "plot_layer_profiles",
    "plot_lr_find",
    "plot_sanity",
    "plot_update_ratios",
]


def plot_lr_find(result: Any, *, path: str | os.PathLike | None = None) -> matplotlib.figure.Figure:
    """Plots an lr_find curve: loss (raw and smoothed) against the rate, suggestions marked.

    Args:
        result: a `kerasnn.callbacks.LRFindResult`.
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.
    """
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
    return finish(fig, path)


def _step_or_epoch_series(
    history: Mapping[str, Sequence[float]] | Any, prefix: str
) -> tuple[list[int], dict[str, list[float]], str]:
    """``(x values, name -> values, x label)`` of the figures named `prefix`…: per step from a
    step callback's `records`, else per epoch (1-based) from History-like logs."""
    records = getattr(history, "records", None)
    if records is not None:
        names = [k for k in (records[0].values if records else {}) if k.startswith(prefix)]
        series = {k: [r.values.get(k, float("nan")) for r in records] for k in names}
        return [r.step for r in records], series, "optimizer step"
    data = history_dict(history)
    series = {k: list(v) for k, v in data.items() if k.startswith(prefix)}
    n = max((len(v) for v in series.values()), default=0)
    return list(range(1, n + 1)), series, "epoch"


def plot_grad_norms(
    history: Mapping[str, Sequence[float]] | Any, *, path: str | os.PathLike | None = None
) -> matplotlib.figure.Figure:
    """Plots the global and per-layer gradient norms (log scale) over training.

    The global norm is drawn black; when the optimizer clips, the global norm after clipping
    dashed (``grad_norm_clipped``).

    Args:
        history: per-epoch logs with ``grad_norm`` and ``grad_norm/<layer>`` (History,
            `FitResult`) or a `kerasnn.callbacks.GradientNorms` (its per-step records).
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.

    Raises:
        ValueError: no ``grad_norm`` values.
    """
    xs, series, xlabel = _step_or_epoch_series(history, "grad_norm")
    if "grad_norm" not in series:
        raise ValueError(
            "Received an invalid value for argument history, expected 'grad_norm' values "
            "(from kerasnn.callbacks.GradientNorms)."
        )
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(xs, series.pop("grad_norm"), color="black", lw=2, label="global")
    clipped = series.pop("grad_norm_clipped", None)
    if clipped is not None:
        ax.plot(xs, clipped, color="black", lw=1.5, ls="--", label="global, clipped")
    for name, values in series.items():
        ax.plot(xs, values, lw=1, label=name.split("/", 1)[-1])
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("gradient L2 norm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return finish(fig, path)


def plot_update_ratios(
    history: Mapping[str, Sequence[float]] | Any, *, path: str | os.PathLike | None = None
) -> matplotlib.figure.Figure:
    """Plots each layer's update ratio ‖Δw‖/‖w‖ (log scale) against the ~1e-3 rule of thumb.

    The band between ``LOW_RATIO`` and ``HIGH_RATIO`` of `kerasnn.callbacks.update_ratios` (10x
    either side of 1e-3) is shaded: a curve outside it is what `UpdateRatios.flags` reports.

    Args:
        history: per-epoch logs with ``update_ratio/<layer>`` (History, `FitResult`) or a
            `kerasnn.callbacks.UpdateRatios` (its records).
        path: PNG file to write. Defaults to `None`.

    Returns:
        The `Figure`.

    Raises:
        ValueError: no ``update_ratio/<layer>`` values.
    """
    xs, series, xlabel = _step_or_epoch_series(history, "update_ratio/")
    if not series:
        raise ValueError(
            "Received an invalid value for argument history, expected 'update_ratio/<layer>' "
            "values (from kerasnn.callbacks.UpdateRatios)."
        )
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.axhspan(LOW_RATIO, HIGH_RATIO, color="tab:green", alpha=0.08, label="10x around 1e-3")
    ax.axhline(TARGET_RATIO, color="tab:green", lw=1, ls="--")
    for name, values in series.items():
        ax.plot(
            xs,
            values,
            lw=1.2,
            marker="o" if len(xs) < 30 else None,
            ms=3,
            label=name.split("/", 1)[-1],
        )
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("update ratio ||dw|| / ||w||")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return finish(fig, path)


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
    return finish(fig, path)


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
    return finish(fig, path)


def plot_layer_profiles(
    profiles: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    layers: Mapping[str, Sequence[str]] | None = None,
    ylabel: str = "",
    log: bool = True,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """A value per layer against depth, one line per run, one panel per group of runs.

    The lectures' depth profiles: the std of each layer's activations at initialisation (does
    the signal shrink, hold or explode with depth?) or each layer's gradient norm (does the
    gradient vanish on its way back to the first layers?).

    Args:
        profiles: panel title -> (run name -> one value per layer, input side first).
        layers: panel title -> layer labels for the x axis. Defaults to `None` (1, 2, ...).
        ylabel: y-axis label. Defaults to ``""``.
        log: log-scale y axis (non-positive values are left out of the line). Defaults to
            `True`.
        path: PNG file to write. Defaults to `None` (not saved).
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` (closed after saving when `path` is given).

    Raises:
        ValueError: no panel, an empty panel, or labels that do not match the values.

    Example:

    >>> fig = plot_layer_profiles({"tanh": {"xavier": [1.0, 0.6], "small": [0.1, 1e-3]}})
    >>> len(fig.axes[0].lines)
    2
    """
    if not profiles or any(not runs for runs in profiles.values()):
        raise ValueError(
            "Received an invalid value for argument profiles, expected panel -> {run: values} "
            f"with at least one run per panel. Received: profiles={dict(profiles)!r}"
        )
    panels = len(profiles)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.9), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    run_names = list(dict.fromkeys(name for runs in profiles.values() for name in runs))
    for ax, (panel, runs) in zip(axes[0], profiles.items(), strict=True):
        labels = None if layers is None else list(layers.get(panel, [])) or None
        for name, values in runs.items():
            values = np.asarray(values, dtype=np.float64)
            if labels is not None and len(labels) != len(values):
                raise ValueError(
                    f"Received an invalid value for argument layers: panel {panel!r} has "
                    f"{len(labels)} labels but run {name!r} has {len(values)} values."
                )
            xs = np.arange(1, len(values) + 1)
            shown = np.where(values > 0, values, np.nan) if log else values
            color = colors[run_names.index(name) % len(colors)]
            ax.plot(xs, shown, marker="o", ms=3, lw=1.5, color=color, label=name)
        if labels is not None:
            ax.set_xticks(range(1, len(labels) + 1), labels=labels, rotation=45, fontsize=7)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("layer (input side first)")
        ax.set_ylabel(ylabel)
        ax.set_title(panel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, path)
