"""LeNet-style convolutional network builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasnn import activations, initializers
from kerasnn._validation import fraction, one_of, positive_int
from kerasnn.datasets import Dataset
from kerasnn.layers import PELU, MaxoutChannels
from kerasnn.models._head import (
    check_units,
    checked_model,
    default_initializer,
    dense_stack_and_output,
    model_inputs,
    pieces,
    regularizer,
    resolve_target,
    seed_for,
)

DATA_FORMATS = ("channels_last", "channels_first")


def _conv_activation(activation: Any, name: str, channel_axis: int) -> keras.layers.Layer:
    """The stage's activation layer, acting on the feature maps' channel axis."""
    act = activations.layer(activation, name=name)
    if channel_axis == -1:
        return act
    if isinstance(act, MaxoutChannels):  # groups of channels: along axis 1 in channels_first
        return activations.layer(act, name=name, axis=channel_axis)
    if isinstance(act, PELU) and act.channelwise:
        raise ValueError(
            "Received an invalid value for argument activation, expected an activation that "
            "works in channels_first (PELU(channelwise=True) keeps one (a, b) pair per entry "
            "of the last axis, the width in channels_first). Received: activation="
            "PELU(channelwise=True) with data_format='channels_first'"
        )
    return act


def cnn(
    input_shape: Sequence[int] | Dataset,
    filters: Sequence[int] = (32, 64),
    outputs: int | None = None,
    *,
    dense: Sequence[int] = (128,),
    kernel_size: int = 3,
    pool_size: int = 2,
    padding: str = "same",
    data_format: str | None = None,
    task: str | None = None,
    activation: Any = "relu",
    initializer: Any = None,
    dropout: float = 0.0,
    batchnorm: bool = False,
    l1: float = 0.0,
    l2: float = 0.0,
    output_activation: Any = None,
    augment: Any = None,
    seed: int | None = None,
    name: str = "cnn",
) -> keras.Model:
    """Builds conv–pool stages then a dense head: the LeNet pattern.

    Each stage is Conv2D(f, kernel_size) → (BN) → activation → MaxPool(pool_size); then Flatten,
    the `dense` hidden layers (with `dropout`), and the task's output layer. With
    ``activation="maxout"`` each stage's Conv2D has ``k * f`` filters and the max over each group
    of k channels (channels j, j + f, ...; see `MaxoutChannels`) leaves `f` feature maps (k = 2
    for the name; pass ``kerasnn.layers.MaxoutChannels(pieces=k)`` for another k).

    Args:
        input_shape: per-sample image shape ``(height, width, channels)`` (channels last), or a
            `kerasnn.datasets.Dataset` with an image view (e.g. ``load("digits", view="image")``).
        filters: number of filters of each conv stage. Defaults to ``(32, 64)``.
        outputs: number of output units. Defaults to the Dataset's.
        dense: widths of the dense hidden layers after flattening. Defaults to ``(128,)``.
        kernel_size: square convolution kernel size. Defaults to 3.
        pool_size: max-pooling window and stride; a stage whose feature map is already smaller
            than the window is not pooled. Defaults to 2.
        padding: ``"same"`` or ``"valid"``. Defaults to ``"same"``.
        data_format: layout of the feature maps in the conv stages: ``"channels_last"``
            (NHWC) or ``"channels_first"`` (NCHW, cuDNN's native layout on GPUs). The input
            stays ``(height, width, channels)`` either way (datasets and augmentation are
            channels last): channels_first adds a `Permute` after it, puts BatchNorm and
            maxout on axis 1, and flattens in channels-last order, so the weights and
            predictions are those of the channels_last model. Defaults to `None`: Keras's
            ``keras.config.image_data_format()`` (``"channels_last"`` unless configured).
            TensorFlow's own CPU kernels run channels_first convolutions only on some
            machines (with oneDNN): checked when the model is built, see
            `kerasnn.data_formats.check_data_formats`.
        augment: data augmentation while training (inactive in `predict`/`evaluate` and in
            saved models): `None`, a preset name (``"shift"``, ``"noise"``,
            ``"shift_noise"``) or a mapping of shift/rotation/zoom/noise; see
            `kerasnn.augment`. Build from the Dataset so shifts act on unstandardized pixels.
            Defaults to `None`.
        task, activation, initializer, dropout, batchnorm, l1, l2, output_activation, seed,
            name: as in `kerasnn.models.mlp` (SELU pairs with LeCun-normal weights and
            `AlphaDropout`); `l1`/`l2` apply to conv and dense kernels.

    Returns:
        An uncompiled, built functional `keras.Model`.

    Raises:
        ValueError: an input shape that is not 3-D, any invalid width/size argument, or
            ``data_format="channels_first"`` on a machine whose TensorFlow cannot run it
            (the message names the layer and the fix).

    Example:

    >>> model = cnn((8, 8, 1), filters=[8], dense=[], outputs=10)
    >>> model.output_shape
    (None, 10)
    """
    target = resolve_target(input_shape, outputs, task, output_activation)
    if len(target.input_shape) != 3:
        raise ValueError(
            "Received an invalid value for argument input_shape, expected an image shape "
            "(height, width, channels) for cnn (for digits use load('digits', view='image')). "
            f"Received: input_shape={target.input_shape}"
        )
    filters = check_units("filters", filters)
    dense = check_units("dense", dense)
    positive_int("kernel_size", kernel_size)
    positive_int("pool_size", pool_size)
    one_of("padding", padding, ("same", "valid"))
    dropout = fraction("dropout", dropout, allow_zero=True)
    if data_format is None:
        data_format = keras.config.image_data_format()
    one_of("data_format", data_format, DATA_FORMATS)
    channel_axis, spatial = (1, (2, 3)) if data_format == "channels_first" else (-1, (1, 2))
    reg = regularizer(l1, l2)
    initializer = default_initializer(initializer, activation, "glorot_uniform")

    inputs, x = model_inputs(target, augment, seed)
    if data_format == "channels_first":
        x = keras.layers.Permute((3, 1, 2), name="to_channels_first")(x)
    for i, f in enumerate(filters, start=1):
        act = _conv_activation(activation, f"conv_{i}_act", channel_axis)
        x = keras.layers.Conv2D(
            f * pieces(act),
            kernel_size,
            padding=padding,
            data_format=data_format,
            kernel_initializer=initializers.get(initializer, seed=seed_for(seed, i)),
            kernel_regularizer=reg,
            use_bias=not batchnorm,
            name=f"conv_{i}",
        )(x)
        if batchnorm:
            x = keras.layers.BatchNormalization(axis=channel_axis, name=f"conv_{i}_bn")(x)
        x = act(x)
        if min(x.shape[d] for d in spatial) >= pool_size:
            x = keras.layers.MaxPooling2D(pool_size, data_format=data_format, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
    outputs_ = dense_stack_and_output(
        x,
        dense,
        target,
        first_index=len(filters) + 1,
        activation=activation,
        initializer=initializer,
        reg=reg,
        dropout=dropout,
        batchnorm=batchnorm,
        output_activation=output_activation,
        seed=seed,
    )
    return checked_model(inputs, outputs_, name=name)
