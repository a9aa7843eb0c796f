"""Test-wide setup: TensorFlow backend, quiet logs, a fixed seed before every test."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasnn._quiet import import_tensorflow

import_tensorflow()  # TensorFlow's CPU start-up notes (CUDA probing) stay out of the output

import keras  # noqa: E402 (after the quiet TensorFlow import)
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same global seed (Python, NumPy, TensorFlow)."""
    keras.utils.set_random_seed(1337)
    yield
    # free_memory=False skips a full garbage collection per test (~0.3 s each).
    keras.backend.clear_session(free_memory=False)
