"""Update-to-weight ratios per layer, ‖Δw‖/‖w‖ of the optimizer's steps (the ~1e-3 rule)."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._update_ratio_rule import HIGH_RATIO, LOW_RATIO, TARGET_RATIO
from kerasnn.callbacks._step_figures import StepFigures, StepRecord
from kerasnn.callbacks._step_probe import layer_groups

__all__ = ["HIGH_RATIO", "LOW_RATIO", "TARGET_RATIO", "UpdateRatioRecord", "UpdateRatios"]


@dataclasses.dataclass(frozen=True)
class UpdateRatioRecord(StepRecord):
    """Update ratios of one optimizer step (``step`` = k for the k-th update, ``epoch`` from 1).

    ``values`` (also `ratios`): ``update_ratio/<layer>`` -> ‖Δw‖/‖w‖.
    """

    @property
    def ratios(self) -> dict[str, float]:
        """The figures (an alias of `values`)."""
        return self.values


@keras.saving.register_keras_serializable(package="kerasnn")
class UpdateRatios(StepFigures):
    """Logs, per layer, the size of the optimizer's update relative to the weights' size.

    For each layer with trainable weights, the ratio ‖Δw‖/‖w‖ of one optimizer step: Δw is
    what that step changed (the weights right after the update minus right before, so learning
    rate, momentum, weight decay and clipping are all in it) and w the weights before it, the
    norms taken over all of the layer's trainable weights (kernel and bias together). Measured
    inside the train step, around the optimizer's own update, so it works on plain `model.fit`,
    with fused steps (``steps_per_execution > 1``) and under `tf.distribute`; training is
    unchanged bit for bit. A layer whose weights are all zero has ratio NaN.

    Each epoch's `logs` get ``update_ratio/<layer>`` of the epoch's last update (History, CSV,
    TensorBoard, `kerasnn.plots.plot_update_ratios`). `flags` reads them against the rule of
    thumb ~1e-3 (`TARGET_RATIO`): a layer whose median over the epochs is below `LOW_RATIO`
    (1e-4) or above `HIGH_RATIO` (1e-2), i.e. more than 10x away, is flagged; `kerasnn.fit`
    puts the flags in its summary (`FitResult.notes`).

    Args:
        every_n_steps: also keep a record every this many steps (> 0). Defaults to `None`:
            each epoch's last update only.
        log_dir: also write every record into TensorBoard (``<log_dir>/train``, tags
            ``step_update_ratio/<layer>``, at the optimizer step). Defaults to `None`.

    Raises:
        ValueError: `every_n_steps` <= 0, or (at training start) a model without optimizer.

    Example:

    >>> UpdateRatios().every_n_steps is None
    True
    """

    record_type = UpdateRatioRecord

    def __init__(
        self, every_n_steps: int | None = None, log_dir: str | os.PathLike | None = None
    ) -> None:
        super().__init__(every_n_steps, log_dir)

    def _columns(self) -> int:
        self._variables = list(self.model.trainable_variables)
        self._groups = layer_groups(self.model)
        return 2 * len(self._variables)  # ‖w‖² and ‖Δw‖² per model variable

    def _measure(self, grads: list[Any], variables: list[Any], apply: Any) -> tf.Tensor:
        # Values read before the update stay as they were (TensorFlow copies a variable's
        # buffer before an in-place update while a read of it is alive).
        before = [tf.identity(v.value) for v in self._variables]
        apply()
        after = [v.value for v in self._variables]
        weights = [tf.reduce_sum(tf.square(tf.cast(b, tf.float32))) for b in before]
        deltas = [
            tf.reduce_sum(tf.square(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))
            for a, b in zip(after, before, strict=True)
        ]
        return tf.stack([*weights, *deltas])

    def _figures(self, row: np.ndarray) -> dict[str, float]:
        row = row.astype(np.float64)
        n = len(self._variables)
        ratios = {}
        for name, ids in self._groups:
            weight = math.sqrt(row[ids].sum())
            delta = math.sqrt(row[[n + i for i in ids]].sum())
            ratios[f"update_ratio/{name}"] = delta / weight if weight > 0 else math.nan
        return ratios

    def flags(self) -> list[str]:
        """Sentences about the layers whose typical ratio is far from ~1e-3.

        A layer's typical ratio is the median over the epochs of its last update's ratio (so a
        warm-up's first epochs or an annealed schedule's last ones do not decide alone); it is
        flagged below `LOW_RATIO` or above `HIGH_RATIO`.

        Returns:
            One sentence per flagged layer (empty when none is, or before training).
        """
        if not self.epoch_records:
            return []
        n = len(self.epoch_records)
        out = []
        for key in self.epoch_records[-1].values:
            values = [r.values.get(key, math.nan) for r in self.epoch_records]
            finite = [v for v in values if math.isfinite(v)]
            if not finite:
                continue
            ratio = float(np.median(finite))
            layer = key.removeprefix("update_ratio/")
            if ratio < LOW_RATIO:
                reading = (
                    f"below {LOW_RATIO:g}: the layer barely moves (learning rate too low, or "
                    "vanishing gradients)"
                )
            elif ratio > HIGH_RATIO:
                reading = (
                    f"above {HIGH_RATIO:g}: the updates are large for these weights (learning "
                    "rate too high?)"
                )
            else:
                continue
            over = "the epoch" if n == 1 else f"median over {n} epochs"
            out.append(
                f"update ratio of layer {layer!r} is {ratio:.2g} ({over}), {reading}; the "
                f"rule of thumb is ~{TARGET_RATIO:g}"
            )
        return out

    def get_config(self) -> dict[str, Any]:
        return {"every_n_steps": self.every_n_steps, "log_dir": self.log_dir}
