"""Training throughput of the Keras mnist_mlp network, raw Keras vs kerasnn, vs the matmul limit.

What is measured:
    The classic Keras ``mnist_mlp`` example network (784-512-512-10, relu, dropout 0.2 after
    each hidden layer, softmax; RMSprop with its defaults; batch 128) trained on 60 000
    synthetic MNIST-shaped samples (``np.random.default_rng(0)``: x uniform float32 in [0, 1),
    y integers 0..9 — nothing is downloaded). Each arm builds its model (after
    ``keras.utils.set_random_seed(0)``), runs one untimed 1-epoch warm-up fit (tracing, XLA
    compilation), then one timed fit of ``--epochs`` epochs:

    - ``raw``: ``model.fit(x, y, batch_size=128, epochs=N, verbose=0)`` with Keras defaults.
    - ``raw_spe32``: the same, compiled with ``steps_per_execution=32``.
    - ``kerasnn``: ``knn.models.mlp((784,), hidden=[512, 512], outputs=10, dropout=0.2)``,
      ``knn.compile(model, "rmsprop")`` (kerasnn's fused RMSprop), ``knn.fit(model, (x, y),
      batch_size=128, validation_split=0, early_stopping=False, epochs=N, verbose=0)``.
    - ``kerasnn_stock_rmsprop``: the same with Keras's own RMSprop update
      (``knn.optimizers.get("rmsprop", fused=False)``): what the fused update is worth.
    - ``kerasnn_jit``: the same as ``kerasnn`` with ``knn.compile(..., jit_compile=True)`` (XLA).
    - ``kerasnn_bf16``: the same as ``kerasnn`` built under
      ``knn.devices.configure(mixed_precision="mixed_bfloat16")`` (bfloat16 matmuls, float32
      weights and output layer). Its fraction is reported against both the float32 limit and
      the bfloat16 matmul limit (same 2048² matmul in bfloat16), since it does not do the
      same arithmetic as the other arms. Only run when the CPU has native bfloat16 (the
      ``avx512_bf16``/``amx_bf16`` flags): elsewhere it is emulated and says nothing.
    - ``tf_loop_rmsprop`` / ``tf_loop_sgd``: the ceiling — the three matmuls (no dropout) and
      the optimizer update (TensorFlow's fused ``ResourceApplyRMSProp`` / plain SGD) written by
      hand in one ``tf.function`` per epoch over in-memory batches, no Keras, no tf.data, no
      metrics: the best any Keras loop could do for this network here.

    Throughput is ``N × 60 000 / fit_s`` samples/s, where ``fit_s`` is the ``model.fit`` call
    (for kerasnn, ``FitResult.wall_time``; the whole ``knn.fit`` call, which also checks the
    arrays, is reported as ``call_s``). Achieved GFLOP/s counts only the dense layers' matmuls:
    ``FLOPS_PER_SAMPLE = 3 × 2 × (784·512 + 512·512 + 512·10)`` (forward, plus 2× for the
    backward pass), ignoring biases, activations, dropout, loss and optimizer.

    The machine's matmul limit is the best GFLOP/s of a float32 ``tf.matmul`` of two
    2048×2048 matrices (``--matmul-reps`` timed reps after 2 warm-ups), measured in the same
    process before each arm and after the last (the highest is used); each arm's
    ``fraction_of_matmul_limit`` is its GFLOP/s over that. The 1-minute load average before and
    after is reported: other processes on the machine skew every figure. For context the rate of
    the network's own forward matmuls at batch 128 (eager) is reported too. The issue's target
    is kerasnn ≥ 50 % of the matmul limit. Nothing is asserted; one JSON object is printed on
    stdout.

How to run (from the repository root):
    /work/venv/bin/python bench/mnist_shape.py             # 3 timed epochs per arm, ~2 minutes
    /work/venv/bin/python bench/mnist_shape.py --quick     # smoke run: 6 000 samples, 1 epoch
    /work/venv/bin/python bench/mnist_shape.py --epochs 5 --skip-extra
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

# Set before TensorFlow is first imported: it reads these once.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _common import environment

import kerasnn as knn

SEED = 0
N_SAMPLES = 60_000
N_FEATURES = 784
HIDDEN = 512
N_CLASSES = 10
DROPOUT = 0.2
BATCH_SIZE = 128
LAYER_SHAPES = ((N_FEATURES, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, N_CLASSES))
FLOPS_PER_SAMPLE = 3 * 2 * sum(n_in * n_out for n_in, n_out in LAYER_SHAPES)
FLOPS_FORMULA = "3 * 2 * (784*512 + 512*512 + 512*10)"
MATMUL_SIZE = 2048
TARGET_FRACTION = 0.5

Arrays = tuple[np.ndarray, np.ndarray]


def synthetic_mnist(n_samples: int) -> Arrays:
    """MNIST-shaped random data: x uniform float32 in [0, 1), labels 0..9."""
    rng = np.random.default_rng(SEED)
    x = rng.random((n_samples, N_FEATURES), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, size=n_samples)
    return x, y


def matmul_gflops(size: int, reps: int, dtype: str = "float32") -> dict[str, float]:
    """Best and median GFLOP/s of a ``size``×``size`` matmul (2·size³ flops each)."""
    a = tf.cast(tf.random.uniform((size, size), seed=SEED), dtype)
    b = tf.cast(tf.random.uniform((size, size), seed=SEED + 1), dtype)
    rates = []
    for i in range(reps + 2):
        start = time.perf_counter()
        c = tf.matmul(a, b)
        c[0, 0].numpy()  # forces the product to be computed before the clock stops
        if i >= 2:  # the first two are warm-up
            rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return {"best": round(max(rates), 2), "median": round(statistics.median(rates), 2)}


def forward_matmul_gflops(reps: int) -> float:
    """GFLOP/s of the network's three forward matmuls at batch 128, run eagerly."""
    h = [tf.random.uniform((BATCH_SIZE, n_in), seed=SEED) for n_in, _ in LAYER_SHAPES]
    w = [tf.random.uniform(shape, seed=SEED) for shape in LAYER_SHAPES]
    flops = 2 * BATCH_SIZE * sum(n_in * n_out for n_in, n_out in LAYER_SHAPES)
    for hi, wi in zip(h, w, strict=True):  # warm-up
        tf.matmul(hi, wi)[0, 0].numpy()
    start = time.perf_counter()
    for _ in range(reps):
        for hi, wi in zip(h, w, strict=True):
            out = tf.matmul(hi, wi)
    out[0, 0].numpy()
    return round(reps * flops / (time.perf_counter() - start) / 1e9, 2)


def raw_model(steps_per_execution: int = 1) -> keras.Model:
    """The Keras mnist_mlp example network, compiled with RMSprop and sparse labels."""
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dropout(DROPOUT),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dropout(DROPOUT),
            keras.layers.Dense(N_CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def run_raw(data: Arrays, epochs: int, steps_per_execution: int = 1) -> dict[str, float]:
    """Arms ``raw`` / ``raw_spe32``: warm-up epoch, then a timed ``model.fit``."""
    model = raw_model(steps_per_execution)
    x, y = data
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    return {"fit_s": time.perf_counter() - start}


def run_kerasnn(
    data: Arrays,
    epochs: int,
    jit_compile: bool = False,
    fused: bool = True,
    mixed_precision: str | None = None,
) -> dict[str, float]:
    """Arms ``kerasnn*``: warm-up 1-epoch fit, then a timed `knn.fit`."""
    keras.utils.set_random_seed(SEED)
    if mixed_precision:
        knn.devices.configure(mixed_precision=mixed_precision)
    try:
        model = knn.models.mlp(
            (N_FEATURES,), hidden=[HIDDEN, HIDDEN], outputs=N_CLASSES, dropout=DROPOUT
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    knn.compile(model, knn.optimizers.get("rmsprop", fused=fused), jit_compile=jit_compile)
    options: dict[str, Any] = {
        "batch_size": BATCH_SIZE,
        "validation_split": 0.0,
        "early_stopping": False,
        "seed": SEED,
        "verbose": 0,
    }
    knn.fit(model, data, epochs=1, **options)
    start = time.perf_counter()
    result = knn.fit(model, data, epochs=epochs, **options)
    call_s = time.perf_counter() - start
    return {
        "fit_s": result.wall_time,
        "call_s": call_s,
        "steps_per_execution": result.steps_per_execution,
    }


def run_tf_loop(data: Arrays, epochs: int, optimizer: str) -> dict[str, float]:
    """Arms ``tf_loop_rmsprop`` / ``tf_loop_sgd``: the ceiling without Keras or tf.data.

    The same three matmuls (no dropout) written as one `tf.function` per epoch over batches of
    a tensor already in memory, with RMSprop's update as TensorFlow's fused kernel (rho 0.9,
    lr 1e-3) or plain SGD: what any Keras training loop could at best reach for this network
    on this machine.
    """
    x, y = data
    n_batches = len(x) // BATCH_SIZE
    xb = tf.constant(x[: n_batches * BATCH_SIZE].reshape(n_batches, BATCH_SIZE, N_FEATURES))
    yb = tf.constant(y[: n_batches * BATCH_SIZE].reshape(n_batches, BATCH_SIZE).astype("int32"))
    rng = np.random.default_rng(SEED)
    weights = [tf.Variable(rng.normal(0, 0.05, shape).astype("float32")) for shape in LAYER_SHAPES]
    biases = [tf.Variable(np.zeros(n_out, "float32")) for _, n_out in LAYER_SHAPES]
    params = weights + biases
    ms = [tf.Variable(tf.zeros_like(p)) for p in params]
    mom = [tf.Variable(tf.zeros_like(p)) for p in params]

    @tf.function
    def epoch() -> tf.Tensor:
        loss = tf.constant(0.0)
        for i in tf.range(n_batches):
            with tf.GradientTape() as tape:
                h = xb[i]
                for j, (w, b) in enumerate(zip(weights, biases, strict=True)):
                    h = tf.matmul(h, w) + b
                    if j < len(weights) - 1:
                        h = tf.nn.relu(h)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(yb[i], h))
            for p, g, s, m in zip(params, tape.gradient(loss, params), ms, mom, strict=True):
                if optimizer == "sgd":
                    p.assign_sub(0.01 * g)
                else:
                    tf.raw_ops.ResourceApplyRMSProp(
                        var=p.handle,
                        ms=s.handle,
                        mom=m.handle,
                        lr=1e-3,
                        rho=0.9,
                        momentum=0.0,
                        epsilon=1e-7,
                        grad=g,
                    )
        return loss

    epoch().numpy()  # warm-up: tracing
    start = time.perf_counter()
    for _ in range(epochs):
        epoch().numpy()
    elapsed = time.perf_counter() - start
    return {"fit_s": elapsed * len(x) / (n_batches * BATCH_SIZE)}  # per the full sample count


def figures(
    timing: dict[str, float],
    n_samples: int,
    epochs: int,
    limit: float,
    bf16_limit: float | None = None,
) -> dict:
    """Throughput, achieved GFLOP/s and fraction of the matmul limit(s) of one arm."""
    samples_per_s = epochs * n_samples / timing["fit_s"]
    gflops = samples_per_s * FLOPS_PER_SAMPLE / 1e9
    out: dict[str, float] = {k: round(v, 3) for k, v in timing.items()}
    out |= {
        "samples_per_s": round(samples_per_s),
        "gflops": round(gflops, 2),
        "fraction_of_matmul_limit": round(gflops / limit, 3),
    }
    if bf16_limit:
        out["fraction_of_bf16_matmul_limit"] = round(gflops / bf16_limit, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per arm (default 3)")
    parser.add_argument("--matmul-reps", type=int, default=10, help="timed 2048² matmuls")
    parser.add_argument("--skip-extra", action="store_true", help="only the raw and kerasnn arms")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 000 samples, 1 epoch")
    args = parser.parse_args()
    n_samples, epochs = (6_000, 1) if args.quick else (N_SAMPLES, args.epochs)
    reps = 3 if args.quick else args.matmul_reps

    tf.get_logger().setLevel("ERROR")
    load_before = os.getloadavg()[0]
    data = synthetic_mnist(n_samples)
    arms: dict[str, Callable[[], dict[str, float]]] = {
        "raw": lambda: run_raw(data, epochs),
        "kerasnn": lambda: run_kerasnn(data, epochs),
    }
    bf16 = knn.devices.cpu_has_bf16()
    if not args.skip_extra:
        arms["kerasnn_stock_rmsprop"] = lambda: run_kerasnn(data, epochs, fused=False)
        arms["kerasnn_jit"] = lambda: run_kerasnn(data, epochs, jit_compile=True)
        if bf16:
            arms["kerasnn_bf16"] = lambda: run_kerasnn(
                data, epochs, mixed_precision="mixed_bfloat16"
            )
        arms["raw_spe32"] = lambda: run_raw(data, epochs, steps_per_execution=32)
        arms["tf_loop_rmsprop"] = lambda: run_tf_loop(data, epochs, "rmsprop")
        arms["tf_loop_sgd"] = lambda: run_tf_loop(data, epochs, "sgd")
    matmul: list[dict[str, float]] = []
    timings = {}
    for name, run in arms.items():
        matmul.append(matmul_gflops(MATMUL_SIZE, reps))
        timings[name] = run()
    matmul.append(matmul_gflops(MATMUL_SIZE, reps))
    limit = max(m["best"] for m in matmul)
    bf16_matmul = matmul_gflops(MATMUL_SIZE, reps, "bfloat16") if "kerasnn_bf16" in arms else None
    results = {
        name: figures(
            t, n_samples, epochs, limit, bf16_matmul["best"] if name.endswith("bf16") else None
        )
        for name, t in timings.items()
    }

    kerasnn_fraction = results["kerasnn"]["fraction_of_matmul_limit"]
    report = {
        "benchmark": "mnist_shape",
        "setup": {
            "data": f"synthetic {n_samples}x{N_FEATURES} float32 U[0,1), labels 0..9, seed 0",
            "model": "784-512-512-10 relu, dropout 0.2 after each hidden layer, softmax",
            "optimizer": "rmsprop (defaults)",
            "batch_size": BATCH_SIZE,
            "warmup_epochs": 1,
            "timed_epochs": epochs,
            "timing": "fit_s: model.fit call (kerasnn: FitResult.wall_time); "
            "call_s: whole knn.fit call",
        },
        "flops_per_sample": FLOPS_PER_SAMPLE,
        "flops_formula": FLOPS_FORMULA + "  (forward + 2x backward, dense matmuls only)",
        "matmul_limit_gflops": limit,
        "matmul_limit": {
            "size": MATMUL_SIZE,
            "dtype": "float32",
            "reps": reps,
            "best_gflops_before_each_arm_and_after": [m["best"] for m in matmul],
            "median_gflops_before_each_arm_and_after": [m["median"] for m in matmul],
        },
        "bf16_matmul_limit_gflops": bf16_matmul["best"] if bf16_matmul else None,
        "cpu_has_native_bf16": bf16,
        "forward_matmuls_batch128_gflops": forward_matmul_gflops(200 if not args.quick else 20),
        "arms": results,
        "kerasnn_vs_raw_speedup": round(results["raw"]["fit_s"] / results["kerasnn"]["fit_s"], 3),
        "target_fraction_of_matmul_limit": TARGET_FRACTION,
        "target_met": kerasnn_fraction >= TARGET_FRACTION,
        **environment(load_before),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
