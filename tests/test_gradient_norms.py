"""GradientNorms: the gradients the optimizer applies, against a tape replay of each step."""

import json
import math
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_python

import kerasnn as knn
from kerasnn.callbacks import GradientNorms

N, BATCH = 256, 32  # 8 steps per epoch


@pytest.fixture(scope="module")
def data():
    digits = knn.datasets.load("digits", seed=0)
    return digits.x_train[:N], digits.y_train[:N]


def _sequential():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="tanh", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ]
    )


def _functional():
    inputs = keras.Input((64,))
    a = keras.layers.Dense(12, activation="relu", name="a")(inputs)
    b = keras.layers.Dense(
        12, activation="sigmoid", name="b", kernel_regularizer=keras.regularizers.L2(1e-3)
    )(inputs)
    merged = keras.layers.Concatenate(name="cat")([a, b])
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="out")(merged))


def _compiled(build, optimizer, steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(
        optimizer(), "sparse_categorical_crossentropy", steps_per_execution=steps_per_execution
    )
    return model


def replay(build, optimizer, x, y, epochs):
    """Independent reference: each step by hand (tape, the compiled loss with its
    regularization, the optimizer's `apply`), its gradient's norms in NumPy."""
    model = _compiled(build, optimizer)
    steps = []
    for _ in range(epochs):
        for start in range(0, len(x), BATCH):
            xb, yb = x[start : start + BATCH], y[start : start + BATCH]
            with tf.GradientTape() as tape:
                y_pred = model(xb, training=True)
                loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, training=True)
            grads = tape.gradient(loss, model.trainable_variables)
            squares = {
                id(v): float(np.sum(g.numpy().astype(np.float64) ** 2))
                for v, g in zip(model.trainable_variables, grads, strict=True)
            }
            norms = {"grad_norm": math.sqrt(sum(squares.values()))}
            for layer in model.layers:
                if layer.trainable_variables:
                    norms[f"grad_norm/{layer.name}"] = math.sqrt(
                        sum(squares[id(v)] for v in layer.trainable_variables)
                    )
            steps.append((norms, [g.numpy() for g in grads]))
            model.optimizer.apply(grads, model.trainable_variables)
    return steps, model


OPTIMIZERS = {
    "keras_sgd": lambda: keras.optimizers.SGD(0.05),
    "keras_adam": lambda: keras.optimizers.Adam(3e-3),
    "fused_rmsprop": lambda: knn.optimizers.get("rmsprop", learning_rate=3e-3),
    "fused_nesterov": lambda: knn.optimizers.get("nesterov", learning_rate=0.05),
}


@pytest.mark.parametrize(
    ("build", "optimizer", "spe"),
    [
        (_sequential, "keras_sgd", 1),
        (_functional, "keras_adam", 4),
        (_sequential, "fused_rmsprop", 8),
        (_functional, "fused_nesterov", 3),
    ],
)
def test_every_step_equals_a_tape_replay(data, build, optimizer, spe):
    x, y = data
    reference, replayed = replay(build, OPTIMIZERS[optimizer], x, y, epochs=2)
    model = _compiled(build, OPTIMIZERS[optimizer], steps_per_execution=spe)
    norms = GradientNorms(every_n_steps=1)
    history = model.fit(
        x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[norms]
    )
    # One record per optimizer step, also inside fused executions: the k-th update is step k.
    assert [r.step for r in norms.records] == list(range(1, 17))
    assert [r.epoch for r in norms.records] == [1] * 8 + [2] * 8
    for record, (expected, _) in zip(norms.records, reference, strict=True):
        assert sorted(record.norms) == sorted(expected)
        for key, value in expected.items():
            assert record.norms[key] == pytest.approx(value, rel=2e-5), (record.step, key)
    # Each epoch's logs hold its last step's norms.
    assert history.history["grad_norm"] == [
        norms.records[7].norms["grad_norm"],
        norms.records[15].norms["grad_norm"],
    ]
    for a, b in zip(model.get_weights(), replayed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_every_n_steps_and_epoch_ends_on_plain_fit(data):
    x, y = data
    model = _compiled(_sequential, OPTIMIZERS["keras_sgd"], steps_per_execution=8)
    norms = GradientNorms(every_n_steps=3)
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[norms])
    # every 3rd step and each epoch's last (8, 16), read out of fused 8-step executions
    assert [r.step for r in norms.records] == [3, 6, 8, 9, 12, 15, 16]
    assert "apply" not in vars(model.optimizer)  # the wrapper is gone after training


@pytest.mark.parametrize(
    ("option", "threshold"),
    [("clipnorm", 0.05), ("global_clipnorm", 0.1), ("clipvalue", 0.002), ("clipnorm", 1e6)],
)
def test_clipping_figures_follow_keras_rule(data, option, threshold):
    x, y = data
    optimizer = lambda: keras.optimizers.SGD(0.05, **{option: threshold})  # noqa: E731
    reference, replayed = replay(_sequential, optimizer, x, y, epochs=1)
    model = _compiled(_sequential, optimizer, steps_per_execution=4)
    norms = GradientNorms(every_n_steps=1)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[norms])
    for record, (expected, grads) in zip(norms.records, reference, strict=True):
        g = [a.astype(np.float64) for a in grads]
        if option == "clipnorm":
            clipped = [a * threshold / max(np.linalg.norm(a), threshold) for a in g]
        elif option == "global_clipnorm":
            total = math.sqrt(sum(np.sum(a**2) for a in g))
            clipped = [a * threshold / max(total, threshold) for a in g]
        else:
            clipped = [np.clip(a, -threshold, threshold) for a in g]
        clipped_norm = math.sqrt(sum(np.sum(a**2) for a in clipped))
        acted = any(not np.allclose(a, b, rtol=0, atol=0) for a, b in zip(g, clipped, strict=True))
        assert record.norms["grad_norm"] == pytest.approx(expected["grad_norm"], rel=2e-5)
        assert record.norms["grad_norm_clipped"] == pytest.approx(clipped_norm, rel=2e-5)
        assert record.norms["clipped"] == float(acted)
    assert any(r.norms["clipped"] for r in norms.records) == (threshold < 1)
    for a, b in zip(model.get_weights(), replayed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_loss_scale_optimizer_reports_unscaled_gradients(data):
    x, y = data
    reference, _ = replay(_sequential, OPTIMIZERS["keras_sgd"], x, y, epochs=1)
    model = _compiled(
        _sequential, lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.05))
    )
    norms = GradientNorms(every_n_steps=1)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[norms])
    got = [r.norms["grad_norm"] for r in norms.records]
    assert got == pytest.approx([n["grad_norm"] for n, _ in reference], rel=2e-5)


def test_training_is_unchanged_bit_for_bit_under_kerasnn_fit(data):
    """Dropout, batch norm, the fused optimizer and fused steps: the same weights and history."""
    digits = knn.datasets.load("digits", seed=0)

    def train(callbacks):
        keras.utils.set_random_seed(3)
        model = knn.models.mlp(digits, hidden=[32], dropout=0.3, batchnorm=True)
        knn.compile(model, "adam", learning_rate=3e-3)
        result = knn.fit(
            model, digits, epochs=2, verbose=0, callbacks=callbacks, early_stopping=False
        )
        return model.get_weights(), result

    plain_w, plain = train([])
    norms = GradientNorms(every_n_steps=1)
    norms_w, probed = train([norms])
    for a, b in zip(plain_w, norms_w, strict=True):
        np.testing.assert_array_equal(a, b)
    assert plain.history["loss"] == probed.history["loss"]
    assert plain.history["val_accuracy"] == probed.history["val_accuracy"]
    # kerasnn.fit no longer unfuses its steps for the callback.
    assert probed.steps_per_execution == plain.steps_per_execution > 1
    steps = math.ceil(len(digits.x_train) * 0.9 / 32)
    assert [r.step for r in norms.records] == list(range(1, 2 * steps + 1))
    assert probed.history["grad_norm"][-1] == norms.records[-1].norms["grad_norm"]
    assert "grad_norm/dense_1" in probed.history


def test_records_reach_tensorboard_at_their_step(data, tmp_path):
    x, y = data
    model = _compiled(_sequential, OPTIMIZERS["keras_sgd"], steps_per_execution=8)
    norms = GradientNorms(every_n_steps=2, log_dir=tmp_path / "tb")
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[norms])
    seen = {}
    for path in (tmp_path / "tb" / "train").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    assert {step for tag, step in seen if tag == "step_grad_norm"} == {2, 4, 6, 8}
    for record in norms.records:
        assert seen[("step_grad_norm", record.step)] == pytest.approx(record.norms["grad_norm"])
        assert ("step_grad_norm/hidden", record.step) in seen


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"every_n_steps": 0},
            "every_n_steps, expected a positive integer. Received: every_n_steps=0",
        ),
        ({"every_n_steps": None}, "every_n_steps, expected a positive integer"),
        ({"log_dir": 3}, "log_dir, expected a folder path or None. Received: log_dir=3"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradientNorms(**kwargs)


def test_config_round_trip():
    norms = GradientNorms(every_n_steps=7, per_layer=False, log_dir="tb")
    again = GradientNorms.from_config(norms.get_config())
    assert (again.every_n_steps, again.per_layer, again.log_dir) == (7, False, "tb")


_MIRRORED = textwrap.dedent(
    """
    import json, os
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import kerasnn as knn
    from kerasnn.callbacks import GradientNorms, UpdateRatios

    digits = knn.datasets.load("digits", seed=0)
    x, y = digits.x_train[:256], digits.y_train[:256]

    def run(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="tanh"),
                                      keras.layers.Dense(10, activation="softmax")])
            model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
        norms, ratios = GradientNorms(every_n_steps=1), UpdateRatios(every_n_steps=1)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False,
                  callbacks=[norms, ratios])
        return {
            "replicas": strategy.num_replicas_in_sync,
            "norms": [r.norms["grad_norm"] for r in norms.records],
            "ratios": [list(r.ratios.values()) for r in ratios.records],
        }

    one = run(tf.distribute.get_strategy())
    two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(json.dumps({"one": one, "two": two}))
    """
)


def test_mirrored_strategy_reports_the_aggregated_gradient():
    out = json.loads(run_python(_MIRRORED).strip().splitlines()[-1])
    one, two = out["one"], out["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    # The gradient applied under 2 replicas is the sum of their halves: the full batch's.
    assert len(two["norms"]) == 8
    assert two["norms"] == pytest.approx(one["norms"], rel=1e-5)
    assert np.allclose(two["ratios"], one["ratios"], rtol=1e-4)
