"""What every builder shares: reading a Dataset, the task-aware output layer, hidden blocks."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from kerasnn import activations, data_formats, initializers
from kerasnn import augment as augment_mod
from kerasnn._validation import non_negative_float, one_of, positive_int
from kerasnn.datasets import TASKS, Dataset
from kerasnn.layers import MaxoutChannels

OUTPUT_ACTIVATION = {"classification": "softmax", "binary": "sigmoid", "regression": "linear"}


@dataclass(frozen=True)
class Target:
    """Input shape, output width and task of the model being built."""

    input_shape: tuple[int, ...]
    outputs: int
    task: str | None
    standardizer: Any = None  # the Dataset's, for augmentation (kerasnn.augment)


def resolve_target(
    input_shape: Sequence[int] | Dataset,
    outputs: int | None,
    task: str | None,
    output_activation: Any,
) -> Target:
    """Turns a builder's first arguments into a checked `Target`.

    A `Dataset` supplies input shape, output width, task and standardizer; explicit
    `outputs`/`task` win.
    """
    standardizer = None
    if isinstance(input_shape, Dataset):
        data = input_shape
        shape = tuple(data.input_shape)
        outputs = data.output_units if outputs is None else outputs
        task = data.task if task is None else task
        standardizer = data.standardizer
    else:
        is_int = isinstance(input_shape, int) and not isinstance(input_shape, bool)
        dims = (input_shape,) if is_int else input_shape
        try:  # operator.index refuses floats and strings instead of truncating/parsing them
            shape = tuple(operator.index(d) for d in dims)
        except TypeError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise ValueError(
                "Received an invalid value for argument input_shape, expected a non-empty tuple "
                f"of positive integers or a kerasnn Dataset. Received: input_shape={input_shape!r}"
            )
        if outputs is None:
            raise ValueError(
                "Received outputs=None with a plain input_shape: pass outputs (the number of "
                "output units) or build from a kerasnn Dataset, which knows it."
            )
    positive_int("outputs", outputs)
    if task is not None:
        one_of("task", task, TASKS)
    elif output_activation is None:
        if outputs == 1:
            raise ValueError(
                "Received outputs=1 with neither task nor output_activation: one output unit "
                "may be binary (sigmoid) or regression (linear). Pass task='binary' or "
                "task='regression' (or output_activation)."
            )
        task = "classification"
    if task == "classification" and outputs < 2 and output_activation is None:
        raise ValueError(
            "Received an invalid value for argument outputs, expected at least 2 for "
            "task='classification' (a softmax over one unit is always 1; use task='binary' for "
            f"two classes with one sigmoid unit). Received: outputs={outputs}"
        )
    if task == "binary" and outputs != 1:
        raise ValueError(
            "Received an invalid value for argument outputs, expected 1 for task='binary' "
            f"(one sigmoid unit). Received: outputs={outputs}"
        )
    return Target(shape, outputs, task, standardizer)


def model_inputs(target: Target, augment: Any, seed: int | None) -> tuple[Any, Any]:
    """The builders' `keras.Input` and the tensor after the (training-only) augmentation."""
    inputs = keras.Input(target.input_shape, name="inputs")
    x = augment_mod.apply(
        inputs,
        augment,
        input_shape=target.input_shape,
        standardizer=target.standardizer,
        seed=seed,
    )
    return inputs, x


def checked_model(inputs: Any, outputs: Any, *, name: str) -> keras.Model:
    """``keras.Model(inputs, outputs)``, checked by `kerasnn.data_formats.check_data_formats`.

    A builder thus refuses a channels_first model this machine cannot run, with a message naming
    the layer and the fix, instead of TensorFlow failing later inside `fit`.
    """
    model = keras.Model(inputs, outputs, name=name)
    data_formats.check_data_formats(model)
    return model


def regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    """An L1/L2 weight penalty, or `None` when both are zero."""
    l1 = non_negative_float("l1", l1)
    l2 = non_negative_float("l2", l2)
    if l1 == 0 and l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def is_selu(activation: Any) -> bool:
    """Whether `activation` names SELU (a name, alias, the function or an Activation layer)."""
    if isinstance(activation, str):
        return activations.canonical_name(activation) == "selu"
    if isinstance(activation, keras.layers.Activation):
        activation = activation.activation
    return activation is keras.activations.selu


def default_initializer(initializer: Any, activation: Any, default: str) -> Any:
    """`initializer`, or when it is `None` the builder's `default` — LeCun normal for SELU.

    Self-normalizing networks (Klambauer et al. 2017) need LeCun-normal weights for SELU to keep
    activations at zero mean / unit variance.
    """
    if initializer is not None:
        return initializer
    return "lecun_normal" if is_selu(activation) else default


def dropout_layer(rate: float, activation: Any, *, seed: int | None, name: str) -> Any:
    """`Dropout`, or `AlphaDropout` after SELU (plain dropout breaks self-normalization)."""
    if is_selu(activation):
        return keras.layers.AlphaDropout(rate, seed=seed, name=name)
    return keras.layers.Dropout(rate, seed=seed, name=name)


def pieces(act_layer: keras.layers.Layer) -> int:
    """How many linear outputs the activation layer consumes per output unit.

    1 for every activation except maxout: ``MaxoutChannels(pieces=k)`` keeps the max of each
    group of `k` channels, so the builders widen the preceding Dense/Conv layer `k` times and
    ``units``/``filters`` stay the output width (the layer gets `k` times the parameters).

    Raises:
        ValueError: a `MaxoutChannels` given by `num_units` (its width is fixed, not per layer).
    """
    if not isinstance(act_layer, MaxoutChannels):
        return 1
    if act_layer.pieces is None:
        raise ValueError(
            "Received an invalid value for argument activation, expected "
            "MaxoutChannels(pieces=k) in a builder (the builder sets each layer's number of "
            "units). Received: activation=MaxoutChannels(num_units="
            f"{act_layer.num_units})"
        )
    return act_layer.pieces


def check_units(argument: str, units: Sequence[int]) -> list[int]:
    """Checks a list of layer widths (may be empty)."""
    if isinstance(units, int):
        units = [units]
    units = list(units)
    for i, u in enumerate(units):
        positive_int(f"{argument}[{i}]", u)
    return units


def output_layer(
    x: Any,
    target: Target,
    *,
    output_activation: Any,
    initializer: Any,
    seed: int | None,
) -> Any:
    """Applies the output Dense layer and the task's activation (softmax/sigmoid/linear)."""
    act = OUTPUT_ACTIVATION[target.task] if output_activation is None else output_activation
    x = keras.layers.Dense(
        target.outputs,
        kernel_initializer=initializers.get(initializer, seed=seed),
        name="output_dense",
    )(x)
    # float32 output so losses stay stable under a mixed-precision policy.
    return activations.layer(act, name="output", dtype="float32")(x)


def dense_block(
    x: Any,
    units: int,
    *,
    index: int,
    activation: Any,
    initializer: Any,
    reg: keras.regularizers.Regularizer | None,
    dropout: float,
    batchnorm: bool,
    seed: int | None,
    prefix: str = "dense",
) -> Any:
    """Dense → (BatchNorm) → activation → (Dropout), each layer named ``<prefix>_<index>``.

    With maxout the Dense layer has ``units * pieces`` outputs and the block outputs `units`;
    with SELU, dropout is `AlphaDropout`. `initializer` must already be resolved (not `None`).
    """
    act = activations.layer(activation, name=f"{prefix}_{index}_act")
    x = keras.layers.Dense(
        units * pieces(act),
        kernel_initializer=initializers.get(initializer, seed=seed),
        kernel_regularizer=reg,
        use_bias=not batchnorm,
        name=f"{prefix}_{index}",
    )(x)
    if batchnorm:
        x = keras.layers.BatchNormalization(name=f"{prefix}_{index}_bn")(x)
    x = act(x)
    if dropout:
        x = dropout_layer(dropout, activation, seed=seed, name=f"{prefix}_{index}_dropout")(x)
    return x


def seed_for(seed: int | None, index: int) -> int | None:
    """A distinct, reproducible seed per layer (None stays None: Keras's global seed)."""
    return None if seed is None else seed * 1000 + index


def dense_stack_and_output(
    x: Any,
    hidden: Sequence[int],
    target: Target,
    *,
    first_index: int,
    activation: Any,
    initializer: Any,
    reg: keras.regularizers.Regularizer | None,
    dropout: float,
    batchnorm: bool,
    output_activation: Any,
    seed: int | None,
) -> Any:
    """The hidden dense blocks (numbered from `first_index`) and the output layer."""
    for i, units in enumerate(hidden, start=first_index):
        x = dense_block(
            x,
            units,
            index=i,
            activation=activation,
            initializer=initializer,
            reg=reg,
            dropout=dropout,
            batchnorm=batchnorm,
            seed=seed_for(seed, i),
        )
    return output_layer(
        x,
        target,
        output_activation=output_activation,
        initializer=initializer,
        seed=seed_for(seed, 0),
    )
