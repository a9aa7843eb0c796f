"""Datasets: loading, train/test splitting, validation and standardization.

`load()` returns a `Dataset` with float32 features standardized on the training split only,
integer labels for classification and the metadata a model needs (`input_shape`,
`output_units`). Built-in names are listed in `KNOWN`; a path to a `.npz` or `.csv` file is
also accepted.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from kerasnn import _validation
from kerasnn.input_transform import InputTransform

Task = Literal["classification", "binary", "regression"]
TASKS: tuple[str, ...] = get_args(Task)
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
_FILE_SUFFIXES = (".npz", ".csv")
# Keras divides by max(sqrt(variance), epsilon) with epsilon = 1e-7; a smaller std would make
# `Standardizer.as_layer()` disagree with `Standardizer.transform()`.
_MIN_STD = 1e-7
_MAX_CLASSES = 50
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


@dataclasses.dataclass(frozen=True, eq=False)
class Standardizer:
    """Mean/std standardization fitted on the training split only.

    `transform(x)` computes `(x - mean) / std` in float32. In per-feature mode `mean` and `std`
    have the per-sample feature shape (e.g. `(64,)` or `(8, 8, 1)`); in global mode they are
    scalars (shape `()`).

    Args:
        mean: Mean to subtract, cast to float32.
        std: Standard deviation to divide by, cast to float32. Every value must be at least
            1e-7 (Keras' epsilon), so `fit()` replaces the std of constant features by 1.0.

    Raises:
        ValueError: If `mean` and `std` have different shapes or `std` has a value that is not
            finite or is below 1e-7.

    Example:

    >>> s = Standardizer.fit(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> s.transform(np.array([[2.0, 1.0]])).tolist()
    [[1.0, 0.0]]
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if mean.shape != std.shape:
            raise ValueError(
                "Received an invalid value for argument std, expected the same shape as mean. "
                f"Received: mean.shape={mean.shape}, std.shape={std.shape}"
            )
        bad = ~(np.isfinite(std) & (std >= _MIN_STD))
        if np.any(bad):
            raise ValueError(
                f"Received an invalid value for argument std, expected finite values >= "
                f"{_MIN_STD}. Received: std={std.tolist()!r}"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def per_feature(self) -> bool:
        """Whether `mean` and `std` hold one value per feature (else one global value)."""
        return self.mean.ndim > 0

    @classmethod
    def fit(cls, x: ArrayLike, *, per_feature: bool = True) -> Standardizer:
        """Computes the mean and std of `x` (samples along the first axis).

        Args:
            x: Training features of shape `(n, *feature_shape)`.
            per_feature: If `True`, one mean/std per feature (over axis 0); if `False`, a single
                mean/std over all values. Defaults to `True`.

        Returns:
            A fitted `Standardizer`. Std values below 1e-7 (constant features) become 1.0.

        Raises:
            ValueError: If `x` has no samples or fewer than 2 dimensions.

        Example:

        >>> Standardizer.fit(np.ones((4, 3)), per_feature=False).std
        array(1., dtype=float32)
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(
                "Received an invalid value for argument x, expected an array of shape "
                f"(n_samples, *feature_shape) with n_samples >= 1. Received: x.shape={x.shape}"
            )
        axis = 0 if per_feature else None
        mean = x.mean(axis=axis)
        std = x.std(axis=axis)
        std = np.where(std < _MIN_STD, 1.0, std)
        return cls(mean=mean, std=std)

    def _check_shape(self, x: np.ndarray) -> None:
        feature_ndim = self.mean.ndim
        if feature_ndim and x.shape[x.ndim - feature_ndim :] != self.mean.shape:
            raise ValueError(
                "Received an invalid value for argument x, expected trailing dimensions "
                f"{self.mean.shape} (the feature shape this Standardizer was fitted on). "
                f"Received: x.shape={x.shape}"
            )

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Returns `(x - mean) / std` as float32.

        Args:
            x: Features whose trailing dimensions match the fitted feature shape.

        Returns:
            The standardized float32 array, same shape as `x`.

        Raises:
            ValueError: If the trailing dimensions of `x` do not match (per-feature mode).
        """
        x = np.asarray(x, dtype=np.float32)
        self._check_shape(x)
        return (x - self.mean) / self.std

    def inverse_transform(self, x: ArrayLike) -> np.ndarray:
        """Returns `x * std + mean` as float32, undoing `transform()`.

        Args:
            x: Standardized features whose trailing dimensions match the fitted feature shape.

        Returns:
            The float32 array in the original units.

        Raises:
            ValueError: If the trailing dimensions of `x` do not match (per-feature mode).
        """
        x = np.asarray(x, dtype=np.float32)
        self._check_shape(x)
        return x * self.std + self.mean

    def as_layer(self, name: str | None = None) -> Any:
        """Returns a `keras.layers.Normalization` layer computing `transform()`.

        Use it to bake the standardization into an exported model. The layer expects batches of
        shape `(batch, *feature_shape)`.

        Args:
            name: Name of the layer. Defaults to `None` (Keras picks a unique name).

        Returns:
            A `keras.layers.Normalization` with `mean=mean`, `variance=std**2` and `axis` set
            to the feature axes (per-feature mode) or `None` (global mode).
        """
        import keras

        axis = tuple(range(1, self.mean.ndim + 1)) if self.per_feature else None
        variance = np.square(self.std.astype(np.float64)).astype(np.float32)
        return keras.layers.Normalization(axis=axis, mean=self.mean, variance=variance, name=name)

    def get_config(self) -> dict[str, Any]:
        """Returns a JSON-serializable config (`mean`, `std` as nested lists or floats)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Standardizer:
        """Creates a `Standardizer` from the output of `get_config()`."""
        return cls(mean=np.asarray(config["mean"]), std=np.asarray(config["std"]))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split with the metadata needed to build a model for it.

    Attributes:
        name: Dataset name (a known name, or the file stem for `.npz`/`.csv` files).
        x_train: float32 features of shape `(n_train, *input_shape)`, standardized with
            `standardizer` when there is one.
        y_train: int32 labels of shape `(n_train,)` for classification/binary; float32 targets
            of shape `(n_train,)` or `(n_train, k)` for regression.
        x_test: Test features, transformed with the training statistics.
        y_test: Test labels or targets.
        task: One of `"classification"`, `"binary"`, `"regression"`.
        num_classes: `C` for classification, 2 for binary, `None` for regression.
        input_shape: Per-sample feature shape, e.g. `(64,)` or `(8, 8, 1)`.
        standardizer: The `Standardizer` applied to the features, or `None`.
        class_names: Name of each class index, when known.
        feature_names: Name of each feature column, when known.
        source_shape: One sample's shape as the source gives it (e.g. `(64,)` for the
            digits' image view, `(28, 28)` for MNIST). Defaults to `input_shape`.
        source_scale: The factor the loader multiplied the source's values by (1/16 for
            digits, 1/255 for MNIST). Defaults to 1.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    num_classes: int | None
    input_shape: tuple[int, ...]
    standardizer: Standardizer | None
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    source_shape: tuple[int, ...] | None = None
    source_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_task(self.task)

    @property
    def input_transform(self) -> InputTransform:
        """The loader's whole transform from the source's values to `x_train`/`x_test`:
        reshape, rescale, standardize (see `kerasnn.input_transform.InputTransform`)."""
        return InputTransform(
            source_shape=tuple(self.source_shape or self.input_shape),
            input_shape=tuple(self.input_shape),
            scale=float(self.source_scale),
            standardizer=self.standardizer,
        )

    @property
    def output_units(self) -> int:
        """Units of the output layer: `C` (classification), 1 (binary), targets (regression)."""
        if self.task == "classification":
            return int(self.num_classes)
        if self.task == "binary" or self.y_train.ndim == 1:
            return 1
        return int(self.y_train.shape[1])

    def summary(self) -> str:
        """Returns a one-line description: name, task, classes and shapes.

        Example:

        >>> load("iris").summary()
        'iris: classification, 3 classes, x_train (120, 4), x_test (30, 4), input_shape (4,)'
        """
        if self.task == "regression":
            kind = f"{self.output_units} output{'s' if self.output_units > 1 else ''}"
        else:
            kind = f"{self.num_classes} classes"
        return (
            f"{self.name}: {self.task}, {kind}, x_train {self.x_train.shape}, "
            f"x_test {self.x_test.shape}, input_shape {self.input_shape}"
        )

    def __repr__(self) -> str:
        return f"Dataset({self.summary()})"


def validate_arrays(
    x: ArrayLike,
    y: ArrayLike,
    *,
    task: Task,
    num_classes: int | None,
    argument: str = "data",
) -> None:
    """Checks that features and targets are usable for training.

    Args:
        x: Features, first axis = samples.
        y: Labels (classification/binary) or targets (regression), first axis = samples.
        task: One of `"classification"`, `"binary"`, `"regression"`.
        num_classes: Number of classes; required for `"classification"`, ignored for
            `"regression"`, and 2 when `None` for `"binary"`.
        argument: Name used in error messages for the data being checked. Defaults to
            `"data"`.

    Raises:
        ValueError: If `x` and `y` have different lengths or no samples, are not numeric,
            contain NaN or infinite values (the message gives the counts and the first index),
            or if labels are not integers in `[0, num_classes)` (the message gives the
            offending min/max).

    Example:

    >>> validate_arrays(np.zeros((2, 3)), np.array([0, 1]), task="binary", num_classes=2)
    """
    _check_task(task)
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected x and y with the same "
            f"number of samples. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if len(x) == 0:
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected at least one sample. "
            f"Received: x.shape={x.shape}"
        )
    for label, array in (("x", x), ("y", y)):
        if array.dtype.kind not in "biuf":
            raise ValueError(
                f"Received an invalid value for argument {argument}, expected numeric {label}. "
                f"Received: {label}.dtype={array.dtype}"
            )
        _check_finite(array, label, argument)
    if task == "regression":
        return
    if num_classes is None:
        if task == "classification":
            raise ValueError(
                "Received an invalid value for argument num_classes, expected a positive "
                "integer for task='classification'. Received: num_classes=None"
            )
        num_classes = 2
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected integer labels of "
            f"shape (n,) for task={task!r}. Received: y.shape={y.shape}"
        )
    fractional = y != np.round(y)
    if np.any(fractional):
        index = int(np.flatnonzero(fractional.ravel())[0])
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected integer labels for "
            f"task={task!r}. Received: y[{index}]={y.ravel()[index].item()!r}"
        )
    low, high = y.min().item(), y.max().item()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected labels in "
            f"[0, {num_classes}) for task={task!r} with num_classes={num_classes}. "
            f"Received: labels with min={low!r}, max={high!r}"
        )


def split(
    x: ArrayLike, y: ArrayLike, *, test_size: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Splits `x` and `y` into two shuffled parts (wraps sklearn's `train_test_split`).

    Args:
        x: Features, first axis = samples.
        y: Labels or targets, first axis = samples.
        test_size: Fraction of samples in the second part, in (0, 1).
        seed: Non-negative integer seed; the same seed gives the same split.
        stratify: If `True`, keep the class proportions of `y` in both parts.

    Returns:
        `(x_a, x_b, y_a, y_b)`, where the `b` parts hold `test_size` of the samples.

    Raises:
        ValueError: If `test_size` is not in (0, 1) or `seed` is not a non-negative integer.

    Example:

    >>> x_a, x_b, y_a, y_b = split(np.arange(10), np.arange(10) % 2, test_size=0.2, seed=0,
    ...                            stratify=True)
    >>> len(x_a), len(x_b)
    (8, 2)
    """
    from sklearn.model_selection import train_test_split

    _validation.fraction("test_size", test_size)
    _check_seed(seed)
    x = np.asarray(x)
    y = np.asarray(y)
    x_a, x_b, y_a, y_b = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    return x_a, x_b, y_a, y_b


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
    _check_seed(seed)
    _validation.one_of("view", view, VIEWS)
    if n_samples is not None:
        _validation.positive_int("n_samples", n_samples)
    if noise is not None:
        _validation.non_negative_float("noise", noise)
    if task is not None:
        _check_task(task)

    is_path = isinstance(name, os.PathLike) or (
        isinstance(name, str) and name.lower().endswith(_FILE_SUFFIXES)
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
        raw = _load_file(name, target=target, task=task)
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


@dataclasses.dataclass
class _Raw:
    """Loaded arrays before splitting/standardization (`x_test is None` means not split yet)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    task: Task
    num_classes: int | None
    per_feature: bool = True
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    source_shape: tuple[int, ...] | None = None  # one sample as the source gives it
    source_scale: float = 1.0  # what the loader multiplied the source's values by


def _check_task(task: Any) -> None:
    _validation.one_of("task", task, TASKS)


def _check_seed(seed: Any) -> None:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise _validation.invalid("seed", "an integer in [0, 2**32)", seed)


def _check_finite(array: np.ndarray, label: str, argument: str) -> None:
    if array.dtype.kind != "f":
        return
    bad = ~np.isfinite(array)
    if not np.any(bad):
        return
    n_nan = int(np.isnan(array).sum())
    n_inf = int(bad.sum()) - n_nan
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    index = ", ".join(str(i) for i in first)
    raise ValueError(
        f"Received an invalid value for argument {argument}, expected only finite values in "
        f"{label}. Found {n_nan} NaN and {n_inf} infinite value(s); the first is "
        f"{label}[{index}]={array[first].item()!r}"
    )


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


def _load_sklearn(name: str, *, view: str) -> _Raw:
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{name}")()
    feature_names = tuple(str(f) for f in bunch.feature_names)
    if name == "diabetes":
        return _Raw(
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
    return _Raw(
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


def _make_synthetic(name: str, *, n_samples: int | None, noise: float | None, seed: int) -> _Raw:
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
    return _Raw(
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


def _load_keras(name: str, *, view: str) -> _Raw:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # Keras raises a bare `Exception` on URL fetch failure.
        raise _download_error(name, err) from err

    scale = 1.0 / 255.0

    def prepare(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32) * np.float32(scale)
        return x.reshape(len(x), -1) if view == "flat" else x[..., np.newaxis]

    return _Raw(
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


def _load_file(path: str | os.PathLike, *, target: str | int | None, task: Task | None) -> _Raw:
    path_str = os.fspath(path)
    suffix = os.path.splitext(path_str)[1].lower()
    if suffix not in _FILE_SUFFIXES:
        raise ValueError(
            f"Received an invalid value for argument name, expected a path ending in .npz or "
            f".csv. Received: name={path_str!r}"
        )
    if not os.path.isfile(path_str):
        raise FileNotFoundError(f"Dataset file not found: {path_str!r} (argument name).")
    stem = os.path.splitext(os.path.basename(path_str))[0]
    feature_names = None
    if suffix == ".npz":
        arrays = _read_npz(path_str)
    else:
        arrays, feature_names = _read_csv(path_str, target)

    ys = [arrays[k] for k in ("y", "y_train", "y_test") if k in arrays]
    y_all, task, num_classes, class_names = _encode_targets(np.concatenate(ys), task, stem)
    xs = {}
    for key in ("x", "x_train", "x_test"):
        if key in arrays:
            x = arrays[key]
            if x.dtype.kind not in "biuf":
                raise ValueError(
                    f"Received an invalid value for argument name, expected numeric features "
                    f"in {path_str!r}. Received: {key}.dtype={x.dtype}"
                )
            xs[key] = x.astype(np.float32)
    raw = _Raw(
        name=stem,
        x=xs.get("x", xs.get("x_train")),
        y=y_all,
        task=task,
        num_classes=num_classes,
        class_names=class_names,
        feature_names=feature_names,
    )
    if "x" not in arrays:
        n_train = len(arrays["y_train"])
        raw.y, raw.x_test, raw.y_test = y_all[:n_train], xs["x_test"], y_all[n_train:]
    return raw


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        for wanted in (("x_train", "y_train", "x_test", "y_test"), ("x", "y")):
            if keys.issuperset(wanted):
                return {k: data[k] for k in wanted}
    raise ValueError(
        f"Received an invalid value for argument name, expected a .npz file with arrays "
        f"x_train, y_train, x_test, y_test or x, y. Received: {path!r} with arrays "
        f"{sorted(keys)}"
    )


def _read_csv(path: str, target: str | int | None) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if len(rows) < 2 or len(rows[0]) < 2:
        raise ValueError(
            f"Received an invalid value for argument name, expected a .csv file with a header "
            f"row, at least 2 columns and at least one data row. Received: {path!r}"
        )
    header = [h.strip() for h in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(
                f"Received an invalid value for argument name, expected {len(header)} columns "
                f"in every row of {path!r}. Received: {len(row)} columns in row {line}"
            )
    if target is None:
        column = len(header) - 1
    elif isinstance(target, str) and target in header:
        column = header.index(target)
    elif isinstance(target, int | np.integer) and not isinstance(target, bool):
        if not -len(header) <= target < len(header):
            raise ValueError(
                f"Received an invalid value for argument target, expected a column index in "
                f"[{-len(header)}, {len(header)}) or one of {header}. Received: target={target}"
            )
        column = int(target) % len(header)
    else:
        raise ValueError(
            f"Received an invalid value for argument target, expected a column name in "
            f"{header} or an integer index. Received: target={target!r}"
        )
    columns = list(zip(*rows[1:], strict=True))
    features = []
    for j, values in enumerate(columns):
        if j == column:
            continue
        try:
            features.append([float(v) if v.strip() else np.nan for v in values])
        except ValueError as err:
            raise ValueError(
                f"Received an invalid value for argument name, expected numbers in feature "
                f"column {header[j]!r} of {path!r}. {err}"
            ) from err
    x = np.asarray(features, dtype=np.float64).T
    y = _parse_column([v.strip() for v in columns[column]])
    names = tuple(h for j, h in enumerate(header) if j != column)
    return {"x": x, "y": y}, names


def _parse_column(values: list[str]) -> np.ndarray:
    for kind in (int, float):
        try:
            return np.asarray([kind(v) for v in values])
        except ValueError:
            continue
    return np.asarray(values, dtype=str)


def _integer_valued(y: np.ndarray) -> bool:
    if y.dtype.kind in "biu":
        return True
    return y.dtype.kind == "f" and bool(np.all(np.isfinite(y) & (y == np.round(y))))


def _infer_task(y: np.ndarray) -> Task:
    if y.dtype.kind in "USO":
        return "binary" if len(np.unique(y)) <= 2 else "classification"
    if y.ndim > 1 and y.shape[1] > 1:
        return "regression"
    if _integer_valued(y):
        n_unique = len(np.unique(y))
        if n_unique <= 2:
            return "binary"
        if n_unique <= _MAX_CLASSES and y.dtype.kind != "f":
            return "classification"
    return "regression"


def _encode_targets(
    y: np.ndarray, task: Task | None, label: str
) -> tuple[np.ndarray, Task, int | None, tuple[str, ...] | None]:
    """Returns `(y, task, num_classes, class_names)` with labels encoded as 0..C-1."""
    if task is None:
        task = _infer_task(y)
    if task == "regression":
        if y.dtype.kind not in "biuf":
            raise ValueError(
                f"Received an invalid value for argument task, expected numeric targets for "
                f"task='regression'. Received: targets of dtype {y.dtype} in {label!r}"
            )
        return y.astype(np.float32), task, None, None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind == "f":
        _check_finite(y, "y", label)
        if not _integer_valued(y):
            raise ValueError(
                f"Received an invalid value for argument task, expected integer or string "
                f"labels for task={task!r}. Received: non-integer targets in {label!r}"
            )
        y = y.astype(np.int64)
    if y.ndim != 1:
        raise ValueError(
            f"Received an invalid value for argument task, expected labels of shape (n,) for "
            f"task={task!r}. Received: y.shape={y.shape} in {label!r}"
        )
    classes, encoded = np.unique(y, return_inverse=True)
    if task == "binary" and len(classes) > 2:
        raise ValueError(
            f"Received an invalid value for argument task, expected at most 2 distinct labels "
            f"for task='binary'. Received: {len(classes)} labels in {label!r}"
        )
    class_names = None
    if y.dtype.kind in "USO" or not np.array_equal(classes, np.arange(len(classes))):
        class_names = tuple(str(c) for c in classes)
        y = encoded
    num_classes = 2 if task == "binary" else len(classes)
    return y.astype(np.int32), task, num_classes, class_names
