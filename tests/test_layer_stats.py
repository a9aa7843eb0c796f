"""kerasnn.layer_stats: activation statistics against a NumPy recomputation of the same forward
pass."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import run_python

from kerasnn import diagnostics, layer_stats, models
from kerasnn.layer_stats import activation_layers, activation_statistics


def _numpy_forward(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of each hidden Dense+activation of a plain user MLP, recomputed with NumPy."""
    outs, h = [], x.astype(np.float64)
    for layer in model.layers:
        kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
        z = h @ kernel + bias
        name = layer.get_config()["activation"]
        h = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh, "linear": lambda v: v}[name](z)
        if name != "linear":
            outs.append(h)
    return outs


def test_statistics_match_numpy_on_a_plain_keras_model() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )
    # Push one ReLU unit to be dead on every sample: large negative bias.
    kernel, bias = model.layers[0].get_weights()
    bias[2] = -100.0
    model.layers[0].set_weights([kernel, bias])
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")

    stats = activation_statistics(model, x, bins=10, histogram_range=(-1.0, 1.0))
    relu_ref, tanh_ref = _numpy_forward(model, x)

    assert [s.name for s in stats] == [model.layers[0].name, model.layers[1].name]
    assert [s.kind for s in stats] == ["relu", "tanh"]
    np.testing.assert_allclose(stats[0].mean, relu_ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats[0].std, relu_ref.std(), rtol=1e-5)
    assert stats[0].dead_fraction == pytest.approx(np.mean(np.all(relu_ref == 0, axis=0)))
    assert stats[0].dead_fraction >= 1 / 8
    assert stats[0].saturated_fraction is None
    np.testing.assert_allclose(stats[1].std, tanh_ref.std(), rtol=1e-5)
    assert stats[1].saturated_fraction == pytest.approx(np.mean(np.abs(tanh_ref) >= 0.98))
    counts, edges = stats[1].histogram
    np.testing.assert_array_equal(counts, np.histogram(tanh_ref, bins=10, range=(-1, 1))[0])
    assert edges[0] == -1.0 and edges[-1] == 1.0
    assert stats[1].to_dict()["histogram"]["counts"] == counts.tolist()


def test_builder_models_record_their_activation_layers() -> None:
    model = models.mlp((10,), hidden=[16, 16], outputs=4, activation="prelu", dropout=0.1)
    names = [layer.name for layer in activation_layers(model)]
    assert names == ["dense_1_act", "dense_2_act", "output"]
    stats = activation_statistics(model, np.ones((4, 10), "float32"))
    assert [s.kind for s in stats] == ["prelu", "prelu", "softmax"]
    assert stats[-1].mean == pytest.approx(0.25, rel=1e-5)  # softmax rows sum to 1 over 4 units


def test_model_without_activations_is_refused() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="at least one activation layer"):
        activation_statistics(model, np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="argument bins, expected a positive integer"):
        activation_statistics(model, np.ones((2, 3), "float32"), bins=0)


def test_diagnostics_reexports_the_layer_statistics() -> None:
    for name in ("LayerStats", "activation_layers", "activation_statistics"):
        assert getattr(diagnostics, name) is getattr(layer_stats, name), name


def test_layer_statistics_load_without_diagnostics_or_training() -> None:
    """The callbacks and LSUV use layer_stats: importing them must not run kerasnn.diagnostics
    (whose sanity check and lr_find import kerasnn.training, which imports the callbacks)."""
    code = (
        "import sys\n"
        "import kerasnn.callbacks, kerasnn.initializers, kerasnn.layer_stats\n"
        "higher = ('kerasnn.diagnostics', 'kerasnn.training')\n"
        "print(sorted(m for m in higher if m in sys.modules))\n"
    )
    assert run_python(code).strip().splitlines()[-1] == "[]"
