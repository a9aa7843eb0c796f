"""kerasnn.optimizers.fused: the fused kernels compute Keras's rules (NumPy references), train
exactly like the stock optimizers (eager, graph, XLA, sparse gradients, a strategy), save as the
stock optimizers and reload in a process that never imports kerasnn."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_python

from kerasnn import optimizers
from kerasnn.optimizers.fused import fuse, is_fused

# (stock class, arguments)
CONFIGS = {
    "sgd": (keras.optimizers.SGD, {"learning_rate": 0.1}),
    "momentum": (keras.optimizers.SGD, {"learning_rate": 0.1, "momentum": 0.9}),
    "nesterov": (
        keras.optimizers.SGD,
        {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True},
    ),
    "rmsprop": (keras.optimizers.RMSprop, {"learning_rate": 0.01}),
    "rmsprop_momentum": (
        keras.optimizers.RMSprop,
        {"learning_rate": 0.01, "momentum": 0.5, "rho": 0.8},
    ),
    "rmsprop_centered": (
        keras.optimizers.RMSprop,
        {"learning_rate": 0.01, "centered": True, "epsilon": 1e-3},
    ),
    "adam": (keras.optimizers.Adam, {"learning_rate": 0.01, "beta_2": 0.99}),
    "amsgrad": (keras.optimizers.Adam, {"learning_rate": 0.01, "amsgrad": True}),
    "adamw": (keras.optimizers.AdamW, {"learning_rate": 0.01, "weight_decay": 0.1}),
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
    stock_cls, args = CONFIGS[name]
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(7, 5))
    grads = [rng.normal(size=(7, 5)) for _ in range(6)]
    finals = []
    for fused in (True, False):
        variable = keras.Variable(w0.astype("float32"))
        opt = fuse(stock_cls(**args)) if fused else stock_cls(**args)
        assert is_fused(opt) is fused
        step = _graph_step(opt, variable)
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
    stock_cls, args = CONFIGS[name]
    fused = _fit_weights(fuse(stock_cls(**args)), jit_compile)
    stock = _fit_weights(stock_cls(**args), jit_compile)
    for a, b in zip(fused, stock, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sparse_gradients_fall_back_to_the_stock_update():
    """Embedding gradients are tf.IndexedSlices: the fused classes use Keras's own update."""
    results = []
    for fused in (True, False):
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [
                keras.Input((4,), dtype="int32"),
                keras.layers.Embedding(20, 3),
                keras.layers.Flatten(),
                keras.layers.Dense(1),
            ]
        )
        opt = keras.optimizers.RMSprop(learning_rate=0.05)
        model.compile(fuse(opt) if fused else opt, "mse")
        x = np.arange(40).reshape(10, 4) % 20
        model.fit(x, np.linspace(-1, 1, 10), batch_size=5, epochs=2, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["rmsprop", "momentum", "adamw"])
def test_saved_model_reloads_as_the_stock_optimizer_with_its_state(tmp_path, name):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model = _model()
    model.compile(optimizers.get(name, learning_rate=0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert type(loaded.optimizer).__module__.startswith("keras.")
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Training on from the reloaded state is the same as training on in memory.
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-6)


def test_get_returns_fused_stock_classes_unless_asked_not_to():
    expected = {
        "sgd": keras.optimizers.SGD,
        "momentum": keras.optimizers.SGD,
        "nesterov": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
    }
    for name, cls in expected.items():
        opt = optimizers.get(name)
        assert (type(opt), is_fused(opt)) == (cls, True)
        assert not is_fused(optimizers.get(name, fused=False))
    assert not is_fused(optimizers.get("nadam"))  # no fused kernel: the plain class
    # A subclass keeps its own rule; a built optimizer can no longer be fused.
    subclass = type("MySGD", (keras.optimizers.SGD,), {})()
    assert not is_fused(fuse(subclass))
    built = keras.optimizers.Adam()
    built.build([keras.Variable(np.zeros(3, "float32"))])
    with pytest.raises(ValueError, match=r"expected an optimizer that is not built yet"):
        fuse(built)


def test_model_trained_with_fused_optimizer_loads_without_kerasnn(tmp_path):
    """The file names keras.optimizers.RMSprop: a process that never imports kerasnn loads it
    compiled, with the same optimizer state and the same predictions."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 6)).astype("float32")
    model = _model()
    model.compile(optimizers.get("rmsprop"), "sparse_categorical_crossentropy")
    model.fit(x, rng.integers(0, 3, size=32), batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    code = (
        "import sys, keras, numpy as np\n"
        "m = keras.saving.load_model(sys.argv[1] + '/m.keras')\n"
        "assert 'kerasnn' not in sys.modules, 'kerasnn was imported'\n"
        "assert type(m.optimizer) is keras.optimizers.RMSprop, type(m.optimizer)\n"
        "p = m.predict(np.load(sys.argv[1] + '/x.npy'), verbose=0)\n"
        "np.testing.assert_array_equal(p, np.load(sys.argv[1] + '/expected.npy'))\n"
        "print('ok', len(m.optimizer.variables))\n"
    )
    out = run_python(code, str(tmp_path), kerasnn_on_path=False)
    assert out.strip().splitlines()[-1] == f"ok {len(model.optimizer.variables)}"


LEGACY = [
    ("FusedSGD", keras.optimizers.SGD),
    ("FusedRMSprop", keras.optimizers.RMSprop),
    ("FusedAdam", keras.optimizers.Adam),
    ("FusedAdamW", keras.optimizers.AdamW),
]


@pytest.mark.parametrize(("name", "cls"), LEGACY)
def test_kerasnn_0_1_optimizer_names_still_load(name, cls):
    config = keras.optimizers.serialize(cls(learning_rate=0.02))
    # kerasnn 0.1 saved its optimizer subclasses from the module kerasnn.fused_optimizers.
    legacy = {**config, "module": "kerasnn.fused_optimizers", "class_name": name}
    legacy["registered_name"] = f"kerasnn>{name}"
    opt = keras.optimizers.deserialize(legacy)
    assert (type(opt), is_fused(opt)) == (cls, True)
    assert float(opt.learning_rate) == pytest.approx(0.02)


def test_import_kerasnn_registers_the_legacy_loaders():
    """`import kerasnn` alone (then Keras) registers them: kerasnn._registration imports
    kerasnn.optimizers.fused when Keras loads."""
    code = (
        "import kerasnn, keras\n"
        "names = ('FusedSGD', 'FusedRMSprop', 'FusedAdam', 'FusedAdamW')\n"
        "print([keras.saving.get_registered_object(f'kerasnn>{n}').__module__ for n in names])\n"
    )
    out = run_python(code)
    assert out.strip().splitlines()[-1] == str(["kerasnn.optimizers.fused"] * 4)


def test_bad_fused_argument():
    with pytest.raises(ValueError, match=r"argument fused, expected True or False.*fused='no'"):
        optimizers.get("adam", fused="no")
    with pytest.raises(ValueError, match=r"instance together with .*'fused': False"):
        optimizers.get(keras.optimizers.Adam(), fused=False)
