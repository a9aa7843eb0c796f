"""Frees the graphs that discarded models leave pinned in TensorFlow's gradient registry.

Every `keras.Model.fit` on the TensorFlow backend traces its train and test steps; each trace
calls `tf.distribute`'s ``ReplicaContext.all_reduce``, whose `tf.custom_gradient` registers a
gradient function named ``CustomGradient-<n>`` in TensorFlow's global gradient registry and
never removes it. The registered closure holds tensors of the traced graph, so the graph, its
`FuncGraph` objects and the native memory behind them outlive `keras.backend.clear_session()`
and the model: about 6.5 MB per fit of a 64-128-128-10 MLP on this machine, 22 `FuncGraph`s
each (TensorFlow issue #97697, Keras #20245; TensorFlow 2.21, Keras 3.15). A search of
thousands of trials in one process grows by gigabytes.

Where kerasnn trains models in a loop and discards each (a search's trials, an experiment's
variants), the entries registered during one iteration are dead once it ends: `release`
deletes exactly those (named ``CustomGradient-*`` and absent from the snapshot taken before),
after which a garbage collection frees the graphs; `releasing` wraps one iteration. Entries of
models that outlive the iteration are left alone; a model trained inside it stays usable (its
train step is already traced; a retrace registers new entries).

TensorFlow has no public way to unregister a gradient, so this reaches the registry through
``tensorflow.python.framework.ops``; if a TensorFlow release moves it, `snapshot` returns
`None` and `release` does nothing (the leak stays, nothing breaks).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

PREFIX = "CustomGradient-"


def _registry() -> dict[str, Any] | None:
    """TensorFlow's gradient registry (name -> entry), or `None` where it is not found."""
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    entries = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return entries if isinstance(entries, dict) else None


def snapshot() -> frozenset[str] | None:
    """The names of the custom gradients registered now (`None`: registry not reachable)."""
    entries = _registry()
    return None if entries is None else frozenset(k for k in entries if k.startswith(PREFIX))


def release(before: frozenset[str] | None) -> int:
    """Unregisters the custom gradients registered since `before` (a `snapshot`).

    Call it when the models built since the snapshot are discarded, then collect garbage.

    Args:
        before: what `snapshot` returned before those models were built. `None` does
            nothing.

    Returns:
        How many entries were removed.
    """
    entries = _registry()
    if before is None or entries is None:
        return 0
    stale = [k for k in list(entries) if k.startswith(PREFIX) and k not in before]
    for name in stale:
        entries.pop(name, None)
    return len(stale)


@contextlib.contextmanager
def releasing() -> Iterator[None]:
    """Releases, on exit, the custom gradients registered inside the block, then collects
    garbage; for a block whose models are discarded at its end."""
    before = snapshot()
    try:
        yield
    finally:
        release(before)
        gc.collect()
