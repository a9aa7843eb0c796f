"""kerasnn.tuning.tuner: the search engine — exact seeds, failed trials, resume, export."""

import json
import math
import shutil

import keras
import keras_tuner
import numpy as np
import pytest
import yaml
from search_helpers import SPACE, seed0_search, tiny_recipe
from test_search_seeds import sample_stream

import kerasnn as knn
from kerasnn.recipe.hypermodel import search
from kerasnn.tuning import read_trials


@pytest.fixture(scope="module")
def seed0(tmp_path_factory):
    """One 3-trial search with seed 0, shared by the tests that only read its results."""
    return seed0_search(tmp_path_factory)[0]


# -- seeds -----------------------------------------------------------------------------------------
def _configs(result):
    keys = ("trial_id", "status", result.objective)
    hps = [
        {k: v for k, v in t.items() if k.startswith(("model.", "optimizer.", "fit."))}
        for t in result.trials
    ]
    return hps, [tuple(t[k] for k in keys) for t in result.trials]


def test_seed_zero_is_honoured(seed0, tmp_path):
    again = search(tiny_recipe(), seed=0, directory=tmp_path / "again")
    assert _configs(again) == _configs(seed0)  # same sampled configurations and scores
    assert len(seed0.trials) == 3 and seed0.completed == 3
    assert json.loads((seed0.directory / "tuner" / "oracle.json").read_text())["seed"] == 0
    other = search(tiny_recipe(trials=2), seed=1, directory=tmp_path / "other")
    assert _configs(other)[0] != _configs(seed0)[0][:2]


def test_search_with_a_rate_per_optimizer(tmp_path):
    space = {
        "optimizer.name": {"choice": ["sgd", "adam"]},
        "optimizer.learning_rate": {
            "by": "optimizer.name",
            "log_uniform": {"sgd": [0.05, 0.5], "adam": [1e-3, 1e-2]},
        },
    }
    result = search(tiny_recipe(space, trials=4), seed=1, directory=tmp_path / "s")
    assert result.completed == 4
    names = {t["optimizer.name"] for t in result.trials}
    assert names == {"sgd", "adam"}  # seed 1 draws both
    for trial in result.trials:  # one rate column per optimizer, filled for the one drawn
        name = trial["optimizer.name"]
        other = "adam" if name == "sgd" else "sgd"
        assert trial.get(f"optimizer.learning_rate[{other}]") is None
        low, high = space["optimizer.learning_rate"]["log_uniform"][name]
        assert low <= trial[f"optimizer.learning_rate[{name}]"] <= high
    best = result.best
    name = best["hyperparameters"]["optimizer.name"]
    rate = best["hyperparameters"][f"optimizer.learning_rate[{name}]"]
    assert best["recipe"]["optimizer"] == {"name": name, "learning_rate": rate}
    model = keras.models.load_model(tmp_path / "s" / "best.keras")
    assert float(model.optimizer.learning_rate) == pytest.approx(rate, rel=1e-6)
    header = (tmp_path / "s" / "results.csv").read_text().splitlines()[0]
    assert "optimizer.learning_rate[sgd],optimizer.learning_rate[adam]" in header


# -- failures --------------------------------------------------------------------------------------
def test_nan_trial_is_recorded_and_the_search_continues(tmp_path):
    space = {"optimizer.name": "sgd", "optimizer.learning_rate": {"choice": [0.05, 1e12]}}
    result = search(tiny_recipe(space, trials=3), directory=tmp_path / "s")
    by_lr = {t["optimizer.learning_rate"]: t for t in result.trials}
    assert len(result.trials) == 2  # the space holds two configurations
    assert by_lr[0.05]["status"] == "COMPLETED"
    failed = by_lr[1e12]
    assert failed["status"] == "FAILED" and failed["val_accuracy"] is None
    assert "nan" in failed["reason"].lower() or "inf" in failed["reason"].lower()
    assert result.best["hyperparameters"]["optimizer.learning_rate"] == 0.05


def test_too_many_failures_in_a_row_stop_the_search(tmp_path):
    space = {"optimizer.name": "sgd", "optimizer.learning_rate": {"choice": [1e12, 1e13]}}
    with pytest.raises(RuntimeError, match="consecutive failures exceeded the limit of 2"):
        search(tiny_recipe(space, trials=3), directory=tmp_path / "s", max_failures=2)
    rows, _ = read_trials(tmp_path / "s")
    assert [r["status"] for r in rows] == ["FAILED", "FAILED"]
    table = json.loads((tmp_path / "s" / "results.json").read_text())
    assert [t["status"] for t in table["trials"]] == ["FAILED", "FAILED"]


class _SometimesInvalid(keras_tuner.HyperModel):
    """A user HyperModel whose sampled width -1 is a combination the builder refuses."""

    def build(self, hp):
        units = hp.Choice("units", [4, -1])
        return knn.compile(knn.models.mlp((4,), hidden=[units], outputs=3))


def test_bad_combination_is_recorded_with_its_reason(tmp_path):
    data = knn.datasets.load("iris")
    result = search(
        _SometimesInvalid(name="odd"),
        data,
        max_trials=2,
        fit={"epochs": 2},
        directory=tmp_path / "s",
    )
    by_units = {t["units"]: t for t in result.trials}
    assert by_units[4]["status"] == "COMPLETED"
    assert by_units[-1]["status"] == "FAILED"
    assert by_units[-1]["reason"].startswith("ValueError: Received an invalid value for argument")
    assert (tmp_path / "s" / "best.keras").exists()


# -- resume ----------------------------------------------------------------------------------------
def test_existing_search_needs_resume_and_resume_keeps_finished_trials(seed0, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(seed0.directory, out)
    with pytest.raises(FileExistsError, match=r"already holds one\. Pass resume=True"):
        search(tiny_recipe(), seed=0, directory=out)
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        search(tiny_recipe(), seed=0, directory=tmp_path / "none", resume=True)
    before = {p.parent.name: p.read_text() for p in out.glob("tuner/trial_*/kerasnn.json")}
    more = search(tiny_recipe(trials=4), seed=0, directory=out, resume=True)
    after = {p.parent.name: p.read_text() for p in out.glob("tuner/trial_*/kerasnn.json")}
    assert len(more.trials) == 4 and more.completed == 4
    assert {k: after[k] for k in before} == before  # finished trials were not run again
    assert _configs(more)[0][:3] == _configs(seed0)[0]
    # The resumed search continues seed 0's stream: trial 3 is the one a 4-trial search samples.
    assert _configs(more)[0] == sample_stream(SPACE, 0, 4, tmp_path / "sampled")[0]
    started = [
        json.loads(line) for line in (out / "tuner" / "runs-tuner0.jsonl").read_text().splitlines()
    ]
    assert sorted(line["trial_id"] for line in started) == ["0", "1", "2", "3"]
    assert sorted(line["trial"] for line in started) == [1, 2, 3, 4]
    assert math.isfinite(more.best["test_metrics"]["loss"])
    assert yaml.safe_load((out / "best_recipe.yaml").read_text())["name"] == "tiny"
    assert np.isfinite([t["val_accuracy"] for t in more.trials]).all()


def test_best_model_is_exported_when_the_recipe_asks(tmp_path):
    config = tiny_recipe(trials=2).to_dict() | {"export": {"path": "served", "standardize": True}}
    result = search(knn.Recipe.from_dict(config), seed=0, directory=tmp_path / "s")
    best = json.loads((result.directory / "best.json").read_text())
    assert best["export"]["format"] == "saved_model" and best["export"]["max_abs_diff"] <= 1e-5
    # The artifact takes raw inputs (standardization baked in) and predicts as best.keras does.
    data = knn.datasets.load("iris")
    raw = data.standardizer.inverse_transform(data.x_test)
    served = knn.export.load(result.directory / "served").predict(raw)
    model = keras.saving.load_model(result.directory / "best.keras")
    np.testing.assert_allclose(served, model.predict(data.x_test, verbose=0), atol=1e-5)
