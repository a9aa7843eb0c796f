"""compile / fit / evaluate: task defaults, data checks, run folders, resume, NaN, determinism."""

import json
import math
import os
import stat

import keras
import numpy as np
import pytest

import kerasnn as knn
from kerasnn import training
from kerasnn.callbacks import EarlyStopping, read_history_csv


@pytest.fixture(scope="module")
def iris():
    return knn.datasets.load("iris", seed=0)


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _model(data, **kwargs):
    keras.utils.set_random_seed(0)
    model = knn.models.mlp(data, hidden=kwargs.pop("hidden", [16]))
    return knn.compile(model, kwargs.pop("optimizer", "adam"), **kwargs)


class _Crash(keras.callbacks.Callback):
    """Raises at the end of a given epoch, like a process dying there."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.at = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt(f"simulated crash after epoch {epoch}")


# -- compile ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "loss", "metrics"),
    [
        ("iris", "SparseCategoricalCrossentropy", ["accuracy"]),
        ("breast_cancer", "BinaryCrossentropy", ["accuracy", "auc"]),
        ("diabetes", "MeanSquaredError", ["mae", "rmse"]),
    ],
)
def test_compile_picks_loss_and_metrics_from_the_output_layer(name, loss, metrics):
    data = knn.datasets.load(name)
    model = knn.compile(knn.models.mlp(data, hidden=[4]))
    assert type(model.loss).__name__ == loss
    assert training.task_of(model) == data.task
    result = knn.evaluate(model, data)
    assert sorted(result) == sorted(["loss", *metrics])


@pytest.mark.parametrize(
    ("optimizer", "kwargs", "cls", "lr"),
    [
        ("sgd", {}, keras.optimizers.SGD, 0.01),
        ("momentum", {"learning_rate": 0.05}, keras.optimizers.SGD, 0.05),
        ("nesterov", {"learning_rate": 0.1}, keras.optimizers.SGD, 0.1),
        ("rmsprop", {}, keras.optimizers.RMSprop, 0.001),
        ("adam", {"learning_rate": 3e-4}, keras.optimizers.Adam, 3e-4),
        ("adamw", {"weight_decay": 0.01}, keras.optimizers.AdamW, 0.001),
    ],
)
def test_compile_optimizers_by_name(iris, optimizer, kwargs, cls, lr):
    model = _model(iris, optimizer=optimizer, **kwargs)
    assert isinstance(model.optimizer, cls)
    assert float(model.optimizer.learning_rate) == pytest.approx(lr)


def test_compile_takes_an_optimizer_instance(iris):
    instance = keras.optimizers.SGD(learning_rate=0.2)
    model = _model(iris, optimizer=instance)
    assert model.optimizer is instance


def test_compile_clipnorm_reaches_the_optimizer(iris):
    model = _model(iris, clipnorm=1.0)
    assert model.optimizer.clipnorm == 1.0


def test_compile_refuses_unknown_optimizer(iris):
    with pytest.raises(
        ValueError, match=r"argument optimizer, expected one of .*Did you mean 'rmsprop'"
    ):
        _model(iris, optimizer="rmsprob")


def test_compile_cannot_guess_task_of_a_custom_output():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
    with pytest.raises(ValueError, match="Could not tell the task"):
        knn.compile(model)
    knn.compile(model, task="regression")
    assert type(model.loss).__name__ == "MeanSquaredError"


# -- fit: results and defaults ------------------------------------------------------------------
def test_fit_learns_digits_and_reports(digits):
    model = _model(digits, hidden=[64], learning_rate=3e-3)
    result = knn.fit(model, digits, epochs=15, verbose=0)
    assert result.test_metrics["accuracy"] > 0.93
    assert result.epochs == len(result.history["loss"]) <= 15
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1  # from 1
    assert result.best_metrics["val_loss"] == min(result.history["val_loss"])
    assert result.steps_per_execution == math.ceil(len(digits.x_train) * 0.9 / 32)
    # The model holds the best epoch's weights: its validation loss is the best one.
    assert result.stop_reason in ("completed", "early_stopping")
    json.dumps(result.to_dict())


def test_auto_steps_per_execution_caps_at_64():
    assert training.auto_steps_per_execution(100, 32) == 4
    assert training.auto_steps_per_execution(60000, 128) == 64
    assert training.auto_steps_per_execution(10, 32) == 1


def test_early_stopping_restores_best_weights_and_records_why(iris):
    model = _model(iris, learning_rate=0.05)
    stopper = EarlyStopping(patience=2)
    result = knn.fit(model, iris, epochs=200, early_stopping=stopper, verbose=0)
    assert result.stop_reason == "early_stopping"
    assert result.epochs == result.best_epoch + 2  # best, then two epochs without improvement
    assert result.stopped_epoch == result.epochs  # epochs are counted from 1
    x_val_loss = result.history["val_loss"][result.best_epoch - 1]
    assert x_val_loss == min(result.history["val_loss"])


def test_validation_split_is_stratified_and_seeded(iris):
    a = _model(iris)
    r1 = knn.fit(a, iris, epochs=2, seed=3, verbose=0)
    b = _model(iris)
    r2 = knn.fit(b, iris, epochs=2, seed=3, verbose=0)
    assert r1.history == r2.history


def test_same_seed_same_metrics_twice(digits):
    results = []
    for _ in range(2):
        model = _model(digits, hidden=[32])
        results.append(knn.fit(model, digits, epochs=4, seed=7, verbose=0))
    assert results[0].history == results[1].history
    assert results[0].test_metrics == results[1].test_metrics


def test_no_validation_means_no_early_stopping(iris):
    result = knn.fit(_model(iris), iris, epochs=3, validation_split=0, verbose=0)
    assert "val_loss" not in result.history
    assert result.epochs == 3 and result.best_epoch == 3 == result.kept_epoch
    assert result.stop_reason == "completed"


def test_explicit_validation_data_and_array_pairs(iris):
    model = _model(iris)
    result = knn.fit(
        model,
        (iris.x_train, iris.y_train),
        validation_data=(iris.x_test, iris.y_test),
        epochs=2,
        verbose=0,
    )
    assert result.test_metrics is None
    assert len(result.history["val_loss"]) == 2


# -- fit: bad input, before any training ----------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, r"argument epochs, expected a positive integer. Received: epochs=0"),
        ({"epochs": -3}, r"Received: epochs=-3"),
        ({"batch_size": 0}, r"argument batch_size, expected a positive integer"),
        ({"validation_split": 1.0}, r"argument validation_split, expected a float in \[0, 1\)"),
        ({"early_stopping": "yes"}, r"argument early_stopping"),
    ],
)
def test_fit_rejects_bad_arguments(iris, kwargs, match):
    with pytest.raises(ValueError, match=match):
        knn.fit(_model(iris), iris, verbose=0, **kwargs)


def test_fit_rejects_wrong_input_shape(iris):
    model = _model(iris)
    x = np.zeros((10, 5), "float32")
    with pytest.raises(
        ValueError, match=r"expected samples of shape \(4,\).*Received: samples of shape \(5,\)"
    ):
        knn.fit(model, (x, np.zeros(10, "int32")), verbose=0)


def test_fit_rejects_labels_outside_classes(iris):
    model = _model(iris)
    y = iris.y_train.copy()
    y[0] = 3
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        knn.fit(model, (iris.x_train, y), verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_rejects_non_finite_data(iris, bad):
    x = iris.x_train.copy()
    x[5, 1] = bad
    with pytest.raises(ValueError, match=r"NaN|inf"):
        knn.fit(_model(iris), (x, iris.y_train), verbose=0)


def test_fit_needs_a_compiled_model(iris):
    model = knn.models.mlp(iris, hidden=[4])
    with pytest.raises(RuntimeError, match="not compiled"):
        knn.fit(model, iris)


# -- NaN loss ------------------------------------------------------------------------------------
def test_nan_loss_stops_with_where_and_keeps_the_best_finite_weights(iris, tmp_path):
    model = _model(iris, optimizer="sgd", learning_rate=1e4)
    result = knn.fit(model, iris, epochs=50, run_dir=tmp_path / "run", verbose=0)
    assert result.stop_reason == "nan_loss"
    where = result.non_finite_loss
    assert where.exact and where.epoch == result.stopped_epoch >= 2  # a finite epoch first
    assert f"at epoch {where.epoch}, step {where.step} of {where.steps}" in result.message
    assert (result.kept_weights, result.kept_epoch) == ("best", result.best_epoch)
    assert result.best_epoch < where.epoch
    assert math.isfinite(result.best_metrics["val_loss"])
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)  # best (finite) weights restored
    saved = keras.models.load_model(tmp_path / "run" / "model.keras")
    for a, b in zip(saved.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)
    # Every array of model.keras is finite: the optimizer's too (the last finite epoch's).
    assert all(np.isfinite(v.numpy()).all() for v in saved.optimizer.variables)
    text = (tmp_path / "run" / "metrics.json").read_text()
    metrics = json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert metrics["stop_reason"] == "nan_loss" and metrics["kept_weights"] == "best"
    assert metrics["non_finite_loss"]["step"] == where.step


# -- run folders ---------------------------------------------------------------------------------
def test_run_folder_contents_and_reload(iris, tmp_path):
    model = _model(iris)
    result = knn.fit(model, iris, epochs=3, run_dir=tmp_path / "run", verbose=0)
    run = tmp_path / "run"
    assert result.run_dir == run
    assert sorted(p.name for p in run.iterdir()) == [
        "history.csv",
        "history.png",
        "metrics.json",
        "model.keras",
    ]
    assert not (tmp_path / "run.partial").exists()
    rows = read_history_csv(run / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]  # the n-th epoch trained is epoch n
    assert [float(r["loss"]) for r in rows] == result.history["loss"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_metrics"] == pytest.approx(result.test_metrics)
    # One numbering everywhere: metrics.json, the summary line and history.csv's rows.
    best = metrics["best_epoch"]
    assert best == result.best_epoch and metrics["kept_epoch"] == result.kept_epoch
    assert f"best {best}," in result.summary()
    best_row = next(r for r in rows if int(r["epoch"]) == best)
    assert float(best_row["val_loss"]) == result.best_metrics["val_loss"]
    reloaded = keras.models.load_model(run / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(iris.x_test, verbose=0), model.predict(iris.x_test, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize("umask", [0o022])  # 0o077 would equal tempfile.mkstemp's 0o600
def test_every_run_folder_file_gets_the_umask_mode(iris, tmp_path, umask):
    """Every file of a finished run folder (history, metrics, model, each figure) has the mode
    a plain open() gives: 0o666 less the umask (a bare tempfile.mkstemp would give 0o600)."""
    model = _model(iris)
    old = os.umask(umask)
    try:
        knn.fit(
            model,
            iris,
            epochs=3,
            run_dir=tmp_path / "run",
            lr_schedule="one_cycle",
            callbacks=["activation_stats", "gradient_norms"],
            early_stopping={"patience": 5},
            verbose=0,
        )
    finally:
        os.umask(old)
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").iterdir()}
    assert set(files) == {
        "activation_stats.png",
        "grad_norms.png",
        "history.csv",
        "history.png",
        "lr.png",
        "metrics.json",
        "model.keras",
    }
    assert files == dict.fromkeys(files, 0o666 & ~umask)


def test_finished_run_is_never_overwritten_by_default(iris, tmp_path):
    knn.fit(_model(iris), iris, epochs=1, run_dir=tmp_path / "run", verbose=0)
    before = (tmp_path / "run" / "metrics.json").read_text()
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        knn.fit(_model(iris), iris, epochs=1, run_dir=tmp_path / "run", verbose=0)
    assert (tmp_path / "run" / "metrics.json").read_text() == before


def test_failed_run_leaves_earlier_run_intact(iris, tmp_path):
    knn.fit(_model(iris), iris, epochs=1, run_dir=tmp_path / "run", verbose=0)
    before = (tmp_path / "run" / "metrics.json").read_text()
    with pytest.raises(KeyboardInterrupt):
        knn.fit(
            _model(iris),
            iris,
            epochs=5,
            callbacks=[_Crash(1)],
            run_dir=tmp_path / "run",
            overwrite=True,
            verbose=0,
        )
    assert (tmp_path / "run" / "metrics.json").read_text() == before
    assert (tmp_path / "run.partial" / "backup").exists()


def test_resume_after_crash_matches_uninterrupted_run(digits, tmp_path):
    kwargs = dict(epochs=8, early_stopping={"patience": 2}, verbose=0)
    straight = knn.fit(_model(digits, hidden=[32]), digits, run_dir=tmp_path / "a", **kwargs)

    with pytest.raises(KeyboardInterrupt):
        knn.fit(
            _model(digits, hidden=[32]),
            digits,
            run_dir=tmp_path / "b",
            callbacks=[_Crash(2)],
            **kwargs,
        )
    # The crash callback runs before the history log: epochs 1 and 2 were recorded.
    rows = read_history_csv(tmp_path / "b.partial" / "history.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    resumed = knn.fit(
        _model(digits, hidden=[32]), digits, run_dir=tmp_path / "b", resume=True, **kwargs
    )
    assert resumed.epochs == straight.epochs
    assert resumed.stop_reason == straight.stop_reason
    assert resumed.best_epoch == straight.best_epoch
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-5)
    # The resumed history.csv holds every epoch once, numbered from 1.
    rows = read_history_csv(tmp_path / "b" / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, straight.epochs + 1))
    assert resumed.test_metrics == pytest.approx(straight.test_metrics, rel=1e-5)


def test_resume_without_interrupted_run_is_an_error(iris, tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        knn.fit(_model(iris), iris, epochs=1, run_dir=tmp_path / "x", resume=True, verbose=0)


# -- evaluate ------------------------------------------------------------------------------------
def test_evaluate_matches_numpy_accuracy(digits):
    model = _model(digits, hidden=[32], learning_rate=3e-3)
    knn.fit(model, digits, epochs=5, verbose=0)
    metrics = knn.evaluate(model, digits)
    probs = model.predict(digits.x_test, verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == digits.y_test))
    loss = float(-np.mean(np.log(probs[np.arange(len(probs)), digits.y_test])))
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["loss"] == pytest.approx(loss, rel=1e-4)
