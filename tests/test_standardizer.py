"""Tests for kerasnn.datasets.Standardizer and the standardization `load()` applies."""

import json

import numpy as np
import pytest

from kerasnn import datasets
from kerasnn.datasets import Standardizer


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
