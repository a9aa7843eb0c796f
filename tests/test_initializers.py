"""Tests for kerasnn.initializers: lecture aliases, sample statistics, seeding and errors."""

import re

import keras
import numpy as np
import pytest

from kerasnn import initializers

FAN_IN, FAN_OUT = 1000, 100
SHAPE = (FAN_IN, FAN_OUT)


def _sample(init, shape=SHAPE) -> np.ndarray:
    return keras.ops.convert_to_numpy(init(shape, dtype="float32")).astype("float64")


NAME_TO_CLASS = [
    ("xavier_normal", keras.initializers.GlorotNormal),
    ("xavier_uniform", keras.initializers.GlorotUniform),
    ("kaiming_normal", keras.initializers.HeNormal),
    ("kaiming_uniform", keras.initializers.HeUniform),
    ("small_normal", keras.initializers.RandomNormal),
    ("he_normal", keras.initializers.HeNormal),
    ("orthogonal", keras.initializers.Orthogonal),
]


def test_name_gives_keras_class():
    for name, cls in NAME_TO_CLASS:
        assert type(initializers.get(name)) is cls, name


def test_every_listed_name_resolves():
    assert type(initializers.get("Xavier_Normal")) is keras.initializers.GlorotNormal
    names = initializers.names()
    assert names == sorted(names)
    assert set(initializers.ALIASES) <= set(names)
    for name in names:
        assert isinstance(initializers.get(name), keras.initializers.Initializer)


def test_small_normal_std():
    init = initializers.get("small_normal")
    assert init.get_config()["stddev"] == 0.01
    assert init.get_config()["mean"] == 0.0
    w = _sample(init)
    assert abs(w.mean()) < 2e-4  # the standard error of the mean is 3e-5
    assert w.std() == pytest.approx(0.01, rel=0.05)


def test_alias_config_is_not_shared():
    init = initializers.get("small_normal")
    init.stddev = 1.0
    assert initializers.get("small_normal").stddev == 0.01
    assert initializers.ALIASES["small_normal"][1] == {"mean": 0.0, "stddev": 0.01}


@pytest.mark.parametrize(
    ("name", "variance"),
    [
        ("xavier_normal", 2.0 / (FAN_IN + FAN_OUT)),
        ("xavier_uniform", 2.0 / (FAN_IN + FAN_OUT)),
        ("kaiming_normal", 2.0 / FAN_IN),
        ("kaiming_uniform", 2.0 / FAN_IN),
        ("he_uniform", 2.0 / FAN_IN),
        ("lecun_normal", 1.0 / FAN_IN),
    ],
)
def test_sample_variance_matches_formula(name, variance):
    w = _sample(initializers.get(name, seed=7))
    assert w.var() == pytest.approx(variance, rel=0.03)
    assert abs(w.mean()) < 0.05 * np.sqrt(variance)


def test_uniform_bounds():
    for name, limit in [
        ("xavier_uniform", np.sqrt(6.0 / (FAN_IN + FAN_OUT))),
        ("kaiming_uniform", np.sqrt(6.0 / FAN_IN)),
    ]:
        w = _sample(initializers.get(name, seed=7))
        assert -limit <= w.min() and w.max() <= limit, name
        assert w.max() > 0.99 * limit, name  # fills the interval


@pytest.mark.parametrize("name", ["small_normal", "kaiming_uniform", "orthogonal"])
def test_seed_reproducible(name):
    shape = (50, 20)
    a = _sample(initializers.get(name, seed=1), shape)
    b = _sample(initializers.get(name, seed=1), shape)
    c = _sample(initializers.get(name, seed=2), shape)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_seed_copies_an_instance_without_changing_it():
    original = keras.initializers.HeNormal(seed=5)
    seeded = initializers.get(original, seed=9)
    assert type(seeded) is keras.initializers.HeNormal
    assert seeded is not original
    assert seeded.get_config()["seed"] == 9
    assert original.get_config()["seed"] == 5
    np.testing.assert_array_equal(
        _sample(seeded, (10, 10)), _sample(keras.initializers.HeNormal(seed=9), (10, 10))
    )


def test_seed_ignored_for_deterministic_initializers():
    init = initializers.get("zeros", seed=3)
    assert type(init) is keras.initializers.Zeros
    np.testing.assert_array_equal(_sample(init, (3, 2)), np.zeros((3, 2)))


def test_instance_and_config_dict_pass_through():
    instance = keras.initializers.Constant(0.5)
    assert initializers.get(instance) is instance
    init = initializers.get({"class_name": "RandomNormal", "config": {"stddev": 0.2}})
    assert type(init) is keras.initializers.RandomNormal
    assert init.stddev == 0.2


def test_callable_passes_through():
    def halves(shape, dtype=None):
        return keras.ops.full(shape, 0.5, dtype=dtype)

    assert initializers.get(halves) is halves
    assert initializers.get(halves, seed=3) is halves


def test_unknown_name_lists_names():
    with pytest.raises(ValueError, match="argument initializer, expected one of") as info:
        initializers.get("xavier")
    message = str(info.value)
    for name in initializers.names():
        assert repr(name) in message
    assert message.endswith("Did you mean 'xavier_normal'? Received: initializer='xavier'")


def test_wrong_type_is_a_type_error():
    expected = (
        "Received an invalid value for argument initializer, expected a name, a "
        "keras.initializers.Initializer, a config dict or a callable. Received: initializer=0.1"
    )
    with pytest.raises(TypeError, match=re.escape(expected)):
        initializers.get(0.1)
