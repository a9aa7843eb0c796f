"""Callbacks by name, for recipes: ``fit: {callbacks: [{gradient_norms: {every_n_steps: 10}}]}``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import keras

from kerasnn._validation import invalid, one_of
from kerasnn.callbacks.activation_stats import ActivationStats
from kerasnn.callbacks.gradient_norms import GradientNorms
from kerasnn.callbacks.learning_rate import LearningRateLogger
from kerasnn.callbacks.update_ratios import UpdateRatios

__all__ = ["arguments", "get", "names"]

_REGISTRY: dict[str, type] = {
    "gradient_norms": GradientNorms,
    "grad_norms": GradientNorms,
    "activation_stats": ActivationStats,
    "update_ratios": UpdateRatios,
    "learning_rate_logger": LearningRateLogger,
    "reduce_lr_on_plateau": keras.callbacks.ReduceLROnPlateau,
    "csv_logger": keras.callbacks.CSVLogger,
    "tensorboard": keras.callbacks.TensorBoard,
    "model_checkpoint": keras.callbacks.ModelCheckpoint,
}
# Filled in by kerasnn.fit from the training data; not recipe arguments.
_DATA_ARGUMENTS = {"probe"}


def names() -> list[str]:
    """Callback names usable in recipes (`early_stopping` has its own `fit` key)."""
    return sorted(_REGISTRY)


def arguments(name: str) -> list[str]:
    """The arguments a named callback takes in a recipe."""
    cls = _REGISTRY[one_of("callbacks", name, names())]
    params = inspect.signature(cls.__init__).parameters
    return [
        p
        for p, v in params.items()
        if p != "self"
        and p not in _DATA_ARGUMENTS
        and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
    ]


def get(spec: str | Mapping[str, Any] | keras.callbacks.Callback) -> keras.callbacks.Callback:
    """A callback from its recipe form: ``"activation_stats"`` or ``{name: {arg: value}}``.

    Args:
        spec: a name from `names()`, a one-entry mapping name -> arguments, or a callback
            (returned as is).

    Returns:
        A new `keras.callbacks.Callback`.

    Raises:
        ValueError: an unknown name (with the known ones and a close match), an unknown argument
            (with the accepted ones) or a bad value.

    Example:

    >>> get({"gradient_norms": {"every_n_steps": 10}}).every_n_steps
    10
    """
    if isinstance(spec, keras.callbacks.Callback):
        return spec
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((name, args),) = spec.items()
        args = {} if args is None else args
        if not isinstance(args, Mapping):
            raise invalid(f"callbacks.{name}", "a mapping of arguments", args)
    else:
        raise invalid(
            "callbacks",
            "a list of callback names or one-entry mappings {name: {argument: value}}",
            spec,
        )
    accepted = arguments(name)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise ValueError(
            f"Received an invalid argument for callback {name!r}: {', '.join(unknown)}. "
            f"It accepts: {', '.join(accepted)}."
        )
    return _REGISTRY[name](**args)
