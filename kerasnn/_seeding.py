"""Seeding Python, NumPy, Keras and TensorFlow for `fit`, without needless cache clears."""

from __future__ import annotations

import random

import keras
import numpy as np
import tensorflow as tf

__all__ = ["seed_everything"]

# What `tf.compat.v1.get_seed` reports as the global seed when none was set.
_UNSET_TF_SEED = 87654321


def seed_everything(seed: int) -> None:
    """`keras.utils.set_random_seed(seed)`, skipping TensorFlow when it already has `seed`.

    `tf.random.set_seed` clears TensorFlow's kernel caches for the whole process, so the next
    call of every compiled function (a model's train function above all) is instantiated and
    optimized again: ~0.5 s at the start of each `kerasnn.fit` of a 784-512-512-10 MLP. When
    TensorFlow's global seed already is `seed`, only Python's and NumPy's generators are
    seeded again; TensorFlow's sequence of per-op seeds (and Keras's global seed generator,
    for unseeded `keras.random` calls) then go on from where they were instead of starting
    over. Keras layers draw their randomness from their own seed generators, which neither
    call resets, so trained results are the same either way; a fresh process with the same
    seed gives the same results.

    Args:
        seed: the seed, an int.
    """
    if seed != _UNSET_TF_SEED and tf.compat.v1.get_seed(0)[0] == seed:
        random.seed(seed)
        np.random.seed(seed)
        return
    keras.utils.set_random_seed(seed)
