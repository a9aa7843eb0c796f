"""The output softmax of a training step computed with TensorFlow's plain kernels.

On x86 CPUs TensorFlow runs ``tf.nn.softmax`` as oneDNN's softmax, which splits even a
128×10 softmax over every core and waits for each: during training the other core is busy with
the backward pass (or the input pipeline), and on 2 cores each call took 355 µs (28 µs alone),
8 % of an epoch of the MNIST-shaped MLP (bench/mnist_shape.py). The same function written with
TensorFlow's element-wise and reduction kernels (``exp(x - max) · 1/Σ``, the formula of
TensorFlow's own softmax kernel) runs on one core in a few µs.

In training the softmax output only feeds the metrics: a (sparse) categorical cross-entropy
loss reads the logits the softmax keeps (``_keras_logits``), so the loss, the gradients and the
updates are the same bit for bit; the probabilities the metrics see may differ from oneDNN's in
the last bits. `plain_softmax` swaps the function in only for models with such a loss, only
while the train step is traced, and not under XLA (which compiles the softmax itself); models
keep Keras's softmax everywhere else (config, saving, predict, export).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf

__all__ = ["plain_softmax", "reads_logits", "softmax"]

# Losses whose Keras implementation reads the logits a softmax output keeps.
_LOGIT_LOSSES = ("categoricalcrossentropy", "sparsecategoricalcrossentropy")


def softmax(x: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """``keras.activations.softmax`` with TensorFlow's element-wise and reduction kernels.

    Args:
        x: the logits.
        axis: the axis the probabilities sum to 1 along. Defaults to -1.

    Returns:
        The probabilities, with the logits kept as ``_keras_logits`` (as Keras's softmax
        does), so that a cross-entropy loss computes from them.

    Example:

    >>> p = softmax(tf.constant([[0.0, 1.0, 2.0]]))
    >>> [round(float(v), 4) for v in p[0]]
    [0.09, 0.2447, 0.6652]
    """
    exp = tf.exp(x - tf.reduce_max(x, axis=axis, keepdims=True))
    out = exp * tf.math.reciprocal(tf.reduce_sum(exp, axis=axis, keepdims=True))
    out._keras_logits = x
    return out


def reads_logits(loss: Any) -> bool:
    """Whether a compiled model's `loss` is one that computes from a softmax's logits."""
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)
    return isinstance(name, str) and name.lower().replace("_", "") in _LOGIT_LOSSES


@contextlib.contextmanager
def plain_softmax(model: keras.Model) -> Iterator[int]:
    """Gives the model's softmax layers `softmax` while inside, Keras's again on exit.

    Swaps the ``activation`` of every layer (nested models included) whose activation is
    ``keras.activations.softmax`` (``Dense(..., activation="softmax")``,
    ``Activation("softmax")``), when the model's loss reads the logits (`reads_logits`) and the
    model is not compiled with XLA. Meant for the time the train step is traced.

    Yields:
        The number of layers swapped.
    """
    swapped: list[keras.layers.Layer] = []
    if reads_logits(model.loss) and not model.jit_compile:
        for layer in _layers(model):
            if getattr(layer, "activation", None) is keras.activations.softmax:
                layer.activation = softmax
                swapped.append(layer)
    try:
        yield len(swapped)
    finally:
        for layer in swapped:
            layer.activation = keras.activations.softmax


def _layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    """Every layer of `model`, those of nested models too."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
