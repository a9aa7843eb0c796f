"""Optimizers by the lectures' names: sgd, momentum, nesterov, rmsprop, adam, adamw…

``momentum`` is SGD with classical momentum (0.9 unless given), ``nesterov`` is SGD with Nesterov
momentum. Other Keras optimizer names (adagrad, adadelta, adamax, nadam, lion…) pass through.
SGD (all three), RMSprop, Adam and AdamW come fused (`kerasnn.optimizers.fuse`): Keras's
own optimizer, whose update of each variable is one fused TensorFlow kernel. They stay instances of
the Keras classes, so a compiled model saves and loads like one compiled with stock Keras.
"""

from __future__ import annotations

import numbers
from typing import Any

import keras

from kerasnn._validation import invalid, one_of
from kerasnn.optimizers.fused import fusable as fusable
from kerasnn.optimizers.fused import fuse as fuse
from kerasnn.optimizers.fused import is_fused as is_fused

__all__ = ["OptimizerLike", "fusable", "fuse", "get", "is_fused", "names"]

OptimizerLike = str | keras.optimizers.Optimizer

_KERAS_CLASSES: dict[str, type] = {
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "adagrad": keras.optimizers.Adagrad,
    "adadelta": keras.optimizers.Adadelta,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
    "lion": keras.optimizers.Lion,
}
# Lecture name -> (Keras class, defaults the name implies).
_LECTURE_NAMES: dict[str, tuple[type, dict[str, Any]]] = {
    "momentum": (keras.optimizers.SGD, {"momentum": 0.9}),
    "nesterov": (keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
}


def names() -> list[str]:
    """Every optimizer name kerasnn accepts."""
    return sorted(set(_KERAS_CLASSES) | set(_LECTURE_NAMES))


def get(
    identifier: OptimizerLike = "adam",
    *,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    fused: bool = True,
    **kwargs: Any,
) -> keras.optimizers.Optimizer:
    """Returns a new Keras optimizer.

    Args:
        identifier: a name from `names()` or a `keras.optimizers.Optimizer` (returned as is;
            then `learning_rate` and `kwargs` must be empty). Defaults to ``"adam"``.
        learning_rate: a float > 0 or a `LearningRateSchedule`. Defaults to the optimizer's
            Keras default (0.01 for SGD and momentum variants, 0.001 for Adam and RMSprop).
        fused: for sgd, momentum, nesterov, rmsprop, adam and adamw, install the fused update
            (`kerasnn.optimizers.fuse`: same rule, one TensorFlow kernel per variable
            update; the class stays Keras's). `False` returns the plain Keras optimizer.
            Defaults to `True`.
        **kwargs: any other argument of the Keras optimizer class, e.g. ``momentum=0.95``,
            ``weight_decay=1e-4``, ``clipnorm=1.0``, ``beta_1=0.9``.

    Returns:
        A `keras.optimizers.Optimizer`.

    Raises:
        ValueError: unknown name, `learning_rate` <= 0, or an argument the optimizer does not
            take (the message lists the ones it does).

    Example:

    >>> opt = get("nesterov", learning_rate=0.05)
    >>> (type(opt).__name__, opt.nesterov, float(opt.momentum))
    ('SGD', True, 0.9)
    >>> from kerasnn.optimizers import is_fused
    >>> is_fused(opt)
    True
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: not given
    if isinstance(identifier, keras.optimizers.Optimizer):
        if fused is not True:  # a choice of class: meaningless for an instance
            kwargs = {**kwargs, "fused": fused}
        if learning_rate is not None or kwargs:
            raise ValueError(
                "Received an optimizer instance together with learning_rate or other "
                "arguments; set them on the instance instead. "
                f"Received: learning_rate={learning_rate!r}, kwargs={kwargs!r}"
            )
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(
            "Received an invalid value for argument optimizer, expected a name or a "
            f"keras.optimizers.Optimizer. Received: optimizer={identifier!r}"
        )
    if not isinstance(fused, bool):
        raise invalid("fused", "True or False", fused)
    key = one_of("optimizer", identifier.lower(), names())
    if key in _LECTURE_NAMES:
        cls, defaults = _LECTURE_NAMES[key]
    else:
        cls, defaults = _KERAS_CLASSES[key], {}
    config = {**defaults, **kwargs}
    if learning_rate is not None:
        is_number = isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool)
        if is_number and not learning_rate > 0:
            raise invalid("learning_rate", "a number > 0 or a LearningRateSchedule", learning_rate)
        # Keras refuses ints and NumPy scalars: pass numbers as Python floats.
        config["learning_rate"] = float(learning_rate) if is_number else learning_rate
    accepted = set(cls().get_config())
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(
            f"Received an invalid argument for optimizer {key!r}: {', '.join(unknown)}. "
            f"{cls.__name__} accepts: {', '.join(sorted(accepted - {'name'}))}."
        )
    return fuse(cls(**config)) if fused else cls(**config)
