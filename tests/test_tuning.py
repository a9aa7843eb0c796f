"""kerasnn.tuning: space validation, exact seeds, failed trials, results, resume, ready models."""

import json
import math
import shutil

import keras
import keras_tuner
import numpy as np
import pytest
import yaml
from test_search_seeds import sample_stream

import kerasnn as knn
from kerasnn.tuning import (
    DEFAULT_ACTIVATIONS,
    CNNHyperModel,
    MLPHyperModel,
    SearchSpace,
    default_mlp_space,
    plot_results,
    read_trials,
)

SPACE = {
    "model.depth": {"int": [1, 2]},
    "model.units": {"choice": [4, 8, 16]},
    "model.activation": {"choice": ["relu", "tanh", "elu"]},
    "optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
    "optimizer.momentum": {"uniform": [0.5, 0.95], "when": {"optimizer.name": ["momentum"]}},
    "optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]},
    "fit.batch_size": {"choice": [16, 32]},
}


def _recipe(space=SPACE, trials=3, **fit):
    return knn.Recipe.from_dict(
        {
            "name": "tiny",
            "data": {"name": "iris"},
            "model": {"hidden": [8]},
            "fit": {"epochs": 2, **fit},
            "search": {"trials": trials, "space": space},
        }
    )


@pytest.fixture(scope="module")
def seed0(tmp_path_factory):
    """One 3-trial search with seed 0, shared by the tests that only read its results."""
    out = tmp_path_factory.mktemp("search") / "seed0"
    return knn.search(_recipe(), seed=0, directory=out)


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
    with pytest.raises(ValueError, match=match):
        SearchSpace.from_config(space)


@pytest.mark.parametrize(
    ("search", "match"),
    [
        ({"space": {"model.hiden": {"choice": [1]}}}, r"entry 'model.hiden'.*'hidden'"),
        ({"trails": 3}, r"Unknown recipe key search.'trails'.*Did you mean 'trials'"),
        ({"trials": 0}, r"search.trials, expected a positive integer"),
        ({"space": {"model.depth": {"int": [1, 2]}, "model.units": {"choice": []}}}, "non-empty"),
    ],
)
def test_recipe_search_block_is_checked_when_loaded(search, match):
    config = {"data": {"name": "iris"}, "model": {"hidden": [8]}, "search": search}
    with pytest.raises(ValueError, match=match):
        knn.Recipe.from_dict(config)


def test_configuration_errors_stop_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="argument objective, expected a metric"):
        knn.search(_recipe(), objective="val_acc", directory=tmp_path / "s")
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="argument seed, expected an integer >= 0"):
        knn.search(_recipe(), seed=-1, directory=tmp_path / "s")


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


def test_search_with_a_rate_per_optimizer(tmp_path):
    space = {
        "optimizer.name": {"choice": ["sgd", "adam"]},
        "optimizer.learning_rate": {
            "by": "optimizer.name",
            "log_uniform": {"sgd": [0.05, 0.5], "adam": [1e-3, 1e-2]},
        },
    }
    result = knn.search(_recipe(space, trials=4), seed=1, directory=tmp_path / "s")
    assert result.completed == 4
    names = {t["optimizer.name"] for t in result.trials}
    assert names == {"sgd", "adam"}  # seed 1 draws both
    for trial in result.trials:  # one rate column per optimizer, filled for the one drawn
        name = trial["optimizer.name"]
        other = "adam" if name == "sgd" else "sgd"
        assert trial.get(f"optimizer.learning_rate[{other}]") is None
        low, high = space["optimizer.learning_rate"]["log_uniform"][name]
        assert low <= trial[f"optimizer.learning_rate[{name}]"] <= high
    best = result.best
    name = best["hyperparameters"]["optimizer.name"]
    rate = best["hyperparameters"][f"optimizer.learning_rate[{name}]"]
    assert best["recipe"]["optimizer"] == {"name": name, "learning_rate": rate}
    model = keras.models.load_model(tmp_path / "s" / "best.keras")
    assert float(model.optimizer.learning_rate) == pytest.approx(rate, rel=1e-6)
    header = (tmp_path / "s" / "results.csv").read_text().splitlines()[0]
    assert "optimizer.learning_rate[sgd],optimizer.learning_rate[adam]" in header


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


# -- ready hypermodels -----------------------------------------------------------------------------
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


# -- seeds -----------------------------------------------------------------------------------------
def _configs(result):
    keys = ("trial_id", "status", result.objective)
    hps = [
        {k: v for k, v in t.items() if k.startswith(("model.", "optimizer.", "fit."))}
        for t in result.trials
    ]
    return hps, [tuple(t[k] for k in keys) for t in result.trials]


def test_seed_zero_is_honoured(seed0, tmp_path):
    again = knn.search(_recipe(), seed=0, directory=tmp_path / "again")
    assert _configs(again) == _configs(seed0)  # same sampled configurations and scores
    assert len(seed0.trials) == 3 and seed0.completed == 3
    assert json.loads((seed0.directory / "tuner" / "oracle.json").read_text())["seed"] == 0
    other = knn.search(_recipe(trials=2), seed=1, directory=tmp_path / "other")
    assert _configs(other)[0] != _configs(seed0)[0][:2]


# -- results ---------------------------------------------------------------------------------------
def test_results_table_plot_and_best_model(seed0):
    out = seed0.directory
    table = json.loads((out / "results.json").read_text())
    assert table["objective"] == "val_accuracy" and table["direction"] == "max"
    assert table["hyperparameters"]["optimizer.learning_rate"]["log"] is True
    assert table["hyperparameters"]["model.activation"]["numeric"] is False
    header, *rows = (out / "results.csv").read_text().strip().splitlines()
    assert header.split(",")[:3] == ["trial_id", "status", "val_accuracy"]
    assert "optimizer.learning_rate" in header and "seconds" in header
    assert len(rows) == 3 == len(table["trials"])
    for trial in table["trials"]:
        assert trial["status"] == "COMPLETED" and 0 <= trial["val_accuracy"] <= 1
        assert trial["epochs"] == 2 and trial["seconds"] > 0
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    best = json.loads((out / "best.json").read_text())
    scores = [t["val_accuracy"] for t in table["trials"]]
    assert best["score"] == max(scores)
    assert best["trial_id"] == table["trials"][scores.index(max(scores))]["trial_id"]
    data = knn.datasets.load("iris")
    model = keras.saving.load_model(out / "best.keras")
    reloaded = knn.evaluate(model, data)
    assert reloaded == pytest.approx(best["test_metrics"], rel=1e-5)
    recipe = knn.Recipe.from_yaml(out / "best_recipe.yaml")
    assert recipe.optimizer["learning_rate"] == best["hyperparameters"]["optimizer.learning_rate"]
    assert recipe.fit["validation_split"] == 0.0 and recipe.fit["epochs"] == best["retrain_epochs"]


def test_plot_uses_log_axes_for_log_sampled_entries(seed0):
    rows, specs = read_trials(seed0.directory)
    fig = plot_results(rows, specs, "val_accuracy", seed0.directory / "again.png")
    scales = {ax.get_xlabel(): ax.get_xscale() for ax in fig.axes if ax.get_visible()}
    assert scales["optimizer.learning_rate (log)"] == "log"
    assert scales["model.depth"] == "linear"
    assert len(scales) == len(specs)


# -- failures --------------------------------------------------------------------------------------
def test_nan_trial_is_recorded_and_the_search_continues(tmp_path):
    space = {"optimizer.name": "sgd", "optimizer.learning_rate": {"choice": [0.05, 1e12]}}
    result = knn.search(_recipe(space, trials=3), directory=tmp_path / "s")
    by_lr = {t["optimizer.learning_rate"]: t for t in result.trials}
    assert len(result.trials) == 2  # the space holds two configurations
    assert by_lr[0.05]["status"] == "COMPLETED"
    failed = by_lr[1e12]
    assert failed["status"] == "FAILED" and failed["val_accuracy"] is None
    assert "nan" in failed["reason"].lower() or "inf" in failed["reason"].lower()
    assert result.best["hyperparameters"]["optimizer.learning_rate"] == 0.05


def test_too_many_failures_in_a_row_stop_the_search(tmp_path):
    space = {"optimizer.name": "sgd", "optimizer.learning_rate": {"choice": [1e12, 1e13]}}
    with pytest.raises(RuntimeError, match="consecutive failures exceeded the limit of 2"):
        knn.search(_recipe(space, trials=3), directory=tmp_path / "s", max_failures=2)
    rows, _ = read_trials(tmp_path / "s")
    assert [r["status"] for r in rows] == ["FAILED", "FAILED"]
    table = json.loads((tmp_path / "s" / "results.json").read_text())
    assert [t["status"] for t in table["trials"]] == ["FAILED", "FAILED"]


class _SometimesInvalid(keras_tuner.HyperModel):
    """A user HyperModel whose sampled width -1 is a combination the builder refuses."""

    def build(self, hp):
        units = hp.Choice("units", [4, -1])
        return knn.compile(knn.models.mlp((4,), hidden=[units], outputs=3))


def test_bad_combination_is_recorded_with_its_reason(tmp_path):
    data = knn.datasets.load("iris")
    result = knn.search(
        _SometimesInvalid(name="odd"),
        data,
        max_trials=2,
        fit={"epochs": 2},
        directory=tmp_path / "s",
    )
    by_units = {t["units"]: t for t in result.trials}
    assert by_units[4]["status"] == "COMPLETED"
    assert by_units[-1]["status"] == "FAILED"
    assert by_units[-1]["reason"].startswith("ValueError: Received an invalid value for argument")
    assert (tmp_path / "s" / "best.keras").exists()


# -- resume ----------------------------------------------------------------------------------------
def test_existing_search_needs_resume_and_resume_keeps_finished_trials(seed0, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(seed0.directory, out)
    with pytest.raises(FileExistsError, match=r"already holds one\. Pass resume=True"):
        knn.search(_recipe(), seed=0, directory=out)
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        knn.search(_recipe(), seed=0, directory=tmp_path / "none", resume=True)
    before = {p.parent.name: p.read_text() for p in out.glob("tuner/trial_*/kerasnn.json")}
    more = knn.search(_recipe(trials=4), seed=0, directory=out, resume=True)
    after = {p.parent.name: p.read_text() for p in out.glob("tuner/trial_*/kerasnn.json")}
    assert len(more.trials) == 4 and more.completed == 4
    assert {k: after[k] for k in before} == before  # finished trials were not run again
    assert _configs(more)[0][:3] == _configs(seed0)[0]
    # The resumed search continues seed 0's stream: trial 3 is the one a 4-trial search samples.
    assert _configs(more)[0] == sample_stream(SPACE, 0, 4, tmp_path / "sampled")[0]
    started = [
        json.loads(line)["trial_id"]
        for line in (out / "tuner" / "runs-tuner0.jsonl").read_text().splitlines()
    ]
    assert sorted(started) == ["0", "1", "2", "3"]
    assert math.isfinite(more.best["test_metrics"]["loss"])
    assert yaml.safe_load((out / "best_recipe.yaml").read_text())["name"] == "tiny"
    assert np.isfinite([t["val_accuracy"] for t in more.trials]).all()


def test_best_model_is_exported_when_the_recipe_asks(tmp_path):
    config = _recipe(trials=2).to_dict() | {"export": {"path": "served", "standardize": True}}
    result = knn.search(knn.Recipe.from_dict(config), seed=0, directory=tmp_path / "s")
    best = json.loads((result.directory / "best.json").read_text())
    assert best["export"]["format"] == "saved_model" and best["export"]["max_abs_diff"] <= 1e-5
    # The artifact takes raw inputs (standardization baked in) and predicts as best.keras does.
    data = knn.datasets.load("iris")
    raw = data.standardizer.inverse_transform(data.x_test)
    served = knn.export.load(result.directory / "served").predict(raw)
    model = keras.saving.load_model(result.directory / "best.keras")
    np.testing.assert_allclose(served, model.predict(data.x_test, verbose=0), atol=1e-5)
