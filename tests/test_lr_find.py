"""The learning-rate range test: the LRFinder callback (kerasnn.callbacks.lr_finder), the lr_find
runner (kerasnn.diagnostics.lr_range_test) and its recipe form (kerasnn.recipe.lr_find)."""

import json
import re

import keras
import numpy as np
import pytest
import yaml
from helpers import assert_png

import kerasnn as knn
from kerasnn.callbacks import LRFinder
from kerasnn.callbacks.lr_finder import suggest_steepest, suggest_valley
from kerasnn.diagnostics import lr_find
from kerasnn.recipe import Recipe
from kerasnn.recipe.lr_find import lr_find_recipe


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def test_lr_find_restores_everything_and_suggests_a_sensible_rate(digits, tmp_path):
    keras.utils.set_random_seed(0)
    model = knn.compile(
        knn.models.mlp(digits, hidden=[64], dropout=0.1), "adam", learning_rate=1e-3
    )
    model.fit(digits.x_train[:64], digits.y_train[:64], epochs=1, verbose=0)  # optimizer has state
    before = [v.numpy().copy() for v in [*model.variables, *model.optimizer.variables]]
    result = lr_find(
        model, digits, min_lr=1e-6, max_lr=10.0, num_steps=100, path=tmp_path / "lr_find.png"
    )
    after = [v.numpy() for v in [*model.variables, *model.optimizer.variables]]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert model.steps_per_execution == 1 and float(model.optimizer.learning_rate) == pytest.approx(
        1e-3
    )
    assert result.stopped_early and len(result.losses) < 100
    assert 1e-4 <= result.suggested <= 3e-2  # Adam on standardized digits: ~1e-3..1e-2
    assert result.learning_rates[0] == pytest.approx(1e-6)
    assert_png(tmp_path / "lr_find.png")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_lr": 1.0, "max_lr": 1e-3}, "argument max_lr, expected a rate above min_lr=1.0"),
        ({"min_lr": -1e-3}, "argument min_lr, expected a number > 0. Received: min_lr=-0.001"),
        ({"num_steps": 1}, "argument num_steps, expected an integer >= 2"),
        ({"diverge_factor": 0.5}, "argument diverge_factor, expected a number > 1"),
    ],
)
def test_lr_finder_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LRFinder(**kwargs)


def test_lr_finder_round_trips_its_config():
    finder = LRFinder(1e-5, 1.0, 10, smoothing=0.9, diverge_factor=3.0)
    again = LRFinder.from_config(finder.get_config())
    assert again.get_config() == finder.get_config()
    assert again.rate(9) == pytest.approx(1.0) and again.rate(0) == pytest.approx(1e-5)


def test_suggestions_on_a_known_curve():
    rates = np.logspace(-5, 0, 11)
    #                    flat    falling ---------------------->  rising
    smoothed = np.array([2.0, 2.0, 1.9, 1.6, 1.2, 0.8, 0.5, 0.4, 0.6, 1.5, 3.0])
    assert suggest_steepest(rates, smoothed) == pytest.approx(rates[4])
    # fastai's rule: the longest decreasing subsequence has length 7 and ends at index 7, so
    # start = 7 - 7 = 0, sections = 7 / 3 and the valley is index 0 + int(2.33) + int(1.17) = 3.
    assert suggest_valley(rates, smoothed) == pytest.approx(rates[3])


def test_lr_find_refuses_a_scheduled_rate_before_any_step(digits):
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    model = knn.compile(knn.models.mlp(digits, hidden=[8]), "adam", learning_rate=schedule)
    with pytest.raises(ValueError, match="lr_find sets the rate itself"):
        lr_find(model, digits, num_steps=5)
    assert int(model.optimizer.iterations) == 0


def _recipe(tmp_path):
    config = {
        "name": "lrf",
        "data": {"name": "digits"},
        "model": {"hidden": [32]},
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "fit": {"epochs": 2, "batch_size": 64},
    }
    path = tmp_path / "lrf.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("loaded", [False, True], ids=["path", "recipe"])
def test_lr_find_recipe_writes_the_curve_and_the_plot(tmp_path, loaded):
    recipe = Recipe.from_yaml(_recipe(tmp_path)) if loaded else _recipe(tmp_path)
    out = tmp_path / "lrf"
    result, folder = lr_find_recipe(
        recipe, ["seed=3"], out=out, num_steps=30, min_lr=1e-5, max_lr=1.0
    )
    assert folder == out
    saved = json.loads((out / "lr_find.json").read_text())
    assert saved["suggestions"] == pytest.approx(result.suggestions)
    assert saved["learning_rates"][0] == pytest.approx(1e-5)
    assert len(saved["losses"]) <= 30
    assert_png(out / "lr_find.png")


def test_lr_find_recipe_refuses_bad_bounds_before_creating_the_folder(tmp_path):
    with pytest.raises(ValueError, match=re.escape("expected a rate above min_lr=1.0")):
        lr_find_recipe(_recipe(tmp_path), out=tmp_path / "x", min_lr=1.0, max_lr=0.1)
    assert not (tmp_path / "x").exists()
