"""Proof that an export works before it lands: the artifact is reloaded in a *fresh* Python
process and its predictions compared with the in-memory model's.

The verifying process dies with its parent (Linux: ``PR_SET_PDEATHSIG``; elsewhere it polls its
parent), so a killed export leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._registration import register as _register_custom_objects
from kerasnn.export._serving import INPUT_NAME, SERVE_ENDPOINT, SERVING_SIGNATURE

__all__ = [
    "ExportVerificationError",
    "child_env",
    "die_with_parent",
    "reload_in_fresh_process",
    "verify",
    "verify_child",
    "watch_parent",
]


class ExportVerificationError(RuntimeError):
    """The reloaded artifact disagrees with the in-memory model (or could not be reloaded)."""


def verify(
    artifact: Path,
    fmt: str,
    probe: np.ndarray,
    expected: np.ndarray,
    *,
    tolerance: float,
    target: Path,
) -> tuple[tuple[str, ...], float]:
    """Reloads `artifact` in a fresh process and compares its predictions on `probe`.

    Args:
        artifact: the staged artifact (its folder takes the probe and the outputs).
        fmt: ``"saved_model"`` or ``"keras"``.
        probe: the batch of raw inputs.
        expected: the in-memory model's predictions on `probe`.
        tolerance: largest allowed absolute difference.
        target: where the artifact is meant to land (named in the error).

    Returns:
        ``(signatures, max_abs_diff)``: the reloaded SavedModel's signatures (empty for
        ``.keras``) and the largest difference over every endpoint called.

    Raises:
        ExportVerificationError: the artifact does not reload, a SavedModel lacks the
            serving signature, or a prediction differs by more than `tolerance`.
    """
    report = reload_in_fresh_process(artifact, fmt, probe)
    signatures = tuple(report["signatures"])
    if fmt == "saved_model" and SERVING_SIGNATURE not in signatures:
        raise ExportVerificationError(
            f"The reloaded SavedModel has no {SERVING_SIGNATURE!r} signature "
            f"(found: {', '.join(signatures) or 'none'})."
        )
    diffs = {
        name: float(np.max(np.abs(np.asarray(out, np.float64) - expected)))
        if np.shape(out) == expected.shape
        else float("inf")
        for name, out in report["outputs"].items()
    }
    max_diff = max(diffs.values())
    if not max_diff <= tolerance:
        detail = ", ".join(f"{k}: {v:.3g}" for k, v in diffs.items())
        raise ExportVerificationError(
            f"The exported {fmt} artifact, reloaded in a fresh process, predicts "
            f"differently from the in-memory model on a probe batch of {len(probe)} "
            f"samples: max abs diff {max_diff:.3g} > tolerance {tolerance:g} "
            f"({detail}). Nothing was written at {target}."
        )
    return signatures, max_diff


def child_env() -> dict[str, str]:
    """The environment of the verifying process: kerasnn importable, TF quiet."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND="tensorflow",
    )


def die_with_parent() -> None:
    """In the child, before it runs: the kernel kills it when its parent dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the child's watchdog thread covers it
        return


def watch_parent(parent: int, interval: float = 0.5) -> None:
    """In the child: exit at once when the parent process is gone (a portable backstop)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="kerasnn-export-parent-watch", daemon=True).start()


def reload_in_fresh_process(artifact: Path, fmt: str, probe: np.ndarray) -> dict[str, Any]:
    """Runs `verify_child` in a new interpreter; returns its report and predictions."""
    work = artifact.parent
    np.save(work / "probe.npy", probe)
    out = work / "reloaded.npy"
    code = (
        "import os, sys; from kerasnn.export._verify import verify_child, watch_parent; "
        "watch_parent(int(sys.argv[5])); "
        "verify_child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])"
    )
    arguments = [fmt, str(artifact), str(work / "probe.npy"), str(out), str(os.getpid())]
    linux = sys.platform.startswith("linux")
    proc = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=die_with_parent if linux else None,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ExportVerificationError(
            f"The exported {fmt} artifact could not be reloaded and run in a fresh process "
            f"(exit status {proc.returncode}); nothing was written at the target.\n{tail}"
        )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["outputs"] = {name: np.load(work / f"reloaded_{name}.npy") for name in report["calls"]}
    return report


def verify_child(fmt: str, artifact: str, probe_path: str, out_path: str) -> None:
    """Entry point of the verifying process: reload, predict the probe, save the outputs."""
    probe = np.load(probe_path)
    out = Path(out_path)
    calls: dict[str, np.ndarray] = {}
    signatures: list[str] = []
    if fmt == "saved_model":
        loaded = tf.saved_model.load(artifact)
        signatures = sorted(loaded.signatures.keys())
        calls["serve"] = np.asarray(getattr(loaded, SERVE_ENDPOINT)(tf.constant(probe)))
        signature = loaded.signatures[SERVING_SIGNATURE]
        result = signature(**{INPUT_NAME: tf.constant(probe)})
        calls["serving_default"] = np.asarray(next(iter(result.values())))
    else:
        _register_custom_objects()
        # The file was written a moment ago by this export (trusted): Lambda layers allowed.
        model = keras.saving.load_model(artifact, safe_mode=False, compile=False)
        calls["keras"] = np.asarray(model(probe, training=False))
    for name, values in calls.items():
        np.save(out.parent / f"reloaded_{name}.npy", values)
    print(json.dumps({"calls": sorted(calls), "signatures": signatures}))
