"""Tests for the recipe option model.lsuv (kerasnn.recipe.lsuv_options)."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from helpers import invalid_message, run_python

from kerasnn import datasets, initializers, models
from kerasnn.initializers import lsuv_layers
from kerasnn.recipe import Recipe
from kerasnn.recipe.lsuv_options import RECIPE_DEFAULTS, lsuv_from_recipe, recipe_options

_msg = invalid_message


def _output_variance(model, layer, x) -> float:
    out = keras.ops.convert_to_numpy(keras.Model(model.inputs[0], layer.output)(x, training=False))
    return float(np.asarray(out, np.float64).var())


def test_the_option_is_checked_without_keras():
    """A recipe is validated before TensorFlow loads: this module must not import Keras."""
    code = (
        "import sys\n"
        "from kerasnn.recipe.lsuv_options import recipe_options\n"
        "options = recipe_options({'tol': 0.05})\n"
        "print(options['tol'], options['samples'], 'keras' in sys.modules)\n"
    )
    assert run_python(code).strip().splitlines()[-1] == "0.05 256 False"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (False, None),
        (True, RECIPE_DEFAULTS),
        ({"samples": 64, "zero_mean": True}, {**RECIPE_DEFAULTS, "samples": 64, "zero_mean": True}),
    ],
)
def test_recipe_options_fill_in_the_defaults(value, expected):
    assert recipe_options(value) == expected


def test_lsuv_from_recipe_uses_the_first_samples_and_the_seed():
    data = datasets.load("digits", view="flat")
    model = models.mlp(data, [32, 32], activation="tanh", initializer="small_normal", seed=0)
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    assert lsuv_from_recipe(model, data.x_train, False, seed=3) is None
    report = lsuv_from_recipe(model, data.x_train, {"samples": 128, "tol": 0.05}, seed=3)
    direct = initializers.lsuv(twin, data.x_train[:128], tol=0.05, seed=3)
    assert report == direct
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_recipe_lsuv_option_initialises_the_built_model():
    config = {
        "data": {"name": "digits"},
        "model": {"hidden": [32, 32], "activation": "tanh", "lsuv": {"samples": 128, "tol": 0.05}},
    }
    recipe = Recipe.from_dict(config)
    data, model = recipe.build()
    for layer in lsuv_layers(model):
        variance = _output_variance(model, layer, data.x_train[:128])
        assert abs(variance - 1.0) <= 0.05, (layer.name, variance)
    assert recipe.resolved().model["lsuv"] == {"samples": 128, "tol": 0.05}
    # without the option the same recipe keeps Keras's initialisation
    _, plain = Recipe.from_dict({**config, "model": {"hidden": [32, 32]}}).build()
    variance = _output_variance(plain, plain.get_layer("dense_2"), data.x_train[:128])
    assert abs(variance - 1.0) > 0.05


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", _msg("model.lsuv", "true, false or a mapping of LSUV options", "model.lsuv='yes'")),
        (
            {"samples": 0},
            _msg("model.lsuv.samples", "a positive integer", "model.lsuv.samples=0"),
        ),
        ({"tol": 2}, _msg("tol", "a number in (0, 1)", "tol=2")),
        ({"max_iter": 0}, _msg("max_iter", "a positive integer", "max_iter=0")),
        (
            {"zero_mean": "no"},
            _msg("model.lsuv.zero_mean", "true or false", "model.lsuv.zero_mean='no'"),
        ),
        (
            {"tolerance": 0.1},
            re.escape(
                "Unknown recipe key model.lsuv.tolerance. Allowed keys here: samples, tol, "
                "max_iter, zero_mean, orthonormal."
            ),
        ),
    ],
)
def test_recipe_lsuv_bad_values_fail_before_loading(value, message):
    with pytest.raises(ValueError, match=message):
        Recipe.from_dict({"data": {"name": "digits"}, "model": {"lsuv": value}})


@pytest.mark.parametrize("options", [{"tol": 1.5}, {"tol": True}, {"max_iter": 0}])
def test_recipe_check_and_lsuv_refuse_with_the_same_message(options):
    """recipe_options repeats lsuv's own tol/max_iter checks (it must run without Keras)."""
    data = datasets.load("digits", view="flat")
    model = models.mlp(data, [8], seed=0)
    with pytest.raises(ValueError) as from_recipe:
        recipe_options(options)
    with pytest.raises(ValueError) as from_lsuv:
        initializers.lsuv(model, data.x_train[:64], **options)
    assert str(from_recipe.value) == str(from_lsuv.value)
