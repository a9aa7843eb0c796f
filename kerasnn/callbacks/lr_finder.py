"""The learning-rate range test (lr_find): ramp the rate up exponentially, watch the loss.

`LRFinder` is the callback (usable with `model.fit` directly), `LRFindResult` the curve with the
suggested rates (`suggest_valley`, `suggest_steepest`). `kerasnn.diagnostics.lr_find` runs the
callback on a model and data and puts the model and optimizer back exactly as they were;
`kerasnn.plots.plot_lr_find` draws the result.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import numpy as np

from kerasnn._validation import invalid, positive_int

__all__ = [
    "DIVERGE_FACTOR",
    "LRFindResult",
    "LRFinder",
    "has_schedule",
    "suggest_steepest",
    "suggest_valley",
]

DIVERGE_FACTOR = 4.0


@dataclasses.dataclass
class LRFindResult:
    """What `LRFinder.result` (and so `kerasnn.diagnostics.lr_find`) returns.

    Attributes:
        learning_rates: the rate of each step taken.
        losses: the training loss of each step (that batch's loss).
        smoothed_losses: the bias-corrected exponential moving average of `losses`.
        suggestions: ``{"valley": ..., "steepest": ..., "minimum/10": ...}``: fastai's valley
            rule (the longest decreasing stretch of the smoothed curve, two thirds down it),
            the steepest descent of the smoothed loss against ``log(lr)``, and a tenth of the
            rate at the lowest smoothed loss.
        suggested: the `valley` rate, the one to start from.
        stopped_early: the smoothed loss exceeded `diverge_factor` × its minimum before the
            last step.
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    suggestions: dict[str, float]
    suggested: float
    stopped_early: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def has_schedule(optimizer: keras.optimizers.Optimizer) -> bool:
    """Whether the optimizer's learning rate is a schedule (its config is then a dict)."""
    return isinstance(optimizer.get_config()["learning_rate"], dict)


def suggest_steepest(learning_rates: np.ndarray, smoothed: np.ndarray) -> float:
    """Rate where the smoothed loss falls fastest against ``log(lr)``."""
    if len(smoothed) < 3:
        return float(learning_rates[0])
    slope = np.gradient(smoothed, np.log(learning_rates))
    return float(learning_rates[int(np.argmin(slope))])


def suggest_valley(learning_rates: np.ndarray, smoothed: np.ndarray) -> float:
    """fastai's valley rule: longest decreasing subsequence, two thirds of the way down it."""
    n = len(smoothed)
    lengths = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and lengths[i] < lengths[j] + 1:
                lengths[i] = lengths[j] + 1
            if lengths[max_end] < lengths[i]:
                max_end = i
                max_start = max_end - lengths[max_end]
    sections = (max_end - max_start) / 3
    index = max_start + int(sections) + int(sections / 2)
    return float(learning_rates[min(index, n - 1)])


@keras.saving.register_keras_serializable(package="kerasnn")
class LRFinder(keras.callbacks.Callback):
    """Sets the learning rate ``min_lr · (max_lr/min_lr)^(i/(num_steps−1))`` at step ``i``.

    Records each step's loss (the metrics are reset before every step, so the logged loss is
    that batch's), smooths it (``avg = β·avg + (1−β)·loss``, bias-corrected) and stops training
    once the smoothed loss exceeds `diverge_factor` × its minimum, or is NaN, or after
    `num_steps` steps. The model must run one step per execution (``steps_per_execution=1``)
    and use a plain (not scheduled) learning rate. It changes the weights:
    `kerasnn.diagnostics.lr_find` restores them; with `model.fit` directly, keep a copy.

    Args:
        min_lr: first rate, > 0. Defaults to 1e-7.
        max_lr: last rate, > `min_lr`. Defaults to 10.
        num_steps: steps of the ramp, >= 2. Defaults to 100.
        smoothing: ``β`` of the moving average, in [0, 1). Defaults to 0.98.
        diverge_factor: stop when the smoothed loss exceeds this × its minimum, > 1.
            Defaults to 4.

    Raises:
        ValueError: bounds not positive or reversed, bad `num_steps`, `smoothing` or
            `diverge_factor`; at training start, ``steps_per_execution != 1`` or a schedule.

    Example:

    >>> round(LRFinder(min_lr=1e-5, max_lr=1.0, num_steps=5).rate(4), 12)
    1.0
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        num_steps: int = 100,
        smoothing: float = 0.98,
        diverge_factor: float = DIVERGE_FACTOR,
    ) -> None:
        super().__init__()
        for argument, value in (("min_lr", min_lr), ("max_lr", max_lr)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise invalid(argument, "a number > 0", value)
        if not max_lr > min_lr:
            raise ValueError(
                "Received an invalid value for argument max_lr, expected a rate above "
                f"min_lr={min_lr!r} (the bounds are reversed or equal). Received: max_lr={max_lr!r}"
            )
        positive_int("num_steps", num_steps)
        if num_steps < 2:
            raise invalid("num_steps", "an integer >= 2", num_steps)
        if isinstance(smoothing, bool) or not isinstance(smoothing, int | float):
            raise invalid("smoothing", "a float in [0, 1)", smoothing)
        if not 0 <= smoothing < 1:
            raise invalid("smoothing", "a float in [0, 1)", smoothing)
        if isinstance(diverge_factor, bool) or not isinstance(diverge_factor, int | float):
            raise invalid("diverge_factor", "a number > 1", diverge_factor)
        if not diverge_factor > 1:
            raise invalid("diverge_factor", "a number > 1", diverge_factor)
        self.min_lr, self.max_lr = float(min_lr), float(max_lr)
        self.num_steps = num_steps
        self.smoothing = float(smoothing)
        self.diverge_factor = float(diverge_factor)
        self._reset()

    def _reset(self) -> None:
        self.learning_rates: list[float] = []
        self.losses: list[float] = []
        self.smoothed_losses: list[float] = []
        self.stopped_early = False
        self._average = 0.0
        self._best = math.inf

    def rate(self, step: int) -> float:
        """The learning rate of step `step` (0-based)."""
        return self.min_lr * (self.max_lr / self.min_lr) ** (step / (self.num_steps - 1))

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.model.steps_per_execution != 1:
            raise ValueError(
                "Received an invalid value for argument steps_per_execution, expected 1: "
                "LRFinder sets the rate before every step. Received: "
                f"steps_per_execution={self.model.steps_per_execution}"
            )
        if has_schedule(self.model.optimizer):
            raise ValueError(
                "Received an invalid value for argument optimizer, expected a plain learning "
                "rate: LRFinder sets the rate itself. Compile the model with a float learning "
                "rate for the range test. Received: a learning rate schedule"
            )
        self._reset()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.model.reset_metrics()
        self.model.optimizer.learning_rate = self.rate(len(self.losses))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float((logs or {})["loss"])
        step = len(self.losses)
        self.learning_rates.append(self.rate(step))
        self.losses.append(loss)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** (step + 1))
        self.smoothed_losses.append(smoothed)
        if not math.isfinite(smoothed):
            self.stopped_early = True
        else:
            self._best = min(self._best, smoothed)
            if step > 0 and smoothed > self.diverge_factor * self._best:
                self.stopped_early = True
        if self.stopped_early or len(self.losses) >= self.num_steps:
            self.model.stop_training = True

    def result(self) -> LRFindResult:
        """The curve and the suggested rates (the diverged tail is left out of the rules)."""
        if len(self.losses) < 2:
            raise RuntimeError(
                "The learning-rate range test took fewer than 2 steps: give it more data "
                "(or a smaller batch size) or a larger min_lr."
            )
        lrs = np.array(self.learning_rates)
        smoothed = np.array(self.smoothed_losses)
        finite = np.isfinite(smoothed)
        end = int(np.argmax(~finite)) if not finite.all() else len(smoothed)
        lrs_ok, smoothed_ok = lrs[:end], smoothed[:end]
        if self.stopped_early and end > 2:  # drop the diverging step itself
            lrs_ok, smoothed_ok = lrs_ok[:-1], smoothed_ok[:-1]
        if len(smoothed_ok) == 0:
            raise RuntimeError(
                f"The loss was not finite from the first step (min_lr={self.min_lr}): lower "
                "min_lr or check the data and the model."
            )
        valley = suggest_valley(lrs_ok, smoothed_ok)
        suggestions = {
            "valley": valley,
            "steepest": suggest_steepest(lrs_ok, smoothed_ok),
            "minimum/10": float(lrs_ok[int(np.argmin(smoothed_ok))] / 10),
        }
        return LRFindResult(
            learning_rates=[float(v) for v in lrs],
            losses=[float(v) for v in self.losses],
            smoothed_losses=[float(v) for v in smoothed],
            suggestions=suggestions,
            suggested=valley,
            stopped_early=self.stopped_early,
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> keras.callbacks.Callback:
        """Rebuilds the callback from `get_config` (callbacks are not Keras layers)."""
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "num_steps": self.num_steps,
            "smoothing": self.smoothing,
            "diverge_factor": self.diverge_factor,
        }
