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
        shared = set.intersection(*(set(_metric_names(h)) for h in histories.values()))
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
    return _finish(fig, path)


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
    import numpy as np

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
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
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
    import numpy as np

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
    return _finish(fig, path)


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
    import numpy as np

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
    return _finish(fig, path)


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
    return _finish(fig, path)


def _search_trials(where: str, source: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """A search's trials and objective: from a search folder (its results.json) or rows."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        path = path / "results.json" if path.is_dir() else path
        if not path.is_file():
            raise ValueError(
                f"Received an invalid value for search {where!r}, expected a search folder "
                f"with results.json (kerasnn search writes it). Received: {str(source)!r}"
            )
        from kerasnn import _json

        table = _json.read(path)
        return list(table["trials"]), table.get("objective")
    return list(source), None


def plot_search_progress(
    searches: Mapping[str, Any],
    *,
    objective: str | None = None,
    direction: str = "min",
    hyperparameter: str | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> matplotlib.figure.Figure:
    """Compares hyperparameter searches: best objective so far against the trial number, and
    (with `hyperparameter`) every trial's objective against that hyperparameter's value.

    The lectures' random-vs-grid comparison (Bergstra & Bengio 2012): with the same budget a
    grid tries few distinct values of each hyperparameter, random search a new value every
    trial; the second panel's title counts them.

    Args:
        searches: search name -> a search folder (``results.json`` inside) or its trials (rows
            with the objective and hyperparameter values; failed trials have ``None``).
        objective: the objective column. Defaults to `None`: the one in results.json.
        direction: ``"min"`` or ``"max"``: what "best" means. Defaults to ``"min"``.
        hyperparameter: a hyperparameter to plot the trials against. Defaults to `None`.
        path: PNG file to write. Defaults to `None` (not saved).
        title: figure title. Defaults to `None`.

    Returns:
        The matplotlib `Figure` (closed after saving when `path` is given).

    Raises:
        ValueError: no search, an unknown direction, a folder without results, or no
            objective/hyperparameter column.

    Example:

    >>> fig = plot_search_progress({"random": [{"val_loss": 0.5}, {"val_loss": 0.3}]},
    ...                            objective="val_loss")
    >>> [round(y, 2) for y in fig.axes[0].lines[0].get_ydata()]
    [0.5, 0.3]
    """
    import numpy as np

    if not searches:
        raise ValueError(
            "Received an invalid value for argument searches, expected at least one search. "
            "Received: searches={}"
        )
    if direction not in ("min", "max"):
        raise ValueError(
            "Received an invalid value for argument direction, expected 'min' or 'max'. "
            f"Received: direction={direction!r}"
        )
    loaded = {}
    for name, source in searches.items():
        trials, found = _search_trials(name, source)
        column = objective or found
        if column is None or not trials or not any(column in t for t in trials):
            raise ValueError(
                f"Received an invalid value for argument objective: search {name!r} has no "
                f"{column!r} column. Received: objective={objective!r}"
            )
        if hyperparameter is not None and not any(hyperparameter in t for t in trials):
            raise ValueError(
                f"Received an invalid value for argument hyperparameter: search {name!r} has "
                f"no {hyperparameter!r} column. Received: hyperparameter={hyperparameter!r}"
            )
        loaded[name] = (trials, column)
    panels = 2 if hyperparameter else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.4 * panels, 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    better = min if direction == "min" else max
    counts = []
    for i, (name, (trials, column)) in enumerate(loaded.items()):
        color = colors[i % len(colors)]
        scores = [t.get(column) for t in trials]
        best, so_far = None, []
        for score in scores:
            if score is not None and np.isfinite(score):
                best = score if best is None else better(best, score)
            so_far.append(np.nan if best is None else best)
        xs = np.arange(1, len(trials) + 1)
        axes[0][0].step(xs, so_far, where="post", color=color, lw=1.8, label=name)
        axes[0][0].plot(
            xs, [np.nan if s is None else s for s in scores], "o", color=color, ms=3, alpha=0.5
        )
        if hyperparameter:
            values = [t.get(hyperparameter) for t in trials]
            done = [(v, s) for v, s in zip(values, scores, strict=True) if s is not None]
            axes[0][1].plot(
                [v for v, _ in done], [s for _, s in done], "o", color=color, label=name, alpha=0.8
            )
            counts.append(f"{name} {len({v for v in values if v is not None})}")
    ax = axes[0][0]
    finite = [
        t.get(column)
        for trials, column in loaded.values()
        for t in trials
        if t.get(column) is not None and np.isfinite(t.get(column))
    ]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"best {loaded[next(iter(loaded))][1]} so far (dots: each trial)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if hyperparameter:
        ax = axes[0][1]
        numbers = [
            t.get(hyperparameter)
            for trials, _ in loaded.values()
            for t in trials
            if isinstance(t.get(hyperparameter), int | float)
        ]
        if numbers and min(numbers) > 0 and max(numbers) / min(numbers) > 30:
            ax.set_xscale("log")
        ax.set_xlabel(hyperparameter)
        ax.set_ylabel(loaded[next(iter(loaded))][1])
        ax.set_title("distinct values tried: " + ", ".join(counts), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)
