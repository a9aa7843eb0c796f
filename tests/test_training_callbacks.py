"""Activation statistics and early stopping records on real models (gradient norms:
test_gradient_norms.py)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasnn as knn
from kerasnn.callbacks import ActivationStats, EarlyStopping, GradientNorms


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _sequential(n_in, n_out):
    return keras.Sequential(
        [
            keras.Input((n_in,)),
            keras.layers.Dense(16, activation="tanh", name="hidden"),
            keras.layers.Dense(n_out, activation="softmax", name="out"),
        ]
    )


def _functional(n_in, n_out):
    inputs = keras.Input((n_in,))
    a = keras.layers.Dense(12, activation="relu", name="a")(inputs)
    b = keras.layers.Dense(
        12, activation="sigmoid", name="b", kernel_regularizer=keras.regularizers.L2(1e-3)
    )(inputs)
    merged = keras.layers.Concatenate(name="cat")([a, b])
    return keras.Model(inputs, keras.layers.Dense(n_out, activation="softmax", name="out")(merged))


def test_activation_stats_match_numpy(digits):
    keras.utils.set_random_seed(0)
    model = _functional(64, 10)
    model.compile("adam", "sparse_categorical_crossentropy")
    probe = digits.x_train[:100]
    stats = ActivationStats(probe=probe, bins=10, histogram_range=(0.0, 2.0))
    history = model.fit(digits.x_train, digits.y_train, epochs=2, verbose=0, callbacks=[stats])
    (epoch, layer_stats) = stats.history[-1]
    assert epoch == 1 and [s.name for s in layer_stats] == ["a", "b", "out"]
    a = keras.Model(model.inputs[0], model.get_layer("a").output)(probe).numpy()
    b = keras.Model(model.inputs[0], model.get_layer("b").output)(probe).numpy()
    np.testing.assert_allclose(history.history["act_mean/a"][-1], a.mean(), rtol=1e-5)
    np.testing.assert_allclose(history.history["act_std/b"][-1], b.std(), rtol=1e-5)
    assert history.history["act_dead/a"][-1] == np.mean(np.all(a == 0, axis=0))
    sat = np.mean((b <= 0.01) | (b >= 0.99))
    assert history.history["act_saturated/b"][-1] == pytest.approx(sat)
    counts, _ = layer_stats[0].histogram
    np.testing.assert_array_equal(counts, np.histogram(a, bins=10, range=(0.0, 2.0))[0])


def test_early_stopping_stops_at_the_scripted_epoch(digits):
    """val_loss table: best at epoch 4 (index 3), patience 2 -> stops after epoch 6; the
    result counts epochs from 1, as the message does."""
    table = [1.0, 0.8, 0.7, 0.5, 0.6, 0.55, 0.4, 0.3]

    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = table[epoch]

    model = knn.compile(knn.models.mlp(digits, hidden=[8]))
    result = knn.fit(
        model,
        digits,
        epochs=len(table),
        verbose=0,
        callbacks=[Script()],
        early_stopping={"patience": 2},
    )
    assert result.epochs == 6 and result.stopped_epoch == 6 and result.best_epoch == 4
    assert result.kept_epoch == 4 and result.best_metrics["val_loss"] == 0.5
    assert result.stop_reason == "early_stopping"
    assert result.history["val_loss"] == table[:6]
    assert "val_loss had not improved for 2 epochs (best 0.5 at epoch 4" in result.message
    assert result.to_dict()["stopped_epoch"] == 6


def test_early_stopping_never_takes_a_non_finite_epoch_as_the_best(digits):
    """val_loss NaN at the first epoch: Keras would keep it as the best (nothing to compare
    with) and never improve on it; kerasnn's counts it as an epoch without improvement."""
    table = [math.nan, 0.8, 0.9, 1.0, 0.95]

    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = table[epoch]

    model = knn.compile(knn.models.mlp(digits, hidden=[8]))
    stopper = EarlyStopping(patience=2)
    result = knn.fit(
        model, digits, epochs=len(table), verbose=0, callbacks=[Script()], early_stopping=stopper
    )
    assert (result.best_epoch, result.stopped_epoch, result.epochs) == (2, 4, 4)
    assert result.kept_weights == "best" and result.best_metrics["val_loss"] == 0.8
    assert "val_loss had not improved for 2 epochs (best 0.8 at epoch 2" in result.message


def test_early_stopping_message_when_no_epoch_was_finite(digits):
    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = math.inf

    model = knn.compile(knn.models.mlp(digits, hidden=[8]))
    result = knn.fit(
        model, digits, epochs=5, verbose=0, callbacks=[Script()], early_stopping={"patience": 2}
    )
    assert result.stop_reason == "early_stopping" and result.stopped_epoch == 2
    assert result.message == (
        "Early stopping at epoch 2: val_loss had not been finite for 2 epochs (no epoch had a "
        "finite value; no weights were restored)."
    )
    assert result.kept_weights == "last"


def test_early_stopping_monitor_must_exist(digits):
    model = knn.compile(knn.models.mlp(digits, hidden=[8]))
    with pytest.raises(
        ValueError,
        match=r"argument monitor, expected one of the quantities "
        r"training logs: .*val_accuracy.*Received: monitor='val_acc'",
    ):
        knn.fit(model, digits, epochs=2, verbose=0, early_stopping={"monitor": "val_acc"})
    assert not model.optimizer.built  # refused before any training step
    plain = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    plain.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"training logs: loss.*Received: monitor='val_loss'"):
        plain.fit(digits.x_train, digits.y_train, epochs=1, verbose=0, callbacks=[EarlyStopping()])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: GradientNorms(every_n_steps=0), "argument every_n_steps, expected a positive"),
        (lambda: GradientNorms(every_n_steps=-3), "Received: every_n_steps=-3"),
        (lambda: ActivationStats(bins=0), "argument bins, expected a positive integer"),
        (lambda: ActivationStats(histogram_range=(1, 0)), "argument histogram_range, expected"),
    ],
)
def test_callback_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_activation_stats_need_their_probe_with_plain_model_fit(digits):
    model = _sequential(64, 10)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="argument probe, expected"):
        model.fit(
            digits.x_train, digits.y_train, epochs=1, verbose=0, callbacks=[ActivationStats()]
        )


def test_callbacks_round_trip_their_config():
    for cb in (
        GradientNorms(every_n_steps=7, per_layer=False),
        ActivationStats(bins=5, histogram_range=(0, 1), layers=["a"]),
    ):
        again = type(cb).from_config(cb.get_config())
        assert again.get_config() == cb.get_config()


def _tensorboard_scalars(log_dir) -> dict[str, dict[str, list[float]]]:
    """{run ("train"/"validation"): {tag: values by step}} read back from the event files."""
    from pathlib import Path

    from tensorboard.util import tensor_util

    scalars: dict[str, dict[str, list[float]]] = {}
    for path in sorted(Path(log_dir).rglob("events.out.tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag.startswith("epoch_"):
                    number = float(tensor_util.make_ndarray(value.tensor))
                    scalars.setdefault(path.parent.name, {}).setdefault(value.tag, []).append(
                        number
                    )
    return scalars


@pytest.mark.parametrize("order", [("grad_norms", "tensorboard"), ("tensorboard", "grad_norms")])
def test_tensorboard_sees_learning_rate_and_gradient_norms(digits, tmp_path, order):
    """Whatever order the callbacks are listed in, TensorBoard gets kerasnn's logged scalars."""
    model = knn.models.mlp(digits, hidden=[16])
    knn.compile(model, "sgd", learning_rate=0.1)
    specs = {"grad_norms": {"grad_norms": {}}, "tensorboard": {"tensorboard": {}}}
    specs["tensorboard"]["tensorboard"]["log_dir"] = str(tmp_path / "tb")
    result = knn.fit(
        model,
        digits,
        epochs=3,
        callbacks=[specs[name] for name in order],
        lr_schedule={"exponential": {"k": 0.5}},
        verbose=0,
    )
    train = _tensorboard_scalars(tmp_path / "tb")["train"]
    for key in ("grad_norm", "grad_norm/dense_1", "loss"):
        np.testing.assert_allclose(train[f"epoch_{key}"], result.history[key], rtol=1e-6)
    # History/CSV hold the rate each epoch trained with (the lectures' a0*exp(-k*t), t = epoch);
    # Keras's TensorBoard writes the optimizer's rate once the epoch is over: t = epoch + 1.
    epochs = np.arange(3)
    np.testing.assert_allclose(result.history["learning_rate"], 0.1 * np.exp(-0.5 * epochs))
    np.testing.assert_allclose(train["epoch_learning_rate"], 0.1 * np.exp(-0.5 * (epochs + 1)))
