"""plot_search_progress: best objective so far per trial, and the values each search tried.

Experiment 6 of the lectures (random vs grid search, recipes/experiments/search/) is drawn from
real searches here.
"""

import json

import numpy as np
import pytest
from helpers import ROOT, assert_png, line_data

from kerasnn import plots
from kerasnn.recipe import Recipe

SEARCHES = ROOT / "recipes" / "experiments" / "search"


def test_best_so_far_skips_failed_trials():
    trials = [
        {"v": 0.5, "lr": 0.1},
        {"v": None, "lr": 0.01},  # a failed trial
        {"v": 0.7, "lr": 1.0},
        {"v": 0.2, "lr": 0.1},
    ]
    figure = plots.plot_search_progress({"a": trials}, objective="v", hyperparameter="lr")
    np.testing.assert_allclose(line_data(figure, 0)["a"], [0.5, 0.5, 0.5, 0.2])
    assert figure.axes[1].get_title() == "distinct values tried: a 3"
    figure = plots.plot_search_progress({"a": trials}, objective="v", direction="max")
    np.testing.assert_allclose(line_data(figure, 0)["a"], [0.5, 0.5, 0.7, 0.7])


def test_a_search_folder_is_read_from_its_results(tmp_path):
    table = {"objective": "val_loss", "trials": [{"val_loss": 0.4}, {"val_loss": 0.3}]}
    (tmp_path / "results.json").write_text(json.dumps(table))
    figure = plots.plot_search_progress({"s": tmp_path}, path=tmp_path / "progress.png")
    np.testing.assert_allclose(line_data(figure, 0)["s"], [0.4, 0.3])
    assert_png(tmp_path / "progress.png")


@pytest.mark.slow
def test_search_progress_of_real_searches(tmp_path):
    import kerasnn

    searches = {}
    for name, grid in (("random", False), ("grid", True)):
        recipe = Recipe.from_yaml(SEARCHES / f"{name}.yaml")
        recipe = recipe.with_overrides(["fit.epochs=1", "data.n_samples=300"])
        searches[name] = kerasnn.search(recipe, directory=tmp_path / name, grid=grid, max_trials=3)
    figure = plots.plot_search_progress(
        {name: r.directory for name, r in searches.items()},
        hyperparameter="optimizer.learning_rate",
    )
    best_so_far = line_data(figure, 0)
    for name, result in searches.items():
        scores = [t["val_loss"] for t in result.trials]
        np.testing.assert_allclose(best_so_far[name], np.minimum.accumulate(scores), rtol=1e-6)
    grid_rates = [t["optimizer.learning_rate"] for t in searches["grid"].trials]
    assert grid_rates == [1e-4, 1e-4, 1e-4]  # the grid walks its last axis (L2) first
    assert len({t["optimizer.learning_rate"] for t in searches["random"].trials}) == 3
    assert "random 3, grid 1" in figure.axes[1].get_title()
    path = tmp_path / "progress.png"
    plots.plot_search_progress(
        {"random": searches["random"].trials}, objective="val_loss", path=path
    )
    assert_png(path)


def test_plot_search_progress_bad_input(tmp_path):
    with pytest.raises(ValueError, match="expected at least one search"):
        plots.plot_search_progress({})
    with pytest.raises(ValueError, match="expected 'min' or 'max'"):
        plots.plot_search_progress({"a": [{"v": 1.0}]}, objective="v", direction="up")
    with pytest.raises(ValueError, match=r"expected a search folder with results\.json"):
        plots.plot_search_progress({"a": tmp_path})
    with pytest.raises(ValueError, match="search 'a' has no 'val_loss' column"):
        plots.plot_search_progress({"a": [{"v": 1.0}]}, objective="val_loss")
    with pytest.raises(ValueError, match="search 'a' has no 'lr' column"):
        plots.plot_search_progress({"a": [{"v": 1.0}]}, objective="v", hyperparameter="lr")
