"""kerasnn.fused_optimizers: the fused kernels compute Keras's rules (NumPy references), train
exactly like the stock optimizers (eager, graph, XLA, sparse gradients), save and reload."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasnn import fused_optimizers, optimizers
from kerasnn.fused_optimizers import FusedAdam, FusedAdamW, FusedRMSprop, FusedSGD

# (fused class, stock class, arguments)
CONFIGS = {
    "sgd": (FusedSGD, keras.optimizers.SGD, {"learning_rate": 0.1}),
    "momentum": (FusedSGD, keras.optimizers.SGD, {"learning_rate": 0.1, "momentum": 0.9}),
    "nesterov": (
        FusedSGD,
        keras.optimizers.SGD,
        {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True},
    ),
    "rmsprop": (FusedRMSprop, keras.optimizers.RMSprop, {"learning_rate": 0.01}),
    "rmsprop_momentum": (
        FusedRMSprop,
        keras.optimizers.RMSprop,
        {"learning_rate": 0.01, "momentum": 0.5, "rho": 0.8},
    ),
    "rmsprop_centered": (
        FusedRMSprop,
        keras.optimizers.RMSprop,
        {"learning_rate": 0.01, "centered": True, "epsilon": 1e-3},
    ),
    "adam": (FusedAdam, keras.optimizers.Adam, {"learning_rate": 0.01, "beta_2": 0.99}),
    "amsgrad": (FusedAdam, keras.optimizers.Adam, {"learning_rate": 0.01, "amsgrad": True}),
    "adamw": (FusedAdamW, keras.optimizers.AdamW, {"learning_rate": 0.01, "weight_decay": 0.1}),
}


def _numpy_steps(name: str, args: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """Keras's documented update rules, step by step, in float64."""
    lr = args["learning_rate"]
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    mg = np.zeros_like(w)
    vhat = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        if name in ("sgd", "momentum", "nesterov"):
            mu = args.get("momentum", 0.0)
            m = mu * m - lr * g
            w = w + (mu * m - lr * g if args.get("nesterov") else m) if mu else w - lr * g
        elif name.startswith("rmsprop"):
            rho, mu = args.get("rho", 0.9), args.get("momentum", 0.0)
            eps = args.get("epsilon", 1e-7)
            v = rho * v + (1 - rho) * g**2
            mg = rho * mg + (1 - rho) * g
            denominator = v - mg**2 + eps if args.get("centered") else v + eps
            m = mu * m + lr * g / np.sqrt(denominator)
            w = w - m
        else:  # adam, amsgrad, adamw
            b1, b2, eps = args.get("beta_1", 0.9), args.get("beta_2", 0.999), 1e-7
            if name == "adamw":
                w = w - w * args["weight_decay"] * lr
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            vhat = np.maximum(vhat, v)
            alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            w = w - alpha * m / (np.sqrt(vhat if args.get("amsgrad") else v) + eps)
    return w


def _graph_step(opt: keras.optimizers.Optimizer, variable: keras.Variable):
    """One `apply_gradients` per call, traced once (as inside a train function)."""
    opt.build([variable])

    @tf.function
    def step(g):
        opt.apply_gradients([(g, variable)])

    return step


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fused_update_matches_the_numpy_rule_and_the_stock_optimizer(name):
    fused_cls, stock_cls, args = CONFIGS[name]
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(7, 5))
    grads = [rng.normal(size=(7, 5)) for _ in range(6)]
    finals = []
    for cls in (fused_cls, stock_cls):
        variable = keras.Variable(w0.astype("float32"))
        step = _graph_step(cls(**args), variable)
        for g in grads:
            step(tf.constant(g, tf.float32))
        finals.append(variable.numpy())
    expected = _numpy_steps(name, args, w0, grads)
    np.testing.assert_allclose(finals[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(finals[0], w0, atol=1e-3)  # the updates did move the weights


def _model() -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _fit_weights(optimizer: keras.optimizers.Optimizer, jit_compile: bool = False) -> list:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = rng.integers(0, 3, size=96)
    model = _model()
    model.compile(optimizer, "sparse_categorical_crossentropy", jit_compile=jit_compile)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_model_fit_with_fused_equals_stock(name, jit_compile):
    fused_cls, stock_cls, args = CONFIGS[name]
    fused = _fit_weights(fused_cls(**args), jit_compile)
    stock = _fit_weights(stock_cls(**args), jit_compile)
    for a, b in zip(fused, stock, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sparse_gradients_fall_back_to_the_stock_update():
    """Embedding gradients are tf.IndexedSlices: the fused classes use Keras's own update."""
    results = []
    for cls in (FusedRMSprop, keras.optimizers.RMSprop):
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [
                keras.Input((4,), dtype="int32"),
                keras.layers.Embedding(20, 3),
                keras.layers.Flatten(),
                keras.layers.Dense(1),
            ]
        )
        model.compile(cls(learning_rate=0.05), "mse")
        x = np.arange(40).reshape(10, 4) % 20
        model.fit(x, np.linspace(-1, 1, 10), batch_size=5, epochs=2, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_saved_model_reloads_the_fused_optimizer_and_its_state(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = _model()
    model.compile(optimizers.get("rmsprop", learning_rate=0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is FusedRMSprop
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Training on from the reloaded state is the same as training on in memory.
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-6)


def test_get_returns_fused_classes_unless_asked_not_to():
    expected = {
        "sgd": FusedSGD,
        "momentum": FusedSGD,
        "nesterov": FusedSGD,
        "rmsprop": FusedRMSprop,
        "adam": FusedAdam,
        "adamw": FusedAdamW,
        "nadam": keras.optimizers.Nadam,  # no fused kernel: the stock class
    }
    for name, cls in expected.items():
        assert type(optimizers.get(name)) is cls
    assert type(optimizers.get("rmsprop", fused=False)) is keras.optimizers.RMSprop
    assert fused_optimizers.fused_class(keras.optimizers.Adagrad) is keras.optimizers.Adagrad


def test_bad_fused_argument():
    with pytest.raises(ValueError, match=r"argument fused, expected True or False.*fused='no'"):
        optimizers.get("adam", fused="no")
    with pytest.raises(ValueError, match=r"instance together with .*'fused': False"):
        optimizers.get(keras.optimizers.Adam(), fused=False)
