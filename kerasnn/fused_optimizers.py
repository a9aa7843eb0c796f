"""Keras optimizers whose per-variable update is one fused TensorFlow kernel.

Keras 3 writes each optimizer's update rule with `keras.ops`: on the TensorFlow backend an RMSprop
step is about eight elementwise ops per variable, each a full pass over the variable's memory.
TensorFlow ships the same rules as single kernels (``tf.raw_ops.ResourceApplyRMSProp``,
``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``…): one pass, multithreaded, also compiled by
XLA. The classes here are the Keras optimizers with only `update_step` replaced by those kernels;
everything around it — learning-rate schedules, ``clipnorm``/``clipvalue``, weight decay,
gradient accumulation, EMA, loss scaling, `tf.distribute` — is Keras's own code, and the math
is Keras's formula (the tests check each against a NumPy reference and against the stock
optimizer).

`kerasnn.optimizers.get` returns these by default (``fused=False`` gives the stock classes). On
`bench/mnist_shape.py` fusing the RMSprop update is the largest single gain kerasnn adds to
Keras's own train step.

Fallbacks to the stock update (same results, Keras's speed): a backend other than TensorFlow
and sparse (`tf.IndexedSlices`) gradients.

The optimizers save and load like any Keras optimizer (registered as ``kerasnn>FusedAdam``
etc.; `import kerasnn` before loading a compiled `.keras` file). `FusedRMSprop` keeps a
momentum slot even when ``momentum=0`` (the fused kernel needs one): its variables are one
slot per weight more than `keras.optimizers.RMSprop`'s.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["FusedAdam", "FusedAdamW", "FusedRMSprop", "FusedSGD", "fused_class"]


def _fusable(gradient: Any) -> bool:
    return keras.backend.backend() == "tensorflow" and not isinstance(gradient, tf.IndexedSlices)


def _handle(variable: Any) -> tf.Tensor:
    """The resource handle of a Keras or TensorFlow variable (the replica's one in
    `tf.distribute` update calls, where Keras passes the per-replica `tf.Variable`)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package="kerasnn")
class FusedSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` (plain, momentum or Nesterov) with a fused update.

    Plain SGD is ``ResourceApplyGradientDescent``; with momentum, ``ResourceApplyKerasMomentum``
    (TensorFlow's kernel of exactly Keras's rule ``m = momentum·m − lr·g``, then ``w += m``, or
    ``w += momentum·m − lr·g`` for Nesterov). Arguments are `keras.optimizers.SGD`'s.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _fusable(gradient):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr, grad = tf.cast(learning_rate, dtype), tf.cast(gradient, dtype)
        if self.momentum == 0:
            tf.raw_ops.ResourceApplyGradientDescent(var=_handle(variable), alpha=lr, delta=grad)
            return None
        m = self.momentums[self._get_variable_index(variable)]
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=_handle(variable),
            accum=_handle(m),
            lr=lr,
            grad=grad,
            momentum=tf.cast(self.momentum, dtype),
            use_nesterov=bool(self.nesterov),
        )
        return None


@keras.saving.register_keras_serializable(package="kerasnn")
class FusedRMSprop(keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with a fused update.

    ``ResourceApplyRMSProp`` (or ``ResourceApplyCenteredRMSProp`` when ``centered``) computes
    Keras's rule in one pass: ``v = ρ·v + (1−ρ)·g²``, ``m = momentum·m + lr·g/√(v + ε)``,
    ``w −= m``. With ``momentum=0`` the slot ``m`` holds the last increment. Arguments are
    `keras.optimizers.RMSprop`'s.
    """

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        # The fused kernel always reads and writes a momentum accumulator.
        self._fused_momentums = self._momentums or self.add_optimizer_variables(
            var_list, "momentum"
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _fusable(gradient):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        arguments = {
            "var": _handle(variable),
            "ms": _handle(self._velocities[index]),
            "mom": _handle(self._fused_momentums[index]),
            "lr": tf.cast(learning_rate, dtype),
            "rho": tf.cast(self.rho, dtype),
            "momentum": tf.cast(self.momentum, dtype),
            "epsilon": tf.cast(self.epsilon, dtype),
            "grad": tf.cast(gradient, dtype),
        }
        if self.centered:
            tf.raw_ops.ResourceApplyCenteredRMSProp(
                mg=_handle(self._average_gradients[index]), **arguments
            )
        else:
            tf.raw_ops.ResourceApplyRMSProp(**arguments)
        return None


@keras.saving.register_keras_serializable(package="kerasnn")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` with a fused update (``ResourceApplyAdam``, or
    ``ResourceApplyAdamWithAmsgrad``): ``m = β₁m + (1−β₁)g``, ``v = β₂v + (1−β₂)g²``,
    ``w −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)``. Arguments are `keras.optimizers.Adam`'s; a
    ``beta_1`` variable (as a one-cycle schedule binds) is read every step."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not _fusable(gradient):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        arguments = {
            "var": _handle(variable),
            "m": _handle(self._momentums[index]),
            "v": _handle(self._velocities[index]),
            "beta1_power": tf.pow(beta_1, step),
            "beta2_power": tf.pow(beta_2, step),
            "lr": tf.cast(learning_rate, dtype),
            "beta1": beta_1,
            "beta2": beta_2,
            "epsilon": tf.cast(self.epsilon, dtype),
            "grad": tf.cast(gradient, dtype),
        }
        if self.amsgrad:
            tf.raw_ops.ResourceApplyAdamWithAmsgrad(
                vhat=_handle(self._velocity_hats[index]), **arguments
            )
        else:
            tf.raw_ops.ResourceApplyAdam(**arguments)
        return None


@keras.saving.register_keras_serializable(package="kerasnn")
class FusedAdamW(FusedAdam, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with `FusedAdam`'s fused update, after Keras's decoupled weight
    decay. Arguments are `keras.optimizers.AdamW`'s."""


_FUSED: dict[type, type] = {
    keras.optimizers.SGD: FusedSGD,
    keras.optimizers.RMSprop: FusedRMSprop,
    keras.optimizers.Adam: FusedAdam,
    keras.optimizers.AdamW: FusedAdamW,
}


def fused_class(cls: type) -> type:
    """The fused subclass of a Keras optimizer class, or `cls` itself when there is none."""
    return _FUSED.get(cls, cls)
