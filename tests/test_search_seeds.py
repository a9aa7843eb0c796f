"""Search seeds and space order: independent streams per seed, the same stream for the same seed
(after a resume too), and spaces whose key order does not matter.

The streams are sampled by KerasTuner's own trial loop (`keras_tuner.Tuner.search`, its oracle
saves and reloads) with kerasnn's oracle; the trials only record their configuration, so
hundreds of trials take about a second.
"""

import json
import math
import random

import keras_tuner
import numpy as np
import pytest
import yaml

import kerasnn as knn
from kerasnn.recipe.hypermodel import search
from kerasnn.tuning import SearchSpace
from kerasnn.tuning.oracles import seeded_oracle as _seeded_oracle
from kerasnn.tuning.oracles import trial_seed

CONTINUOUS = {
    "optimizer.learning_rate": {"log_uniform": [1e-4, 1e-1]},
    "model.dropout": {"uniform": [0.0, 0.5]},
}
# Every kind of dependency, parents first (the order the module docstring writes them in)…
ORDERED = {
    "model.depth": {"int": [1, 2]},
    "model.units": {"choice": [4, 8, 16]},
    "model.dropout": {"uniform": [0.0, 0.5]},
    "optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
    "optimizer.momentum": {"uniform": [0.5, 0.95], "when": {"optimizer.name": ["momentum"]}},
    "optimizer.learning_rate": {
        "by": "optimizer.name",
        "log_uniform": {"sgd": [1e-2, 0.5], "momentum": [1e-3, 0.1], "adam": [1e-4, 1e-2]},
    },
    "fit.batch_size": {"choice": [16, 32]},
}
# …and the same space with every dependent key before its parent, the `by` mapping reversed.
DEPENDENTS_FIRST = {
    "optimizer.learning_rate": {
        "by": "optimizer.name",
        "log_uniform": {"adam": [1e-4, 1e-2], "momentum": [1e-3, 0.1], "sgd": [1e-2, 0.5]},
    },
    "optimizer.momentum": {"uniform": [0.5, 0.95], "when": {"optimizer.name": ["momentum"]}},
    "model.units": {"choice": [4, 8, 16]},
    "fit.batch_size": {"choice": [16, 32]},
    "optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
    "model.dropout": {"uniform": [0.0, 0.5]},
    "model.depth": {"int": [1, 2]},
}


class _SpaceOnly(keras_tuner.HyperModel):
    """Declares a `SearchSpace`; builds no model (the trials below train nothing)."""

    def __init__(self, space):
        super().__init__(name="space_only")
        self.space = SearchSpace.from_config(space)

    def build(self, hp):
        self.space.declare(hp)


class _Sampler(keras_tuner.Tuner):
    """KerasTuner's trial loop whose trials record their id; `stop_at` interrupts that trial
    like a kill (nothing is saved for it: KerasTuner re-queues it on reload)."""

    def __init__(self, *args, stop_at=None, **kwargs):
        self.stop_at = stop_at
        self.started = []
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        self.started.append(trial.trial_id)
        if trial.trial_id == self.stop_at:
            raise KeyboardInterrupt
        return {"score": float(len(self.started))}


def sample_stream(space, seed, trials, directory, *, kind="random", stop_at=None):
    """The configurations of a `trials`-trial search (trial order) and the tuner."""
    oracle = _seeded_oracle(kind, objective="score", max_trials=trials, seed=seed, max_failures=3)
    tuner = _Sampler(
        oracle, _SpaceOnly(space), directory=str(directory), project_name="tuner", stop_at=stop_at
    )
    tuner.search(verbose=0)
    trials_ = tuner.oracle.trials
    return [dict(trials_[t].hyperparameters.values) for t in sorted(trials_)], tuner


def _key(values):
    return tuple(sorted(values.items()))


# -- bug 1: the seeds' streams ------------------------------------------------------------------
def test_seeds_sample_independent_streams(tmp_path):
    streams = {s: sample_stream(CONTINUOUS, s, 25, tmp_path / str(s))[0] for s in range(5)}
    for seed, configs in streams.items():
        assert len(configs) == 25 and len({_key(c) for c in configs}) == 25, seed
    for a in range(5):
        for b in range(a + 1, 5):
            shared = {_key(c) for c in streams[a]} & {_key(c) for c in streams[b]}
            assert not shared, (a, b, len(shared))
    # Not even a shifted copy: KerasTuner alone draws value k of seed s from Random(s + k),
    # so seed s + 2 repeats seed s one trial later and seed s + 1 draws seed s's dropout
    # values as its learning rates. Here none of the 250 uniform draws recurs, under either
    # hyperparameter, in any stream.
    hp = keras_tuner.HyperParameters()
    SearchSpace.from_config(CONTINUOUS).declare(hp)
    spec = {h.name: h for h in hp.space}
    draws = [
        round(spec[name].value_to_prob(value), 9)
        for configs in streams.values()
        for config in configs
        for name, value in config.items()
    ]
    assert len(draws) == 250 and len(set(draws)) == 250
    # Each trial draws its k-th value from Random(trial_seed(seed, trial) + k), in the order
    # of the names (dropout, then the rate: not the order written), ranges and scales kept.
    for seed, configs in streams.items():
        for trial, config in enumerate(configs):
            first = trial_seed(seed, trial)
            dropout = 0.5 * random.Random(first).random()
            rate = 1e-4 * 1e3 ** random.Random(first + 1).random()
            assert config["model.dropout"] == pytest.approx(dropout, rel=1e-9)
            assert config["optimizer.learning_rate"] == pytest.approx(rate, rel=1e-9)
    rates = np.log10([c["optimizer.learning_rate"] for s in streams.values() for c in s])
    assert rates.min() >= -4 and rates.max() <= -1 and abs(np.median(rates) + 2.5) < 0.3


def test_trial_seeds_are_pinned():
    # The README's and bench/'s search figures were measured on these streams.
    assert trial_seed(0, 0) == trial_seed(0, "00") == 2109873771833402936
    assert trial_seed(0, 1) == 3083954437156274135
    assert trial_seed(1, 0) == 3209238701356879043
    assert all(0 <= trial_seed(s, t) < 2**62 for s in range(5) for t in range(50))
    assert len({trial_seed(s, t) for s in range(20) for t in range(100)}) == 2000


def test_same_seed_same_sequence_and_a_resume_continues_it(tmp_path):
    full, _ = sample_stream(ORDERED, 3, 12, tmp_path / "full")
    again, _ = sample_stream(ORDERED, 3, 12, tmp_path / "again")
    assert again == full and len({_key(c) for c in full}) == 12
    assert full != sample_stream(ORDERED, 4, 12, tmp_path / "other")[0]
    # Interrupted inside trial 05: the oracle state on disk has it running, as after a kill.
    with pytest.raises(KeyboardInterrupt):
        sample_stream(ORDERED, 3, 12, tmp_path / "killed", stop_at="05")
    state = json.loads((tmp_path / "killed" / "tuner" / "oracle.json").read_text())
    assert state["ongoing_trials"] == {"tuner0": "05"}
    resumed, tuner = sample_stream(ORDERED, 3, 12, tmp_path / "killed")
    assert tuner.started == ["05", "06", "07", "08", "09", "10", "11"]  # 00-04 not rerun
    assert resumed == full


def test_grid_walk_does_not_depend_on_the_seed(tmp_path):
    space = {"optimizer.name": {"choice": ["sgd", "adam"]}, "model.dropout": {"choice": [0, 0.2]}}
    walks = [sample_stream(space, s, 4, tmp_path / str(s), kind="grid")[0] for s in (0, 3)]
    assert walks[0] == walks[1]
    # From the defaults on, the last key written first (KerasTuner's grid; the key order is
    # the grid's axis order).
    assert [(c["optimizer.name"], c["model.dropout"]) for c in walks[0]] == [
        ("sgd", 0.0),
        ("sgd", 0.2),
        ("adam", 0.0),
        ("adam", 0.2),
    ]
    # [0, 0.2] (ints and floats, as YAML reads it) is declared as floats: KerasTuner's Choice
    # takes one type, and refused it at the first trial.
    assert all(type(c["model.dropout"]) is float for c in walks[0])


# -- bug 2: the order of the space's keys ---------------------------------------------------
def test_key_order_does_not_matter(tmp_path):
    ordered = SearchSpace.from_config(ORDERED)
    dependents_first = SearchSpace.from_config(DEPENDENTS_FIRST)
    labels = [e.label or e.name for e in ordered.entries]
    assert labels == [  # as written: the parents already come first
        "model.depth",
        "model.units",
        "model.dropout",
        "optimizer.name",
        "optimizer.momentum",
        "optimizer.learning_rate[sgd]",
        "optimizer.learning_rate[momentum]",
        "optimizer.learning_rate[adam]",
        "fit.batch_size",
    ]
    assert [e.label or e.name for e in dependents_first.entries] == [
        "fit.batch_size",  # as written, each after the entries it depends on
        "optimizer.name",
        "optimizer.learning_rate[sgd]",  # the parent's option order, not the mapping's
        "optimizer.learning_rate[momentum]",
        "optimizer.learning_rate[adam]",
        "optimizer.momentum",
        "model.dropout",
        "model.depth",
        "model.units",
    ]
    assert set(dependents_first.entries) == set(ordered.entries)
    first, tuner = sample_stream(ORDERED, 1, 15, tmp_path / "ordered")
    second, _ = sample_stream(DEPENDENTS_FIRST, 1, 15, tmp_path / "dependents_first")
    assert first == second  # the same configurations, trial by trial
    columns = [hp.name for hp in tuner.oracle.get_space().space]  # the results table's
    assert columns[:3] == ["model.depth", "model.units_1", "model.units_2"]
    assert {c["optimizer.name"] for c in first} == {"sgd", "momentum", "adam"}
    for config in first:  # the conditional entries are drawn, and only, when they apply
        assert ("optimizer.momentum" in config) == (config["optimizer.name"] == "momentum")
        assert ("model.units_2" in config) == (config["model.depth"] == 2)


def test_search_with_the_widths_before_the_depth(tmp_path):
    space = {"model.units": {"choice": [4, 8]}, "model.depth": {"int": [1, 2]}}
    recipe = knn.Recipe.from_dict(
        {
            "name": "widths_first",
            "data": {"name": "iris"},
            "model": {"hidden": [8]},
            "fit": {"epochs": 2},
            "search": {"trials": 2, "space": space},
        }
    )
    result = search(recipe, seed=0, directory=tmp_path / "s")
    assert result.completed == 2 and result.failed == 0
    best = result.best["hyperparameters"]
    hidden = [best[f"model.units_{i}"] for i in range(1, best["model.depth"] + 1)]
    assert result.best["recipe"]["model"]["hidden"] == hidden
    assert math.isfinite(result.best["test_metrics"]["loss"])


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (
            {"optimizer.momentum": {"uniform": [0.5, 0.9], "when": {"optimizer.name": ["sgd"]}}},
            r"'optimizer.momentum.when', expected the name of a choice or int entry of the space "
            r"\(it has no 'optimizer.name'\). Received: optimizer.momentum.when='optimizer.name'",
        ),
        (
            {
                "optimizer.learning_rate": {
                    "by": "optimizer.name",
                    "log_uniform": {"sgd": [0.1, 1]},
                },
                "model.dropout": {"uniform": [0.0, 0.5]},
            },
            r"'optimizer.learning_rate.by', expected the name of a choice or int entry of the "
            r"space \(it has no 'optimizer.name'\)",
        ),
        (
            {
                "model.activation": {"choice": ["relu", "tanh"], "when": {"optimizer.name": "sgd"}},
                "optimizer.name": {"choice": ["sgd", "adam"], "when": {"model.activation": "relu"}},
            },
            r"'optimizer.name.when', expected an entry that does not depend back on "
            r"optimizer.name \(a cycle, each entry depending on the next: model.activation -> "
            r"optimizer.name -> model.activation\). Received: optimizer.name.when="
            r"'model.activation'",
        ),
    ],
)
def test_a_missing_or_circular_dependency_stops_before_anything_is_written(tmp_path, space, match):
    config = {"name": "bad", "data": {"name": "iris"}, "model": {"hidden": [8]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config | {"search": {"space": space}}, sort_keys=False))
    with pytest.raises(ValueError, match=match):  # the recipe file, as `kerasnn search` reads it
        search(path, directory=tmp_path / "s")
    with pytest.raises(ValueError, match=match):  # a space passed with a valid recipe
        search(knn.Recipe.from_dict(config), space=space, directory=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (
            {"optimizer.name": {"choice": ["sgd", "adam"], "when": {"optimizer.name": "sgd"}}},
            r"'optimizer.name.when', expected another entry \(optimizer.name cannot depend on "
            r"itself\)",
        ),
        (
            {
                "model.depth": {"int": [1, 2]},
                "model.units": {"choice": [4, 8]},
                "model.dropout": {"uniform": [0.0, 0.5], "when": {"model.units": [8]}},
            },
            r"'model.dropout.when', expected a choice or int entry other than model.units \(one "
            r"width per layer, declared as model.units_1, model.units_2…; condition on "
            r"model.depth instead\)",
        ),
        (
            {
                "model.dropout": {"uniform": [0.0, 0.5]},
                "fit.batch_size": {"choice": [16, 32], "when": {"model.dropout": [0.1]}},
            },
            r"'fit.batch_size.when', expected the name of a choice or int entry of the space "
            r"\(model.dropout is a uniform entry\)",
        ),
        (
            {
                "optimizer.name": {"choice": ["sgd", "adam"]},
                "optimizer.learning_rate": {"by": "optimizer.name", "choice": {"sgd": [0.1]}},
                "model.dropout": {"choice": [0.1], "when": {"optimizer.learning_rate": [0.1]}},
            },
            r"\(optimizer.learning_rate is a `by` entry\)",
        ),
    ],
)
def test_dependency_errors_name_the_entry(space, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace.from_config(space)
