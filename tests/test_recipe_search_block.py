"""kerasnn.recipe.search_block: a recipe's search: block, checked when the recipe is loaded."""

import pytest
from helpers import run_python

import kerasnn as knn
from kerasnn.recipe.search_block import SearchBlock, check_search_block, resolve_space
from kerasnn.tuning import DEFAULT_AUGMENT, IMAGE_AUGMENT, SearchSpace

BASE = {"data": {"name": "iris"}, "model": {"hidden": [8]}}


def _probe(config):
    return knn.Recipe.from_dict(config)


@pytest.mark.parametrize(
    ("search", "match"),
    [
        ({"space": {"model.hiden": {"choice": [1]}}}, r"entry 'model.hiden'.*'hidden'"),
        ({"trails": 3}, r"Unknown recipe key search.trails. Did you mean 'trials'\?"),
        ({"trials": 0}, r"search.trials, expected a positive integer. Received: trials=0"),
        ({"trials": True}, r"search.trials, expected a positive integer. Received: trials=True"),
        ({"max_failures": 0}, r"search.max_failures, expected a positive integer"),
        ({"ensemble": 0}, r"search.ensemble, expected a positive integer"),
        ({"objective": 3}, r"search.objective, expected a metric name"),
        ({"space": {"model.depth": {"int": [1, 2]}, "model.units": {"choice": []}}}, "non-empty"),
        ({"space": {"model.augment": {"choice": ["none"]}}}, None),
    ],
)
def test_recipe_search_block_is_checked_when_loaded(search, match):
    config = BASE | {"search": search}
    if match is None:
        assert knn.Recipe.from_dict(config).search == search
        return
    with pytest.raises(ValueError, match=match):
        knn.Recipe.from_dict(config)


def test_the_block_comes_back_parsed():
    recipe = knn.Recipe.from_dict(BASE)
    recipe.search = {"trials": 4, "objective": "val_loss", "space": {"model.dropout": 0.1}}
    block = check_search_block(recipe, probe=_probe)
    assert isinstance(block, SearchBlock)
    assert (block.trials, block.objective, block.max_failures, block.ensemble) == (
        4,
        "val_loss",
        None,
        None,
    )
    assert block.space.names() == ["model.dropout"] and block.space.builder == "mlp"
    recipe.search = {}
    assert "model.lsuv" in check_search_block(recipe, probe=_probe).space.names()  # default


def test_each_entry_is_probed_on_the_recipe():
    recipe = knn.Recipe.from_dict(BASE)
    probed = []

    def probe(config):
        probed.append(config)
        return _probe(config)

    space = {"optimizer.momentum": {"uniform": [0.5, 0.9]}, "fit.epochs": {"choice": [3, 4]}}
    resolve_space(space, recipe, probe=probe)
    assert probed[0]["optimizer"] == {"name": "momentum", "momentum": 0.5}
    assert probed[1]["fit"] == {"epochs": 3}
    assert all("search" not in config for config in probed)

    def refuse(config):
        raise ValueError("no")

    with pytest.raises(ValueError, match=r"^Invalid search entry 'fit.epochs': no$"):
        resolve_space({"fit.epochs": 3}, recipe, probe=refuse)


def test_default_space_offers_shifts_for_image_datasets_only():
    digits = knn.Recipe.from_dict({"data": {"name": "digits"}, "model": {"builder": "mlp"}})
    wine = knn.Recipe.from_dict({"data": {"name": "wine"}, "model": {"builder": "mlp"}})
    assert resolve_space("default", digits, probe=_probe)["model.augment"].values == IMAGE_AUGMENT
    assert resolve_space(None, wine, probe=_probe)["model.augment"].values == DEFAULT_AUGMENT
    residual = knn.Recipe.from_dict(BASE | {"model": {"builder": "residual_mlp"}})
    with pytest.raises(ValueError, match=r"no ready space for builder 'residual_mlp'"):
        resolve_space("default", residual, probe=_probe)


def test_a_space_object_is_taken_for_the_recipes_builder():
    space = SearchSpace.from_config(
        {"model.depth": {"int": [1, 2]}, "model.units": {"choice": [4]}}
    )
    cnn = knn.Recipe.from_dict(
        {"data": {"name": "digits", "view": "image"}, "model": {"builder": "cnn"}}
    )
    resolved = resolve_space(space, cnn, probe=_probe)
    assert resolved.builder == "cnn"
    assert resolved.apply({}, {"model.depth": 1, "model.units_1": 4})["model"] == {"dense": [4]}


def test_loading_a_recipe_with_a_search_block_stays_light():
    code = (
        "import sys\n"
        "from kerasnn.recipe import Recipe\n"
        "space = {'model.activation': {'choice': ['relu', 'tanh']},\n"
        "         'optimizer.learning_rate': {'log_uniform': [0.001, 0.1]}}\n"
        "Recipe.from_dict({'data': {'name': 'digits'}, 'model': {'hidden': [8]},\n"
        "                  'search': {'trials': 3, 'space': space}})\n"
        "print(sorted(m for m in ('keras', 'keras_tuner', 'tensorflow') if m in sys.modules))\n"
    )
    assert run_python(code).strip() == "[]"
