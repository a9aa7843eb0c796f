"""The lectures' experiments (recipes/experiments/*.yaml): each validates and runs end to end.

Each experiment is run here with tiny overrides (one or two epochs, few samples, big grids cut to
two levels per axis); the full runs and their measured figures are in docs/gallery/. Experiment 6
is a pair of search recipes (their figure: tests/test_plots_search.py).
"""

import copy
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_png

from kerasnn.compare import Experiment
from kerasnn.recipe import Recipe

EXPERIMENTS = Path(__file__).resolve().parents[1] / "recipes" / "experiments"
PATHS = sorted(EXPERIMENTS.glob("*.yaml"))
TINY = ["fit.epochs=2", "fit.batch_size=64"]


def _small(experiment: Experiment) -> Experiment:
    """The same experiment cut to two levels per grid axis, or its first three variants."""
    config = copy.deepcopy(experiment.config)
    if "grid" in config:
        config["grid"] = {
            axis: dict(list(levels.items())[:2]) for axis, levels in config["grid"].items()
        }
    else:
        config["variants"] = dict(list(config["variants"].items())[:3])
    return Experiment.from_dict(config)


def test_the_lectures_experiments_are_all_here():
    names = {p.stem for p in PATHS}
    assert {
        "activations",
        "initialization",
        "optimizers",
        "optimizers_lr_sweep",
        "regularization",
        "lr_decay",
        "decision_boundaries",
    } <= names
    # Experiment 6 is a pair of search recipes (kerasnn search), experiment 7 a notebook.
    for name in ("random", "grid"):
        assert "search" in Recipe.from_yaml(EXPERIMENTS / "search" / f"{name}.yaml").to_dict()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_experiment_validates(path):
    experiment = Experiment.from_yaml(path)
    assert experiment.name == path.stem
    assert len(experiment.variants) >= 2
    for variant in experiment.variants:
        variant.recipe.check()
        resolved = variant.recipe.resolved()
        assert Recipe.from_dict(resolved.to_dict()).to_dict() == resolved.to_dict()
    # The variants differ from each other (else the comparison compares nothing).
    configs = [
        {k: v for k, v in variant.recipe.to_dict().items() if k != "name"}
        for variant in experiment.variants
    ]
    assert all(configs.count(c) == 1 for c in configs)


def test_bases_are_plain_recipes():
    paths = sorted((EXPERIMENTS / "bases").glob("*.yaml"))
    assert paths
    for path in paths:
        recipe = Recipe.from_yaml(path)  # checked: every key and kerasnn name
        assert recipe.name == path.stem and recipe.data["name"]
        assert Recipe.from_dict(recipe.to_dict()).to_dict() == recipe.to_dict()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_experiment_runs_with_tiny_overrides(path, tmp_path):
    experiment = _small(Experiment.from_yaml(path)).with_overrides(TINY)
    result = experiment.run(tmp_path / path.stem, log=None)
    table = result.table()
    assert [row["variant"] for row in table] == [v.name for v in experiment.variants]
    assert all(row["epochs"] == 2 for row in table)
    assert all(np.isfinite(row["test_loss"]) for row in table)
    assert (tmp_path / path.stem / "summary.csv").exists()
    assert set(result.figures) == set(experiment.figures)
    for png in result.figures.values():
        assert_png(png)


def test_a_variant_that_cannot_run_fails_before_any_training(tmp_path):
    # One-cycle cycles Adam's beta_1; SGD's momentum is a constant in Keras 3. The experiment is
    # refused when it is read, not after the other variants have trained.
    config = copy.deepcopy(Experiment.from_yaml(EXPERIMENTS / "lr_decay.yaml").config)
    config["variants"]["one_cycle"] = {"fit.lr_schedule": {"one_cycle": {"pct_start": 0.25}}}
    with pytest.raises(ValueError, match=r"In variant 'one_cycle' .*Pass cycle_momentum=False"):
        Experiment.from_dict(config)
    config["overrides"] = []  # the experiment's own (SGD + momentum) would come last
    config["variants"] = {"adam_one_cycle": {"fit.lr_schedule": "one_cycle"}}  # base: Adam
    assert Experiment.from_dict(config).variants[0].recipe.optimizer["name"] == "adam"


def test_random_vs_grid_recipes_share_everything_but_the_search():
    random = Recipe.from_yaml(EXPERIMENTS / "search" / "random.yaml").to_dict()
    grid = Recipe.from_yaml(EXPERIMENTS / "search" / "grid.yaml").to_dict()
    random_space = random.pop("search")["space"]
    grid_space = grid.pop("search")["space"]
    random.pop("name"), grid.pop("name")
    assert random == grid
    for key, spec in grid_space.items():  # the grid's levels cover the random ranges' ends
        low, high = random_space[key]["log_uniform"]
        assert min(spec["choice"]) == low and max(spec["choice"]) == high
