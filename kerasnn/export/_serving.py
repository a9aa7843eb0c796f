"""What an exported model serves: its one input (shape, dtype, name), the preprocessing baked
in front of it, and the checks a batch of inputs must pass."""

from __future__ import annotations

import keras
import numpy as np

from kerasnn.datasets import Dataset, Standardizer
from kerasnn.input_transform import InputTransform

__all__ = [
    "INPUT_NAME",
    "SERVE_ENDPOINT",
    "SERVING_SIGNATURE",
    "SOURCE_PROBE_SIZE",
    "Preprocessing",
    "check_input",
    "dataset_preprocessing",
    "input_spec",
    "serving_model",
]

SERVE_ENDPOINT = "serve"
SERVING_SIGNATURE = "serving_default"
INPUT_NAME = "inputs"
# Samples of the test split a run folder's export is verified on.
SOURCE_PROBE_SIZE = 64
Preprocessing = InputTransform | Standardizer | keras.layers.Layer | None


def input_spec(model: keras.Model) -> tuple[tuple[int | None, ...], str, str]:
    """The single input's shape (batch free), dtype and name; raises if the model is not built."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Received an invalid value for argument model, expected a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"Received an invalid value for argument model, expected a built model (weights "
            f"created). Model {model.name!r} is not built: build it with keras.Input (as the "
            "kerasnn builders do), call it on a batch, or call model.build(input_shape). "
            f"Received: model.built={model.built}"
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with a known "
            f"input (a functional or Sequential model starting with keras.Input). Model "
            f"{model.name!r} ({type(model).__name__}) has no symbolic inputs."
        )
    if len(inputs) != 1:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with one input. "
            f"Received: a model with {len(inputs)} inputs"
        )
    tensor = inputs[0]
    shape = (None, *tuple(tensor.shape)[1:])
    return shape, str(tensor.dtype), INPUT_NAME


def serving_model(
    model: keras.Model, preprocessing: Preprocessing
) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """`model`, or a functional model ``raw input -> preprocessing -> model``."""
    if preprocessing is None:
        return model, []
    shape, dtype, _ = input_spec(model)
    if isinstance(preprocessing, InputTransform):
        if tuple(preprocessing.input_shape) != tuple(shape[1:]):
            raise ValueError(
                "Received an invalid value for argument preprocessing, expected an "
                f"InputTransform whose input_shape is the model's input {tuple(shape[1:])}. "
                f"Received: input_shape={preprocessing.input_shape}"
            )
        layers = preprocessing.as_layers()
        if not layers:
            return model, []
        raw = keras.Input(preprocessing.source_shape, dtype=dtype, name=INPUT_NAME)
        x = raw
        for layer in layers:
            x = layer(x)
        serving = keras.Model(raw, model(x, training=False), name=f"{model.name}_serving")
        return serving, layers
    if isinstance(preprocessing, Standardizer):
        feature_shape = tuple(shape[1:])
        if preprocessing.per_feature and preprocessing.mean.shape != feature_shape:
            raise ValueError(
                "Received an invalid value for argument preprocessing, expected a Standardizer "
                f"fitted on samples of shape {feature_shape} (the model's input). Received: a "
                f"Standardizer with mean.shape={preprocessing.mean.shape}"
            )
        layer = preprocessing.as_layer(name="standardize")
    elif isinstance(preprocessing, keras.layers.Layer):
        layer = preprocessing
    else:
        raise TypeError(
            "Received an invalid value for argument preprocessing, expected None, a kerasnn "
            "InputTransform (e.g. Dataset.input_transform), a Standardizer or a "
            "keras.layers.Layer. Received: "
            f"preprocessing of type {type(preprocessing).__name__}"
        )
    raw = keras.Input(shape[1:], dtype=dtype, name=INPUT_NAME)
    outputs = model(layer(raw), training=False)
    return keras.Model(raw, outputs, name=f"{model.name}_serving"), [layer]


def check_input(
    x: np.ndarray, shape: tuple[int | None, ...], dtype: str, argument: str = "x"
) -> None:
    """Checks a batch against an input spec: numeric, and samples of the input's shape.

    Raises:
        ValueError: `x` is not numeric, or its samples do not have the shape (naming
            `argument`).
    """
    if x.dtype.kind not in "iuf":
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected a numeric array "
            f"(float or integer, converted to the model's {dtype}). Received: "
            f"{argument}.dtype={x.dtype}"
        )
    expected = tuple(shape[1:])
    got = tuple(x.shape[1:])
    fits = x.ndim == len(shape) and all(
        e is None or e == g for e, g in zip(expected, got, strict=True)
    )
    if not fits:
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected a batch of samples of "
            f"shape {expected} (the model's input, batch first). Received: "
            f"{argument}.shape={x.shape}"
        )


def dataset_preprocessing(
    data: Dataset, *, standardize: bool = True
) -> tuple[InputTransform | None, np.ndarray]:
    """What to bake into the export of a model trained on `data`, and a probe batch for it.

    Args:
        data: the `kerasnn.datasets.Dataset` the model was trained on.
        standardize: bake the loader's whole input transform in (`Dataset.input_transform`:
            reshape, rescaling, standardization), so the artifact takes the values the data
            source gives (the digits' 0–16 pixels, a CSV's columns as written). `False` bakes
            nothing in: the artifact then takes what the model was trained on, the loader's
            transformed inputs (`Dataset.x_train` / `x_test`). Defaults to `True`.

    Returns:
        ``(preprocessing, probe)``: the `InputTransform` (or `None`) and the first
        `SOURCE_PROBE_SIZE` test samples in the artifact's input space.
    """
    probe = data.x_test[:SOURCE_PROBE_SIZE]
    transform = data.input_transform
    if not standardize or transform.identity:
        return None, probe
    return transform, transform.inverse_transform(probe)
