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
