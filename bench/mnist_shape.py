"""Training throughput of the Keras mnist_mlp network, raw Keras vs kerasnn, vs the matmul limit.

What is measured:
    The classic Keras ``mnist_mlp`` example network (784-512-512-10, relu, dropout 0.2 after
    each hidden layer, softmax; RMSprop with its defaults; batch 128) trained on 60 000
    synthetic MNIST-shaped samples (``np.random.default_rng(0)``: x uniform float32 in [0, 1),
    y integers 0..9 — nothing is downloaded). Each arm builds its model (after
    ``keras.utils.set_random_seed(0)``) and runs one untimed 1-epoch warm-up fit (tracing, XLA
    compilation). Then ``--rounds`` rounds (default 5) each time one fit of ``--epochs``
    epochs (default 1) of every arm in turn, so a slow spell of the (shared, virtual) machine
    hits all arms alike; each arm reports its median round (the headline figures) and its
    best round (``*_best``):

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
    - ``tf_loop_rmsprop_dropout``: the same with the network's dropout (0.2 after each hidden
      layer, ``tf.nn.experimental.stateless_dropout``, as Keras's Dropout uses): the ceiling
      for the network as specified.

    Throughput is ``N × 60 000 / fit_s`` samples/s, where ``fit_s`` is the ``model.fit`` call
    (for kerasnn, ``FitResult.wall_time``; the whole ``knn.fit`` call, which also checks the
    arrays, is reported as ``call_s``). Achieved GFLOP/s counts only the dense layers' matmuls:
    ``FLOPS_PER_SAMPLE = 3 × 2 × (784·512 + 512·512 + 512·10)`` (forward, plus 2× for the
    backward pass), ignoring biases, activations, dropout, loss and optimizer.

    The machine's matmul limit is the best GFLOP/s of a float32 ``tf.matmul`` of two
    2048×2048 matrices (``--matmul-reps`` timed reps after 2 warm-ups), measured in the same
    process before each round and after the last (the highest is used); each arm's
    ``fraction_of_matmul_limit`` is its GFLOP/s over that. The 1-minute load average before and
    after is reported: other processes on the machine skew every figure. For context the rate of
    the network's own forward matmuls at batch 128 (eager) is reported too. The issue's target
    is kerasnn ≥ 50 % of the matmul limit. Nothing is asserted; one JSON object is printed on
    stdout.

How to run (from the repository root):
    /work/venv/bin/python bench/mnist_shape.py             # 5 rounds of 1 epoch, ~3 minutes
    /work/venv/bin/python bench/mnist_shape.py --quick     # smoke run: 6 000 samples, 1 epoch
    /work/venv/bin/python bench/mnist_shape.py --rounds 3 --skip-extra
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
TARGET_OF_CEILING = 0.9

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


Timed = Callable[[], dict[str, float]]


def prepare_raw(data: Arrays, epochs: int, steps_per_execution: int = 1) -> Timed:
    """Arms ``raw`` / ``raw_spe32``: warm-up epoch now; each call is a timed ``model.fit``."""
    model = raw_model(steps_per_execution)
    x, y = data
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)

    def timed() -> dict[str, float]:
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
        return {"fit_s": time.perf_counter() - start}

    return timed


def prepare_kerasnn(
    data: Arrays,
    epochs: int,
    jit_compile: bool = False,
    fused: bool = True,
    mixed_precision: str | None = None,
) -> Timed:
    """Arms ``kerasnn*``: warm-up 1-epoch fit now; each call is a timed `knn.fit`."""
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

    def timed() -> dict[str, float]:
        start = time.perf_counter()
        result = knn.fit(model, data, epochs=epochs, **options)
        call_s = time.perf_counter() - start
        return {
            "fit_s": result.wall_time,
            "call_s": call_s,
            "steps_per_execution": result.steps_per_execution,
        }

    return timed


def prepare_tf_loop(data: Arrays, epochs: int, optimizer: str, dropout: float = 0.0) -> Timed:
    """Arms ``tf_loop_*``: the ceiling without Keras or tf.data.

    The same three matmuls written as one `tf.function` per epoch over batches of a tensor
    already in memory, with RMSprop's update as TensorFlow's fused kernel (rho 0.9, lr 1e-3)
    or plain SGD, and (``tf_loop_rmsprop_dropout``) TensorFlow's stateless dropout after each
    hidden layer: what any Keras training loop could at best reach for this network on this
    machine.
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
                        if dropout:
                            seed = tf.stack([i, j])
                            h = tf.nn.experimental.stateless_dropout(h, dropout, seed=seed)
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

    def timed() -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(epochs):
            epoch().numpy()
        elapsed = time.perf_counter() - start
        return {"fit_s": elapsed * len(x) / (n_batches * BATCH_SIZE)}  # per all the samples

    return timed


def figures(
    rounds: list[dict[str, float]],
    n_samples: int,
    epochs: int,
    limit: float,
    bf16_limit: float | None = None,
) -> dict:
    """Throughput, achieved GFLOP/s and fraction of the matmul limit(s) of one arm: the median
    round (the headline) and the best round."""
    fit_s = [r["fit_s"] for r in rounds]
    median_s, best_s = statistics.median(fit_s), min(fit_s)
    out: dict[str, Any] = {k: round(v, 3) for k, v in rounds[fit_s.index(best_s)].items()}
    out["fit_s"] = round(median_s, 3)
    out["fit_s_rounds"] = [round(t, 3) for t in fit_s]
    for label, seconds in (("", median_s), ("_best", best_s)):
        samples_per_s = epochs * n_samples / seconds
        gflops = samples_per_s * FLOPS_PER_SAMPLE / 1e9
        out[f"samples_per_s{label}"] = round(samples_per_s)
        out[f"gflops{label}"] = round(gflops, 2)
        out[f"fraction_of_matmul_limit{label}"] = round(gflops / limit, 3)
        if bf16_limit:
            out[f"fraction_of_bf16_matmul_limit{label}"] = round(gflops / bf16_limit, 3)
    return out


def ceiling_fraction(results: dict[str, dict]) -> dict[str, float] | None:
    """kerasnn's samples/s over ``tf_loop_rmsprop_dropout``'s: of the medians, of the bests, and
    the median of the per-round ratios (each round's two fits run back to back)."""
    ceiling = results.get("tf_loop_rmsprop_dropout")
    if ceiling is None:
        return None
    ours = results["kerasnn"]
    per_round = [c / k for k, c in zip(ours["fit_s_rounds"], ceiling["fit_s_rounds"], strict=True)]
    return {
        "median": round(ours["samples_per_s"] / ceiling["samples_per_s"], 3),
        "best": round(ours["samples_per_s_best"] / ceiling["samples_per_s_best"], 3),
        "median_of_rounds": round(statistics.median(per_round), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed fit (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="timed fits per arm (default 5)")
    parser.add_argument("--matmul-reps", type=int, default=10, help="timed 2048² matmuls")
    parser.add_argument("--skip-extra", action="store_true", help="only the raw and kerasnn arms")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 000 samples, 1 epoch")
    args = parser.parse_args()
    n_samples, epochs = (6_000, 1) if args.quick else (N_SAMPLES, args.epochs)
    rounds = 1 if args.quick else args.rounds
    reps = 3 if args.quick else args.matmul_reps

    tf.get_logger().setLevel("ERROR")
    load_before = os.getloadavg()[0]
    data = synthetic_mnist(n_samples)
    arms: dict[str, Callable[[], Timed]] = {
        "raw": lambda: prepare_raw(data, epochs),
        "kerasnn": lambda: prepare_kerasnn(data, epochs),
    }
    bf16 = knn.devices.cpu_has_bf16()
    if not args.skip_extra:
        arms["kerasnn_stock_rmsprop"] = lambda: prepare_kerasnn(data, epochs, fused=False)
        arms["kerasnn_jit"] = lambda: prepare_kerasnn(data, epochs, jit_compile=True)
        if bf16:
            arms["kerasnn_bf16"] = lambda: prepare_kerasnn(
                data, epochs, mixed_precision="mixed_bfloat16"
            )
        arms["raw_spe32"] = lambda: prepare_raw(data, epochs, steps_per_execution=32)
        arms["tf_loop_rmsprop"] = lambda: prepare_tf_loop(data, epochs, "rmsprop")
        arms["tf_loop_sgd"] = lambda: prepare_tf_loop(data, epochs, "sgd")
        arms["tf_loop_rmsprop_dropout"] = lambda: prepare_tf_loop(data, epochs, "rmsprop", DROPOUT)
    timed = {name: prepare() for name, prepare in arms.items()}  # built and warmed up
    matmul: list[dict[str, float]] = []
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in timed}
    for _ in range(rounds):  # arms alternate, so a slow spell of the machine hits them all
        matmul.append(matmul_gflops(MATMUL_SIZE, reps))
        for name, run in timed.items():
            timings[name].append(run())
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
            "epochs_per_timed_fit": epochs,
            "rounds": rounds,
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
            "best_gflops_before_each_round_and_after": [m["best"] for m in matmul],
            "median_gflops_before_each_round_and_after": [m["median"] for m in matmul],
        },
        "bf16_matmul_limit_gflops": bf16_matmul["best"] if bf16_matmul else None,
        "cpu_has_native_bf16": bf16,
        "forward_matmuls_batch128_gflops": forward_matmul_gflops(200 if not args.quick else 20),
        "arms": results,
        "kerasnn_vs_raw_speedup": round(results["raw"]["fit_s"] / results["kerasnn"]["fit_s"], 3),
        # The figure: kerasnn's samples/s over the ceiling's for the same network
        # (dropout, fused RMSprop), medians of the same alternating rounds; target >= 0.9.
        "kerasnn_fraction_of_tf_loop": ceiling_fraction(results),
        "target_fraction_of_tf_loop": TARGET_OF_CEILING,
        "target_fraction_of_matmul_limit": TARGET_FRACTION,
        "target_met": kerasnn_fraction >= TARGET_FRACTION,
        **environment(load_before),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
