"""Export a trained model for serving, atomically, and prove the artifact before it lands.

`export` writes a TensorFlow SavedModel through Keras's own `model.export` (a ``serve`` endpoint
and TF-Serving's ``serving_default`` signature, batch dimension free) or a ``.keras`` file
through `model.save`. The loader's whole input transform (`kerasnn.input_transform`: reshape,
rescaling such as the digits' ÷16, standardization) can be baked in as Keras layers, so the
artifact takes the values the data source gives.

Every export is staged in a hidden sibling folder ``.<name>.partial/``, reloaded there in a
*fresh* Python process (`tf.saved_model.load` / `keras.saving.load_model`) and compared with the
in-memory model on a probe batch; only a verified artifact is renamed into place. A crash or a
kill at any point leaves the earlier artifact (or nothing) at the target, never a half-written
one, and the verifying process dies with its parent (Linux: ``PR_SET_PDEATHSIG``; elsewhere it
polls its parent), so a killed export leaves no process behind.

`load` reads either format back as a `LoadedModel` whose `predict` checks the input's shape and
dtype; ``.keras`` files load with ``safe_mode=True`` unless the caller opts out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._registration import register as _register_custom_objects
from kerasnn._validation import invalid, non_negative_float, one_of, positive_int
from kerasnn.datasets import Dataset, Standardizer
from kerasnn.input_transform import InputTransform

__all__ = [
    "DEFAULT_TOLERANCE",
    "FORMATS",
    "SERVE_ENDPOINT",
    "SERVING_SIGNATURE",
    "ExportResult",
    "ExportVerificationError",
    "LoadedModel",
    "dataset_preprocessing",
    "export",
    "export_source",
    "load",
    "read_inputs",
    "write_outputs",
]

FORMATS = ("saved_model", "keras")
SERVE_ENDPOINT = "serve"
SERVING_SIGNATURE = "serving_default"
DEFAULT_TOLERANCE = 1e-5
PROBE_SIZE = 16
INPUT_NAME = "inputs"
# Samples of the test split a run folder's export is verified on.
SOURCE_PROBE_SIZE = 64
Preprocessing = InputTransform | Standardizer | keras.layers.Layer | None


class ExportVerificationError(RuntimeError):
    """The reloaded artifact disagrees with the in-memory model (or could not be reloaded)."""


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


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def _input_spec(model: keras.Model) -> tuple[tuple[int | None, ...], str, str]:
    """The single input's shape (batch free), dtype and name; raises if the model is not built."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Received an invalid value for argument model, expected a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"Received an invalid value for argument model, expected a built model (weights "
            f"created). Model {model.name!r} is not built: build it with keras.Input (as the "
            "kerasnn builders do), call it on a batch, or call model.build(input_shape). "
            f"Received: model.built={model.built}"
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with a known "
            f"input (a functional or Sequential model starting with keras.Input). Model "
            f"{model.name!r} ({type(model).__name__}) has no symbolic inputs."
        )
    if len(inputs) != 1:
        raise ValueError(
            "Received an invalid value for argument model, expected a model with one input. "
            f"Received: a model with {len(inputs)} inputs"
        )
    tensor = inputs[0]
    shape = (None, *tuple(tensor.shape)[1:])
    return shape, str(tensor.dtype), INPUT_NAME


def _serving_model(
    model: keras.Model, preprocessing: Preprocessing
) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """`model`, or a functional model ``raw input -> preprocessing -> model``."""
    if preprocessing is None:
        return model, []
    shape, dtype, _ = _input_spec(model)
    if isinstance(preprocessing, InputTransform):
        if tuple(preprocessing.input_shape) != tuple(shape[1:]):
            raise ValueError(
                "Received an invalid value for argument preprocessing, expected an "
                f"InputTransform whose input_shape is the model's input {tuple(shape[1:])}. "
                f"Received: input_shape={preprocessing.input_shape}"
            )
        layers = preprocessing.as_layers()
        if not layers:
            return model, []
        raw = keras.Input(preprocessing.source_shape, dtype=dtype, name=INPUT_NAME)
        x = raw
        for layer in layers:
            x = layer(x)
        serving = keras.Model(raw, model(x, training=False), name=f"{model.name}_serving")
        return serving, layers
    if isinstance(preprocessing, Standardizer):
        feature_shape = tuple(shape[1:])
        if preprocessing.per_feature and preprocessing.mean.shape != feature_shape:
            raise ValueError(
                "Received an invalid value for argument preprocessing, expected a Standardizer "
                f"fitted on samples of shape {feature_shape} (the model's input). Received: a "
                f"Standardizer with mean.shape={preprocessing.mean.shape}"
            )
        layer = preprocessing.as_layer(name="standardize")
    elif isinstance(preprocessing, keras.layers.Layer):
        layer = preprocessing
    else:
        raise TypeError(
            "Received an invalid value for argument preprocessing, expected None, a kerasnn "
            "InputTransform (e.g. Dataset.input_transform), a Standardizer or a "
            "keras.layers.Layer. Received: "
            f"preprocessing of type {type(preprocessing).__name__}"
        )
    raw = keras.Input(shape[1:], dtype=dtype, name=INPUT_NAME)
    outputs = model(layer(raw), training=False)
    return keras.Model(raw, outputs, name=f"{model.name}_serving"), [layer]


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
        _check_input(x, shape, dtype, "probe")
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


def _child_env() -> dict[str, str]:
    """The environment of the verifying process: kerasnn importable, TF quiet."""
    package_root = str(Path(__file__).resolve().parents[1])
    paths = [package_root, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND="tensorflow",
    )


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel kills it when its parent dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the child's watchdog thread covers it
        return


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    """In the child: exit at once when the parent process is gone (a portable backstop)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="kerasnn-export-parent-watch", daemon=True).start()


def _reload_in_fresh_process(artifact: Path, fmt: str, probe: np.ndarray) -> dict[str, Any]:
    """Runs `_verify_child` in a new interpreter; returns its report and predictions."""
    work = artifact.parent
    np.save(work / "probe.npy", probe)
    out = work / "reloaded.npy"
    code = (
        "import os, sys; from kerasnn.export import _verify_child, _watch_parent; "
        "_watch_parent(int(sys.argv[5])); "
        "_verify_child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])"
    )
    arguments = [fmt, str(artifact), str(work / "probe.npy"), str(out), str(os.getpid())]
    linux = sys.platform.startswith("linux")
    proc = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_die_with_parent if linux else None,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ExportVerificationError(
            f"The exported {fmt} artifact could not be reloaded and run in a fresh process "
            f"(exit status {proc.returncode}); nothing was written at the target.\n{tail}"
        )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["outputs"] = {name: np.load(work / f"reloaded_{name}.npy") for name in report["calls"]}
    return report


def _verify_child(fmt: str, artifact: str, probe_path: str, out_path: str) -> None:
    """Entry point of the verifying process: reload, predict the probe, save the outputs."""
    probe = np.load(probe_path)
    out = Path(out_path)
    calls: dict[str, np.ndarray] = {}
    signatures: list[str] = []
    if fmt == "saved_model":
        loaded = tf.saved_model.load(artifact)
        signatures = sorted(loaded.signatures.keys())
        calls["serve"] = np.asarray(getattr(loaded, SERVE_ENDPOINT)(tf.constant(probe)))
        signature = loaded.signatures[SERVING_SIGNATURE]
        result = signature(**{INPUT_NAME: tf.constant(probe)})
        calls["serving_default"] = np.asarray(next(iter(result.values())))
    else:
        _register_custom_objects()
        # The file was written a moment ago by this export (trusted): Lambda layers allowed.
        model = keras.saving.load_model(artifact, safe_mode=False, compile=False)
        calls["keras"] = np.asarray(model(probe, training=False))
    for name, values in calls.items():
        np.save(out.parent / f"reloaded_{name}.npy", values)
    print(json.dumps({"calls": sorted(calls), "signatures": signatures}))


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
    _input_spec(model)
    target = Path(path)
    _check_target(target, fmt, overwrite)
    serving, layers = _serving_model(model, preprocessing)
    shape, dtype, _ = _input_spec(serving)  # the raw input, once preprocessing is baked in
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
            report = _reload_in_fresh_process(artifact, fmt, x)
            signatures = tuple(report["signatures"])
            if fmt == "saved_model" and SERVING_SIGNATURE not in signatures:
                raise ExportVerificationError(
                    f"The reloaded SavedModel has no {SERVING_SIGNATURE!r} signature "
                    f"(found: {', '.join(signatures) or 'none'})."
                )
            diffs = {
                name: float(np.max(np.abs(np.asarray(out, np.float64) - expected)))
                if np.shape(out) == expected.shape
                else float("inf")
                for name, out in report["outputs"].items()
            }
            max_diff = max(diffs.values())
            if not max_diff <= tolerance:
                detail = ", ".join(f"{k}: {v:.3g}" for k, v in diffs.items())
                raise ExportVerificationError(
                    f"The exported {fmt} artifact, reloaded in a fresh process, predicts "
                    f"differently from the in-memory model on a probe batch of {len(x)} "
                    f"samples: max abs diff {max_diff:.3g} > tolerance {tolerance:g} "
                    f"({detail}). Nothing was written at {target}."
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


def dataset_preprocessing(
    data: Dataset, *, standardize: bool = True
) -> tuple[InputTransform | None, np.ndarray]:
    """What to bake into the export of a model trained on `data`, and a probe batch for it.

    Args:
        data: the `kerasnn.datasets.Dataset` the model was trained on.
        standardize: bake the loader's whole input transform in (`Dataset.input_transform`:
            reshape, rescaling, standardization), so the artifact takes the values the data
            source gives (the digits' 0–16 pixels, a CSV's columns as written). `False` bakes
            nothing in: the artifact then takes what the model was trained on, the loader's
            transformed inputs (`Dataset.x_train` / `x_test`). Defaults to `True`.

    Returns:
        ``(preprocessing, probe)``: the `InputTransform` (or `None`) and the first
        `SOURCE_PROBE_SIZE` test samples in the artifact's input space.
    """
    probe = data.x_test[:SOURCE_PROBE_SIZE]
    transform = data.input_transform
    if not standardize or transform.identity:
        return None, probe
    return transform, transform.inverse_transform(probe)


def export_source(
    source: str | os.PathLike,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
    standardize: bool = True,
    safe_mode: bool = True,
) -> ExportResult:
    """Exports a run folder's model, or a ``.keras`` file (what ``kerasnn export`` runs).

    From a run folder (``model.keras`` + ``recipe.yaml``) the recipe's data is reloaded to get
    the loader's input transform fitted on its training split, which is baked in (unless
    `standardize` is off, see `dataset_preprocessing`), and the test inputs, as the source
    gives them, are the verification probe.

    Args:
        source: a run folder written by `kerasnn train` / `Recipe.run`, or a ``.keras`` file.
        path: the artifact to write.
        format: ``"saved_model"`` or ``"keras"``. Defaults to ``"keras"`` when `path` ends in
            ``.keras``, else ``"saved_model"``.
        overwrite: replace an existing artifact. Defaults to `False`.
        standardize: bake the run's input transform in (the artifact takes the source's
            values); `False`: the artifact takes the loader's transformed inputs, like the
            model in the run folder. Defaults to `True`.
        safe_mode: load the source ``.keras`` with Keras's safe mode. Defaults to `True`.

    Returns:
        The `ExportResult`.

    Raises:
        FileNotFoundError: `source` is neither a run folder nor a ``.keras`` file.
        ValueError, FileExistsError, PermissionError, ExportVerificationError: as `export`.
    """
    source = Path(source)
    if format is None:
        format = "keras" if Path(path).suffix == ".keras" else "saved_model"
    one_of("format", format, FORMATS)
    if Path(path).exists() and not overwrite:  # fail before loading anything
        _check_target(Path(path), format, overwrite)
    preprocessing = probe = None
    if source.is_dir():
        model_file = source / "model.keras"
        if not model_file.is_file():
            raise FileNotFoundError(
                f"No model.keras in {source}: expected a finished run folder (kerasnn train) "
                "or a .keras file."
            )
        model = load(model_file, safe_mode=safe_mode).model
        recipe_file = source / "recipe.yaml"
        if recipe_file.is_file():
            from kerasnn import datasets
            from kerasnn.recipe import Recipe

            recipe = Recipe.from_yaml(recipe_file)
            data = datasets.load(**({"seed": recipe.seed} | recipe.data))
            preprocessing, probe = dataset_preprocessing(data, standardize=standardize)
    elif source.is_file():
        model = load(source, safe_mode=safe_mode).model
    else:
        raise FileNotFoundError(
            f"Nothing at {source}: expected a run folder (kerasnn train) or a .keras file."
        )
    return export(
        model, path, format=format, preprocessing=preprocessing, overwrite=overwrite, probe=probe
    )


# --------------------------------------------------------------------------------------------
# load / predict
# --------------------------------------------------------------------------------------------
def _check_input(
    x: np.ndarray, shape: tuple[int | None, ...], dtype: str, argument: str = "x"
) -> None:
    if x.dtype.kind not in "iuf":
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected a numeric array "
            f"(float or integer, converted to the model's {dtype}). Received: "
            f"{argument}.dtype={x.dtype}"
        )
    expected = tuple(shape[1:])
    got = tuple(x.shape[1:])
    fits = x.ndim == len(shape) and all(
        e is None or e == g for e, g in zip(expected, got, strict=True)
    )
    if not fits:
        raise ValueError(
            f"Received an invalid value for argument {argument}, expected a batch of samples of "
            f"shape {expected} (the model's input, batch first). Received: "
            f"{argument}.shape={x.shape}"
        )


@dataclasses.dataclass
class LoadedModel:
    """A reloaded artifact, either format, with a checked `predict`.

    Attributes:
        path: where it was loaded from.
        format: ``"saved_model"`` or ``"keras"``.
        model: the `keras.Model` (``.keras``) or the `tf.saved_model.load` object (SavedModel).
        input_shape: input shape, batch dimension `None`.
        input_dtype: input dtype name.
    """

    path: Path
    format: str
    model: Any
    input_shape: tuple[int | None, ...]
    input_dtype: str

    def predict(self, x: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Predictions for a batch of inputs, in batches of `batch_size`.

        Raises:
            ValueError: `x` is not numeric, or its samples do not have the model's input shape.
        """
        positive_int("batch_size", batch_size)
        x = np.asarray(x)
        _check_input(x, self.input_shape, self.input_dtype)
        x = x.astype(self.input_dtype, copy=False)
        if self.format == "saved_model":
            fn = getattr(self.model, SERVE_ENDPOINT)
            parts = [
                np.asarray(fn(tf.constant(x[i : i + batch_size])))
                for i in range(0, len(x), batch_size)
            ]
            return np.concatenate(parts) if parts else np.zeros((0,))
        return np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0))


def load(path: str | os.PathLike, *, safe_mode: bool = True) -> LoadedModel:
    """Loads a SavedModel folder or a ``.keras`` file written by `export` (or Keras).

    Args:
        path: a SavedModel folder (holding ``saved_model.pb``) or a ``.keras`` file.
        safe_mode: for ``.keras`` files, refuse to deserialize arbitrary Python code (Lambda
            layers). Keep it on for files you did not write; a SavedModel holds a graph, no
            Python code, and ignores it. Defaults to `True`.

    Returns:
        A `LoadedModel`.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: `path` is neither a SavedModel nor a ``.keras`` file, a SavedModel without
            a ``serve`` endpoint, or a ``.keras`` file with a Lambda layer under safe mode.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"No model at {path}: expected a SavedModel folder or a .keras file."
        )
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise ValueError(
                "Received an invalid value for argument path, expected a SavedModel folder "
                f"(with saved_model.pb) or a .keras file. Received: path={str(path)!r}"
            )
        loaded = tf.saved_model.load(str(path))
        if not hasattr(loaded, SERVE_ENDPOINT) or SERVING_SIGNATURE not in loaded.signatures:
            raise ValueError(
                f"The SavedModel at {path} has no {SERVE_ENDPOINT!r} endpoint and "
                f"{SERVING_SIGNATURE!r} signature; export it with kerasnn.export.export "
                "(or keras.Model.export)."
            )
        spec = next(
            iter(loaded.signatures[SERVING_SIGNATURE].structured_input_signature[1].values())
        )
        return LoadedModel(path, "saved_model", loaded, tuple(spec.shape), spec.dtype.name)
    if path.suffix != ".keras":
        raise ValueError(
            "Received an invalid value for argument path, expected a SavedModel folder or a "
            f".keras file. Received: path={str(path)!r}"
        )
    _register_custom_objects()
    try:
        model = keras.saving.load_model(path, safe_mode=safe_mode, compile=False)
    except ValueError as err:
        if safe_mode and "safe_mode" in str(err):
            raise ValueError(
                f"Refused to load {path} with safe_mode=True: it contains a Lambda layer (or "
                "another object) whose Python code would run on loading. If you trust the "
                "file, pass safe_mode=False (CLI: --unsafe)."
            ) from err
        raise
    shape, dtype, _ = _input_spec(model)
    return LoadedModel(path, "keras", model, shape, dtype)


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
    import csv

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
