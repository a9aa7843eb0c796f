"""The figures an experiment draws (kerasnn.compare.figures): the series come from real runs.

- ``grad_norms`` (experiment 1): per-layer gradient norms read back from the logged columns;
  sigmoid's vanish towards the input, ReLU's do not.
- ``init_stats`` (experiment 2): per-layer activation std of the freshly built models, checked
  against a NumPy forward pass through the same weights.
- ``learning_rates`` (experiment 5): the logged rates, which follow the schedules' formulas.
- a figure that cannot be drawn for the variants is refused before anything trains.
"""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, TINY_EXPERIMENT, assert_png, line_data

from kerasnn import plots
from kerasnn.compare import Experiment, grad_norm_profiles, init_statistics, init_std_profiles
from kerasnn.recipe import Recipe

EXPERIMENTS = ROOT / "recipes" / "experiments"


def _subset(path: Path, variants: list[str], overrides: list[str]) -> Experiment:
    config = copy.deepcopy(Experiment.from_yaml(path).config)
    config["variants"] = {name: config["variants"][name] for name in variants}
    return Experiment.from_dict(config).with_overrides(overrides)


def test_figures_that_cannot_be_drawn_fail_before_training(tmp_path):
    exp = Experiment.from_dict({**TINY_EXPERIMENT, "figures": ["decision_boundary"]})
    with pytest.raises(ValueError, match=r"decision boundaries need 2 features"):
        exp.run(tmp_path / "out", log=None)
    exp = Experiment.from_dict({**TINY_EXPERIMENT, "figures": ["grid_heatmap"]})
    with pytest.raises(ValueError, match=r"needs 'grid' with exactly 2 axes"):
        exp.run(tmp_path / "out", log=None)
    assert not (tmp_path / "out" / "sgd").exists()


def test_grad_norms_figure_shows_sigmoid_vanishing(tmp_path):
    experiment = _subset(
        EXPERIMENTS / "activations.yaml",
        ["sigmoid", "relu", "maxout"],
        ["fit.epochs=2", "data.n_samples=400"],
    )
    result = experiment.run(tmp_path / "act", log=None)
    profiles, layers = grad_norm_profiles(result)
    assert list(profiles) == ["after epoch 1", "after epoch 2"]
    hidden = [f"dense_{i}" for i in range(1, 9)]
    assert layers["after epoch 1"] == [*hidden, "output_dense"]
    for r in result.results:  # the series are the logged columns, layer by layer
        for panel, epoch in (("after epoch 1", 0), ("after epoch 2", 1)):
            expected = [r.history[f"grad_norm/{name}"][epoch] for name in layers[panel]]
            np.testing.assert_allclose(profiles[panel][r.name], expected)
            assert all(np.isfinite(expected)) and all(v >= 0 for v in expected)
    first = profiles["after epoch 1"]
    # Sigmoid: each layer passes back at most 1/4 of the gradient; 8 layers deep it vanishes.
    assert first["sigmoid"][0] / first["sigmoid"][-1] < 1e-2
    assert np.all(np.diff(np.log(first["sigmoid"])) > 0)  # rising towards the output
    for name in ("relu", "maxout"):
        assert first[name][0] / first[name][-1] > 0.1
    assert_png(result.figures["grad_norms"])
    figure = plots.plot_layer_profiles(profiles, layers=layers)
    for i, panel in enumerate(profiles):
        drawn = line_data(figure, i)
        assert set(drawn) == {"sigmoid", "relu", "maxout"}
        for name, values in drawn.items():
            np.testing.assert_allclose(values, profiles[panel][name])


def test_grad_norms_figure_needs_the_callback_before_training(tmp_path):
    config = copy.deepcopy(Experiment.from_yaml(EXPERIMENTS / "activations.yaml").config)
    config["base"]["fit"].pop("callbacks")
    config["variants"] = {"relu": config["variants"]["relu"]}
    experiment = Experiment.from_dict(config)
    with pytest.raises(ValueError, match=r"figures=\['grad_norms'\] for variant 'relu'"):
        experiment.run(tmp_path / "x", log=None)
    assert not (tmp_path / "x" / "relu").exists()


def _numpy_hidden_stds(recipe: Recipe, activation: str) -> list[float]:
    """Forward pass in NumPy through the built model's Dense weights (the reference)."""
    data, model = recipe.build()
    h = data.x_train[:512].astype(np.float64)
    stds = []
    f = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))
    for i in range(1, len(recipe.model["hidden"]) + 1):
        kernel, bias = (
            np.asarray(w, dtype=np.float64) for w in model.get_layer(f"dense_{i}").get_weights()
        )
        h = f(h @ kernel + bias)
        stds.append(float(h.std()))
    return stds


def test_init_stats_match_a_numpy_forward_pass(tmp_path):
    config = copy.deepcopy(Experiment.from_yaml(EXPERIMENTS / "initialization.yaml").config)
    config["grid"]["init"] = {k: config["grid"]["init"][k] for k in ("small_normal", "he", "lsuv")}
    experiment = Experiment.from_dict(config).with_overrides(["fit.epochs=1", "data.n_samples=600"])
    result = experiment.run(tmp_path / "init", log=None)
    profiles, table = init_std_profiles(result)
    assert list(profiles) == ["activation: tanh", "activation: relu"]
    assert set(profiles["activation: relu"]) == {"small_normal", "he", "lsuv"}
    for variant in experiment.variants:
        activation = variant.levels["activation"]
        drawn = profiles[f"activation: {activation}"][variant.levels["init"]]
        assert len(drawn) == 10
        np.testing.assert_allclose(drawn, _numpy_hidden_stds(variant.recipe, activation), rtol=2e-4)
        assert len(table[variant.name]) == 11  # 10 hidden layers + the softmax output
    tanh, relu = profiles["activation: tanh"], profiles["activation: relu"]
    assert tanh["small_normal"][-1] < 1e-8 and relu["small_normal"][-1] < 1e-8  # vanishes
    assert relu["he"][-1] > 0.3 and 0.5 < relu["lsuv"][-1] < 1.0
    assert json.loads((result.out / "init_stats.json").read_text()).keys() == table.keys()
    assert_png(result.figures["init_stats"])
    figure = plots.plot_layer_profiles(profiles)
    assert set(line_data(figure, 1)) == {"small_normal", "he", "lsuv"}


def test_init_statistics_is_the_model_training_starts_from(tmp_path):
    recipe = Recipe.from_dict(
        {
            "data": {"name": "digits", "n_samples": 300},
            "model": {"hidden": [16, 16], "activation": "tanh", "lsuv": True},
            "fit": {"epochs": 1},
        }
    )
    before = [s.std for s in init_statistics(recipe)]
    again = [s.std for s in init_statistics(recipe)]
    assert before == again  # same seed, same weights (LSUV included)
    assert all(abs(s - before[0]) < 0.2 for s in before[:-1])


def test_learning_rates_figure_draws_the_schedules(tmp_path):
    experiment = _subset(
        EXPERIMENTS / "lr_decay.yaml",
        ["constant", "exponential", "inverse_time", "one_cycle"],
        ["fit.epochs=3", "data.n_samples=300"],
    )
    result = experiment.run(tmp_path / "lr", log=None)
    rates = {r.name: np.array(r.history["learning_rate"]) for r in result.results}
    t = np.arange(3)
    np.testing.assert_allclose(rates["constant"], 0.03, rtol=1e-6)
    np.testing.assert_allclose(rates["exponential"], 0.03 * np.exp(-0.1 * t), rtol=1e-5)
    np.testing.assert_allclose(rates["inverse_time"], 0.03 / (1 + 0.25 * t), rtol=1e-5)
    assert rates["one_cycle"][0] < 0.03 / 10 and rates["one_cycle"].max() > 0.02
    assert_png(result.figures["learning_rates"])
    drawn = line_data(plots.plot_lr_comparison({r.name: r.history for r in result.results}), 0)
    assert set(drawn) == set(rates)
    for name, values in drawn.items():
        np.testing.assert_allclose(values, rates[name])
