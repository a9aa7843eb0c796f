"""Tests for LSUV (kerasnn.initializers.lsuv) on real digits data."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from helpers import invalid_message
from layer_checks import (
    FORCED_REASON,
    channels_first_message,
    force_channels_first_unsupported,
    probe_reason,
)

from kerasnn import datasets, initializers, models
from kerasnn.diagnostics import init_report
from kerasnn.initializers import MIN_SAMPLES, lsuv_layers
from kerasnn.layers import Maxout


@functools.cache
def _digits(view: str = "flat") -> datasets.Dataset:
    return datasets.load("digits", view=view)


def _output_variance(model, layer, x) -> tuple[float, np.ndarray]:
    """Recomputes a layer's output on `x` independently of lsuv's report."""
    out = keras.ops.convert_to_numpy(keras.Model(model.inputs[0], layer.output)(x, training=False))
    out = np.asarray(out, np.float64)
    return float(out.var()), out.reshape(-1, out.shape[-1]).mean(axis=0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_ten_layer_mlp_every_layer_reaches_unit_variance(activation):
    data = _digits()
    x = data.x_train[:256]
    model = models.mlp(data, [64] * 10, activation=activation, initializer="small_normal", seed=0)
    layers = lsuv_layers(model)
    assert len(layers) == 11  # 10 hidden + output
    before = [_output_variance(model, layer, x)[0] for layer in layers]
    assert before[-1] < 1e-6  # N(0, 0.01) weights: the signal has vanished by the output

    report = initializers.lsuv(model, x, tol=0.1, seed=0)

    assert [r.name for r in report] == [layer.name for layer in layers]
    for r, layer in zip(report, layers, strict=True):
        variance, _ = _output_variance(model, layer, x)
        assert abs(variance - 1.0) <= 0.1, (layer.name, variance)
        assert r.converged and r.variance_after == pytest.approx(variance, rel=1e-5)
        assert 0 <= r.iterations <= 10
    # the activations themselves no longer shrink with depth
    stats = init_report(model, x)
    assert 0.5 < stats.std_ratio < 2.0


def test_on_data_it_was_not_fitted_on_variance_stays_close():
    data = _digits()
    model = models.mlp(data, [64] * 4, activation="relu", seed=0)
    initializers.lsuv(model, data.x_train[:512], tol=0.05)
    for layer in lsuv_layers(model):
        variance, _ = _output_variance(model, layer, data.x_test)
        assert abs(variance - 1.0) < 0.3, (layer.name, variance)


def test_orthonormal_pre_init_then_one_scale_per_layer():
    data = _digits()
    model = models.mlp(data, [32], activation="tanh")
    report = initializers.lsuv(model, data.x_train[:256], seed=1)
    kernel = model.get_layer("dense_1").kernel.numpy().astype(np.float64)  # (64, 32)
    gram = kernel.T @ kernel
    scale2 = report[0].scale ** 2
    np.testing.assert_allclose(gram, scale2 * np.eye(32), atol=1e-5 * max(1.0, scale2))
    assert report[0].to_dict()["name"] == "dense_1"


def test_zero_mean_through_the_bias():
    data = _digits()
    model = models.mlp(data, [32, 32], activation="relu")
    x = data.x_train[:256]
    initializers.lsuv(model, x, zero_mean=True)
    for layer in lsuv_layers(model):
        variance, channel_mean = _output_variance(model, layer, x)
        assert abs(variance - 1.0) <= 0.1
        np.testing.assert_allclose(channel_mean, 0.0, atol=1e-5)


def _channels_first_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Permute((3, 1, 2))(inputs)  # (1, 8, 8): channels first
    h = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv_cf")(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, Maxout(6, pieces=3, name="maxout")(h))


def test_zero_mean_on_maxout_and_channels_first_conv():
    x = _digits("image").x_train[:64]
    model = _channels_first_model()
    reason = probe_reason("conv", 2)
    if reason is not None:  # e.g. x86-64 CPUs without oneDNN: kerasnn's error, not TF's
        kernel = model.get_layer("conv_cf").kernel.numpy()
        with pytest.raises(
            ValueError, match=channels_first_message("conv_cf", "Conv2D", reason=reason)
        ):
            initializers.lsuv(model, x, zero_mean=True)
        np.testing.assert_array_equal(model.get_layer("conv_cf").kernel.numpy(), kernel)
        return
    initializers.lsuv(model, x, zero_mean=True)
    conv_out = keras.ops.convert_to_numpy(
        keras.Model(model.inputs[0], model.get_layer("conv_cf").output)(x)
    )
    np.testing.assert_allclose(conv_out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    for name in ("conv_cf", "maxout"):
        variance, channel_mean = _output_variance(model, model.get_layer(name), x)
        assert abs(variance - 1.0) <= 0.1
        if name == "maxout":
            np.testing.assert_allclose(channel_mean, 0.0, atol=1e-5)


def test_channels_first_refused_before_any_weight_changes_where_unsupported(monkeypatch):
    calls = force_channels_first_unsupported(monkeypatch)
    x = _digits("image").x_train[:64]
    model = _channels_first_model()
    before = [w.copy() for w in model.get_weights()]
    message = channels_first_message("conv_cf", "Conv2D", reason=FORCED_REASON)
    with pytest.raises(ValueError, match=message):
        initializers.lsuv(model, x, zero_mean=True)
    for w, old in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, old)
    assert [c[:2] for c in calls] == [("conv", 2)]
    # a channels_last model is not probed and initialises as usual
    data = _digits("image")
    report = initializers.lsuv(models.cnn(data, [4], dense=[]), data.x_train[:64])
    assert len(calls) == 1 and all(r.converged for r in report)


def test_keeps_weights_without_orthonormal_and_stops_at_max_iter():
    inputs = keras.Input((64,))
    h = keras.layers.Dense(32, activation="tanh", name="fused_tanh")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(h))
    x = _digits().x_train[:128]
    kernel = model.get_layer("fused_tanh").kernel.numpy()
    # tanh outputs have variance < 1: tol=0.01 cannot be reached in 2 rescalings
    report = initializers.lsuv(model, x, tol=0.01, max_iter=2, orthonormal=False)
    first = report[0]
    assert not first.converged and first.iterations == 2
    np.testing.assert_allclose(
        model.get_layer("fused_tanh").kernel.numpy(), kernel * first.scale, rtol=1e-5
    )
    assert report[1].converged


def test_hand_built_conv_functional_and_sequential_models():
    data = _digits("image")
    x = data.x_train[:64]
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    h = keras.layers.SeparableConv2D(8, 3, name="sep")(h)
    h = keras.layers.Flatten()(h)
    functional = keras.Model(inputs, keras.layers.Dense(10, name="dense")(h))
    sequential = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), Maxout(5, 3)]
    )
    for model in (functional, sequential, models.cnn(data, [4, 8], dense=[16])):
        report = initializers.lsuv(model, x)
        assert len(report) == len(lsuv_layers(model)) >= 2
        for layer in lsuv_layers(model):
            variance, _ = _output_variance(model, layer, x)
            assert abs(variance - 1.0) <= 0.1, (model.name, layer.name, variance)


# --- bad input ----------------------------------------------------------------------------------


_msg = invalid_message


def _two_inputs() -> keras.Model:
    a, b = keras.Input((64,)), keras.Input((64,))
    out = keras.layers.Dense(3)(keras.layers.Concatenate()([a, b]))
    return keras.Model([a, b], out, name="two")


class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3)

    def call(self, x):
        return self.dense(x)


def test_bad_input():
    model = models.mlp((64,), [8], 10)
    x = _digits().x_train[:64]
    cases = [
        (
            lambda: initializers.lsuv(
                keras.Sequential([keras.Input((4,)), keras.layers.Activation("tanh")], name="act"),
                x[:, :4],
            ),
            _msg(
                "model",
                "a model with at least one Dense, Conv or Maxout layer",
                "model='act' with layers ['activation']",
            ),
        ),
        (
            lambda: initializers.lsuv(model, x[:, :32]),
            _msg(
                "x_batch",
                "an array of shape (batch, 64) (the model's input shape)",
                "x_batch with shape (64, 32)",
            ),
        ),
        (
            lambda: initializers.lsuv(model, x[0]),
            _msg(
                "x_batch",
                "an array of shape (batch, 64) (the model's input shape)",
                "x_batch with shape (64,)",
            ),
        ),
        (
            lambda: initializers.lsuv(model, x[: MIN_SAMPLES - 1]),
            _msg(
                "x_batch",
                "at least 16 samples (a variance from fewer is too noisy to scale weights by)",
                "x_batch with 15 samples",
            ),
        ),
        (
            lambda: initializers.lsuv(model, np.where(x > 1, np.nan, x)),
            _msg("x_batch", "finite values", "x_batch containing NaN or inf"),
        ),
        (lambda: initializers.lsuv(model, x, tol=0), _msg("tol", "a number in (0, 1)", "tol=0")),
        (
            lambda: initializers.lsuv(_two_inputs(), x),
            _msg("model", "a model with one input", "model='two' with 2 inputs"),
        ),
        (
            lambda: initializers.lsuv(_Subclassed(name="sub"), x),
            _msg(
                "model",
                "a built Sequential or functional model (layer outputs must be reachable from "
                "model.inputs)",
                "model='sub' of type _Subclassed",
            ),
        ),
        (
            lambda: initializers.lsuv(model, x, tol=1.5),
            _msg("tol", "a number in (0, 1)", "tol=1.5"),
        ),
        (
            lambda: initializers.lsuv(model, x, max_iter=0),
            _msg("max_iter", "a positive integer", "max_iter=0"),
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
