"""Learning-rate schedules against the closed-form formulas; the rate in the logs; recipes."""

import math

import keras
import numpy as np
import pytest
from helpers import assert_png

import kerasnn as knn
from kerasnn import schedules

STEPS = [0, 1, 7, 10, 19, 20, 35, 99]
SPE = 10  # steps per epoch


@pytest.mark.parametrize(
    ("schedule", "formula"),
    [
        (
            schedules.step_decay(0.1, 0.5, every=2, steps_per_epoch=SPE),
            lambda s: 0.1 * 0.5 ** math.floor((s // SPE) / 2),
        ),
        (
            schedules.exponential(0.1, k=0.3, steps_per_epoch=SPE),
            lambda s: 0.1 * math.exp(-0.3 * (s // SPE)),
        ),
        (schedules.exponential(0.1, k=0.03, unit="step"), lambda s: 0.1 * math.exp(-0.03 * s)),
        (
            schedules.inverse_time(0.1, k=0.5, steps_per_epoch=SPE),
            lambda s: 0.1 / (1 + 0.5 * (s // SPE)),
        ),
        (schedules.inverse_time(0.1, k=0.05, unit="step"), lambda s: 0.1 / (1 + 0.05 * s)),
        (
            schedules.warmup_cosine(0.1, total=10, warmup=2, steps_per_epoch=SPE),
            lambda s: (
                0.1 * s / 20
                if s < 20
                else 0.1 * 0.5 * (1 + math.cos(math.pi * min(s - 20, 80) / 80))
            ),
        ),
    ],
)
def test_schedules_match_closed_forms(schedule, formula):
    got = [float(schedule(s)) for s in STEPS]
    np.testing.assert_allclose(got, [formula(s) for s in STEPS], rtol=1e-5, atol=1e-9)


def test_one_cycle_matches_fastai_formula():
    s = schedules.OneCycle(max_lr=0.01, total_steps=100, pct_start=0.3)

    def cos(a, b, p):
        return b + (a - b) / 2 * (math.cos(math.pi * p) + 1)

    for step in (0, 10, 29, 30, 31, 64, 99, 100, 150):
        p_up, p_down = step / 30, min(max((step - 30) / 70, 0), 1)
        lr = cos(0.01 / 25, 0.01, p_up) if step < 30 else cos(0.01, 0.01 / 25 / 1e5, p_down)
        mom = cos(0.95, 0.85, p_up) if step < 30 else cos(0.85, 0.95, p_down)
        assert float(s(step)) == pytest.approx(lr, rel=1e-5, abs=1e-8)
        assert float(s.momentum(step)) == pytest.approx(mom, rel=1e-5)


def test_schedules_round_trip_through_keras_serialization():
    for s in [
        schedules.OneCycle(0.01, 50, moms=(0.9, 0.8, 0.9)),
        schedules.step_decay(0.1, 0.5, every=3, steps_per_epoch=4),
    ]:
        again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
        assert type(again) is type(s)
        assert [float(again(i)) for i in range(0, 60, 7)] == [float(s(i)) for i in range(0, 60, 7)]


@pytest.fixture(scope="module")
def iris():
    return knn.datasets.load("iris", seed=0)


def _model(data, optimizer="sgd", lr=0.1):
    keras.utils.set_random_seed(0)
    return knn.compile(knn.models.mlp(data, hidden=[8]), optimizer, learning_rate=lr)


def test_learning_rate_is_logged_every_epoch_with_and_without_schedule(iris, tmp_path):
    result = knn.fit(_model(iris), iris, epochs=3, verbose=0, early_stopping=False)
    assert result.history["learning_rate"] == pytest.approx([0.1] * 3)
    spe = math.ceil(len(iris.x_train) * 0.9 / 32)
    result = knn.fit(
        _model(iris),
        iris,
        epochs=4,
        verbose=0,
        early_stopping=False,
        lr_schedule={"step": {"factor": 0.5, "every": 2}},
        run_dir=tmp_path / "run",
    )
    assert result.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    csv = knn.callbacks.read_history_csv(tmp_path / "run" / "history.csv")
    assert [float(r["learning_rate"]) for r in csv] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert_png(tmp_path / "run" / "lr.png")
    assert spe > 1


def test_one_cycle_in_fit_cycles_lr_and_adam_momentum_then_saves(iris, tmp_path):
    model = _model(iris, "adam", 0.01)
    result = knn.fit(
        model,
        iris,
        epochs=4,
        verbose=0,
        early_stopping=False,
        lr_schedule="one_cycle",
        run_dir=tmp_path / "run",
    )
    spe = math.ceil(len(iris.x_train) * 0.9 / 32)
    expected = schedules.OneCycle(0.01, 4 * spe)
    lrs = [float(expected(e * spe)) for e in range(4)]
    moms = [float(expected.momentum(e * spe)) for e in range(4)]
    assert result.history["learning_rate"] == pytest.approx(lrs, rel=1e-5)
    assert result.history["momentum"] == pytest.approx(moms, rel=1e-5)
    assert model.optimizer.beta_1 == 0.9  # the float is back: the model saved and reloads
    reloaded = keras.models.load_model(tmp_path / "run" / "model.keras")
    np.testing.assert_allclose(
        reloaded.predict(iris.x_test, verbose=0), model.predict(iris.x_test, verbose=0), rtol=1e-6
    )


def test_one_cycle_momentum_needs_an_adam_family_optimizer(iris, tmp_path):
    match = r"expected an Adam-family optimizer.*cycle_momentum=False"
    model = _model(iris, "momentum")
    with pytest.raises(ValueError, match=match):
        knn.fit(model, iris, epochs=1, verbose=0, lr_schedule="one_cycle", run_dir=tmp_path / "r")
    assert not model.optimizer.built and not any(tmp_path.iterdir())  # refused before anything
    spec = {"one_cycle": {"cycle_momentum": False}}
    result = knn.fit(model, iris, epochs=2, verbose=0, lr_schedule=spec)
    assert "momentum" not in result.history and len(result.history["learning_rate"]) == 2


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("warmup_cosin", "argument lr_schedule, expected one of .*Did you mean 'warmup_cosine'"),
        ({"step": {"factor": -0.5, "every": 2}}, r"argument factor, expected a number in \(0, 1\]"),
        ({"step": {"factor": 0.5, "every": 0}}, "argument every, expected a positive integer"),
        ({"exponential": {"k": -1}}, "argument k, expected a number >= 0. Received: k=-1"),
        (
            {"exponential": {"k": 1, "initial_learning_rate": -0.1}},
            "argument initial_learning_rate, expected a number > 0",
        ),
        ({"step": {"factor": 0.5}}, "needs the argument.*every"),
        ({"one_cycle": {"max_lr": 1}}, "invalid argument for lr_schedule 'one_cycle': max_lr"),
        ({"inverse_time": {"k": 1, "unit": "epochs"}}, "argument unit, expected one of"),
        (3, "argument lr_schedule, expected a schedule name"),
    ],
)
def test_bad_schedules_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        schedules.get(spec, learning_rate=0.1, steps_per_epoch=5, epochs=3)


def test_recipe_validates_schedules_and_callbacks_before_training():
    base = {"data": {"name": "iris"}, "model": {"hidden": [4]}}
    with pytest.raises(ValueError, match="Did you mean 'one_cycle'"):
        knn.Recipe.from_dict(base | {"fit": {"lr_schedule": "one_cycel"}})
    with pytest.raises(ValueError, match=r"expected one of .*Did you mean 'gradient_norms'"):
        knn.Recipe.from_dict(base | {"fit": {"callbacks": ["gradient_norm"]}})
    with pytest.raises(ValueError, match=r"key fit.callbacks\[0\].activation_stats.bin\. Did you"):
        knn.Recipe.from_dict(base | {"fit": {"callbacks": [{"activation_stats": {"bin": 3}}]}})
    # A value only the callback can judge is refused when fit builds it, before the first step.
    recipe = knn.Recipe.from_dict(
        base | {"fit": {"callbacks": [{"grad_norms": {"every_n_steps": 0}}]}}
    )
    with pytest.raises(ValueError, match="argument every_n_steps, expected a positive integer"):
        knn.callbacks.get(recipe.fit["callbacks"][0])
    recipe = knn.Recipe.from_dict(
        base
        | {
            "fit": {
                "callbacks": [{"gradient_norms": {"every_n_steps": 10}}, "activation_stats"],
                "lr_schedule": {"warmup_cosine": {"warmup": 1}},
            }
        }
    )
    assert recipe.resolved().fit["lr_schedule"] == {"warmup_cosine": {"warmup": 1}}


def test_one_cycle_momentum_reaches_the_update(iris):
    """The cycled beta_1 is read by Adam inside the train step: training differs without it."""

    def weights(cycle):
        model = _model(iris, "adam", 0.01)
        spec = {"one_cycle": {"cycle_momentum": cycle}}
        knn.fit(model, iris, epochs=2, verbose=0, early_stopping=False, lr_schedule=spec)
        return model.get_weights()

    cycled, plain = weights(True), weights(False)
    assert any(not np.allclose(a, b) for a, b in zip(cycled, plain, strict=True))
