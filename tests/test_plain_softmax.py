"""The output softmax computed with TensorFlow's plain kernels while kerasnn traces the train
step: the same probabilities within float32 rounding, the logits kept for the loss, swapped
only for cross-entropy losses and only while traced, and training unchanged bit for bit."""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasnn as knn
from kerasnn import _plain_softmax
from kerasnn._plain_softmax import plain_softmax, reads_logits, softmax
from kerasnn.callbacks import nan_guard


def _numpy_softmax(z, axis=-1):
    z = z.astype("float64")
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_matches_numpy_and_keras_and_keeps_the_logits(axis):
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(64, 10, 3)) * 8).astype("float32")
    z[0, 0, 0] = 1000.0  # large logits stay finite (shifted by the max)
    x = tf.constant(z)
    p = softmax(x, axis=axis)
    np.testing.assert_allclose(p.numpy(), _numpy_softmax(z, axis), rtol=0, atol=1e-6)
    ref = keras.activations.softmax(x, axis=axis).numpy()
    np.testing.assert_allclose(p.numpy(), ref, rtol=0, atol=1e-6)
    assert p._keras_logits is x


def test_cross_entropy_of_the_plain_softmax_is_that_of_its_logits():
    rng = np.random.default_rng(1)
    logits = tf.constant((rng.normal(size=(32, 10)) * 30).astype("float32"))
    labels = rng.integers(0, 10, 32)
    from_probabilities = keras.losses.sparse_categorical_crossentropy(labels, softmax(logits))
    from_logits = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_array_equal(from_probabilities.numpy(), from_logits.numpy())


def test_reads_logits_only_for_the_categorical_cross_entropies():
    for loss in (
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        keras.losses.SparseCategoricalCrossentropy(),
        keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        keras.losses.sparse_categorical_crossentropy,
    ):
        assert reads_logits(loss), loss
    for loss in ("mse", keras.losses.MeanSquaredError(), "binary_crossentropy", None, ["mse"]):
        assert not reads_logits(loss), loss


def _classifier(loss="sparse_categorical_crossentropy", jit_compile=False):
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    inputs = keras.Input((4,))
    h = keras.layers.Dense(5, activation="relu")(inputs)
    out = keras.layers.Activation("softmax")(keras.layers.Dense(3)(h))
    model = keras.Model(inputs, [keras.layers.Average()([out, inner(inputs)])])
    model.compile("sgd", loss=loss, jit_compile=jit_compile)
    return model


def _softmax_layers(model):
    return [layer for layer in _plain_softmax._layers(model) if hasattr(layer, "activation")]


def test_plain_softmax_swaps_softmax_layers_of_nested_models_and_puts_keras_back():
    model = _classifier()
    with plain_softmax(model) as swapped:
        assert swapped == 2
        acts = [layer.activation for layer in _softmax_layers(model)]
        assert acts.count(softmax) == 2 and keras.activations.relu in acts
    assert [layer.activation for layer in _softmax_layers(model)].count(softmax) == 0
    config = model.get_config()
    assert '"softmax"' in str(config).replace("'", '"')  # the saved model says Keras's softmax
    with pytest.raises(RuntimeError), plain_softmax(model):
        raise RuntimeError("trace failed")
    assert all(layer.activation is not softmax for layer in _softmax_layers(model))


@pytest.mark.parametrize("loss, jit", [("mse", False), ("sparse_categorical_crossentropy", True)])
def test_plain_softmax_leaves_other_losses_and_xla_alone(loss, jit):
    model = _classifier(loss, jit_compile=jit)
    with plain_softmax(model) as swapped:
        assert swapped == 0
        assert all(layer.activation is not softmax for layer in _softmax_layers(model))


def _fit_wine(monkeypatch, plain: bool):
    data = knn.datasets.load("wine")
    keras.utils.set_random_seed(0)
    model = knn.compile(knn.models.mlp(data, hidden=[16], dropout=0.2), "adam", learning_rate=0.01)
    calls = []

    @contextlib.contextmanager
    def spy(m):
        with plain_softmax(m) as n:
            calls.append(n)
            yield n

    @contextlib.contextmanager
    def off(m):
        calls.append(0)
        yield 0

    monkeypatch.setattr(nan_guard, "plain_softmax", spy if plain else off)
    result = knn.fit(model, data, epochs=3, batch_size=16, seed=0, verbose=0)
    return model, result, calls


def test_fit_traces_the_plain_softmax_and_trains_bit_for_bit_the_same(monkeypatch):
    plain, with_plain, calls = _fit_wine(monkeypatch, plain=True)
    assert calls and all(n == 1 for n in calls)  # the output softmax, at each trace
    keras_model, with_keras, _ = _fit_wine(monkeypatch, plain=False)
    assert with_plain.history["loss"] == with_keras.history["loss"]
    assert with_plain.history["val_loss"] == with_keras.history["val_loss"]
    for a, b in zip(plain.get_weights(), keras_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        with_plain.history["accuracy"], with_keras.history["accuracy"], rtol=0, atol=1e-6
    )
    # Outside the trace the model computes Keras's softmax again: predict is unchanged.
    output = plain.get_layer("output")
    assert output.activation is keras.activations.softmax
    x = knn.datasets.load("wine").x_test
    np.testing.assert_array_equal(plain.predict(x, verbose=0), keras_model.predict(x, verbose=0))
