"""Several runs side by side: overlaid curves, decision boundaries, a grid heatmap, the rates."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

from kerasnn.plots._figure import finish, metric_names, plt, save

__all__ = ["plot_comparison", "plot_decision_boundary", "plot_grid_heatmap", "plot_lr_comparison"]


def plot_comparison(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    metrics: Sequence[str] | None = None,
    test: Mapping[str, Mapping[str, float]] | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Overlays several runs' curves: one panel per metric, one colour per run.

    Training curves are dashed and validation curves solid, so the distance between a run's two
    lines is its generalization gap. With `test`, a last panel shows each run's test value of
    the first metric that is not the loss (else the loss).

    Args:
        histories: run name -> history (``{"loss": [...], "val_loss": [...], ...}``).
        metrics: training metric names to plot. Defaults to the metrics every run has with
            a ``val_`` twin (all shared ones when none has), ``loss`` first.
        test: run name -> test metrics, e.g. ``{"adam": {"loss": 0.1, "accuracy": 0.97}}``.
            Defaults to `None` (no bar panel).
        path: PNG file to write. Defaults to `None` (not saved).
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` (closed after saving when `path` is given).

    Raises:
        ValueError: no runs, or a metric missing from a run.

    Example:

    >>> fig = plot_comparison({"a": {"loss": [1.0, 0.5]}, "b": {"loss": [1.2, 0.9]}})
    >>> len(fig.axes[0].lines)
    2
    """
    if not histories:
        raise ValueError(
            "Received an invalid value for argument histories, expected at least one run. "
            "Received: histories={}"
        )
    if metrics is None:
        shared = set.intersection(*(set(metric_names(h)) for h in histories.values()))
        # Compiled metrics have a validation twin; values logged by callbacks (gradient norms,
        # activation statistics...) do not, and get figures of their own.
        paired = {m for m in shared if all(f"val_{m}" in h for h in histories.values())}
        metrics = sorted(paired or shared, key=lambda k: (k != "loss", k))
    for name, history in histories.items():
        missing = [m for m in metrics if m not in history]
        if missing:
            raise ValueError(
                f"Received an invalid value for argument metrics: run {name!r} has no "
                f"{missing}. Received: metrics={list(metrics)}"
            )
    test_metric = None
    if test:
        keys = [k for k in next(iter(test.values())) if all(k in t for t in test.values())]
        test_metric = next((k for k in keys if k != "loss"), "loss" if "loss" in keys else None)
    panels = len(metrics) + (test_metric is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.8 * panels, 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics, strict=False):
        positive = True
        for i, (name, history) in enumerate(histories.items()):
            color = colors[i % len(colors)]
            train = list(history[metric])
            epochs = range(1, len(train) + 1)
            ax.plot(epochs, train, color=color, ls="--", lw=1.2, alpha=0.8)
            val = history.get(f"val_{metric}")
            if val:
                ax.plot(epochs, list(val), color=color, lw=1.6, label=name)
                positive = positive and min(val) > 0
            else:
                ax.lines[-1].set_label(name)
            positive = positive and min(train) > 0
        if metric == "loss" and positive:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric}: train dashed, validation solid", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if test_metric is not None:
        ax = axes[0][-1]
        names = list(histories)
        values = [test.get(n, {}).get(test_metric, float("nan")) for n in names]
        bars = ax.barh(names, values, color=[colors[i % len(colors)] for i in range(len(names))])
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"test {test_metric}")
        ax.set_title(f"test {test_metric}", fontsize=9)
        if test_metric != "loss":
            low = min(v for v in values if v == v) if any(v == v for v in values) else 0.0
            ax.set_xlim(max(0.0, low - 0.1 * (1.0 - low) - 0.02), 1.0)
        ax.grid(alpha=0.3, axis="x")
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def plot_decision_boundary(
    model: Any,
    x: Any,
    y: Any,
    *,
    ax: matplotlib.axes.Axes | None = None,
    resolution: int = 200,
    margin: float = 0.25,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Colours the plane by a 2-feature classifier's predicted class and overlays the points.

    Args:
        model: a model on 2 features (``model.predict(points)``): softmax over classes, or one
            sigmoid unit (thresholded at 0.5).
        x: points, shape ``(n, 2)``.
        y: their integer labels, shape ``(n,)``.
        ax: axes to draw into. Defaults to `None` (a new figure).
        resolution: grid points per side. Defaults to 200.
        margin: space around the points, as a fraction of their range. Defaults to 0.25.
        path: PNG file to write. Defaults to `None` (not saved).
        title: axes title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` holding the axes (closed after saving when `path` is given).

    Raises:
        ValueError: `x` is not ``(n, 2)``, `y` does not match it, or `resolution` < 2.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, "softmax")])
    >>> fig = plot_decision_boundary(model, np.zeros((4, 2)), np.arange(4) % 3)
    >>> len(fig.axes[0].collections) > 0
    True
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(
            "Received an invalid value for argument x, expected points of shape (n, 2). "
            f"Received: x.shape={x.shape}"
        )
    if len(y) != len(x):
        raise ValueError(
            "Received an invalid value for argument y, expected one label per point "
            f"({len(x)}). Received: y.shape={y.shape}"
        )
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(
            "Received an invalid value for argument resolution, expected an integer >= 2. "
            f"Received: resolution={resolution!r}"
        )
    low, high = x.min(axis=0), x.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-6)
    g0, g1 = np.meshgrid(
        np.linspace(low[0] - pad[0], high[0] + pad[0], resolution),
        np.linspace(low[1] - pad[1], high[1] + pad[1], resolution),
    )
    grid = np.column_stack([g0.ravel(), g1.ravel()]).astype(np.float32)
    probs = np.asarray(model.predict(grid, batch_size=4096, verbose=0))
    if probs.ndim == 1 or probs.shape[-1] == 1:
        pred = (probs.reshape(-1) > 0.5).astype(int)
    else:
        pred = probs.argmax(axis=-1)
    classes = int(max(pred.max(), y.max())) + 1
    cmap = plt.get_cmap("tab10")
    levels = np.arange(classes + 1) - 0.5
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
    else:
        fig = ax.figure
    ax.contourf(
        g0, g1, pred.reshape(g0.shape), levels=levels, cmap=cmap, vmin=0, vmax=9.5, alpha=0.3
    )
    ax.scatter(
        x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=0, vmax=9.5, s=10, edgecolors="k", linewidths=0.3
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if path is not None:
        fig.tight_layout()
        save(fig, path)
    return fig


def plot_grid_heatmap(
    values: Sequence[Sequence[float]],
    *,
    rows: Sequence[str],
    cols: Sequence[str],
    row_label: str = "",
    col_label: str = "",
    value_label: str = "",
    lower_is_better: bool = True,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """A table of values over two axes (e.g. optimizer × learning rate), best per row boxed.

    Non-finite values (a diverged run) are shown as ``nan`` in grey.

    Args:
        values: ``values[i][j]`` for row `i`, column `j`.
        rows: row labels.
        cols: column labels.
        row_label: name of the row axis. Defaults to ``""``.
        col_label: name of the column axis. Defaults to ``""``.
        value_label: what the values are (colour-bar label). Defaults to ``""``.
        lower_is_better: box each row's lowest value (else highest). Defaults to `True`.
        path: PNG file to write. Defaults to `None` (not saved).
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` (closed after saving when `path` is given).

    Raises:
        ValueError: `values` does not have ``len(rows)`` rows of ``len(cols)`` values.

    Example:

    >>> fig = plot_grid_heatmap([[1.0, 0.5]], rows=["sgd"], cols=["0.1", "1"])
    >>> len(fig.axes)
    2
    """
    grid = np.asarray(values, dtype=float)
    if grid.shape != (len(rows), len(cols)):
        raise ValueError(
            "Received an invalid value for argument values, expected "
            f"{len(rows)} rows of {len(cols)} values. Received: shape {grid.shape}"
        )
    shown = np.ma.masked_invalid(grid)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(cols), 1.2 + 0.55 * len(rows)))
    cmap = plt.get_cmap("viridis_r" if lower_is_better else "viridis").with_extremes(
        bad="lightgrey"
    )
    finite = grid[np.isfinite(grid)]
    norm = None
    if finite.size and finite.min() > 0:  # e.g. losses: a log scale keeps the good end readable
        norm = matplotlib.colors.LogNorm(vmin=finite.min(), vmax=finite.max())
    image = ax.imshow(shown, cmap=cmap, aspect="auto", norm=norm)
    for i in range(len(rows)):
        row = grid[i]
        best = None
        if np.isfinite(row).any():
            best = int(np.nanargmin(row) if lower_is_better else np.nanargmax(row))
        for j in range(len(cols)):
            finite_cell = np.isfinite(row[j])
            text = f"{row[j]:.3g}" if finite_cell else "nan"
            shade = image.norm(row[j]) if finite_cell else 0.0
            dark = shade > 0.6 if lower_is_better else shade < 0.4
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
                fontweight="bold" if j == best else "normal",
            )
            if j == best:
                ax.add_patch(
                    plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, edgecolor="red")
                )
    ax.set_xticks(range(len(cols)), labels=list(cols), fontsize=8)
    ax.set_yticks(range(len(rows)), labels=list(rows), fontsize=8)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    fig.colorbar(image, ax=ax, label=value_label)
    if title:
        ax.set_title(title, fontsize=9)
    return finish(fig, path)


def plot_lr_comparison(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Overlays several runs' logged learning rates (`plot_lr` for one run), one colour each.

    Args:
        histories: run name -> history with ``learning_rate`` per epoch (`kerasnn.fit` logs
            it whatever the schedule).
        path: PNG file to write. Defaults to `None` (not saved).
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` (closed after saving when `path` is given).

    Raises:
        ValueError: no runs, or a run without ``learning_rate``.

    Example:

    >>> fig = plot_lr_comparison({"constant": {"learning_rate": [0.1, 0.1]},
    ...                           "step": {"learning_rate": [0.1, 0.05]}})
    >>> len(fig.axes[0].lines)
    2
    """
    if not histories:
        raise ValueError(
            "Received an invalid value for argument histories, expected at least one run. "
            "Received: histories={}"
        )
    missing = [name for name, h in histories.items() if "learning_rate" not in h]
    if missing:
        raise ValueError(
            "Received an invalid value for argument histories, expected 'learning_rate' in "
            f"every run (kerasnn.fit logs it). Received: runs without it: {missing}"
        )
    fig, ax = plt.subplots(figsize=(6, 3.8))
    rates = []
    for name, history in histories.items():
        lrs = list(history["learning_rate"])
        rates += lrs
        ax.plot(
            range(1, len(lrs) + 1), lrs, lw=1.6, label=name, marker="." if len(lrs) < 60 else None
        )
    if min(rates) > 0 and max(rates) / min(rates) > 30:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate (first step of the epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return finish(fig, path)
