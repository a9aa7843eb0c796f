"""Layer-sequential unit-variance initialisation (Mishkin & Matas 2015, "All you need is a good
init").

LSUV is data-dependent, so it is a function over a built model and a batch, not an initializer:

1. pre-initialise every kernel with an orthonormal matrix (`keras.initializers.Orthogonal`);
2. from the first layer to the last, run the batch through the network, measure the variance of
   the layer's output and divide its kernel by the output's standard deviation, until the
   variance is within `tol` of 1 (at most `max_iter` times); optionally shift the bias so each
   output channel has zero mean on the batch.

The layers handled are those with a kernel that maps inputs linearly: `Dense`, `Conv1D/2D/3D`,
`SeparableConv2D` (its pointwise kernel), `DepthwiseConv2D`, `Conv*Transpose` and
kerasnn's `Maxout`. The *output* of a layer is what the layer returns: the pre-activation in
kerasnn's builders (the activation is its own layer), the post-activation for a
``Dense(activation="relu")`` written by hand — as in the original Caffe code, whose in-place
ReLU made the measured blob the post-activation one.

Public through `kerasnn.initializers` (`lsuv`, `LSUVLayerReport`, `lsuv_layers`, `MIN_SAMPLES`);
the recipe option ``model.lsuv`` is read by `kerasnn.recipe.lsuv_options`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

from kerasnn import data_formats
from kerasnn._validation import invalid, positive_int
from kerasnn.layer_stats import probe_model
from kerasnn.layers import Maxout

__all__ = ["MIN_SAMPLES", "LSUVLayerReport", "lsuv", "lsuv_layers"]

# Variance estimated from fewer samples is too noisy to scale weights by.
MIN_SAMPLES = 16

_KERNEL_LAYERS: tuple[type, ...] = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    Maxout,
)


@dataclasses.dataclass(frozen=True)
class LSUVLayerReport:
    """What LSUV did to one layer.

    Attributes:
        name: the layer's name.
        variance_before: output variance after the orthonormal pre-init, before any scaling.
        variance_after: output variance when LSUV stopped.
        mean_after: output mean when LSUV stopped.
        iterations: number of rescalings applied (0 when the layer was already within `tol`).
        scale: total factor the kernel was multiplied by (after the orthonormal pre-init).
        converged: whether ``|variance_after - 1| <= tol``.
    """

    name: str
    variance_before: float
    variance_after: float
    mean_after: float
    iterations: int
    scale: float
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return dataclasses.asdict(self)


def lsuv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers `lsuv` initialises, in network order (nested models are not entered)."""
    return [layer for layer in model.layers if isinstance(layer, _KERNEL_LAYERS)]


def _kernel(layer: keras.layers.Layer) -> Any:
    """The kernel LSUV scales (a separable conv's pointwise kernel sets the output scale)."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        return layer.pointwise_kernel
    return layer.kernel


def _bias(layer: keras.layers.Layer) -> Any:
    return getattr(layer, "bias", None)


def _model_input(model: keras.Model) -> Any:
    """The single symbolic input of a built Sequential/functional model."""
    probe_model(model, lsuv_layers(model))  # raises for models whose layer outputs are unreachable
    if len(model.inputs) != 1:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with one input. "
            f"Received: model={model.name!r} with {len(model.inputs)} inputs"
        )
    return model.inputs[0]


def _check_batch(model_input: Any, x_batch: Any) -> np.ndarray:
    x = np.asarray(x_batch)
    expected = tuple(model_input.shape[1:])
    matches = x.ndim == len(expected) + 1 and all(
        e is None or e == d for e, d in zip(expected, x.shape[1:], strict=True)
    )
    if not matches:
        shape = "(batch, " + ", ".join(str(d) for d in expected) + ")"
        raise ValueError(
            f"Received an invalid value for argument x_batch, expected an array of shape {shape} "
            f"(the model's input shape). Received: x_batch with shape {x.shape}"
        )
    if x.shape[0] < MIN_SAMPLES:
        raise ValueError(
            f"Received an invalid value for argument x_batch, expected at least {MIN_SAMPLES} "
            "samples (a variance from fewer is too noisy to scale weights by). "
            f"Received: x_batch with {x.shape[0]} samples"
        )
    if not np.all(np.isfinite(x.astype(np.float64))):
        raise ValueError(
            "Received an invalid value for argument x_batch, expected finite values. "
            "Received: x_batch containing NaN or inf"
        )
    return x


def _zero_channel_means(layer: keras.layers.Layer, bias: Any, out: np.ndarray) -> np.ndarray:
    """Shifts `bias` so each output channel of `out` has mean 0; returns the shifted output.

    Exact for layers that return their affine output, and for `Maxout` (the same shift on every
    piece's bias moves the max by that amount); approximate, refined by the next iteration, for
    Dense/Conv layers with a fused non-linear activation.
    """
    axis = 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1
    moved = np.moveaxis(out, axis, -1)
    channel_mean = moved.reshape(-1, moved.shape[-1]).mean(axis=0)
    shift = channel_mean
    if isinstance(layer, Maxout):
        shift = np.tile(channel_mean, layer.pieces)  # piece-major bias: piece i, unit j
    bias.assign(np.asarray(keras.ops.convert_to_numpy(bias), np.float64) - shift)
    return np.moveaxis(moved - channel_mean, -1, axis)


def _check_options(tol: Any, max_iter: Any) -> None:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise invalid("tol", "a number in (0, 1)", tol)
    positive_int("max_iter", max_iter)


def lsuv(
    model: keras.Model,
    x_batch: Any,
    *,
    tol: float = 0.1,
    max_iter: int = 10,
    zero_mean: bool = False,
    orthonormal: bool = True,
    seed: int | None = None,
) -> list[LSUVLayerReport]:
    """Layer-sequential unit-variance initialisation of a built model, in place.

    Args:
        model: a built Sequential or functional Keras model with one input (kerasnn-built or
            by hand).
        x_batch: a batch of inputs (NumPy array or tensor) of the model's input shape with at
            least `MIN_SAMPLES` (16) samples; a few hundred give a steadier variance.
        tol: stop when ``|Var(output) - 1| <= tol``. Must be in (0, 1). Defaults to 0.1.
        max_iter: maximum rescalings per layer. Positive integer. Defaults to 10.
        zero_mean: also shift each layer's bias so every output channel has zero mean on the
            batch (layers without a bias are only scaled; `Maxout` shifts every piece of a unit
            by the same amount). Defaults to `False`.
        orthonormal: pre-initialise every kernel with `keras.initializers.Orthogonal` first (the
            paper's step 1). `False` keeps the current weights and only rescales.
            Defaults to `True`.
        seed: seed of the orthonormal pre-init. Defaults to `None` (Keras's global seed).

    Returns:
        One `LSUVLayerReport` per initialised layer, in network order.

    Raises:
        ValueError: a model with no Dense/Conv/Maxout layer, not a built Sequential/functional
            model with one input, a batch of the wrong shape, with fewer than 16 samples or
            non-finite values, or a bad `tol`/`max_iter`; a channels_first conv layer this
            machine cannot run (see `kerasnn.data_formats.check_data_formats`).

    Example:

    >>> model = kerasnn.models.mlp((64,), [32, 32], 10, activation="tanh")  # doctest: +SKIP
    >>> report = lsuv(model, x_train[:256])                                 # doctest: +SKIP
    >>> [round(r.variance_after, 2) for r in report]                        # doctest: +SKIP
    [1.0, 1.0, 1.0]
    """
    _check_options(tol, max_iter)
    layers = lsuv_layers(model)
    if not layers:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with at least one "
            "Dense, Conv or Maxout layer. Received: model="
            f"{model.name!r} with layers {[layer.name for layer in model.layers]}"
        )
    inputs = _model_input(model)
    x = _check_batch(inputs, x_batch)
    data_formats.check_data_formats(model)  # a clear error, not TensorFlow's, for NCHW on the CPU

    if orthonormal:
        for i, layer in enumerate(layers):
            kernel = _kernel(layer)
            init = keras.initializers.Orthogonal(seed=None if seed is None else seed + i)
            kernel.assign(init(tuple(kernel.shape), dtype=kernel.dtype))

    reports = []
    for layer in layers:
        probe = keras.Model(inputs, layer.output)
        kernel, bias = _kernel(layer), _bias(layer)
        scale, iterations = 1.0, 0
        variance_before = None
        while True:
            out = np.asarray(keras.ops.convert_to_numpy(probe(x, training=False)), np.float64)
            if zero_mean and bias is not None:
                out = _zero_channel_means(layer, bias, out)
            variance = float(out.var())
            if variance_before is None:
                variance_before = variance
            if abs(variance - 1.0) <= tol or iterations >= max_iter or variance == 0.0:
                break
            factor = 1.0 / math.sqrt(variance)
            kernel.assign(keras.ops.convert_to_numpy(kernel) * factor)
            scale *= factor
            iterations += 1
        reports.append(
            LSUVLayerReport(
                name=layer.name,
                variance_before=variance_before,
                variance_after=variance,
                mean_after=float(out.mean()),
                iterations=iterations,
                scale=scale,
                converged=abs(variance - 1.0) <= tol,
            )
        )
    return reports
