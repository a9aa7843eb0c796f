"""UpdateRatios: ‖Δw‖/‖w‖ per layer against the weights before and after each step."""

import math

import keras
import numpy as np
import pytest
from helpers import assert_png

import kerasnn as knn
from kerasnn import plots
from kerasnn.callbacks import UpdateRatios
from kerasnn.callbacks.update_ratios import HIGH_RATIO, LOW_RATIO

N, BATCH = 256, 32  # 8 steps per epoch


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _model(optimizer, steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.compile(
        optimizer, "sparse_categorical_crossentropy", steps_per_execution=steps_per_execution
    )
    return model


class WeightsEachStep(keras.callbacks.Callback):
    """The weights after every step (one step per execution): the reference's before/after."""

    def on_train_begin(self, logs=None):
        self.weights = [[w.copy() for w in self.model.get_weights()]]

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


def _numpy_ratios(before, after, names):
    """Per layer (kernel + bias, in order): sqrt(sum ||Δ||²) / sqrt(sum ||w||²)."""
    out = {}
    for i, name in enumerate(names):
        w = [before[2 * i].astype(np.float64), before[2 * i + 1].astype(np.float64)]
        d = [after[2 * i] - before[2 * i], after[2 * i + 1] - before[2 * i + 1]]
        out[f"update_ratio/{name}"] = math.sqrt(
            sum(np.sum(a.astype(np.float64) ** 2) for a in d)
        ) / math.sqrt(sum(np.sum(a**2) for a in w))
    return out


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
        lambda: knn.optimizers.get("adamw", learning_rate=3e-3, weight_decay=0.01),
    ],
    ids=["keras_momentum", "fused_adamw"],
)
def test_every_step_equals_the_weights_before_and_after(digits, optimizer):
    x, y = digits.x_train[:N], digits.y_train[:N]
    ratios, weights = UpdateRatios(every_n_steps=1), WeightsEachStep()
    model = _model(optimizer())
    model.fit(
        x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[ratios, weights]
    )
    assert [r.step for r in ratios.records] == list(range(1, 17))
    for k, record in enumerate(ratios.records):
        expected = _numpy_ratios(weights.weights[k], weights.weights[k + 1], ["hidden", "out"])
        assert sorted(record.ratios) == sorted(expected)
        for key, value in expected.items():
            assert record.ratios[key] == pytest.approx(value, rel=1e-4), (record.step, key)


def test_epoch_logs_hold_the_last_update_also_inside_fused_steps(digits):
    x, y = digits.x_train[:N], digits.y_train[:N]
    fused = UpdateRatios()  # epoch ends only
    model = _model(keras.optimizers.SGD(0.05), steps_per_execution=8)
    history = model.fit(
        x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[fused]
    )
    assert [r.step for r in fused.records] == [8, 16]
    stepwise, weights = UpdateRatios(every_n_steps=1), WeightsEachStep()
    plain = _model(keras.optimizers.SGD(0.05))
    plain.fit(
        x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[stepwise, weights]
    )
    for record, k in zip(fused.records, (8, 16), strict=True):
        expected = _numpy_ratios(weights.weights[k - 1], weights.weights[k], ["hidden", "out"])
        assert record.ratios == pytest.approx(expected, rel=1e-4)
    assert history.history["update_ratio/hidden"] == [
        r.ratios["update_ratio/hidden"] for r in fused.records
    ]


@pytest.mark.parametrize(
    ("learning_rate", "flagged"),
    [(1e-6, "below"), (2.0, "above"), (None, None)],
)
def test_flags_in_the_summary_for_runs_built_to_show_them(digits, tmp_path, learning_rate, flagged):
    keras.utils.set_random_seed(0)
    model = knn.models.mlp(digits, hidden=[32])
    # SGD 1e-6 barely moves; SGD 2.0 jumps; Adam 1e-3 on standardized digits sits near 1e-3.
    optimizer = ("adam", 1e-3) if learning_rate is None else ("sgd", learning_rate)
    knn.compile(model, optimizer[0], learning_rate=optimizer[1])
    ratios = UpdateRatios()
    result = knn.fit(
        model,
        digits,
        epochs=2,
        verbose=0,
        callbacks=[ratios],
        early_stopping=False,
        run_dir=tmp_path / "run",
    )
    last = {
        k: float(np.median([r.values[k] for r in ratios.epoch_records]))
        for k in ratios.records[-1].values
    }
    if flagged == "below":
        assert all(r < LOW_RATIO for r in last.values())
    elif flagged == "above":
        assert any(r > HIGH_RATIO for r in last.values())
    else:
        assert all(LOW_RATIO <= r <= HIGH_RATIO for r in last.values()), last
    if flagged:
        assert result.notes and all(flagged in note for note in result.notes)
        assert "note: update ratio of layer 'dense_1'" in result.summary()
    else:
        assert result.notes == [] and "note:" not in result.summary()
    assert (tmp_path / "run" / "update_ratios.png").is_file()
    assert "update_ratio/dense_1" in result.history


def test_plot_from_records_and_from_history(digits, tmp_path):
    x, y = digits.x_train[:N], digits.y_train[:N]
    ratios = UpdateRatios(every_n_steps=2)
    model = _model(keras.optimizers.SGD(0.05))
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[ratios])
    fig = plots.plot_update_ratios(ratios, path=tmp_path / "steps.png")
    assert fig.axes[0].get_xlabel() == "optimizer step"
    assert_png(tmp_path / "steps.png")
    fig = plots.plot_update_ratios(history.history, path=tmp_path / "epochs.png")
    assert fig.axes[0].get_xlabel() == "epoch"
    assert [line.get_label() for line in fig.axes[0].get_lines()][-2:] == ["hidden", "out"]
    with pytest.raises(ValueError, match="expected 'update_ratio/<layer>' values"):
        plots.plot_update_ratios({"loss": [1.0]})


def test_recipe_name_and_bad_arguments():
    assert isinstance(knn.callbacks.get({"update_ratios": {"every_n_steps": 5}}), UpdateRatios)
    with pytest.raises(
        ValueError, match=r"every_n_steps, expected a positive integer\. Received: every_n_steps=0"
    ):
        UpdateRatios(every_n_steps=0)
    again = UpdateRatios.from_config(UpdateRatios(every_n_steps=4, log_dir="tb").get_config())
    assert (again.every_n_steps, again.log_dir) == (4, "tb")
