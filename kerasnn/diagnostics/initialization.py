"""How activations look at initialisation: the lectures' plot of distributions shrinking (small
weights, tanh) or dying (ReLU) as depth grows, as numbers.

`init_report` is `activation_statistics` on a probe batch, packaged as a table with the
depth-wise trend; it adds no statistic of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kerasnn.layer_stats import LayerStats, activation_statistics

__all__ = ["InitReport", "init_report"]


@dataclasses.dataclass(frozen=True)
class InitReport:
    """Per-layer activation statistics of a model on one batch.

    Attributes:
        layers: one `LayerStats` per activation layer, in network order (hidden layers first,
            the output layer last).
    """

    layers: list[LayerStats]

    @property
    def std_ratio(self) -> float:
        """Std of the last hidden activation over the first: ≪ 1 vanishing, ≫ 1 exploding.

        The output layer is left out when there are at least two other activation layers (a
        softmax's spread says nothing about the hidden signal).
        """
        hidden = self.layers[:-1] if len(self.layers) > 2 else self.layers
        first = hidden[0].std
        return float("inf") if first == 0 else hidden[-1].std / first

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: ``{"layers": [...], "std_ratio": ...}``."""
        return {"layers": [s.to_dict() for s in self.layers], "std_ratio": self.std_ratio}

    def format(self) -> str:
        """A plain-text table: layer, kind, mean, std, dead and saturated fractions."""

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.1f}%"

        width = max(len("layer"), *(len(s.name) for s in self.layers))
        rows = [f"{'layer':<{width}}  {'kind':<10} {'mean':>9} {'std':>9} {'dead':>7} {'sat.':>7}"]
        for s in self.layers:
            rows.append(
                f"{s.name:<{width}}  {s.kind:<10} {s.mean:>9.3g} {s.std:>9.3g} "
                f"{pct(s.dead_fraction):>7} {pct(s.saturated_fraction):>7}"
            )
        rows.append(f"std last/first hidden: {self.std_ratio:.3g}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.format()


def init_report(model: keras.Model, x_batch: Any) -> InitReport:
    """Mean / std of every activation (and dead ReLU fraction) on `x_batch`.

    Args:
        model: a built Sequential or functional model, typically just initialised.
        x_batch: a probe batch the model accepts; run once in inference mode.

    Returns:
        An `InitReport` (print it for a table; `std_ratio` summarises the trend with depth).

    Raises:
        ValueError: as `kerasnn.diagnostics.activation_statistics` (no activation layer, not a
            built Sequential/functional model).

    Example:

    >>> model = kerasnn.models.mlp((64,), [256] * 8, 10, activation="tanh",
    ...                            initializer="small_normal")  # doctest: +SKIP
    >>> init_report(model, x[:256]).std_ratio  # N(0, 0.01) weights: the signal vanishes
    ... # doctest: +SKIP
    1.2e-07
    """
    return InitReport(layers=activation_statistics(model, x_batch))
