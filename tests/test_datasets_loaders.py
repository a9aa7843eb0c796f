"""Tests for kerasnn.datasets.load: the built-in datasets, argument errors, keras.datasets."""

import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import run_python

from kerasnn import datasets
from kerasnn.datasets import Dataset, DatasetDownloadError

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
# Import.


def test_import_loads_numpy_only():
    # scikit-learn and Keras are imported by the loaders that need them, not by the package.
    code = (
        "import sys\n"
        "import kerasnn.datasets\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'sklearn') if m in sys.modules]\n"
        "print('heavy', heavy)\n"
    )
    assert run_python(code).splitlines()[-1] == "heavy []"


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
    import keras

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
    import keras

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
