"""The recipe's key tables (read before TensorFlow loads) agree with what they stand for."""

import inspect
from pathlib import Path

import keras
import pytest
from helpers import run_python

from kerasnn import augment, callbacks, export, models, optimizers, schedules, training
from kerasnn.callbacks import registry
from kerasnn.recipe import keys
from kerasnn.recipe.lsuv_options import RECIPE_DEFAULTS


def _parameters(fn, skip=()):
    return [
        n
        for n, p in inspect.signature(fn).parameters.items()
        if n not in skip and n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


@pytest.mark.parametrize("builder", sorted(models.BUILDERS))
def test_builder_keys_are_the_builders_arguments(builder):
    expected = _parameters(models.get(builder), skip=("data", "input_shape"))
    assert sorted(keys.BUILDERS[builder]) == sorted(expected)


def test_optimizer_keys_are_the_keras_classes_arguments():
    assert sorted(keys.OPTIMIZERS) == optimizers.names()
    for name in optimizers.names():
        cls = type(optimizers.get(name))
        accepted = set(_parameters(cls.__init__)) - {"name"}  # `name` picks the optimizer
        assert set(keys.OPTIMIZER_COMMON) - {"fused"} | set(keys.OPTIMIZERS[name]) == accepted
    assert "fused" in _parameters(optimizers.get)


def test_named_tables_are_the_registries():
    assert sorted(keys.SCHEDULES) == schedules.names()
    for name, arguments in keys.SCHEDULES.items():
        factory = getattr(schedules, {"step": "step_decay"}.get(name, name))
        assert sorted(arguments) == sorted(_parameters(factory, skip=("steps_per_epoch",)))
    assert sorted(keys.CALLBACKS) == callbacks.names()
    for name, arguments in keys.CALLBACKS.items():
        assert list(arguments) == registry.arguments(name)
    assert list(keys.AUGMENT_PRESETS) == augment.names()
    assert keys.AUGMENT_KEYS == augment.KEYS
    assert keys.EXPORT_FORMATS == export.FORMATS
    assert set(keys.FIT_KEYS) <= set(_parameters(training.fit))
    assert set(RECIPE_DEFAULTS) == {"samples", "tol", "max_iter", "zero_mean", "orthonormal"}


def test_cycled_momentum_is_what_one_cycle_accepts():
    for name in optimizers.names():
        try:
            schedules.momentum_attribute(optimizers.get(name))
        except ValueError:
            assert name not in keys.CYCLED_MOMENTUM
        else:
            assert name in keys.CYCLED_MOMENTUM


def test_keras_config_keys_are_what_keras_serializes():
    config = keras.saving.serialize_keras_object(keras.losses.MeanSquaredError())
    assert set(config) <= set(keys.KERAS_CONFIG_KEYS)


def test_the_check_imports_no_tensorflow():
    out = run_python(
        "import sys\n"
        "from kerasnn.recipe import Recipe\n"
        "r = Recipe.from_yaml(sys.argv[1], overrides=['fit.epochs=2', 'optimizer=sgd'])\n"
        "try:\n"
        "    r.with_overrides(['fit.lr_schedule={one_cycl: {}}'])\n"
        "except ValueError as err:\n"
        "    print(err)\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'keras_tuner') if m in sys.modules))\n",
        str(Path(__file__).parents[1] / "recipes" / "digits_mlp.yaml"),
    )
    assert "Did you mean 'one_cycle'?" in out
    assert out.splitlines()[-1] == "[]"
