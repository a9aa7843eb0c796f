"""Residual MLP builder: dense blocks with identity skip connections (functional API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasnn import activations, initializers
from kerasnn._validation import fraction, positive_int
from kerasnn.datasets import Dataset
from kerasnn.models._head import (
    checked_model,
    default_initializer,
    dense_block,
    dropout_layer,
    model_inputs,
    output_layer,
    pieces,
    regularizer,
    resolve_target,
    seed_for,
)


def residual_mlp(
    input_shape: Sequence[int] | Dataset,
    width: int = 128,
    blocks: int = 3,
    outputs: int | None = None,
    *,
    task: str | None = None,
    activation: Any = "relu",
    initializer: Any = None,
    dropout: float = 0.0,
    batchnorm: bool = True,
    l1: float = 0.0,
    l2: float = 0.0,
    output_activation: Any = None,
    augment: Any = None,
    seed: int | None = None,
    name: str = "residual_mlp",
) -> keras.Model:
    """Builds an MLP of residual blocks: ``x + F(x)`` with F = two dense layers.

    A Dense stem maps the input to `width`; each block computes
    ``h = act(Dense(BN(act(Dense(x)))))``-style branches (BatchNorm when `batchnorm`) and adds
    them to its input, then applies the activation: He et al.'s post-activation block on vectors.

    Args:
        input_shape: per-sample input shape or a `kerasnn.datasets.Dataset`.
        width: width of the stem and of every block. Defaults to 128.
        blocks: number of residual blocks. Defaults to 3.
        outputs, task, activation, dropout, l1, l2, output_activation, seed, name: as in
            `kerasnn.models.mlp`. A maxout activation cannot follow the addition (it would
            shrink the width), so with maxout each block is ``x + maxout(Dense(h))``: the second
            Dense is widened too and the maxout moves before the addition.
        initializer: kernel initializer. Defaults to `None`: ``"he_normal"``,
            ``"lecun_normal"`` with SELU.
        batchnorm: BatchNormalization inside each branch. Defaults to `True`.
        augment: data augmentation while training (inactive in `predict`/`evaluate` and in
            saved models): `None`, a preset name (``"shift"``, ``"noise"``,
            ``"shift_noise"``) or a mapping of shift/rotation/zoom/noise; see
            `kerasnn.augment`. Build from the Dataset so shifts act on unstandardized pixels.
            Defaults to `None`.

    Returns:
        An uncompiled, built functional `keras.Model`.

    Example:

    >>> model = residual_mlp((64,), width=16, blocks=2, outputs=10)
    >>> sum(isinstance(layer, keras.layers.Add) for layer in model.layers)
    2
    """
    target = resolve_target(input_shape, outputs, task, output_activation)
    positive_int("width", width)
    positive_int("blocks", blocks)
    dropout = fraction("dropout", dropout, allow_zero=True)
    reg = regularizer(l1, l2)
    initializer = default_initializer(initializer, activation, "he_normal")
    common = dict(
        activation=activation, initializer=initializer, reg=reg, batchnorm=batchnorm, dropout=0.0
    )

    inputs, x = model_inputs(target, augment, seed)
    if len(target.input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    x = dense_block(x, width, index=0, seed=seed_for(seed, 1), prefix="stem", **common)
    for b in range(1, blocks + 1):
        h = dense_block(x, width, index=b, seed=seed_for(seed, 2 * b), prefix="block_a", **common)
        act = activations.layer(activation, name=f"add_{b}_act")
        k = pieces(act)
        if k > 1:  # maxout: the branch ends with its own maxout, nothing follows the addition
            act = activations.layer(activation, name=f"block_b_{b}_act")
        h = keras.layers.Dense(
            width * k,
            kernel_initializer=initializers.get(initializer, seed=seed_for(seed, 2 * b + 1)),
            kernel_regularizer=reg,
            use_bias=not batchnorm,
            name=f"block_b_{b}",
        )(h)
        if batchnorm:
            h = keras.layers.BatchNormalization(name=f"block_b_{b}_bn")(h)
        if k > 1:
            h = act(h)
        x = keras.layers.Add(name=f"add_{b}")([x, h])
        if k == 1:
            x = act(x)
        if dropout:
            drop = dropout_layer(
                dropout, activation, seed=seed_for(seed, 2 * b), name=f"add_{b}_dropout"
            )
            x = drop(x)
    outputs_ = output_layer(
        x,
        target,
        output_activation=output_activation,
        initializer=initializer,
        seed=seed_for(seed, 0),
    )
    return checked_model(inputs, outputs_, name=name)
