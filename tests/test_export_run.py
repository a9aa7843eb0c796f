"""kerasnn.recipe.export_run: a run folder (or a .keras file) exported with the recipe's input
transform baked in, from Python and from `kerasnn export`; the recipe's export block."""

import subprocess
import sys
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
from kerasnn.recipe.export_run import export_run_folder, export_source


def _saved_model_cli() -> list[str]:
    script = Path(sys.executable).with_name("saved_model_cli")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def _tiny(shape=(4,), outputs=3, **kwargs):
    return knn.models.mlp(shape, hidden=[8], outputs=outputs, **kwargs)


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
        env=subprocess_env(),
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


def test_export_run_folder_bakes_in_the_recipes_input_transform(tmp_path):
    recipe = knn.Recipe.from_dict(
        {"name": "iris", "data": {"name": "iris"}, "model": {"hidden": [4]}, "fit": {"epochs": 1}}
    )
    run = recipe.run(tmp_path / "run", verbose=0)
    result = export_run_folder(run.run_dir, tmp_path / "sm")
    assert result.preprocessing == "Normalization" and result.max_abs_diff <= 1e-5
    raw = sklearn.datasets.load_iris().data
    data = knn.datasets.load("iris")
    trained = keras.saving.load_model(run.run_dir / "model.keras")
    np.testing.assert_allclose(
        ex.load(tmp_path / "sm").predict(raw),
        trained.predict(data.input_transform.transform(raw), verbose=0),
        atol=1e-5,
    )
    # standardize=False: nothing baked in; the dispatcher sends a folder to export_run_folder.
    plain = export_source(run.run_dir, tmp_path / "plain.keras", standardize=False)
    assert (plain.format, plain.preprocessing) == ("keras", None)


def test_export_source_of_a_keras_file_bakes_nothing_in(tmp_path):
    model = _tiny()
    model.save(tmp_path / "m.keras")
    result = export_source(tmp_path / "m.keras", tmp_path / "sm")
    assert (result.format, result.preprocessing) == ("saved_model", None)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(ex.load(tmp_path / "sm").predict(x), model(x), atol=1e-6)
    again = ex.export_file(tmp_path / "m.keras", tmp_path / "again.keras")
    assert again.format == "keras" and again.max_abs_diff <= 1e-5


def test_export_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Nothing at .*missing: expected a run folder"):
        export_source(tmp_path / "missing", tmp_path / "sm")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No model.keras in .*empty_run: expected a"):
        export_source(tmp_path / "empty_run", tmp_path / "sm")
    # The target is checked first, before the source is even looked at.
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match=r"taken already exists"):
        export_source(tmp_path / "missing", tmp_path / "taken")
    with pytest.raises(ValueError, match=r"argument format, expected one of"):
        export_run_folder(tmp_path / "empty_run", tmp_path / "sm", format="onnx")


def test_cli_export_refuses_existing_path(tmp_path, capsys):
    _tiny().save(tmp_path / "m.keras")
    (tmp_path / "sm").mkdir()
    assert main(["export", str(tmp_path / "m.keras"), str(tmp_path / "sm")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_recipe_export_block_is_validated():
    base = {"data": {"name": "iris"}, "model": {"hidden": [4]}}
    with pytest.raises(
        ValueError, match=r"Unknown recipe key export.fromat. Did you mean 'format'\?"
    ):
        knn.Recipe.from_dict(base | {"export": {"fromat": "keras"}})
    with pytest.raises(ValueError, match=r"export.path, expected a relative path"):
        knn.Recipe.from_dict(base | {"export": {"path": "/abs/sm"}})
    with pytest.raises(ValueError, match=r"ending in .keras exactly when export.format is keras"):
        knn.Recipe.from_dict(base | {"export": {"format": "keras"}})
    resolved = knn.Recipe.from_dict(base | {"export": {}}).resolved()
    assert resolved.export == {"path": "saved_model", "format": "saved_model", "standardize": True}
