"""Tests for kerasnn.diagnostics.gradcheck (module gradient_check): passes on correct gradients,
fails on wrong ones."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from helpers import invalid_message

from kerasnn import models
from kerasnn.diagnostics import gradcheck
from kerasnn.layers import PELU, Maxout, MaxoutChannels

X = np.random.default_rng(0).normal(size=(6, 5))


# (id, model or layer) — every custom layer, alone or where its gradient flows into weights.
CORRECT = [
    ("maxout", lambda: Maxout(3, pieces=2, bias_initializer="random_normal")),
    ("maxout-k5", lambda: Maxout(2, pieces=5, kernel_regularizer="l2")),
    (
        "maxout-channels",
        lambda: keras.Sequential(
            [keras.Input((5,)), keras.layers.Dense(6), MaxoutChannels(num_units=3)]
        ),
    ),
    (
        "maxout-channels-conv",
        lambda: keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Reshape((5, 1)),
                keras.layers.Conv1D(4, 2),
                MaxoutChannels(pieces=2),
            ]
        ),
    ),
    ("pelu", lambda: PELU(a=1.5, b=0.7)),
    ("pelu-channelwise", lambda: PELU(a=0.8, b=2.0, channelwise=True)),
    ("mlp-pelu", lambda: models.mlp((5,), [4], 3, activation="pelu")),
    ("mlp-maxout", lambda: models.mlp((5,), [4], 3, activation="maxout")),
]


@pytest.mark.parametrize("make", [r[1] for r in CORRECT], ids=[r[0] for r in CORRECT])
def test_correct_gradients_pass(make):
    net = make()
    result = gradcheck(net, X)
    assert result.passed, result.format()
    assert bool(result)
    assert result.max_rel_error < 1e-6
    assert len(result.variables) == len(net.trainable_weights)
    assert all(v.checked == int(np.prod(v.shape)) for v in result.variables)


def test_with_targets_and_loss():
    model = models.mlp((5,), [4], 3, activation="tanh")
    y = np.array([0, 1, 2, 0, 1, 2])
    result = gradcheck(model, X, y, loss="sparse_categorical_crossentropy")
    assert result.passed, result.format()
    result = gradcheck(models.mlp((5,), [4], 2, task="regression"), X, np.ones((6, 2)))
    assert result.passed, result.format()


def test_original_is_not_modified_and_runs_in_float64():
    layer = Maxout(2, pieces=2)
    layer.build((None, 5))
    before = [w.copy() for w in layer.get_weights()]
    result = gradcheck(layer, X)
    for w, old in zip(layer.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, old)
        assert w.dtype == np.float32
    # float32 finite differences with eps=1e-6 would be pure round-off (errors of order 1).
    assert result.max_rel_error < 1e-7


def test_large_model_is_sampled():
    model = models.mlp((64,), [128, 128], 10)
    x = np.random.default_rng(1).normal(size=(4, 64))
    result = gradcheck(model, x, max_params=60, seed=3)
    assert result.passed, result.format()
    total = sum(v.checked for v in result.variables)
    assert len(result.variables) == 6 and total <= 60
    assert all(v.checked >= 1 for v in result.variables)
    kernel = result.variables[0]
    assert kernel.shape == (64, 128) and kernel.checked == 60 * 64 * 128 // model.count_params()


@keras.saving.register_keras_serializable(package="kerasnn_tests")
class BuggyTanh(keras.layers.Layer):
    """tanh with a wrong custom gradient: 1 - y instead of 1 - y²."""

    def call(self, x):
        @keras.ops.custom_gradient
        def wrong_tanh(x):
            y = keras.ops.tanh(x)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return upstream * (1.0 - y)

            return y, grad

        return wrong_tanh(x)


@keras.saving.register_keras_serializable(package="kerasnn_tests")
class RightTanh(BuggyTanh):
    """The same custom-gradient path with the right derivative (control)."""

    def call(self, x):
        @keras.ops.custom_gradient
        def right_tanh(x):
            y = keras.ops.tanh(x)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return upstream * (1.0 - y * y)

            return y, grad

        return right_tanh(x)


def _with(activation_layer):
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), activation_layer])


def test_a_wrong_custom_gradient_fails():
    result = gradcheck(_with(BuggyTanh()), X)
    assert not result.passed
    assert not bool(result)
    assert all(not v.passed for v in result.variables)
    assert result.max_rel_error > 1e-2
    assert "FAILED" in result.format() and "FAIL " in result.format()
    control = gradcheck(_with(RightTanh()), X)
    assert control.passed, control.format()


def test_result_to_dict():
    d = gradcheck(Maxout(2), X).to_dict()
    assert d["passed"] is True and d["eps"] == 1e-6 and d["tol"] == 1e-4
    assert [v["name"] for v in d["variables"]] == ["maxout/kernel", "maxout/bias"]


_msg = invalid_message


def test_no_trainable_weights_is_refused():
    with pytest.raises(
        ValueError,
        match=_msg(
            "model_or_layer",
            "a model or layer with trainable weights (there is nothing to check)",
            "model_or_layer='maxout_channels' with 0 trainable weights",
        ),
    ):
        gradcheck(MaxoutChannels(pieces=5, name="maxout_channels"), X)
    frozen = models.mlp((5,), [4], 3, name="frozen")
    frozen.trainable = False
    with pytest.raises(ValueError, match="model_or_layer='frozen' with 0 trainable weights"):
        gradcheck(frozen, X)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.0}, _msg("eps", "a number > 0", "eps=0.0")),
        ({"tol": -1}, _msg("tol", "a number > 0", "tol=-1")),
        ({"atol": "x"}, _msg("atol", "a number > 0", "atol='x'")),
        ({"max_params": 0}, _msg("max_params", "a positive integer", "max_params=0")),
        ({"x": "abc"}, _msg("x", "a numeric array", "x='abc'")),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs = {"x": X} | kwargs
    with pytest.raises(ValueError, match=message):
        gradcheck(Maxout(2), **kwargs)


def test_not_a_layer_is_a_type_error():
    with pytest.raises(TypeError, match=r"expected a keras.Model or keras.layers.Layer"):
        gradcheck(lambda x: x, X)


# --- layers that are not registered (defined in a test or a notebook) ---------------------------


@pytest.mark.parametrize("wrap", ["alone", "sequential", "functional", "nested"])
def test_an_unregistered_layer_is_checked_with_its_own_gradient(wrap):
    class Softsign(keras.layers.Layer):  # not registered: defined here, as in a notebook
        """softsign(x @ kernel), its gradient by hand: 1 / (1 + |z|)², or (wrong) 1 / (1 + |z|)."""

        def __init__(self, units, wrong=False, **kwargs):
            super().__init__(**kwargs)
            self.units, self.wrong = units, wrong

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

        def call(self, x):
            wrong = self.wrong

            @keras.ops.custom_gradient
            def softsign(z):
                a = 1.0 + keras.ops.abs(z)

                def grad(*args, upstream=None):
                    if upstream is None:
                        (upstream,) = args
                    return upstream / (a if wrong else a * a)

                return z / a, grad

            return softsign(keras.ops.matmul(x, self.kernel))

        def get_config(self):
            return {**super().get_config(), "units": self.units, "wrong": self.wrong}

    assert keras.saving.get_registered_object(keras.saving.get_registered_name(Softsign)) is None

    def make(wrong: bool) -> keras.layers.Layer:
        layer = Softsign(3, wrong=wrong, name="softsign")
        if wrap == "alone":
            return layer
        if wrap == "sequential":
            return keras.Sequential(
                [keras.Input((5,)), keras.layers.Dense(4, name="before"), layer]
            )
        inputs = keras.Input((5,))
        h = keras.layers.Dense(4, name="before")(inputs)
        if wrap == "nested":
            layer = keras.Sequential([keras.Input((4,)), layer], name="inner")
        return keras.Model(inputs, keras.layers.Dense(2, name="after")(layer(h)))

    def owners(result, passed):
        return sorted({v.name.split("/")[-2] for v in result.variables if v.passed is passed})

    right = gradcheck(make(wrong=False), X)
    assert right.passed, right.format()
    assert right.max_rel_error < 1e-6  # float64 finite differences: the copy is float64
    wrong = gradcheck(make(wrong=True), X)
    assert not wrong.passed and wrong.max_rel_error > 1e-2
    # the wrong derivative corrupts the gradients of the weights before it, not after it
    expected_failed = {"alone": ["softsign"]}.get(wrap, ["before", "softsign"])
    assert owners(wrong, False) == expected_failed
    assert owners(wrong, True) == ([] if wrap in ("alone", "sequential") else ["after"])


def test_unregistered_subclassed_model_and_compiled_model_with_a_local_loss():
    class TwoLayer(keras.Model):  # its Dense layers are created in __init__
        def __init__(self, hidden, **kwargs):
            super().__init__(**kwargs)
            self.hidden = hidden
            self.first = keras.layers.Dense(hidden, activation="tanh")
            self.second = keras.layers.Dense(2)

        def call(self, x):
            return self.second(self.first(x))

        def get_config(self):
            return {**super().get_config(), "hidden": self.hidden}

    result = gradcheck(TwoLayer(3), X)
    assert result.passed and result.max_rel_error < 1e-6, result.format()  # float64 sublayers
    assert [v.shape for v in result.variables] == [(5, 3), (3,), (3, 2), (2,)]

    def local_loss(y_true, y_pred):  # compiled with a loss Keras cannot deserialize by name
        return keras.ops.mean(keras.ops.abs(y_true - y_pred))

    model = models.mlp((5,), [4], 3)
    model.compile("sgd", local_loss)
    result = gradcheck(model, X)
    assert result.passed, result.format()
    assert model.loss is local_loss


def _fix(cls_name: str) -> str:
    return (
        f"Fix: implement {cls_name}.get_config() to return every argument of {cls_name}.__init__, "
        'e.g. `return {**super().get_config(), "units": self.units}` (gradcheck rebuilds each '
        f"layer as {cls_name}.from_config(layer.get_config()) in float64, no registration "
        "needed); if the config holds other custom objects (e.g. sublayers), register their "
        "classes with @keras.saving.register_keras_serializable() so from_config can rebuild "
        "them."
    )


def test_an_incomplete_get_config_is_a_clear_error():
    class Scaled(keras.layers.Layer):
        def __init__(self, units, scale=2.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.scale = units, scale

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

        def call(self, x):
            return self.scale * keras.ops.matmul(x, self.kernel)

        def get_config(self):
            return {**super().get_config(), "scale": self.scale}  # forgets units

    where = f"layer 'scaled' (class {Scaled.__module__}.{Scaled.__qualname__})"
    message = (
        "^"
        + re.escape(
            f"gradcheck cannot copy {where} in float64: rebuilding it from its config raised "
            f"TypeError: {Scaled.__qualname__}.__init__() missing 1 required positional argument: "
            f"'units'. {_fix('Scaled')}"
        )
        + "$"
    )
    with pytest.raises(TypeError, match=message):
        gradcheck(keras.Sequential([keras.Input((5,)), Scaled(3, name="scaled")]), X)
    with pytest.raises(TypeError, match=message):
        gradcheck(Scaled(3, name="scaled"), X)


def test_a_get_config_that_drops_a_defaulted_argument_is_caught_by_the_weights():
    class Wide(keras.layers.Layer):
        def __init__(self, units=2, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

        def call(self, x):
            return keras.ops.matmul(x, self.kernel)

        def get_config(self):
            return super().get_config()  # forgets units: rebuilt with the default, 2

    where = f"layer 'wide' (class {Wide.__module__}.{Wide.__qualname__})"
    message = (
        "^"
        + re.escape(
            f"gradcheck cannot copy {where} in float64: rebuilt from its config it has weights of "
            f"shapes [(5, 2)], the original [(5, 4)], so get_config() leaves out a constructor "
            f"argument. {_fix('Wide')}"
        )
        + "$"
    )
    inputs = keras.Input((5,))
    with pytest.raises(TypeError, match=message):
        gradcheck(keras.Model(inputs, Wide(4, name="wide")(inputs)), X)
