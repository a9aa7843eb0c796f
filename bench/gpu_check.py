"""GPU check: devices, memory growth, mixed precision, XLA, MirroredStrategy, CPU reload.

For users with a GPU. The project's own machines have none, so nothing here is a measured GPU
figure of the project; run it on your GPU machine to get yours.

What is checked (each a small function returning a dict; `main` prints ONE JSON object):

- ``devices``: `kerasnn.devices.report()` after the devices were configured.
- ``memory_growth``: memory growth set on every visible GPU with
  ``kerasnn.devices.configure(memory_growth=True)`` before TensorFlow initialises its devices,
  and read back with ``tf.config.experimental.get_memory_growth``.
- ``mixed_precision``: the dtypes the ``mixed_float16`` models of both arms really have (the
  compute and variable dtypes of the layers with weights, the policy of kerasnn's float32
  ``output`` softmax layer, the model output's dtype, the `LossScaleOptimizer` Keras wraps
  around the optimizer) and any warning `configure` gave (e.g. a GPU below compute capability
  7.0).
- ``throughput``: samples/s of float32 vs ``mixed_float16``, each with XLA
  (``kerasnn.compile(..., jit_compile=True)``) off and on, for two arms:

  - ``mnist_mlp``: the MNIST-shaped MLP of ``bench/mnist_shape.py`` (784-512-512-10, relu,
    dropout 0.2, kerasnn's fused RMSprop, batch 128, synthetic 60 000 samples, seed 0);
  - ``digits_cnn``: ``recipes/digits_cnn.yaml`` (the digits as 8x8x1 images,
    conv(32)-pool-conv(64)-pool-dense(128), dropout 0.3, Adam 1e-3, batch 32).

  ``--rounds`` rounds, each time one `kerasnn.fit` of every configuration of the arm in turn,
  so a slow spell hits them alike. Each fit runs one more epoch than it times: the first fit of
  a model traces its train function (and compiles it with XLA), and every call's first epoch
  opens the input iterator; that epoch is reported apart (``first_epoch_s``), and samples/s is
  ``epochs x samples / seconds of the later epochs`` of the median round. Ratios: mixed over
  float32 (per XLA setting) and XLA over no XLA (per dtype), of the medians.
- ``mirrored``: ``kerasnn.devices.strategy("mirrored")`` over the visible GPUs: replicas,
  samples/s of the MNIST-shaped MLP at 128 samples per replica vs the same global batch on one
  device (alternating rounds), and a dropout-free short fit under both whose weights and losses
  are compared (max abs diff).
- ``export_reload``: the MNIST-shaped MLP trained on the default device (the first GPU),
  exported as a SavedModel with `kerasnn.export.export` (which verifies its own reload in a
  fresh process on the same devices), then reloaded with `kerasnn.export.load` in a fresh
  process restricted to the CPU (``CUDA_VISIBLE_DEVICES=""``) and its predictions compared
  with the in-memory model's (max abs diff, whether it is within the export's 1e-5 tolerance,
  argmax agreement). With TensorFloat-32 on (TensorFlow's default; it acts on Ampere and later
  GPUs) float32 matmuls on the GPU round their inputs to 10 mantissa bits, so the GPU and the
  CPU can differ by more than that tolerance; ``devices.tensor_float_32`` says whether it is
  on.

Without a GPU it prints ``{"gpu": false, "message": "no GPU visible: nothing to measure ..."}``
with the device report and exits 0. ``--cpu-dry-run`` runs every check above on the CPU with
tiny sizes (GPUs hidden, the CPU split into 2 logical devices for the strategy, kerasnn's own
export verification skipped since the CPU reload is the same check on the same device): what the
test suite runs. Everything it measures is labelled ``"device": "CPU"``; its figures are no GPU
figures (and ``mixed_float16`` on a CPU is emulated: slow by design).

A check that fails is reported as ``{"error": "..."}`` and the others still run; the exit
status is then 1.

How to run (from the repository root):
    /work/venv/bin/python bench/gpu_check.py 2>/dev/null               # on a GPU machine
    /work/venv/bin/python bench/gpu_check.py --rounds 3 2>/dev/null
    /work/venv/bin/python bench/gpu_check.py --cpu-dry-run 2>/dev/null  # any machine, 25-40 s
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# Set before TensorFlow is first imported: it reads these once.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _common import environment
from _timing import EpochTimer
from mnist_shape import BATCH_SIZE, DROPOUT, HIDDEN, N_CLASSES, N_FEATURES, synthetic_mnist

import kerasnn as knn

ROOT = Path(__file__).resolve().parents[1]
CNN_RECIPE = ROOT / "recipes" / "digits_cnn.yaml"
SEED = 0
POLICIES = ("float32", "mixed_float16")
NO_GPU_MESSAGE = (
    "no GPU visible: nothing to measure (TensorFlow built {cuda} CUDA). This script is for "
    "machines with a GPU; --cpu-dry-run runs its code paths on the CPU (no GPU figures)."
)

Arrays = tuple[np.ndarray, np.ndarray]
Round = tuple[float, float]  # (timed seconds, first-epoch seconds) of one fit


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each check trains: timed ``rounds`` per configuration; samples and timed
    epochs per fit of the MLP (throughput, strategy) and the CNN (`None`: every digits training
    sample; its epochs are short on a GPU); the one-device vs mirrored comparison fit's; the
    exported model's training epochs."""

    rounds: int = 5
    mlp_samples: int = 60_000
    mlp_epochs: int = 1
    cnn_samples: int | None = None
    cnn_epochs: int = 10
    match_samples: int = 4096
    match_epochs: int = 2
    export_epochs: int = 2


GPU_SIZES = Sizes()
DRY_RUN_SIZES = Sizes(
    rounds=1,
    mlp_samples=512,
    mlp_epochs=1,
    cnn_samples=256,
    cnn_epochs=1,
    match_samples=512,
    match_epochs=1,
    export_epochs=1,
)


# --- small helpers -------------------------------------------------------------------------
@contextlib.contextmanager
def dtype_policy(policy: str, caught: list[str]) -> Iterator[None]:
    """Builds under `policy` (set by `kerasnn.devices.configure`), float32 again afterwards.

    Args:
        policy: ``"float32"`` or ``"mixed_float16"``.
        caught: receives the text of every warning `configure` gives (e.g. no fast float16).
    """
    try:
        if policy != "float32":
            with warnings.catch_warnings(record=True) as records:
                warnings.simplefilter("always")
                knn.devices.configure(memory_growth=False, mixed_precision=policy)
            caught.extend(str(w.message) for w in records if str(w.message) not in caught)
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def fit_options(batch_size: int, epochs: int) -> dict[str, Any]:
    """`kerasnn.fit` arguments of every timed fit: no validation, no early stopping, quiet."""
    return {
        "batch_size": batch_size,
        "epochs": epochs,
        "validation_split": 0.0,
        "early_stopping": False,
        "seed": SEED,
        "verbose": 0,
    }


def timed_fit(model: keras.Model, data: Arrays, batch_size: int, epochs: int) -> Round:
    """One `kerasnn.fit` of ``1 + epochs`` epochs: the first is left out of the timing.

    The first `kerasnn.fit` of a model traces its train function (with ``jit_compile=True``,
    compiles it with XLA); later calls reuse it. Leaving every call's first epoch out keeps
    the first round comparable with the others.

    Returns:
        ``(seconds of the epochs after the first, seconds of the first epoch)``.
    """
    timer = EpochTimer()
    knn.fit(model, data, callbacks=[timer], **fit_options(batch_size, 1 + epochs))
    return sum(timer.times[1:]), timer.times[0]


def alternate(runs: dict[str, Callable[[], Round]], rounds: int) -> dict[str, list[Round]]:
    """Every run once per round, in turn, so a slow spell of the machine hits them all."""
    out: dict[str, list[Round]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            out[label].append(run())
    return out


def samples_per_s(rounds: Sequence[Round], n_samples: int, epochs: int) -> dict[str, Any]:
    """Median-round throughput, every round's, and the median first epoch."""
    rates = [epochs * n_samples / timed for timed, _ in rounds]
    return {
        "samples_per_s": round(statistics.median(rates)),
        "samples_per_s_rounds": [round(r) for r in rates],
        "first_epoch_s": round(statistics.median(first for _, first in rounds), 3),
    }


def mlp_model(dropout: float = DROPOUT) -> keras.Model:
    """The MNIST-shaped MLP of ``bench/mnist_shape.py``, uncompiled, seeded."""
    keras.utils.set_random_seed(SEED)
    return knn.models.mlp(
        (N_FEATURES,), hidden=[HIDDEN, HIDDEN], outputs=N_CLASSES, dropout=dropout
    )


# --- the checks ----------------------------------------------------------------------------
def device_report() -> dict[str, Any]:
    """`kerasnn.devices.report()`, plus whether TensorFloat-32 rounds float32 GPU matmuls."""
    info = knn.devices.report()
    info["tensor_float_32"] = tf.config.experimental.tensor_float_32_execution_enabled()
    return info


def memory_growth(gpus: Sequence[Any]) -> dict[str, Any]:
    """Memory growth read back on each GPU (`configure` set it before the devices started).

    Args:
        gpus: the visible physical GPUs.

    Returns:
        ``{"gpus": [{"name": ..., "memory_growth": bool}], "all_set": bool}``.
    """
    found = [
        {"name": gpu.name, "memory_growth": tf.config.experimental.get_memory_growth(gpu)}
        for gpu in gpus
    ]
    out: dict[str, Any] = {"gpus": found, "all_set": all(g["memory_growth"] for g in found)}
    if not gpus:
        out["note"] = "no visible GPU: nothing to set"
    return out


def mixed_precision_dtypes(model: keras.Model) -> dict[str, Any]:
    """The dtypes a model built under a mixed policy really has.

    Returns:
        The model's policy; the distinct compute and variable dtypes of the layers with
        weights (conv and dense layers, the logits' ``output_dense`` included); the policy of
        kerasnn's ``output`` activation layer (softmax, kept float32); the dtype of the model's
        output on a real batch; the optimizer class (Keras wraps it in a
        `LossScaleOptimizer` for ``mixed_float16``) and the one inside.
    """
    weighted = [layer for layer in model.layers if layer.weights]
    x = np.zeros((2, *model.input_shape[1:]), "float32")
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", None)
    return {
        "model_policy": model.dtype_policy.name,
        "compute_dtypes": sorted({layer.compute_dtype for layer in weighted}),
        "variable_dtypes": sorted({w.dtype for layer in weighted for w in layer.weights}),
        "output_layer_policy": model.get_layer("output").dtype_policy.name,
        "output_dtype": model(x, training=False).dtype.name,
        "optimizer": type(optimizer).__name__,
        "inner_optimizer": None if inner is None else type(inner).__name__,
    }


@dataclasses.dataclass
class Arm:
    """One network of the throughput check: ``build(jit_compile)`` gives the compiled model
    (under the active dtype policy); its ``(x, y)`` data, batch size, timed epochs per fit
    and its setup in words."""

    build: Callable[[bool], keras.Model]
    data: Arrays
    batch_size: int
    epochs: int
    setup: str


def mlp_arm(sizes: Sizes) -> Arm:
    """The MNIST-shaped MLP (784-512-512-10, dropout 0.2, fused RMSprop, batch 128)."""

    def build(jit_compile: bool) -> keras.Model:
        return knn.compile(mlp_model(), "rmsprop", jit_compile=jit_compile)

    return Arm(
        build,
        synthetic_mnist(sizes.mlp_samples),
        BATCH_SIZE,
        sizes.mlp_epochs,
        f"784-512-512-10 relu, dropout {DROPOUT}, rmsprop (kerasnn fused), batch "
        f"{BATCH_SIZE}, synthetic {sizes.mlp_samples}x{N_FEATURES} U[0,1), seed {SEED}",
    )


def cnn_arm(sizes: Sizes) -> Arm:
    """``recipes/digits_cnn.yaml``: its data (image view), model, optimizer and batch size."""
    recipe = knn.Recipe.from_yaml(CNN_RECIPE)
    data = knn.datasets.load(**({"seed": recipe.seed} | recipe.data), n_samples=sizes.cnn_samples)
    model_args = {k: v for k, v in recipe.model.items() if k != "builder"}
    optimizer = dict(recipe.optimizer)
    name = optimizer.pop("name")

    def build(jit_compile: bool) -> keras.Model:
        keras.utils.set_random_seed(recipe.seed)
        model = knn.models.get(recipe.model.get("builder", "mlp"))(data, **model_args)
        return knn.compile(model, name, jit_compile=jit_compile, **optimizer)

    batch_size = recipe.fit.get("batch_size", 32)
    return Arm(
        build,
        (data.x_train, data.y_train),
        batch_size,
        sizes.cnn_epochs,
        f"{CNN_RECIPE.relative_to(ROOT)}: {len(data.x_train)} digits as 8x8x1 images, model "
        f"{model_args}, {name} {optimizer}, batch {batch_size}",
    )


def throughput(arm: Arm, rounds: int, caught: list[str]) -> dict[str, Any]:
    """float32 vs ``mixed_float16``, XLA off and on, for one arm; alternating rounds.

    Returns:
        Per configuration (``float32``, ``float32_xla``, ``mixed_float16``,
        ``mixed_float16_xla``) its median samples/s, every round's, and the median first
        epoch (left out: tracing and XLA compilation in the first round); the speed-up ratios of the
        medians; the ``mixed_float16`` model's dtypes (``mixed_float16_dtypes``).
    """
    runs: dict[str, Callable[[], Round]] = {}
    dtypes: dict[str, Any] | None = None
    for policy in POLICIES:
        for jit in (False, True):
            with dtype_policy(policy, caught):
                model = arm.build(jit)
            if policy != "float32" and dtypes is None:
                dtypes = mixed_precision_dtypes(model)
            runs[policy + ("_xla" if jit else "")] = functools.partial(
                timed_fit, model, arm.data, arm.batch_size, arm.epochs
            )
    n = len(arm.data[0])
    results = {
        label: samples_per_s(r, n, arm.epochs) for label, r in alternate(runs, rounds).items()
    }
    rate = {label: r["samples_per_s"] for label, r in results.items()}
    return {
        "setup": arm.setup,
        "epochs_per_timed_fit": arm.epochs,
        "rounds": rounds,
        "configurations": results,
        "ratios": {
            "mixed_over_float32": round(rate["mixed_float16"] / rate["float32"], 3),
            "mixed_over_float32_xla": round(rate["mixed_float16_xla"] / rate["float32_xla"], 3),
            "xla_over_no_xla_float32": round(rate["float32_xla"] / rate["float32"], 3),
            "xla_over_no_xla_mixed": round(rate["mixed_float16_xla"] / rate["mixed_float16"], 3),
        },
        "mixed_float16_dtypes": dtypes,
    }


def _mlp_under(strategy: tf.distribute.Strategy, dropout: float = DROPOUT) -> keras.Model:
    with strategy.scope():
        model = mlp_model(dropout)
    return knn.compile(model, "rmsprop")  # enters the model's strategy scope


def mirrored(sizes: Sizes) -> dict[str, Any]:
    """`MirroredStrategy` over the visible GPUs (the logical CPUs in the dry run).

    Returns:
        Replicas and their devices; samples/s of the MNIST-shaped MLP at 128 samples per
        replica under the strategy and at the same global batch on the first device
        (alternating rounds); the max abs weight difference and the final losses of a
        dropout-free fit under both (each replica draws its own dropout masks, so dropout
        would differ by design).
    """
    strategy = knn.devices.strategy("mirrored")
    replicas = strategy.num_replicas_in_sync
    worker_devices = list(strategy.extended.worker_devices)
    first = tf.DeviceSpec.from_string(worker_devices[0])
    one = knn.devices.strategy(f"one_device:{first.device_type}:{first.device_index}")
    batch = knn.devices.global_batch_size(BATCH_SIZE, strategy)
    data = synthetic_mnist(sizes.mlp_samples)

    runs = {
        label: functools.partial(timed_fit, _mlp_under(s), data, batch, sizes.mlp_epochs)
        for label, s in (("mirrored", strategy), ("one_device", one))
    }
    speed = {
        label: samples_per_s(r, sizes.mlp_samples, sizes.mlp_epochs)
        for label, r in alternate(runs, sizes.rounds).items()
    }

    match = synthetic_mnist(sizes.match_samples)
    options = fit_options(batch, sizes.match_epochs)
    m1, m2 = _mlp_under(one, dropout=0.0), _mlp_under(strategy, dropout=0.0)
    r1, r2 = knn.fit(m1, match, **options), knn.fit(m2, match, **options)
    diff = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(m1.get_weights(), m2.get_weights(), strict=True)
    )
    return {
        "replicas": replicas,
        "devices": worker_devices,
        "global_batch_size": batch,
        "per_replica_batch_size": BATCH_SIZE,
        "steps_per_execution": r2.steps_per_execution,
        "throughput": {
            **speed,
            "mirrored_over_one_device": round(
                speed["mirrored"]["samples_per_s"] / speed["one_device"]["samples_per_s"], 3
            ),
        },
        "matches_one_device": {
            "setup": f"dropout 0, {sizes.match_samples} samples, {sizes.match_epochs} epochs, "
            f"global batch {batch}, rmsprop, seed {SEED}",
            "max_weight_diff": diff,
            "loss": {"one_device": r1.final_metrics["loss"], "mirrored": r2.final_metrics["loss"]},
        },
    }


_CPU_RELOAD = """
import json, sys
import numpy as np
import kerasnn as knn
import tensorflow as tf

loaded = knn.export.load(sys.argv[1])
np.save(sys.argv[3], loaded.predict(np.load(sys.argv[2])))
print(json.dumps({
    "logical_devices": [d.name for d in tf.config.list_logical_devices()],
    "physical_gpus": len(tf.config.list_physical_devices("GPU")),
}))
"""


def reload_on_cpu(artifact: Path, probe: np.ndarray, timeout: float = 600) -> dict[str, Any]:
    """Predictions of the SavedModel `artifact` on `probe`, reloaded in a fresh process that
    sees no GPU; with the child's ``logical_devices`` and ``physical_gpus`` (0).

    Raises:
        RuntimeError: the child failed (its stderr tail in the message).
    """
    work = artifact.parent
    np.save(work / "probe.npy", probe)
    out = work / "cpu_predictions.npy"
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES="",
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    command = [sys.executable, "-c", _CPU_RELOAD, str(artifact), str(work / "probe.npy"), str(out)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise RuntimeError(f"the CPU-only reload failed (exit {proc.returncode}):\n{tail}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"predictions": np.load(out), **info}


def export_reload(sizes: Sizes, verify: bool) -> dict[str, Any]:
    """Train on the default device, export a SavedModel, reload it on the CPU, compare.

    Args:
        sizes: how long the model trains.
        verify: let `kerasnn.export.export` verify its own reload first (a fresh process on
            the same devices as this one).

    Returns:
        Where the training ran, the export's own check, the CPU child's devices and the max
        abs difference and argmax agreement of its predictions with the in-memory model's.
    """
    x, y = synthetic_mnist(sizes.mlp_samples)
    model = knn.compile(mlp_model(), "rmsprop")
    knn.fit(model, (x, y), **fit_options(BATCH_SIZE, sizes.export_epochs))
    probe = x[:64]
    expected = model.predict(probe, verbose=0)
    with tempfile.TemporaryDirectory(prefix="kerasnn-gpu-check-") as folder:
        result = knn.export.export(model, Path(folder) / "saved_model", probe=probe, verify=verify)
        cpu = reload_on_cpu(result.path, probe)
    predictions = cpu.pop("predictions")
    diff = float(np.max(np.abs(predictions.astype(np.float64) - expected)))
    return {
        "trained_on": model.weights[0].value.device,  # where TensorFlow placed the weights
        "export": {
            "format": result.format,
            "seconds": round(result.seconds, 3),
            "verified_same_devices_max_abs_diff": result.max_abs_diff,
        },
        "cpu_reload": {
            **cpu,
            "probe_size": len(probe),
            "max_abs_diff": diff,
            "within_export_tolerance": diff <= knn.export.DEFAULT_TOLERANCE,
            "argmax_agreement": float(np.mean(predictions.argmax(1) == expected.argmax(1))),
        },
    }


# --- main ----------------------------------------------------------------------------------
def run_check(results: dict[str, Any], name: str, check: Callable[[], dict[str, Any]]) -> None:
    """Runs one check into ``results[name]``; a failure is recorded, not raised."""
    start = time.perf_counter()
    try:
        results[name] = check()
    except Exception as err:  # one broken check must not hide the others' figures
        results[name] = {
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=4).splitlines()[-6:],
        }
    results[name]["check_seconds"] = round(time.perf_counter() - start, 2)


def configure_devices(dry_run: bool) -> list[Any]:
    """Sets the devices up before TensorFlow initialises them; returns the visible GPUs.

    On a GPU run: memory growth on every GPU. In the dry run: GPUs hidden and the CPU split in
    2 logical devices (for the strategy check).
    """
    if dry_run:
        knn.devices.configure(memory_growth=True, visible="cpu", logical_cpus=2)
    else:
        knn.devices.configure(memory_growth=True)
    return tf.config.get_visible_devices("GPU")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="run every check on the CPU with tiny sizes (2 logical CPUs; no GPU figures)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="timed rounds (default 5; dry run 1)"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be a positive integer. Received: --rounds={args.rounds}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the checks and prints one JSON object; returns the exit status."""
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    load_before = os.getloadavg()[0]
    dry_run = args.cpu_dry_run
    physical = tf.config.list_physical_devices("GPU")  # listing them initialises nothing yet
    gpus = configure_devices(dry_run)
    out: dict[str, Any] = {"benchmark": "gpu_check", "gpu": bool(physical), "dry_run": dry_run}
    if not gpus and not dry_run:
        cuda = "with" if tf.test.is_built_with_cuda() else "without"
        out["message"] = NO_GPU_MESSAGE.format(cuda=cuda)
        out["devices"] = device_report()
        print(json.dumps({**out, **environment(load_before)}))
        return 0

    sizes = DRY_RUN_SIZES if dry_run else GPU_SIZES
    if args.rounds is not None:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    out["device"] = "CPU" if dry_run else "GPU"
    if dry_run:
        out["message"] = (
            "CPU dry run: every check ran on CPU devices with tiny sizes (GPUs hidden: "
            f"{len(physical)}); no figure here is a GPU figure, and mixed_float16 on a CPU is "
            "emulated (slow by design)."
        )
    out["sizes"] = dataclasses.asdict(sizes)
    run_check(out, "devices", device_report)
    run_check(out, "memory_growth", lambda: memory_growth(gpus))
    caught: list[str] = []
    throughput_out: dict[str, Any] = {}
    for name, make_arm in (("mnist_mlp", mlp_arm), ("digits_cnn", cnn_arm)):
        run_check(
            throughput_out, name, lambda m=make_arm: throughput(m(sizes), sizes.rounds, caught)
        )
    out["throughput"] = throughput_out
    out["mixed_precision"] = {
        "policy": "mixed_float16",
        "dtypes": {
            arm: result.pop("mixed_float16_dtypes", None) for arm, result in throughput_out.items()
        },
        "configure_warnings": caught,
    }
    run_check(out, "mirrored", lambda: mirrored(sizes))
    run_check(out, "export_reload", lambda: export_reload(sizes, verify=not dry_run))
    failed = [
        name
        for name, value in (*out.items(), *throughput_out.items())
        if isinstance(value, dict) and "error" in value
    ]
    out["failed_checks"] = failed
    print(json.dumps({**out, **environment(load_before)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
