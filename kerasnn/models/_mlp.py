"""Multi-layer perceptron builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasnn._validation import fraction
from kerasnn.datasets import Dataset
from kerasnn.models._head import (
    check_units,
    default_initializer,
    dense_stack_and_output,
    model_inputs,
    regularizer,
    resolve_target,
)


def mlp(
    input_shape: Sequence[int] | Dataset,
    hidden: Sequence[int] = (256, 256),
    outputs: int | None = None,
    *,
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
    name: str = "mlp",
) -> keras.Model:
    """Builds a fully connected network: input → [Dense → (BN) → act → (Dropout)]×n → output.

    Args:
        input_shape: per-sample input shape, e.g. ``(64,)`` (inputs of more dimensions are
            flattened), or a `kerasnn.datasets.Dataset`, which also supplies `outputs` and `task`.
        hidden: width of each hidden layer. Defaults to ``(256, 256)``; ``[]`` gives a linear
            (softmax/logistic regression) model.
        outputs: number of output units. Defaults to the Dataset's.
        task: ``"classification"`` (softmax), ``"binary"`` (1 sigmoid unit) or ``"regression"``
            (linear). Defaults to the Dataset's task, else classification when outputs > 1.
        activation: hidden activation: a name from `kerasnn.activations.names()` (Keras names,
            lecture aliases, learnable ones such as ``"prelu"`` / ``"pelu"``), a callable or a
            layer. Defaults to ``"relu"``. ``"maxout"`` (or ``kerasnn.layers.MaxoutChannels(
            pieces=k)``; the name means k = 2) makes each hidden layer `units` maxout units of
            `k` pieces: its Dense layer has ``k * units`` outputs (k times the parameters) and
            the max over each group of k leaves `units` outputs. ``"selu"`` pairs with
            LeCun-normal weights (unless `initializer` is given) and `AlphaDropout`.
        initializer: kernel initializer, a name from `kerasnn.initializers.names()` (e.g.
            ``"xavier_normal"``, ``"kaiming_normal"``, ``"small_normal"``) or an initializer.
            Defaults to `None`: ``"glorot_uniform"`` (Keras's default), ``"lecun_normal"`` with
            SELU.
        dropout: dropout rate after each hidden activation, in [0, 1) (`AlphaDropout` with
            SELU). Defaults to 0.
        batchnorm: insert BatchNormalization between each Dense and its activation.
            Defaults to `False`.
        l1: L1 penalty on hidden kernels. Defaults to 0.
        l2: L2 penalty on hidden kernels. Defaults to 0.
        output_activation: overrides the task's output activation. Defaults to `None`.
        augment: data augmentation while training (inactive in `predict`/`evaluate` and in
            saved models): `None`, a preset name (``"shift"``, ``"noise"``,
            ``"shift_noise"``) or a mapping of shift/rotation/zoom/noise; see
            `kerasnn.augment`. Build from the Dataset so shifts act on unstandardized pixels.
            Defaults to `None`.
        seed: seeds every initializer and dropout layer. Defaults to `None` (Keras's global seed,
            which `kerasnn.fit(seed=...)` and `keras.utils.set_random_seed` fix).
        name: model name. Defaults to ``"mlp"``.

    Returns:
        An uncompiled, built functional `keras.Model`.

    Raises:
        ValueError: a non-positive width, a dropout outside [0, 1), an unknown activation or
            initializer name, or an ambiguous single-unit output without `task`.

    Example:

    >>> model = mlp((64,), hidden=[32], outputs=10)
    >>> model.count_params()
    2410
    """
    target = resolve_target(input_shape, outputs, task, output_activation)
    hidden = check_units("hidden", hidden)
    dropout = fraction("dropout", dropout, allow_zero=True)
    reg = regularizer(l1, l2)
    initializer = default_initializer(initializer, activation, "glorot_uniform")
    inputs, x = model_inputs(target, augment, seed)
    if len(target.input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    outputs_ = dense_stack_and_output(
        x,
        hidden,
        target,
        first_index=1,
        activation=activation,
        initializer=initializer,
        reg=reg,
        dropout=dropout,
        batchnorm=batchnorm,
        output_activation=output_activation,
        seed=seed,
    )
    return keras.Model(inputs, outputs_, name=name)
