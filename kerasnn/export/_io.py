"""Batches of inputs read from, and predictions written to, ``.npy`` and ``.csv`` files
(what ``kerasnn predict`` reads and writes)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from kerasnn._validation import invalid

__all__ = ["read_inputs", "write_outputs"]


def read_inputs(path: str | os.PathLike, input_shape: tuple[int | None, ...]) -> np.ndarray:
    """Reads a batch of inputs from ``.npy`` or ``.csv`` (one sample per row, header optional).

    CSV rows are reshaped to `input_shape` when their width is its product (8×8×1 images as
    64 columns).

    Raises:
        FileNotFoundError: no such file.
        ValueError: another suffix, a non-numeric CSV cell (with its row and column), or rows of
            different widths.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Input file not found: {path}")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix != ".csv":
        raise ValueError(
            "Received an invalid value for argument input, expected a .npy or .csv file. "
            f"Received: input={str(path)!r}"
        )
    with path.open(newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    values: list[list[float]] = []
    for i, row in enumerate(rows):
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            if i == 0:  # a header line
                continue
            bad = next(c for c, cell in enumerate(row) if not _is_float(cell))
            raise ValueError(
                f"Received an invalid value for argument input, expected numbers in every CSV "
                f"cell. Received: {path} line {i + 1}, column {bad + 1}: {row[bad]!r}"
            ) from None
    widths = sorted({len(r) for r in values})
    if len(widths) > 1:
        raise ValueError(
            f"Received an invalid value for argument input, expected rows of one width. "
            f"Received: {path} has rows of widths {widths}"
        )
    x = np.asarray(values, dtype=np.float64)
    feature_shape = tuple(input_shape[1:])
    if (
        x.ndim == 2
        and len(feature_shape) > 1
        and all(d is not None for d in feature_shape)
        and x.shape[1] == int(np.prod(feature_shape))
    ):
        x = x.reshape((len(x), *feature_shape))
    return x


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def write_outputs(path: str | os.PathLike, y: np.ndarray) -> Path:
    """Writes predictions as ``.npy`` or ``.csv`` (one row per sample).

    Raises:
        ValueError: another suffix.
    """
    path = Path(path)
    if path.suffix == ".npy":
        np.save(path, y)
    elif path.suffix == ".csv":
        np.savetxt(path, y.reshape(len(y), -1), delimiter=",", fmt="%.8g")
    else:
        raise invalid("out", "a file name ending in .npy or .csv", str(path))
    return path
