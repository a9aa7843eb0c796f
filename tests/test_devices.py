"""kerasnn.devices: report, configure, strategies; Mirrored and MultiWorkerMirrored for real."""

import json
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from helpers import communicate_all, subprocess_env

from kerasnn import devices
from kerasnn.cli import main

ROOT = Path(__file__).resolve().parents[1]


_env = subprocess_env


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def test_report_lists_devices_versions_onednn_xla(capsys):
    info = devices.report()
    assert info["versions"]["tensorflow"] == tf.__version__
    assert info["versions"]["keras"] == keras.__version__
    assert {"name": "/physical_device:CPU:0", "type": "CPU"} in info["physical"]
    assert any(d["type"] == "CPU" for d in info["logical"])
    assert info["gpus"] == [g for g in info["gpus"] if g["name"].startswith("/physical_device:GPU")]
    assert isinstance(info["onednn"]["enabled"], bool)
    assert info["xla"]["built_with_xla"] == tf.test.is_built_with_xla()
    assert info["mixed_precision"] == keras.mixed_precision.global_policy().name
    assert main(["devices", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["versions"] == info["versions"]
    assert main(["devices"]) == 0
    text = capsys.readouterr().out
    assert f"TensorFlow {tf.__version__}, Keras {keras.__version__}" in text
    assert "oneDNN: " in text and "XLA: " in text


def test_onednn_follows_the_environment(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert devices.report()["onednn"] == {"enabled": False, "source": "TF_ENABLE_ONEDNN_OPTS=0"}


# --------------------------------------------------------------------------------------------
# strategy
# --------------------------------------------------------------------------------------------
def test_strategies_on_this_cpu():
    auto = devices.strategy("auto")
    assert isinstance(auto, tf.distribute.OneDeviceStrategy)  # no GPU here: the CPU
    assert auto.num_replicas_in_sync == 1
    assert isinstance(devices.strategy("cpu"), tf.distribute.OneDeviceStrategy)
    assert devices.strategy("one_device:CPU:0").extended.worker_devices[0].endswith("CPU:0")
    assert devices.strategy("one_device:/cpu:0").num_replicas_in_sync == 1
    assert devices.strategy(auto) is auto
    assert devices.is_chief(auto)
    assert devices.global_batch_size(32, auto) == 32


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("mirored", r"expected one of auto, cpu, gpu, .*Did you mean 'mirrored'\?"),
        ("tpu", r"argument strategy, expected one of .*Received: strategy='tpu'"),
        ("gpu", r"strategy='gpu' but TensorFlow sees no GPU"),
        ("one_device:/gpu:7", r"one_device:<device> with a logical device among .*CPU:0"),
        (3, r"expected a tf.distribute.Strategy or one of"),
    ],
)
def test_bad_strategy(name, match):
    with pytest.raises(ValueError, match=match):
        devices.strategy(name)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{cluster: 1}", r"JSON \(error at position 1"),
        ('{"task": {}}', r"a JSON object with a 'cluster' mapping"),
        ('{"cluster": {"worker": []}, "task": {}}', r"a non-empty list of 'host:port'"),
        ('{"cluster": {"worker": ["localhost"]}}', r"'host:port' addresses; job 'worker'"),
        ('{"cluster": {"worker": ["a:1"]}}', r"a 'task' with 'type' and 'index'"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
            r"a task type among the cluster's jobs \(worker\)",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            r"a task index in \[0, 2\) for job 'worker'",
        ),
    ],
)
def test_malformed_tf_config(monkeypatch, text, match):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ValueError, match=r"environment variable TF_CONFIG, expected " + match):
        devices.strategy("multi_worker")


def test_multi_worker_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"needs the TF_CONFIG environment variable"):
        devices.strategy("multi_worker")


def test_train_with_unknown_strategy_exits_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"name": "iris"}, "model": {"hidden": [4]}}))
    code = main(["train", str(recipe), "--out", str(tmp_path / "run"), "--strategy", "mirror"])
    assert code == 2
    assert "Did you mean 'mirrored'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# configure
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mixed_precision": "float16"}, r"argument mixed_precision, expected None or one of"),
        ({"visible": [3]}, r"argument visible, expected GPU indices in \[0, 0\)"),
        ({"visible": "gpu0"}, r"argument visible, expected None, 'cpu', or a list"),
        ({"logical_cpus": 0}, r"argument logical_cpus, expected a positive integer"),
    ],
)
def test_bad_configure(kwargs, match):
    with pytest.raises(ValueError, match=match):
        devices.configure(**kwargs)


def test_configure_too_late_is_a_clear_error():
    tf.constant(1.0) + 1.0  # TensorFlow's devices are initialised now
    with pytest.raises(RuntimeError, match=r"called too late to set logical_cpus=2"):
        devices.configure(logical_cpus=2)
    devices.configure(visible="cpu")  # no GPU to hide: nothing changes, nothing to refuse


def test_mixed_float16_on_a_cpu_warns():
    try:
        with pytest.warns(UserWarning, match=r"'mixed_float16' requested but no GPU is visible"):
            devices.configure(mixed_precision="mixed_float16")
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_bfloat16_warns_only_without_cpu_support():
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            devices.configure(mixed_precision="mixed_bfloat16")
        warned = any("mixed_bfloat16" in str(w.message) for w in caught)
        assert warned == (not devices.cpu_has_bf16())
    finally:
        keras.mixed_precision.set_global_policy("float32")


# --------------------------------------------------------------------------------------------
# Distribution for real, on this CPU
# --------------------------------------------------------------------------------------------
_MIRRORED = textwrap.dedent(
    """
    import json
    import numpy as np
    from kerasnn import devices
    devices.configure(logical_cpus=2)   # before TensorFlow initialises its devices
    import keras
    import kerasnn as knn

    data = knn.datasets.load("iris")
    def train(name, optimizer):
        s = devices.strategy(name)
        with s.scope():
            keras.utils.set_random_seed(0)
            model = knn.models.mlp(data, hidden=[16])
        # enters the model's strategy scope; the fused optimizers update mirrored slots
        knn.compile(model, optimizer, learning_rate=0.01 if optimizer != "sgd" else 0.1)
        r = knn.fit(model, data, epochs=4, batch_size=24, validation_split=0,
                    early_stopping=False, verbose=0, seed=0)
        return s.num_replicas_in_sync, model.get_weights(), r.final_metrics["loss"]

    out = {}
    for optimizer in ("sgd", "rmsprop", "adam"):
        n1, w1, loss1 = train("one_device:CPU:0", optimizer)
        n2, w2, loss2 = train("mirrored", optimizer)
        out[optimizer] = {
            "replicas": [n1, n2],
            "max_weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2)),
            "moved": max(float(np.max(np.abs(a))) for a in w2),
            "loss": [loss1, loss2],
        }
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_one_device():
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(results) == ["adam", "rmsprop", "sgd"]
    for out in results.values():
        assert out["replicas"] == [1, 2]
        assert out["max_weight_diff"] < 1e-5
        assert out["loss"][1] == pytest.approx(out["loss"][0], abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_on_two_processes_matches_single_process(tmp_path, capsys):
    recipe = tmp_path / "mw.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "mw",
                "data": {"name": "iris"},
                "model": {"hidden": [16]},
                "optimizer": {"name": "sgd", "learning_rate": 0.1},
                "fit": {
                    "epochs": 4,
                    "batch_size": 24,
                    "validation_split": 0,
                    "early_stopping": False,
                },
            }
        )
    )
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "kerasnn", "train", str(recipe), "--quiet"),
                    *("--out", str(tmp_path / "multi"), "--strategy", "multi_worker"),
                ],
                env=_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = communicate_all(procs)
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert main(["train", str(recipe), "--out", str(tmp_path / "single"), "--quiet"]) == 0
    # Only the chief (worker 0) wrote the run folder; the other worker used a scratch folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "mw.yaml", "single"]
    multi = json.loads((tmp_path / "multi" / "metrics.json").read_text())
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert multi["epochs"] == single["epochs"] == 4
    assert multi["test_metrics"]["accuracy"] == pytest.approx(
        single["test_metrics"]["accuracy"], abs=1e-6
    )
    assert multi["test_metrics"]["loss"] == pytest.approx(single["test_metrics"]["loss"], abs=1e-4)
    np.testing.assert_allclose(
        multi["final_metrics"]["loss"], single["final_metrics"]["loss"], atol=1e-4
    )
