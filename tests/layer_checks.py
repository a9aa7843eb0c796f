"""Shared checks for custom layers (Keras's `run_layer_test` pattern, on the public API only).

`run_layer_test` builds the layer, calls it eagerly and symbolically, takes one training step,
round-trips its config, saves/reloads a model holding it as `.keras` and as a SavedModel, and
runs it under a mixed-precision policy — comparing outputs with numbers every time.

`channels_first_message` and `force_channels_first_unsupported` serve the tests of layouts:
whether this machine's TensorFlow runs channels_first convolutions is probed
(`kerasnn.data_formats.supports_channels_first`); tests take the real path where it does and assert
kerasnn's error where it does not, and force the probe's answer to test the error everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasnn import data_formats

# The reason the forced probe gives, in TensorFlow's words.
FORCED_REASON = (
    "The Conv2D op currently only supports the NHWC tensor format on the CPU. The op was given "
    "the format: NCHW"
)


def probe_reason(op: str = "conv", rank: int = 2) -> str | None:
    """What the (cached) probe says about `op` here: `None` when it runs, else TF's reason."""
    return data_formats._channels_first_error(op, rank, data_formats._probe_device(), False)


def channels_first_message(
    layer: str,
    layer_class: str,
    *,
    reason: str,
    op_class: str | None = None,
    others: Sequence[str] = (),
) -> str:
    """Regex of the whole `kerasnn.data_formats.check_data_formats` error for a layer it refuses."""
    gpu = "GPU" in data_formats._probe_device()
    text = (
        f"Layer {layer!r} ({layer_class}) has data_format='channels_first', which this machine "
        f"cannot run: TensorFlow's {'GPU' if gpu else 'CPU'} kernels here support only "
        f"channels_last for {op_class or layer_class} (TensorFlow: {reason})."
    )
    if others:
        text += f" Other channels_first layers it cannot run: {', '.join(map(repr, others))}."
    text += " Build the model with data_format='channels_last', or run it on a GPU"
    text += "." if gpu else " (none is visible)."
    return f"^{re.escape(text)}$"


def force_channels_first_unsupported(
    monkeypatch: pytest.MonkeyPatch, ops: Iterable[str] = ("conv",)
) -> list[tuple[str, int, str, bool]]:
    """Makes the cached probe answer "unsupported" for `ops` (any rank, device, XLA or not).

    Returns:
        The list of probe calls, filled as they happen: ``(op, rank, device, jit_compile)``.
    """
    failing, calls = set(ops), []

    def probe(op: str, rank: int, device: str, jit_compile: bool) -> str | None:
        calls.append((op, rank, device, jit_compile))
        return FORCED_REASON if op in failing else None

    monkeypatch.setattr(data_formats, "_channels_first_error", probe)
    return calls


def _np(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def run_layer_test(
    make: Callable[..., keras.layers.Layer],
    input_shape: tuple[int, ...],
    expected_output_shape: tuple[int, ...],
    tmp_path: Path,
    *,
    export: bool = True,
    seed: int = 0,
) -> None:
    """Runs every check on the layer `make(**kwargs)` builds.

    Args:
        make: returns a new layer; called with extra keyword arguments (``dtype=...``).
        input_shape: full input shape, batch first.
        expected_output_shape: full output shape, batch first.
        tmp_path: a scratch directory (pytest's `tmp_path`).
        export: also check the SavedModel export (the slowest step, a few seconds).
        seed: seed of the random input batch.
    """
    x = np.random.default_rng(seed).normal(size=input_shape).astype("float32")

    # 1. Eager call and compute_output_shape.
    layer = make()
    y = _np(layer(x))
    assert y.shape == expected_output_shape
    assert tuple(layer.compute_output_shape(input_shape)) == expected_output_shape
    assert np.all(np.isfinite(y))

    # 2. Symbolic call: the functional API sees the same shape (batch left unknown).
    inputs = keras.Input(input_shape[1:])
    sym_layer = make()
    outputs = sym_layer(inputs)
    assert tuple(outputs.shape) == (None, *expected_output_shape[1:])
    model = keras.Model(inputs, outputs)
    model.set_weights(layer.get_weights())
    np.testing.assert_allclose(_np(model(x)), y, rtol=1e-6, atol=1e-6)

    # 3. One training step changes every trainable weight and gives a finite loss; a layer
    #    without weights must pass a non-zero gradient back to its input instead.
    target = np.random.default_rng(seed + 1).normal(size=expected_output_shape).astype("float32")
    if sym_layer.trainable_weights:
        before = [_np(w).copy() for w in sym_layer.trainable_weights]
        model.compile(keras.optimizers.SGD(0.1), "mse")
        loss = model.train_on_batch(x, target)
        assert np.isfinite(loss)
        for w, old in zip(sym_layer.trainable_weights, before, strict=True):
            assert not np.allclose(_np(w), old), f"{w.path} did not change in a training step"
    else:
        x_var = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_var)
            loss = keras.ops.mean((model(x_var) - target) ** 2)
        grad = _np(tape.gradient(loss, x_var))
        assert np.all(np.isfinite(grad)) and np.any(grad != 0)
    y_trained = _np(model(x))

    # 4. Config round trip: same config, and the same outputs with the same weights.
    config = sym_layer.get_config()
    clone = sym_layer.__class__.from_config(config)
    assert clone.get_config() == config
    clone.build(input_shape)
    clone.set_weights(sym_layer.get_weights())
    np.testing.assert_allclose(_np(clone(x)), y_trained, rtol=1e-6, atol=1e-6)

    # 5. .keras save -> load (no custom_objects: the layer is registered) -> same outputs.
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.layers[-1]) is type(sym_layer)
    np.testing.assert_allclose(_np(reloaded(x)), y_trained, rtol=1e-6, atol=1e-6)

    # 6. SavedModel export -> tf.saved_model.load -> same outputs.
    if export:
        export_dir = tmp_path / "saved_model"
        model.export(str(export_dir), format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(str(export_dir))  # keep a reference: it owns the variables
        served = loaded.serve(tf.constant(x))
        np.testing.assert_allclose(_np(served), y_trained, rtol=1e-5, atol=1e-6)

    # 7. Mixed precision: float16 compute, float32 weights, same function up to float16 error.
    mixed = make(dtype="mixed_float16")
    y16 = mixed(x)
    assert keras.backend.standardize_dtype(y16.dtype) == "float16"
    for w in mixed.weights:
        assert keras.backend.standardize_dtype(w.dtype) == "float32", w.path
    mixed.set_weights(layer.get_weights())
    y16 = _np(mixed(x)).astype("float32")
    scale = max(1.0, float(np.abs(y).max()))
    np.testing.assert_allclose(y16, y, rtol=1e-2, atol=1e-2 * scale)
    # gradients flow through the float16 computation to the float32 weights
    if mixed.trainable_weights:
        with tf.GradientTape() as tape:
            out = keras.ops.sum(keras.ops.cast(mixed(x), "float32"))
        grads = tape.gradient(out, mixed.trainable_weights)
        assert all(g is not None and np.all(np.isfinite(_np(g))) for g in grads)
