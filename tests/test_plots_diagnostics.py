"""The diagnostics' figures: lr_find, gradient norms, activation statistics, sanity, depth."""

import types

import keras
import numpy as np
import pytest
from helpers import assert_png

import kerasnn as knn
from kerasnn import plots


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _mlp(data, lr=1e-3):
    keras.utils.set_random_seed(0)
    return knn.compile(knn.models.mlp(data, hidden=[64]), "adam", learning_rate=lr)


def test_grad_norms_global_and_per_layer(tmp_path):
    history = {"loss": [1.0, 0.5], "grad_norm": [3.0, 2.0], "grad_norm/dense": [2.0, 1.5]}
    fig = plots.plot_grad_norms(history, path=tmp_path / "grad_norms.png")
    assert [line.get_label() for line in fig.axes[0].lines] == ["global", "dense"]
    assert_png(tmp_path / "grad_norms.png")
    with pytest.raises(ValueError, match="expected 'grad_norm' values"):
        plots.plot_grad_norms({"loss": [1.0]})


def test_grad_norms_with_clipping_per_step():
    """Records of a clipping optimizer: the clipped global norm dashed, the 0/1 flag left out."""
    values = {"grad_norm": 3.0, "grad_norm/dense": 2.0, "grad_norm_clipped": 1.0, "clipped": 1.0}
    records = [types.SimpleNamespace(step=s, values=values) for s in (1, 2, 3)]
    fig = plots.plot_grad_norms(types.SimpleNamespace(records=records))
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines] == ["global", "global, clipped", "dense"]
    assert lines[1].get_linestyle() == "--" and list(lines[0].get_xdata()) == [1, 2, 3]
    assert fig.axes[0].get_xlabel() == "optimizer step"


def test_activation_stats_of_a_trained_model(digits, tmp_path):
    stats = knn.callbacks.ActivationStats(probe=digits.x_train[:50], bins=8)
    model = _mlp(digits)
    model.fit(digits.x_train, digits.y_train, epochs=2, verbose=0, callbacks=[stats])
    plots.plot_activation_stats(stats, path=tmp_path / "act.png")
    assert_png(tmp_path / "act.png")
    with pytest.raises(ValueError, match="expected recorded epochs"):
        plots.plot_activation_stats([])


def test_lr_find_curve(digits, tmp_path):
    result = knn.lr_find(_mlp(digits), digits, num_steps=30, min_lr=1e-5, max_lr=1.0)
    fig = plots.plot_lr_find(result, path=tmp_path / "lr_find.png")
    assert fig.axes[0].get_xscale() == "log"
    assert_png(tmp_path / "lr_find.png")


def test_sanity_figure_shows_every_check(tmp_path):
    report = types.SimpleNamespace(
        overfit_history={"loss": [2.0, 1.0, 0.1], "accuracy": [0.2, 0.6, 1.0], "final": {}},
        checks=[
            types.SimpleNamespace(name="initial loss", passed=True),
            types.SimpleNamespace(name="overfit 20 samples", passed=False),
        ],
        passed=False,
    )
    fig = plots.plot_sanity(report, path=tmp_path / "sanity.png")
    assert fig.axes[0].get_title() == "sanity check: FAILED"
    assert fig.axes[0].texts[0].get_text() == "PASS initial loss\nFAIL overfit 20 samples"
    assert_png(tmp_path / "sanity.png")


def test_layer_profiles_one_line_per_run():
    fig = plots.plot_layer_profiles(
        {"tanh": {"xavier": [1.0, 0.6], "small": [0.1, 1e-3]}}, layers={"tanh": ["d1", "d2"]}
    )
    drawn = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert drawn == {"xavier": [1.0, 0.6], "small": [0.1, 1e-3]}
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["d1", "d2"]


def test_plot_layer_profiles_bad_input():
    with pytest.raises(ValueError, match="at least one run per panel"):
        plots.plot_layer_profiles({})
    with pytest.raises(ValueError, match="has 1 labels but run 'a' has 2 values"):
        plots.plot_layer_profiles({"p": {"a": [1.0, 2.0]}}, layers={"p": ["x"]})


def test_layer_profiles_leave_non_positive_values_out_of_a_log_axis():
    fig = plots.plot_layer_profiles({"p": {"a": [1.0, 0.0, 0.5]}})
    assert np.isnan(fig.axes[0].lines[0].get_ydata()[1])
