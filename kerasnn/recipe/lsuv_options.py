"""The recipe's ``model.lsuv`` option: ``lsuv: true`` or ``lsuv: {samples: 512, tol: 0.05, ...}``.

`recipe_options` checks the value without Keras (a recipe is validated before TensorFlow
loads); `lsuv_from_recipe` applies it to a built model with `kerasnn.initializers.lsuv`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kerasnn._validation import invalid, positive_int

if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    import keras
    import numpy as np

    from kerasnn.initializers import LSUVLayerReport

__all__ = ["RECIPE_DEFAULTS", "lsuv_from_recipe", "recipe_options"]

RECIPE_DEFAULTS: dict[str, Any] = {
    "samples": 256,
    "tol": 0.1,
    "max_iter": 10,
    "zero_mean": False,
    "orthonormal": True,
}


def _check_options(tol: Any, max_iter: Any) -> None:
    """`kerasnn.initializers.lsuv`'s own checks of `tol` and `max_iter`, same messages (that
    module imports Keras, this one must not)."""
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise invalid("tol", "a number in (0, 1)", tol)
    positive_int("max_iter", max_iter)


def recipe_options(value: Any) -> dict[str, Any] | None:
    """Checks a recipe's ``model.lsuv`` value; returns the options, or `None` for no LSUV.

    ``false``/``null`` means no LSUV, ``true`` the defaults (`RECIPE_DEFAULTS`: the first 256
    training samples, tol 0.1, ...), a mapping overrides some of them.

    Args:
        value: the recipe's ``model.lsuv`` value.

    Returns:
        A new dict with every key of `RECIPE_DEFAULTS`, or `None`.

    Raises:
        ValueError: a value that is neither a boolean, null nor a mapping; an unknown key; a bad
            option value.

    Example:

    >>> recipe_options({"tol": 0.05})["tol"], recipe_options(False)
    (0.05, None)
    """
    if value is None or value is False:
        return None
    if value is True:
        return dict(RECIPE_DEFAULTS)
    if not isinstance(value, dict):
        raise invalid("model.lsuv", "true, false or a mapping of LSUV options", value)
    unknown = sorted(set(value) - set(RECIPE_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown recipe key model.lsuv.{unknown[0]}. Allowed keys here: "
            f"{', '.join(RECIPE_DEFAULTS)}."
        )
    options = RECIPE_DEFAULTS | value
    positive_int("model.lsuv.samples", options["samples"])
    _check_options(options["tol"], options["max_iter"])
    for key in ("zero_mean", "orthonormal"):
        if not isinstance(options[key], bool):
            raise invalid(f"model.lsuv.{key}", "true or false", options[key])
    return options


def lsuv_from_recipe(
    model: keras.Model, x_train: np.ndarray, value: Any, *, seed: int | None
) -> list[LSUVLayerReport] | None:
    """Applies a recipe's ``model.lsuv`` setting to a freshly built model.

    Args:
        model: the built model.
        x_train: the training inputs; LSUV sees the first ``samples`` of them.
        value: the recipe value (see `recipe_options`).
        seed: the recipe seed (orthonormal pre-init).

    Returns:
        The LSUV report, or `None` when the recipe does not ask for LSUV.

    Raises:
        ValueError: as `recipe_options` and `kerasnn.initializers.lsuv`.
    """
    options = recipe_options(value)
    if options is None:
        return None
    from kerasnn.initializers import lsuv  # Keras: only once a model is built

    samples = options.pop("samples")
    return lsuv(model, x_train[:samples], seed=seed, **options)
