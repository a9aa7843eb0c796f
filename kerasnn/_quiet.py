"""TensorFlow's start-up lines, kept from the user on a machine without a GPU.

Importing TensorFlow and probing its devices prints, straight from C++ to file descriptor 2,
lines such as ``Could not find cuda drivers on your machine, GPU will not be used`` and
``failed call to cuInit`` (twice the absl "before InitializeLog" warning besides): five lines on
every CPU machine, before any output of ours. `import_tensorflow` imports TensorFlow and probes
the devices with descriptor 2 captured, then writes back every captured line except those
known start-up notes, so real warnings and errors still reach the user. The `kerasnn` command
line calls it (unless ``--verbose``) and so does the test suite.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

__all__ = ["STARTUP_NOISE", "import_tensorflow", "startup_filtered"]

# The start-up notes of a TensorFlow build with CUDA support on a machine without a GPU, and the
# CPU feature notes: nothing a user can act on.
STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|cuda_platform\.cc.*failed call to cuInit"
    r"|cuda_diagnostics\.cc|cuda_executor\.cc.*(NUMA|could not open file)"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc.*already registered"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|oneDNN custom operations are on"
    r"|TF-TRT Warning: Could not find TensorRT"
)


@contextlib.contextmanager
def startup_filtered() -> Iterator[None]:
    """Captures file descriptor 2 for the block; re-emits all but `STARTUP_NOISE` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(True) if not STARTUP_NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow(*, verbose: bool = False) -> Any:
    """Imports TensorFlow and initializes its devices, without the start-up notes.

    Args:
        verbose: show everything TensorFlow prints. Defaults to `False`.

    Returns:
        The `tensorflow` module.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    block = contextlib.nullcontext() if verbose else startup_filtered()
    with block:
        import tensorflow as tf  # the point of this function

        tf.config.list_physical_devices()  # the CUDA probe prints here, not at the first op
    return tf
