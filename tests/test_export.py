"""kerasnn.export: verified SavedModel / .keras export, atomic writes, load, predict, the CLI."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import sklearn.datasets
import yaml
from helpers import subprocess_env

import kerasnn as knn
from kerasnn import export as ex
from kerasnn.cli import main

ROOT = Path(__file__).resolve().parents[1]


_env = subprocess_env


def _saved_model_cli() -> list[str]:
    script = Path(sys.executable).with_name("saved_model_cli")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def _tiny(shape=(4,), outputs=3, **kwargs):
    return knn.models.mlp(shape, hidden=[8], outputs=outputs, **kwargs)


# Models built from what this branch ships; every one must survive both export formats.
# (kerasnn.layers' Maxout/MaxoutChannels/PELU cases join this list when that package lands.)
LAYER_CASES = {
    "prelu": lambda: knn.models.mlp((6,), hidden=[8, 8], outputs=3, activation="prelu"),
    "batchnorm_dropout": lambda: knn.models.mlp(
        (6,), hidden=[8], outputs=3, batchnorm=True, dropout=0.3
    ),
    "cnn": lambda: knn.models.cnn((8, 8, 1), filters=[4], dense=[8], outputs=10, dropout=0.2),
    "residual_mlp": lambda: knn.models.residual_mlp((6,), outputs=1, task="regression"),
    # kerasnn's own layers (issue 3): each must survive both formats.
    "maxout": lambda: knn.models.mlp((6,), hidden=[8], outputs=3, activation="maxout"),
    "maxout_layer_k3": lambda: keras.Sequential(
        [keras.Input((6,)), knn.layers.Maxout(4, pieces=3), keras.layers.Dense(2)]
    ),
    "maxout_channels_cnn": lambda: knn.models.cnn(
        (8, 8, 1), filters=[4], dense=[8], outputs=10, activation="maxout"
    ),
    "pelu": lambda: knn.models.mlp((6,), hidden=[8], outputs=3, activation="pelu"),
    "pelu_channelwise": lambda: keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5), knn.layers.PELU(a=0.7, b=1.3, channelwise=True)]
    ),
}


# --------------------------------------------------------------------------------------------
# The "done when": digits from `kerasnn train`, exported, reloaded, listed, predicted
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_digits_train_export_saved_model_cli_and_predict(tmp_path, capsys):
    recipe = {
        "name": "digits_export",
        "data": {"name": "digits"},
        "model": {"hidden": [32], "dropout": 0.1},
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "fit": {"epochs": 3},
        "export": {"path": "saved_model"},  # the recipe asks for a verified export
    }
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["train", str(recipe_path), "--out", str(run), "--quiet"]) == 0
    assert "saved_model export verified, max abs diff" in capsys.readouterr().out
    assert (run / "saved_model" / "saved_model.pb").exists()

    # `kerasnn export RUN_DIR PATH`: the loader's whole input transform is baked in: the
    # artifact takes the pixels as sklearn's load_digits gives them (0-16).
    keras_file = tmp_path / "digits.keras"
    assert main(["export", str(run), str(keras_file)]) == 0
    out = capsys.readouterr().out
    assert "exported keras to" in out and "verified in a fresh process" in out

    listing = subprocess.run(
        [*_saved_model_cli(), "show", "--dir", str(run / "saved_model"), "--all"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert "signature_def['serving_default']" in listing.stdout
    assert "signature_def['serve']" in listing.stdout
    assert "inputs['inputs'] tensor_info" in listing.stdout
    assert "shape: (-1, 64)" in listing.stdout  # batch dimension free
    assert "shape: (-1, 10)" in listing.stdout

    # Reference: the trained model of the run folder on standardized inputs.
    data = knn.datasets.load("digits")
    trained = keras.saving.load_model(run / "model.keras")
    expected = np.asarray(trained(data.x_test, training=False))
    raw = data.input_transform.inverse_transform(data.x_test)
    source = sklearn.datasets.load_digits().data
    rows_of_source = {tuple(r) for r in source.astype(np.int64)}
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-4)  # the source's integer pixels
    assert all(tuple(r) in rows_of_source for r in np.round(raw).astype(np.int64))
    raw = np.round(raw)
    raw_csv = tmp_path / "raw.csv"
    np.savetxt(raw_csv, raw, delimiter=",", header=",".join(f"px{i}" for i in range(64)))
    for model_path in (run / "saved_model", keras_file):
        out_file = tmp_path / f"pred_{model_path.name}.npy"
        assert main(["predict", str(model_path), str(raw_csv), "--out", str(out_file)]) == 0
        got = np.load(out_file)
        assert got.shape == (len(raw), 10)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    # No --out: CSV on stdout, one row per sample.
    np.save(tmp_path / "raw.npy", raw[:3])
    capsys.readouterr()
    assert main(["predict", str(run / "saved_model"), str(tmp_path / "raw.npy")]) == 0
    rows = np.loadtxt(capsys.readouterr().out.strip().splitlines(), delimiter=",")
    np.testing.assert_allclose(rows, expected[:3], atol=1e-5)


def test_export_bakes_in_standardization_and_reports_the_diff(tmp_path):
    data = knn.datasets.load("iris")
    model = knn.models.mlp(data, hidden=[8])
    result = ex.export(model, tmp_path / "sm", preprocessing=data.standardizer)
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    assert result.probe_size == ex.PROBE_SIZE
    assert result.signatures == ("serve", "serving_default")
    assert result.input_shape == (None, 4)
    assert result.preprocessing == "Normalization"
    loaded = ex.load(tmp_path / "sm")
    raw = data.standardizer.inverse_transform(data.x_test)
    np.testing.assert_allclose(
        loaded.predict(raw), np.asarray(model(data.x_test, training=False)), atol=1e-5
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # no staging left behind


@pytest.fixture(scope="module")
def reloaded_layer_cases(tmp_path_factory):
    """Exports every LAYER_CASES model in both formats, then reloads them all in ONE fresh
    process; returns {artifact: max abs diff vs the in-memory model}."""
    root = tmp_path_factory.mktemp("layer_cases")
    rng = np.random.default_rng(0)
    manifest = {}
    for name, build in LAYER_CASES.items():
        keras.utils.set_random_seed(0)
        model = build()
        shape = model.inputs[0].shape[1:]
        x = rng.standard_normal((5, *shape)).astype("float32")
        np.save(root / f"{name}_x.npy", x)
        np.save(root / f"{name}_y.npy", np.asarray(model(x, training=False)))
        ex.export(model, root / f"{name}_sm", verify=False)
        ex.export(model, root / f"{name}.keras", format="keras", verify=False)
        manifest[name] = {"saved_model": f"{name}_sm", "keras": f"{name}.keras"}
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import numpy as np
        from kerasnn import export
        root = Path(sys.argv[1])
        diffs = {}
        for name, paths in json.loads(sys.argv[2]).items():
            x = np.load(root / f"{name}_x.npy")
            y = np.load(root / f"{name}_y.npy")
            for fmt, p in paths.items():
                got = export.load(root / p).predict(x)
                diffs[f"{name}/{fmt}"] = float(np.max(np.abs(got - y)))
        print(json.dumps(diffs))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root), json.dumps(manifest)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("fmt", ["saved_model", "keras"])
@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_custom_layers_survive_export(reloaded_layer_cases, case, fmt):
    assert reloaded_layer_cases[f"{case}/{fmt}"] <= 1e-5


def test_existing_target_refused_then_replaced_with_overwrite(tmp_path):
    old, new = _tiny(), _tiny()
    x = np.ones((2, 4), "float32")
    ex.export(old, tmp_path / "sm", verify=False)
    with pytest.raises(FileExistsError, match=r"already exists.*overwrite=True"):
        ex.export(new, tmp_path / "sm", verify=False)
    np.testing.assert_allclose(ex.load(tmp_path / "sm").predict(x), old(x), atol=1e-6)
    ex.export(new, tmp_path / "sm", overwrite=True, verify=False)
    np.testing.assert_allclose(ex.load(tmp_path / "sm").predict(x), new(x), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


@keras.saving.register_keras_serializable(package="kerasnn_tests")
class _OnlyHere(keras.layers.Layer):
    """Registered in this process only: a fresh process cannot rebuild it from a .keras file."""

    def call(self, x):
        return x * 2.0


def test_unloadable_artifact_fails_verification_and_writes_nothing(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(_OnlyHere()(inputs)))
    with pytest.raises(ex.ExportVerificationError, match="could not be reloaded"):
        ex.export(model, tmp_path / "m.keras", format="keras")
    assert list(tmp_path.iterdir()) == []  # neither the target nor the staging folder


@pytest.mark.slow
def test_kill_mid_export_leaves_the_old_artifact(tmp_path):
    """A real SIGKILL while an export (overwrite=True) is under way: the old one stays."""
    old = _tiny()
    x = np.ones((2, 4), "float32")
    ex.export(old, tmp_path / "sm", verify=False)
    script = textwrap.dedent(
        """
        import sys
        import kerasnn as knn
        from kerasnn import export
        model = knn.models.mlp((4,), hidden=[8], outputs=3, seed=7)
        export.export(model, sys.argv[1], overwrite=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "sm")],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staging = tmp_path / ".sm.partial"
    try:
        deadline = time.monotonic() + 120
        while not (staging.exists() and any(staging.iterdir())):
            assert proc.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    np.testing.assert_allclose(ex.load(tmp_path / "sm").predict(x), old(x), atol=1e-6)
    # The next export clears the stale staging folder and lands normally.
    new = _tiny(seed=3)
    ex.export(new, tmp_path / "sm", overwrite=True, verify=False)
    np.testing.assert_allclose(ex.load(tmp_path / "sm").predict(x), new(x), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_kill_during_verification_leaves_no_process_and_no_stale_state(tmp_path):
    """kill -9 of an export while its fresh-process verification runs: the verifying child
    dies with it, and the next export to the same path lands."""
    script = textwrap.dedent(
        """
        import sys
        import kerasnn as knn
        from kerasnn import export
        model = knn.models.mlp((4,), hidden=[8], outputs=3, seed=7)
        export.export(model, sys.argv[1])
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "sm")],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (children := _children(proc.pid)):
            assert proc.poll() is None, "the export ended before its verification started"
            assert time.monotonic() < deadline, "no verification process appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 2  # a surviving child would still be importing TF
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [c for c in children if _alive(c)], "the verification process outlived it"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "sm").exists()  # nothing half-written at the target
    result = ex.export(_tiny(seed=3), tmp_path / "sm")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


# --------------------------------------------------------------------------------------------
# load: safe mode
# --------------------------------------------------------------------------------------------
def test_lambda_model_refused_unless_opted_in(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t * 2)(inputs)))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match=r"Refused to load .*safe_mode=False \(CLI: --unsafe\)"):
        ex.load(tmp_path / "lambda.keras")
    x = np.ones((3, 4), "float32")
    loaded = ex.load(tmp_path / "lambda.keras", safe_mode=False)
    np.testing.assert_allclose(loaded.predict(x), model(x), atol=1e-6)
    np.save(tmp_path / "x.npy", x)
    assert main(["predict", str(tmp_path / "lambda.keras"), str(tmp_path / "x.npy")]) == 2
    assert (
        main(["predict", str(tmp_path / "lambda.keras"), str(tmp_path / "x.npy"), "--unsafe"]) == 0
    )


# --------------------------------------------------------------------------------------------
# Bad input: one pinned message each
# --------------------------------------------------------------------------------------------
def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match=r"argument format, expected one of .*Received: format="):
        ex.export(_tiny(), tmp_path / "x", format="onnx")


def test_keras_format_needs_keras_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"ending in \.keras for format='keras'"):
        ex.export(_tiny(), tmp_path / "model.h5", format="keras")
    with pytest.raises(ValueError, match=r"expected a folder name for format='saved_model'"):
        ex.export(_tiny(), tmp_path / "model.keras")


def test_unwritable_path(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(PermissionError, match=r"expected a path in a writable folder"):
        ex.export(_tiny(), tmp_path / "a_file" / "sm", verify=False)


def test_model_not_built(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"expected a built model .*Received: model.built=False"):
        ex.export(model, tmp_path / "sm")
    with pytest.raises(TypeError, match=r"expected a keras.Model"):
        ex.export("model.keras", tmp_path / "sm")


def test_standardizer_of_the_wrong_shape(tmp_path):
    wrong = knn.datasets.Standardizer.fit(np.random.default_rng(0).normal(size=(10, 5)))
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(4,\)"):
        ex.export(_tiny(), tmp_path / "sm", preprocessing=wrong)


def test_predict_wrong_width_and_dtype(tmp_path):
    ex.export(_tiny(), tmp_path / "sm", verify=False)
    loaded = ex.load(tmp_path / "sm")
    with pytest.raises(ValueError, match=r"samples of shape \(4,\).*Received: x.shape=\(2, 5\)"):
        loaded.predict(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"expected a numeric array.*Received: x.dtype=<U1"):
        loaded.predict(np.array([["a"] * 4]))
    assert loaded.predict(np.ones((2, 4), dtype=np.int64)).shape == (2, 3)  # ints are cast
    (tmp_path / "bad.csv").write_text("a,b,c,d\n1,2,3,4\n1,2,x,4\n")
    with pytest.raises(ValueError, match=r"line 3, column 3: 'x'"):
        ex.read_inputs(tmp_path / "bad.csv", loaded.input_shape)
    (tmp_path / "wide.csv").write_text("1,2,3,4,5\n")
    assert main(["predict", str(tmp_path / "sm"), str(tmp_path / "wide.csv")]) == 2


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model at"):
        ex.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"expected a SavedModel folder \(with saved_model.pb\)"):
        ex.load(tmp_path / "empty")


def test_cli_export_refuses_existing_path(tmp_path, capsys):
    _tiny().save(tmp_path / "m.keras")
    (tmp_path / "sm").mkdir()
    assert main(["export", str(tmp_path / "m.keras"), str(tmp_path / "sm")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_recipe_export_block_is_validated():
    base = {"data": {"name": "iris"}, "model": {"hidden": [4]}}
    with pytest.raises(ValueError, match=r"Unknown recipe key export.'fromat'"):
        knn.Recipe.from_dict(base | {"export": {"fromat": "keras"}})
    with pytest.raises(ValueError, match=r"export.path, expected a relative path"):
        knn.Recipe.from_dict(base | {"export": {"path": "/abs/sm"}})
    with pytest.raises(ValueError, match=r"ending in .keras exactly when export.format is keras"):
        knn.Recipe.from_dict(base | {"export": {"format": "keras"}})
    resolved = knn.Recipe.from_dict(base | {"export": {}}).resolved()
    assert resolved.export == {"path": "saved_model", "format": "saved_model", "standardize": True}
