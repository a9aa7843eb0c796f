"""`export`: a trained model written for serving, atomically, after its reload was proven.

The artifact is a TensorFlow SavedModel (Keras's own `model.export`: a ``serve`` endpoint and
TF-Serving's ``serving_default`` signature, batch dimension free) or a ``.keras`` file
(`model.save`). It is staged in a hidden sibling folder ``.<name>.partial/``, verified there
(`kerasnn.export._verify`) and only then renamed into place: a crash or a kill at any point
leaves the earlier artifact (or nothing) at the target, never a half-written one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._validation import non_negative_float, one_of
from kerasnn.datasets import Standardizer
from kerasnn.export._serving import (
    INPUT_NAME,
    Preprocessing,
    check_input,
    input_spec,
    serving_model,
)
from kerasnn.export._verify import verify as verify_in_fresh_process
from kerasnn.export.loading import load
from kerasnn.input_transform import InputTransform

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "PROBE_SIZE",
    "ExportResult",
    "check_export_target",
    "export",
    "export_file",
]

FORMATS = ("saved_model", "keras")
DEFAULT_TOLERANCE = 1e-5
PROBE_SIZE = 16


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `export` returns.

    Attributes:
        path: the artifact (a SavedModel folder or a ``.keras`` file).
        format: ``"saved_model"`` or ``"keras"``.
        input_shape: the artifact's input shape, batch dimension `None`.
        input_dtype: the artifact's input dtype, e.g. ``"float32"``.
        preprocessing: the baked-in preprocessing layers' class names joined by ``+`` (e.g.
            ``"Rescaling+Normalization"``), or `None`.
        signatures: signatures of the reloaded SavedModel (``["serve", "serving_default"]``);
            empty for ``.keras``.
        probe_size: samples in the probe batch the reload was checked on (0: not verified).
        max_abs_diff: largest absolute difference between the reloaded artifact's and the
            in-memory model's predictions on the probe batch (`None`: not verified).
        seconds: wall time of the whole export, verification included.
    """

    path: Path
    format: str
    input_shape: tuple[int | None, ...]
    input_dtype: str
    preprocessing: str | None
    signatures: tuple[str, ...]
    probe_size: int
    max_abs_diff: float | None
    seconds: float

    def summary(self) -> str:
        """One line: where, which format, and how well the reload matched."""
        check = (
            "not verified"
            if self.max_abs_diff is None
            else f"verified in a fresh process on {self.probe_size} samples, "
            f"max abs diff {self.max_abs_diff:.2e}"
        )
        return f"exported {self.format} to {self.path} ({check})"


def _check_target(path: Path, fmt: str, overwrite: bool) -> None:
    if fmt == "keras" and path.suffix != ".keras":
        raise ValueError(
            "Received an invalid value for argument path, expected a file name ending in "
            f".keras for format='keras' (Keras requires it). Received: path={str(path)!r}"
        )
    if fmt == "saved_model" and path.suffix in (".keras", ".h5"):
        raise ValueError(
            f"Received an invalid value for argument path, expected a folder name for "
            f"format='saved_model', not a {path.suffix} file; pass format='keras' to write a "
            f".keras file. Received: path={str(path)!r}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Received an invalid value for argument path, expected a path that does not exist "
            f"yet: {path} already exists. Choose another path or pass overwrite=True "
            f"(CLI: --overwrite). Received: path={str(path)!r}"
        )
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(
            f"Received an invalid value for argument path, expected a path in a writable "
            f"folder: cannot create {parent} ({err.strerror or err}). Received: "
            f"path={str(path)!r}"
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"Received an invalid value for argument path, expected a path in a writable "
            f"folder: {parent} is not writable. Received: path={str(path)!r}"
        )


def _probe_batch(
    probe: Any,
    shape: tuple[int | None, ...],
    dtype: str,
    preprocessing: Preprocessing,
) -> np.ndarray:
    if probe is not None:
        x = np.asarray(probe)
        check_input(x, shape, dtype, "probe")
        return x.astype(dtype)
    if isinstance(preprocessing, InputTransform):  # the source's values of standard inputs
        rng = np.random.default_rng(0)
        x = rng.standard_normal((PROBE_SIZE, *preprocessing.input_shape))
        return preprocessing.inverse_transform(x).astype(dtype)
    if any(d is None for d in shape[1:]):
        raise ValueError(
            "Received probe=None for a model whose input shape has free dimensions "
            f"{shape}: pass a probe batch of real inputs to verify the export."
        )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((PROBE_SIZE, *shape[1:]))
    if isinstance(preprocessing, Standardizer):  # raw inputs in the training data's range
        x = x * preprocessing.std + preprocessing.mean
    return x.astype(dtype)


def _staging_dir(path: Path) -> Path:
    return path.parent / f".{path.name}.partial"


def export(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    format: str = "saved_model",
    preprocessing: Preprocessing = None,
    overwrite: bool = False,
    probe: Any = None,
    verify: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Writes `model` for serving, atomically, after checking a fresh reload predicts the same.

    Args:
        model: a built `keras.Model` with one input (e.g. from `kerasnn.models`).
        path: the artifact: a folder for ``"saved_model"``, a ``*.keras`` file for ``"keras"``.
        format: ``"saved_model"`` (TensorFlow SavedModel via `model.export`: endpoint
            ``serve``, signature ``serving_default``, input ``inputs`` with a free batch
            dimension) or ``"keras"`` (`model.save`). Defaults to ``"saved_model"``.
        preprocessing: baked in front of the model so the artifact takes raw inputs: a
            `kerasnn.input_transform.InputTransform` (``dataset.input_transform``: the
            loader's reshape, rescaling and standardization, so the artifact takes the values
            the data source gives), a `kerasnn.datasets.Standardizer` (a
            `keras.layers.Normalization` only), or any Keras layer. Defaults to `None`.
        overwrite: replace an existing artifact at `path` (only once the new one is verified).
            Defaults to `False`.
        probe: the batch (raw inputs) the reload is checked on. Defaults to 16 seeded random
            samples (drawn in the source's or the standardizer's range when there is one).
        verify: reload in a fresh process and compare predictions. Defaults to `True`.
        tolerance: largest allowed absolute difference between reloaded and in-memory
            predictions. Defaults to 1e-5.

    Returns:
        An `ExportResult` (path, input signature, max abs diff, time).

    Raises:
        ValueError: unknown format, a model that is not built or has several inputs, a path
            that does not fit the format, a probe of the wrong shape or dtype.
        FileExistsError: `path` exists and `overwrite` is off.
        PermissionError: the folder of `path` cannot be created or written.
        ExportVerificationError: the reloaded artifact predicts differently (max abs diff above
            `tolerance`) or does not load; the target is left untouched.

    Example:

    >>> import tempfile, kerasnn as knn
    >>> model = knn.models.mlp((4,), hidden=[8], outputs=3)
    >>> result = export(model, tempfile.mkdtemp() + "/served")
    >>> result.max_abs_diff <= 1e-5
    True
    """
    start = time.perf_counter()
    fmt = one_of("format", format, FORMATS)
    tolerance = non_negative_float("tolerance", tolerance)
    input_spec(model)
    target = Path(path)
    _check_target(target, fmt, overwrite)
    serving, layers = serving_model(model, preprocessing)
    shape, dtype, _ = input_spec(serving)  # the raw input, once preprocessing is baked in
    x = _probe_batch(probe, shape, dtype, preprocessing)
    expected = np.asarray(serving(x, training=False))

    staging = _staging_dir(target)
    if staging.exists():  # left by an interrupted export
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        artifact = staging / target.name
        if fmt == "saved_model":
            signature = [tf.TensorSpec(shape, dtype, name=INPUT_NAME)]
            serving.export(
                str(artifact), format="tf_saved_model", verbose=False, input_signature=signature
            )
        else:
            serving.save(artifact)
        signatures: tuple[str, ...] = ()
        max_diff = None
        if verify:
            signatures, max_diff = verify_in_fresh_process(
                artifact, fmt, x, expected, tolerance=tolerance, target=target
            )
        if target.exists():  # overwrite=True: the old artifact goes only once the new is good
            os.replace(target, staging / ".old")
        os.replace(artifact, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(
        path=target,
        format=fmt,
        input_shape=shape,
        input_dtype=dtype,
        preprocessing="+".join(type(layer).__name__ for layer in layers) or None,
        signatures=signatures,
        probe_size=len(x) if verify else 0,
        max_abs_diff=max_diff,
        seconds=time.perf_counter() - start,
    )


def check_export_target(
    path: str | os.PathLike, *, format: str | None = None, overwrite: bool = False
) -> str:
    """The format an export to `path` writes, checked before anything is loaded or built.

    Args:
        path: the artifact to write.
        format: ``"saved_model"`` or ``"keras"``. Defaults to ``"keras"`` when `path` ends in
            ``.keras``, else ``"saved_model"``.
        overwrite: whether an existing artifact at `path` may be replaced. Defaults to
            `False`.

    Returns:
        The format.

    Raises:
        ValueError: an unknown format, or (for an existing `path`) a path that does not fit
            the format.
        FileExistsError: `path` exists and `overwrite` is off.
    """
    if format is None:
        format = "keras" if Path(path).suffix == ".keras" else "saved_model"
    one_of("format", format, FORMATS)
    if Path(path).exists() and not overwrite:  # fail before loading anything
        _check_target(Path(path), format, overwrite)
    return format


def export_file(
    model_path: str | os.PathLike,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
    safe_mode: bool = True,
) -> ExportResult:
    """Exports a ``.keras`` file (what ``kerasnn export MODEL.keras PATH`` runs).

    Nothing is baked in: the artifact takes what the model takes. A run folder, whose recipe
    says what to bake in, is exported by `kerasnn.recipe.export_run`.

    Args:
        model_path: the ``.keras`` file.
        path: the artifact to write.
        format: ``"saved_model"`` or ``"keras"``. Defaults to ``"keras"`` when `path` ends in
            ``.keras``, else ``"saved_model"``.
        overwrite: replace an existing artifact. Defaults to `False`.
        safe_mode: load the ``.keras`` file with Keras's safe mode. Defaults to `True`.

    Returns:
        The `ExportResult`.

    Raises:
        FileNotFoundError, ValueError: as `kerasnn.export.load` (nothing at `model_path`, not
            a ``.keras`` file, a Lambda layer under safe mode).
        ValueError, FileExistsError, PermissionError, ExportVerificationError: as `export`.
    """
    format = check_export_target(path, format=format, overwrite=overwrite)
    model = load(model_path, safe_mode=safe_mode).model
    return export(model, path, format=format, overwrite=overwrite)
