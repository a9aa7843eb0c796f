"""Tests for kerasnn.layers: the shared layer checks, NumPy references, builders, errors."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from helpers import invalid_message
from layer_checks import run_layer_test

import kerasnn as knn
from kerasnn import activations, models
from kerasnn.layers import PELU, Maxout, MaxoutChannels, MinValue


def _np(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


# --- the shared checks on every custom layer ------------------------------------------------

# (id, factory, input shape, output shape, check the SavedModel export)
LAYERS = [
    ("maxout", lambda **kw: Maxout(3, pieces=2, **kw), (4, 5), (4, 3), True),
    (
        "maxout-k5-maxnorm-l2",
        lambda **kw: Maxout(
            2,
            pieces=5,
            kernel_constraint=keras.constraints.MaxNorm(2.0),
            kernel_regularizer=keras.regularizers.L2(1e-3),
            bias_initializer="ones",
            **kw,
        ),
        (4, 6),
        (4, 2),
        False,
    ),
    ("maxout-3d-input", lambda **kw: Maxout(4, pieces=3, **kw), (2, 3, 5), (2, 3, 4), False),
    ("maxout-channels", lambda **kw: MaxoutChannels(2, **kw), (2, 4, 4, 6), (2, 4, 4, 2), True),
    (
        "maxout-channels-pieces-axis1",
        lambda **kw: MaxoutChannels(pieces=3, axis=1, **kw),
        (2, 6, 4),
        (2, 2, 4),
        False,
    ),
    ("pelu", lambda **kw: PELU(**kw), (4, 5), (4, 5), True),
    (
        "pelu-channelwise",
        lambda **kw: PELU(a=2.0, b=0.5, channelwise=True, **kw),
        (2, 3, 3, 4),
        (2, 3, 3, 4),
        False,
    ),
]


@pytest.mark.parametrize(
    ("make", "input_shape", "output_shape", "export"),
    [row[1:] for row in LAYERS],
    ids=[row[0] for row in LAYERS],
)
def test_layer_checks(make, input_shape, output_shape, export, tmp_path):
    run_layer_test(make, input_shape, output_shape, tmp_path, export=export)


# --- NumPy references ---------------------------------------------------------------------------


def _maxout_reference(x, kernel, bias, units, pieces):
    """h_j = max_i (x @ W[:, i*units + j] + b[i*units + j]), written as explicit loops."""
    z = x @ kernel + bias
    out = np.empty((*x.shape[:-1], units))
    for j in range(units):
        out[..., j] = np.max([z[..., i * units + j] for i in range(pieces)], axis=0)
    return out


@pytest.mark.parametrize(("units", "pieces"), [(3, 2), (4, 5), (2, 1)])
def test_maxout_matches_numpy(units, pieces):
    x = np.random.default_rng(0).normal(size=(7, 6)).astype("float32")
    layer = Maxout(units, pieces=pieces, bias_initializer="random_normal")
    out = _np(layer(x))
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    np.testing.assert_allclose(
        out, _maxout_reference(x.astype(np.float64), kernel, bias, units, pieces), rtol=1e-5
    )
    assert layer.count_params() == pieces * (6 + 1) * units


def test_maxout_channels_groups_are_strided():
    """C channels, U units: output j is the max of channels j, j + U, j + 2U, ..."""
    x = np.array([[1.0, 5.0, 2.0, 0.0, 3.0, 4.0]], dtype="float32")
    np.testing.assert_array_equal(_np(MaxoutChannels(3)(x)), [[1.0, 5.0, 4.0]])  # (1,0)(5,3)(2,4)
    np.testing.assert_array_equal(_np(MaxoutChannels(2)(x)), [[3.0, 5.0]])  # (1,2,3)(5,0,4)
    np.testing.assert_array_equal(_np(MaxoutChannels(pieces=2)(x)), [[1.0, 5.0, 4.0]])
    np.testing.assert_array_equal(_np(MaxoutChannels()(x)), [[1.0, 5.0, 4.0]])  # pieces=2
    np.testing.assert_array_equal(_np(MaxoutChannels(pieces=3)(x)), [[3.0, 5.0]])
    np.testing.assert_array_equal(_np(MaxoutChannels(6)(x)), x)  # groups of one: identity


@pytest.mark.parametrize("axis", [1, 2, 3, -1, -2])
def test_maxout_channels_matches_numpy_on_any_axis(axis):
    x = np.random.default_rng(1).normal(size=(2, 6, 3, 6)).astype("float32")
    out = _np(MaxoutChannels(pieces=3, axis=axis)(x))
    ax = axis % 4
    units = x.shape[ax] // 3
    groups = [
        np.take(x, [j + i * units for i in range(3)], axis=ax).max(axis=ax) for j in range(units)
    ]
    np.testing.assert_allclose(out, np.stack(groups, axis=ax), rtol=0)


def test_maxout_equals_dense_then_maxout_channels():
    x = np.random.default_rng(2).normal(size=(5, 8)).astype("float32")
    maxout = Maxout(4, pieces=3)
    dense = keras.layers.Dense(12)
    dense.build((None, 8))
    maxout.build((None, 8))
    dense.set_weights(maxout.get_weights())
    np.testing.assert_allclose(
        _np(maxout(x)), _np(MaxoutChannels(num_units=4)(dense(x))), rtol=1e-6
    )


def _pelu_reference(x, a, b):
    return np.where(x >= 0, a / b * x, a * np.expm1(x / b))


@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (2.0, 0.5), (0.3, 3.0)])
def test_pelu_matches_numpy(a, b):
    x = np.linspace(-6, 6, 49).astype("float32").reshape(7, 7)
    out = _np(PELU(a=a, b=b)(x))
    np.testing.assert_allclose(
        out, _pelu_reference(x.astype(np.float64), a, b), rtol=1e-5, atol=1e-6
    )


def test_pelu_special_cases_elu_and_celu():
    x = np.linspace(-5, 5, 21).astype("float32")
    np.testing.assert_allclose(_np(PELU()(x)), _np(keras.activations.elu(x)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        _np(PELU(a=1.7, b=1.7)(x)), _np(keras.activations.celu(x, alpha=1.7)), rtol=1e-5, atol=1e-6
    )


def test_elu_family_by_name_matches_numpy():
    x = np.linspace(-5, 5, 21).astype("float32")[None]
    x64 = x.astype(np.float64)
    references = {
        "elu": np.where(x64 > 0, x64, np.expm1(x64)),
        "celu": np.maximum(x64, 0) + np.minimum(0, np.expm1(x64)),  # alpha = 1
        "pelu": np.where(x64 >= 0, x64, np.expm1(x64)),  # a = b = 1 at initialisation
    }
    for name, expected in references.items():
        out = _np(activations.layer(name)(x))
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_pelu_channelwise_parameters_and_no_overflow():
    layer = PELU(channelwise=True)
    x = np.array([[-1000.0, 1000.0, -1.0]], dtype="float32")
    layer.build(x.shape)
    assert [tuple(w.shape) for w in layer.weights] == [(3,), (3,)]
    layer.set_weights([np.array([1.0, 2.0, 3.0], "float32"), np.array([1.0, 4.0, 0.5], "float32")])
    out = _np(layer(x))
    np.testing.assert_allclose(out, [[-1.0, 500.0, 3.0 * np.expm1(-2.0)]], rtol=1e-6)


def test_pelu_parameters_stay_positive_after_training():
    """A loss pushing a and b below zero: the MinValue constraint holds them at min_value."""
    inputs = keras.Input((1,))
    layer = PELU(min_value=0.2)
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(10.0), "mse")
    x = np.full((8, 1), -1.0, "float32")
    model.fit(x, np.full((8, 1), 0.0, "float32"), epochs=3, verbose=0)
    a, b = (float(_np(w)) for w in layer.weights)
    assert a == pytest.approx(0.2) and b >= 0.2
    np.testing.assert_allclose(_np(MinValue(0.1)(np.array([-1.0, 0.05, 2.0]))), [0.1, 0.1, 2.0])
    assert MinValue.from_config(MinValue(0.3).get_config()).min_value == 0.3


def test_pelu_trainable_b_false_is_an_elu_with_trainable_alpha():
    layer = PELU(a=1.5, trainable_b=False)
    layer.build((None, 3))
    assert [w.path for w in layer.trainable_weights] == [layer.a.path]
    assert [w.path for w in layer.non_trainable_weights] == [layer.b.path]


def test_max_norm_caps_each_piece_after_a_step():
    inputs = keras.Input((10,))
    layer = Maxout(3, pieces=2, kernel_constraint=keras.constraints.MaxNorm(0.5))
    model = keras.Model(inputs, layer(inputs))
    layer.kernel.assign(np.full((10, 6), 1.0, "float32"))  # column norms sqrt(10) > 0.5
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    model.train_on_batch(np.ones((4, 10), "float32"), np.zeros((4, 3), "float32"))
    norms = np.linalg.norm(_np(layer.kernel), axis=0)
    np.testing.assert_allclose(norms, 0.5, rtol=1e-5)


# --- by name in builders and recipes ------------------------------------------------------------


def test_names_are_registered():
    assert {"maxout", "pelu", "elu", "selu", "celu", "prelu"} <= set(activations.names())
    assert isinstance(activations.layer("maxout"), MaxoutChannels)
    assert isinstance(activations.layer("PELU", name="p"), PELU)
    assert activations.layer("celu").activation is keras.activations.celu


# (id, build, parameters worked by hand)
PARAMS = [
    # maxout: hidden Dense has pieces * units outputs, the block keeps `units`.
    ("mlp-maxout", lambda: models.mlp((64,), [32], 10, activation="maxout"), 64 * 64 + 64 + 330),
    (
        "mlp-maxout-k3",
        lambda: models.mlp((64,), [32], 10, activation=MaxoutChannels(pieces=3)),
        64 * 96 + 96 + 330,
    ),
    ("mlp-pelu", lambda: models.mlp((64,), [32, 16], 10, activation="pelu"), 2080 + 528 + 170 + 4),
    (
        "cnn-maxout",
        lambda: models.cnn((8, 8, 1), [4], 10, dense=[8], activation="maxout"),
        (9 * 8 + 8) + (4 * 4 * 4 * 16 + 16) + (8 * 10 + 10),
    ),
    (
        "residual-maxout",
        lambda: models.residual_mlp((64,), 8, 1, 10, activation="maxout", batchnorm=False),
        (64 * 16 + 16) + 2 * (8 * 16 + 16) + (8 * 10 + 10),
    ),
    (
        "residual-pelu",
        lambda: models.residual_mlp((64,), 8, 1, 10, activation="pelu", batchnorm=False),
        (64 * 8 + 8) + 2 * (8 * 8 + 8) + (8 * 10 + 10) + 2 * 3,
    ),
]


@pytest.mark.parametrize("build, expected", [r[1:] for r in PARAMS], ids=[r[0] for r in PARAMS])
def test_builders_parameter_count(build, expected):
    model = build()
    assert model.count_params() == expected
    x = np.ones((2, *model.input_shape[1:]), "float32")
    assert np.all(np.isfinite(_np(model(x))))


def test_mlp_maxout_computes_the_maxout_of_its_dense_layer():
    model = models.mlp((6,), [4], 3, activation="maxout")
    assert model.get_layer("dense_1").units == 8
    x = np.random.default_rng(3).normal(size=(5, 6)).astype("float32")
    kernel, bias = model.get_layer("dense_1").get_weights()
    hidden = keras.Model(model.input, model.get_layer("dense_1_act").output)
    np.testing.assert_allclose(
        _np(hidden(x)), _maxout_reference(x.astype(np.float64), kernel, bias, 4, 2), rtol=1e-5
    )


def test_residual_maxout_adds_a_maxout_branch():
    model = models.residual_mlp((5,), 4, 2, 3, activation="maxout")
    assert isinstance(model.get_layer("block_b_1_act"), MaxoutChannels)
    assert "add_1_act" not in [layer.name for layer in model.layers]
    assert model.get_layer("block_b_1").units == 8


def test_cnn_maxout_widens_conv_and_keeps_filter_count():
    model = models.cnn((8, 8, 1), [4, 6], 10, dense=[], activation="maxout")
    assert model.get_layer("conv_1").filters == 8
    assert model.get_layer("conv_2").filters == 12
    assert model.get_layer("conv_2_act").output.shape[-1] == 6


@pytest.mark.parametrize("builder", ["mlp", "cnn", "residual_mlp"])
def test_selu_pairs_with_lecun_normal_and_alpha_dropout(builder):
    data = knn.datasets.load("digits", view="image" if builder == "cnn" else "flat")
    kwargs = {"cnn": {"filters": [4], "dense": [8]}}.get(builder, {})
    model = models.BUILDERS[builder](data, activation="selu", dropout=0.1, **kwargs)
    kernels = [layer for layer in model.layers if hasattr(layer, "kernel_initializer")]
    assert kernels and all(
        isinstance(layer.kernel_initializer, keras.initializers.LecunNormal) for layer in kernels
    )
    drops = [layer for layer in model.layers if "dropout" in layer.name]
    assert drops and all(isinstance(layer, keras.layers.AlphaDropout) for layer in drops)


def test_selu_keeps_an_explicit_initializer_and_relu_keeps_dropout():
    model = models.mlp((6,), [4], 3, activation="selu", initializer="he_uniform")
    assert isinstance(model.get_layer("dense_1").kernel_initializer, keras.initializers.HeUniform)
    model = models.mlp((6,), [4], 3, activation="relu", dropout=0.1)
    assert isinstance(
        model.get_layer("dense_1").kernel_initializer, keras.initializers.GlorotUniform
    )
    assert type(model.get_layer("dense_1_dropout")) is keras.layers.Dropout
    assert isinstance(
        models.residual_mlp((6,), 4, 1, 3).get_layer("stem_0").kernel_initializer,
        keras.initializers.HeNormal,
    )


def test_selu_mlp_is_self_normalizing_at_init():
    """LeCun-normal weights keep SELU activations near mean 0 / std 1 through 8 layers."""
    data = knn.datasets.load("digits")
    model = models.mlp(data, [128] * 8, activation="selu", seed=0)
    stats = knn.diagnostics.activation_statistics(model, data.x_train[:512])
    for s in stats[:-1]:
        assert abs(s.mean) < 0.25 and 0.75 < s.std < 1.25, s


@pytest.mark.parametrize("activation", ["maxout", "pelu"])
def test_recipe_by_name_trains_and_reloads(activation, tmp_path):
    recipe = knn.Recipe.from_dict(
        {
            "name": f"digits_{activation}",
            "data": {"name": "digits"},
            "model": {"builder": "mlp", "hidden": [16], "activation": activation},
            "fit": {"epochs": 2, "batch_size": 64, "early_stopping": False},
        }
    )
    result = recipe.run(tmp_path / "run", verbose=0)
    assert result.fit.history["loss"][-1] < result.fit.history["loss"][0]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    kind = MaxoutChannels if activation == "maxout" else PELU
    assert isinstance(model.get_layer("dense_1_act"), kind)


# --- bad input ----------------------------------------------------------------------------------


def _msg(argument: str, expected: str, received: str) -> str:
    return invalid_message(argument, expected, received, whole=False)


BAD = [
    (lambda: Maxout(0), _msg("units", "a positive integer", "units=0")),
    (lambda: Maxout(2.5), _msg("units", "a positive integer", "units=2.5")),
    (lambda: Maxout(3, pieces=0), _msg("pieces", "a positive integer", "pieces=0")),
    (lambda: Maxout(3, pieces=-2), _msg("pieces", "a positive integer", "pieces=-2")),
    (lambda: Maxout(3, pieces=True), _msg("pieces", "a positive integer", "pieces=True")),
    (lambda: MaxoutChannels(0), _msg("num_units", "a positive integer", "num_units=0")),
    (lambda: MaxoutChannels("4"), _msg("num_units", "a positive integer", "num_units='4'")),
    (lambda: MaxoutChannels(pieces=1.5), _msg("pieces", "a positive integer", "pieces=1.5")),
    (lambda: MaxoutChannels(axis=1.0), _msg("axis", "an integer", "axis=1.0")),
    (
        lambda: MaxoutChannels(2, pieces=2),
        re.escape(
            "Received an invalid combination of arguments num_units and pieces, expected at "
            "most one of them. Received: num_units=2, pieces=2"
        ),
    ),
    (
        lambda: MaxoutChannels(4)(np.ones((2, 6), "float32")),
        _msg(
            "num_units",
            "a divisor of the number of channels (6 on axis -1)",
            "num_units=4",
        ),
    ),
    (
        lambda: MaxoutChannels(pieces=4)(keras.Input((5, 5, 6))),
        _msg("pieces", "a divisor of the number of channels (6 on axis -1)", "pieces=4"),
    ),
    (
        lambda: MaxoutChannels(2, axis=0)(np.ones((2, 6), "float32")),
        _msg("axis", "a non-batch axis of the 2-D input", "axis=0"),
    ),
    (
        lambda: models.cnn((8, 8, 1), [3], 10, activation=MaxoutChannels(num_units=4)),
        re.escape(
            "Received an invalid value for argument activation, expected MaxoutChannels("
            "pieces=k) in a builder (the builder sets each layer's number of units). "
            "Received: activation=MaxoutChannels(num_units=4)"
        ),
    ),
    (lambda: PELU(a=0.0), _msg("a", "a number > 0", "a=0.0")),
    (lambda: PELU(b=-1.0), _msg("b", "a number > 0", "b=-1.0")),
    (lambda: PELU(a="1"), _msg("a", "a number > 0", "a='1'")),
    (lambda: PELU(min_value=0), _msg("min_value", "a number > 0", "min_value=0")),
    (lambda: PELU(a=0.05), _msg("a", "a number >= min_value=0.1", "a=0.05")),
]


@pytest.mark.parametrize(("call", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        call()


@pytest.mark.parametrize("activation", ["maxout", "pelu"])
def test_builders_train_under_a_global_mixed_precision_policy(activation):
    data = knn.datasets.load("digits")
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = models.mlp(data, [32], activation=activation)
        act = model.get_layer("dense_1_act")
        assert act.compute_dtype == "float16"
        assert all(w.dtype == "float32" for w in act.weights)
        assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        history = model.fit(data.x_train, data.y_train, epochs=2, batch_size=128, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
