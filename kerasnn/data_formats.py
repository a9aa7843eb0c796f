"""Can this machine run channels_first layers? Probed, not guessed, and said clearly.

TensorFlow's own CPU kernels for convolutions accept only channels_last (NHWC); oneDNN's (on by
default only on some x86-64 CPUs), cuDNN's and XLA's accept channels_first too. So on one CPU a
channels_first model trains and on another it stops inside TensorFlow with "The Conv2D op
currently only supports the NHWC tensor format on the CPU". `supports_channels_first` runs the
op once on a tiny tensor and caches the answer; `check_data_formats(model)` raises an error
naming the layer and the fix, and kerasnn's builders, `lsuv` and `kerasnn.fit` call it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import keras
import tensorflow as tf

from kerasnn._validation import invalid, one_of

__all__ = ["CHANNELS_FIRST_OPS", "check_data_formats", "supports_channels_first"]


# --------------------------------------------------------------------------------------------
# data formats: can this machine run channels_first layers?
# --------------------------------------------------------------------------------------------
# The Keras ops whose TensorFlow kernels run in the layer's data_format. TensorFlow's CPU kernels
# for some of them accept only channels_last (NHWC) unless oneDNN supplies its own (oneDNN is on
# only on some x86-64 CPUs), so whether channels_first runs is probed, not guessed from CPU flags.
CHANNELS_FIRST_OPS = (
    "conv",
    "conv_transpose",
    "depthwise_conv",
    "separable_conv",
    "max_pool",
    "average_pool",
)
_OP_RANKS = {"depthwise_conv": (1, 2), "separable_conv": (1, 2)}  # the others: 1, 2 and 3

# Keras layers -> (op, spatial rank). Other layers with a data_format (Flatten, UpSampling2D,
# GlobalAveragePooling2D, ZeroPadding2D, ...) are reshapes and reductions that run in any layout.
_LAYER_OPS: dict[type, tuple[str, int]] = {
    keras.layers.Conv1D: ("conv", 1),
    keras.layers.Conv2D: ("conv", 2),
    keras.layers.Conv3D: ("conv", 3),
    keras.layers.Conv1DTranspose: ("conv_transpose", 1),
    keras.layers.Conv2DTranspose: ("conv_transpose", 2),
    keras.layers.Conv3DTranspose: ("conv_transpose", 3),
    keras.layers.DepthwiseConv1D: ("depthwise_conv", 1),
    keras.layers.DepthwiseConv2D: ("depthwise_conv", 2),
    keras.layers.SeparableConv1D: ("separable_conv", 1),
    keras.layers.SeparableConv2D: ("separable_conv", 2),
    keras.layers.MaxPooling1D: ("max_pool", 1),
    keras.layers.MaxPooling2D: ("max_pool", 2),
    keras.layers.MaxPooling3D: ("max_pool", 3),
    keras.layers.AveragePooling1D: ("average_pool", 1),
    keras.layers.AveragePooling2D: ("average_pool", 2),
    keras.layers.AveragePooling3D: ("average_pool", 3),
}


def _probe_device() -> str:
    """Where Keras runs a model by default: the first GPU when one is visible, else the CPU."""
    return "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"


def _probe_call(op: str, rank: int) -> tuple[list[Any], Any]:
    """Tiny channels_first inputs (batch 1, 2 channels, 4 per spatial axis) and the op on them."""
    window = (2,) * rank
    x = tf.reshape(tf.range(2 * 4**rank, dtype=tf.float32) / 10.0, (1, 2, *(4,) * rank))
    ops, cf = keras.ops, "channels_first"
    if op == "conv":
        return [x, tf.ones((*window, 2, 3))], lambda x, k: ops.conv(x, k, data_format=cf)
    if op == "conv_transpose":  # kernel (*window, out, in)
        return [x, tf.ones((*window, 3, 2))], lambda x, k: ops.conv_transpose(
            x, k, strides=1, data_format=cf
        )
    if op == "depthwise_conv":
        return [x, tf.ones((*window, 2, 1))], lambda x, k: ops.depthwise_conv(x, k, data_format=cf)
    if op == "separable_conv":
        tensors = [x, tf.ones((*window, 2, 1)), tf.ones(((1,) * rank) + (2, 3))]
        return tensors, lambda x, d, p: ops.separable_conv(x, d, p, data_format=cf)
    pool = ops.max_pool if op == "max_pool" else ops.average_pool
    return [x], lambda x: pool(x, 2, data_format=cf)


def _tf_reason(err: tf.errors.OpError) -> str:
    """The first meaningful line of a TensorFlow error, without its node and op decorations."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", err.message)
    text = re.sub(r"\s*\[Op:[^\]]*\].*", "", text, flags=re.DOTALL)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


@functools.cache
def _channels_first_error(op: str, rank: int, device: str, jit_compile: bool) -> str | None:
    """Runs `op` in channels_first, forward and gradient, on `device`; cached per arguments.

    Returns:
        `None` when it runs, else TensorFlow's reason (e.g. "The Conv2D op currently only
        supports the NHWC tensor format on the CPU. ...").
    """
    if not tf.executing_eagerly():
        raise RuntimeError(
            "kerasnn.data_formats probes channels_first support eagerly: call "
            "supports_channels_first / check_data_formats outside tf.function (e.g. before "
            "model.fit)."
        )
    with tf.device(device):
        tensors, call = _probe_call(op, rank)

        def step(*tensors: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(tensors)
                out = tf.reduce_sum(call(*tensors))
            return tape.gradient(out, list(tensors))

        if jit_compile:
            step = tf.function(step, jit_compile=True)
        try:
            for grad in step(*tensors):
                grad.numpy()
        except tf.errors.OpError as err:
            return _tf_reason(err)
    return None


def supports_channels_first(op: str = "conv", rank: int = 2, *, jit_compile: bool = False) -> bool:
    """Whether TensorFlow runs a channels_first Keras op on this machine, forward and backward.

    Not guessed from CPU flags: the first call per (op, rank, device, jit_compile) runs the op
    on a tiny tensor and its gradient on the device Keras uses (the first GPU when one is
    visible, else the CPU) and catches TensorFlow's error; the answer is cached. TensorFlow's
    own CPU kernels for convolutions accept only channels_last (NHWC); oneDNN's, on by default
    only on some x86-64 CPUs, accept channels_first too; XLA's (``jit_compile=True``) and
    cuDNN's accept both. Running the probe initialises TensorFlow's devices (see
    `kerasnn.devices.configure`).

    Args:
        op: the Keras op: one of ``"conv"`` (`Conv1D/2D/3D`), ``"conv_transpose"``,
            ``"depthwise_conv"``, ``"separable_conv"``, ``"max_pool"``, ``"average_pool"``.
            Defaults to ``"conv"``.
        rank: number of spatial axes: 1, 2 or 3 (1 or 2 for depthwise and separable
            convolutions). Defaults to 2.
        jit_compile: probe the op compiled with XLA, as in a model compiled with
            ``jit_compile=True``. Defaults to `False`.

    Returns:
        `True` when the op and its gradient run in channels_first.

    Raises:
        ValueError: an unknown `op`, a `rank` the op does not have, a non-boolean
            `jit_compile`.

    Example:

    >>> supports_channels_first("conv", 2) in (True, False)
    True
    """
    one_of("op", op, CHANNELS_FIRST_OPS)
    ranks = _OP_RANKS.get(op, (1, 2, 3))
    if isinstance(rank, bool) or rank not in ranks:
        raise invalid("rank", f"one of {', '.join(map(str, ranks))} for op={op!r}", rank)
    if not isinstance(jit_compile, bool):
        raise invalid("jit_compile", "True or False", jit_compile)
    return _channels_first_error(op, rank, _probe_device(), jit_compile) is None


def _all_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """`layer` and, for models, every layer inside them (nested models entered), once each."""
    found: dict[int, keras.layers.Layer] = {}
    stack = [layer]
    while stack:
        current = stack.pop()
        if id(current) in found:
            continue
        found[id(current)] = current
        if isinstance(current, keras.Model):
            stack.extend(reversed(current.layers))
    return list(found.values())


def _layer_op(layer: keras.layers.Layer) -> tuple[type, str, int] | None:
    """The Keras base class and (op, rank) of a layer with a layout-bound kernel, else `None`."""
    for cls in type(layer).__mro__:
        if cls in _LAYER_OPS:
            return (cls, *_LAYER_OPS[cls])
    return None


def check_data_formats(model: keras.layers.Layer, *, jit_compile: bool | None = None) -> None:
    """Raises a clear error if `model` has channels_first layers this machine cannot run.

    Every conv and pooling layer (nested models included) with
    ``data_format="channels_first"`` is checked with `supports_channels_first` for its op: on
    CPUs where TensorFlow's kernels support only channels_last, training or even calling the
    model would otherwise stop inside TensorFlow ("The Conv2D op currently only supports the
    NHWC tensor format on the CPU"). Models without channels_first layers are not probed.
    kerasnn's builders call it on the model they build; call it before training a model built
    by hand.

    Args:
        model: a Keras model or layer.
        jit_compile: whether the model runs compiled with XLA (which has channels_first CPU
            kernels). Defaults to `None`: the compiled model's ``model.jit_compile``
            (`False` for a model not compiled yet).

    Raises:
        ValueError: a channels_first layer whose op this machine cannot run; the message names
            the layer, its data_format, TensorFlow's reason and the fix (channels_last, or a
            GPU), and lists the other such layers.
        TypeError: `model` is not a Keras layer or model.

    Example:

    >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    >>> check_data_formats(model)  # channels_last: nothing to check
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "Received an invalid value for argument model, expected a keras.Model or "
            f"keras.layers.Layer. Received: model={model!r} of type {type(model).__name__}"
        )
    if jit_compile is None:
        jit_compile = getattr(model, "jit_compile", False) is True
    elif not isinstance(jit_compile, bool):
        raise invalid("jit_compile", "None, True or False", jit_compile)
    candidates = []
    for layer in _all_layers(model):
        found = _layer_op(layer)
        if found is not None and getattr(layer, "data_format", None) == "channels_first":
            candidates.append((layer, *found))
    if not candidates:
        return
    device = _probe_device()
    failing = []
    for layer, base, op, rank in candidates:
        reason = _channels_first_error(op, rank, device, jit_compile)
        if reason is not None:
            failing.append((layer, base, reason))
    if not failing:
        return
    layer, base, reason = failing[0]
    kernels = ("GPU" if "GPU" in device else "CPU") + (" (XLA)" if jit_compile else "")
    others = ""
    if len(failing) > 1:
        names = ", ".join(repr(f[0].name) for f in failing[1:])
        others = f" Other channels_first layers it cannot run: {names}."
    gpu = "run it on a GPU" + ("" if "GPU" in device else " (none is visible)")
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) has data_format='channels_first', "
        f"which this machine cannot run: TensorFlow's {kernels} kernels here support only "
        f"channels_last for {base.__name__} (TensorFlow: {reason}).{others} Build the model "
        f"with data_format='channels_last', or {gpu}."
    )
