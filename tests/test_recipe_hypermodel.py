"""kerasnn.recipe.hypermodel: RecipeHyperModel, the ready MLP/CNN HyperModels, `search`'s checks."""

import keras
import keras_tuner
import numpy as np
import pytest
from search_helpers import tiny_recipe

import kerasnn as knn
from kerasnn.recipe.hypermodel import CNNHyperModel, MLPHyperModel, RecipeHyperModel, search
from kerasnn.tuning import IMAGE_AUGMENT, default_mlp_space


def tiny_recipe_with(**search_block):
    """`tiny_recipe()` with more keys in its search block."""
    config = tiny_recipe().to_dict()
    config["search"] |= search_block
    return knn.Recipe.from_dict(config)


def test_default_space_builds_maxout_with_lsuv():
    data = knn.datasets.load("digits")
    mlp = MLPHyperModel(data)  # the full default space validates
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.activation": "maxout", "model.lsuv": True, "model.depth": 1})
    model = mlp.build(hp)
    assert type(model.get_layer("dense_1_act")).__name__ == "MaxoutChannels"
    # LSUV leaves the first layer's output with unit variance on the training batch.
    first = model.get_layer("dense_1")
    probe = keras.Model(model.inputs, first.output)
    variance = float(np.var(probe.predict(data.x_train[:256], verbose=0)))
    assert variance == pytest.approx(1.0, abs=0.15)


def test_ready_hypermodels_build_compiled_models():
    data = knn.datasets.load("digits")
    mlp = MLPHyperModel(data, space=default_mlp_space(("relu", "tanh"), lsuv=False))
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.depth": 3, "model.units_2": 128, "fit.batch_size": 64})
    model = mlp.build(hp)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [64, 128, 64, 10]  # units_1/3 at their default
    assert model.compiled and mlp.fit_arguments(hp)["batch_size"] == 64
    images = knn.datasets.load("digits", view="image")
    space = {
        "model.conv_depth": {"int": [1, 2]},
        "model.conv_filters": {"choice": [4, 8]},
        "model.depth": {"int": [0, 1]},
        "model.units": {"choice": [16]},
    }
    cnn = CNNHyperModel(images, space=space)
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.conv_depth": 2, "model.conv_filters_2": 8, "model.depth": 0})
    model = cnn.build(hp)
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [4, 8]
    assert model.output_shape == (None, 10)


def test_configuration_errors_stop_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="argument objective, expected a metric"):
        search(tiny_recipe(), objective="val_acc", directory=tmp_path / "s")
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="argument seed, expected an integer >= 0"):
        search(tiny_recipe(), seed=-1, directory=tmp_path / "s")


@pytest.mark.parametrize("value", [0, -1, "3", True])
def test_ensemble_setting_is_checked(value, tmp_path):
    with pytest.raises(ValueError, match=r"search.ensemble, expected a positive integer"):
        tiny_recipe_with(ensemble=value)
    if not isinstance(value, str | bool):
        with pytest.raises(ValueError, match=r"argument ensemble, expected"):
            search(tiny_recipe(), seed=0, directory=tmp_path / "x", ensemble=value)
        assert not (tmp_path / "x").exists()


def test_sampled_augmentation_reaches_the_model():
    data = knn.datasets.load("digits", seed=0)
    hypermodel = MLPHyperModel(
        data, space=default_mlp_space(("relu",), lsuv=False, augment=IMAGE_AUGMENT)
    )
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.augment": "shift_noise", "model.depth": 1})
    names = [layer.name for layer in hypermodel.build(hp).layers]
    assert "augment_shift" in names and "augment_noise" in names
    hp.values["model.augment"] = "none"
    assert not any(n.startswith("augment") for n in (x.name for x in hypermodel.build(hp).layers))


@pytest.mark.parametrize("argument", ["max_trials", "max_failures", "ensemble"])
@pytest.mark.parametrize("value", [0, -2, True])
def test_counts_must_be_positive_integers(tmp_path, argument, value):
    # 0 is refused, not read as "the default" (max_trials=0 used to run 20 trials).
    match = rf"argument {argument}, expected a positive integer. Received: {argument}={value!r}$"
    with pytest.raises(ValueError, match=match):
        search(tiny_recipe(), directory=tmp_path / "s", **{argument: value})
    assert not (tmp_path / "s").exists()


def test_search_block_settings_are_the_defaults(tmp_path):
    recipe = tiny_recipe_with(trials=1, max_failures=1, objective="val_loss")
    result = search(recipe, seed=0, directory=tmp_path / "s")
    assert len(result.trials) == 1 and result.objective == "val_loss"
    assert result.directory == tmp_path / "s"
    # An argument wins over the block.
    more = search(
        recipe, seed=0, directory=tmp_path / "s", resume=True, max_trials=2, objective="val_loss"
    )
    assert len(more.trials) == 2


def test_bad_inputs_are_named():
    with pytest.raises(
        TypeError, match=r"argument recipe_or_hypermodel, expected a kerasnn Recipe"
    ):
        search({"data": {"name": "iris"}})
    with pytest.raises(TypeError, match=r"argument data, expected a kerasnn Dataset"):
        search(keras_tuner.HyperModel(name="bare"))


def test_a_trial_recipe_carries_the_sampled_values():
    hypermodel = RecipeHyperModel(tiny_recipe())
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.depth": 2, "optimizer.name": "momentum", "fit.batch_size": 32})
    recipe, values = hypermodel.recipe_for(hp)
    assert recipe.model["hidden"] == [values["model.units_1"], values["model.units_2"]]
    assert recipe.optimizer["name"] == "momentum" and "momentum" in recipe.optimizer
    assert recipe.fit == {"epochs": 2, "batch_size": 32} == hypermodel.fit_arguments(hp)
    assert recipe.search is None and recipe.name == "tiny"


def test_names_are_checked_when_the_hypermodel_is_made():
    data = knn.datasets.load("digits")
    space = {"model.augment": {"choice": ["none", "shfit"]}}
    with pytest.raises(ValueError, match=r"search entry 'model.augment', expected preset names"):
        MLPHyperModel(data, space=space)
    with pytest.raises(ValueError, match=r"Did you mean 'relu'"):
        RecipeHyperModel(tiny_recipe(), data, {"model.activation": {"choice": ["rleu"]}})
