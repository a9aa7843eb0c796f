"""One registry for activations: Keras's names, lecture aliases and kerasnn's own layers.

Builders never call `keras.activations.get` directly: they ask this module for a layer, so a name
such as ``"relu"``, a lecture alias such as ``"logistic"``, a learnable activation such as
``"prelu"`` and kerasnn's own layers (registered with `register`) all work everywhere an
activation is accepted: `mlp`, `cnn`, `residual_mlp` and recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from kerasnn._validation import one_of
from kerasnn.layers import PELU, MaxoutChannels

__all__ = [
    "ALIASES",
    "ActivationLike",
    "canonical_name",
    "get",
    "keras_names",
    "layer",
    "layer_factories",
    "names",
    "register",
]

ActivationLike = str | Callable[..., Any] | keras.layers.Layer | None

# Lecture (and common) spellings -> Keras activation names.
ALIASES: dict[str, str] = {
    "logistic": "sigmoid",
    "identity": "linear",
    "none": "linear",
    "lrelu": "leaky_relu",
    "leakyrelu": "leaky_relu",
    "swish": "silu",
}

# Activations that are layers with state (learnable parameters): name -> layer factory.
_LAYER_FACTORIES: dict[str, Callable[..., keras.layers.Layer]] = {
    "prelu": keras.layers.PReLU,
    # Builders widen the linear layer before a maxout `pieces` times (see kerasnn.models).
    "maxout": MaxoutChannels,
    "pelu": PELU,
}


def register(name: str, factory: Callable[..., keras.layers.Layer]) -> None:
    """Makes a layer-based activation available by `name` in every builder and recipe.

    Args:
        name: lower-case name used in builders and recipes, e.g. ``"pelu"``.
        factory: callable returning a new `keras.layers.Layer` on each call (usually the class).

    Raises:
        ValueError: if `name` is already a Keras activation or alias.
    """
    key = name.lower()
    if key in ALIASES or key in keras_names():
        raise ValueError(
            f"Received an invalid value for argument name, expected a name that is not already "
            f"a Keras activation or alias. Received: name={name!r}"
        )
    _LAYER_FACTORIES[key] = factory


def keras_names() -> list[str]:
    """Names of the activation functions Keras itself ships (`keras.activations.<name>`)."""
    skip = {"get", "serialize", "deserialize"}
    return sorted(
        n
        for n in dir(keras.activations)
        if not n.startswith("_") and n not in skip and callable(getattr(keras.activations, n))
    )


def layer_factories() -> dict[str, Callable[..., keras.layers.Layer]]:
    """The layer-based activations by name (a copy): ``{"prelu": keras.layers.PReLU, ...}``."""
    return dict(_LAYER_FACTORIES)


def names() -> list[str]:
    """Every activation name accepted by kerasnn: Keras names, aliases and registered layers."""
    return sorted(set(keras_names()) | set(ALIASES) | set(_LAYER_FACTORIES))


def canonical_name(identifier: str) -> str:
    """Resolves aliases: ``"logistic"`` -> ``"sigmoid"``; raises on unknown names."""
    key = identifier.lower()
    key = ALIASES.get(key, key)
    if key not in names():
        one_of("activation", identifier, names())  # raises, listing the known names
    return key


def layer(
    identifier: ActivationLike, *, name: str | None = None, **layer_kwargs: Any
) -> keras.layers.Layer:
    """Returns a new layer that applies the activation `identifier`.

    Args:
        identifier: an activation name or alias (see `names()`), a callable such as
            `keras.activations.relu`, or a `keras.layers.Layer` instance (copied through its
            config, so each call returns a new layer with its own weights).
            `None` means the identity.
        name: optional name for the new layer.
        **layer_kwargs: passed to the new layer (e.g. ``dtype="float32"``).

    Returns:
        A `keras.layers.Layer`: `keras.layers.Activation` for stateless functions, or a fresh
        instance of the registered layer for learnable activations such as ``"prelu"``.

    Raises:
        ValueError: unknown name (the message lists the known names).
        TypeError: `identifier` is neither a string, a callable nor a layer.

    Example:

    >>> layer("logistic").activation.__name__
    'sigmoid'
    """
    if identifier is None:
        return keras.layers.Activation("linear", name=name, **layer_kwargs)
    if isinstance(identifier, keras.layers.Layer):
        # A fresh copy per call: one instance reused in every hidden layer would share weights.
        config = identifier.get_config() | {"name": name or identifier.name, **layer_kwargs}
        return identifier.__class__.from_config(config)
    if isinstance(identifier, str):
        key = canonical_name(identifier)
        if key in _LAYER_FACTORIES:
            return _LAYER_FACTORIES[key](name=name, **layer_kwargs)
        return keras.layers.Activation(key, name=name, **layer_kwargs)
    if callable(identifier):
        return keras.layers.Activation(identifier, name=name, **layer_kwargs)
    raise TypeError(
        "Received an invalid value for argument activation, expected a name, a callable or a "
        f"keras.layers.Layer. Received: activation={identifier!r} of type {type(identifier)}"
    )


def get(identifier: ActivationLike) -> Callable[..., Any]:
    """Returns the activation *function* for `identifier` (for `Dense(activation=...)`).

    Layer-based activations (``"prelu"`` and kerasnn's layers) have no function form: use `layer`.

    Raises:
        ValueError: unknown name, or a name that only exists as a layer.
    """
    if identifier is None:
        return keras.activations.linear
    if isinstance(identifier, str):
        key = canonical_name(identifier)
        if key in _LAYER_FACTORIES:
            raise ValueError(
                f"Received an invalid value for argument activation, expected a stateless "
                f"activation function; {key!r} is a layer with parameters, use "
                f"kerasnn.activations.layer({key!r}). Received: activation={identifier!r}"
            )
        return keras.activations.get(key)
    if callable(identifier):
        return identifier
    raise TypeError(
        "Received an invalid value for argument activation, expected a name or a callable. "
        f"Received: activation={identifier!r} of type {type(identifier)}"
    )
