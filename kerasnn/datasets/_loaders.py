"""`load(name)`: the built-in datasets (scikit-learn, synthetic, `keras.datasets`) and files.

`load()` checks its arguments, reads the source (`_load_sklearn`, `_make_synthetic`,
`_load_keras`, or `kerasnn.datasets._files.load_file` for a path), then validates, splits,
subsamples and standardizes the arrays into a `Dataset`. scikit-learn and Keras are imported
inside the functions that need them, so importing this module loads NumPy only.
"""

from __future__ import annotations

import os

import numpy as np

from kerasnn import _validation
from kerasnn.datasets._dataset import (
    Dataset,
    Raw,
    Task,
    check_seed,
    check_task,
    split,
    validate_arrays,
)
from kerasnn.datasets._files import FILE_SUFFIXES, load_file
from kerasnn.datasets._standardizer import Standardizer

__all__ = ["IMAGE_DATASETS", "KNOWN", "VIEWS", "DatasetDownloadError", "load"]

KNOWN = (
    "digits",
    "breast_cancer",
    "diabetes",
    "wine",
    "iris",
    "spirals",
    "xor",
    "mnist",
    "fashion_mnist",
)
VIEWS = ("flat", "image")

_SKLEARN = ("digits", "breast_cancer", "diabetes", "wine", "iris")
_SYNTHETIC = ("spirals", "xor")
_KERAS = ("mnist", "fashion_mnist")
_IMAGE = ("digits", "mnist", "fashion_mnist")
IMAGE_DATASETS = _IMAGE  # the names with an image view (view="image")
_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# Files `keras.datasets.<name>.load_data()` keeps in `<cache dir>/datasets/`.
_KERAS_FILES = {
    "mnist": ("mnist.npz",),
    "fashion_mnist": (
        "fashion-mnist/train-labels-idx1-ubyte.gz",
        "fashion-mnist/train-images-idx3-ubyte.gz",
        "fashion-mnist/t10k-labels-idx1-ubyte.gz",
        "fashion-mnist/t10k-images-idx3-ubyte.gz",
    ),
}
_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_DIGIT_CLASSES = tuple(str(i) for i in range(10))


class DatasetDownloadError(OSError):
    """Raised when a Keras dataset is neither cached nor downloadable."""


def load(
    name: str | os.PathLike,
    *,
    test_size: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    view: str = "flat",
    n_samples: int | None = None,
    noise: float | None = None,
    target: str | int | None = None,
    task: Task | None = None,
) -> Dataset:
    """Loads a dataset, splits it and standardizes its features.

    Known names (`KNOWN`):

    - `"digits"`, `"breast_cancer"` (binary), `"diabetes"` (regression), `"wine"`, `"iris"`:
      the scikit-learn toy datasets. Digits pixels are scaled to [0, 1].
    - `"spirals"`: the CS231n three-class spiral, `n_samples` points per class (default 100),
      angle noise `noise` (default 0.2).
    - `"xor"`: binary, `n_samples` points (default 400) uniform in [-1, 1]^2, label
      `(x0 > 0) xor (x1 > 0)`, plus Gaussian noise of std `noise` (default 0) on the points.
    - `"mnist"`, `"fashion_mnist"`: via `keras.datasets`, pixels scaled to [0, 1]. They keep
      their own train/test split, so `test_size` is ignored. Keras caches the downloaded files
      in `$KERAS_HOME/datasets/` (default `~/.keras/datasets/`).

    A path ending in `.npz` must hold `x_train, y_train, x_test, y_test` (used as is) or `x, y`
    (split with `test_size`/`seed`). A `.csv` file needs a header row; the `target` column holds
    the labels/targets and every other column is a float feature. String labels and integer
    labels other than `0..C-1` are encoded with `np.unique` and kept in `class_names`.

    Splits are stratified for classification/binary. Features are standardized with a
    `Standardizer` fitted on the training split: per feature for tabular data and the flat
    digits view, one global mean/std for image views and (M)NIST.

    Args:
        name: A name in `KNOWN` or a path to a `.npz`/`.csv` file.
        test_size: Fraction of samples in the test split, in (0, 1). Defaults to 0.2.
        seed: Seed for the split, the synthetic data and subsampling. Defaults to 0.
        standardize: Whether to standardize the features. Defaults to `True`.
        view: `"flat"` (vectors; tabular data as stored) or `"image"` (`(H, W, 1)`, only for
            `"digits"`, `"mnist"`, `"fashion_mnist"`). Defaults to `"flat"`.
        n_samples: For `"spirals"` points per class, for `"xor"` total points; otherwise keep a
            (stratified for classification) random subset of this many training samples.
            Defaults to `None` (dataset default / all samples).
        noise: Noise level for `"spirals"` and `"xor"` only. Defaults to `None` (their
            default).
        target: For `.csv` files, the target column name or index. Defaults to `None` (last
            column).
        task: For `.npz`/`.csv` files, the task; inferred from the targets when `None`.
            Integer-valued targets with at most 2 values are binary, integer (or string)
            labels with at most 50 values classification, anything else regression. For known
            names it may only repeat the dataset's own task. Defaults to `None`.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: For an unknown name, an argument outside its allowed values or not
            applicable to the dataset, or invalid data (see `validate_arrays()`).
        FileNotFoundError: If a `.npz`/`.csv` path does not exist.
        DatasetDownloadError: If `"mnist"`/`"fashion_mnist"` is neither cached nor
            downloadable.

    Example:

    >>> data = load("digits", view="image", seed=0)
    >>> data.input_shape, data.num_classes
    ((8, 8, 1), 10)
    """
    _validation.fraction("test_size", test_size)
    check_seed(seed)
    _validation.one_of("view", view, VIEWS)
    if n_samples is not None:
        _validation.positive_int("n_samples", n_samples)
    if noise is not None:
        _validation.non_negative_float("noise", noise)
    if task is not None:
        check_task(task)

    is_path = isinstance(name, os.PathLike) or (
        isinstance(name, str) and name.lower().endswith(FILE_SUFFIXES)
    )
    if not is_path and name not in KNOWN:
        raise ValueError(
            f"Received an invalid value for argument name, expected one of the known datasets "
            f"{KNOWN} or a path to a .npz or .csv file. Received: name={name!r}"
        )
    label = os.fspath(name)
    if view == "image" and label not in _IMAGE:
        raise ValueError(
            f"Received an invalid value for argument view: view='image' is only available for "
            f"the image datasets {_IMAGE}. Received: view={view!r} for name={label!r}"
        )
    if noise is not None and label not in _SYNTHETIC:
        raise ValueError(
            f"Received an invalid value for argument noise: it only applies to the synthetic "
            f"datasets {_SYNTHETIC}. Received: noise={noise!r} for name={label!r}"
        )
    if target is not None and not label.lower().endswith(".csv"):
        raise ValueError(
            f"Received an invalid value for argument target: it only applies to .csv files. "
            f"Received: target={target!r} for name={label!r}"
        )

    if is_path:
        raw = load_file(name, target=target, task=task)
    elif name in _SKLEARN:
        raw = _load_sklearn(name, view=view)
    elif name in _SYNTHETIC:
        raw = _make_synthetic(name, n_samples=n_samples, noise=noise, seed=seed)
    else:
        raw = _load_keras(name, view=view)

    if task is not None and task != raw.task:
        raise ValueError(
            f"Received an invalid value for argument task: {label!r} is a {raw.task} dataset "
            f"and task cannot change that. Received: task={task!r}"
        )
    stratify = raw.task != "regression"
    if raw.x_test is None:
        validate_arrays(
            raw.x, raw.y, task=raw.task, num_classes=raw.num_classes, argument=f"name ({label!r})"
        )
        x_train, x_test, y_train, y_test = split(
            raw.x, raw.y, test_size=test_size, seed=seed, stratify=stratify
        )
    else:
        x_train, y_train, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
        for part, x_part, y_part in (("train", x_train, y_train), ("test", x_test, y_test)):
            validate_arrays(
                x_part,
                y_part,
                task=raw.task,
                num_classes=raw.num_classes,
                argument=f"name ({label!r}, {part} split)",
            )
    if n_samples is not None and name not in _SYNTHETIC:
        x_train, y_train = _subsample(x_train, y_train, n_samples, seed, stratify, label)

    standardizer = None
    if standardize:
        standardizer = Standardizer.fit(x_train, per_feature=raw.per_feature)
        x_train = standardizer.transform(x_train)
        x_test = standardizer.transform(x_test)

    return Dataset(
        name=raw.name,
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=y_test,
        task=raw.task,
        num_classes=raw.num_classes,
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        standardizer=standardizer,
        class_names=raw.class_names,
        feature_names=raw.feature_names,
        source_shape=raw.source_shape or tuple(int(d) for d in x_train.shape[1:]),
        source_scale=raw.source_scale,
    )


# ---------------------------------------------------------------------------------------------
# Internals.


def _subsample(
    x: np.ndarray, y: np.ndarray, n_samples: int, seed: int, stratify: bool, label: str
) -> tuple[np.ndarray, np.ndarray]:
    if n_samples > len(x):
        raise ValueError(
            f"Received an invalid value for argument n_samples, expected at most the {len(x)} "
            f"training samples of {label!r}. Received: n_samples={n_samples}"
        )
    if n_samples == len(x):
        return x, y
    from sklearn.model_selection import train_test_split

    x_keep, _, y_keep, _ = train_test_split(
        x, y, train_size=n_samples, random_state=seed, stratify=y if stratify else None
    )
    return x_keep, y_keep


def _load_sklearn(name: str, *, view: str) -> Raw:
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{name}")()
    feature_names = tuple(str(f) for f in bunch.feature_names)
    if name == "diabetes":
        return Raw(
            name=name,
            x=bunch.data.astype(np.float32),
            y=bunch.target.astype(np.float32),
            task="regression",
            num_classes=None,
            feature_names=feature_names,
        )
    class_names = tuple(str(c) for c in bunch.target_names)
    per_feature = True
    x = bunch.data.astype(np.float32)
    source_scale = 1.0
    if name == "digits":
        source_scale = 1.0 / 16.0
        x = x * np.float32(source_scale)
        if view == "image":
            x = x.reshape(-1, 8, 8, 1)
            per_feature = False
            feature_names = None
    task: Task = "binary" if len(class_names) == 2 else "classification"
    return Raw(
        name=name,
        x=x,
        y=bunch.target.astype(np.int32),
        task=task,
        num_classes=len(class_names),
        per_feature=per_feature,
        class_names=class_names,
        feature_names=feature_names,
        source_shape=tuple(bunch.data.shape[1:]),
        source_scale=source_scale,
    )


def _make_synthetic(name: str, *, n_samples: int | None, noise: float | None, seed: int) -> Raw:
    rng = np.random.default_rng(seed)
    if name == "spirals":
        # CS231n "Putting it together: minimal neural network case study".
        per_class = 100 if n_samples is None else n_samples
        noise = 0.2 if noise is None else noise
        num_classes = 3
        xs, ys = [], []
        for k in range(num_classes):
            r = np.linspace(0.0, 1.0, per_class)
            t = np.linspace(k * 4, (k + 1) * 4, per_class) + rng.standard_normal(per_class) * noise
            xs.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
            ys.append(np.full(per_class, k))
        x, y = np.concatenate(xs), np.concatenate(ys)
        task: Task = "classification"
    else:
        total = 400 if n_samples is None else n_samples
        noise = 0.0 if noise is None else noise
        num_classes = 2
        x = rng.uniform(-1.0, 1.0, size=(total, 2))
        y = np.logical_xor(x[:, 0] > 0, x[:, 1] > 0)
        x = x + rng.normal(0.0, noise, size=x.shape)
        task = "binary"
    return Raw(
        name=name,
        x=x.astype(np.float32),
        y=y.astype(np.int32),
        task=task,
        num_classes=num_classes,
        feature_names=("x0", "x1"),
    )


def _keras_cache_dir() -> str:
    # The default `cache_dir` documented by `keras.utils.get_file`: `$KERAS_HOME` if set,
    # else `~/.keras`; datasets go in its `datasets/` subdirectory.
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return os.path.join(os.path.expanduser(home), "datasets")


def _download_error(name: str, err: Exception) -> DatasetDownloadError:
    cache_dir = _keras_cache_dir()
    paths = [os.path.join(cache_dir, f) for f in _KERAS_FILES[name]]
    urls = [_KERAS_ORIGIN + os.path.basename(f) for f in _KERAS_FILES[name]]
    hash_note = ""
    if name == "mnist":
        hash_note = (
            " Keras checks mnist.npz against its published SHA-256 hash and discards a copy "
            "that does not match, so it must be the original file."
        )
    return DatasetDownloadError(
        f"Could not load the {name!r} dataset: it is not in the Keras cache and could not be "
        f"downloaded. Keras looks for {', '.join(paths)} (the cache directory is "
        "$KERAS_HOME/datasets when KERAS_HOME is set, else ~/.keras/datasets). Without "
        f"internet access, download {', '.join(urls)} elsewhere and place the file(s) there by "
        f"hand.{hash_note} Original error: {type(err).__name__}: {err}"
    )


def _load_keras(name: str, *, view: str) -> Raw:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # Keras raises a bare `Exception` on URL fetch failure.
        raise _download_error(name, err) from err

    scale = 1.0 / 255.0

    def prepare(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32) * np.float32(scale)
        return x.reshape(len(x), -1) if view == "flat" else x[..., np.newaxis]

    return Raw(
        name=name,
        x=prepare(x_train),
        y=np.asarray(y_train, dtype=np.int32),
        x_test=prepare(x_test),
        y_test=np.asarray(y_test, dtype=np.int32),
        task="classification",
        num_classes=10,
        per_feature=False,
        class_names=_FASHION_CLASSES if name == "fashion_mnist" else _DIGIT_CLASSES,
        source_shape=tuple(int(d) for d in np.shape(x_train)[1:]),
        source_scale=scale,
    )
