"""Gradient check: autodiff gradients against central finite differences, in float64.

The model (or layer) is copied in float64 — same architecture, same weights — and a scalar
objective ``L`` is formed from its output: the given loss against `y`, or, without `y`, a fixed
random projection ``sum(R * f(x))`` so every output contributes. For each (sampled) parameter
``w_i`` the numerical derivative is ``(L(w_i + eps) - L(w_i - eps)) / (2 eps)`` and the error is
``|g_autodiff - g_numeric| / max(|g_autodiff|, |g_numeric|, atol)``: relative, except for
gradients below `atol`, which are compared absolutely (their finite difference is mostly
round-off). A correct float64 gradient gives errors around 1e-8 with the defaults; a wrong one
gives errors of order 1.

This module uses `tf.GradientTape` (TensorFlow backend).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

from kerasnn._validation import invalid, positive_int

__all__ = ["GradcheckResult", "VariableCheck", "gradcheck"]


@dataclasses.dataclass(frozen=True)
class VariableCheck:
    """The check of one trainable variable.

    Attributes:
        name: the variable's path, e.g. ``"maxout/kernel"``.
        shape: the variable's shape.
        checked: number of entries compared (all of them, or a seeded sample).
        max_rel_error: the largest error over the checked entries (see the module docstring).
        max_abs_error: the largest ``|g_autodiff - g_numeric|``.
        passed: ``max_rel_error <= tol``.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    max_rel_error: float
    max_abs_error: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class GradcheckResult:
    """What `gradcheck` found.

    Attributes:
        variables: one `VariableCheck` per trainable variable.
        eps: the finite-difference step.
        tol: the pass threshold on the error.
        passed: every variable passed.
        max_rel_error: the largest error over all variables.
    """

    variables: list[VariableCheck]
    eps: float
    tol: float

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.variables)

    @property
    def max_rel_error(self) -> float:
        return max(v.max_rel_error for v in self.variables)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "passed": self.passed,
            "max_rel_error": self.max_rel_error,
            "eps": self.eps,
            "tol": self.tol,
            "variables": [dataclasses.asdict(v) for v in self.variables],
        }

    def format(self) -> str:
        """A plain-text table, one line per variable."""
        rows = [f"gradcheck {'passed' if self.passed else 'FAILED'} (tol {self.tol:g})"]
        for v in self.variables:
            mark = "ok  " if v.passed else "FAIL"
            rows.append(
                f"  {mark} {v.name:<40} {v.shape!s:<16} checked {v.checked:>5}  "
                f"max rel err {v.max_rel_error:.2e}"
            )
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.format()


def _to_float64(obj: Any) -> Any:
    """A serialized Keras object with every float dtype / dtype policy replaced by float64."""
    if isinstance(obj, list):
        return [_to_float64(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        if key == "dtype" and isinstance(value, str) and "float" in value:
            out[key] = "float64"
        elif key == "dtype" and isinstance(value, dict) and "Policy" in value.get("class_name", ""):
            out[key] = {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float64"},
            }
        else:
            out[key] = _to_float64(value)
    return out


def _float64_copy(obj: keras.layers.Layer, x: np.ndarray) -> keras.layers.Layer:
    config = _to_float64(keras.saving.serialize_keras_object(obj))
    copy = keras.saving.deserialize_keras_object(config)
    if not copy.built:
        copy(x)
    copy.set_weights([np.asarray(w, dtype=np.float64) for w in obj.get_weights()])
    return copy


def _positive_float(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise invalid(argument, "a number > 0", value)
    return float(value)


def gradcheck(
    model_or_layer: keras.layers.Layer,
    x: Any,
    y: Any = None,
    *,
    eps: float = 1e-6,
    loss: Any = None,
    max_params: int = 256,
    tol: float = 1e-4,
    atol: float = 1e-6,
    seed: int = 0,
) -> GradcheckResult:
    """Compares autodiff gradients with central finite differences, in float64.

    Args:
        model_or_layer: a Keras model or layer (built or not; an unbuilt layer is built on `x`).
            It is copied in float64; the original is not modified.
        x: an input batch (float values).
        y: targets for `loss`. Defaults to `None`: the objective is ``sum(R * output)`` with a
            fixed standard-normal `R` (seeded by `seed`).
        eps: finite-difference step. Must be > 0. Defaults to 1e-6.
        loss: a Keras loss name, function or `keras.losses.Loss`, used with `y`. Defaults to
            `None`: mean squared error when `y` is given. Regularization losses of the model
            are added in both cases.
        max_params: at most this many parameter entries are checked (two forward passes each);
            beyond it a seeded sample, spread over the variables by size (at least one entry per
            variable). Defaults to 256.
        tol: a variable passes when its largest error is <= `tol`. Defaults to 1e-4.
        atol: gradients below `atol` are compared absolutely. Defaults to 1e-6.
        seed: seeds the projection `R` and the parameter sample. Defaults to 0.

    Returns:
        A `GradcheckResult` (truthy when it passed; print it for a table).

    Raises:
        ValueError: `model_or_layer` has no trainable weights, `x` is not a numeric array, a
            non-positive `eps`/`tol`/`atol`, or `max_params` not a positive integer.
        TypeError: `model_or_layer` is not a Keras layer or model.

    Example:

    >>> result = gradcheck(kerasnn.layers.Maxout(3, pieces=2), np.random.rand(4, 5))
    ... # doctest: +SKIP
    >>> result.passed
    True
    """
    import tensorflow as tf

    if not isinstance(model_or_layer, keras.layers.Layer):
        raise TypeError(
            "Received an invalid value for argument model_or_layer, expected a keras.Model or "
            f"keras.layers.Layer. Received: model_or_layer={model_or_layer!r} of type "
            f"{type(model_or_layer).__name__}"
        )
    eps = _positive_float("eps", eps)
    tol = _positive_float("tol", tol)
    atol = _positive_float("atol", atol)
    positive_int("max_params", max_params)
    try:
        x64 = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise invalid("x", "a numeric array", x) from err
    if not model_or_layer.built:
        model_or_layer(x64.astype(np.float32))
    if not model_or_layer.trainable_weights:
        raise ValueError(
            "Received an invalid value for argument model_or_layer, expected a model or layer "
            "with trainable weights (there is nothing to check). Received: model_or_layer="
            f"{model_or_layer.name!r} with 0 trainable weights"
        )

    net = _float64_copy(model_or_layer, x64)
    rng = np.random.default_rng(seed)
    x_t = tf.constant(x64)
    if y is None:
        out_shape = tuple(net(x_t, training=False).shape)
        projection = tf.constant(rng.standard_normal(out_shape))

        def objective_of(out: Any) -> Any:
            return tf.reduce_sum(projection * out)
    else:
        loss_fn = keras.losses.get("mean_squared_error" if loss is None else loss)
        y_t = tf.constant(np.asarray(y, dtype=np.float64))

        def objective_of(out: Any) -> Any:
            return tf.reduce_mean(tf.cast(loss_fn(y_t, out), tf.float64))

    def objective() -> Any:
        value = objective_of(net(x_t, training=False))
        for extra in net.losses:
            value = value + tf.cast(extra, tf.float64)
        return value

    variables = list(net.trainable_variables)
    with tf.GradientTape() as tape:
        value = objective()
    analytic = tape.gradient(value, variables)
    evaluate = tf.function(objective)

    sizes = [int(np.prod(v.shape)) for v in variables]
    total = sum(sizes)
    checks = []
    for variable, size, grad in zip(variables, sizes, analytic, strict=True):
        grad = np.zeros(size) if grad is None else np.asarray(grad, np.float64).reshape(-1)
        if total <= max_params:
            indices = np.arange(size)
        else:
            n = min(size, max(1, math.floor(max_params * size / total)))
            indices = np.sort(rng.choice(size, size=n, replace=False))
        original = np.asarray(variable.numpy(), np.float64)
        flat = original.reshape(-1).copy()
        numeric = np.empty(len(indices))
        for j, i in enumerate(indices):
            flat[i] = original.flat[i] + eps
            variable.assign(flat.reshape(original.shape))
            plus = float(evaluate())
            flat[i] = original.flat[i] - eps
            variable.assign(flat.reshape(original.shape))
            minus = float(evaluate())
            flat[i] = original.flat[i]
            numeric[j] = (plus - minus) / (2.0 * eps)
        variable.assign(original)
        auto = grad[indices]
        abs_err = np.abs(auto - numeric)
        rel_err = abs_err / np.maximum(np.maximum(np.abs(auto), np.abs(numeric)), atol)
        max_rel = float(rel_err.max())
        checks.append(
            VariableCheck(
                name=variable.path,
                shape=tuple(int(d) for d in variable.shape),
                checked=len(indices),
                max_rel_error=max_rel,
                max_abs_error=float(abs_err.max()),
                passed=max_rel <= tol,
            )
        )
    return GradcheckResult(variables=checks, eps=eps, tol=tol)
