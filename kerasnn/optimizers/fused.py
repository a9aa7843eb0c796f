"""Fused updates for Keras's own optimizers: one TensorFlow kernel per variable update.

Keras 3 writes each optimizer's update rule with `keras.ops`: on the TensorFlow backend an RMSprop
step is about eight elementwise ops per variable, each a full pass over the variable's memory.
TensorFlow ships the same rules as single kernels (``tf.raw_ops.ResourceApplyRMSProp``,
``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``…): one pass, multithreaded, also compiled by
XLA. `fuse` installs those kernels as the ``update_step`` of a *stock* Keras optimizer instance;
everything around it — learning-rate schedules, ``clipnorm``/``clipvalue``, weight decay,
gradient accumulation, EMA, loss scaling, `tf.distribute` — is Keras's own code, and the math
is Keras's formula (the tests check each against a NumPy reference and against the stock
optimizer).

The optimizer stays an instance of its Keras class (`keras.optimizers.Adam`, …) with Keras's
variables and config, so a model compiled with it saves as ``keras.optimizers.Adam`` and loads in
any Keras process, kerasnn imported or not (as the stock optimizer: same state, same math).
`kerasnn.optimizers.get` returns fused optimizers by default (``fused=False`` for plain ones).

Fallbacks to the stock update (same results, Keras's speed): a backend other than TensorFlow,
sparse (`tf.IndexedSlices`) gradients, and subclasses of the Keras classes (their own rule wins).

RMSprop with ``momentum=0`` keeps, outside the optimizer's variables, one scratch buffer per
weight: the fused kernel always writes a momentum accumulator, whose value never feeds back when
the momentum is 0. Files written by kerasnn 0.1, whose optimizers were the subclasses
``kerasnn>FusedSGD``, ``FusedRMSprop``, ``FusedAdam`` and ``FusedAdamW``, still load (after
``import kerasnn``) into fused stock optimizers.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

__all__ = ["fusable", "fuse", "is_fused"]

_FUSED_FLAG = "_kerasnn_fused"


def _handle(variable: Any) -> tf.Tensor:
    """The resource handle of a Keras or TensorFlow variable (the replica's one in
    `tf.distribute` update calls, where Keras passes the per-replica `tf.Variable`)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


def _sgd(opt: keras.optimizers.SGD, gradient: Any, variable: Any, learning_rate: Any) -> None:
    """``ResourceApplyGradientDescent``, or ``ResourceApplyKerasMomentum`` (TensorFlow's kernel
    of exactly Keras's rule ``m = momentum·m − lr·g``, then ``w += m``, or
    ``w += momentum·m − lr·g`` for Nesterov)."""
    dtype = variable.dtype
    lr, grad = tf.cast(learning_rate, dtype), tf.cast(gradient, dtype)
    if opt.momentum == 0:
        tf.raw_ops.ResourceApplyGradientDescent(var=_handle(variable), alpha=lr, delta=grad)
        return
    m = opt.momentums[opt._get_variable_index(variable)]
    tf.raw_ops.ResourceApplyKerasMomentum(
        var=_handle(variable),
        accum=_handle(m),
        lr=lr,
        grad=grad,
        momentum=tf.cast(opt.momentum, dtype),
        use_nesterov=bool(opt.nesterov),
    )


def _rmsprop(
    opt: keras.optimizers.RMSprop,
    gradient: Any,
    variable: Any,
    learning_rate: Any,
    scratch: list,
) -> None:
    """``ResourceApplyRMSProp`` (``ResourceApplyCenteredRMSProp`` when centered):
    ``v = ρ·v + (1−ρ)·g²``, ``m = momentum·m + lr·g/√(v + ε)``, ``w −= m``."""
    dtype = variable.dtype
    index = opt._get_variable_index(variable)
    momentum = opt._momentums[index] if opt.momentum > 0 else scratch[index]
    arguments = {
        "var": _handle(variable),
        "ms": _handle(opt._velocities[index]),
        "mom": _handle(momentum),
        "lr": tf.cast(learning_rate, dtype),
        "rho": tf.cast(opt.rho, dtype),
        "momentum": tf.cast(opt.momentum, dtype),
        "epsilon": tf.cast(opt.epsilon, dtype),
        "grad": tf.cast(gradient, dtype),
    }
    if opt.centered:
        tf.raw_ops.ResourceApplyCenteredRMSProp(
            mg=_handle(opt._average_gradients[index]), **arguments
        )
    else:
        tf.raw_ops.ResourceApplyRMSProp(**arguments)


def _adam(opt: keras.optimizers.Adam, gradient: Any, variable: Any, learning_rate: Any) -> None:
    """``ResourceApplyAdam`` (``ResourceApplyAdamWithAmsgrad``): ``m = β₁m + (1−β₁)g``,
    ``v = β₂v + (1−β₂)g²``, ``w −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)``. A ``beta_1`` variable (as a
    one-cycle schedule binds) is read every step. AdamW: Keras applies the decoupled weight
    decay before the update step."""
    dtype = variable.dtype
    index = opt._get_variable_index(variable)
    step = tf.cast(opt.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(opt.beta_1, dtype), tf.cast(opt.beta_2, dtype)
    arguments = {
        "var": _handle(variable),
        "m": _handle(opt._momentums[index]),
        "v": _handle(opt._velocities[index]),
        "beta1_power": tf.pow(beta_1, step),
        "beta2_power": tf.pow(beta_2, step),
        "lr": tf.cast(learning_rate, dtype),
        "beta1": beta_1,
        "beta2": beta_2,
        "epsilon": tf.cast(opt.epsilon, dtype),
        "grad": tf.cast(gradient, dtype),
    }
    if opt.amsgrad:
        tf.raw_ops.ResourceApplyAdamWithAmsgrad(
            vhat=_handle(opt._velocity_hats[index]), **arguments
        )
    else:
        tf.raw_ops.ResourceApplyAdam(**arguments)


_KERNELS: dict[type, Callable[..., None]] = {
    keras.optimizers.SGD: _sgd,
    keras.optimizers.RMSprop: _rmsprop,
    keras.optimizers.Adam: _adam,
    keras.optimizers.AdamW: _adam,
}


def is_fused(optimizer: Any) -> bool:
    """Whether `optimizer` runs kerasnn's fused update (see `fuse`)."""
    return bool(getattr(optimizer, _FUSED_FLAG, False))


def fusable(cls: type) -> bool:
    """Whether instances of `cls` can be fused: exactly SGD, RMSprop, Adam or AdamW."""
    return cls in _KERNELS


def fuse(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """Makes `optimizer`'s per-variable update one fused TensorFlow kernel; returns it.

    Only this instance changes: its class, config, variables and saved form stay Keras's, so a
    model compiled with it loads anywhere as the stock optimizer.

    Args:
        optimizer: a `keras.optimizers.SGD` (plain, momentum or Nesterov), `RMSprop` (plain,
            momentum, centered), `Adam` (amsgrad too) or `AdamW` instance, not yet built.
            Instances of other classes, subclasses included, are returned unchanged.

    Returns:
        `optimizer`.

    Raises:
        ValueError: the optimizer is already built (its update has been traced).

    Example:

    >>> opt = fuse(keras.optimizers.Adam(learning_rate=0.01))
    >>> (type(opt).__name__, is_fused(opt))
    ('Adam', True)
    """
    kernel = _KERNELS.get(type(optimizer))
    if kernel is None or is_fused(optimizer):
        return optimizer
    if optimizer.built:
        raise ValueError(
            "Received an invalid value for argument optimizer, expected an optimizer that is "
            f"not built yet (fuse it before training). Received: a built {type(optimizer).__name__}"
        )
    stock_update = optimizer.update_step
    scratch: list = []

    def update_step(self: Any, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if keras.backend.backend() != "tensorflow" or isinstance(gradient, tf.IndexedSlices):
            return stock_update(gradient, variable, learning_rate)
        if kernel is _rmsprop:
            return kernel(self, gradient, variable, learning_rate, scratch)
        return kernel(self, gradient, variable, learning_rate)

    if kernel is _rmsprop:
        stock_build = optimizer.build

        def build(self: Any, var_list: list) -> None:
            if self.built:
                return
            stock_build(var_list)
            if self.momentum > 0:
                return
            # Not tracked by the optimizer: never saved, never restored (its value is unused).
            strategy = tf.distribute.get_strategy()
            for variable in var_list:
                reference = variable.value if isinstance(variable, keras.Variable) else variable
                with strategy.extended.colocate_vars_with(reference):
                    scratch.append(
                        keras.Variable(
                            initializer="zeros",
                            shape=variable.shape,
                            dtype=variable.dtype,
                            trainable=False,
                            name="fused_rmsprop_scratch",
                        )
                    )

        object.__setattr__(optimizer, "build", types.MethodType(build, optimizer))
    object.__setattr__(optimizer, "update_step", types.MethodType(update_step, optimizer))
    object.__setattr__(optimizer, _FUSED_FLAG, True)
    return optimizer


def _legacy(cls: type) -> type:
    """A loader for kerasnn 0.1's optimizer subclasses: the stock class, fused."""

    class Legacy(cls):
        @classmethod
        def from_config(cls_: type, config: dict, custom_objects: Any = None) -> Any:
            return fuse(cls.from_config(config, custom_objects=custom_objects))

    return Legacy


for _name, _cls in (
    ("FusedSGD", keras.optimizers.SGD),
    ("FusedRMSprop", keras.optimizers.RMSprop),
    ("FusedAdam", keras.optimizers.Adam),
    ("FusedAdamW", keras.optimizers.AdamW),
):
    _loader = _legacy(_cls)
    _loader.__name__ = _loader.__qualname__ = _name
    keras.saving.register_keras_serializable(package="kerasnn", name=_name)(_loader)
