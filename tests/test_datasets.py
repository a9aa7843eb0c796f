"""Tests for kerasnn.datasets."""

import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasnn import datasets
from kerasnn.datasets import Dataset, DatasetDownloadError, Standardizer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# name, load kwargs, task, num_classes, input_shape, total number of samples
TABLE = [
    ("digits", {}, "classification", 10, (64,), 1797),
    ("digits", {"view": "image"}, "classification", 10, (8, 8, 1), 1797),
    ("breast_cancer", {}, "binary", 2, (30,), 569),
    ("diabetes", {}, "regression", None, (10,), 442),
    ("wine", {}, "classification", 3, (13,), 178),
    ("iris", {}, "classification", 3, (4,), 150),
    ("spirals", {}, "classification", 3, (2,), 300),
    ("spirals", {"n_samples": 50, "noise": 0.0}, "classification", 3, (2,), 150),
    ("xor", {}, "binary", 2, (2,), 400),
    ("xor", {"n_samples": 100, "noise": 0.1}, "binary", 2, (2,), 100),
]
TABLE_IDS = [f"{name}-{'-'.join(map(str, kw.values())) or 'default'}" for name, kw, *_ in TABLE]
LABELLED = [row for row in TABLE if row[2] != "regression"]
LABELLED_IDS = [i for i, row in zip(TABLE_IDS, TABLE, strict=True) if row[2] != "regression"]


def assert_same(a: Dataset, b: Dataset) -> None:
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


# ---------------------------------------------------------------------------------------------
# Known datasets.


@pytest.mark.parametrize("test_size", [0.2, 0.3])
@pytest.mark.parametrize(
    ("name", "kwargs", "task", "num_classes", "input_shape", "total"), TABLE, ids=TABLE_IDS
)
def test_known_dataset_metadata_and_sizes(
    name, kwargs, task, num_classes, input_shape, total, test_size
):
    data = datasets.load(name, test_size=test_size, seed=0, **kwargs)
    assert data.name == name
    assert data.task == task
    assert data.num_classes == num_classes
    assert data.input_shape == input_shape
    n_test = math.ceil(test_size * total)  # sklearn's train_test_split rounds the test part up
    assert data.x_train.shape == (total - n_test, *input_shape)
    assert data.x_test.shape == (n_test, *input_shape)
    assert data.y_train.shape == (total - n_test,)
    assert data.y_test.shape == (n_test,)
    assert data.x_train.dtype == data.x_test.dtype == np.float32
    expected_y = np.float32 if task == "regression" else np.int32
    assert data.y_train.dtype == data.y_test.dtype == expected_y
    assert data.output_units == {"classification": num_classes, "binary": 1, "regression": 1}[task]
    if num_classes is not None:
        labels = np.concatenate([data.y_train, data.y_test])
        np.testing.assert_array_equal(np.unique(labels), np.arange(num_classes))
    assert data.summary().startswith(f"{name}: {task}, ")
    assert str(input_shape) in data.summary()


@pytest.mark.parametrize(
    ("name", "kwargs", "task", "num_classes", "input_shape", "total"),
    LABELLED,
    ids=LABELLED_IDS,
)
def test_known_dataset_split_is_stratified(name, kwargs, task, num_classes, input_shape, total):
    data = datasets.load(name, seed=3, **kwargs)
    labels = np.concatenate([data.y_train, data.y_test])
    for part in (data.y_train, data.y_test):
        expected = np.bincount(labels, minlength=num_classes) / len(labels) * len(part)
        np.testing.assert_array_less(
            np.abs(np.bincount(part, minlength=num_classes) - expected), 1.0 + 1e-9
        )


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize(("name", "kwargs"), [row[:2] for row in TABLE], ids=TABLE_IDS)
def test_known_dataset_seed_is_deterministic(name, kwargs, seed):
    first = datasets.load(name, seed=seed, **kwargs)
    assert_same(first, datasets.load(name, seed=seed, **kwargs))
    other = datasets.load(name, seed=seed + 1, **kwargs)
    assert not np.array_equal(first.x_train, other.x_train)


def test_class_and_feature_names_come_from_sklearn():
    iris = datasets.load("iris")
    assert iris.class_names == ("setosa", "versicolor", "virginica")
    assert iris.feature_names[0] == "sepal length (cm)"
    assert datasets.load("breast_cancer").class_names == ("malignant", "benign")
    assert datasets.load("diabetes").class_names is None
    assert datasets.load("digits").class_names == tuple("0123456789")


def test_spirals_match_cs231n_reference():
    n, noise, seed = 40, 0.3, 5
    rng = np.random.default_rng(seed)
    reference = np.zeros((n * 3, 2))
    for k in range(3):
        r = np.linspace(0.0, 1, n)
        t = np.linspace(k * 4, (k + 1) * 4, n) + rng.standard_normal(n) * noise
        reference[n * k : n * (k + 1)] = np.c_[r * np.sin(t), r * np.cos(t)]
    data = datasets.load("spirals", n_samples=n, noise=noise, seed=seed, standardize=False)
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    order = np.lexsort(x.T)
    ref_order = np.lexsort(reference.astype(np.float32).T)
    np.testing.assert_allclose(x[order], reference[ref_order], atol=1e-6)
    np.testing.assert_array_equal(y[order], np.repeat(np.arange(3), n)[ref_order])


def test_xor_labels_follow_quadrants():
    data = datasets.load("xor", n_samples=200, standardize=False)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert np.all((x >= -1) & (x <= 1))
        np.testing.assert_array_equal(y, (x[:, 0] > 0) ^ (x[:, 1] > 0))


def test_n_samples_subsamples_training_split_stratified():
    full = datasets.load("digits", seed=0)
    small = datasets.load("digits", seed=0, n_samples=500)
    assert small.x_train.shape == (500, 64)
    np.testing.assert_array_equal(small.y_test, full.y_test)
    expected = np.bincount(full.y_train) / len(full.y_train) * 500
    np.testing.assert_array_less(np.abs(np.bincount(small.y_train) - expected), 1.0 + 1e-9)


# ---------------------------------------------------------------------------------------------
# Standardization.


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "diabetes", "wine", "iris", "xor"])
def test_per_feature_standardizer_is_fitted_on_train_only(name):
    raw = datasets.load(name, seed=1, standardize=False)
    data = datasets.load(name, seed=1)
    assert raw.standardizer is None
    assert data.standardizer.per_feature
    raw_train = raw.x_train.astype(np.float64)
    varying = raw_train.std(axis=0) > 0
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0)[varying], 1.0, atol=1e-4)
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    expected_test = (raw.x_test - mean) / np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(data.x_test, expected_test, rtol=1e-5, atol=1e-5)


def test_image_view_uses_global_standardizer():
    raw = datasets.load("digits", view="image", standardize=False)
    data = datasets.load("digits", view="image")
    assert data.standardizer.mean.shape == ()
    assert not data.standardizer.per_feature
    assert raw.x_train.min() == 0.0 and raw.x_train.max() == 1.0  # pixels scaled to [0, 1]
    assert abs(data.x_train.mean()) < 1e-5 and abs(data.x_train.std() - 1) < 1e-5
    mean, std = raw.x_train.astype(np.float64).mean(), raw.x_train.astype(np.float64).std()
    np.testing.assert_allclose(data.x_test, (raw.x_test - mean) / std, rtol=1e-5, atol=1e-5)


def test_standardizer_fit_replaces_zero_std():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    standardizer = Standardizer.fit(x)
    np.testing.assert_array_equal(standardizer.mean, [2.0, 5.0])
    np.testing.assert_array_equal(standardizer.std, [1.0, 1.0])
    assert standardizer.mean.dtype == standardizer.std.dtype == np.float32
    np.testing.assert_array_equal(standardizer.transform(x), [[-1.0, 0.0], [1.0, 0.0]])


STANDARDIZER_CASES = [
    ("flat-per-feature", (50, 64), True),
    ("flat-global", (50, 64), False),
    ("image-per-feature", (50, 8, 8, 1), True),
    ("image-global", (50, 8, 8, 1), False),
]


@pytest.mark.parametrize(
    ("shape", "per_feature"),
    [case[1:] for case in STANDARDIZER_CASES],
    ids=[case[0] for case in STANDARDIZER_CASES],
)
def test_standardizer_round_trips(shape, per_feature):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=shape)
    standardizer = Standardizer.fit(x, per_feature=per_feature)
    assert standardizer.mean.shape == (shape[1:] if per_feature else ())
    np.testing.assert_allclose(
        standardizer.inverse_transform(standardizer.transform(x)), x, rtol=1e-6, atol=1e-5
    )
    config = json.loads(json.dumps(standardizer.get_config()))
    restored = Standardizer.from_config(config)
    np.testing.assert_array_equal(restored.mean, standardizer.mean)
    np.testing.assert_array_equal(restored.std, standardizer.std)


@pytest.mark.parametrize(
    ("shape", "per_feature"),
    [case[1:] for case in STANDARDIZER_CASES],
    ids=[case[0] for case in STANDARDIZER_CASES],
)
def test_standardizer_as_layer_matches_transform(shape, per_feature):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=shape).astype(np.float32)
    x[:, 0] = 4.0  # constant feature: std replaced by 1.0
    standardizer = Standardizer.fit(x, per_feature=per_feature)
    layer = standardizer.as_layer()
    np.testing.assert_allclose(np.asarray(layer(x)), standardizer.transform(x), atol=1e-6)


@pytest.mark.parametrize("view", ["flat", "image"])
def test_dataset_standardizer_as_layer_matches_transform(view):
    raw = datasets.load("digits", view=view, standardize=False)
    data = datasets.load("digits", view=view)
    layer = data.standardizer.as_layer(name="standardize")
    assert layer.name == "standardize"
    np.testing.assert_allclose(np.asarray(layer(raw.x_test)), data.x_test, atol=1e-6)


def test_standardizer_errors():
    with pytest.raises(ValueError, match=r"argument std, expected the same shape as mean"):
        Standardizer(mean=np.zeros(3), std=np.ones(2))
    with pytest.raises(
        ValueError,
        match=r"argument std, expected finite values >= 1e-07\. "
        r"Received: std=\[1\.0, 0\.0\]",
    ):
        Standardizer(mean=np.zeros(2), std=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"argument x, expected .*Received: x.shape=\(5,\)"):
        Standardizer.fit(np.zeros(5))
    standardizer = Standardizer.fit(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"trailing dimensions \(3,\).*Received: x.shape=\(4, 2\)"):
        standardizer.transform(np.ones((4, 2)))


# ---------------------------------------------------------------------------------------------
# User files.


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


def test_unknown_name_lists_known_names():
    with pytest.raises(
        ValueError,
        match=r"argument name, expected one of the known datasets \('digits', 'breast_cancer'"
        r".*'fashion_mnist'\) or a path to a \.npz or \.csv file\. Received: name='cifar'",
    ):
        datasets.load("cifar")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"name": "digits", "view": "square"},
            r"argument view, expected one of 'flat', 'image'\. Received: view='square'",
        ),
        (
            {"name": "iris", "view": "image"},
            r"view='image' is only available for the image datasets \('digits', 'mnist', "
            r"'fashion_mnist'\)\. Received: view='image' for name='iris'",
        ),
        (
            {"name": "iris", "test_size": 1.5},
            r"argument test_size, expected a float in \(0, 1\)\. Received: test_size=1\.5",
        ),
        ({"name": "iris", "test_size": 0}, r"Received: test_size=0$"),
        ({"name": "iris", "test_size": True}, r"Received: test_size=True"),
        ({"name": "iris", "seed": -1}, r"argument seed, expected an integer in \[0, 2\*\*32\)"),
        ({"name": "iris", "seed": 1.5}, r"Received: seed=1\.5"),
        (
            {"name": "spirals", "n_samples": 0},
            r"argument n_samples, expected a positive integer\. Received: n_samples=0",
        ),
        (
            {"name": "xor", "noise": -0.1},
            r"argument noise, expected a number >= 0\. Received: noise=-0\.1",
        ),
        (
            {"name": "digits", "noise": 0.1},
            r"argument noise: it only applies to the synthetic datasets \('spirals', 'xor'\)\. "
            r"Received: noise=0\.1 for name='digits'",
        ),
        ({"name": "iris", "target": "x"}, r"argument target: it only applies to \.csv files"),
        (
            {"name": "iris", "task": "regression"},
            r"argument task: 'iris' is a classification dataset and task cannot change that\. "
            r"Received: task='regression'",
        ),
        (
            {"name": "iris", "task": "ranking"},
            r"argument task, expected one of 'binary', 'classification', 'regression'\. "
            r"Received: task='ranking'",
        ),
        (
            {"name": "iris", "n_samples": 1000},
            r"argument n_samples, expected at most the 120 training samples of 'iris'\. "
            r"Received: n_samples=1000",
        ),
    ],
)
def test_load_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.load(**kwargs)


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


# ---------------------------------------------------------------------------------------------
# validate_arrays.


def test_validate_arrays_accepts_good_data():
    x = np.zeros((4, 3), dtype=np.float32)
    datasets.validate_arrays(x, [0, 1, 2, 1], task="classification", num_classes=3)
    datasets.validate_arrays(x, [0.0, 1.0, 1.0, 0.0], task="binary", num_classes=None)
    datasets.validate_arrays(x, np.ones((4, 2)), task="regression", num_classes=None)


@pytest.mark.parametrize(
    ("x", "y", "task", "num_classes", "match"),
    [
        (
            np.zeros((3, 2)),
            np.zeros(4),
            "regression",
            None,
            r"argument train, expected x and y with the same number of samples\. "
            r"Received: x.shape=\(3, 2\), y.shape=\(4,\)",
        ),
        (np.zeros((0, 2)), np.zeros(0), "regression", None, r"expected at least one sample"),
        (
            np.array([[0.0, np.nan], [np.nan, 1.0], [0.0, 0.0]]),
            np.zeros(3),
            "regression",
            None,
            r"argument train, expected only finite values in x\. Found 2 NaN and 0 infinite "
            r"value\(s\); the first is x\[0, 1\]=nan",
        ),
        (
            np.zeros((3, 2)),
            np.array([1.0, np.inf, -np.inf]),
            "regression",
            None,
            r"expected only finite values in y\. Found 0 NaN and 2 infinite value\(s\); the "
            r"first is y\[1\]=inf",
        ),
        (
            np.zeros((3, 2)),
            np.array([0, 5, 1]),
            "classification",
            3,
            r"argument train, expected labels in \[0, 3\) for task='classification' with "
            r"num_classes=3\. Received: labels with min=0, max=5",
        ),
        (
            np.zeros((3, 2)),
            np.array([-1, 0, 1]),
            "binary",
            2,
            r"expected labels in \[0, 2\) .*Received: labels with min=-1, max=1",
        ),
        (
            np.zeros((3, 2)),
            np.array([0.0, 0.5, 1.0]),
            "binary",
            2,
            r"expected integer labels for task='binary'\. Received: y\[1\]=0\.5",
        ),
        (
            np.zeros((3, 2)),
            np.zeros((3, 4)),
            "classification",
            4,
            r"expected integer labels of shape \(n,\) .*Received: y.shape=\(3, 4\)",
        ),
        (
            np.array([["a"], ["b"]]),
            np.zeros(2),
            "regression",
            None,
            r"expected numeric x\. Received: x.dtype=<U1",
        ),
        (
            np.zeros((2, 2)),
            np.zeros(2),
            "classification",
            None,
            r"argument num_classes, expected a positive integer for task='classification'",
        ),
        (np.zeros((2, 2)), np.zeros(2), "ranking", None, r"Received: task='ranking'"),
    ],
)
def test_validate_arrays_errors(x, y, task, num_classes, match):
    with pytest.raises(ValueError, match=match):
        datasets.validate_arrays(x, y, task=task, num_classes=num_classes, argument="train")


def test_split_is_seeded_and_stratified():
    x = np.arange(100).reshape(50, 2)
    y = np.array([0] * 40 + [1] * 10)
    first = datasets.split(x, y, test_size=0.2, seed=0, stratify=True)
    second = datasets.split(x, y, test_size=0.2, seed=0, stratify=True)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.bincount(first[3]), [8, 2])
    other = datasets.split(x, y, test_size=0.2, seed=1, stratify=True)
    assert not np.array_equal(first[1], other[1])
    with pytest.raises(ValueError, match=r"Received: test_size=-0\.1"):
        datasets.split(x, y, test_size=-0.1, seed=0, stratify=False)


def test_dataset_rejects_unknown_task():
    with pytest.raises(ValueError, match=r"Received: task='ranking'"):
        Dataset(
            "d",
            *(np.zeros((2, 1)),) * 4,
            task="ranking",
            num_classes=None,
            input_shape=(1,),
            standardizer=None,
        )


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST. `keras.datasets.*.load_data` is replaced in-process; the real Keras
# cache is only exercised in a subprocess with its own KERAS_HOME (Keras reads it at import).


def fake_mnist(n_train: int = 60, n_test: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    return (x_train, y_train), (x_test, y_test)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize(("view", "input_shape"), [("flat", (784,)), ("image", (28, 28, 1))])
def test_keras_dataset_from_fake_load_data(monkeypatch, name, view, input_shape):
    keras = pytest.importorskip("keras")
    _, (x_test, y_test) = fake_mnist()
    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", fake_mnist)
    data = datasets.load(name, view=view, test_size=0.5, standardize=False)
    assert (data.task, data.num_classes, data.input_shape) == ("classification", 10, input_shape)
    assert data.x_train.shape == (60, *input_shape)  # own split: test_size is ignored
    np.testing.assert_allclose(data.x_test.reshape(20, 28, 28), x_test / 255.0, atol=1e-7)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert len(data.class_names) == 10
    standardized = datasets.load(name, view=view, n_samples=30, seed=2)
    assert standardized.standardizer.mean.shape == ()
    assert standardized.x_train.shape == (30, *input_shape)
    np.testing.assert_array_equal(np.bincount(standardized.y_train), [3] * 10)


def test_keras_download_failure_is_explained(monkeypatch, tmp_path):
    keras = pytest.importorskip("keras")

    def offline():
        raise Exception("URL fetch failure on https://example/mnist.npz: None -- no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), "datasets", "mnist.npz")
    with pytest.raises(DatasetDownloadError, match=r"Could not load the 'mnist' dataset") as info:
        datasets.load("mnist")
    message = str(info.value)
    assert isinstance(info.value, OSError)
    assert f"Keras looks for {expected} " in message
    assert "place the file(s) there by hand" in message
    assert "SHA-256" in message
    assert "URL fetch failure" in message


CACHE_SCRIPT = textwrap.dedent(
    """
    import gzip, json, os, time
    import numpy as np
    from kerasnn import datasets

    cache = os.path.join(os.environ["KERAS_HOME"], "datasets")
    results = {}

    def attempt(key, **kwargs):
        start = time.monotonic()
        try:
            data = datasets.load(**kwargs)
            results[key] = {"ok": True, "summary": data.summary(),
                            "class_names": list(data.class_names)}
        except Exception as err:
            results[key] = {"ok": False, "type": type(err).__name__,
                            "oserror": isinstance(err, OSError), "message": str(err)}
        results[key]["seconds"] = time.monotonic() - start

    attempt("empty", name="mnist")

    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
              "t10k": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)}
    labels = {"train": np.arange(60, dtype=np.uint8) % 10,
              "t10k": np.arange(20, dtype=np.uint8) % 10}
    os.makedirs(cache, exist_ok=True)
    np.savez(os.path.join(cache, "mnist.npz"), x_train=images["train"], y_train=labels["train"],
             x_test=images["t10k"], y_test=labels["t10k"])
    attempt("mnist_fake", name="mnist")

    os.makedirs(os.path.join(cache, "fashion-mnist"))
    for part in ("train", "t10k"):
        for kind, header, array in (("labels-idx1", 8, labels[part]),
                                    ("images-idx3", 16, images[part])):
            path = os.path.join(cache, "fashion-mnist", f"{part}-{kind}-ubyte.gz")
            with gzip.open(path, "wb") as f:
                f.write(bytes(header) + array.tobytes())
    attempt("fashion_cached", name="fashion_mnist", view="image", n_samples=30)
    print("RESULTS" + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def keras_cache_results(tmp_path_factory):
    """Runs CACHE_SCRIPT offline against an empty, temporary Keras cache."""
    home = tmp_path_factory.mktemp("keras_home")
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    unreachable = "http://127.0.0.1:9"  # fails at once, so no request can leave the machine
    env.update(
        KERAS_HOME=str(home),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        TF_CPP_MIN_LOG_LEVEL="3",
        http_proxy=unreachable,
        https_proxy=unreachable,
        HTTP_PROXY=unreachable,
        HTTPS_PROXY=unreachable,
    )
    proc = subprocess.run(
        [sys.executable, "-c", CACHE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return home, json.loads(lines[-1].removeprefix("RESULTS"))


@pytest.mark.slow
def test_mnist_offline_with_empty_cache_fails_fast_and_clearly(keras_cache_results):
    home, results = keras_cache_results
    result = results["empty"]
    assert not result["ok"]
    assert result["type"] == "DatasetDownloadError" and result["oserror"]
    assert result["seconds"] < 30
    path = os.path.join(str(home), "datasets", "mnist.npz")
    assert f"Keras looks for {path} " in result["message"]
    assert "it is not in the Keras cache and could not be downloaded" in result["message"]
    assert (
        "$KERAS_HOME/datasets when KERAS_HOME is set, else ~/.keras/datasets" in (result["message"])
    )
    assert "place the file(s) there by hand" in result["message"]


@pytest.mark.slow
def test_mnist_cached_file_with_wrong_hash_is_rejected_by_keras(keras_cache_results):
    # Keras pins the SHA-256 of mnist.npz: a hand-made file is treated as corrupt and
    # re-downloaded, which fails offline. Only the official file can be placed by hand.
    _, results = keras_cache_results
    result = results["mnist_fake"]
    assert not result["ok"] and result["type"] == "DatasetDownloadError"
    assert "SHA-256" in result["message"]


@pytest.mark.slow
def test_fashion_mnist_loads_from_keras_cache(keras_cache_results):
    # Fashion-MNIST files are not hash-checked by Keras, so the cached fake files are used.
    _, results = keras_cache_results
    result = results["fashion_cached"]
    assert result["ok"], result.get("message")
    assert result["summary"] == (
        "fashion_mnist: classification, 10 classes, x_train (30, 28, 28, 1), "
        "x_test (20, 28, 28, 1), input_shape (28, 28, 1)"
    )
    assert result["class_names"][9] == "Ankle boot"
