"""Tests for kerasnn.models: parameter counts, output heads, datasets, seeds, saving, errors."""

import functools
import re

import keras
import numpy as np
import pytest
from layer_checks import channels_first_message, probe_reason

from kerasnn import datasets
from kerasnn.layers import PELU, MaxoutChannels
from kerasnn.models import BUILDERS, cnn, mlp, residual_mlp


@functools.cache
def _data(name: str, view: str = "flat") -> datasets.Dataset:
    return datasets.load(name, view=view)


def _x(shape, n=4) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, *shape)).astype("float32")


def _predict(model, x) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def _layers(model, cls) -> list:
    return [layer for layer in model.layers if type(layer) is cls]


# (id, build, expected number of parameters, worked by hand)
PARAM_COUNTS = [
    ("mlp", lambda: mlp((64,), [32], 10), 64 * 32 + 32 + 32 * 10 + 10),
    ("mlp-no-hidden", lambda: mlp((64,), [], 10), 64 * 10 + 10),
    ("mlp-2-hidden", lambda: mlp((64,), [32, 16], 10), 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10),
    ("mlp-batchnorm", lambda: mlp((64,), [32], 10, batchnorm=True), 64 * 32 + 4 * 32 + 330),
    ("mlp-image-input", lambda: mlp((8, 8, 1), [16], 3), 64 * 16 + 16 + 16 * 3 + 3),
    ("mlp-prelu", lambda: mlp((64,), [32], 10, activation="prelu"), 2410 + 32),
    # conv: k*k*c_in*f + f; 8x8 -> pool 4x4 -> pool 2x2
    ("cnn", lambda: cnn((8, 8, 1), [4], 10, dense=[]), 9 * 4 + 4 + 4 * 4 * 4 * 10 + 10),
    (
        "cnn-2-stages",
        lambda: cnn((8, 8, 1), [4, 8], 10, dense=[16]),
        (9 * 4 + 4) + (9 * 4 * 8 + 8) + (2 * 2 * 8 * 16 + 16) + (16 * 10 + 10),
    ),
    (
        "cnn-batchnorm",
        lambda: cnn((8, 8, 1), [4], 10, dense=[16], batchnorm=True),
        (9 * 4 + 4 * 4) + (4 * 4 * 4 * 16 + 4 * 16) + (16 * 10 + 10),
    ),
    (
        "cnn-valid-5x5",  # 8x8 -> conv 4x4 -> pool 2x2
        lambda: cnn((8, 8, 3), [2], 3, dense=[], kernel_size=5, padding="valid"),
        (25 * 3 * 2 + 2) + (2 * 2 * 2 * 3 + 3),
    ),
    # stem + blocks * 2 dense layers + output; batchnorm: no dense bias, 4 BN params per unit
    (
        "residual",
        lambda: residual_mlp((64,), 16, 2, 10),
        (64 * 16 + 4 * 16) + 2 * 2 * (16 * 16 + 4 * 16) + (16 * 10 + 10),
    ),
    (
        "residual-no-bn",
        lambda: residual_mlp((64,), 8, 1, 10, batchnorm=False),
        (64 * 8 + 8) + 2 * (8 * 8 + 8) + (8 * 10 + 10),
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"), [row[1:] for row in PARAM_COUNTS], ids=[row[0] for row in PARAM_COUNTS]
)
def test_parameter_count(build, expected):
    assert build().count_params() == expected


def test_batchnorm_removes_dense_bias():
    model = mlp((6,), [5, 4], 3, batchnorm=True)
    assert not model.get_layer("dense_1").use_bias
    assert isinstance(model.get_layer("dense_1_bn"), keras.layers.BatchNormalization)
    assert model.get_layer("output_dense").use_bias
    assert len(_layers(model, keras.layers.BatchNormalization)) == 2


# (id, build, output activation, output width)
HEADS = [
    ("classification", lambda: mlp((5,), [4], 3), "softmax", 3),
    ("binary", lambda: mlp((5,), [4], 1, task="binary"), "sigmoid", 1),
    ("regression", lambda: mlp((5,), [4], 1, task="regression"), "linear", 1),
    ("regression-2", lambda: mlp((5,), [4], 2, task="regression"), "linear", 2),
    ("override", lambda: mlp((5,), [4], 1, output_activation="tanh"), "tanh", 1),
    ("residual-regression", lambda: residual_mlp((5,), 4, 1, 3, task="regression"), "linear", 3),
]


@pytest.mark.parametrize(
    ("build", "activation", "units"), [row[1:] for row in HEADS], ids=[row[0] for row in HEADS]
)
def test_output_head(build, activation, units):
    model = build()
    assert model.output_shape == (None, units)
    assert model.get_layer("output").activation.__name__ == activation
    assert model.get_layer("output").dtype_policy.name == "float32"
    x = _x(model.input_shape[1:])
    logits = keras.Model(model.input, model.get_layer("output_dense").output)(x)
    expected = keras.ops.convert_to_numpy(keras.activations.get(activation)(logits))
    np.testing.assert_allclose(_predict(model, x), expected, rtol=1e-6)


def test_softmax_rows_sum_to_one_and_sigmoid_in_unit_interval():
    x = _x((5,), n=16)
    np.testing.assert_allclose(_predict(mlp((5,), [4], 3), x).sum(axis=1), 1.0, rtol=1e-6)
    p = _predict(mlp((5,), [4], 1, task="binary"), x)
    assert ((p > 0) & (p < 1)).all()


# (id, builder, dataset name, view, output activation, output width)
FROM_DATASET = [
    ("mlp-digits", mlp, "digits", "flat", "softmax", 10),
    ("cnn-digits-image", cnn, "digits", "image", "softmax", 10),
    ("mlp-breast-cancer", mlp, "breast_cancer", "flat", "sigmoid", 1),
    ("residual-diabetes", residual_mlp, "diabetes", "flat", "linear", 1),
]


@pytest.mark.parametrize(
    ("builder", "name", "view", "activation", "units"),
    [row[1:] for row in FROM_DATASET],
    ids=[row[0] for row in FROM_DATASET],
)
def test_build_from_dataset(builder, name, view, activation, units):
    data = _data(name, view)
    small = {"mlp": {"hidden": [8]}, "cnn": {"filters": [4], "dense": []}}
    model = builder(data, **small.get(builder.__name__, {"width": 8, "blocks": 1}))
    assert model.input_shape == (None, *data.input_shape)
    assert model.output_shape == (None, units)
    assert model.get_layer("output").activation.__name__ == activation
    assert _predict(model, data.x_test[:5]).shape == (5, units)


def test_dataset_values_can_be_overridden():
    model = mlp(_data("diabetes"), [4], outputs=3)
    assert model.output_shape == (None, 3)
    assert model.get_layer("output").activation.__name__ == "linear"
    model = mlp(_data("breast_cancer"), [4], task="regression")
    assert model.get_layer("output").activation.__name__ == "linear"


def _penalised_kernels(model):
    return [
        layer.kernel
        for layer in model.layers
        if getattr(layer, "kernel_regularizer", None) is not None
    ]


@pytest.mark.parametrize(
    ("build", "penalised"),
    [
        (lambda **kw: mlp((6,), [5, 4], 3, **kw), ["dense_1", "dense_2"]),
        (lambda **kw: cnn((4, 4, 1), [2], 3, dense=[3], **kw), ["conv_1", "dense_2"]),
        (
            lambda **kw: residual_mlp((6,), 4, 2, 3, **kw),
            ["stem_0", "block_a_1", "block_b_1", "block_a_2", "block_b_2"],
        ),
    ],
    ids=["mlp", "cnn", "residual"],
)
def test_weight_penalties(build, penalised):
    assert build().losses == []
    model = build(l2=0.01, l1=0.001)
    assert sorted(layer.name for layer in model.layers if layer.losses) == sorted(penalised)
    kernels = [keras.ops.convert_to_numpy(model.get_layer(n).kernel) for n in penalised]
    expected = sum(0.01 * np.square(k).sum() + 0.001 * np.abs(k).sum() for k in kernels)
    total = sum(float(loss) for loss in model.losses)
    assert total == pytest.approx(expected, rel=1e-5)
    assert model.get_layer("output_dense").kernel_regularizer is None


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda **kw: mlp((6,), [5, 4], 3, **kw), ["dense_1_dropout", "dense_2_dropout"]),
        (lambda **kw: cnn((4, 4, 1), [2], 3, dense=[3], **kw), ["dense_2_dropout"]),
        (lambda **kw: residual_mlp((6,), 4, 2, 3, **kw), ["add_1_dropout", "add_2_dropout"]),
    ],
    ids=["mlp", "cnn", "residual"],
)
def test_dropout_layers(build, names):
    assert _layers(build(), keras.layers.Dropout) == []
    model = build(dropout=0.5, seed=1)
    dropouts = _layers(model, keras.layers.Dropout)
    assert [layer.name for layer in dropouts] == names
    assert all(layer.rate == 0.5 for layer in dropouts)
    x = _x(model.input_shape[1:])
    np.testing.assert_array_equal(_predict(model, x), _predict(model, x))


# (id, input shape, filters, padding, pooling layers expected, flattened width)
POOLING = [
    ("8x8-4-stages", (8, 8, 1), [2, 2, 2, 2], "same", ["pool_1", "pool_2", "pool_3"], 1 * 1 * 2),
    ("3x3-pool-once", (3, 3, 1), [2, 3], "same", ["pool_1"], 1 * 1 * 3),  # 3 -> 1 -> (1 < 2)
    ("1x8-never", (1, 8, 1), [2, 2], "same", [], 1 * 8 * 2),
    ("8x8-valid", (8, 8, 1), [2, 3], "valid", ["pool_1"], 1 * 1 * 3),  # 6 -> 3 -> conv 1
]


@pytest.mark.parametrize(
    ("shape", "filters", "padding", "pools", "flat"),
    [row[1:] for row in POOLING],
    ids=[row[0] for row in POOLING],
)
def test_cnn_pools_only_maps_at_least_pool_size(shape, filters, padding, pools, flat):
    model = cnn(shape, filters, 3, dense=[], padding=padding)
    assert [layer.name for layer in _layers(model, keras.layers.MaxPooling2D)] == pools
    assert model.get_layer("flatten").output.shape == (None, flat)


def test_cnn_pool_size_3():
    model = cnn((9, 9, 1), [2, 2, 2], 3, dense=[], pool_size=3)  # 9 -> 3 -> 1 -> (1 < 3)
    assert [layer.name for layer in _layers(model, keras.layers.MaxPooling2D)] == [
        "pool_1",
        "pool_2",
    ]


# (id, input shape, cnn keyword arguments): channels_first must be the channels_last network
CHANNELS_FIRST = [
    ("relu", (8, 8, 1), {"filters": [4, 6], "dense": [5]}),
    ("maxout-batchnorm", (8, 8, 2), {"filters": [3], "activation": "maxout", "batchnorm": True}),
    ("tall-8x1-unpooled", (8, 1, 3), {"filters": [4], "dense": []}),  # min(H, W) = 1 < 2
]


@pytest.mark.parametrize(
    ("shape", "kwargs"), [r[1:] for r in CHANNELS_FIRST], ids=[r[0] for r in CHANNELS_FIRST]
)
def test_cnn_channels_first_is_the_channels_last_network(shape, kwargs):
    x = _x(shape)
    last = cnn(shape, outputs=3, data_format="channels_last", seed=7, **kwargs)
    reason = probe_reason("conv", 2)
    if reason is not None:  # this machine's TensorFlow cannot: kerasnn says so at build time
        others = [f"conv_{i}" for i in range(2, len(kwargs["filters"]) + 1)]
        message = channels_first_message("conv_1", "Conv2D", reason=reason, others=others)
        with pytest.raises(ValueError, match=message):
            cnn(shape, outputs=3, data_format="channels_first", seed=7, **kwargs)
        return
    first = cnn(shape, outputs=3, data_format="channels_first", seed=7, **kwargs)
    assert first.input_shape == last.input_shape == (None, *shape)  # the input stays NHWC
    assert first.get_layer("to_channels_first").output.shape == (None, shape[2], *shape[:2])
    assert first.count_params() == last.count_params()
    names = [layer.name for layer in last.layers]
    assert [layer.name for layer in first.layers] == [names[0], "to_channels_first", *names[1:]]
    for layer in first.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.MaxPooling2D):
            assert layer.data_format == "channels_first", layer.name
        stage = layer.name.startswith("conv_")  # the dense head after Flatten is unchanged
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.axis == (1 if stage else -1), layer.name
        if isinstance(layer, MaxoutChannels):
            assert layer.axis == (1 if stage else -1), layer.name
    # same seed, same weights, the same function
    for a, b in zip(first.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(_predict(first, x), _predict(last, x), rtol=1e-5, atol=1e-6)


def test_residual_blocks_add_their_input():
    blocks = 3
    model = residual_mlp((6,), 4, blocks, 3, batchnorm=False)
    adds = _layers(model, keras.layers.Add)
    assert [layer.name for layer in adds] == [f"add_{b}" for b in range(1, blocks + 1)]
    skip, branch = model.get_layer("add_1").input
    probe = keras.Model(model.input, [skip, branch, model.get_layer("add_1").output])
    a, b, total = (keras.ops.convert_to_numpy(t) for t in probe(_x((6,))))
    assert model.get_layer("stem_0_act").output is skip
    np.testing.assert_allclose(total, a + b, rtol=1e-6)
    assert np.isfinite(_predict(model, _x((6,)))).all()


def test_residual_trains():
    data = _data("breast_cancer")
    model = residual_mlp(data, 8, 2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    before = model.evaluate(data.x_train, data.y_train, verbose=0)
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, verbose=0)
    assert model.evaluate(data.x_train, data.y_train, verbose=0) < 0.7 * before


SMALL = {
    "mlp": lambda **kw: mlp((6,), [5], 3, dropout=0.2, **kw),
    "cnn": lambda **kw: cnn((6, 6, 1), [2], 3, dense=[4], dropout=0.2, **kw),
    "residual_mlp": lambda **kw: residual_mlp((6,), 4, 2, 3, dropout=0.2, **kw),
}


def test_small_builders_cover_every_builder():
    assert set(SMALL) == set(BUILDERS)


@pytest.mark.parametrize("builder", sorted(SMALL))
def test_seed_makes_builds_identical(builder):
    def weights(model):
        return [keras.ops.convert_to_numpy(w) for w in model.weights]

    a, b, c = (weights(SMALL[builder](seed=s)) for s in (3, 3, 4))
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert any(wa.std() > 0 and not np.array_equal(wa, wc) for wa, wc in zip(a, c, strict=True))
    # kernels are seeded per layer: no two kernels of one model are equal
    kernels = [w for w in a if w.ndim >= 2]
    assert len({w.tobytes() for w in kernels}) == len(kernels)


@pytest.mark.parametrize(
    "build",
    [
        SMALL["mlp"],
        lambda: mlp((6,), [5], 3, activation="prelu", batchnorm=True),
        SMALL["cnn"],
        SMALL["residual_mlp"],
    ],
    ids=["mlp", "mlp-prelu-bn", "cnn", "residual_mlp"],
)
def test_save_and_load_keep_predictions(build, tmp_path):
    model = build()
    x = _x(model.input_shape[1:], n=8)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(_predict(loaded, x), _predict(model, x), rtol=1e-6)


def _invalid(argument, expected, value):
    return re.escape(
        f"Received an invalid value for argument {argument}, expected {expected}. "
        f"Received: {argument}={value!r}"
    )


_SHAPE = "a non-empty tuple of positive integers or a kerasnn Dataset"
_AMBIGUOUS = (
    "Received outputs=1 with neither task nor output_activation: one output unit may be binary "
    "(sigmoid) or regression (linear). Pass task='binary' or task='regression' (or "
    "output_activation)."
)
_CNN_SHAPE = (
    "Received an invalid value for argument input_shape, expected an image shape (height, "
    "width, channels) for cnn (for digits use load('digits', view='image')). Received: "
)
_DID_YOU_MEAN = r"expected one of .*'relu'.*Did you mean 'relu'\? Received: activation='rleu'"
_INIT = r"expected one of .*'xavier_normal'.*Received: initializer='xavier_norml'"

# (id, call, error message pattern)
ERRORS = [
    (
        "dropout-1",
        lambda: mlp((4,), [8], 3, dropout=1.0),
        _invalid("dropout", "a float in [0, 1)", 1.0),
    ),
    (
        "dropout-neg",
        lambda: cnn((4, 4, 1), [2], 3, dropout=-0.1),
        _invalid("dropout", "a float in [0, 1)", -0.1),
    ),
    ("l2-neg", lambda: mlp((4,), [8], 3, l2=-0.1), _invalid("l2", "a number >= 0", -0.1)),
    ("ambiguous", lambda: mlp((4,), [8], 1), re.escape(_AMBIGUOUS)),
    (
        "binary-3",
        lambda: mlp((4,), [8], 3, task="binary"),
        re.escape("expected 1 for task='binary' (one sigmoid unit). Received: outputs=3"),
    ),
    (
        "binary-dataset",
        lambda: mlp(_data("digits"), [8], task="binary"),
        re.escape("expected 1 for task='binary' (one sigmoid unit). Received: outputs=10"),
    ),
    (
        "classification-one-unit",
        lambda: mlp((4,), [8], 1, task="classification"),
        re.escape("expected at least 2 for task='classification'"),
    ),
    (
        "outputs-missing",
        lambda: mlp((4,), [8]),
        re.escape("Received outputs=None with a plain input_shape: pass outputs"),
    ),
    (
        "task-unknown",
        lambda: mlp((4,), [8], 3, task="multiclass"),
        r"argument task, expected one of 'binary', 'classification', 'regression'\. "
        r"Received: task='multiclass'",
    ),
    ("cnn-flat", lambda: cnn((64,), outputs=10), re.escape(_CNN_SHAPE + "input_shape=(64,)")),
    ("cnn-flat-dataset", lambda: cnn(_data("digits")), re.escape(_CNN_SHAPE + "input_shape=(64,)")),
    (
        "cnn-padding",
        lambda: cnn((4, 4, 1), [2], 3, padding="full"),
        r"argument padding, expected one of 'same', 'valid'\. Received: padding='full'",
    ),
    (
        "cnn-data-format",
        lambda: cnn((4, 4, 1), [2], 3, data_format="NCHW"),
        r"^Received an invalid value for argument data_format, expected one of "
        r"'channels_first', 'channels_last'\. Received: data_format='NCHW'$",
    ),
    (
        "cnn-channelwise-pelu-channels-first",
        lambda: cnn(
            (4, 4, 1), [2], 3, activation=PELU(channelwise=True), data_format="channels_first"
        ),
        "^"
        + re.escape(
            "Received an invalid value for argument activation, expected an activation that "
            "works in channels_first (PELU(channelwise=True) keeps one (a, b) pair per entry of "
            "the last axis, the width in channels_first). Received: activation="
            "PELU(channelwise=True) with data_format='channels_first'"
        )
        + "$",
    ),
]


@pytest.mark.parametrize(("call", "match"), [row[1:] for row in ERRORS], ids=[r[0] for r in ERRORS])
def test_invalid_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# (call, argument, received value): widths and sizes must be positive integers
POSITIVE_INT = [
    (lambda: mlp((4,), [0], 3), "hidden[0]", 0),
    (lambda: mlp((4,), [8, -2], 3), "hidden[1]", -2),
    (lambda: mlp((4,), [2.5], 3), "hidden[0]", 2.5),
    (lambda: mlp((4,), [8], 0), "outputs", 0),
    (lambda: cnn((4, 4, 1), [0], 3), "filters[0]", 0),
    (lambda: cnn((4, 4, 1), [2], 3, dense=[-1]), "dense[0]", -1),
    (lambda: cnn((4, 4, 1), [2], 3, kernel_size=0), "kernel_size", 0),
    (lambda: cnn((4, 4, 1), [2], 3, pool_size=0), "pool_size", 0),
    (lambda: residual_mlp((4,), 0, outputs=3), "width", 0),
    (lambda: residual_mlp((4,), 8, 0, 3), "blocks", 0),
    (lambda: residual_mlp((4,), 8, True, 3), "blocks", True),
]


def test_widths_and_sizes_must_be_positive_integers():
    for call, argument, value in POSITIVE_INT:
        with pytest.raises(ValueError, match=_invalid(argument, "a positive integer", value)):
            call()


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_unknown_names_inside_builders(builder):
    with pytest.raises(ValueError, match=_DID_YOU_MEAN):
        SMALL[builder](activation="rleu")
    with pytest.raises(ValueError, match=_DID_YOU_MEAN):
        SMALL[builder](output_activation="rleu")
    with pytest.raises(ValueError, match=_INIT):
        SMALL[builder](initializer="xavier_norml")


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_invalid_input_shape(builder):
    for input_shape in [(0,), (-1, 3), (), None, "abc", "64", (2.5,), (8, 8.0, 1), 0, True]:
        with pytest.raises(ValueError, match=_invalid("input_shape", _SHAPE, input_shape)):
            BUILDERS[builder](input_shape, outputs=3)


def test_input_shape_accepts_ints_and_numpy_integers():
    assert mlp(64, [4], 3).input_shape == (None, 64)
    model = cnn((np.int64(8), np.int64(8), np.int64(1)), [2], 3, dense=[])
    assert model.input_shape == (None, 8, 8, 1)
