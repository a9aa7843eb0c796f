"""Tests for init_report (kerasnn.diagnostics.initialization): activation statistics at
initialisation, on real digits data."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from kerasnn import datasets, models
from kerasnn.diagnostics import activation_statistics, init_report
from kerasnn.layers import Maxout


@functools.cache
def _digits() -> datasets.Dataset:
    return datasets.load("digits", view="flat")


def test_init_report_is_activation_statistics():
    data = _digits()
    x = data.x_train[:256]
    model = models.mlp(data, [64] * 6, activation="tanh", initializer="small_normal", seed=0)
    report = init_report(model, x)
    stats = activation_statistics(model, x)
    assert report.layers == stats
    assert report.std_ratio < 1e-4  # vanishing: the lectures' N(0, 0.01) "first idea"
    table = report.format()
    assert table.splitlines()[0].split() == ["layer", "kind", "mean", "std", "dead", "sat."]
    assert "dense_6_act" in table and str(report) == table
    assert report.to_dict()["layers"][0]["name"] == "dense_1_act"

    relu = models.mlp(data, [64] * 3, activation="relu", seed=0)
    kernel, bias = relu.get_layer("dense_2").get_weights()
    relu.get_layer("dense_2").set_weights([kernel, bias - 100.0])  # every unit dead
    report = init_report(relu, x)
    dead = [s.dead_fraction for s in report.layers[:3]]
    assert dead[0] < 0.5 and dead[1:] == [1.0, 1.0]  # zero biases: nothing comes back to life
    assert report.std_ratio == 0.0
    assert report.layers[-1].dead_fraction is None  # softmax output: not a ReLU


def test_init_report_counts_a_dense_maxout_layer_as_an_activation():
    x = _digits().x_train[:32]
    model = keras.Sequential(
        [keras.Input((64,)), Maxout(8, pieces=3, name="mx"), keras.layers.Dense(3)]
    )
    report = init_report(model, x)
    assert [(s.name, s.kind) for s in report.layers] == [("mx", "maxout")]
    expected = keras.ops.convert_to_numpy(model.get_layer("mx")(x)).astype(np.float64)
    assert report.layers[0].std == pytest.approx(expected.std(), rel=1e-5)
