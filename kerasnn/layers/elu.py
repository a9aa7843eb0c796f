"""Learnable ELU variants.

Keras ships `elu`, `selu` and `celu` as functions (available by name in every kerasnn builder);
what it lacks is an ELU whose shape is learnt. `PELU` (Trottier, Giguère & Chaib-draa 2017,
"Parametric Exponential Linear Unit for Deep Convolutional Neural Networks") learns both the
saturation and the slope:

    f(x) = (a / b) * x               for x >= 0
    f(x) = a * (exp(x / b) - 1)      for x <  0,       a, b > 0

``a = b = 1`` is ELU; ``a = b = alpha`` is CELU(alpha); fixing ``b = 1`` (``trainable_b=False``)
gives an ELU with a trainable alpha. So one layer covers the trainable ELU family.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kerasnn._validation import invalid

__all__ = ["PELU", "MinValue"]


@keras.saving.register_keras_serializable(package="kerasnn")
class MinValue(keras.constraints.Constraint):
    """Clips a weight from below: ``w <- max(w, min_value)`` (keeps PELU's a, b positive).

    Args:
        min_value: the lower bound. Defaults to 0.1 (Trottier et al.'s value).
    """

    def __init__(self, min_value: float = 0.1) -> None:
        self.min_value = float(min_value)

    def __call__(self, w: Any) -> Any:
        return ops.maximum(w, ops.cast(self.min_value, w.dtype))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value}


def _positive(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise invalid(argument, "a number > 0", value)
    return float(value)


@keras.saving.register_keras_serializable(package="kerasnn")
class PELU(keras.layers.Layer):
    """Parametric ELU: ``(a/b) x`` for ``x >= 0``, ``a (exp(x/b) - 1)`` for ``x < 0``.

    `a` and `b` are learnt and kept >= `min_value` by a `MinValue` constraint applied after each
    optimizer step, so the function stays continuous and differentiable at 0 (slope ``a/b`` on
    both sides).

    Args:
        a: initial value of `a` (the negative saturation is ``-a``). Must be > 0. Defaults to 1.
        b: initial value of `b` (the exponential decay scale). Must be > 0. Defaults to 1.
        channelwise: one (a, b) pair per channel (last axis) instead of one per layer (the
            paper's choice). Defaults to `False`.
        min_value: lower bound enforced on `a` and `b` during training. Must be > 0.
            Defaults to 0.1.
        trainable_b: set `False` to keep ``b`` at its initial value (``b = 1``: an ELU with a
            trainable alpha). Defaults to `True`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor of any shape.

    Returns:
        A tensor of the same shape.

    Raises:
        ValueError: `a`, `b` or `min_value` not > 0, or `a`/`b` below `min_value`.

    Example:

    >>> layer = PELU(a=2.0, b=1.0)
    >>> [float(v) for v in layer(keras.ops.convert_to_tensor([-1.0, 0.0, 1.0]))]
    ... # doctest: +SKIP
    [-1.2642, 0.0, 2.0]
    """

    def __init__(
        self,
        a: float = 1.0,
        b: float = 1.0,
        *,
        channelwise: bool = False,
        min_value: float = 0.1,
        trainable_b: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.a_init = _positive("a", a)
        self.b_init = _positive("b", b)
        self.min_value = _positive("min_value", min_value)
        for argument, value in (("a", self.a_init), ("b", self.b_init)):
            if value < self.min_value:
                raise invalid(argument, f"a number >= min_value={self.min_value}", value)
        self.channelwise = bool(channelwise)
        self.trainable_b = bool(trainable_b)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape: tuple[int, ...] = ()
        if self.channelwise:
            if input_shape[-1] is None:
                raise ValueError(
                    "Received an input with an unknown last dimension; PELU(channelwise=True) "
                    f"needs it. Received: input_shape={tuple(input_shape)}"
                )
            shape = (input_shape[-1],)
        constraint = MinValue(self.min_value)
        self.a = self.add_weight(
            name="a",
            shape=shape,
            initializer=keras.initializers.Constant(self.a_init),
            constraint=constraint,
        )
        self.b = self.add_weight(
            name="b",
            shape=shape,
            initializer=keras.initializers.Constant(self.b_init),
            constraint=constraint,
            trainable=self.trainable_b,
        )

    def call(self, inputs: Any) -> Any:
        a = ops.cast(self.a, inputs.dtype)
        b = ops.cast(self.b, inputs.dtype)
        positive = ops.divide(a, b) * inputs
        # exp of min(x, 0) only: the unused branch never overflows (or NaNs the gradient).
        negative = a * ops.expm1(ops.divide(ops.minimum(inputs, 0.0), b))
        return ops.where(inputs >= 0, positive, negative)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "a": self.a_init,
            "b": self.b_init,
            "channelwise": self.channelwise,
            "min_value": self.min_value,
            "trainable_b": self.trainable_b,
        }
