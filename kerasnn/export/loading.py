"""`load`: an exported artifact (SavedModel folder or ``.keras`` file) read back, with a
`predict` that checks the input's shape and dtype."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._registration import register as _register_custom_objects
from kerasnn._validation import positive_int
from kerasnn.export._serving import SERVE_ENDPOINT, SERVING_SIGNATURE, check_input, input_spec

__all__ = ["LoadedModel", "load"]


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
        check_input(x, self.input_shape, self.input_dtype)
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
    shape, dtype, _ = input_spec(model)
    return LoadedModel(path, "keras", model, shape, dtype)
