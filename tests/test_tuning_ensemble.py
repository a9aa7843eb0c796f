"""kerasnn.tuning.ensemble: ensemble_model, the ranking of the best trials, search(ensemble=k)."""

import json
import warnings

import keras
import numpy as np
import pytest

import kerasnn as knn
from kerasnn.recipe.hypermodel import search
from kerasnn.tuning import ensemble_model
from kerasnn.tuning.ensemble import ranked_trials

SPACE = {
    "model.depth": {"int": [1, 2]},
    "model.units": {"choice": [4, 8, 16]},
    "model.augment": {"choice": ["none", "noise"]},
    "optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]},
}


def _recipe(**search):
    return knn.Recipe.from_dict(
        {
            "name": "tiny",
            "data": {"name": "iris"},
            "model": {"hidden": [8]},
            "optimizer": "adam",
            "fit": {"epochs": 3},
            "search": {"trials": 4, "space": SPACE, **search},
        }
    )


@pytest.fixture(scope="module")
def iris():
    return knn.datasets.load("iris", seed=0)


def _trained(data, hidden, seed):
    keras.utils.set_random_seed(seed)
    model = knn.models.mlp(data, hidden=hidden)
    knn.compile(model, "adam", learning_rate=1e-2)
    knn.fit(model, data, epochs=3, verbose=0, seed=seed)
    return model


# -- ensemble_model --------------------------------------------------------------------------------
def test_ensemble_averages_its_members_and_reloads(iris, tmp_path):
    members = [_trained(iris, [8], 0), _trained(iris, [4, 4], 1), _trained(iris, [16], 2)]
    x = iris.x_test
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    model = ensemble_model(members, task="classification")
    assert [layer.name for layer in model.layers] == [
        "inputs",
        "member_1",
        "member_2",
        "member_3",
        "average",
    ]
    assert not model.trainable_weights
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    metrics = knn.evaluate(model, iris)
    assert metrics["accuracy"] == pytest.approx(float(np.mean(expected.argmax(1) == iris.y_test)))
    model.save(tmp_path / "ensemble.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped on reload (no optimizer mismatch)
        loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)


def test_ensemble_errors(iris):
    member = _trained(iris, [4], 0)
    with pytest.raises(ValueError, match=r"expected at least 2 models to average. Received: 1"):
        ensemble_model([member], task="classification")
    other = knn.models.mlp((5,), hidden=[4], outputs=3)
    with pytest.raises(ValueError, match=r"expected models with one input and output shape"):
        ensemble_model([member, other], task="classification")


# -- search(ensemble=k) ----------------------------------------------------------------------------
def test_search_ensemble_averages_the_best_by_validation(tmp_path, iris):
    result = search(_recipe(ensemble=3), seed=0, directory=tmp_path / "s")
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    assert best == result.best
    table = json.loads((tmp_path / "s" / "results.json").read_text())["trials"]
    done = [t for t in table if t["status"] == "COMPLETED"]

    # The members are the 3 best trials by the validation objective, in that order; ties
    # are broken by the validation loss of each trial's best epoch.
    def val_loss(trial):
        record = tmp_path / "s" / "tuner" / f"trial_{trial['trial_id']}" / "kerasnn.json"
        return json.loads(record.read_text())["best_metrics"]["val_loss"]

    ranked = sorted(done, key=lambda t: (-t["val_accuracy"], val_loss(t)))[:3]
    assert [m["trial_id"] for m in best["members"]] == [t["trial_id"] for t in ranked]
    assert [m["score"] for m in best["members"]] == [t["val_accuracy"] for t in ranked]
    assert best["ensemble"] == 3 and best["trial_id"] == ranked[0]["trial_id"]
    assert [m["trial"] for m in best["members"]] == [t["trial"] for t in ranked]
    assert best["trial"] == ranked[0]["trial"] == int(best["trial_id"]) + 1
    assert best["hyperparameters"] == best["members"][0]["hyperparameters"]
    for member in best["members"]:
        assert set(member["test_metrics"]) == {"accuracy", "loss"}
        assert member["recipe"]["fit"]["validation_split"] == 0.0
    model = keras.models.load_model(tmp_path / "s" / "best.keras")
    assert [layer.name for layer in model.layers][1:4] == ["member_1", "member_2", "member_3"]
    accuracy = float(np.mean(model.predict(iris.x_test, verbose=0).argmax(1) == iris.y_test))
    assert accuracy == pytest.approx(best["test_metrics"]["accuracy"])
    # Each member inside best.keras is its retrained model: its accuracy is the member's.
    for i, member in enumerate(best["members"], start=1):
        sub = model.get_layer(f"member_{i}")
        acc = float(np.mean(sub.predict(iris.x_test, verbose=0).argmax(1) == iris.y_test))
        assert acc == pytest.approx(member["test_metrics"]["accuracy"])
    assert "averaged with the next 2 best" in result.summary()
    # best_recipe.yaml trains the best configuration alone.
    recipe = knn.Recipe.from_yaml(tmp_path / "s" / "best_recipe.yaml")
    assert recipe.to_dict()["model"] == best["recipe"]["model"]

    # ensemble=1 (the default) keeps the single retrained model, one member record.
    single = search(_recipe(), seed=0, directory=tmp_path / "s", resume=True, ensemble=1)
    assert single.best["ensemble"] == 1 and len(single.best["members"]) == 1
    assert single.best["members"][0]["test_metrics"] == single.best["test_metrics"]
    assert single.best["trial_id"] == best["trial_id"]
    assert keras.models.load_model(tmp_path / "s" / "best.keras").name == "mlp"


def test_ties_in_the_objective_are_ranked_by_validation_loss(tmp_path):
    from types import SimpleNamespace

    losses = {"00": 0.30, "01": 0.10, "02": 0.20, "03": None, "04": 0.05}
    scores = {"00": 0.9, "01": 0.9, "02": 0.95, "03": 0.9, "04": None}
    for trial_id, loss in losses.items():
        metrics = {"val_accuracy": scores[trial_id]} | ({} if loss is None else {"val_loss": loss})
        (tmp_path / f"{trial_id}.json").write_text(json.dumps({"best_metrics": metrics}))
    trials = {
        t: SimpleNamespace(trial_id=t, score=s, status="FAILED" if s is None else "COMPLETED")
        for t, s in scores.items()
    }
    tuner = SimpleNamespace(
        oracle=SimpleNamespace(trials=trials), trial_file=lambda t: tmp_path / f"{t}.json"
    )
    ranked = [t.trial_id for t in ranked_trials(tuner, "val_accuracy")]
    assert ranked == ["02", "01", "00", "03"]  # 0.95 first; the 0.9 ties by loss, none last
    # A minimized objective: the lowest first; val_loss itself needs no tie-break.
    assert [t.trial_id for t in ranked_trials(tuner, "val_loss")] == ["00", "01", "03", "02"]
