"""Epoch time of the digits MLP with kerasnn's monitoring callbacks vs without.

What is measured:
    The digits MLP (64-256-256-10, relu; Adam 1e-3; batch 32) trained with `kerasnn.fit`
    (``validation_split=0``, no early stopping, default ``steps_per_execution="auto"``) for
    ``--epochs`` epochs, in five arms:

    - ``none``: no extra callback (the learning rate is still logged: kerasnn always does);
    - ``grad_norms_default``: `GradientNorms()` (a record every 100 steps + once per epoch);
    - ``grad_norms_every_step``: `GradientNorms(every_n_steps=1)`: a record of every optimizer
      step, read out of the fused executions (fit keeps fusing the whole epoch);
    - ``update_ratios``: `UpdateRatios()` (the last update of each epoch);
    - ``update_ratios_every_step``: `UpdateRatios(every_n_steps=1)`;
    - ``activation_stats``: `ActivationStats()` (512-sample probe, 40-bin histograms, per epoch);
    - ``activation_stats_no_hist``: `ActivationStats(bins=None)`.

    GradientNorms and UpdateRatios measure inside every train step whatever they keep (the
    record rhythm only decides what is read out), so their every-step and default arms cost
    about the same.

    The arms alternate for ``--repeats`` rounds in one process after an untimed 1-epoch warm-up
    of each. An epoch's time runs from its start to the end of the last callback's epoch-end
    work (so it includes the gradient-norm / activation computations); the first epoch of each
    run (graph tracing) is left out and the median epoch taken. Ratios are median arm time /
    median ``none`` time. Target (issue 19): ``grad_norms_every_step`` ≤ 1.05. The cost of one
    ActivationStats epoch end is also timed alone (``cost_ms_per_call``). Nothing is asserted;
    one JSON object is printed.

How to run (from the repository root):
    /work/venv/bin/python bench/callbacks.py            # 3 rounds of 20 epochs, ~1-2 minutes
    /work/venv/bin/python bench/callbacks.py --quick    # 1 round of 3 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf
from _common import environment
from _timing import EpochTimer

import kerasnn as knn
from kerasnn.callbacks import ActivationStats, GradientNorms, UpdateRatios

SEED = 0
TARGET_RATIO = 1.05

ARMS = {
    "none": lambda: [],
    "grad_norms_default": lambda: [GradientNorms()],
    "grad_norms_every_step": lambda: [GradientNorms(every_n_steps=1)],
    "update_ratios": lambda: [UpdateRatios()],
    "update_ratios_every_step": lambda: [UpdateRatios(every_n_steps=1)],
    "activation_stats": lambda: [ActivationStats()],
    "activation_stats_no_hist": lambda: [ActivationStats(bins=None)],
}


def epoch_time(data: knn.Dataset, arm: str, epochs: int) -> tuple[float, int]:
    """Median seconds per epoch of one run of `arm` (the first epoch, which traces the graphs,
    left out), and the steps fused per execution."""
    keras.utils.set_random_seed(SEED)
    model = knn.compile(knn.models.mlp(data, hidden=[256, 256]), "adam", learning_rate=1e-3)
    result = knn.fit(
        model,
        data,
        epochs=epochs,
        batch_size=32,
        validation_split=0.0,
        early_stopping=False,
        callbacks=[*ARMS[arm](), timer := EpochTimer()],
        seed=SEED,
        verbose=0,
    )
    return statistics.median(timer.times[1:] or timer.times), result.steps_per_execution


def callback_costs(data: knn.Dataset, calls: int) -> dict[str, float]:
    """Milliseconds per computation, timed alone (robust to a busy machine's epoch noise)."""
    keras.utils.set_random_seed(SEED)
    model = knn.compile(knn.models.mlp(data, hidden=[256, 256]), "adam", learning_rate=1e-3)
    stats, stats_plain = ActivationStats(), ActivationStats(bins=None)
    knn.fit(
        model,
        data,
        epochs=1,
        validation_split=0.0,
        early_stopping=False,
        verbose=0,
        callbacks=[stats, stats_plain],
    )
    out = {}
    for name, call in (
        ("activation_stats_epoch_end", lambda: stats.on_epoch_end(0, {})),
        ("activation_stats_no_hist_epoch_end", lambda: stats_plain.on_epoch_end(0, {})),
    ):
        call()
        start = time.perf_counter()
        for _ in range(calls):
            call()
        out[name] = round(1000 * (time.perf_counter() - start) / calls, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3 epochs")
    args = parser.parse_args()
    repeats, epochs = (1, 3) if args.quick else (args.repeats, args.epochs)

    tf.get_logger().setLevel("ERROR")
    load_before = os.getloadavg()[0]
    data = knn.datasets.load("digits", test_size=0.2, seed=SEED)
    for arm in ARMS:
        epoch_time(data, arm, 1)
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    fused: dict[str, int] = {}
    for _ in range(repeats):
        for arm in ARMS:
            seconds, fused[arm] = epoch_time(data, arm, epochs)
            times[arm].append(seconds)
    medians = {arm: statistics.median(values) for arm, values in times.items()}
    costs = callback_costs(data, 10 if args.quick else 50)
    ratios = {arm: round(medians[arm] / medians["none"], 3) for arm in ARMS if arm != "none"}
    report = {
        "benchmark": "callbacks",
        "setup": {
            "dataset": "digits (test_size=0.2, seed=0, standardized), all 1437 train samples",
            "model": "64-256-256-10 relu, adam 1e-3, batch 32",
            "epochs": epochs,
            "repeats": repeats,
            "timing": "per-epoch wall time (epoch begin to the end of every callback's "
            "on_epoch_end), first epoch of each run left out (graph tracing); median over "
            "epochs, then over rounds",
        },
        "epoch_ms": {arm: round(1000 * m, 2) for arm, m in medians.items()},
        "epoch_ms_all": {arm: [round(1000 * t, 2) for t in ts] for arm, ts in times.items()},
        "steps_per_execution": fused,
        "ratio_vs_none": ratios,
        "cost_ms_per_call": costs,
        "target_ratio_grad_norms_every_step": TARGET_RATIO,
        "target_met": ratios["grad_norms_every_step"] <= TARGET_RATIO,
        **environment(load_before),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
