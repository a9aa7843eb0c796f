"""Babysitting checks before a long training run: the lectures' checklist as one call.

1. With regularization off, the initial loss of a C-class softmax classifier is about ``ln C``
   (the network starts out guessing uniformly).
2. Turning regularization on makes the loss go up.
3. The network can overfit a tiny subset (e.g. 20 samples) to ~100% training accuracy.

`sanity_check` runs the three on a compiled model and puts the model back exactly as it was.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerasnn import _json, training
from kerasnn._validation import invalid, positive_int
from kerasnn.diagnostics._snapshot import Snapshot

__all__ = ["SanityCheck", "SanityReport", "sanity_check"]

# Overfitting a tiny subset fails if the loss ever exceeds this multiple of its first value.
BLOW_UP = 2.0
# Smallest allowed distance (in nats) between the initial loss and ln C: for C = 2 a quarter of
# ln 2 would refuse ordinary Glorot-initialised networks (their logits have a std near 1).
MIN_TOLERANCE = 0.25


@dataclasses.dataclass
class SanityCheck:
    """One check: its name, whether it passed, the measured and expected values, a sentence."""

    name: str
    passed: bool
    value: float
    expected: str
    detail: str


@dataclasses.dataclass
class SanityReport:
    """What `sanity_check` returns.

    Attributes:
        checks: the checks run, in order.
        overfit_history: the loss and accuracy per epoch of the tiny-subset run.
        figures: name -> PNG path of the figures written (empty without `out_dir`).
    """

    checks: list[SanityCheck]
    overfit_history: dict[str, list[float]]
    figures: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(c.passed for c in self.checks)

    def summary(self) -> str:
        """One line per check: PASS/FAIL, name, detail."""
        lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "passed": self.passed,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "overfit_history": self.overfit_history,
            "figures": self.figures,
        }


def _regularized_variables(model: keras.Model) -> list[Any]:
    return [v for v in model.trainable_variables if getattr(v, "regularizer", None) is not None]


def _loss(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Compiled loss (plus regularization) in inference mode, without touching metrics."""
    y_pred = model(x, training=False)
    loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    return float(keras.ops.convert_to_numpy(loss))


def _subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples, stratified over the classes present (round robin), chosen with `seed`."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        by_class = [order[y[order] == c] for c in np.unique(y)]
        picked = []
        i = 0
        while len(picked) < min(n, len(x)):
            group = by_class[i % len(by_class)]
            if i // len(by_class) < len(group):
                picked.append(group[i // len(by_class)])
            i += 1
        index = np.array(picked)
    else:
        index = order[:n]
    return x[index], y[index]


def sanity_check(
    model: keras.Model,
    data: Any,
    *,
    num_samples: int = 20,
    max_epochs: int = 200,
    regularization: float = 1e-2,
    initial_loss_tolerance: float = 0.25,
    target_accuracy: float = 1.0,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
) -> SanityReport:
    """Runs the lectures' babysitting checks on a compiled, untrained model.

    1. *initial loss*: with every weight regularizer removed, the loss on the training data is
       within ``max(initial_loss_tolerance · ln C, 0.25)`` of ``ln C`` (C softmax outputs, or C = 2
       for a sigmoid output with binary cross-entropy; skipped for regression and other losses).
    2. *regularization raises the loss*: with L2(`regularization`) on every kernel (or the
       model's own regularizers if it has some) the loss is higher than without.
    3. *overfit a tiny subset*: trained full-batch on `num_samples` training samples, regularizers
       off, for up to `max_epochs` epochs, the training accuracy reaches `target_accuracy`
       (classification) or the loss falls below 1% of its start (regression), without the
       loss ever exceeding twice its starting value on the way (a blow-up means the learning
       rate is too high, even if the subset ends up memorised).

    The model is put back exactly as it was (weights, optimizer state, regularizers).

    Args:
        model: a compiled Keras model, freshly initialised.
        data: a `kerasnn.datasets.Dataset` (train split) or an ``(x, y)`` pair.
        num_samples: size of the tiny subset. Defaults to 20.
        max_epochs: epochs allowed to overfit it. Defaults to 200.
        regularization: L2 factor used for check 2 when the model has no regularizer.
            Defaults to 1e-2.
        initial_loss_tolerance: allowed distance to ``ln C`` as a fraction of it (at least
            0.25 nats). Defaults to 0.25.
        target_accuracy: accuracy the subset must reach. Defaults to 1.0.
        seed: chooses the subset. Defaults to 0.
        out_dir: folder for ``sanity_overfit.png`` and ``sanity.json``. Defaults to `None`.

    Returns:
        A `SanityReport` (``report.passed``, ``report.summary()``).

    Raises:
        ValueError: bad arguments or data that does not fit the model (before any training).
    """
    positive_int("num_samples", num_samples)
    positive_int("max_epochs", max_epochs)
    if isinstance(regularization, bool) or not isinstance(regularization, int | float):
        raise invalid("regularization", "a number > 0", regularization)
    if not regularization > 0:
        raise invalid("regularization", "a number > 0", regularization)
    if not model.compiled:
        raise RuntimeError("The model is not compiled: call kerasnn.compile(model, ...) first.")
    x, y = training.arrays(data, "train")
    training.check_data(model, x, y, "data")
    task = training.task_of(model)
    n_classes = {"classification": int(model.output_shape[-1]), "binary": 2}.get(task)

    snapshot = Snapshot(model)
    variables = model.trainable_variables
    original = [getattr(v, "regularizer", None) for v in variables]
    checks: list[SanityCheck] = []
    history: dict[str, list[float]] = {}
    probe_x, probe_y = _subset(x, y, min(len(x), 512), seed)
    try:
        for v in variables:
            v.regularizer = None
        base = _loss(model, probe_x, probe_y)
        if n_classes is not None and n_classes > 1:
            expected = math.log(n_classes)
            tolerance = max(initial_loss_tolerance * expected, MIN_TOLERANCE)
            ok = abs(base - expected) <= tolerance
            checks.append(
                SanityCheck(
                    "initial loss ≈ ln(C)",
                    bool(ok),
                    base,
                    f"{expected:.4f} ± {tolerance:.3g}",
                    f"loss {base:.4f} with regularization off, ln({n_classes}) = {expected:.4f}",
                )
            )
        has_own = any(r is not None for r in original)
        for v, reg in zip(variables, original, strict=True):
            if has_own:
                v.regularizer = reg
            elif len(v.shape) >= 2:
                v.regularizer = keras.regularizers.L2(regularization)
        with_reg = _loss(model, probe_x, probe_y)
        what = "the model's regularizers" if has_own else f"L2({regularization:g}) on kernels"
        checks.append(
            SanityCheck(
                "regularization raises the loss",
                bool(with_reg > base),
                with_reg,
                f"> {base:.4f}",
                f"loss {with_reg:.4f} with {what} vs {base:.4f} without",
            )
        )
        for v in variables:
            v.regularizer = None
        history = _overfit(model, *_subset(x, y, num_samples, seed), max_epochs, task)
        checks.append(_overfit_check(history, task, target_accuracy, num_samples))
    finally:
        for v, reg in zip(variables, original, strict=True):
            v.regularizer = reg
        snapshot.restore()
    report = SanityReport(checks=checks, overfit_history=history)
    if out_dir is not None:
        _write(report, Path(out_dir))
    return report


class _StopAt(keras.callbacks.Callback):
    """Stops once the training accuracy reaches the target."""

    def __init__(self, target: float | None) -> None:
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.target is not None and logs.get("accuracy", 0.0) >= self.target:
            self.model.stop_training = True
        if not math.isfinite(float(logs.get("loss", 0.0))):
            self.model.stop_training = True


def _overfit(
    model: keras.Model, x: np.ndarray, y: np.ndarray, max_epochs: int, task: str | None
) -> dict[str, list[float]]:
    target = 1.0 if task in ("classification", "binary") else None
    model.steps_per_execution = 1
    model.make_train_function(force=True)
    fit = model.fit(
        x, y, batch_size=len(x), epochs=max_epochs, verbose=0, callbacks=[_StopAt(target)]
    )
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    final = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    history["final"] = [float(final.get("accuracy", final["loss"]))]
    return history


def _overfit_check(
    history: dict[str, list[float]], task: str | None, target: float, n: int
) -> SanityCheck:
    losses = history["loss"]
    epochs = len(losses)
    peak = max(losses) if all(math.isfinite(v) for v in losses) else math.inf
    blew_up = peak > BLOW_UP * losses[0]
    if task in ("classification", "binary"):
        accuracy = history["final"][0]
        detail = (
            f"training accuracy {accuracy:.1%} after {epochs} epochs "
            f"(loss {losses[0]:.4g} -> {losses[-1]:.4g}"
        )
        if blew_up:
            detail += f", but it blew up to {peak:.4g} on the way: learning rate too high?"
        return SanityCheck(
            f"overfit {n} samples",
            bool(accuracy >= target - 1e-9 and not blew_up),
            accuracy,
            f">= {target:.0%} training accuracy, loss never above {BLOW_UP:g}x its start",
            detail + ")",
        )
    ok = math.isfinite(losses[-1]) and losses[-1] <= 0.01 * losses[0] and not blew_up
    return SanityCheck(
        f"overfit {n} samples",
        bool(ok),
        losses[-1],
        f"<= {0.01 * losses[0]:.4g} (1% of the initial loss)",
        f"loss {losses[0]:.4g} -> {losses[-1]:.4g} in {epochs} epochs",
    )


def _write(report: SanityReport, out_dir: Path) -> None:
    from kerasnn import plots  # matplotlib: imported only when a figure is written

    out_dir.mkdir(parents=True, exist_ok=True)
    figure = out_dir / "sanity_overfit.png"
    plots.plot_sanity(report, path=figure)
    report.figures["overfit"] = str(figure)
    _json.write(out_dir / "sanity.json", report.to_dict())
