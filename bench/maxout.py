"""Forward + backward time of Maxout(units, pieces=k) against its lower bound Dense(k * units).

What is measured:
    One step = forward pass on a batch, scalar loss ``sum(output**2)``, and the gradients of the
    loss with respect to the layer's kernel and bias (what a training step costs the layer,
    without the optimizer update), inside one `tf.function` (no XLA). Input 784 features,
    512 maxout units, k = 2 and 5, batch 128, float32, standard-normal data.

    The lower bound is ``Dense(k * units)`` on the same batch: the same matmul with the same
    parameter count, without the max. Arms:

    - ``dense_lower_bound``: `keras.layers.Dense(k * units)`.
    - ``maxout``: `kerasnn.layers.Maxout(units, pieces=k)`: one fused matmul to k*units
      piece-major columns (column i*units + j is piece i of unit j), split into k blocks of
      `units` columns, elementwise `maximum` of the blocks.
    - ``dense_then_maxout_channels``: `Dense(k * units)` + `MaxoutChannels(pieces=k)` (what the
      builders build for ``activation="maxout"``; same split + maximum).

    Implementation variants tried (benchmark-only layers defined below):

    - ``reshape_reduce_max``: one fused matmul with unit-major columns (column j*k + i), reshape
      to (batch, units, k), `max` over the last axis (TensorFlow Addons' formulation; kerasnn's
      first implementation). The gradient of a max-reduction costs several elementwise passes
      (equality mask, tie count, division) where `maximum`'s gradient is one select.
    - ``per_piece_matmuls``: k separate (784, units) matmuls combined with `maximum` (the
      textbook formula).

    Each arm is warmed up (traced, 20 steps), then timed over `--steps` steps, `--repeats` times,
    arms interleaved; the median step time is reported, and the ratio to the lower bound's
    median, for wall time and for process CPU time (all threads; less sensitive to other
    processes taking the cores). Target: maxout <= 1.2x the lower bound. The 1-minute load
    average before and after is reported: other processes on the machine skew the times.

How to run (from the repository root):
    /work/venv/bin/python bench/maxout.py            # ~1 minute on 2 CPUs
    /work/venv/bin/python bench/maxout.py --quick    # smoke run: few steps
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _common import environment
from keras import ops

from kerasnn.layers import Maxout, MaxoutChannels

INPUT_DIM = 784
UNITS = 512
BATCH = 128
TARGET_RATIO = 1.2


class PerPieceMaxout(keras.layers.Layer):
    """k separate matmuls combined with elementwise maximum (benchmark variant only)."""

    def __init__(self, units: int, pieces: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.pieces = units, pieces

    def build(self, input_shape) -> None:
        self.kernels = [
            self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")
            for _ in range(self.pieces)
        ]
        self.biases = [
            self.add_weight(shape=(self.units,), initializer="zeros") for _ in range(self.pieces)
        ]

    def call(self, x):
        out = ops.matmul(x, self.kernels[0]) + self.biases[0]
        for kernel, bias in zip(self.kernels[1:], self.biases[1:], strict=True):
            out = ops.maximum(out, ops.matmul(x, kernel) + bias)
        return out


class ReshapeMaxout(keras.layers.Layer):
    """One matmul, unit-major columns, reshape + max-reduction (benchmark variant only)."""

    def __init__(self, units: int, pieces: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.pieces = units, pieces

    def build(self, input_shape) -> None:
        width = self.units * self.pieces
        self.kernel = self.add_weight(shape=(input_shape[-1], width), initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(width,), initializer="zeros")

    def call(self, x):
        z = ops.matmul(x, self.kernel) + self.bias
        return ops.max(ops.reshape(z, (-1, self.units, self.pieces)), axis=-1)


def _arms(pieces: int) -> dict[str, Callable[[], keras.layers.Layer]]:
    width = UNITS * pieces
    return {
        "dense_lower_bound": lambda: keras.layers.Dense(width),
        "maxout": lambda: Maxout(UNITS, pieces=pieces),
        "dense_then_maxout_channels": lambda: keras.Sequential(
            [keras.layers.Dense(width), MaxoutChannels(pieces=pieces)]
        ),
        "reshape_reduce_max": lambda: ReshapeMaxout(UNITS, pieces),
        "per_piece_matmuls": lambda: PerPieceMaxout(UNITS, pieces),
    }


def _step_fn(layer: keras.layers.Layer, x: tf.Tensor) -> Callable[[], tf.Tensor]:
    layer(x)  # build
    variables = layer.trainable_variables

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        grads = tape.gradient(loss, variables)
        return tf.add_n([tf.reduce_sum(g) for g in grads])  # forces every gradient

    return step


def _time(step: Callable[[], tf.Tensor], steps: int) -> tuple[float, float]:
    """(wall, process CPU) seconds per step; CPU time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        out = step()
    out.numpy()  # wait for the last step
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 steps, 1 repeat")
    parser.add_argument("--steps", type=int, default=25, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=20, help="interleaved timing rounds")
    parser.add_argument("--pieces", type=int, nargs="+", default=[2, 5], help="values of k")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 10, 1

    load_before = os.getloadavg()[0]
    keras.utils.set_random_seed(0)
    x = tf.constant(np.random.default_rng(0).normal(size=(BATCH, INPUT_DIM)).astype("float32"))
    results = {}
    for k in args.pieces:
        steps = {name: _step_fn(make(), x) for name, make in _arms(k).items()}
        for step in steps.values():
            _time(step, 3 if args.quick else 20)  # trace + warm up
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                times[name].append(_time(step, args.steps))
        wall = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
        cpu = {name: statistics.median(c for _, c in t) for name, t in times.items()}
        bound_wall, bound_cpu = wall["dense_lower_bound"], cpu["dense_lower_bound"]
        results[f"k={k}"] = {
            name: {
                "median_step_ms": round(1e3 * wall[name], 3),
                "ratio_to_lower_bound": round(wall[name] / bound_wall, 3),
                "median_cpu_ms": round(1e3 * cpu[name], 3),
                "cpu_ratio_to_lower_bound": round(cpu[name] / bound_cpu, 3),
                "all_step_ms": [round(1e3 * w, 3) for w, _ in times[name]],
            }
            for name in steps
        }
        results[f"k={k}"]["maxout_meets_target"] = {
            "wall": wall["maxout"] / bound_wall <= TARGET_RATIO,
            "cpu": cpu["maxout"] / bound_cpu <= TARGET_RATIO,
        }

    print(
        json.dumps(
            {
                "benchmark": "maxout",
                "shape": {"input": INPUT_DIM, "units": UNITS, "batch": BATCH},
                "target_ratio": TARGET_RATIO,
                "steps": args.steps,
                "repeats": args.repeats,
                "quick": args.quick,
                "results": results,
                **environment(load_before),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
