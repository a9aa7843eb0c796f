"""An interrupted trial continues from its last completed epoch, and ends as if never stopped.

The trials train a dropout MLP with `steps_per_execution=1`; an interrupt in the middle of the
second trial's fourth epoch stands for a kill (a `KeyboardInterrupt` is no trial failure: it
ends the search). The resumed search's table, best metrics and the interrupted trial's model
equal those of a search that ran through.
"""

import csv
import json

import keras
import numpy as np
import pytest

import kerasnn as knn
from kerasnn.recipe.hypermodel import search

SPACE = {
    "model.depth": {"int": [1, 1]},
    "model.units": {"choice": [8, 16]},
    "optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]},
    "model.dropout": {"uniform": [0.1, 0.4]},
}


def _recipe(cv=None):
    config = {
        "name": "resume",
        "data": {"name": "iris"},
        "model": {"hidden": [8], "dropout": 0.2},
        "optimizer": {"name": "adam"},
        "fit": {"epochs": 6, "batch_size": 16, "steps_per_execution": 1},
        "search": {"trials": 3, "space": SPACE, **({"cv": cv} if cv else {})},
    }
    return knn.Recipe.from_dict(config)


class _Interrupt(keras.callbacks.Callback):
    """Raises `KeyboardInterrupt` in the middle of the `at`-th epoch of the `trial`-th fit."""

    def __init__(self, trial, at):
        super().__init__()
        self.fits, self.trial, self.at = 0, trial, at
        self.fired = False

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_train_batch_end(self, batch, logs=None):
        if self.fits == self.trial and not self.fired and self._epoch == self.at and batch == 2:
            self.fired = True
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1


def _table(out):
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _weights(path):
    return [np.array(w) for w in keras.models.load_model(path).get_weights()]


@pytest.mark.parametrize("cv", [None, 2])
def test_interrupted_trial_resumes_from_its_last_epoch(tmp_path, cv):
    whole = search(_recipe(cv), directory=tmp_path / "whole")
    stop = _Interrupt(trial=2 if cv is None else 3, at=4)  # cv: the second trial's fold 1
    with pytest.raises(KeyboardInterrupt):
        search(_recipe(cv), directory=tmp_path / "cut", fit={"callbacks": [stop]})
    assert stop.fired
    cut = tmp_path / "cut"
    staged = cut / "tuner" / "trial_1" / ("run.partial" if cv is None else "fold1.partial")
    assert (staged / "backup").exists()
    assert len((staged / "history.csv").read_text().splitlines()) == 1 + 3  # 3 epochs done

    resumed = search(_recipe(cv), directory=cut, resume=True)
    record = json.loads((cut / "tuner" / "trial_1" / "kerasnn.json").read_text())
    assert record["resumed_epochs"] == 3  # epochs 4-6 trained after the resume, not 1-6
    assert _table(cut) == _table(tmp_path / "whole")
    assert resumed.best["score"] == whole.best["score"]
    assert resumed.best["test_metrics"] == whole.best["test_metrics"]
    fit = "run" if cv is None else "fold1"
    for a, b in zip(
        _weights(cut / "tuner" / "trial_1" / fit / "model.keras"),
        _weights(tmp_path / "whole" / "tuner" / "trial_1" / fit / "model.keras"),
        strict=True,
    ):
        assert np.array_equal(a, b)  # bit for bit, dropout and all
