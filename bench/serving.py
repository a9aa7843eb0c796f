"""Prediction latency: reloaded SavedModel ``serve`` vs ``model.predict`` vs ``model(x)``.

What is measured:
    The digits MLP (64-256-256-10, relu, softmax) with the training split's standardization
    baked in (`kerasnn.export.export(..., preprocessing=data.standardizer)`), so all three paths
    compute the same thing on raw inputs:

    - ``saved_model_serve``: the exported SavedModel reloaded with `tf.saved_model.load`, its
      ``serve`` endpoint called on a `tf.constant` batch (what a Python server does);
    - ``model_predict``: ``model.predict(x, verbose=0)`` on the in-memory Keras model;
    - ``model_call``: ``model(x, training=False)`` (eager call of the Keras model).

    Each is timed for a 1-sample and a 256-sample batch: ``--warmup`` untimed calls, then
    ``--repeats`` timed calls; the median, 10th and 90th percentiles are reported in
    milliseconds, with samples/s at the median. Outputs of the three paths are compared (max
    abs diff). The 1-minute load average before and after is reported: other processes on the
    machine skew the times. Nothing is asserted; one JSON object is printed on stdout.

How to run (from the repository root):
    /work/venv/bin/python bench/serving.py            # 200 repeats, ~1 minute on 2 CPUs
    /work/venv/bin/python bench/serving.py --quick    # smoke run: 20 repeats
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _common import environment

import kerasnn as knn
from kerasnn import export

BATCHES = (1, 256)


def timings(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Seconds per call of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def summary(seconds: list[float], batch: int) -> dict[str, float]:
    """Median and 10th/90th percentiles in ms, samples/s at the median."""
    q = statistics.quantiles(seconds, n=10)
    median = statistics.median(seconds)
    return {
        "median_ms": round(1e3 * median, 4),
        "p10_ms": round(1e3 * q[0], 4),
        "p90_ms": round(1e3 * q[-1], 4),
        "samples_per_s": round(batch / median, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 repeats, 5 warm-up")
    args = parser.parse_args()
    repeats, warmup = (20, 5) if args.quick else (args.repeats, args.warmup)

    load_before = os.getloadavg()[0]
    data = knn.datasets.load("digits", seed=0)
    keras.utils.set_random_seed(0)
    trained = knn.models.mlp(data, hidden=[256, 256])
    # The in-memory model the SavedModel is compared with: raw input -> standardize -> MLP.
    raw = keras.Input(data.input_shape, name="inputs")
    model = keras.Model(raw, trained(data.standardizer.as_layer()(raw)))
    x_raw = data.standardizer.inverse_transform(data.x_test).astype("float32")
    inputs = {b: np.resize(x_raw, (b, *x_raw.shape[1:])) for b in BATCHES}

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits_sm"
        result = export.export(trained, path, preprocessing=data.standardizer, probe=x_raw)
        served = tf.saved_model.load(str(path))
        arms: dict[str, Callable[[np.ndarray], object]] = {
            "saved_model_serve": lambda x: served.serve(tf.constant(x)),
            "model_predict": lambda x: model.predict(x, verbose=0),
            "model_call": lambda x: model(x, training=False),
        }
        figures: dict[str, dict[str, dict[str, float]]] = {name: {} for name in arms}
        for batch, x in inputs.items():
            for name, fn in arms.items():
                seconds = timings(lambda fn=fn, x=x: fn(x), warmup, repeats)
                figures[name][f"batch_{batch}"] = summary(seconds, batch)
        x = inputs[256]
        outputs = {name: np.asarray(fn(x)) for name, fn in arms.items()}
        max_diff = max(float(np.max(np.abs(outputs[a] - outputs["model_call"]))) for a in outputs)

    report = {
        "benchmark": "serving",
        "setup": {
            "model": f"digits {data.input_shape[0]}-256-256-{data.output_units} relu, "
            "standardization baked in",
            "batches": list(BATCHES),
            "repeats": repeats,
            "warmup": warmup,
            "export_seconds_incl_fresh_process_verification": round(result.seconds, 2),
            "export_max_abs_diff": result.max_abs_diff,
        },
        "latency": figures,
        "max_abs_diff_between_paths": max_diff,
        **environment(load_before),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
