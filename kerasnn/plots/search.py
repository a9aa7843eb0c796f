"""Hyperparameter searches compared: best objective so far per trial, trials per value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from kerasnn import _json
from kerasnn.plots._figure import finish, plt

__all__ = ["plot_search_progress"]


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
    return finish(fig, path)
