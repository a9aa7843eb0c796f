"""Small helpers shared by the test modules (imported as ``from helpers import ...``)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a kerasnn subprocess: this checkout first on the path, quiet TF."""
    return dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_BACKEND="tensorflow",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **extra,
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
