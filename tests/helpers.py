"""Small helpers shared by the test modules (imported as ``from helpers import ...``)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a kerasnn subprocess: this checkout first on the path, quiet TF."""
    return (
        dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="3",
            KERAS_BACKEND="tensorflow",
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        )
        | extra
    )


def communicate_all(
    procs: Sequence[subprocess.Popen], timeout: float = 300
) -> list[tuple[str, str]]:
    """Waits for every process (stdout, stderr each); kills whatever is still running after."""
    try:
        return [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def invalid_message(argument: str, expected: str, received: str, *, whole: bool = True) -> str:
    """Regex of kerasnn's standard bad-argument error (the whole message when `whole`)."""
    text = re.escape(
        f"Received an invalid value for argument {argument}, expected {expected}. "
        f"Received: {received}"
    )
    return f"^{text}$" if whole else text


def run_python(code: str, *args: str, kerasnn_on_path: bool = True, timeout: float = 300) -> str:
    """Runs `code` in a fresh interpreter (``python -c code *args``) the way a user would;
    returns its stdout, or fails the test with its stderr.

    With ``kerasnn_on_path=False`` this checkout is not put on ``PYTHONPATH`` (an installed
    kerasnn stays importable: the code itself checks ``sys.modules`` when that matters).
    """
    import sys

    import pytest

    env = subprocess_env() if kerasnn_on_path else dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=args[0] if args and Path(args[0]).is_dir() else None,
    )
    if proc.returncode != 0:
        pytest.fail(f"fresh process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def kill_when(
    cmd: Sequence[str],
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float = 300,
    settle: float = 0.0,
    env: dict[str, str] | None = None,
    started: Callable[[subprocess.Popen], None] | None = None,
) -> subprocess.Popen:
    """Starts `cmd`, waits until ``ready()`` holds, then sends it a real SIGKILL.

    The shared kill-and-resume pattern: the test then checks what the killed process left.
    Fails the test when the process ends before `ready` or `timeout` passes first.

    Args:
        cmd: the command line to start.
        ready: polled every 20 ms; the kill point.
        what: the kill point in words, for the failure messages.
        timeout: seconds to wait for `ready`.
        settle: seconds to wait after `ready` before the kill (to land inside the next step).
        env: the process's environment. Defaults to `subprocess_env()`.
        started: called with the process as soon as it starts (for a `ready` that needs it).

    Returns:
        The killed process (its return code is ``-SIGKILL``).
    """
    import signal
    import time

    proc = subprocess.Popen(
        list(cmd),
        env=subprocess_env() if env is None else env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if started is not None:
        started(proc)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"the process ended before {what}"
            assert time.monotonic() < deadline, f"the process did not reach {what}"
            time.sleep(0.02)
        time.sleep(settle)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    return proc


def assert_png(path: str | os.PathLike, *, min_side: int = 100) -> np.ndarray:
    """Asserts `path` is a PNG of at least `min_side` pixels a side that is not a blank canvas;
    returns its pixels (``(height, width, channels)`` floats in [0, 1], matplotlib's reading).
    """
    import matplotlib.image

    path = Path(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    image = np.asarray(matplotlib.image.imread(path))
    assert image.shape[0] >= min_side and image.shape[1] >= min_side, (path, image.shape)
    assert image[..., :3].std() > 0.05, f"{path} is blank"
    return image


def line_data(figure: Any, axes_index: int) -> dict[str, np.ndarray]:
    """Label -> y values of every line drawn in the figure's `axes_index`-th axes."""
    ax = figure.axes[axes_index]
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.lines}


# A two-variant experiment on iris that trains in seconds (the compare tests share it).
TINY_BASE = {
    "name": "tiny",
    "data": {"name": "iris"},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "fit": {"epochs": 3, "early_stopping": False},
}
TINY_EXPERIMENT = {
    "name": "tiny",
    "base": TINY_BASE,
    "variants": {
        "sgd": {"optimizer": {"name": "sgd", "learning_rate": 0.1}},
        "adam": {"optimizer.learning_rate": 0.03, "model.hidden": [4]},
    },
}


def write_recipe(
    folder: Path, *, name: str = "cli", hidden: Sequence[int] = (64,), epochs: int = 3, **fit: Any
) -> Path:
    """Writes a small digits recipe (Adam 0.003) to ``folder/NAME.yaml``; returns its path."""
    import yaml

    config = {
        "name": name,
        "data": {"name": "digits"},
        "model": {"hidden": list(hidden)},
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "fit": {"epochs": epochs, **fit},
    }
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
