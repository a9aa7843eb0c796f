"""Weight initializers by the lectures' names, and data-dependent initialisation.

``xavier_*`` is Glorot's scheme, ``kaiming_*`` is He's, ``small_normal`` is the lectures' "first
idea" N(0, 0.01²). All other names are Keras's own (`keras.initializers.get`), among them
``lecun_normal`` (for SELU) and ``orthogonal``.

`lsuv(model, x_batch)` (layer-sequential unit variance) works on a built model and a batch. The
activation statistics at initialisation, `init_report`, are a diagnostic:
`kerasnn.diagnostics.init_report`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from kerasnn._validation import one_of
from kerasnn.initializers._lsuv import MIN_SAMPLES as MIN_SAMPLES
from kerasnn.initializers._lsuv import LSUVLayerReport as LSUVLayerReport
from kerasnn.initializers._lsuv import lsuv as lsuv
from kerasnn.initializers._lsuv import lsuv_layers as lsuv_layers

__all__ = [
    "ALIASES",
    "MIN_SAMPLES",
    "InitializerLike",
    "LSUVLayerReport",
    "get",
    "lsuv",
    "lsuv_layers",
    "names",
]

InitializerLike = str | keras.initializers.Initializer | Callable[..., Any] | dict

# Lecture name -> (Keras class name, extra config).
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "xavier_normal": ("GlorotNormal", {}),
    "xavier_uniform": ("GlorotUniform", {}),
    "kaiming_normal": ("HeNormal", {}),
    "kaiming_uniform": ("HeUniform", {}),
    "small_normal": ("RandomNormal", {"mean": 0.0, "stddev": 0.01}),
}

# Keras names that build an initializer from the name alone ("constant" needs a value: pass
# keras.initializers.Constant(value) or a config dict instead).
_KERAS_NAMES = (
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
    "zeros",
)


def names() -> list[str]:
    """Every initializer name kerasnn accepts (Keras's names and the lecture aliases)."""
    return sorted(set(_KERAS_NAMES) | set(ALIASES))


def get(identifier: InitializerLike, *, seed: int | None = None) -> Any:
    """Returns a Keras initializer for `identifier`.

    Args:
        identifier: a name from `names()`, a `keras.initializers.Initializer`, a Keras config
            dict, or a callable ``(shape, dtype) -> tensor``.
        seed: if given and the initializer is random, a fresh copy seeded with `seed` is
            returned, so two layers built with different seeds get different weights and the
            same seed always gives the same weights. Defaults to `None` (Keras's global seed).

    Returns:
        A `keras.initializers.Initializer` (or the callable unchanged).

    Raises:
        ValueError: unknown name; the message lists the known names.

    Example:

    >>> get("small_normal").stddev
    0.01
    """
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ALIASES:
            class_name, config = ALIASES[key]
            init = keras.initializers.get({"class_name": class_name, "config": dict(config)})
        else:
            one_of("initializer", key, names())
            init = keras.initializers.get(key)
    elif isinstance(identifier, dict | keras.initializers.Initializer):
        init = keras.initializers.get(identifier)
    elif callable(identifier):
        return identifier
    else:
        raise TypeError(
            "Received an invalid value for argument initializer, expected a name, a "
            "keras.initializers.Initializer, a config dict or a callable. "
            f"Received: initializer={identifier!r} of type {type(identifier)}"
        )
    if seed is not None and "seed" in init.get_config():
        config = init.get_config() | {"seed": seed}
        init = init.__class__.from_config(config)
    return init
