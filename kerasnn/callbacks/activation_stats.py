"""Per-layer activation statistics on a fixed probe batch every epoch (like fastai's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kerasnn._validation import invalid, positive_int
from kerasnn.layer_stats import LayerStats, activation_layers, activation_statistics

__all__ = ["DEFAULT_BINS", "RANGE_MARGIN", "ActivationStats"]

DEFAULT_BINS = 40
# With no histogram_range given, the range seen at the start of training is widened this much.
RANGE_MARGIN = 0.5


@keras.saving.register_keras_serializable(package="kerasnn")
class ActivationStats(keras.callbacks.Callback):
    """Records each activation layer's mean, std, dead and saturated fractions every epoch.

    At the end of every epoch the fixed probe batch goes once through the model (inference
    mode) and `kerasnn.diagnostics.activation_statistics` measures each activation point. The
    numbers go into `logs` as ``act_mean/<layer>``, ``act_std/<layer>``, ``act_dead/<layer>``
    (ReLU family) and ``act_saturated/<layer>`` (sigmoid/tanh family); `history` keeps the full
    `LayerStats` (histograms included) per epoch, for `kerasnn.plots.plot_activation_stats`
    and its "colorful dimension" picture of the histograms over time.

    Args:
        probe: the probe inputs ``x``. Defaults to `None`: `kerasnn.fit` fills in up to 512
            training samples; with `model.fit`, pass it.
        bins: histogram bins per layer, or `None` for no histograms. Defaults to 40.
        histogram_range: fixed ``(low, high)`` shared by every layer and epoch. Defaults to
            `None`: the range of the activations before training, widened by 50%.
        layers: names of the layers to watch. Defaults to `None` (every activation layer).

    Raises:
        ValueError: bad `bins` / `histogram_range`, unknown layer names, or (at training start)
            no probe batch.

    Example:

    >>> ActivationStats(bins=20).bins
    20
    """

    def __init__(
        self,
        probe: Any = None,
        bins: int | None = DEFAULT_BINS,
        histogram_range: tuple[float, float] | None = None,
        layers: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.bins = None if bins is None else positive_int("bins", bins)
        if histogram_range is not None:
            ok = (
                isinstance(histogram_range, tuple | list)
                and len(histogram_range) == 2
                and all(isinstance(v, int | float) for v in histogram_range)
                and histogram_range[0] < histogram_range[1]
            )
            if not ok:
                raise invalid(
                    "histogram_range", "a pair (low, high) with low < high", histogram_range
                )
            histogram_range = (float(histogram_range[0]), float(histogram_range[1]))
        self.histogram_range = histogram_range
        self.layer_names = None if layers is None else [str(name) for name in layers]
        self.probe = None if probe is None else np.asarray(probe)
        self.history: list[tuple[int, list[LayerStats]]] = []
        self._layers: list[keras.layers.Layer] = []
        self._range: tuple[float, float] | None = None

    def _chosen_layers(self) -> list[keras.layers.Layer]:
        if self.layer_names is None:
            return activation_layers(self.model)
        by_name = {layer.name: layer for layer in self.model.layers}
        unknown = [name for name in self.layer_names if name not in by_name]
        if unknown:
            raise ValueError(
                "Received an invalid value for argument layers, expected names of the model's "
                f"layers ({', '.join(by_name)}). Received: layers={self.layer_names!r}"
            )
        return [by_name[name] for name in self.layer_names]

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.probe is None:
            raise ValueError(
                "Received an invalid value for argument probe, expected a batch of inputs: pass "
                "ActivationStats(probe=x) (kerasnn.fit fills it in from the training data). "
                "Received: probe=None"
            )
        self.history = []
        self._layers = self._chosen_layers()
        self._range = self.histogram_range
        if self.bins is not None and self._range is None:
            start = activation_statistics(self.model, self.probe, layers=self._layers, bins=1)
            low = min(float(s.histogram[1][0]) for s in start)
            high = max(float(s.histogram[1][-1]) for s in start)
            pad = RANGE_MARGIN * max(high - low, 1e-6) / 2
            self._range = (low - pad if low < 0 else low, high + pad)

    @property
    def range(self) -> tuple[float, float] | None:
        """The histogram range in use (fixed when training starts)."""
        return self._range

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        stats = activation_statistics(
            self.model,
            self.probe,
            layers=self._layers,
            bins=self.bins,
            histogram_range=self._range,
        )
        self.history.append((epoch, stats))
        if logs is None:
            return
        for s in stats:
            logs[f"act_mean/{s.name}"] = s.mean
            logs[f"act_std/{s.name}"] = s.std
            if s.dead_fraction is not None:
                logs[f"act_dead/{s.name}"] = s.dead_fraction
            if s.saturated_fraction is not None:
                logs[f"act_saturated/{s.name}"] = s.saturated_fraction

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> keras.callbacks.Callback:
        """Rebuilds the callback from `get_config` (callbacks are not Keras layers)."""
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "histogram_range": None if self.histogram_range is None else list(self.histogram_range),
            "layers": self.layer_names,
        }
