"""User files: `.npz` / `.csv` reading, column parsing, task inference and target encoding."""

from __future__ import annotations

import csv
import os

import numpy as np

from kerasnn.datasets._dataset import Raw, Task, check_finite

__all__ = ["FILE_SUFFIXES", "load_file"]

FILE_SUFFIXES = (".npz", ".csv")
_MAX_CLASSES = 50


def load_file(path: str | os.PathLike, *, target: str | int | None, task: Task | None) -> Raw:
    """Reads a `.npz`/`.csv` file into a `Raw` (split when the file holds its own split).

    Targets are encoded as described in `kerasnn.datasets.load` (task inferred when `task`
    is `None`); the dataset is named after the file stem.
    """
    path_str = os.fspath(path)
    suffix = os.path.splitext(path_str)[1].lower()
    if suffix not in FILE_SUFFIXES:
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
    raw = Raw(
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
        check_finite(y, "y", label)
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
