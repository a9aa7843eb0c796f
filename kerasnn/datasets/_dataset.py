"""`Dataset`, the task names, and the checks and split every loader's arrays go through."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from kerasnn import _validation
from kerasnn.datasets._standardizer import Standardizer
from kerasnn.input_transform import InputTransform

__all__ = [
    "TASKS",
    "Dataset",
    "Raw",
    "Task",
    "check_finite",
    "check_seed",
    "check_task",
    "split",
    "validate_arrays",
]

Task = Literal["classification", "binary", "regression"]
TASKS: tuple[str, ...] = get_args(Task)


def check_task(task: Any) -> None:
    """Raises the standard "unknown name" error unless `task` is one of `TASKS`."""
    _validation.one_of("task", task, TASKS)


def check_seed(seed: Any) -> None:
    """Raises unless `seed` is an integer in [0, 2**32) (bools refused)."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise _validation.invalid("seed", "an integer in [0, 2**32)", seed)


def check_finite(array: np.ndarray, label: str, argument: str) -> None:
    """Raises if a float `array` holds NaN or infinite values (counts and first index)."""
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


@dataclasses.dataclass
class Raw:
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
        check_task(self.task)

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

        >>> from kerasnn.datasets import load
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
    check_task(task)
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
        check_finite(array, label, argument)
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
    check_seed(seed)
    x = np.asarray(x)
    y = np.asarray(y)
    x_a, x_b, y_a, y_b = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
    return x_a, x_b, y_a, y_b
