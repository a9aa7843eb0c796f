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

from kerasnn import data_formats, devices
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


# --------------------------------------------------------------------------------------------
# data formats: channels_first where TensorFlow's CPU kernels may not have it
# --------------------------------------------------------------------------------------------
def _runs(layer: keras.layers.Layer, x: np.ndarray) -> bool:
    """Ground truth: does a forward and backward pass of `layer` on `x` run here?"""
    x = tf.constant(x)
    try:
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.reduce_sum(layer(x))
        for grad in tape.gradient(out, [x, *layer.trainable_weights]):
            grad.numpy()
    except (tf.errors.OpError, ValueError):  # Keras re-raises op errors inside layer calls
        return False
    return True


def test_the_probe_runs_the_op_and_is_cached():
    x = np.linspace(-1, 1, 2 * 6 * 6, dtype="float32").reshape(1, 2, 6, 6)
    conv = keras.layers.Conv2D(3, 3, data_format="channels_first")
    transpose = keras.layers.Conv2DTranspose(3, 3, data_format="channels_first")
    pool = keras.layers.MaxPooling2D(2, data_format="channels_first")
    assert data_formats.supports_channels_first("conv", 2) is _runs(conv, x)
    assert data_formats.supports_channels_first("conv_transpose", 2) is _runs(transpose, x)
    assert data_formats.supports_channels_first("max_pool", 2) is _runs(pool, x)
    before = data_formats._channels_first_error.cache_info()
    data_formats.supports_channels_first("conv", 2)
    after = data_formats._channels_first_error.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    # XLA's CPU kernels take channels_first: a model compiled with jit_compile=True runs it
    assert data_formats.supports_channels_first("conv", 2, jit_compile=True) is True
    model = keras.Sequential([keras.Input((2, 6, 6)), conv])
    model.compile("sgd", "mse", jit_compile=True)
    data_formats.check_data_formats(model)  # reads model.jit_compile: no error anywhere


def test_check_data_formats_names_the_layers_it_cannot_run(monkeypatch):
    from layer_checks import FORCED_REASON, channels_first_message, force_channels_first_unsupported

    calls = force_channels_first_unsupported(monkeypatch, ops=("conv",))
    inputs = keras.Input((2, 8, 8))
    h = keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv_a")(inputs)
    h = keras.layers.MaxPooling2D(data_format="channels_first", name="pool_a")(h)
    inner = keras.Sequential(
        [keras.layers.Conv1D(2, 2, data_format="channels_first", name="conv_inner")],
        name="inner",
    )
    h = inner(keras.layers.Reshape((4, 9))(h))
    model = keras.Model(inputs, keras.layers.Flatten(data_format="channels_first")(h))
    message = channels_first_message(
        "conv_a", "Conv2D", reason=FORCED_REASON, others=["conv_inner"]
    )
    with pytest.raises(ValueError, match=message):
        data_formats.check_data_formats(model)
    assert sorted(c[:2] for c in calls) == [("conv", 1), ("conv", 2), ("max_pool", 2)]

    # a user subclass is checked as the Keras layer it extends
    class MyConv(keras.layers.Conv2D):
        pass

    layer = MyConv(2, 3, data_format="channels_first", name="mine")
    match = channels_first_message("mine", "MyConv", op_class="Conv2D", reason=FORCED_REASON)
    with pytest.raises(ValueError, match=match):
        data_formats.check_data_formats(layer)
    # channels_last models and layouts that run are not refused; channels_last is not probed
    del calls[:]
    data_formats.check_data_formats(
        keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(2, 3)])
    )
    assert calls == []
    pool_only = keras.Sequential(
        [keras.Input((2, 8, 8)), keras.layers.AveragePooling2D(2, data_format="channels_first")]
    )
    data_formats.check_data_formats(pool_only)
    assert [c[:2] for c in calls] == [("average_pool", 2)]


def test_builder_refuses_channels_first_where_unsupported(monkeypatch):
    from layer_checks import FORCED_REASON, channels_first_message, force_channels_first_unsupported

    from kerasnn import models

    force_channels_first_unsupported(monkeypatch)
    message = channels_first_message("conv_1", "Conv2D", reason=FORCED_REASON, others=["conv_2"])
    with pytest.raises(ValueError, match=message):
        models.cnn((8, 8, 1), [4, 8], 10, dense=[], data_format="channels_first")
    model = models.cnn((8, 8, 1), [4, 8], 10, dense=[], data_format="channels_last")
    assert model.get_layer("conv_1").data_format == "channels_last"
    # the default follows keras.config.image_data_format(), so the check covers it too
    monkeypatch.setattr(keras.config, "image_data_format", lambda: "channels_first")
    with pytest.raises(ValueError, match=message):
        models.cnn((8, 8, 1), [4, 8], 10, dense=[])


@pytest.mark.parametrize(
    ("call", "exception", "match"),
    [
        (
            lambda: data_formats.supports_channels_first("conv2d"),
            ValueError,
            r"argument op, expected one of .*'conv'.* Did you mean 'conv'\? Received: op='conv2d'",
        ),
        (
            lambda: data_formats.supports_channels_first("separable_conv", 3),
            ValueError,
            r"^Received an invalid value for argument rank, expected one of 1, 2 for "
            r"op='separable_conv'. Received: rank=3$",
        ),
        (
            lambda: data_formats.supports_channels_first("conv", 2, jit_compile="yes"),
            ValueError,
            r"argument jit_compile, expected True or False. Received: jit_compile='yes'$",
        ),
        (
            lambda: data_formats.check_data_formats("model"),
            TypeError,
            r"argument model, expected a keras.Model or keras.layers.Layer. Received: "
            r"model='model' of type str$",
        ),
    ],
)
def test_bad_data_format_check_arguments(call, exception, match):
    with pytest.raises(exception, match=match):
        call()


_NO_ONEDNN = textwrap.dedent(
    """
    import json
    import keras, numpy as np
    import tensorflow as tf
    from kerasnn import data_formats, initializers, models

    out = {"supported": data_formats.supports_channels_first("conv", 2)}
    try:  # what TensorFlow itself says without kerasnn's check
        keras.layers.Conv2D(2, 3, data_format="channels_first")(np.ones((1, 1, 8, 8), "float32"))
        out["tensorflow"] = "ran"
    except Exception as err:
        out["tensorflow"] = type(err).__name__
    try:
        models.cnn((8, 8, 1), [4], 3, dense=[], data_format="channels_first")
    except ValueError as err:
        out["builder"] = str(err)
    model = models.cnn((8, 8, 1), [4], 3, dense=[], data_format="channels_last")
    out["channels_last_params"] = model.count_params()
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_without_onednn_the_real_probe_refuses_channels_first():
    # TensorFlow's own (Eigen) CPU convolutions take only NHWC: without oneDNN this machine is
    # one of those, whatever its CPU, so the real probe and TF's real error are tested here.
    env = _env(TF_ENABLE_ONEDNN_OPTS="0", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", _NO_ONEDNN], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["supported"] is False
    assert out["tensorflow"] == "UnimplementedError"
    assert out["builder"] == (
        "Layer 'conv_1' (Conv2D) has data_format='channels_first', which this machine cannot "
        "run: TensorFlow's CPU kernels here support only channels_last for Conv2D (TensorFlow: "
        "The Conv2D op currently only supports the NHWC tensor format on the CPU. The op was "
        "given the format: NCHW). Build the model with data_format='channels_last', or run it on "
        "a GPU (none is visible)."
    )
    assert out["channels_last_params"] == 9 * 4 + 4 + 4 * 4 * 4 * 3 + 3
