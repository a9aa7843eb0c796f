"""LeNet-style convolutional network builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasnn import activations, initializers
from kerasnn._validation import fraction, one_of, positive_int
from kerasnn.datasets import Dataset
from kerasnn.models._head import (
    check_units,
    default_initializer,
    dense_stack_and_output,
    model_inputs,
    pieces,
    regularizer,
    resolve_target,
    seed_for,
)


def cnn(
    input_shape: Sequence[int] | Dataset,
    filters: Sequence[int] = (32, 64),
    outputs: int | None = None,
    *,
    dense: Sequence[int] = (128,),
    kernel_size: int = 3,
    pool_size: int = 2,
    padding: str = "same",
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
        ValueError: an input shape that is not 3-D, or any invalid width/size argument.

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
    reg = regularizer(l1, l2)
    initializer = default_initializer(initializer, activation, "glorot_uniform")

    inputs, x = model_inputs(target, augment, seed)
    for i, f in enumerate(filters, start=1):
        act = activations.layer(activation, name=f"conv_{i}_act")
        x = keras.layers.Conv2D(
            f * pieces(act),
            kernel_size,
            padding=padding,
            kernel_initializer=initializers.get(initializer, seed=seed_for(seed, i)),
            kernel_regularizer=reg,
            use_bias=not batchnorm,
            name=f"conv_{i}",
        )(x)
        if batchnorm:
            x = keras.layers.BatchNormalization(name=f"conv_{i}_bn")(x)
        x = act(x)
        if min(x.shape[1], x.shape[2]) >= pool_size:
            x = keras.layers.MaxPooling2D(pool_size, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
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
    return keras.Model(inputs, outputs_, name=name)
