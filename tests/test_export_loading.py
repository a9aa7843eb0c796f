"""kerasnn.export.load / LoadedModel.predict / read_inputs: checked inputs, safe mode."""

import keras
import numpy as np
import pytest

import kerasnn as knn
from kerasnn import export as ex
from kerasnn.cli import main


def _tiny(shape=(4,), outputs=3, **kwargs):
    return knn.models.mlp(shape, hidden=[8], outputs=outputs, **kwargs)


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


# --------------------------------------------------------------------------------------------
# Input and output files of `kerasnn predict`
# --------------------------------------------------------------------------------------------
def test_read_inputs_and_write_outputs_round_trip(tmp_path):
    x = np.arange(6 * 64, dtype=np.float64).reshape(6, 8, 8, 1)
    header = ",".join(f"px{i}" for i in range(64))
    np.savetxt(tmp_path / "x.csv", x.reshape(6, 64), delimiter=",", header=header, comments="")
    np.testing.assert_array_equal(ex.read_inputs(tmp_path / "x.csv", (None, 8, 8, 1)), x)
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(ex.read_inputs(tmp_path / "x.npy", (None, 8, 8, 1)), x)
    y = np.linspace(0, 1, 12).reshape(6, 2)
    assert ex.write_outputs(tmp_path / "y.csv", y) == tmp_path / "y.csv"
    np.testing.assert_allclose(np.loadtxt(tmp_path / "y.csv", delimiter=","), y, rtol=1e-7)
    ex.write_outputs(tmp_path / "y.npy", y)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), y)


def test_input_and_output_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Input file not found: .*missing.csv"):
        ex.read_inputs(tmp_path / "missing.csv", (None, 4))
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"expected a .npy or .csv file. Received: input="):
        ex.read_inputs(tmp_path / "x.txt", (None, 2))
    (tmp_path / "ragged.csv").write_text("1,2\n1,2,3\n")
    with pytest.raises(ValueError, match=r"expected rows of one width.*widths \[2, 3\]"):
        ex.read_inputs(tmp_path / "ragged.csv", (None, 2))
    with pytest.raises(ValueError, match=r"argument out, expected a file name ending in .npy or"):
        ex.write_outputs(tmp_path / "y.txt", np.zeros((2, 1)))
