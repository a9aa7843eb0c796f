"""plot_history and plot_lr: one run's curves and its learning rate, written as PNG files."""

import numpy as np
import pytest
from helpers import assert_png

import kerasnn as knn
from kerasnn import plots

HISTORY = {
    "loss": [1.0, 0.6, 0.4, 0.3],
    "val_loss": [1.1, 0.8, 0.7, 0.75],
    "accuracy": [0.5, 0.7, 0.8, 0.9],
    "val_accuracy": [0.45, 0.6, 0.7, 0.68],
    "learning_rate": [0.1, 0.1, 0.05, 0.05],
    "grad_norm": [3.0, 2.0, 1.5, 1.0],
    "grad_norm/dense": [2.0, 1.5, 1.0, 0.8],
    "act_mean/dense_act": [0.1, 0.2, 0.3, 0.3],
}


def test_history_is_written_one_panel_per_compiled_metric(tmp_path):
    fig = plots.plot_history(HISTORY, path=tmp_path / "history.png")
    assert len(fig.axes) == 2  # loss and accuracy; lr, norms, activation stats left out
    assert_png(tmp_path / "history.png")


def test_history_marks_the_best_validation_epoch():
    fig = plots.plot_history(HISTORY)
    loss_ax = fig.axes[0]
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), HISTORY["val_loss"])
    assert "best (3)" in [line.get_label() for line in loss_ax.lines]  # lowest val_loss: epoch 3


def test_lr_from_a_history_and_from_a_schedule(tmp_path):
    plots.plot_lr(HISTORY, path=tmp_path / "lr.png")
    plots.plot_lr(schedule=knn.schedules.OneCycle(0.1, 100), steps=100, path=tmp_path / "oc.png")
    for name in ("lr", "oc"):
        assert_png(tmp_path / f"{name}.png")
    with pytest.raises(ValueError, match="expected a history with 'learning_rate'"):
        plots.plot_lr({"loss": [1.0]})


def test_png_is_replaced_atomically(tmp_path):
    path = tmp_path / "sub" / "history.png"
    plots.plot_history({"loss": [1.0, 0.5]}, path=path)
    first = path.read_bytes()
    plots.plot_history({"loss": [1.0, 0.2, 0.1]}, path=path)
    assert path.read_bytes() != first
    assert [p.name for p in path.parent.iterdir()] == ["history.png"]  # no temporary left
