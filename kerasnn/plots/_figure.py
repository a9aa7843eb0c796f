"""What every figure shares: matplotlib's Agg backend, a history's metric names, the PNG save.

Importing this module selects the Agg backend (no display is needed) before `pyplot` is loaded;
the plotting modules take `plt` from here so the order of their imports does not matter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot's import
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from kerasnn import _atomic

__all__ = ["finish", "history_dict", "metric_names", "plt", "save"]


def history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    """The ``{metric: values}`` mapping of a `keras.callbacks.History`, a `FitResult` or a dict."""
    return getattr(history, "history", history)


def metric_names(history: Mapping[str, Sequence[float]]) -> list[str]:
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


def save(fig: matplotlib.figure.Figure, path: str | os.PathLike) -> None:
    """Writes `fig` to `path` as PNG atomically (its folder created if needed), then closes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic.replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def finish(fig: matplotlib.figure.Figure, path: str | os.PathLike | None) -> Any:
    """Lays the figure out and writes it as PNG (atomically) when `path` is given."""
    for ax in fig.axes:
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    # The layout is done: without this, tight_layout leaves a placeholder layout engine, for
    # which savefig draws the whole figure twice (a dry run first).
    fig.set_layout_engine(None)
    if path is not None:
        save(fig, path)
    return fig
