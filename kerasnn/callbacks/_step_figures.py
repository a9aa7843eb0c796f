"""The host side of the per-step instruments: records, ``logs`` and TensorBoard.

`StepFigures` is the base of `GradientNorms` and `UpdateRatios`: a subclass says how wide its
per-step row is (`_columns`), what to compute in the graph (`_measure`) and how a row reads as
named figures (`_figures`); this class attaches a `StepProbe` for the training, reads its
buffer once per graph execution, keeps `records` (every `every_n_steps`-th step and the last
step of each epoch; `epoch_records` the latter alone), writes each epoch's last figures into
`logs` and, with a `log_dir`, every record into TensorBoard at its optimizer step.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerasnn._validation import invalid, positive_int
from kerasnn.callbacks._step_probe import StepProbe

__all__ = ["StepFigures", "StepRecord"]

# Tag prefix of the per-step scalars in TensorBoard (Keras's own are ``epoch_``/``batch_``).
TENSORBOARD_PREFIX = "step_"


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """The figures of one optimizer step.

    Attributes:
        step: the optimizer step measured: ``k`` for the k-th update (``optimizer.iterations``
            once it was applied).
        epoch: the epoch it belongs to, counted from 1.
        values: figure name -> value.
    """

    step: int
    epoch: int
    values: dict[str, float]


class StepFigures(keras.callbacks.Callback):
    """Base of the callbacks that measure every optimizer step inside the train step.

    Args:
        every_n_steps: keep a record every this many optimizer steps, > 0, or `None` for the
            last step of each epoch only.
        log_dir: write every record into TensorBoard, in ``<log_dir>/train`` (beside
            `keras.callbacks.TensorBoard`'s own curves when it has the same `log_dir`), as
            ``step_<figure>`` at the record's optimizer step. Defaults to `None`.
    """

    record_type: type[StepRecord] = StepRecord

    def __init__(self, every_n_steps: int | None, log_dir: str | os.PathLike | None) -> None:
        super().__init__()
        self.every_n_steps = (
            None if every_n_steps is None else positive_int("every_n_steps", every_n_steps)
        )
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise invalid("log_dir", "a folder path or None", log_dir)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.records: list[StepRecord] = []
        self.epoch_records: list[StepRecord] = []
        self._probe: StepProbe | None = None
        self._writer: Any = None
        self._epoch = 1
        self._epoch_start = 0
        self._read_until = 0

    # -- for subclasses -------------------------------------------------------------------------
    def _columns(self) -> int:
        """Floats per step."""
        raise NotImplementedError

    def _measure(self, grads: list[Any], variables: list[Any], apply: Any) -> tf.Tensor:
        """The step's row, in the graph; calls ``apply()`` once."""
        raise NotImplementedError

    def _figures(self, row: np.ndarray) -> dict[str, float]:
        """A row (float64) as named figures."""
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------------
    def _iterations(self) -> int:
        return int(self._probe.optimizer.iterations.numpy())

    def _records(self, rows: list[tuple[int, np.ndarray]]) -> list[StepRecord]:
        """Records of ``(step, row)`` pairs, kept (and written to TensorBoard)."""
        if not rows:
            return []
        figures = self._figures_of(np.stack([row for _, row in rows]).astype(np.float64))
        new = [
            self.record_type(step=step, epoch=self._epoch, values=values)
            for (step, _), values in zip(rows, figures, strict=True)
        ]
        self.records.extend(new)
        if self.log_dir is not None:
            for record in new:
                self._write(record)
        return new

    def _figures_of(self, rows: np.ndarray) -> list[dict[str, float]]:
        """Figures of each row of `rows` (float64, one row per step)."""
        return [self._figures(row) for row in rows]

    def _write(self, record: StepRecord) -> None:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))
        with self._writer.as_default():
            for name, value in record.values.items():
                tf.summary.scalar(TENSORBOARD_PREFIX + name, value, step=record.step)

    def _read(self, current: int) -> list[StepRecord]:
        """Records of the kept steps in ``(read_until, current]``."""
        n = self.every_n_steps
        new = []
        if n is not None and current // n > self._read_until // n:
            kept = [(s, r) for s, r in self._probe.read(self._read_until, current) if s % n == 0]
            new = self._records(kept)
        self._read_until = current
        return new

    # -- hooks ----------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self._probe is not None:  # a training that ended without on_train_end
            self._probe.detach()
        if self.model.optimizer is None:
            raise ValueError(
                f"{type(self).__name__} measures the optimizer's steps: compile the model with "
                "an optimizer first. Received: model.optimizer=None"
            )
        self.records, self.epoch_records = [], []
        self._probe = StepProbe(
            self.model,
            self._columns(),
            self._measure,
            capacity=int(self.model.steps_per_execution or 1),
        ).attach()
        self._read_until = self._iterations()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._epoch_start = self._iterations()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        new = self._read(self._iterations())
        if new and logs is not None:
            logs.update(new[-1].values)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = self._iterations()
        self._read(current)
        if self.records and self.records[-1].step == current:
            last = self.records[-1]
        else:
            if current <= self._epoch_start:
                return  # no step this epoch
            (last,) = self._records(self._probe.read(current - 1, current))
        self.epoch_records.append(last)
        if logs is not None:
            logs.update(last.values)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._probe is not None:
            self._probe.detach()
            self._probe = None
        if self._writer is not None:
            self._writer.flush()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> keras.callbacks.Callback:
        """Rebuilds the callback from `get_config` (callbacks are not Keras layers)."""
        return cls(**config)
