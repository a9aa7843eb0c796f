"""The HParams dashboard of a search: the event files read back as TensorBoard reads them."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata
from tensorboard.util import tensor_util

from kerasnn.tuning.hparams_board import HParamsBoard

LR = "optimizer.learning_rate/adam"
METRICS = ["loss", "accuracy", "val_loss", "val_accuracy"]


def _space(low: float = 1e-4, high: float = 1e-1) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("model.activation", ["relu", "tanh"])
    hp.Choice("model.units", [4, 8, 16])
    hp.Int("model.depth", 1, 3)
    hp.Int("batch_size", 8, 32, step=8)
    hp.Float(LR, low, high, sampling="log")
    hp.Boolean("model.batchnorm")
    hp.Fixed("epochs", 2)
    with hp.conditional_scope("model.activation", ["relu"]):
        hp.Float("model.dropout", 0.0, 0.5)
    return hp


def _events(path: Path) -> EventAccumulator:
    events = EventAccumulator(str(path), size_guidance={"tensors": 0})
    events.Reload()
    return events


def _hparams_content(path: Path) -> dict[str, bytes]:
    return _events(path).PluginTagToContent(metadata.PLUGIN_NAME)


def _scalars(path: Path, tag: str) -> list[tuple[int, float]]:
    return [
        (e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
        for e in _events(path).Tensors(tag)
    ]


def _value(value: object) -> object:
    return getattr(value, value.WhichOneof("kind"))


def _fit(board: HParamsBoard, trial: int, values: dict) -> keras.callbacks.History:
    keras.utils.set_random_seed(trial)
    rng = np.random.default_rng(trial)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(
        x[:12],
        y[:12],
        validation_data=(x[12:], y[12:]),
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=board.trial_callbacks(trial, values),
    )


TRIAL_1 = {
    "model.activation": "relu",
    "model.units": 8,
    "model.depth": 2,
    "batch_size": 16,
    LR: 0.003,
    "model.batchnorm": True,
    "epochs": 2,
    "model.dropout": 0.25,
}
# The conditional dropout is inactive (missing); None values, KerasTuner's bookkeeping and
# NumPy scalars as a trial's values may hold them.
TRIAL_2 = {
    "model.activation": "tanh",
    "model.units": np.int64(16),
    "model.depth": 1,
    "batch_size": 8,
    LR: 0.02,
    "model.batchnorm": False,
    "epochs": 2,
    "model.l2": None,
    "tuner/epochs": 2,
}


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    logdir = tmp_path_factory.mktemp("board")
    board = HParamsBoard(logdir, objective="val_accuracy")
    board.write_experiment(_space(), METRICS)
    history = {1: _fit(board, 1, TRIAL_1).history, 2: _fit(board, 2, TRIAL_2).history}
    board.write_objective(1, 0.8125, status="COMPLETED")
    board.write_objective(2, float("nan"), status="FAILED")
    board.write_objective(3, None, status="FAILED")  # failed before its fit started
    return {"logdir": logdir, "board": board, "history": history}


def test_experiment_lists_every_hyperparameter_with_its_domain(search: dict) -> None:
    content = _hparams_content(search["logdir"])
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos) == [
        "model.activation",
        "model.units",
        "model.depth",
        "batch_size",
        LR,
        "model.batchnorm",
        "epochs",
        "model.dropout",
    ]

    def discrete(name: str) -> list:
        return [_value(v) for v in infos[name].domain_discrete.values]

    assert discrete("model.activation") == ["relu", "tanh"]
    assert infos["model.activation"].type == api_pb2.DATA_TYPE_STRING
    assert discrete("model.units") == [4.0, 8.0, 16.0]
    assert discrete("batch_size") == [8.0, 16.0, 24.0, 32.0]  # a step: its grid
    assert discrete("model.batchnorm") == [False, True]
    assert infos["model.batchnorm"].type == api_pb2.DATA_TYPE_BOOL
    assert discrete("epochs") == [2.0]
    depth = infos["model.depth"].domain_interval
    assert (depth.min_value, depth.max_value) == (1.0, 3.0)
    rate = infos[LR].domain_interval
    assert rate.min_value == pytest.approx(1e-4) and rate.max_value == pytest.approx(0.1)
    dropout = infos["model.dropout"].domain_interval
    assert (dropout.min_value, dropout.max_value) == (0.0, 0.5)

    metrics = {(m.name.group, m.name.tag): m for m in experiment.metric_infos}
    assert list(metrics) == [
        ("train", "epoch_loss"),
        ("train", "epoch_accuracy"),
        ("validation", "epoch_loss"),
        ("validation", "epoch_accuracy"),
        ("", "objective"),
    ]
    assert metrics["validation", "epoch_accuracy"].display_name == "val_accuracy"
    assert metrics["validation", "epoch_loss"].dataset_type == api_pb2.DATASET_VALIDATION
    assert metrics["train", "epoch_loss"].dataset_type == api_pb2.DATASET_TRAINING
    assert metrics["", "objective"].display_name == "objective (val_accuracy)"


def test_each_session_holds_exactly_its_active_values(search: dict) -> None:
    for trial, expected in (
        (1, TRIAL_1),
        (2, {k: v for k, v in TRIAL_2.items() if v is not None and not k.startswith("tuner/")}),
    ):
        content = _hparams_content(search["logdir"] / f"trial_{trial:03d}")
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG]
        )
        assert start.group_name == f"trial {trial}"
        recorded = {name: _value(v) for name, v in start.hparams.items()}
        assert recorded == pytest.approx({k: v for k, v in expected.items()})
    recorded = metadata.parse_session_start_info_plugin_data(
        _hparams_content(search["logdir"] / "trial_002")[metadata.SESSION_START_INFO_TAG]
    ).hparams
    assert "model.dropout" not in recorded and "tuner/epochs" not in recorded
    assert _value(recorded["model.units"]) == 16.0  # the NumPy integer, as a number


def test_per_epoch_scalars_match_the_history(search: dict) -> None:
    for trial in (1, 2):
        run = search["logdir"] / f"trial_{trial:03d}"
        history = search["history"][trial]
        for split, prefix in (("train", ""), ("validation", "val_")):
            for name in ("loss", "accuracy"):
                scalars = _scalars(run / split, f"epoch_{name}")
                assert [step for step, _ in scalars] == [0, 1]
                assert [v for _, v in scalars] == pytest.approx(history[prefix + name], rel=1e-6)


def test_objective_and_session_end(search: dict) -> None:
    logdir = search["logdir"]
    assert _scalars(logdir / "trial_001", "objective") == [(0, pytest.approx(0.8125))]
    end = metadata.parse_session_end_info_plugin_data(
        _hparams_content(logdir / "trial_001")[metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == api_pb2.STATUS_SUCCESS

    # A failed trial: no objective, its session marked failed (not the fit's own end).
    assert "objective" not in _events(logdir / "trial_002").Tags()["tensors"]
    end = metadata.parse_session_end_info_plugin_data(
        _hparams_content(logdir / "trial_002")[metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == api_pb2.STATUS_FAILURE
    # A trial that failed before its fit has no run at all.
    assert not (logdir / "trial_003").exists()


def test_non_finite_objective_writes_nothing(tmp_path: Path) -> None:
    board = HParamsBoard(tmp_path / "board", objective="val_loss")
    for value in (None, float("nan"), math.inf):
        board.write_objective(4, value, status="COMPLETED")
    assert not (tmp_path / "board").exists()
    board.write_objective(4, 0.5, status="COMPLETED")
    board.write_objective(4, None, status="COMPLETED")
    assert _scalars(tmp_path / "board" / "trial_004", "objective") == [(0, 0.5)]


def test_write_experiment_again_keeps_only_the_newest(tmp_path: Path) -> None:
    board = HParamsBoard(tmp_path, objective="val_loss")
    board.write_experiment(_space(), METRICS)
    board.write_experiment(_space(1e-3, 1e-2), ["loss", "val_loss"])  # a narrowed space
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
    assert [p.name for p in tmp_path.iterdir()] == [
        next(tmp_path.glob("events.out.tfevents.*")).name
    ]
    content = _hparams_content(tmp_path)
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    rate = next(i for i in experiment.hparam_infos if i.name == LR).domain_interval
    assert rate.min_value == pytest.approx(1e-3) and rate.max_value == pytest.approx(1e-2)
    assert [m.name.tag for m in experiment.metric_infos] == [
        "epoch_loss",
        "epoch_loss",
        "objective",
    ]


def test_int_domains_by_step_and_sampling(tmp_path: Path) -> None:
    hp = keras_tuner.HyperParameters()
    hp.Int("wide", 0, 1000, step=10)  # 101 values: an interval
    hp.Int("filters", 8, 128, step=2, sampling="log")  # 8, 16, 32, 64, 128
    hp.Int("log_units", 4, 512, sampling="log")  # no step: an interval
    hp.Choice("rate", [0.1, 0.01])
    board = HParamsBoard(tmp_path, objective="val_loss")
    board.write_experiment(hp, [])
    content = _hparams_content(tmp_path)
    infos = {
        i.name: i
        for i in metadata.parse_experiment_plugin_data(
            content[metadata.EXPERIMENT_TAG]
        ).hparam_infos
    }
    wide = infos["wide"].domain_interval
    assert (wide.min_value, wide.max_value) == (0.0, 1000.0)
    assert [_value(v) for v in infos["filters"].domain_discrete.values] == [8, 16, 32, 64, 128]
    units = infos["log_units"].domain_interval
    assert (units.min_value, units.max_value) == (4.0, 512.0)
    assert [_value(v) for v in infos["rate"].domain_discrete.values] == [0.01, 0.1]


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"argument objective.*Received: objective=''"):
        HParamsBoard(tmp_path, objective="")
    board = HParamsBoard(tmp_path, objective="val_loss")
    with pytest.raises(ValueError, match=r"argument trial.*Received: trial=0"):
        board.trial_callbacks(0, {})
    with pytest.raises(ValueError, match=r"argument trial.*Received: trial=True"):
        board.write_objective(True, 0.5, status="COMPLETED")
    with pytest.raises(ValueError, match=r"argument status.*Received: status=None"):
        board.write_objective(1, 0.5, status=None)
    with pytest.raises(ValueError, match=r"argument metrics.*Received: metrics='loss'"):
        board.write_experiment(_space(), "loss")
