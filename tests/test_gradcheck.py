"""Tests for kerasnn.diagnostics.gradcheck: passes on correct gradients, fails on wrong ones."""

from __future__ import annotations

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
