"""Tests for kerasnn.optimizers: lecture names, hyperparameters, update rules and errors."""

import re

import keras
import numpy as np
import pytest

from kerasnn import optimizers
from kerasnn.optimizers.fused import fusable, is_fused

# name -> (Keras class, default learning rate, hyperparameters the name implies)
TABLE = [
    ("sgd", keras.optimizers.SGD, 0.01, {"momentum": 0.0, "nesterov": False}),
    ("momentum", keras.optimizers.SGD, 0.01, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", keras.optimizers.SGD, 0.01, {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", keras.optimizers.RMSprop, 0.001, {"rho": 0.9, "momentum": 0.0}),
    ("adam", keras.optimizers.Adam, 0.001, {"beta_1": 0.9, "beta_2": 0.999}),
    ("adamw", keras.optimizers.AdamW, 0.001, {"weight_decay": 0.004, "beta_1": 0.9}),
    ("adagrad", keras.optimizers.Adagrad, 0.001, {}),
    ("adadelta", keras.optimizers.Adadelta, 0.001, {"rho": 0.95}),
    ("adamax", keras.optimizers.Adamax, 0.001, {"beta_1": 0.9}),
    ("nadam", keras.optimizers.Nadam, 0.001, {"beta_1": 0.9}),
    ("lion", keras.optimizers.Lion, 0.001, {"beta_2": 0.99}),
]


def test_table_covers_every_name():
    assert sorted(row[0] for row in TABLE) == optimizers.names()


@pytest.mark.parametrize(("name", "cls", "lr", "hyper"), TABLE, ids=[row[0] for row in TABLE])
def test_name_gives_class_and_hyperparameters(name, cls, lr, hyper):
    opt = optimizers.get(name)
    # sgd/momentum/nesterov/rmsprop/adam/adamw come fused; the others as Keras's. The class is
    # Keras's own either way.
    assert type(opt) is cls
    assert is_fused(opt) is fusable(cls)
    assert type(optimizers.get(name, fused=False)) is cls
    assert not is_fused(optimizers.get(name, fused=False))
    assert float(opt.learning_rate) == pytest.approx(lr)
    config = opt.get_config()
    for key, value in hyper.items():
        assert config[key] == pytest.approx(value), key
    assert type(optimizers.get(name.upper())) is cls


# name -> w after two steps from w=1 with gradient 2 and learning rate 0.1
# sgd: w -= 0.2 each step; momentum: v = 0.9 v - 0.2, w += v (-0.2, then -0.38);
# nesterov: w += 0.9 v - 0.2 with the updated v (-0.38, then -0.542).
@pytest.mark.parametrize(
    ("name", "after_two_steps"),
    [("sgd", 0.6), ("momentum", 1 - 0.2 - 0.38), ("nesterov", 1 - 0.38 - 0.542)],
)
def test_update_rule(name, after_two_steps):
    opt = optimizers.get(name, learning_rate=0.1)
    w = keras.Variable(1.0)
    for _ in range(2):
        opt.apply_gradients([(keras.ops.convert_to_tensor(2.0), w)])
    assert float(w.numpy()) == pytest.approx(after_two_steps, abs=1e-6)


def test_kwargs_override_the_name_defaults():
    opt = optimizers.get("momentum", learning_rate=0.05, momentum=0.95)
    assert (type(opt), opt.momentum, opt.nesterov) == (keras.optimizers.SGD, 0.95, False)
    assert float(opt.learning_rate) == pytest.approx(0.05)
    opt = optimizers.get("nesterov", momentum=0.8, clipnorm=1.0)
    assert (opt.momentum, opt.nesterov, opt.clipnorm) == (0.8, True, 1.0)
    opt = optimizers.get("adamw", weight_decay=1e-4, beta_1=0.8)
    assert (opt.weight_decay, opt.beta_1) == (1e-4, 0.8)
    opt = optimizers.get("adam", weight_decay=1e-3, clipvalue=0.5)
    assert (opt.weight_decay, opt.clipvalue) == (1e-3, 0.5)


def test_none_kwargs_keep_defaults():
    opt = optimizers.get("momentum", momentum=None, weight_decay=None)
    assert opt.momentum == 0.9
    assert opt.weight_decay is None


def test_learning_rate_number():
    for learning_rate in (0.3, 1, np.float32(0.25)):
        opt = optimizers.get("sgd", learning_rate=learning_rate)
        assert float(opt.learning_rate) == pytest.approx(float(learning_rate))


def test_learning_rate_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    opt = optimizers.get("adam", learning_rate=schedule)
    assert opt.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"
    assert float(opt.learning_rate) == pytest.approx(0.1)
    opt.iterations.assign(10)
    assert float(opt.learning_rate) == pytest.approx(0.05)


def test_instance_passes_through():
    instance = keras.optimizers.RMSprop(learning_rate=0.02)
    assert optimizers.get(instance) is instance


def test_default_is_a_new_adam():
    assert type(optimizers.get()) is keras.optimizers.Adam
    assert optimizers.get("adam") is not optimizers.get("adam")


def test_unknown_kwarg_lists_accepted_arguments():
    expected = (
        "Received an invalid argument for optimizer 'sgd': betas, foo. SGD accepts: clipnorm, "
        "clipvalue, ema_momentum, ema_overwrite_frequency, global_clipnorm, "
        "gradient_accumulation_steps, learning_rate, loss_scale_factor, momentum, nesterov, "
        "use_ema, weight_decay."
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        optimizers.get("sgd", foo=1, betas=(0.9, 0.99))


def test_nesterov_flag_is_refused_by_adam():
    with pytest.raises(
        ValueError, match=r"for optimizer 'adam': nesterov\. Adam accepts: .*beta_1"
    ):
        optimizers.get("adam", nesterov=True)


def test_learning_rate_must_be_positive():
    for learning_rate in (0, -0.001, np.float32(-0.1), float("nan")):
        expected = (
            "Received an invalid value for argument learning_rate, expected a number > 0 or a "
            f"LearningRateSchedule. Received: learning_rate={learning_rate!r}"
        )
        with pytest.raises(ValueError, match=re.escape(expected)):
            optimizers.get("adam", learning_rate=learning_rate)


def test_instance_with_arguments_is_refused():
    for kwargs, received in [
        ({"learning_rate": 0.1}, "learning_rate=0.1, kwargs={}"),
        ({"momentum": 0.5}, "learning_rate=None, kwargs={'momentum': 0.5}"),
    ]:
        expected = (
            "Received an optimizer instance together with learning_rate or other arguments; set "
            f"them on the instance instead. Received: {received}"
        )
        with pytest.raises(ValueError, match=re.escape(expected)):
            optimizers.get(keras.optimizers.SGD(), **kwargs)


def test_unknown_name_lists_names():
    expected = (
        "Received an invalid value for argument optimizer, expected one of 'adadelta', "
        "'adagrad', 'adam', 'adamax', 'adamw', 'lion', 'momentum', 'nadam', 'nesterov', "
        "'rmsprop', 'sgd'. Did you mean 'nesterov'? Received: optimizer='nesterv'"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        optimizers.get("nesterv")


def test_wrong_type_is_a_type_error():
    expected = (
        "Received an invalid value for argument optimizer, expected a name or a "
        "keras.optimizers.Optimizer. Received: optimizer=0.01"
    )
    with pytest.raises(TypeError, match=re.escape(expected)):
        optimizers.get(0.01)
