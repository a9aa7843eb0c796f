"""The best configurations retrained, and averaged into one model (a deep ensemble).

Once the trials are done, `retrain_best` takes the k best completed trials — ranked by the
objective on the validation split, ties broken by the validation loss, never by the test split —
retrains each on train+validation for its best epoch count and evaluates it on the test split.
With ``retrain=False`` the members are the trials' own models instead (their best epoch's
weights, trained on the training split less its validation split or fold: all K fold models of
a cross-validated trial), so nothing is trained after the trials. `best.keras` is the best
model alone, or with several members `ensemble_model` of them (their outputs averaged);
`best.json` describes it. Both are written atomically.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from kerasnn import _atomic, _json, training
from kerasnn.tuning.progress import MemberEpochs, member_line
from kerasnn.tuning.results import COMPLETED, direction, load_json, trial_number

if TYPE_CHECKING:  # pragma: no cover
    import keras_tuner

    from kerasnn.datasets import Dataset

__all__ = ["ensemble_model", "ranked_trials", "retrain_best", "trial_arguments"]

#: ``describe(hyperparameters, fit_result)``: extra fields of a retrained member's record.
Describe = Callable[[Any, Any], Mapping[str, Any]]
#: ``on_best(model, best)``: called with best.keras's model and best.json's content (which it
#: may extend) before best.json is written.
OnBest = Callable[[keras.Model, dict[str, Any]], None]


def ensemble_model(
    members: list[keras.Model], *, task: str, loss: Any = None, metrics: Any = None
) -> keras.Model:
    """One model averaging the outputs of trained `members` (a deep ensemble).

    Each member becomes a nested model named ``member_1``, ``member_2``… of a functional model
    whose output is `keras.layers.Average` of theirs (the mean of the softmax/sigmoid
    probabilities, or of the regression outputs), so the ensemble saves, reloads and exports
    as one `.keras` file. It is frozen (``trainable = False``) and compiled with `task`'s
    default loss and metrics (or `loss` / `metrics`) so `kerasnn.evaluate` works on it.

    Args:
        members: trained functional `keras.Model`s with the same input and output shapes.
        task: ``"classification"``, ``"binary"`` or ``"regression"``.
        loss: the compiled loss. Defaults to the task's.
        metrics: the compiled metrics. Defaults to the task's.

    Returns:
        The compiled ensemble `keras.Model` (named ``ensemble``).

    Raises:
        ValueError: fewer than two members, or members whose input/output shapes differ.
    """
    if len(members) < 2:
        raise ValueError(
            "Received an invalid value for argument members, expected at least 2 models to "
            f"average. Received: {len(members)} model(s)"
        )
    shapes = {(tuple(m.input_shape), tuple(m.output_shape)) for m in members}
    if len(shapes) != 1:
        raise ValueError(
            "Received an invalid value for argument members, expected models with one input "
            f"and output shape. Received: (input, output) shapes {sorted(shapes)}"
        )
    inputs = keras.Input(members[0].input_shape[1:], name="inputs")
    outputs = [
        keras.Model(m.input, m.output, name=f"member_{i}")(inputs)
        for i, m in enumerate(members, start=1)
    ]
    model = keras.Model(inputs, keras.layers.Average(name="average")(outputs), name="ensemble")
    model.trainable = False  # frozen: its (unused) optimizer then has no slots to save
    return training.compile(model, "adam", loss=loss, metrics=metrics, task=task)


def trial_arguments(
    hypermodel: keras_tuner.HyperModel, hp: Any, base_fit: Mapping[str, Any]
) -> dict[str, Any]:
    """A trial's `kerasnn.fit` arguments: `base_fit` (every trial's), then the HyperModel's
    `fit_arguments(hp)` when it has one; the callbacks of both are kept (base first)."""
    arguments = dict(base_fit)
    if hasattr(hypermodel, "fit_arguments"):
        own = dict(hypermodel.fit_arguments(hp))
        callbacks = [*arguments.get("callbacks", ()), *(own.pop("callbacks", None) or ())]
        arguments |= own
        if callbacks:
            arguments["callbacks"] = callbacks
    return arguments


def _retrain(
    tuner: Any,
    hypermodel: keras_tuner.HyperModel,
    trial: Any,
    data: Dataset,
    *,
    seed: int,
    base_fit: Mapping[str, Any],
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, Any]:
    """Retrains a trial's configuration on train+validation for its best epoch count."""
    record = load_json(tuner.trial_file(trial.trial_id)) or {}
    best_epoch = record.get("best_epoch")  # counted from 1: the number of epochs to retrain
    epochs = int(best_epoch) if best_epoch else None
    hp = trial.hyperparameters
    keras.backend.clear_session()
    gc.collect()
    # The trial's seed, as in `_Tuner.run_trial`: the retrained model starts from its weights.
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hp)
    arguments = trial_arguments(hypermodel, hp, base_fit)
    if epochs is not None:
        arguments["epochs"] = epochs
    arguments |= {"validation_split": 0.0, "early_stopping": False}
    if callbacks:
        arguments["callbacks"] = [*arguments.get("callbacks", ()), *callbacks]
    result = training.fit(model, (data.x_train, data.y_train), seed=seed, verbose=0, **arguments)
    return model, result


def _trial_models(tuner: Any, trial: Any) -> list[keras.Model]:
    """A trial's own models, as its fits saved them: ``run/model.keras`` or each fold's."""
    folder = Path(tuner.get_trial_dir(trial.trial_id))
    paths = [folder / "run" / "model.keras"]
    if not paths[0].exists():
        paths = sorted(folder.glob("fold*/model.keras"), key=lambda p: int(p.parent.name[4:]))
    if not paths:
        raise FileNotFoundError(
            f"Trial {trial.trial_id} has no saved model in {folder} (run/model.keras or "
            "fold<i>/model.keras), so it cannot be an ensemble member without retraining."
        )
    return [keras.models.load_model(path) for path in paths]


def ranked_trials(tuner: Any, objective: str) -> list[Any]:
    """The completed trials, best first: by the objective, ties broken by the validation loss.

    Validation accuracy on a small validation split takes few distinct values (144 digits:
    steps of 0.7 %), so several trials often tie; the lower ``val_loss`` at their best epoch
    (recorded in each trial's file, `tuner.trial_file(trial_id)`) then ranks them. Remaining
    ties keep trial order.
    """
    done = [t for t in tuner.oracle.trials.values() if t.status == COMPLETED]
    done = [t for t in done if t.score is not None]
    sign = -1.0 if direction(objective) == "max" else 1.0

    def val_loss(trial: Any) -> float:
        if objective == "val_loss":
            return 0.0
        record = load_json(tuner.trial_file(trial.trial_id)) or {}
        loss = (record.get("best_metrics") or {}).get("val_loss")
        return float(loss) if loss is not None and math.isfinite(loss) else math.inf

    return sorted(done, key=lambda t: (sign * float(t.score), val_loss(t), int(t.trial_id)))


def _average(members: list[keras.Model], data: Dataset, metrics: Any) -> keras.Model:
    top = members[0]
    task = training.task_of(top) or data.task
    return ensemble_model(members, task=task, loss=top.loss, metrics=metrics)


def retrain_best(
    tuner: Any,
    hypermodel: keras_tuner.HyperModel,
    data: Dataset,
    out: Path,
    *,
    seed: int,
    objective: str,
    base_fit: Mapping[str, Any],
    ensemble: int = 1,
    metrics: Any = None,
    describe: Describe | None = None,
    on_best: OnBest | None = None,
    verbose: int = 0,
    retrain: bool = True,
) -> dict[str, Any] | None:
    """Retrains the `ensemble` best configurations and writes best.keras and best.json.

    Args:
        tuner: the search's tuner (its ``oracle.trials`` and ``trial_file(trial_id)``).
        hypermodel: the search's `keras_tuner.HyperModel` (``fit_arguments(hp)`` used when
            it has one).
        data: the `kerasnn.datasets.Dataset`: retrained on its train split, evaluated on its
            test split.
        out: the search folder.
        seed: the search seed (weights, shuffles).
        objective: the metric the trials are ranked by.
        base_fit: `kerasnn.fit` arguments of every trial.
        ensemble: how many of the best configurations are retrained (fewer when fewer trials
            completed); with more than one, best.keras is their `ensemble_model`.
            Defaults to 1.
        metrics: the ensemble's compiled metrics. Defaults to the task's.
        describe: extra fields for each member's record (`Describe`); the best's are also put
            at the top level of best.json, each member's in ``members`` with an ensemble.
            Defaults to none.
        on_best: called before best.json is written (`OnBest`), e.g. to export the model.
            Defaults to none.
        verbose: 1 prints one line per retrained member (`kerasnn.tuning.progress`), and
            in a terminal its epoch as it goes. Defaults to 0.
        retrain: `False` takes the trials' own saved models as the members (K of them for
            a K-fold trial; ``retrain_epochs`` is then `None`, and `describe` gets `None`
            for the fit result). Defaults to `True`.

    Returns:
        best.json's content, or `None` when no trial completed.
    """
    trials = ranked_trials(tuner, objective)[:ensemble]
    if not trials:
        return None
    members, records, extras = [], [], []
    for index, trial in enumerate(trials, start=1):
        if not retrain:
            start = time.perf_counter()
            models = _trial_models(tuner, trial)
            members.extend(models)
            model = models[0] if len(models) == 1 else _average(models, data, metrics)
            result = None
            epochs, seconds = None, time.perf_counter() - start
        else:
            live = []
            if verbose:
                record = load_json(tuner.trial_file(trial.trial_id)) or {}
                label = f"member {index}/{len(trials)} (trial {trial_number(trial.trial_id)})"
                live = [MemberEpochs(label, int(record.get("best_epoch") or 0))]
            model, result = _retrain(
                tuner, hypermodel, trial, data, seed=seed, base_fit=base_fit, callbacks=live
            )
            members.append(model)
            epochs, seconds = result.epochs, result.wall_time
        records.append(
            {
                "trial": trial_number(trial.trial_id),
                "trial_id": trial.trial_id,
                "score": float(trial.score),
                "hyperparameters": {
                    k: v
                    for k, v in trial.hyperparameters.values.items()
                    if not k.startswith("tuner/")
                },
                "retrain_epochs": epochs,
                "retrain_seconds": seconds,
                **({} if retrain else {"models": len(models)}),
                "test_metrics": training.evaluate(model, data),
            }
        )
        extras.append(dict(describe(trial.hyperparameters, result)) if describe else {})
        if verbose:
            print(member_line(index, len(trials), records[-1]), flush=True)
    if len(members) == 1:
        model = members[0]
        test_metrics = records[0]["test_metrics"]
    else:
        model = _average(members, data, metrics)
        test_metrics = training.evaluate(model, data)
    with _atomic.replacing(out / "best.keras", suffix=".keras") as tmp:
        model.save(tmp)
    first = records[0]
    best = {
        "trial": first["trial"],
        "trial_id": first["trial_id"],
        "objective": objective,
        "score": first["score"],
        "hyperparameters": first["hyperparameters"],
        "retrain_epochs": first["retrain_epochs"],
        "retrain_seconds": sum(r["retrain_seconds"] for r in records),
        "test_metrics": test_metrics,
        "ensemble": len(records),
        "retrained": retrain,
        "models": len(members),
        "members": records,
    }
    best |= extras[0]
    if len(records) > 1:
        for record, extra in zip(records, extras, strict=True):
            record |= extra
    if on_best is not None:
        on_best(model, best)
    _atomic.write_text(out / "best.json", _json.dumps(best) + "\n")
    return best
