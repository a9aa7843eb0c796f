"""kerasnn.tuning.refine: narrowed_space's rule per kind, sampling it on KerasTuner's oracle."""

import json

import keras_tuner
import numpy as np
import pytest

from kerasnn.tuning.oracles import seeded_oracle
from kerasnn.tuning.refine import describe_narrowing, narrowed_space

OPTIMIZERS = ["sgd", "momentum", "adam"]
ACTIVATIONS = ["relu", "tanh", "elu"]


def build(hp: keras_tuner.HyperParameters) -> dict:
    """A hypermodel's declarations of the ORIGINAL space; returns the active values."""
    values = {
        "lr": hp.Float("lr", 1e-4, 1e-1, sampling="log"),
        "dropout": hp.Float("dropout", 0.0, 0.5),
        "depth": hp.Int("depth", 1, 3),
        "units": hp.Int("units", 32, 512, step=32, default=480),
        "activation": hp.Choice("activation", ACTIVATIONS),
        "batch_size": hp.Choice("batch_size", [32, 64, 128], default=128),
        "optimizer": hp.Choice("optimizer", OPTIMIZERS),
        "batchnorm": hp.Boolean("batchnorm"),
        "shuffle": hp.Boolean("shuffle", default=True),
        "epochs": hp.Fixed("epochs", 5),
    }
    with hp.conditional_scope("optimizer", ["momentum"]):
        values["momentum"] = hp.Float("momentum", 0.5, 0.99)
    return {name: value for name, value in values.items() if value is not None}


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    build(hp)
    return hp


# Three top trials: momentum active in two of them.
TOP = [
    {
        "lr": 2e-3,
        "dropout": 0.1,
        "depth": 2,
        "units": 96,
        "activation": "relu",
        "batch_size": 64,
        "optimizer": "momentum",
        "batchnorm": True,
        "shuffle": True,
        "epochs": 5,
        "momentum": 0.9,
    },
    {
        "lr": 5e-3,
        "dropout": 0.2,
        "depth": 2,
        "units": 160,
        "activation": "elu",
        "batch_size": 64,
        "optimizer": "adam",
        "batchnorm": True,
        "shuffle": False,
        "epochs": 5,
    },
    {
        "lr": 1e-3,
        "dropout": 0.15,
        "depth": 2,
        "units": 128,
        "activation": "relu",
        "batch_size": 32,
        "optimizer": "momentum",
        "batchnorm": True,
        "shuffle": True,
        "epochs": 5,
        "momentum": 0.8,
    },
]
# No top trial used momentum (inactive everywhere); every batchnorm False.
TOP_ADAM = [
    {**t, "optimizer": "adam", "batchnorm": False} for t in (TOP[0], TOP[1])
]  # momentum keys of inactive trials are ignored (conditions decide)


def reference(low0, high0, used, margin, *, log=False, step=None, integer=False):
    """The narrowing rule in NumPy: widen the top span by margin x the original width (log
    space if `log`), clip, then round outward onto the original grid (enumerated)."""
    f, inv = (np.log, np.exp) if log else ((lambda x: x), (lambda x: x))
    used = np.clip(np.asarray(used, dtype=float), low0, high0)
    widen = margin * (f(high0) - f(low0))
    low = float(np.clip(inv(f(used.min()) - widen), low0, high0))
    high = float(np.clip(inv(f(used.max()) + widen), low0, high0))
    if step is not None:
        if log:
            count = np.floor(np.log(high0 / low0) / np.log(step) + 1e-9) + 1
            grid = low0 * step ** np.arange(count)
        else:
            grid = low0 + step * np.arange(np.floor((high0 - low0) / step + 1e-9) + 1)
        low = float(grid[grid <= low + 1e-9].max())
        above = grid[grid >= high - 1e-9]
        high = float(above.min()) if above.size else high0
    if integer:
        return int(np.floor(low)), int(np.ceil(high))
    return low, high


def by_name(hps):
    return {hp.name: hp for hp in hps.space}


# -- the rule, per kind ----------------------------------------------------------------------------
def test_narrowed_bounds_choices_and_booleans():
    before = space()
    config_before = before.get_config()
    narrowed = narrowed_space(before, TOP, margin=0.25)
    assert before.get_config() == config_before  # the input is not modified
    hp = by_name(narrowed)

    low, high = reference(1e-4, 1e-1, [2e-3, 5e-3, 1e-3], 0.25, log=True)
    assert (hp["lr"].min_value, hp["lr"].max_value) == pytest.approx((low, high), rel=1e-12)
    assert (low, high) == pytest.approx((1e-3 / 1000**0.25, 5e-3 * 1000**0.25))
    assert hp["lr"].sampling == "log"
    assert hp["lr"].default == pytest.approx(low)  # the old default (1e-4) moved inside

    assert (hp["dropout"].min_value, hp["dropout"].max_value) == pytest.approx(
        reference(0.0, 0.5, [0.1, 0.2, 0.15], 0.25)
    )
    assert hp["dropout"].max_value == pytest.approx(0.325)

    # Int with step 32: [96 - 120, 160 + 120] clipped to 32, rounded up to the grid: 288.
    units = hp["units"]
    assert isinstance(units, type(before.space[3]))  # still an Int
    assert (units.min_value, units.max_value) == reference(
        32, 512, [96, 160, 128], 0.25, step=32, integer=True
    )
    assert (units.min_value, units.max_value, units.step) == (32, 288, 32)
    assert units.default == 288  # 480 moved inside
    # A collapsed Int (depth 2 everywhere) widens by 0.5 each side, outward to [1, 3].
    assert (hp["depth"].min_value, hp["depth"].max_value) == (1, 3)

    momentum = hp["momentum"]
    assert (momentum.min_value, momentum.max_value) == pytest.approx(
        reference(0.5, 0.99, [0.9, 0.8], 0.25)
    )
    assert (momentum.min_value, momentum.max_value) == pytest.approx((0.6775, 0.99))

    assert hp["activation"].values == ["relu", "elu"]  # original order kept
    assert hp["activation"].default == "relu"
    assert hp["batch_size"].values == [32, 64]
    assert hp["batch_size"].default == 32  # 128 no longer an option
    assert hp["optimizer"].values == ["momentum", "adam"]
    assert hp["optimizer"].default == "momentum"

    # One boolean value everywhere: a Fixed; both values used: the Boolean unchanged.
    assert type(hp["batchnorm"]).__name__ == "Fixed" and hp["batchnorm"].value is True
    assert type(hp["shuffle"]).__name__ == "Boolean"
    assert hp["shuffle"].get_config() == by_name(before)["shuffle"].get_config()
    assert hp["epochs"].get_config() == by_name(before)["epochs"].get_config()


def test_names_order_conditions_and_default_values_kept():
    before = space()
    narrowed = narrowed_space(before, TOP)
    assert [hp.name for hp in narrowed.space] == [hp.name for hp in before.space]
    assert [hp.conditions for hp in narrowed.space] == [hp.conditions for hp in before.space]
    condition = by_name(narrowed)["momentum"].conditions[0]
    assert (condition.name, condition.values) == ("optimizer", ["momentum"])
    # The values: the defaults of the hyperparameters active with them.
    assert narrowed.values == {hp.name: hp.default for hp in narrowed.space}
    assert narrowed.values["optimizer"] == "momentum" and "momentum" in narrowed.values


def test_inactive_everywhere_unchanged_single_choice_and_margin_zero():
    before = space()
    narrowed = narrowed_space(before, TOP_ADAM, margin=0.0)
    hp, old = by_name(narrowed), by_name(before)
    # Momentum: no top trial had it active (the key in TOP[0] is ignored: optimizer=adam).
    assert hp["momentum"].get_config() == old["momentum"].get_config()
    assert hp["optimizer"].values == ["adam"]
    assert type(hp["optimizer"]).__name__ == "Choice"
    assert (hp["lr"].min_value, hp["lr"].max_value) == (2e-3, 5e-3)  # the exact span
    assert (hp["depth"].min_value, hp["depth"].max_value) == (2, 2)  # collapsed, no margin
    assert (hp["units"].min_value, hp["units"].max_value) == (96, 160)
    assert hp["batchnorm"].value is False
    assert "momentum" not in narrowed.values  # inactive with the default optimizer (adam)


def test_grids_rounded_outward_log_int_and_stepped_float():
    hps = keras_tuner.HyperParameters()
    hps.Int("filters", 8, 256, step=2, sampling="log")
    hps.Float("rate", 0.0, 0.5, step=0.1)
    hps.Int("width", 1, 1000, sampling="log")
    top = [{"filters": 32, "rate": 0.2, "width": 10}, {"filters": 64, "rate": 0.3, "width": 20}]
    hp = by_name(narrowed_space(hps, top, margin=0.1))
    # filters: [32 / 32**0.1, 64 * 32**0.1] = [22.6, 90.5] -> the grid 8 * 2**k: [16, 128].
    assert (hp["filters"].min_value, hp["filters"].max_value) == reference(
        8, 256, [32, 64], 0.1, log=True, step=2, integer=True
    )
    assert (hp["filters"].min_value, hp["filters"].max_value) == (16, 128)
    assert sorted(hp["filters"].values) == [16, 32, 64, 128]
    # rate: [0.15, 0.35] -> the grid 0.1 k: [0.1, 0.4].
    assert (hp["rate"].min_value, hp["rate"].max_value) == pytest.approx((0.1, 0.4))
    assert (hp["rate"].min_value, hp["rate"].max_value) == pytest.approx(
        reference(0.0, 0.5, [0.2, 0.3], 0.1, step=0.1)
    )
    # width (log, no step): [10 / 1000**0.1, 20 * 1000**0.1] = [5.01, 39.9] -> [5, 40].
    assert (hp["width"].min_value, hp["width"].max_value) == reference(
        1, 1000, [10, 20], 0.1, log=True, integer=True
    )
    assert (hp["width"].min_value, hp["width"].max_value) == (5, 40)


def test_choice_of_booleans_would_lose_the_bool():
    # Why a one-value Boolean becomes a Fixed: KerasTuner's Choice stores True as 1.
    assert keras_tuner.HyperParameters().Choice("flag", [True]) == 1
    assert keras_tuner.HyperParameters().Choice("flag", [True]) is not True
    assert keras_tuner.HyperParameters().Fixed("flag", True) is True


# -- sampling the narrowed space on KerasTuner -----------------------------------------------------
def _oracles(hps):
    plain = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_trials=200,
        seed=1,
        hyperparameters=hps,
    )
    ours = seeded_oracle("random", objective="score", max_trials=200, seed=1, max_failures=3)
    ours.hyperparameters = hps  # what the search does before its second stage
    return {"keras_tuner": plain, "kerasnn": ours}


@pytest.mark.parametrize("which", ["keras_tuner", "kerasnn"])
def test_oracle_samples_inside_and_the_hypermodel_retrieves(which):
    narrowed = narrowed_space(space(), TOP, margin=0.25)
    # The oracle saves and reloads its space as JSON: the narrowed one survives it.
    config = json.loads(json.dumps(narrowed.get_config()))
    assert keras_tuner.HyperParameters.from_config(config).get_config() == narrowed.get_config()
    oracle = _oracles(narrowed)[which]
    draws = [oracle.populate_space(str(i))["values"] for i in range(200)]
    hp = by_name(narrowed)

    lrs = np.array([d["lr"] for d in draws])
    low, high = hp["lr"].min_value, hp["lr"].max_value
    assert lrs.min() >= low and lrs.max() <= high
    # Spread over the narrowed log range, not stuck at a point.
    position = np.log(lrs / low) / np.log(high / low)
    assert position.min() < 0.05 and position.max() > 0.95
    assert all(0.0 <= d["dropout"] <= 0.325 + 1e-12 for d in draws)
    assert {d["units"] for d in draws} == set(range(32, 289, 32))
    assert {d["activation"] for d in draws} == {"relu", "elu"}
    assert {d["batch_size"] for d in draws} == {32, 64}
    assert {d["optimizer"] for d in draws} == {"momentum", "adam"}
    assert all(d["batchnorm"] is True for d in draws)
    assert {d["shuffle"] for d in draws} == {True, False}
    assert all(d["epochs"] == 5 for d in draws)
    for d in draws:  # momentum exactly when its parent value is drawn, inside its range
        assert ("momentum" in d) == (d["optimizer"] == "momentum")
        if "momentum" in d:
            assert hp["momentum"].min_value <= d["momentum"] <= 0.99

    # The hypermodel declares the ORIGINAL ranges; each declaration retrieves the draw.
    for d in draws:
        trial_hp = narrowed.copy()
        trial_hp.values = dict(d)
        assert build(trial_hp) == d
        assert len(trial_hp.space) == len(narrowed.space)  # nothing registered anew
    assert build(narrowed.copy())["batchnorm"] is True


def test_single_choice_and_fixed_boolean_sampled_and_retrieved():
    narrowed = narrowed_space(space(), TOP_ADAM, margin=0.0)
    oracle = _oracles(narrowed)["kerasnn"]
    draws = [oracle.populate_space(str(i))["values"] for i in range(50)]
    assert all(d["optimizer"] == "adam" and "momentum" not in d for d in draws)
    assert all(d["batchnorm"] is False for d in draws)
    assert all(96 <= d["units"] <= 160 and d["depth"] == 2 for d in draws)
    for d in draws:
        trial_hp = narrowed.copy()
        trial_hp.values = dict(d)
        assert trial_hp.Choice("optimizer", OPTIMIZERS) == "adam"
        assert trial_hp.Boolean("batchnorm") is False
        with trial_hp.conditional_scope("optimizer", ["momentum"]):
            assert trial_hp.Float("momentum", 0.5, 0.99) is None
        assert build(trial_hp) == d


# -- describe_narrowing ----------------------------------------------------------------------------
def test_describe_narrowing():
    before = space()
    after = narrowed_space(before, TOP, margin=0.25)
    changes = describe_narrowing(before, after)
    lr_low, lr_high = reference(1e-4, 1e-1, [2e-3, 5e-3, 1e-3], 0.25, log=True)
    assert list(changes) == [
        "lr",
        "dropout",
        "units",
        "activation",
        "batch_size",
        "optimizer",
        "batchnorm",
        "momentum",
    ]  # depth, shuffle and epochs unchanged: absent; the space's order
    assert changes["lr"]["before"] == [1e-4, 1e-1]
    assert changes["lr"]["after"] == pytest.approx([lr_low, lr_high], rel=1e-12)
    assert changes["dropout"] == {"before": [0.0, 0.5], "after": [0.0, pytest.approx(0.325)]}
    assert changes["units"] == {"before": [32, 512], "after": [32, 288]}
    assert changes["activation"] == {"before": ACTIVATIONS, "after": ["relu", "elu"]}
    assert changes["batch_size"] == {"before": [32, 64, 128], "after": [32, 64]}
    assert changes["optimizer"] == {"before": OPTIMIZERS, "after": ["momentum", "adam"]}
    assert changes["batchnorm"] == {"before": [True, False], "after": [True]}
    assert changes["momentum"]["after"] == pytest.approx([0.6775, 0.99])
    assert json.loads(json.dumps(changes)) == changes
    assert describe_narrowing(before, before.copy()) == {}


def test_describe_narrowing_same_name_under_two_conditions():
    hps = keras_tuner.HyperParameters()
    hps.Choice("model", ["mlp", "cnn"])
    with hps.conditional_scope("model", ["mlp"]):
        hps.Int("units", 8, 64, step=8)
    with hps.conditional_scope("model", ["cnn"]):
        hps.Int("units", 4, 32, step=4)
    after = narrowed_space(hps, [{"model": "mlp", "units": 16}], margin=0.0)
    assert [(hp.min_value, hp.max_value) for hp in after.space[1:]] == [(16, 16), (4, 32)]
    assert describe_narrowing(hps, after) == {
        "model": {"before": ["mlp", "cnn"], "after": ["mlp"]},
        "units (when model in ['mlp'])": {"before": [8, 64], "after": [16, 16]},
    }


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("top", "margin", "match"),
    [
        ([], 0.25, r"argument top, expected a non-empty list .* Received: top=\[\]"),
        ({"lr": 1e-3}, 0.25, r"argument top, expected a non-empty list"),
        (TOP, -0.1, r"argument margin, expected a number >= 0. Received: margin=-0.1"),
        (TOP, float("nan"), r"argument margin, expected a number >= 0"),
        (TOP, True, r"Received: margin=True"),
        ([{**TOP[0], "activation": "gelu"}], 0.25, r"top, expected values among its options"),
        ([{**TOP[0], "lr": "fast"}], 0.25, r"top, expected numbers for hyperparameter 'lr'"),
        ([{**TOP[0], "batchnorm": 1}], 0.25, r"true/false values for hyperparameter 'batchnorm'"),
    ],
)
def test_errors(top, margin, match):
    with pytest.raises(ValueError, match=match):
        narrowed_space(space(), top, margin=margin)


def test_describe_narrowing_refuses_another_space():
    other = keras_tuner.HyperParameters()
    other.Float("lr", 1e-4, 1e-1)
    with pytest.raises(ValueError, match=r"argument after, expected a narrowed copy of `before`"):
        describe_narrowing(space(), other)
