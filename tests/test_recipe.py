"""Recipes: validation before any work, overrides, round trip, running, bundled recipes."""

import json
from pathlib import Path

import pytest
import yaml

import kerasnn as knn
from kerasnn.recipe import Recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY = {
    "name": "tiny",
    "data": {"name": "iris"},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "fit": {"epochs": 3},
}


def test_bundled_recipes_validate():
    names = sorted(p.stem for p in RECIPES.glob("*.yaml"))
    assert names == [
        "breast_cancer",
        "diabetes",
        "digits_cnn",
        "digits_mlp",
        "digits_one_cycle",
        "spirals",
    ]
    for path in RECIPES.glob("*.yaml"):
        recipe = Recipe.from_yaml(path)
        assert recipe.name == path.stem
        assert (
            Recipe.from_dict(recipe.resolved().to_dict()).to_dict() == recipe.resolved().to_dict()
        )


def test_round_trip_through_yaml(tmp_path):
    recipe = Recipe.from_dict(TINY)
    path = tmp_path / "r.yaml"
    recipe.to_yaml(path)
    assert Recipe.from_yaml(path).to_dict() == recipe.to_dict()


def test_resolved_fills_every_default():
    resolved = Recipe.from_dict(TINY).resolved()
    assert resolved.model["builder"] == "mlp"
    assert resolved.model["activation"] == "relu"
    assert resolved.model["hidden"] == [8]
    assert resolved.data["test_size"] == 0.2
    assert resolved.data["seed"] == 0
    assert resolved.fit["batch_size"] == 32 and resolved.fit["epochs"] == 3


def test_overrides():
    recipe = Recipe.from_dict(TINY).with_overrides(
        ["fit.epochs=5", "model.hidden=[16, 4]", "optimizer=sgd", "seed=3", "model.dropout=0.5"]
    )
    assert recipe.fit["epochs"] == 5
    assert recipe.model["hidden"] == [16, 4]
    assert recipe.optimizer == {"name": "sgd"}
    assert recipe.seed == 3
    recipe = Recipe.from_dict({**TINY, "optimizer": "adam"}).with_overrides(
        ["optimizer.learning_rate=0.1"]
    )
    assert recipe.optimizer == {"name": "adam", "learning_rate": 0.1}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"fitt": {}}, r"Unknown recipe key fitt. Did you mean 'fit'\?"),
        ({"model": {"hiden": [3]}}, r"Unknown recipe key model.hiden. Did you mean 'hidden'\?"),
        ({"data": {"nme": "iris"}}, r"Unknown recipe key data.nme"),
        ({"fit": {"epoch": 3}}, r"Unknown recipe key fit.epoch. Did you mean 'epochs'\?"),
        ({"fit": {"epochs": 0}}, r"argument fit.epochs, expected a positive integer"),
        ({"fit": {"batch_size": -1}}, r"argument fit.batch_size, expected a positive integer"),
        ({"model": {"builder": "mpl"}}, r"model.builder, expected one of .*Did you mean 'mlp'"),
        ({"optimizer": {"name": "adamm"}}, r"argument optimizer.name, expected one of"),
        (
            {"optimizer": {"name": "sgd", "betta": 1}},
            r"Unknown recipe key optimizer.betta\.",
        ),
        ({"data": {"test_size": 0.2}}, r"data section needs a name"),
        ({"seed": -1}, r"recipe key 'seed', expected an integer >= 0"),
        ({"metrics": "accuracy"}, r"recipe key 'metrics', expected a list"),
        ({"model": [1, 2]}, r"recipe section 'model', expected a mapping"),
        ({"data": {"name": "mnits"}}, r"argument data.name.*Did you mean 'mnist'"),
        ({"fit": {"shuffle": "yes"}}, r"argument fit.shuffle, expected true or false"),
        ({"fit": {"callbacks": ["grad_norm"]}}, r"Did you mean 'grad_norms'"),
        ({"loss": {"class_name": "MSE", "confg": {}}}, r"Unknown recipe key loss.confg"),
    ],
)
def test_invalid_recipes_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        Recipe.from_dict({**TINY, **change})


def test_missing_sections_and_bad_overrides():
    with pytest.raises(ValueError, match="no 'model' section"):
        Recipe.from_dict({"data": {"name": "iris"}})
    with pytest.raises(ValueError, match=r"expected the form section.key=value"):
        Recipe.from_dict(TINY).with_overrides(["fit.epochs"])
    with pytest.raises(ValueError, match=r"Unknown recipe key fti"):
        Recipe.from_dict(TINY).with_overrides(["fti.epochs=3"])


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  name: iris\nmodel: [unclosed\n")
    with pytest.raises(ValueError, match=r"Malformed YAML in recipe .*bad.yaml at line \d+"):
        Recipe.from_yaml(path)
    with pytest.raises(FileNotFoundError, match="Recipe file not found"):
        Recipe.from_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (
            {"model": {"activation": "rleu"}},
            ValueError,
            r"argument activation.*Did you mean 'relu'",
        ),
        ({"model": {"initializer": "xavier"}}, ValueError, r"argument initializer"),
        ({"model": {"hidden": [0]}}, ValueError, r"argument hidden\[0\], expected a positive"),
    ],
)
def test_bad_names_fail_before_training(tmp_path, change, error, match):
    recipe = Recipe.from_dict({**TINY, **change})
    with pytest.raises(error, match=match):
        recipe.run(tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "run.partial").exists()


def test_run_writes_the_folder_with_the_resolved_recipe(tmp_path):
    result = Recipe.from_dict(TINY).run(tmp_path / "run", verbose=0)
    run = tmp_path / "run"
    assert result.run_dir == run
    assert sorted(p.name for p in run.iterdir()) == [
        "history.csv",
        "history.png",
        "metrics.json",
        "model.keras",
        "recipe.yaml",
    ]
    written = yaml.safe_load((run / "recipe.yaml").read_text())
    assert written == Recipe.from_dict(TINY).resolved().to_dict()
    # The written recipe runs again and reproduces the metrics exactly.
    again = Recipe.from_yaml(run / "recipe.yaml").run(tmp_path / "again", verbose=0)
    assert again.fit.test_metrics == result.fit.test_metrics
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_metrics"]["accuracy"] == result.fit.test_metrics["accuracy"]


def test_default_run_folder_is_numbered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Recipe.from_dict(TINY).run(verbose=0)
    second = Recipe.from_dict(TINY).run(verbose=0)
    assert first.run_dir == Path("runs/tiny")
    assert second.run_dir == Path("runs/tiny-2")


def test_python_and_recipe_paths_agree(tmp_path):
    """The five Python lines and the recipe train the same model to the same numbers."""
    import keras

    data = knn.datasets.load("iris", seed=0)
    keras.utils.set_random_seed(0)
    model = knn.models.mlp(data, hidden=[8])
    knn.compile(model, "adam", learning_rate=0.01)
    result = knn.fit(model, data, epochs=3, seed=0, verbose=0)
    from_recipe = Recipe.from_dict(TINY).run(tmp_path / "run", verbose=0)
    assert from_recipe.fit.test_metrics == result.test_metrics
