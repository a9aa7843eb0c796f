"""kerasnn.tuning.results: the results table, its plot, best.json, and the trials' numbers."""

import json
import re
import shutil

import keras
import pytest
from helpers import assert_png
from search_helpers import seed0_search

import kerasnn as knn
from kerasnn.tuning import plot_results, read_trials, write_results


@pytest.fixture(scope="module")
def seed0(tmp_path_factory):
    """One 3-trial search with seed 0 (`search_helpers.seed0_search`)."""
    return seed0_search(tmp_path_factory)[0]


# -- results ---------------------------------------------------------------------------------------
def test_results_table_plot_and_best_model(seed0):
    out = seed0.directory
    table = json.loads((out / "results.json").read_text())
    assert table["objective"] == "val_accuracy" and table["direction"] == "max"
    assert table["hyperparameters"]["optimizer.learning_rate"]["log"] is True
    assert table["hyperparameters"]["model.activation"]["numeric"] is False
    header, *rows = (out / "results.csv").read_text().strip().splitlines()
    assert header.split(",")[:4] == ["trial", "trial_id", "status", "val_accuracy"]
    assert "optimizer.learning_rate" in header and "seconds" in header
    assert len(rows) == 3 == len(table["trials"])
    assert [row.split(",")[:2] for row in rows] == [["1", "0"], ["2", "1"], ["3", "2"]]
    for trial in table["trials"]:
        assert trial["status"] == "COMPLETED" and 0 <= trial["val_accuracy"] <= 1
        assert trial["epochs"] == 2 and trial["seconds"] > 0
    assert_png(out / "results.png")

    best = json.loads((out / "best.json").read_text())
    scores = [t["val_accuracy"] for t in table["trials"]]
    assert best["score"] == max(scores)
    assert best["trial_id"] == table["trials"][scores.index(max(scores))]["trial_id"]
    data = knn.datasets.load("iris")
    model = keras.saving.load_model(out / "best.keras")
    reloaded = knn.evaluate(model, data)
    assert reloaded == pytest.approx(best["test_metrics"], rel=1e-5)
    recipe = knn.Recipe.from_yaml(out / "best_recipe.yaml")
    assert recipe.optimizer["learning_rate"] == best["hyperparameters"]["optimizer.learning_rate"]
    assert recipe.fit["validation_split"] == 0.0 and recipe.fit["epochs"] == best["retrain_epochs"]


def test_plot_uses_log_axes_for_log_sampled_entries(seed0):
    rows, specs = read_trials(seed0.directory)
    fig = plot_results(rows, specs, "val_accuracy", seed0.directory / "again.png")
    scales = {ax.get_xlabel(): ax.get_xscale() for ax in fig.axes if ax.get_visible()}
    assert scales["optimizer.learning_rate (log)"] == "log"
    assert scales["model.depth"] == "linear"
    assert len(scales) == len(specs)
    best = seed0.best["trial"]
    assert fig.get_suptitle() == f"3 completed trials, 0 failed (red star: best, trial {best})"


# -- the trials' numbers -----------------------------------------------------------------------
def test_trials_are_numbered_as_keras_tuner_displays_them(tmp_path_factory):
    result, printed = seed0_search(tmp_path_factory)
    # One line per trial, "trial N/3 | val_accuracy <score> (best ...)", numbered from 1 as
    # KerasTuner's "Trial #N"; then one per retrained member. Plain text: no escape codes.
    shown = {
        int(n): float(score)
        for n, score in re.findall(r"^trial (\d+)/3 \| val_accuracy (\S+) ", printed, re.M)
    }
    assert sorted(shown) == [1, 2, 3]
    assert "\x1b" not in printed and "\r" not in printed
    for trial in result.trials:  # results.json's rows (results.csv's too, above)
        assert trial["trial"] == int(trial["trial_id"]) + 1
        assert round(trial["val_accuracy"], 4) == shown[trial["trial"]]
    best = result.best
    number = best["trial"]
    assert round(best["score"], 4) == shown[number] and number == int(best["trial_id"]) + 1
    assert re.search(rf"^member 1/1 \(trial {number}\) \| \d+ epochs in ", printed, re.M)
    assert f"; best trial {number} val_accuracy {best['score']:.4f}," in result.summary()
    assert [m["trial"] for m in best["members"]] == [number]
    started = (result.directory / "tuner" / "runs-tuner0.jsonl").read_text().splitlines()
    assert [json.loads(line)["trial"] for line in started] == [1, 2, 3]


def test_write_results_rebuilds_the_table_from_the_trial_files(seed0, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(seed0.directory, out)
    (out / "results.csv").unlink()
    (out / "results.json").write_text("half a fi")
    rows = write_results(out)
    assert rows == json.loads((seed0.directory / "results.json").read_text())["trials"]
    assert (out / "results.csv").read_text() == (seed0.directory / "results.csv").read_text()
