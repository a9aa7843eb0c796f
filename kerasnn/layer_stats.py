"""Per-layer activation statistics on a probe batch: the lectures' activation distributions.

One forward pass (inference mode) of a batch through a model, recording at every *activation
point* the mean, standard deviation, fraction of dead units and fraction of saturated outputs,
and optionally a histogram. `kerasnn.diagnostics.init_report` (weights at initialisation), the
`kerasnn.callbacks.ActivationStats` callback (every epoch) and `kerasnn.initializers.lsuv` (its
probe models) are built on this module; `kerasnn.diagnostics` re-exports its public names.

Activation points are the layers whose output is a non-linearity's output:

- activation layers (`keras.layers.Activation`, `ReLU`, `LeakyReLU`, `PReLU`, `ELU`, `Softmax`
  and kerasnn's own layer activations registered in `kerasnn.activations`, and the dense
  `kerasnn.layers.Maxout`);
- Dense / Conv layers with a non-linear ``activation`` argument (a plain user model).

kerasnn's builders put the activation in its own layer (``dense_1_act`` after ``dense_1``), so the
statistics there describe exactly what the next layer receives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kerasnn import activations as activation_registry
from kerasnn._validation import positive_int
from kerasnn.layers import Maxout

__all__ = ["LayerStats", "activation_layers", "activation_statistics", "probe_model"]

# Outputs exactly 0 over the whole batch -> a dead unit (the ReLU family).
_RELU_LIKE = {"relu", "relu6"}
# Output range limits: an output within 1% of the range of a limit counts as saturated.
_SATURATING = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}
_SATURATION_MARGIN = 0.01
_ACTIVATION_LAYER_KINDS: dict[type, str] = {
    keras.layers.ReLU: "relu",
    keras.layers.LeakyReLU: "leaky_relu",
    keras.layers.PReLU: "prelu",
    keras.layers.ELU: "elu",
    keras.layers.Softmax: "softmax",
    Maxout: "maxout",  # a dense maxout layer outputs its non-linearity directly
}


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer's output on a probe batch.

    Attributes:
        name: the layer's name.
        kind: the non-linearity, e.g. ``"relu"``, ``"tanh"``, ``"pelu"`` (layer class name, lower
            case, for layers kerasnn does not recognise).
        mean: mean over every output value.
        std: standard deviation over every output value.
        dead_fraction: for the ReLU family, the fraction of units (last-axis channels) that are
            exactly 0 for every sample (and every position) of the batch; ``None`` otherwise.
        saturated_fraction: for sigmoid/tanh-like outputs, the fraction of output values within
            1% of the output range from either limit; ``None`` otherwise.
        histogram: ``(counts, edges)`` when asked for, else ``None``.
    """

    name: str
    kind: str
    mean: float
    std: float
    dead_fraction: float | None
    saturated_fraction: float | None
    histogram: tuple[np.ndarray, np.ndarray] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (histogram as lists)."""
        out = dataclasses.asdict(self)
        if self.histogram is not None:
            out["histogram"] = {
                "counts": self.histogram[0].tolist(),
                "edges": self.histogram[1].tolist(),
            }
        return out


def _activation_name(activation: Any) -> str:
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return str(name).lower()


def _kind(layer: keras.layers.Layer) -> str | None:
    """The non-linearity a layer outputs, or None when the layer is not an activation point."""
    for cls, kind in _ACTIVATION_LAYER_KINDS.items():
        if isinstance(layer, cls):
            return kind
    if isinstance(layer, keras.layers.Activation):
        return _activation_name(layer.activation)
    for name, factory in activation_registry.layer_factories().items():
        if isinstance(factory, type) and isinstance(layer, factory):
            return name
    activation = getattr(layer, "activation", None)
    if activation is not None and _activation_name(activation) != "linear":
        return _activation_name(activation)
    return None


def activation_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of `model` whose outputs are activations, in network order.

    Args:
        model: a built Sequential or functional Keras model.

    Returns:
        The activation-point layers (see the module docstring); nested models are not entered.
    """
    return [layer for layer in model.layers if _kind(layer) is not None]


def probe_model(model: keras.Model, layers: Sequence[keras.layers.Layer]) -> keras.Model:
    """A model from `model`'s inputs to the outputs of `layers` (one output per layer).

    Raises:
        ValueError: if `model` is not a built Sequential/functional model (a subclassed model's
            layer outputs cannot be reached from its inputs).
    """
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        outputs = [layer.output for layer in layers]
    except (AttributeError, ValueError) as err:
        raise ValueError(
            "Received an invalid value for argument model, expected a built Sequential or "
            "functional model (layer outputs must be reachable from model.inputs). Received: "
            f"model={model.name!r} of type {type(model).__name__}"
        ) from err
    return keras.Model(inputs, outputs)


def _dead_fraction(values: np.ndarray) -> float:
    per_unit = values.reshape(-1, values.shape[-1])
    return float(np.mean(np.all(per_unit == 0.0, axis=0)))


def _saturated_fraction(values: np.ndarray, low: float, high: float) -> float:
    margin = _SATURATION_MARGIN * (high - low)
    return float(np.mean((values <= low + margin) | (values >= high - margin)))


def activation_statistics(
    model: keras.Model,
    x: Any,
    *,
    layers: Sequence[keras.layers.Layer] | None = None,
    bins: int | None = None,
    histogram_range: tuple[float, float] | None = None,
) -> list[LayerStats]:
    """Mean, std, dead and saturated fractions of each activation on a probe batch.

    Args:
        model: a built Sequential or functional Keras model.
        x: the probe batch (anything `model` accepts); run once in inference mode.
        layers: the layers to record (default: `activation_layers(model)`).
        bins: number of histogram bins per layer; ``None`` records no histogram.
        histogram_range: fixed ``(low, high)`` for the histograms (default: each layer's own
            min/max). Fix it to compare histograms across epochs.

    Returns:
        One `LayerStats` per layer, in network order.

    Raises:
        ValueError: if the model has no activation layers, is not a built Sequential/functional
            model, or `bins` is not a positive integer.
    """
    if bins is not None:
        positive_int("bins", bins)
    chosen = list(activation_layers(model) if layers is None else layers)
    if not chosen:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with at least one "
            "activation layer (an activation layer, or a Dense/Conv layer with a non-linear "
            f"activation). Received: model={model.name!r} with layers "
            f"{[layer.name for layer in model.layers]}"
        )
    outputs = probe_model(model, chosen)(x, training=False)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    stats = []
    for layer, output in zip(chosen, outputs, strict=True):
        values = np.asarray(keras.ops.convert_to_numpy(output), dtype=np.float64)
        kind = _kind(layer) or type(layer).__name__.lower()
        limits = _SATURATING.get(kind)
        histogram = None
        if bins is not None:
            histogram = np.histogram(values, bins=bins, range=histogram_range)
        stats.append(
            LayerStats(
                name=layer.name,
                kind=kind,
                mean=float(values.mean()),
                std=float(values.std()),
                dead_fraction=_dead_fraction(values) if kind in _RELU_LIKE else None,
                saturated_fraction=_saturated_fraction(values, *limits) if limits else None,
                histogram=histogram,
            )
        )
    return stats
