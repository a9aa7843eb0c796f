"""Maxout (Goodfellow et al. 2013): the max over `pieces` linear functions of the input.

Two forms:

- `Maxout(units, pieces)`: the dense maxout unit of the lectures,
  ``h_j(x) = max_i (x @ W[:, j, i] + b[j, i])`` for ``i < pieces``, with its own kernel/bias
  initializers, regularizers and constraints (``kernel_constraint="max_norm"`` as in the paper).
  It computes one fused matmul to ``units * pieces`` columns, then a reshape and a max: exactly
  ``Dense(units * pieces)`` followed by ``MaxoutChannels(num_units=units)``.
- `MaxoutChannels(num_units)`: the feature-map form for conv nets (no parameters): the max over
  groups of *consecutive* channels along `axis`. With ``C`` input channels and
  ``k = C // num_units``, output channel ``j`` is ``max(x[..., j*k], ..., x[..., j*k + k - 1])``.

Parameter count: ``Maxout(units, pieces)`` on ``d`` inputs has ``pieces * (d + 1) * units``
parameters (``pieces`` times a ``Dense(units)``), and outputs ``units`` values.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasnn._validation import invalid, positive_int

__all__ = ["Maxout", "MaxoutChannels"]


def _group_max(x: Any, num_units: int, pieces: int, axis: int) -> Any:
    """Max over consecutive groups of `pieces` entries along `axis` (already non-negative)."""
    shape = list(ops.shape(x))
    new_shape = [*shape[:axis], num_units, pieces, *shape[axis + 1 :]]
    new_shape = [-1 if d is None else d for d in new_shape]
    return ops.max(ops.reshape(x, new_shape), axis=axis + 1)


@keras.saving.register_keras_serializable(package="kerasnn")
class Maxout(keras.layers.Layer):
    """Dense maxout layer: ``units`` outputs, each the max of ``pieces`` affine functions.

    Args:
        units: number of maxout units (the output width). Positive integer.
        pieces: number of linear pieces per unit (``k`` in the paper). Integer >= 1 (1 gives a
            plain affine layer). Defaults to 2.
        use_bias: whether each piece has a bias. Defaults to `True`.
        kernel_initializer: initializer of the ``(input_dim, units * pieces)`` kernel; column
            ``j * pieces + i`` is piece ``i`` of unit ``j``. Defaults to ``"glorot_uniform"``.
        bias_initializer: initializer of the ``(units * pieces,)`` bias. Defaults to ``"zeros"``.
        kernel_regularizer, bias_regularizer, activity_regularizer: Keras regularizers.
            Default to `None`.
        kernel_constraint: e.g. ``keras.constraints.MaxNorm(3.0)`` (the paper's max-norm on each
            piece's weight vector: the kernel's columns, axis 0). Defaults to `None`.
        bias_constraint: Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: a tensor of shape ``(..., input_dim)``.

    Returns:
        A tensor of shape ``(..., units)``.

    Raises:
        ValueError: `units` or `pieces` not a positive integer.

    Example:

    >>> layer = Maxout(4, pieces=3)
    >>> layer(keras.ops.ones((2, 5))).shape
    (2, 4)
    >>> layer.count_params()  # 3 pieces * (5 inputs + 1 bias) * 4 units
    72
    """

    def __init__(
        self,
        units: int,
        pieces: int = 2,
        *,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = positive_int("units", units)
        self.pieces = positive_int("pieces", pieces)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "Received an invalid input shape for Maxout, expected a known last dimension. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, self.units * self.pieces),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units * self.pieces,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs: Any) -> Any:
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = ops.add(z, self.bias)
        if self.pieces == 1:
            return z
        return _group_max(z, self.units, self.pieces, len(z.shape) - 1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "units": self.units,
            "pieces": self.pieces,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }


@keras.saving.register_keras_serializable(package="kerasnn")
class MaxoutChannels(keras.layers.Layer):
    """Maxout over groups of consecutive channels: the feature-map form for conv nets.

    Give either `num_units` (the number of output channels; the group size is
    ``C // num_units``) or `pieces` (the group size; ``C // pieces`` output channels). Groups are
    consecutive channels: output channel ``j`` is the max of input channels
    ``j*k, j*k + 1, ..., j*k + k - 1`` along `axis`, ``k`` being the group size — the grouping
    of `Maxout`'s columns, so ``Dense(units * k)`` then ``MaxoutChannels(pieces=k)`` equals
    ``Maxout(units, k)``. The layer has no parameters.

    kerasnn's builders use the `pieces` form (``activation="maxout"`` is
    ``MaxoutChannels(pieces=2)``) after a linear layer widened `pieces` times.

    Args:
        num_units: number of output channels; must divide the channel count. Defaults to `None`.
        pieces: channels per group; must divide the channel count. Defaults to `None`, which
            means 2 when `num_units` is not given. Give at most one of the two.
        axis: the channel axis. Defaults to -1 (channels last).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor whose `axis` dimension is a multiple of the group size.

    Returns:
        The input with dimension `axis` reduced to the number of groups.

    Raises:
        ValueError: both `num_units` and `pieces`, a non-positive or non-integer
            value, or (when built) a channel count the groups do not divide.

    Example:

    >>> x = keras.ops.convert_to_tensor([[1.0, 5.0, 2.0, 0.0, 3.0, 4.0]])
    >>> MaxoutChannels(num_units=3)(x)  # groups (1, 5), (2, 0), (3, 4)
    ... # doctest: +SKIP
    [[5.0, 2.0, 4.0]]
    """

    def __init__(
        self,
        num_units: int | None = None,
        *,
        pieces: int | None = None,
        axis: int = -1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_units is not None and pieces is not None:
            raise ValueError(
                "Received an invalid combination of arguments num_units and pieces, expected "
                f"at most one of them. Received: num_units={num_units!r}, pieces={pieces!r}"
            )
        if num_units is None and pieces is None:
            pieces = 2
        self.num_units = None if num_units is None else positive_int("num_units", num_units)
        self.pieces = None if pieces is None else positive_int("pieces", pieces)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise invalid("axis", "an integer", axis)
        self.axis = axis

    def _groups(self, input_shape: tuple[int | None, ...]) -> tuple[int, int, int]:
        """(axis >= 0, number of groups, group size) for `input_shape`."""
        rank = len(input_shape)
        if not -rank <= self.axis < rank or self.axis == 0 or self.axis == -rank:
            raise ValueError(
                "Received an invalid value for argument axis, expected a non-batch axis of the "
                f"{rank}-D input. Received: axis={self.axis}"
            )
        axis = self.axis % rank
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(
                f"Received an input with an unknown channel dimension (axis {self.axis}); "
                f"MaxoutChannels needs it. Received: input_shape={tuple(input_shape)}"
            )
        divisor, argument = (
            (self.num_units, "num_units") if self.num_units else (self.pieces, "pieces")
        )
        if channels % divisor:
            raise ValueError(
                f"Received an invalid value for argument {argument}, expected a divisor of the "
                f"number of channels ({channels} on axis {self.axis}). "
                f"Received: {argument}={divisor}"
            )
        groups = self.num_units or channels // self.pieces
        return axis, groups, channels // groups

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self._groups(input_shape)

    def call(self, inputs: Any) -> Any:
        axis, groups, size = self._groups(tuple(inputs.shape))
        if size == 1:
            return inputs
        return _group_max(inputs, groups, size, axis)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        axis, groups, _ = self._groups(tuple(input_shape))
        shape = list(input_shape)
        shape[axis] = groups
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "num_units": self.num_units,
            "pieces": self.pieces,
            "axis": self.axis,
        }
