"""Tests for kerasnn.datasets.Dataset, validate_arrays() and split()."""

import numpy as np
import pytest

from kerasnn import datasets
from kerasnn.datasets import Dataset


@pytest.mark.parametrize(
    ("y", "task", "num_classes"),
    [
        ([0, 1, 2, 1], "classification", 3),
        ([0.0, 1.0, 1.0, 0.0], "binary", None),
        (np.ones((4, 2)), "regression", None),
    ],
    ids=["classification", "binary-float-labels", "regression-2-targets"],
)
def test_validate_arrays_accepts_good_data(y, task, num_classes):
    x = np.zeros((4, 3), dtype=np.float32)
    y_before = y.copy()
    assert datasets.validate_arrays(x, y, task=task, num_classes=num_classes) is None
    # Checking leaves the arrays as they were.
    np.testing.assert_array_equal(x, np.zeros((4, 3), dtype=np.float32))
    np.testing.assert_array_equal(y, y_before)


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
