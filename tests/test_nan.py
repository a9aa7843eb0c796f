"""NaN/inf losses: the exact step, only finite weights kept, strict JSON in every file written."""

import contextlib
import json
import math

import keras
import numpy as np
import pytest

import kerasnn as knn
from kerasnn import _json
from kerasnn.callbacks import NaNGuard

N, D, BATCH = 64, 3, 8  # 8 steps per epoch
STEPS = N // BATCH


def _strict(text: str):
    """`json.loads` that fails the test on the bare NaN / Infinity / -Infinity tokens."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))


def _regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5], "float32") + 0.3)[:, None].astype("float32")
    return x, y


def _linear(lr: float) -> keras.Model:
    """Dense(1) from zero weights, plain SGD on the mean squared error."""
    model = keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])
    knn.compile(model, "sgd", learning_rate=lr)
    model.set_weights([np.zeros((D, 1), "float32"), np.zeros((1,), "float32")])
    return model


def _numpy_first_non_finite(x, y, lr):
    """NumPy float32 replay of SGD on the MSE, batches in order: (epoch, step, global step,
    value) of the first batch whose loss is not finite, epochs and steps counted from 1."""
    w, b, lr = np.zeros((D, 1), "float32"), np.zeros(1, "float32"), np.float32(lr)
    global_step = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1000):
            for step in range(STEPS):
                xb, yb = x[step * BATCH : (step + 1) * BATCH], y[step * BATCH : (step + 1) * BATCH]
                residual = xb @ w + b - yb
                loss = np.mean(residual * residual)
                global_step += 1
                if not np.isfinite(loss):
                    return epoch + 1, step + 1, global_step, float(loss)
                grad = np.float32(2 / BATCH) * residual
                w, b = w - lr * (xb.T @ grad), b - lr * grad.sum(0)
    raise AssertionError("the replay never diverged")


def _fit(model, data, **kwargs):
    args = {
        "epochs": 100,
        "batch_size": BATCH,
        "validation_split": 0,
        "early_stopping": False,
        "shuffle": False,
        "verbose": 0,
    }
    return knn.fit(model, data, **(args | kwargs))


def _all_finite(model) -> bool:
    arrays = [v.numpy() for v in [*model.variables, *model.optimizer.variables]]
    return all(np.isfinite(a).all() for a in arrays if np.issubdtype(a.dtype, np.floating))


# -- the exact step ------------------------------------------------------------------------------
@pytest.mark.parametrize("steps_per_execution", ["auto", 1, 3])
def test_nan_step_is_the_first_non_finite_batch_loss(steps_per_execution, tmp_path):
    x, y = _regression()
    epoch, step, global_step, value = _numpy_first_non_finite(x, y, lr=1.5)
    assert (epoch, step, global_step, value) == (6, 5, 45, math.inf)  # mid-epoch 6
    result = _fit(_linear(1.5), (x, y), steps_per_execution=steps_per_execution)
    assert result.stop_reason == "nan_loss" and result.stopped_epoch == epoch
    where = result.non_finite_loss
    assert (where.epoch, where.step, where.global_step, where.loss) == (epoch, step, 45, math.inf)
    assert where.exact and where.first_step == step and where.steps == STEPS
    assert (
        "the loss became inf at epoch 6, step 5 of 8 (optimizer step 45): the first step whose "
        "batch loss was not finite" in result.message
    )


def test_nan_step_without_the_in_graph_record_is_only_the_execution(tmp_path):
    """A NaNGuard in a plain model.fit knows the execution, and says so."""
    x, y = _regression()
    model = _linear(1.5)
    model.steps_per_execution = 4
    guard = NaNGuard(verbose=0)
    model.fit(x, y, batch_size=BATCH, epochs=20, shuffle=False, callbacks=[guard], verbose=0)
    where = guard.where
    assert (where.epoch, where.first_step, where.step, where.exact) == (6, 5, 8, False)
    assert "at epoch 6 in one of steps 5-8 of 8 (optimizer steps 45-48;" in guard.message
    assert guard.restored_epoch == 5 and _all_finite(model)  # the last finite epoch, from 1
    assert "state of epoch 5, the last with a finite loss, were put back" in guard.message


def test_in_graph_record_changes_no_result_and_is_removed_afterwards():
    x, y = _regression()

    def run(watch):
        model = _linear(0.05)
        patched = pytest.MonkeyPatch()
        if not watch:
            patched.setattr(NaNGuard, "watch", lambda self, model: contextlib.nullcontext(self))
        try:
            result = _fit(model, (x, y), epochs=4, steps_per_execution=3)
        finally:
            patched.undo()
        return model, result

    watched, with_record = run(True)
    plain, without_record = run(False)
    assert with_record.history == without_record.history  # bit for bit
    for a, b in zip(watched.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not {"compute_loss", "train_step"} & set(vars(watched))  # the class's methods again


def test_in_graph_record_is_removed_when_training_raises():
    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    x, y = _regression()
    model = _linear(0.05)
    with pytest.raises(RuntimeError, match="boom"):
        _fit(model, (x, y), epochs=2, callbacks=[Boom()])
    assert not {"compute_loss", "train_step"} & set(vars(model))


class _CountingTraces(keras.Sequential):
    """A Sequential whose train step counts its Python calls: one per trace of the train
    function (and per eager step)."""

    traces = 0

    def train_step(self, *args, **kwargs):
        type(self).traces += 1
        return super().train_step(*args, **kwargs)


def test_the_checked_train_function_is_kept_between_fits():
    """A second kerasnn.fit of the same model reuses the traced train function (no retrace,
    no XLA recompile) and still finds the exact step."""
    x, y = _regression()
    model = _CountingTraces([keras.Input((D,)), keras.layers.Dense(1)], name="counting")
    knn.compile(model, "sgd", learning_rate=0.05)
    _fit(model, (x, y), epochs=2, steps_per_execution=3)
    traced = _CountingTraces.traces
    assert traced >= 1
    again = _fit(model, (x, y), epochs=2, steps_per_execution=3)
    assert _CountingTraces.traces == traced and again.stop_reason == "completed"
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)  # plain Keras too
    assert _CountingTraces.traces == traced
    # Diverging in the same train function: the first bad step is still exact.
    model.set_weights([np.zeros((D, 1), "float32"), np.zeros((1,), "float32")])
    model.optimizer.learning_rate.assign(1.5)
    model.optimizer.iterations.assign(0)
    traced = _CountingTraces.traces
    where = _fit(model, (x, y), steps_per_execution=3).non_finite_loss
    assert _CountingTraces.traces == traced
    assert (where.epoch, where.step, where.global_step, where.exact) == (6, 5, 45, True)
    assert not {"compute_loss", "train_step"} & set(vars(model))


def test_only_losses_computed_in_train_steps_are_checked():
    """A callback's own non-finite compute_loss (a probe batch of its own) is not
    a training step: training goes on."""
    x, y = _regression()

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            y_pred = np.full_like(y, np.inf)
            self.loss = float(self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=True))

    probe = Probe()
    result = _fit(_linear(0.05), (x, y), epochs=3, callbacks=[probe])
    assert probe.loss == math.inf
    assert result.stop_reason == "completed" and result.non_finite_loss is None


def test_exact_step_for_a_compute_loss_without_a_training_argument():
    class OldStyle(keras.Sequential):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            return keras.ops.mean((y_pred - y) ** 2)

    x, y = _regression()
    model = OldStyle([keras.Input((D,)), keras.layers.Dense(1)])
    knn.compile(model, "sgd", learning_rate=1.5)
    model.set_weights([np.zeros((D, 1), "float32"), np.zeros((1,), "float32")])
    where = _fit(model, (x, y)).non_finite_loss
    assert (where.epoch, where.step, where.global_step, where.exact) == (6, 5, 45, True)


# -- which weights are kept ----------------------------------------------------------------------
def test_nan_in_a_later_epoch_keeps_the_last_finite_epoch(tmp_path):
    x, y = _regression()
    model = _linear(1.5)
    result = _fit(model, (x, y), run_dir=tmp_path / "run")
    assert (result.kept_weights, result.kept_epoch, result.best_epoch) == ("last_finite", 5, 5)
    assert result.stopped_epoch == result.epochs == 6  # epochs counted from 1
    assert "holds the weights and optimizer state of epoch 5, the last epoch" in result.message
    assert "best weights" not in result.message
    # Exactly the state of a run that stops after that epoch.
    reference = _linear(1.5)
    _fit(reference, (x, y), epochs=5)
    for a, b in zip(model.variables, reference.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(model.optimizer.iterations.numpy()) == 5 * STEPS
    saved = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert _all_finite(saved)
    for a, b in zip(saved.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    metrics = _strict((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["kept_weights"], metrics["kept_epoch"]) == ("last_finite", 5)
    assert (metrics["best_epoch"], metrics["stopped_epoch"], metrics["epochs"]) == (5, 6, 6)
    assert metrics["non_finite_loss"] | {"loss": "?"} == {
        "epoch": 6,
        "step": 5,
        "first_step": 5,
        "steps": STEPS,
        "global_step": 45,
        "loss": "?",
        "exact": True,
    }
    assert metrics["non_finite_loss"]["loss"] is None
    assert metrics["final_metrics"]["loss"] is None
    assert metrics["non_finite"]["/non_finite_loss/loss"] == "inf"
    assert metrics["non_finite"]["/final_metrics/loss"] in ("nan", "inf")
    assert metrics["test_metrics"] is None  # (x, y) data: no test split


def test_nan_with_early_stopping_keeps_its_best_finite_epoch(tmp_path):
    x, y = _regression()
    model = _linear(1.5)
    result = _fit(
        model, (x, y), validation_split=0.25, early_stopping=True, run_dir=tmp_path / "run"
    )
    assert result.stop_reason == "nan_loss" and result.kept_weights == "best"
    finite = [v for v in result.history["val_loss"] if math.isfinite(v)]
    assert result.kept_epoch == result.best_epoch == int(np.argmin(finite)) + 1
    assert f"holds the weights of epoch {result.best_epoch}, the best val_loss" in result.message
    reference = _linear(1.5)
    _fit(reference, (x, y), validation_split=0.25, epochs=result.best_epoch)
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The optimizer state is the last finite epoch's (the one before the NaN epoch).
    steps = math.ceil(N * 0.75 / BATCH)
    assert int(model.optimizer.iterations.numpy()) == (result.stopped_epoch - 1) * steps
    saved = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert _all_finite(saved)
    metrics = _strict((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["kept_weights"] == "best" and metrics["best_epoch"] == result.best_epoch


def test_nan_in_the_first_epoch_keeps_no_model(tmp_path):
    """The bug report's case (sgd, learning rate 1000): no finite epoch, so nothing to keep."""
    data = knn.datasets.load("digits", seed=0)
    keras.utils.set_random_seed(0)
    model = knn.compile(knn.models.mlp(data, hidden=[32]), "sgd", learning_rate=1000.0)
    before = [v.numpy() for v in [*model.variables, *model.optimizer.variables]]
    result = knn.fit(model, data, epochs=5, run_dir=tmp_path / "run", verbose=0)
    assert result.stop_reason == "nan_loss" and result.stopped_epoch == 1
    assert (result.kept_weights, result.kept_epoch, result.best_epoch) == ("initial", None, None)
    assert result.best_metrics == {} and result.test_metrics is None
    assert "best weights" not in result.message
    assert (
        "No epoch ended with a finite loss, so no trained weights were kept: the model holds "
        "its weights and optimizer state from before training again; the run folder has no "
        "model.keras" in result.message
    )
    after = [v.numpy() for v in [*model.variables, *model.optimizer.variables]]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    run = tmp_path / "run"
    assert not (run / "model.keras").exists()
    assert {"history.csv", "metrics.json", "history.png"} <= {p.name for p in run.iterdir()}
    metrics = _strict((run / "metrics.json").read_text())
    assert metrics["kept_weights"] == "initial" and metrics["best_epoch"] is None
    assert metrics["non_finite"]["/non_finite_loss/loss"] in ("nan", "inf", "-inf")
    assert "no finite epoch" in result.summary()
    # The same step with one step per execution.
    keras.utils.set_random_seed(0)
    again = knn.compile(knn.models.mlp(data, hidden=[32]), "sgd", learning_rate=1000.0)
    one = knn.fit(again, data, epochs=5, steps_per_execution=1, verbose=0)
    assert result.steps_per_execution > 1
    fields = ("epoch", "step", "first_step", "steps", "global_step", "exact")
    assert [getattr(one.non_finite_loss, f) for f in fields] == [
        getattr(result.non_finite_loss, f) for f in fields
    ]
    assert str(one.non_finite_loss.loss) == str(result.non_finite_loss.loss)  # nan != nan


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_nan_in_the_first_epoch_with_an_optimizer_that_has_slots(optimizer):
    """A freshly compiled optimizer creates its slots at the first step: the state put back
    is the one before training, slots included (zeros, iterations 0)."""
    data = knn.datasets.load("digits", n_samples=200)
    model = knn.compile(
        knn.models.mlp(data, hidden=[16], activation="maxout", seed=0),
        optimizer,
        learning_rate=1e6,
    )
    assert not model.optimizer.built
    weights = [w.numpy() for w in model.weights]
    result = knn.fit(model, data, epochs=2, verbose=0)
    assert (result.stop_reason, result.kept_weights) == ("nan_loss", "initial")
    for a, b in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(model.optimizer.iterations.numpy()) == 0
    slots = [v.numpy() for v in model.optimizer.variables if v is not model.optimizer.iterations]
    assert slots and all(np.isfinite(v).all() for v in slots)


# -- strict JSON ---------------------------------------------------------------------------------
def test_json_dumps_writes_null_and_the_reason():
    data = {
        "loss": math.nan,
        "metrics": {"val_loss": math.inf, "curve": [1.0, -math.inf, np.float32("nan")]},
        "a/b~c": np.float64(math.inf),
        "np": [np.float32(0.5), np.int64(3), np.bool_(True), np.array([[1.0, np.nan]])],
        "pair": (1, None),
        2: "int key",
    }
    assert _strict(_json.dumps(data)) == {
        "loss": None,
        "metrics": {"val_loss": None, "curve": [1.0, None, None]},
        "a/b~c": None,
        "np": [0.5, 3, True, [[1.0, None]]],
        "pair": [1, None],
        "2": "int key",
        "non_finite": {
            "/loss": "nan",
            "/metrics/val_loss": "inf",
            "/metrics/curve/1": "-inf",
            "/metrics/curve/2": "nan",
            "/a~1b~0c": "inf",
            "/np/3/0/1": "nan",
        },
    }


def test_json_rows_hold_their_own_reasons_and_finite_data_is_unchanged():
    rows = [{"loss": math.nan, "acc": 0.5}, {"loss": 1.0}, [math.inf]]
    assert _strict(_json.dumps(rows)) == [
        {"loss": None, "acc": 0.5, "non_finite": {"/loss": "nan"}},
        {"loss": 1.0},
        [None],  # no enclosing object: null without a reason
    ]
    finite = {"a": [1, 2.5, None, "x"], "b": {"c": True}}
    assert _json.dumps(finite) == json.dumps(finite, indent=2)


def test_json_loads_restores_the_values_and_rejects_bare_constants(tmp_path):
    data = {"loss": math.nan, "h": {"x": [0.1, math.inf]}, "rows": [{"m": -math.inf}]}
    path = _json.write(tmp_path / "m.json", data)
    assert path.read_text().endswith("}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left
    back = _json.read(path)
    assert sorted(back) == ["h", "loss", "rows"] and math.isnan(back["loss"])
    assert back["h"] == {"x": [0.1, math.inf]} and back["rows"] == [{"m": -math.inf}]
    with pytest.raises(ValueError, match="Not strict JSON: the bare constant NaN"):
        _json.loads('{"loss": NaN}')
    with pytest.raises(ValueError, match="the pointer '/a' does not lead to a null"):
        _json.loads('{"a": 1, "non_finite": {"/a": "nan"}}')


def test_json_refuses_the_reserved_key_and_unknown_types():
    with pytest.raises(ValueError, match="the key 'non_finite' is reserved in outermost objects"):
        _json.dumps({"non_finite": 1})
    assert _strict(_json.dumps({"x": {"non_finite": 1}})) == {"x": {"non_finite": 1}}
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        _json.dumps({"a": object()})
