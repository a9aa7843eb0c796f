"""kerasnn.export.export: verified SavedModel / .keras export, atomic writes, bad input."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import kill_when, subprocess_env

import kerasnn as knn
from kerasnn import export as ex

_env = subprocess_env


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
    staging = tmp_path / ".sm.partial"
    kill_when(
        [sys.executable, "-c", script, str(tmp_path / "sm")],
        lambda: staging.exists() and any(staging.iterdir()),
        what="the export's first write",
        timeout=120,
    )
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
    procs: list[subprocess.Popen] = []
    children: list[int] = []

    def verifying() -> bool:  # the verification child has started
        children[:] = _children(procs[0].pid)
        return bool(children)

    kill_when(
        [sys.executable, "-c", script, str(tmp_path / "sm")],
        verifying,
        what="the verification process",
        timeout=120,
        started=procs.append,
    )
    deadline = time.monotonic() + 2  # a surviving child would still be importing TF
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [c for c in children if _alive(c)], "the verification process outlived it"
    assert not (tmp_path / "sm").exists()  # nothing half-written at the target
    result = ex.export(_tiny(seed=3), tmp_path / "sm")
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


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
