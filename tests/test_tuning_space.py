"""kerasnn.tuning.space and .ready: entry syntax and errors, when/by, declaration, ready spaces."""

import math
import sys

import keras_tuner
import numpy as np
import pytest
from helpers import run_python
from search_helpers import SPACE

from kerasnn.tuning import (
    DEFAULT_ACTIVATIONS,
    DEFAULT_AUGMENT,
    IMAGE_AUGMENT,
    SearchSpace,
    default_cnn_space,
    default_mlp_space,
)


# -- space validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"model.activation": {"choice": []}}, r"entry 'model.activation', expected a non-empty"),
        ({"optimizer.learning_rate": {"log_uniform": [0, 0.1]}}, r"with 0 < min \(a log range"),
        ({"optimizer.learning_rate": {"log_uniform": [-1, 0.1]}}, r"0 < min"),
        ({"model.dropout": {"uniform": [0.5, 0.1]}}, r"'model.dropout'.*min <= max"),
        ({"model.depth": {"int": [1.5, 3]}, "model.units": {"choice": [4]}}, "two integers"),
        ({"model.activation": {"choice": ["rleu"]}}, r"Did you mean 'relu'"),
        ({"optimizer.name": {"choice": ["adamm"]}}, r"search entry optimizer.name"),
        ({"model.units": {"choice": [8]}}, r"'model.depth'.*together with model.units"),
        ({"lr": {"uniform": [0, 1]}}, r"expected section.key"),
        ({"fit.batch_size": {"choice": [0, 32]}}, r"'fit.batch_size', expected positive"),
        ({"model.dropout": {"uniform": [0, 0.5], "sample": 1}}, r"exactly one of"),
        ({"model.dropout": {"uniform": [0, 1.5]}}, r"'model.dropout', expected rates in \[0, 1\)"),
        ({"model.dropout": {"choice": [0.1, 0.1]}}, r"distinct choice values"),
        ({"model.dropout": [0.1, 0.2]}, r"a bare list is ambiguous"),
        (
            {"optimizer.momentum": {"uniform": [0.5, 0.9], "when": {"optimizer.name": ["sgd"]}}},
            r"'optimizer.momentum.when', expected the name of a choice or int entry of the space "
            r"\(it has no 'optimizer.name'\)",
        ),
        (
            {
                "optimizer.name": {"choice": ["sgd", "adam"]},
                "optimizer.momentum": {"uniform": [0.5, 0.9], "when": {"optimizer.name": "rms"}},
            },
            r"expected values among optimizer.name's \['sgd', 'adam'\]",
        ),
        (
            {"optimizer.learning_rate": {"by": "optimizer.name", "log_uniform": {"sgd": [0.1, 1]}}},
            r"'optimizer.learning_rate.by', expected the name of a choice or int entry of the "
            r"space \(it has no 'optimizer.name'\)",
        ),
        (
            {
                "optimizer.name": {"choice": ["sgd", "adam"]},
                "optimizer.learning_rate": {"by": "optimizer.name", "log_uniform": [0.1, 1]},
            },
            r"'optimizer.learning_rate.log_uniform', expected with by: a mapping",
        ),
        (
            {
                "optimizer.name": {"choice": ["sgd", "adam"]},
                "optimizer.learning_rate": {"by": "optimizer.name", "log_uniform": {"rms": [1, 2]}},
            },
            r"expected keys among optimizer.name's \['sgd', 'adam'\]. Received: .*\['rms'\]",
        ),
        (
            {
                "optimizer.name": {"choice": ["sgd", "adam"]},
                "optimizer.learning_rate": {"by": "optimizer.name", "log_uniform": {"sgd": [1, 0]}},
            },
            r"min <= max. Received: optimizer.learning_rate=\[1, 0\] \(the log_uniform for "
            r"optimizer.name='sgd'\)",
        ),
        (
            {
                "optimizer.name": {"choice": ["sgd", "adam"]},
                "optimizer.learning_rate": {
                    "by": "optimizer.name",
                    "when": {"optimizer.name": ["sgd"]},
                    "log_uniform": {"sgd": [0.1, 1]},
                },
            },
            r"with by: exactly one of .* no when/step/default",
        ),
    ],
)
def test_space_errors_name_the_entry(space, match):
    # Parsing refuses the malformed entries; check_values the names no registry holds.
    with pytest.raises(ValueError, match=match):
        SearchSpace.from_config(space).check_values()


def test_conditional_entries_and_per_layer_widths():
    space = SearchSpace.from_config(SPACE)
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.depth": 2, "optimizer.name": "adam"})
    values = space.declare(hp)
    assert "optimizer.momentum" not in values
    assert set(values) >= {"model.units_1", "model.units_2"}
    hp = keras_tuner.HyperParameters()
    hp.values.update({"model.depth": 1, "optimizer.name": "momentum"})
    values = space.declare(hp)
    assert 0.5 <= values["optimizer.momentum"] <= 0.95
    assert "model.units_2" not in values
    config = space.apply({"model": {"builder": "mlp"}}, values)
    assert config["model"]["hidden"] == [values["model.units_1"]]
    assert config["optimizer"]["momentum"] == values["optimizer.momentum"]


def test_ranges_per_parent_value_with_by():
    ranges = {"sgd": [1e-2, 1.0], "momentum": [1e-3, 1e-1], "adam": [1e-4, 1e-2]}
    space = SearchSpace.from_config(
        {
            "optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
            "optimizer.learning_rate": {"by": "optimizer.name", "log_uniform": ranges},
        }
    )
    assert [e.when for e in space.entries[1:]] == [
        ("optimizer.name", ("sgd",)),
        ("optimizer.name", ("momentum",)),
        ("optimizer.name", ("adam",)),
    ]
    assert all(e.log for e in space.entries[1:])
    assert [e.label for e in space.entries[1:]] == [
        "optimizer.learning_rate[sgd]",
        "optimizer.learning_rate[momentum]",
        "optimizer.learning_rate[adam]",
    ]
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=150, seed=3, hyperparameters=hp
    )
    seen: dict[str, list[float]] = {name: [] for name in ranges}
    for i in range(150):
        values = oracle.populate_space(str(i))["values"]
        sampled = keras_tuner.HyperParameters()
        sampled.values.update(values)
        active = space.declare(sampled)
        name = values["optimizer.name"]
        # KerasTuner holds only the drawn optimizer's rate; it becomes the recipe's key.
        assert set(values) == {"optimizer.name", f"optimizer.learning_rate[{name}]"}
        rate = values[f"optimizer.learning_rate[{name}]"]
        assert active == {"optimizer.name": name, "optimizer.learning_rate": rate}
        seen[name].append(rate)
    for name, (low, high) in ranges.items():
        rates = np.array(seen[name])
        assert len(rates) >= 30
        assert np.all((rates >= low) & (rates <= high)), name
        # log-uniform in the branch's range: the median log-rate sits near its middle
        middle = (math.log10(low) + math.log10(high)) / 2
        assert abs(np.median(np.log10(rates)) - middle) < 0.25 * math.log10(high / low), name


def test_boolean_choices_stay_booleans():
    space = SearchSpace.from_config({"model.lsuv": {"choice": [False, True]}})
    seen = set()
    for seed in range(8):
        hp = keras_tuner.HyperParameters()
        value = space.declare(hp)["model.lsuv"]
        hp.values["model.lsuv"] = hp.space[0].random_sample(seed)
        seen.add(type(value))
        seen.add(type(space.declare(hp)["model.lsuv"]))
    assert seen == {bool}


def test_default_mlp_space_offers_the_lecture_menu():
    space = default_mlp_space()
    assert DEFAULT_ACTIVATIONS == ("relu", "leaky_relu", "elu", "selu", "pelu", "maxout", "tanh")
    assert space["model.activation"]["choice"] == list(DEFAULT_ACTIVATIONS)
    assert space["model.lsuv"] == {"choice": [False, True]}
    assert space["optimizer.name"]["choice"] == ["sgd", "momentum", "nesterov", "rmsprop", "adam"]
    assert space["optimizer.learning_rate"] == {
        "by": "optimizer.name",
        "log_uniform": {
            "sgd": [1e-2, 0.5],
            "momentum": [1e-3, 1e-1],
            "nesterov": [1e-3, 1e-1],
            "rmsprop": [1e-4, 1e-2],
            "adam": [1e-4, 1e-2],
        },
    }
    assert space["model.l2"]["log_uniform"] == [1e-6, 1e-3]
    # it parses: one learning-rate entry per optimizer, each conditional on its name
    entries = [e for e in SearchSpace.from_config(space).entries if e.name.endswith("rate")]
    assert [e.when[1] for e in entries] == [(name,) for name in space["optimizer.name"]["choice"]]


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"model.activation": {"choice": ["rleu"]}}, r"Did you mean 'relu'"),
        ({"model.initializer": {"choice": ["xavier"]}}, r"search entry model.initializer"),
        ({"optimizer.name": {"choice": ["adamm"]}}, r"search entry optimizer.name"),
        (
            {"model.augment": {"choice": ["none", "shfit"]}},
            r"search entry 'model.augment', expected preset names \(none, shift, noise, "
            r"shift_noise\) or false",
        ),
    ],
)
def test_registry_names_are_checked_apart_from_parsing(space, match):
    parsed = SearchSpace.from_config(space)  # parsing takes any name: no registry is read
    with pytest.raises(ValueError, match=match):
        parsed.check_values()


def test_valid_names_pass_check_values():
    assert SearchSpace.from_config(default_mlp_space()).check_values() is None
    assert SearchSpace.from_config(default_cnn_space(), builder="cnn").check_values() is None


def test_parsing_imports_neither_keras_nor_keras_tuner():
    code = (
        "import sys\n"
        "from kerasnn.tuning import SearchSpace, default_mlp_space\n"
        "space = SearchSpace.from_config(default_mlp_space())\n"
        "hp_free = space.apply({'model': {}}, {'model.depth': 1, 'model.units_1': 8})\n"
        "assert hp_free['model']['hidden'] == [8], hp_free\n"
        "print(sorted(m for m in ('keras', 'keras_tuner', 'tensorflow') if m in sys.modules))\n"
    )
    assert run_python(code).strip() == "[]"
    assert "keras_tuner" in sys.modules  # this process: the declared spaces below use it


def test_for_builder_checks_the_lists_again():
    space = SearchSpace.from_config(
        {"model.depth": {"int": [1, 2]}, "model.units": {"choice": [4]}}
    )
    assert space.for_builder("mlp") is space
    assert space.for_builder("cnn").builder == "cnn"
    with pytest.raises(ValueError, match=r"'model.depth', expected a builder among mlp, cnn"):
        space.for_builder("residual_mlp")
    conv = SearchSpace.from_config(
        {"model.conv_depth": {"int": [1, 2]}, "model.conv_filters": {"choice": [4]}}, builder="cnn"
    )
    with pytest.raises(ValueError, match=r"'model.conv_depth', expected a builder among cnn"):
        conv.for_builder("mlp")


def test_ready_spaces_offer_augmentation_shifts_for_images_only():
    assert DEFAULT_AUGMENT == ("none", "noise")
    assert IMAGE_AUGMENT == ("none", "shift", "noise", "shift_noise")
    assert default_mlp_space()["model.augment"] == {"choice": list(DEFAULT_AUGMENT)}
    assert default_cnn_space()["model.augment"] == {"choice": list(IMAGE_AUGMENT)}
    assert "model.augment" not in default_mlp_space(augment=())
