"""What every benchmark reports beside its figures: versions, CPUs and how busy the machine was.

Benchmarks import this as ``from _common import environment`` (they run as scripts, with
``bench/`` first on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
from typing import Any


def environment(load_before: float) -> dict[str, Any]:
    """Versions, CPU count and the 1-minute load average before (given) and now.

    Args:
        load_before: ``os.getloadavg()[0]`` taken when the benchmark started.

    Returns:
        ``{"versions": {...}, "cpu_count": N, "loadavg_1min": {"before": .., "after": ..}}``:
        other processes on the machine skew every timing, so each report says how busy it was.
    """
    import keras
    import tensorflow as tf

    import kerasnn

    return {
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "kerasnn": kerasnn.__version__,
        },
        "cpu_count": os.cpu_count(),
        "loadavg_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }
