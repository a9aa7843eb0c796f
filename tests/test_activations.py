"""Tests for kerasnn.activations: names, aliases, NumPy references, registry and errors."""

import math
import re

import keras
import numpy as np
import pytest

import kerasnn as knn
from kerasnn import activations, models

X = np.array([[-3.0, -1.5, -0.5, -0.1, 0.0, 0.1, 0.5, 1.5, 3.0, 7.0]], dtype="float32")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(x))


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
_erf = np.vectorize(math.erf)

# Keras activation name -> NumPy reference (Keras 3 defaults: leaky_relu slope 0.2, elu alpha 1).
REFERENCE = {
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "softplus": _softplus,
    "linear": lambda x: x,
    "silu": lambda x: x * _sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
}


def _apply(layer: keras.layers.Layer) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(X))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_layer_matches_numpy_reference(name):
    out = _apply(activations.layer(name))
    np.testing.assert_allclose(out, REFERENCE[name](X.astype("float64")), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("alias", "target"), sorted(activations.ALIASES.items()))
def test_alias_computes_its_target(alias, target):
    assert target in REFERENCE, f"add a NumPy reference for {target!r}"
    assert activations.canonical_name(alias) == target
    layer = activations.layer(alias)
    assert isinstance(layer, keras.layers.Activation)
    np.testing.assert_allclose(_apply(layer), REFERENCE[target](X.astype("float64")), rtol=1e-5)
    np.testing.assert_allclose(
        activations.get(alias)(X), REFERENCE[target](X.astype("float64")), rtol=1e-5, atol=1e-6
    )


def test_get_resolves_aliases_and_case():
    for alias, target in activations.ALIASES.items():
        assert activations.get(alias) is getattr(keras.activations, target)
    assert activations.get("ReLU") is keras.activations.relu
    assert activations.get("Logistic") is keras.activations.sigmoid
    assert activations.layer("TANH").activation is keras.activations.tanh


def test_none_means_identity():
    assert activations.get(None) is keras.activations.linear
    np.testing.assert_array_equal(_apply(activations.layer(None)), X)


def test_layer_name_and_kwargs_are_passed():
    layer = activations.layer("tanh", name="my_act", dtype="float32")
    assert layer.name == "my_act"
    assert layer.dtype_policy.name == "float32"


def test_prelu_is_a_trainable_layer():
    layer = activations.layer("prelu", name="p")
    assert isinstance(layer, keras.layers.PReLU)
    assert layer.name == "p"
    out = _apply(layer)  # alpha starts at zero: PReLU(x) = relu(x)
    np.testing.assert_allclose(out, np.maximum(X, 0.0))
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(X.shape[1],)]
    layer.alpha.assign(np.full(X.shape[1], 0.25, dtype="float32"))
    np.testing.assert_allclose(_apply(layer), np.where(X > 0, X, 0.25 * X), rtol=1e-6)
    # each call gives a fresh layer, so two hidden layers never share parameters
    assert activations.layer("prelu") is not activations.layer("prelu")


def test_prelu_in_mlp_adds_one_parameter_per_unit():
    model = models.mlp((64,), [32], 10, activation="prelu")
    assert model.count_params() == 2410 + 32
    assert isinstance(model.get_layer("dense_1_act"), keras.layers.PReLU)


def test_get_refuses_layer_only_names():
    expected = (
        "Received an invalid value for argument activation, expected a stateless activation "
        "function; 'prelu' is a layer with parameters, use kerasnn.activations.layer('prelu'). "
        "Received: activation='PReLU'"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        activations.get("PReLU")


def test_unknown_name_lists_names_and_suggests():
    for function in (activations.get, activations.layer, activations.canonical_name):
        with pytest.raises(ValueError, match="argument activation, expected one of") as info:
            function("rleu")
        message = str(info.value)
        for name in ("'relu'", "'sigmoid'", "'logistic'", "'prelu'", "'swish'"):
            assert name in message
        assert message.endswith("Did you mean 'relu'? Received: activation='rleu'")


def test_unknown_name_without_close_match_has_no_hint():
    with pytest.raises(ValueError, match=r"Received: activation='qqqqqq'$") as info:
        activations.layer("qqqqqq")
    assert "Did you mean" not in str(info.value)


def test_callable_passes_through():
    def cube(x):
        return x**3

    assert activations.get(cube) is cube
    layer = activations.layer(cube)
    assert isinstance(layer, keras.layers.Activation)
    np.testing.assert_allclose(_apply(layer), X**3, rtol=1e-6)


def test_layer_instance_is_copied_per_use():
    instance = keras.layers.ReLU(max_value=1.0)
    copy = activations.layer(instance)
    assert copy is not instance and isinstance(copy, keras.layers.ReLU)
    assert copy.get_config()["max_value"] == 1.0
    assert activations.get(instance) is instance
    np.testing.assert_allclose(_apply(activations.layer(instance)), np.clip(X, 0.0, 1.0))


def test_a_prelu_instance_gives_each_hidden_layer_its_own_weights():
    model = knn.models.mlp((4,), hidden=[3, 3], outputs=2, activation=keras.layers.PReLU())
    prelus = [layer for layer in model.layers if isinstance(layer, keras.layers.PReLU)]
    assert len(prelus) == 2 and prelus[0] is not prelus[1]


def test_non_callable_is_a_type_error():
    for function in (activations.get, activations.layer):
        with pytest.raises(TypeError, match=r"argument activation, expected a name.*activation=42"):
            function(42)


def test_names_cover_keras_aliases_and_layers():
    names = activations.names()
    assert names == sorted(names)
    assert {"relu", "sigmoid", "tanh", "softmax", "prelu"} <= set(names)
    assert set(activations.ALIASES) <= set(names)
    assert not {"get", "serialize", "deserialize"} & set(names)
    for name in activations.keras_names():
        assert callable(getattr(keras.activations, name))


class ScaledTanh(keras.layers.Layer):
    """a * tanh(x) with a learnable scalar a (starts at 2)."""

    def build(self, input_shape):
        self.a = self.add_weight(shape=(), initializer=keras.initializers.Constant(2.0))

    def call(self, x):
        return self.a * keras.ops.tanh(x)


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the layer registry, restored after the test."""
    monkeypatch.setattr(activations, "_LAYER_FACTORIES", dict(activations._LAYER_FACTORIES))
    return activations._LAYER_FACTORIES


def test_register_custom_layer(registry):
    activations.register("Scaled_Tanh", ScaledTanh)
    assert "scaled_tanh" in activations.names()
    layer = activations.layer("scaled_tanh", name="st")
    assert isinstance(layer, ScaledTanh)
    assert layer.name == "st"
    np.testing.assert_allclose(_apply(layer), 2.0 * np.tanh(X), rtol=1e-6)
    with pytest.raises(ValueError, match=r"'scaled_tanh' is a layer with parameters"):
        activations.get("scaled_tanh")

    model = models.mlp((4,), [8, 8], 3, activation="scaled_tanh")
    assert isinstance(model.get_layer("dense_1_act"), ScaledTanh)
    assert isinstance(model.get_layer("dense_2_act"), ScaledTanh)
    assert model.get_layer("dense_1_act") is not model.get_layer("dense_2_act")
    # 4*8+8 + 8*8+8 + 8*3+3, plus one scalar per activation layer
    assert model.count_params() == 40 + 72 + 27 + 2


def test_registry_is_restored_after_register_test():
    assert "scaled_tanh" not in activations.names()


def test_register_refuses_keras_names_and_aliases(registry):
    for name in ("relu", "Sigmoid", "LRELU"):
        expected = (
            "Received an invalid value for argument name, expected a name that is not already a "
            f"Keras activation or alias. Received: name={name!r}"
        )
        with pytest.raises(ValueError, match=re.escape(expected)):
            activations.register(name, ScaledTanh)
        assert name.lower() not in registry
