"""Tests for user files in kerasnn.datasets.load: .npz / .csv reading, task inference, errors."""

import pathlib

import numpy as np
import pytest

from kerasnn import datasets


def test_npz_with_own_split_is_used_as_is(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.normal(size=(30, 4)),
        "y_train": np.arange(30) % 3,
        "x_test": rng.normal(size=(9, 4)),
        "y_test": np.arange(9) % 3,
    }
    np.savez(tmp_path / "mine.npz", **arrays)
    data = datasets.load(tmp_path / "mine.npz", standardize=False)
    assert (data.name, data.task, data.num_classes, data.input_shape) == (
        "mine",
        "classification",
        3,
        (4,),
    )
    np.testing.assert_allclose(data.x_train, arrays["x_train"].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.class_names is None


def test_npz_with_x_y_is_split_and_string_labels_are_encoded(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array(["cat", "dog", "emu"] * 20)
    np.savez(tmp_path / "animals.npz", x=rng.normal(size=(60, 2, 3)), y=y)
    data = datasets.load(str(tmp_path / "animals.npz"), test_size=0.25, seed=4)
    assert data.task == "classification"
    assert data.class_names == ("cat", "dog", "emu")
    assert data.input_shape == (2, 3)
    assert data.standardizer.mean.shape == (2, 3)
    assert data.x_test.shape == (15, 2, 3)
    np.testing.assert_array_equal(np.bincount(data.y_test), [5, 5, 5])


@pytest.mark.parametrize(
    ("y", "task", "num_classes", "class_names", "y_dtype"),
    [
        (np.array([0, 1] * 20), "binary", 2, None, np.int32),
        (np.array([0.0, 1.0] * 20), "binary", 2, None, np.int32),
        (np.array([-1, 1] * 20), "binary", 2, ("-1", "1"), np.int32),
        (np.array([0, 1, 2, 3] * 10), "classification", 4, None, np.int32),
        (np.array([3, 7, 9, 3] * 10), "classification", 3, ("3", "7", "9"), np.int32),
        (np.array([0.0, 1.0, 2.0, 3.0] * 10), "regression", None, None, np.float32),
        (np.linspace(0, 1, 40), "regression", None, None, np.float32),
        (np.arange(60), "regression", None, None, np.float32),  # > 50 classes
    ],
)
def test_npz_task_inference(tmp_path, y, task, num_classes, class_names, y_dtype):
    x = np.random.default_rng(0).normal(size=(len(y), 2))
    np.savez(tmp_path / "data.npz", x=x, y=y)
    data = datasets.load(tmp_path / "data.npz")
    assert (data.task, data.num_classes, data.class_names) == (task, num_classes, class_names)
    assert data.y_train.dtype == y_dtype


def test_npz_explicit_task_overrides_inference(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2))
    np.savez(tmp_path / "data.npz", x=x, y=np.array([0, 1] * 20))
    assert datasets.load(tmp_path / "data.npz", task="regression").task == "regression"
    assert datasets.load(tmp_path / "data.npz", task="classification").num_classes == 2


def write_csv(path: pathlib.Path, header: str, rows: list[str]) -> pathlib.Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_default_target_is_last_column(tmp_path):
    rows = [f"{i},{i % 5 * 0.5},{'yes' if i % 2 else 'no'}" for i in range(40)]
    path = write_csv(tmp_path / "table.csv", "a,b,label", rows)
    data = datasets.load(path, seed=0)
    assert data.name == "table"
    assert (data.task, data.num_classes, data.output_units) == ("binary", 2, 1)
    assert data.class_names == ("no", "yes")
    assert data.feature_names == ("a", "b")
    raw = datasets.load(path, seed=0, standardize=False)
    np.testing.assert_array_equal(raw.y_train, raw.x_train[:, 0].astype(int) % 2)


@pytest.mark.parametrize("target", ["price", 0, -3])
def test_csv_target_by_name_or_index(tmp_path, target):
    rows = [f"{i * 1.5},{i},{i % 3}" for i in range(30)]
    path = write_csv(tmp_path / "houses.csv", "price,size,rooms", rows)
    data = datasets.load(path, target=target, standardize=False)
    assert data.task == "regression"
    assert data.feature_names == ("size", "rooms")
    np.testing.assert_allclose(data.y_train, data.x_train[:, 0] * 1.5)


def test_csv_integer_target_is_classification(tmp_path):
    rows = [f"{i},{i % 3}" for i in range(30)]
    data = datasets.load(write_csv(tmp_path / "t.csv", "f,cls", rows))
    assert (data.task, data.num_classes, data.class_names) == ("classification", 3, None)


# ---------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_missing_file_raises_file_not_found(tmp_path, suffix):
    path = tmp_path / f"nothing{suffix}"
    with pytest.raises(FileNotFoundError, match=rf"Dataset file not found: '.*nothing\{suffix}'"):
        datasets.load(path)


def test_unsupported_path_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"expected a path ending in \.npz or \.csv"):
        datasets.load(tmp_path / "data.txt")


def test_npz_with_wrong_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", features=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(
        ValueError,
        match=r"x_train, y_train, x_test, y_test or x, y\. .*"
        r"with arrays \['features', 'labels'\]",
    ):
        datasets.load(tmp_path / "bad.npz")


def test_npz_nan_is_reported_by_load(tmp_path):
    x = np.ones((20, 3))
    x[4, 1] = np.nan
    np.savez(tmp_path / "holes.npz", x=x, y=np.arange(20) % 2)
    with pytest.raises(
        ValueError,
        match=r"argument name \('.*holes\.npz'\), expected only finite values in x\. Found 1 "
        r"NaN and 0 infinite value\(s\); the first is x\[4, 1\]=nan",
    ):
        datasets.load(tmp_path / "holes.npz")


def test_csv_errors(tmp_path):
    path = write_csv(tmp_path / "t.csv", "a,b", ["1,0", "2,1", "abc,0"])
    with pytest.raises(ValueError, match=r"expected numbers in feature column 'a' of"):
        datasets.load(path)
    path = write_csv(tmp_path / "t.csv", "a,b", ["1,0", "2,1,3"])
    with pytest.raises(ValueError, match=r"expected 2 columns .*Received: 3 columns in row 3"):
        datasets.load(path)
    path = write_csv(tmp_path / "t.csv", "a,b", ["1,0", "2,1"])
    with pytest.raises(
        ValueError, match=r"argument target, expected a column name in \['a', 'b'\]"
    ):
        datasets.load(path, target="c")
    with pytest.raises(ValueError, match=r"argument target, expected a column index in \[-2, 2\)"):
        datasets.load(path, target=2)
    path = write_csv(tmp_path / "t.csv", "a,b", ["1,0", ",1"] * 5)
    with pytest.raises(ValueError, match=r"Found 5 NaN and 0 infinite value\(s\); the first is x"):
        datasets.load(path)


def test_explicit_task_incompatible_with_labels(tmp_path):
    x = np.zeros((30, 2))
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 3)
    with pytest.raises(ValueError, match=r"expected at most 2 distinct labels for task='binary'"):
        datasets.load(tmp_path / "d.npz", task="binary")
    np.savez(tmp_path / "d.npz", x=x, y=np.linspace(0, 1, 30))
    with pytest.raises(ValueError, match=r"expected integer or string labels for task='binary'"):
        datasets.load(tmp_path / "d.npz", task="binary")
    np.savez(tmp_path / "d.npz", x=x, y=np.array(["a", "b", "c"] * 10))
    with pytest.raises(ValueError, match=r"expected numeric targets for task='regression'"):
        datasets.load(tmp_path / "d.npz", task="regression")
