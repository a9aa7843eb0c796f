"""Figures of several runs side by side: curves, decision boundaries, a grid heatmap, rates."""

import keras
import numpy as np
import pytest
from helpers import assert_png

from kerasnn import plots


def _threshold_model(w0: float, w1: float) -> keras.Model:
    """Two-class softmax model whose class is 1 exactly where w0*x0 + w1*x1 > 0."""
    inputs = keras.Input((2,))
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([np.array([[-w0, w0], [-w1, w1]], np.float32), np.zeros(2, np.float32)])
    return model


def test_decision_boundary_colours_follow_the_model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    path = tmp_path / "boundary.png"
    fig = plots.plot_decision_boundary(_threshold_model(1.0, 0.0), x, y, path=path, margin=0.0)
    ax = fig.axes[0]
    assert len(ax.collections) >= 2  # filled regions + the points
    image = assert_png(path)[..., :3]
    # Sample the plot area's left and right quarters (away from the points' edges): two colours.
    bbox = ax.get_window_extent()
    height = image.shape[0]
    row = int(height - (bbox.y0 + bbox.y1) / 2)
    left = image[row, int(bbox.x0 + 0.1 * bbox.width)]
    right = image[row, int(bbox.x0 + 0.9 * bbox.width)]
    assert np.abs(left - right).sum() > 0.1


def test_decision_boundary_binary_sigmoid_and_ax():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, -1.0]], np.float32)
    out = plots.plot_decision_boundary(model, x, [0, 1, 0], ax=axes[1], resolution=20)
    assert out is fig and len(axes[1].collections) >= 2 and not axes[0].collections
    plt.close(fig)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.zeros((4, 3)), "y": np.zeros(4)}, r"argument x, expected points of shape"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3)}, r"argument y, expected one label per point"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(4), "resolution": 1}, r"argument resolution"),
    ],
)
def test_decision_boundary_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_decision_boundary(_threshold_model(1, 0), **kwargs)


def test_comparison_overlays_every_run(tmp_path):
    histories = {
        "a": {
            "loss": [1.0, 0.5],
            "val_loss": [1.1, 0.7],
            "accuracy": [0.5, 0.8],
            "val_accuracy": [0.4, 0.7],
        },
        "b": {
            "loss": [1.2, 0.9],
            "val_loss": [1.3, 1.0],
            "accuracy": [0.4, 0.6],
            "val_accuracy": [0.3, 0.5],
        },
    }
    test = {"a": {"loss": 0.7, "accuracy": 0.71}, "b": {"loss": 1.0, "accuracy": 0.52}}
    fig = plots.plot_comparison(histories, test=test)
    loss_ax, acc_ax, bar_ax = fig.axes
    assert len(loss_ax.lines) == 4 and len(acc_ax.lines) == 4  # train + validation per run
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [1.1, 0.7])
    assert [round(p.get_width(), 2) for p in bar_ax.patches] == [0.71, 0.52]
    with pytest.raises(ValueError, match=r"run 'a' has no \['auc'\]"):
        plots.plot_comparison(histories, metrics=["auc"])
    with pytest.raises(ValueError, match=r"expected at least one run"):
        plots.plot_comparison({})


def test_grid_heatmap_marks_the_best_per_row():
    fig = plots.plot_grid_heatmap(
        [[0.5, 0.2, float("nan")], [0.1, 0.3, 0.4]], rows=["a", "b"], cols=["x", "y", "z"]
    )
    ax = fig.axes[0]
    boxes = [(p.get_x() + 0.5, p.get_y() + 0.5) for p in ax.patches]
    assert boxes == [(1.0, 0.0), (0.0, 1.0)]
    assert "nan" in [t.get_text() for t in ax.texts]
    with pytest.raises(ValueError, match=r"expected 2 rows of 3 values"):
        plots.plot_grid_heatmap([[1.0]], rows=["a", "b"], cols=["x", "y", "z"])


def test_comparison_defaults_to_metrics_with_a_validation_twin():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "grad_norm/dense_1": [3.0, 2.0]}
    fig = plots.plot_comparison({"a": history})
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "loss"
    # Without validation twins every shared training metric is drawn; callback logs never are.
    fig = plots.plot_comparison({"a": {"loss": [1.0], "accuracy": [0.5], "grad_norm": [2.0]}})
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]


def test_lr_comparison_overlays_the_logged_rates(tmp_path):
    histories = {"constant": {"learning_rate": [0.1, 0.1]}, "step": {"learning_rate": [0.1, 0.05]}}
    fig = plots.plot_lr_comparison(histories, path=tmp_path / "rates.png")
    drawn = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert drawn == {"constant": [0.1, 0.1], "step": [0.1, 0.05]}
    assert_png(tmp_path / "rates.png")


def test_plot_lr_comparison_bad_input():
    with pytest.raises(ValueError, match="expected at least one run"):
        plots.plot_lr_comparison({})
    with pytest.raises(ValueError, match=r"runs without it: \['b'\]"):
        plots.plot_lr_comparison({"a": {"learning_rate": [0.1]}, "b": {"loss": [1.0]}})
