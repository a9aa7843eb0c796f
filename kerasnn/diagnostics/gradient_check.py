"""Gradient check: autodiff gradients against central finite differences, in float64.

The model (or layer) is copied in float64 — same architecture, same weights, each layer rebuilt
from its own class and config, so custom layers need no registration — and run in
inference mode (dropout off, batch normalization on its moving statistics); a scalar
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


def _is_float(dtype: Any) -> bool:
    return "float" in keras.backend.standardize_dtype(dtype)


def _class_path(layer: keras.layers.Layer) -> str:
    cls = type(layer)
    return f"{cls.__module__}.{cls.__qualname__}"


def _how_to_fix(layer: keras.layers.Layer) -> str:
    name = type(layer).__name__
    return (
        f"Fix: implement {name}.get_config() to return every argument of {name}.__init__, e.g. "
        '`return {**super().get_config(), "units": self.units}` (gradcheck rebuilds each layer '
        f"as {name}.from_config(layer.get_config()) in float64, no registration needed); if the "
        "config holds other custom objects (e.g. sublayers), register their classes with "
        "@keras.saving.register_keras_serializable() so from_config can rebuild them."
    )


def _rebuild_error(layer: keras.layers.Layer, err: Exception) -> TypeError:
    # Keras's from_config wraps the constructor's error with the whole config: keep the cause.
    detail = str(err).split("Exception encountered: ")[-1].strip()
    return TypeError(
        f"gradcheck cannot copy layer {layer.name!r} (class {_class_path(layer)}) in float64: "
        f"rebuilding it from its config raised {type(err).__name__}: {detail}. "
        + _how_to_fix(layer)
    )


def _rebuild(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new, unbuilt `layer` of the user's own class, in float64 (registered or not)."""
    try:
        config = layer.get_config()
        if "dtype" in config and _is_float(layer.compute_dtype):
            config = {**config, "dtype": "float64"}
        return type(layer).from_config(config)
    except Exception as err:  # any failure to rebuild: re-raised with what to do
        raise _rebuild_error(layer, err) from err


def _copy_weights(pairs: list[tuple[keras.layers.Layer, keras.layers.Layer]]) -> None:
    """Copies every original layer's weights (floats as float64) into its float64 copy."""
    for original, copy in pairs:
        weights = original.get_weights()
        expected = [tuple(w.shape) for w in weights]
        got = [tuple(int(d) for d in w.shape) for w in copy.weights]
        if got != expected:
            raise TypeError(
                f"gradcheck cannot copy layer {original.name!r} (class {_class_path(original)}) "
                f"in float64: rebuilt from its config it has weights of shapes {got}, the "
                f"original {expected}, so get_config() leaves out a constructor argument. "
                + _how_to_fix(original)
            )
        copy.set_weights(
            [w.astype(np.float64) if np.issubdtype(w.dtype, np.floating) else w for w in weights]
        )


def _float64_input(tensor: Any) -> Any:
    """A new symbolic input like `tensor`, in float64 when it is a float tensor."""
    dtype = "float64" if _is_float(tensor.dtype) else tensor.dtype
    return keras.Input(batch_shape=tensor.shape, dtype=dtype, name=tensor.name)


def _is_graph_model(layer: keras.layers.Layer) -> bool:
    """Sequential or functional: a model whose layers `keras.models.clone_model` can clone."""
    return isinstance(layer, keras.Model) and hasattr(layer, "inputs")


def _clone(
    obj: keras.layers.Layer, pairs: list[tuple[keras.layers.Layer, keras.layers.Layer]]
) -> keras.layers.Layer:
    """`obj` rebuilt in float64, unbuilt for a plain layer; `pairs` gets (original, copy)."""
    if not _is_graph_model(obj):
        copy = _rebuild(obj)
        pairs.append((obj, copy))
        return copy
    # Cloned through an uncompiled functional view of the same layers: clone_model would
    # otherwise recompile the copy from the compile config, i.e. deserialize a custom loss or
    # metric by name. Nested models are cloned here too (not with clone_model's `recursive`):
    # their inputs must be float64 as well, or a float32 cast there would round the signal.
    if isinstance(obj, keras.Sequential):  # its .input/.output are those of its first call
        view = keras.Model(obj.inputs[0], obj.outputs[0], name=obj.name)
    else:
        view = keras.Model(obj.input, obj.output, name=obj.name)
    inputs = keras.tree.map_structure(_float64_input, view.input)
    return keras.models.clone_model(
        view, input_tensors=inputs, clone_function=lambda layer: _clone(layer, pairs)
    )


def _float64_copy(obj: keras.layers.Layer, x: np.ndarray) -> keras.layers.Layer:
    """`obj` rebuilt in float64 from its layers' own classes and configs, with its weights.

    Sequential and functional models are cloned layer by layer (`keras.models.clone_model`,
    nested models entered); any other layer or model is rebuilt from its own config. The global
    dtype policy is float64 meanwhile, so sublayers a layer creates in ``__init__`` are float64
    too. Nothing is deserialized by name: custom classes need no registration.
    """
    pairs: list[tuple[keras.layers.Layer, keras.layers.Layer]] = []
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        copy = _clone(obj, pairs)
        if not copy.built:
            copy(x)
    finally:
        keras.config.set_dtype_policy(previous)
    _copy_weights(pairs)
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
        model_or_layer: a Keras model or layer (built or not; an unbuilt layer is built on `x`),
            with custom layers registered or not (e.g. defined in a test or a notebook). It is
            copied in float64 — each layer rebuilt as
            ``type(layer).from_config(layer.get_config())`` with float64 dtype, then given the
            original's weights — so the original is not modified.
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
        TypeError: `model_or_layer` is not a Keras layer or model, or one of its layers cannot
            be rebuilt from its config (the message names the layer and its class and says
            what get_config() must return).

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
