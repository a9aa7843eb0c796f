"""KerasTuner's other tuners, the time budget and k-fold scores, on tiny iris searches.

Hyperband's trial count is checked against KerasTuner's own oracle driven to its end;
Bayesian optimization against random search's first (random) trials; the time budget by the
trials' start times and their stop reasons; the folds against scikit-learn's splits.
"""

import csv
import json
import math
import time

import keras
import keras_tuner
import numpy as np
import pytest
from search_helpers import SPACE, tiny_recipe
from sklearn.model_selection import StratifiedKFold

import kerasnn as knn
from kerasnn.recipe.hypermodel import search
from kerasnn.tuning.budget import SearchClock
from kerasnn.tuning.oracles import hyperband_trials, seeded_oracle
from kerasnn.tuning.trial_run import cv_folds, fit_trial


def _rows(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


# -- Hyperband ----------------------------------------------------------------------------------
class _Drive(keras_tuner.Tuner):
    """Runs KerasTuner's search loop without training: each trial scores at random and
    records the epochs Hyperband asked for."""

    def __init__(self, *args, **kwargs):
        self.asked = []
        self.rng = np.random.default_rng(0)
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        self.asked.append((values["tuner/epochs"], values["tuner/initial_epoch"]))
        return {"score": float(self.rng.random())}


class _OneFloat(keras_tuner.HyperModel):
    def build(self, hp):
        hp.Float("x", 0.0, 1.0)


@pytest.mark.parametrize(
    "max_epochs, factor, iterations", [(3, 3, 1), (9, 3, 1), (27, 3, 2), (100, 3, 1), (50, 2, 1)]
)
def test_hyperband_trial_count_matches_keras_tuner(tmp_path, max_epochs, factor, iterations):
    oracle = seeded_oracle(
        "hyperband",
        objective="score",
        max_trials=1,
        seed=0,
        max_failures=3,
        max_epochs=max_epochs,
        factor=factor,
        iterations=iterations,
    )
    drive = _Drive(oracle, _OneFloat(), directory=str(tmp_path), project_name="p")
    drive.search(verbose=0)
    plan = hyperband_trials(max_epochs, factor, iterations)
    assert len(drive.asked) == plan["trials"]
    assert sum(epochs - initial for epochs, initial in drive.asked) == plan["epochs"]
    assert max(epochs for epochs, _ in drive.asked) == max_epochs


def test_hyperband_search_continues_promoted_trials(tmp_path, capsys):
    # fit.epochs 3 is Hyperband's max_epochs: 2 brackets, 4 + 2 trials, one promoted 1 -> 3.
    result = search(
        tiny_recipe(trials=2, epochs=3), tuner="hyperband", directory=tmp_path / "h", verbose=1
    )
    plan = hyperband_trials(3)
    assert plan["trials"] == 6 and len(result.trials) == 6 and result.completed == 6
    meta = json.loads((tmp_path / "h" / "search.json").read_text())
    assert meta["kind"] == "hyperband" and meta["hyperband"]["trials"] == 6
    assert meta["hyperband"]["max_epochs"] == 3
    printed = capsys.readouterr().out
    assert "hyperband: max_epochs 3 (fit.epochs), factor 3" in printed and "6 trials" in printed
    assert "trial 6/6 |" in printed
    rows = _rows(tmp_path / "h")
    promoted = [r for r in rows if r["continues"]]
    assert len(promoted) == 1
    (row,) = promoted
    past = next(r for r in rows if r["trial"] == row["continues"])
    assert int(row["epochs"]) == 3 and int(past["epochs"]) == 1  # 2 more epochs after 1
    assert row["round"] == "1" and past["round"] == "0"
    for name in ("model.depth", "optimizer.name", "optimizer.learning_rate"):
        assert row[name] == past[name]  # the same configuration, trained on
    assert "tuner/epochs" not in result.best["hyperparameters"]


def test_warm_start_begins_from_the_predecessor_weights(tmp_path):
    data = knn.datasets.load("iris")

    def build():
        keras.utils.set_random_seed(1)
        return knn.compile(knn.models.mlp(data, hidden=[4]), "sgd", learning_rate=0.01)

    past = build()
    weights = [np.full(w.shape, 0.125 * (i + 1), "float32") for i, w in enumerate(past.weights)]
    past.set_weights(weights)
    (tmp_path / "past" / "run").mkdir(parents=True)
    past.save(tmp_path / "past" / "run" / "model.keras")

    seen = []

    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.extend(np.array(w) for w in self.model.get_weights())

    fits = fit_trial(
        build,
        data.x_train,
        data.y_train,
        trial_dir=tmp_path / "now",
        arguments={"epochs": 2, "early_stopping": False},
        seed=0,
        objective="val_accuracy",
        callbacks=[Start()],
        warm_start=tmp_path / "past",
        initial_epoch=1,
    )
    assert all(np.array_equal(a, b) for a, b in zip(seen, weights, strict=True))
    assert fits.epochs == 3 and fits.best_epoch == 3  # counted from the chain's start
    assert (tmp_path / "now" / "run" / "model.keras").exists()


# -- Bayesian optimization ----------------------------------------------------------------------
def test_bayesian_search_proposes_after_its_random_points(tmp_path):
    recipe = tiny_recipe(trials=3)
    recipe.search["bayesian"] = {"initial_points": 2}
    first = search(recipe, tuner="bayesian", directory=tmp_path / "b1")
    again = search(recipe, tuner="bayesian", directory=tmp_path / "b2")
    plain = search(tiny_recipe(trials=3), directory=tmp_path / "r")
    names = [k for k in first.trials[0] if k.startswith(("model.", "optimizer.", "fit."))]

    def configs(result):
        return [{k: t.get(k) for k in names} for t in result.trials]

    assert configs(first) == configs(again)  # the same seed, the same proposals
    assert [t["val_accuracy"] for t in first.trials] == [t["val_accuracy"] for t in again.trials]
    assert configs(first)[:2] == configs(plain)[:2]  # the random points: the trials' own seeds
    assert configs(first)[2:] != configs(plain)[2:]  # then the Gaussian process proposes
    for trial in first.trials:
        assert 1e-3 <= trial["optimizer.learning_rate"] <= 1e-1
        assert trial["model.units_1"] in SPACE["model.units"]["choice"]
    assert json.loads((tmp_path / "b1" / "search.json").read_text())["kind"] == "bayesian"


# -- the time budget ----------------------------------------------------------------------------
def test_time_budget_stops_at_an_epoch_boundary_and_starts_no_new_trial(tmp_path, capsys):
    recipe = tiny_recipe(trials=50, epochs=100000, early_stopping=False)
    out = tmp_path / "t"
    start = time.time()
    result = search(recipe, time_budget=3, directory=out, verbose=1)
    assert result.stopped_by == "time_budget" and len(result.trials) == 1
    (row,) = _rows(out)
    assert row["stop_reason"] == "time_budget" and row["status"] == "COMPLETED"
    assert 1 <= int(row["epochs"]) < 100000  # stopped after a whole epoch
    history = (out / "tuner" / "trial_00" / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + int(row["epochs"])  # every epoch it trained is recorded
    # A trial's folder keeps its files, not figures (results.png shows the search).
    trial_files = {p.name for p in (out / "tuner" / "trial_00" / "run").iterdir()}
    assert {"history.csv", "metrics.json", "model.keras"} <= trial_files
    assert not any(name.endswith(".png") for name in trial_files)
    assert "the time budget of 3 s ended the search" in result.summary()
    assert "stopped by the time budget" in capsys.readouterr().out
    assert result.best["retrain_epochs"] == int(row["best_epoch"])
    started = [json.loads(s)["started"] for s in (out / "tuner" / "runs-tuner0.jsonl").open()]
    assert all(s - start < 3 for s in started)
    meta = json.loads((out / "search.json").read_text())
    assert meta["stopped_by"] == "time_budget" and meta["trial_seconds"] >= 3

    # Resumed, the search has no budget left: no trial starts, the table stays.
    resumed = search(recipe, time_budget=3, directory=out, resume=True)
    assert len(resumed.trials) == 1 and resumed.stopped_by == "time_budget"


def test_a_budget_fits_several_short_trials(tmp_path, monkeypatch):
    clocks = []
    real_init = SearchClock.__init__

    def recording_init(self, settings):
        real_init(self, settings)
        clocks.append(self)

    monkeypatch.setattr(SearchClock, "__init__", recording_init)
    out = tmp_path / "t"
    result = search(tiny_recipe(trials=50, epochs=2), time_budget=8, directory=out)
    assert 2 <= len(result.trials) < 50 and result.stopped_by == "time_budget"
    started = [json.loads(s)["started"] for s in (out / "tuner" / "runs-tuner0.jsonl").open()]
    (clock,) = clocks  # the search's own clock: from when its budget counts
    assert clock.deadline == clock.started + 8
    assert all(s < clock.deadline for s in started)  # none started after the budget was spent


# -- k-fold scores ------------------------------------------------------------------------------
def test_folds_are_scikit_learns_stratified_folds():
    data = knn.datasets.load("iris")
    folds = cv_folds(data.y_train, 4, seed=3, task="classification")
    reference = StratifiedKFold(4, shuffle=True, random_state=3).split(data.x_train, data.y_train)
    for (train, val), (ref_train, ref_val) in zip(folds, reference, strict=True):
        assert np.array_equal(train, ref_train) and np.array_equal(val, ref_val)
    assert np.array_equal(
        np.sort(np.concatenate([v for _, v in folds])), np.arange(len(data.y_train))
    )
    with pytest.raises(ValueError, match=r"argument cv, expected at most \d+ folds"):
        cv_folds(data.y_train[:10], 5, seed=0, task="classification")


def test_cv_objective_is_the_mean_of_the_folds(tmp_path, capsys):
    out = tmp_path / "cv"
    result = search(tiny_recipe(trials=2), cv=3, directory=out, verbose=1)
    rows = _rows(out)
    header = list(rows[0])
    assert header[:7] == ["trial", "trial_id", "status", "val_accuracy", "stage", "fold1", "fold2"]
    assert "fold3" in header and "cv_mean" in header and "cv_std" in header
    for row, trial in zip(rows, result.trials, strict=True):
        folds = [float(row[f"fold{i}"]) for i in (1, 2, 3)]
        assert math.isclose(float(row["val_accuracy"]), np.mean(folds), rel_tol=1e-12)
        assert math.isclose(float(row["cv_std"]), np.std(folds), rel_tol=1e-9, abs_tol=1e-12)
        assert trial["val_accuracy"] == pytest.approx(np.mean(folds))
        for i in (1, 2, 3):  # each fold's own run folder, its score its best epoch's
            fold = json.loads(
                (
                    out / "tuner" / f"trial_{trial['trial_id']}" / f"fold{i}" / "metrics.json"
                ).read_text()
            )
            assert fold["best_metrics"]["val_accuracy"] == pytest.approx(folds[i - 1])
    assert "over 3 folds" in capsys.readouterr().out
    assert json.loads((out / "search.json").read_text())["cv"] == 3


# -- coarse-to-fine -----------------------------------------------------------------------------
def test_refine_samples_the_second_stage_inside_the_narrowed_ranges(tmp_path, capsys):
    out = tmp_path / "r"
    result = search(tiny_recipe(trials=4), refine={"trials": 3, "top": 2}, directory=out, verbose=1)
    rows = _rows(out)
    assert [r["stage"] for r in rows] == ["1"] * 4 + ["2"] * 3 and result.completed == 7
    meta = json.loads((out / "search.json").read_text())
    assert meta["stage"] == 2 and len(meta["refined_around"]) == 2
    first = {r["trial"]: r for r in rows[:4]}
    top = [first[str(n)] for n in meta["refined_around"]]
    for name, change in meta["refined"].items():
        for row in rows[4:]:
            if row.get(name) in ("", None):
                continue  # inactive there
            if name in ("optimizer.learning_rate", "optimizer.momentum"):
                low, high = change["after"]
                assert low <= float(row[name]) <= high
            else:
                assert str(row[name]) in {str(v) for v in change["after"]}
    lr = meta["refined"]["optimizer.learning_rate"]["after"]
    used = [float(r["optimizer.learning_rate"]) for r in top]
    assert lr[0] <= min(used) and max(used) <= lr[1]  # the best's values stay inside
    assert "trial 5/7 (stage 2)" in capsys.readouterr().out


# -- members without retraining -----------------------------------------------------------------
_MEAN_OF_MODELS = """
import sys, json
import numpy as np
import kerasnn, keras
out, x_path = sys.argv[1], sys.argv[2]
x = np.load(x_path)
best = keras.models.load_model(out + "/best.keras")
print(json.dumps(best.predict(x, verbose=0).tolist()))
"""


def test_no_retrain_averages_the_trials_own_fold_models(tmp_path, capsys):
    from helpers import run_python

    out = tmp_path / "nr"
    data = knn.datasets.load("iris", seed=0)
    result = search(
        tiny_recipe(trials=2), cv=2, ensemble=2, retrain=False, directory=out, verbose=1
    )
    best = json.loads((out / "best.json").read_text())
    assert best["retrained"] is False and best["ensemble"] == 2 and best["models"] == 4
    assert all(m["retrain_epochs"] is None for m in best["members"])
    # The members are the 2 best trials' fold models, as their fits saved them: best.keras,
    # reloaded in a fresh process, predicts their mean.
    folders = [out / "tuner" / f"trial_{m['trial_id']}" for m in best["members"]]
    models = [
        keras.models.load_model(f / f"fold{i}" / "model.keras") for f in folders for i in (1, 2)
    ]
    expected = np.mean([m.predict(data.x_test, verbose=0) for m in models], axis=0)
    np.save(tmp_path / "x.npy", data.x_test)
    got = np.array(json.loads(run_python(_MEAN_OF_MODELS, str(out), str(tmp_path / "x.npy"))))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    accuracy = float(np.mean(expected.argmax(1) == data.y_test))
    assert best["test_metrics"]["accuracy"] == pytest.approx(accuracy)
    for member, folder in zip(best["members"], folders, strict=True):  # each: its 2 folds' mean
        pair = [keras.models.load_model(folder / f"fold{i}" / "model.keras") for i in (1, 2)]
        mean = np.mean([m.predict(data.x_test, verbose=0) for m in pair], axis=0)
        hits = float(np.mean(mean.argmax(1) == data.y_test))
        assert member["test_metrics"]["accuracy"] == pytest.approx(hits)
        assert member["recipe"]["fit"]["epochs"] == 2  # the trial's own fit, not a retraining
    printed = capsys.readouterr().out
    for j, member in enumerate(best["members"], start=1):  # nothing retrained
        assert (
            f"member {j}/2 (trial {member['trial']}) | its trial's 2 fold models loaded" in printed
        )
    assert "epochs in" not in printed.split("member 1/2")[1]
    assert "its trial's own fold models" in result.summary() and "ensembling" in result.summary()


def test_no_retrain_takes_the_trial_model_and_its_weights(tmp_path):
    out = tmp_path / "nr1"
    search(tiny_recipe(trials=2), retrain=False, directory=out)
    best = json.loads((out / "best.json").read_text())
    assert best["retrained"] is False and best["models"] == 1
    trial = keras.models.load_model(
        out / "tuner" / f"trial_{best['trial_id']}" / "run" / "model.keras"
    )
    model = keras.models.load_model(out / "best.keras")
    for a, b in zip(model.get_weights(), trial.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
