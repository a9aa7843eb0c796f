"""The run folder's figures (history, lr, gradient norms, activation statistics) and CSV logs."""

import math

import keras
import pytest
from helpers import assert_png

import kerasnn as knn


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _mlp(data, lr=1e-3, **kwargs):
    keras.utils.set_random_seed(0)
    return knn.compile(knn.models.mlp(data, hidden=[64], **kwargs), "adam", learning_rate=lr)


def test_run_folder_gets_the_figures_and_csv_logger_sees_the_new_logs(digits, tmp_path):
    csv = tmp_path / "keras.csv"
    result = knn.fit(
        _mlp(digits),
        digits,
        epochs=2,
        verbose=0,
        run_dir=tmp_path / "run",
        callbacks=[
            "activation_stats",
            {"gradient_norms": {"every_n_steps": 10}},
            {"csv_logger": {"filename": str(csv)}},
        ],
        lr_schedule={"exponential": {"k": 0.5}},
    )
    for name in ("history", "lr", "grad_norms", "activation_stats"):
        assert_png(tmp_path / "run" / f"{name}.png")
    header = csv.read_text().splitlines()[0].split(",")
    for key in ("learning_rate", "grad_norm", "grad_norm/dense_1", "act_mean/dense_1_act"):
        assert key in header
    assert result.history["learning_rate"] == pytest.approx([1e-3, 1e-3 * math.exp(-0.5)])
