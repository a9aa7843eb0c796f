"""TensorBoard's HParams dashboard of a search: one run per trial.

The layout under the dashboard's folder (``--tensorboard DIR``), as TensorBoard's HParams
plugin reads it:

```
DIR/events.out.tfevents.*             the experiment: every hyperparameter with its domain,
                                      the metrics (rewritten by each `write_experiment`)
DIR/trial_001/events.out.tfevents.*   the trial's session: its hyperparameter values
                                      (trial id "trial 1"), its "objective" scalar (step 0)
                                      and its end status (success or failure)
DIR/trial_001/train/...               the per-epoch scalars of the fit ("epoch_loss"…), as
DIR/trial_001/validation/...          `keras.callbacks.TensorBoard` writes them
DIR/trial_002/...
```

A Keras history name is a dashboard metric in the run of its split: ``"val_accuracy"`` is the
tag ``"epoch_accuracy"`` in group ``"validation"``, ``"loss"`` the tag ``"epoch_loss"`` in group
``"train"``. The metric ``"objective"`` is the trial's score as the search ranks it (its best
epoch, or the folds' mean under cross-validation).

A trial's session ends when the search records the trial (`HParamsBoard.write_objective`), not
when its first fit ends: a trial stopped on a NaN loss is marked failed, and a cross-validated
trial (whose first fold alone carries the callbacks) ends after its last fold.

TensorFlow and TensorBoard are imported when a method first needs them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner

__all__ = ["HParamsBoard"]

_EXPERIMENT_FILES = "events.out.tfevents.*"
_MAX_DISCRETE = 20  # an Int with a step and at most this many values: a Discrete domain
_BOOKKEEPING = "tuner/"  # KerasTuner's own entries (Hyperband's epochs, bracket…)


def _plain(value: Any) -> bool | int | float | str:
    """`value` as a type the HParams plugin records (`str` of anything else)."""
    if isinstance(value, bool | int | float | str):
        return value
    item = getattr(value, "item", None)  # a NumPy scalar
    if callable(item):
        try:
            value = item()
        except (TypeError, ValueError):
            return str(value)
        if isinstance(value, bool | int | float | str):
            return value
    return str(value)


def _discrete(values: Sequence[Any]) -> Any:
    from tensorboard.plugins.hparams import api as hparams_api

    plain = list(dict.fromkeys(_plain(v) for v in values))
    if all(isinstance(v, bool) for v in plain):
        return hparams_api.Discrete(plain, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in plain):
        return hparams_api.Discrete(plain, dtype=int)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in plain):
        return hparams_api.Discrete([float(v) for v in plain], dtype=float)
    return hparams_api.Discrete([str(v) for v in plain], dtype=str)


def _int_domain(hp: Any) -> Any:
    from tensorboard.plugins.hparams import api as hparams_api

    config = hp.get_config()
    low, high = int(config["min_value"]), int(config["max_value"])
    step, sampling = config.get("step"), config.get("sampling") or "linear"
    if step is None or (sampling == "linear" and int(step) == 1) or high <= low:
        return hparams_api.IntInterval(low, high)
    if sampling == "linear":
        if (high - low) // int(step) + 1 > _MAX_DISCRETE:
            return hparams_api.IntInterval(low, high)
        return _discrete(list(range(low, high + 1, int(step))))
    values = []
    for value in hp.values:  # KerasTuner's own grid of a log/reverse-log step
        if len(values) >= _MAX_DISCRETE:
            return hparams_api.IntInterval(low, high)
        values.append(int(value))
    return _discrete(sorted(set(values)))


def _domain(hp: Any) -> Any:
    """The HParams domain of a KerasTuner hyperparameter (`None`: let TensorBoard infer it)."""
    from tensorboard.plugins.hparams import api as hparams_api

    kinds = keras_tuner.engine.hyperparameters
    config = hp.get_config()
    if isinstance(hp, kinds.Boolean):
        return hparams_api.Discrete([False, True], dtype=bool)
    if isinstance(hp, kinds.Fixed):
        return _discrete([config["value"]])
    if isinstance(hp, kinds.Choice):
        return _discrete(config["values"])
    if isinstance(hp, kinds.Int):
        return _int_domain(hp)
    if isinstance(hp, kinds.Float):
        return hparams_api.RealInterval(float(config["min_value"]), float(config["max_value"]))
    return None


def _metric(name: str) -> Any:
    from tensorboard.plugins.hparams import api as hparams_api

    if name.startswith("val_"):
        return hparams_api.Metric(
            f"epoch_{name[4:]}",
            group="validation",
            display_name=name,
            dataset_type=hparams_api.Metric.VALIDATION,
        )
    return hparams_api.Metric(
        f"epoch_{name}",
        group="train",
        display_name=name,
        dataset_type=hparams_api.Metric.TRAINING,
    )


def _check_trial(trial: Any) -> int:
    if isinstance(trial, bool) or not isinstance(trial, int) or trial < 1:
        raise ValueError(
            "Received an invalid value for argument trial, expected a trial number (an int "
            f"from 1). Received: trial={trial!r}"
        )
    return trial


def _session_start(hparams: Mapping[str, Any], trial_id: str, writer: Any) -> Any:
    """`hparams_api.KerasCallback` recording the session's start only (its end, with the
    trial's status, is written by `HParamsBoard.write_objective`)."""
    from tensorboard.plugins.hparams import api as hparams_api

    class SessionStart(hparams_api.KerasCallback):
        def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
            writer.close()

    return SessionStart(writer, dict(hparams), trial_id=trial_id)


class HParamsBoard:
    """The HParams dashboard of a search: one TensorBoard run per trial under `logdir`.

    Args:
        logdir: the dashboard's folder (``tensorboard --logdir`` it). Created when first
            written.
        objective: the name of the metric the search optimizes (e.g. ``"val_accuracy"``);
            it is shown as the display name of the dashboard's ``"objective"`` metric.

    Raises:
        ValueError: an empty `objective`.

    Example:

    ```python
    board = HParamsBoard("logs/search", objective="val_accuracy")
    board.write_experiment(hps, ["loss", "accuracy", "val_loss", "val_accuracy"])
    model.fit(x, y, validation_split=0.2, callbacks=board.trial_callbacks(1, {"units": 32}))
    board.write_objective(1, 0.93, status="COMPLETED")
    ```
    """

    def __init__(self, logdir: str | os.PathLike, *, objective: str) -> None:
        if not isinstance(objective, str) or not objective:
            raise ValueError(
                "Received an invalid value for argument objective, expected the name of the "
                f"search's objective (a non-empty str). Received: objective={objective!r}"
            )
        self.logdir = Path(logdir)
        self.objective = objective

    def trial_dir(self, trial: int) -> Path:
        """The run folder of trial number `trial` (``logdir/trial_001`` for trial 1)."""
        return self.logdir / f"trial_{_check_trial(trial):03d}"

    def write_experiment(self, hps: keras_tuner.HyperParameters, metrics: Sequence[str]) -> None:
        """Writes the experiment summary (``hparams_config``) at `logdir`.

        One HParam per hyperparameter of ``hps.space`` (KerasTuner's ``tuner/*`` bookkeeping
        left out), with its domain: `Choice` -> ``Discrete(values)``; `Int` ->
        ``IntInterval(min, max)``, or ``Discrete`` of its grid when it has a step other than 1
        and at most 20 values; `Float` -> ``RealInterval(min, max)``; `Boolean` ->
        ``Discrete([False, True])``; `Fixed` -> ``Discrete([value])``. One Metric per name in
        `metrics` (a Keras history name: ``"val_<m>"`` is the tag ``"epoch_<m>"`` in group
        ``"validation"``, any other name ``"epoch_<name>"`` in group ``"train"``), and the
        Metric ``"objective"`` (tag ``"objective"`` in the trial's own run).

        Idempotent: an earlier experiment at `logdir` is replaced (a resumed or coarse-to-fine
        search writes its space again, perhaps narrowed). A TensorBoard already running keeps
        the experiment it has read until it is restarted.

        Args:
            hps: the search space (e.g. ``oracle.get_space()``).
            metrics: the Keras history names the trials report, e.g. ``["loss",
                "accuracy", "val_loss", "val_accuracy"]``.

        Raises:
            ValueError: `metrics` is a str or holds something other than non-empty strs.
        """
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hparams_api

        if isinstance(metrics, str) or not all(isinstance(m, str) and m for m in metrics):
            raise ValueError(
                "Received an invalid value for argument metrics, expected a sequence of "
                f"Keras metric names (non-empty strs). Received: metrics={metrics!r}"
            )
        hparams = {}
        for hp in hps.space:
            if hp.name.startswith(_BOOKKEEPING) or hp.name in hparams:
                continue
            hparams[hp.name] = hparams_api.HParam(hp.name, _domain(hp))
        board_metrics = [_metric(name) for name in dict.fromkeys(metrics)]
        board_metrics.append(
            hparams_api.Metric(
                "objective",
                display_name=f"objective ({self.objective})",
                description=f"The trial's score as the search ranks it: {self.objective}.",
            )
        )
        self.logdir.mkdir(parents=True, exist_ok=True)
        # TensorBoard keeps the first experiment it reads: the old one is removed, and the new
        # one written aside then moved in, so the folder never holds two.
        staging = Path(tempfile.mkdtemp(prefix=".experiment-", dir=self.logdir))
        try:
            writer = tf.summary.create_file_writer(str(staging))
            with writer.as_default():
                hparams_api.hparams_config(hparams=list(hparams.values()), metrics=board_metrics)
            writer.close()
            for old in self.logdir.glob(_EXPERIMENT_FILES):
                old.unlink(missing_ok=True)
            for new in staging.glob(_EXPERIMENT_FILES):
                os.replace(new, self.logdir / new.name)
        finally:
            for leftover in staging.iterdir():
                leftover.unlink(missing_ok=True)
            staging.rmdir()

    def trial_callbacks(
        self, trial: int, values: Mapping[str, Any]
    ) -> list[keras.callbacks.Callback]:
        """The callbacks of trial number `trial`'s fit.

        `keras.callbacks.TensorBoard` (``log_dir=trial_dir(trial)``, no graph, no profiling)
        for the per-epoch scalars, and the hparams callback
        (`tensorboard.plugins.hparams.api.KerasCallback`) recording `values` when the fit
        starts, with trial id ``"trial <trial>"``.

        Args:
            trial: the trial's number (from 1).
            values: the trial's hyperparameter values by name (names as in the space). `None`
                values and KerasTuner's ``tuner/*`` bookkeeping are left out (pass only the
                active ones); values that are not bool, int, float or str are recorded as
                their `str`.

        Returns:
            The two callbacks, for one fit (the hparams callback is not reusable).

        Raises:
            ValueError: `trial` is not an int from 1.
        """
        import tensorflow as tf

        run = self.trial_dir(trial)
        hparams = {
            str(name): _plain(value)
            for name, value in values.items()
            if value is not None and not str(name).startswith(_BOOKKEEPING)
        }
        scalars = keras.callbacks.TensorBoard(log_dir=str(run), write_graph=False, profile_batch=0)
        writer = tf.summary.create_file_writer(str(run))
        return [scalars, _session_start(hparams, f"trial {trial}", writer)]

    def write_objective(self, trial: int, value: float | None, *, status: str) -> None:
        """Records trial number `trial`'s outcome in its run.

        The scalar ``"objective"`` (step 0) when `value` is finite; nothing of it otherwise
        (a failed trial). When the trial's session started (its run folder exists), its end
        is written too: success for status ``"COMPLETED"``, failure for ``"FAILED"`` or
        ``"INVALID"``, unknown for any other.

        Args:
            trial: the trial's number (from 1).
            value: the trial's objective, or `None`.
            status: the trial's status (``"COMPLETED"``, ``"FAILED"``…).

        Raises:
            ValueError: `trial` is not an int from 1, or `status` is not a str.
        """
        if not isinstance(status, str):
            raise ValueError(
                "Received an invalid value for argument status, expected a trial status "
                f'(a str such as "COMPLETED"). Received: status={status!r}'
            )
        run = self.trial_dir(trial)
        score = None
        if value is not None and not isinstance(value, bool):
            try:
                score = float(value)
            except (TypeError, ValueError):
                score = None
        finite = score is not None and math.isfinite(score)
        if not finite and not run.is_dir():
            return
        import tensorflow as tf
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import summary as hparams_summary

        end = {
            "COMPLETED": api_pb2.STATUS_SUCCESS,
            "FAILED": api_pb2.STATUS_FAILURE,
            "INVALID": api_pb2.STATUS_FAILURE,
        }.get(status.upper(), api_pb2.STATUS_UNKNOWN)
        writer = tf.summary.create_file_writer(str(run))
        with writer.as_default():
            if finite:
                tf.summary.scalar("objective", score, step=0)
            session_end = hparams_summary.session_end_pb(end).SerializeToString()
            tf.summary.experimental.write_raw_pb(session_end, step=0)
        writer.close()
