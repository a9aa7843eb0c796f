"""Models discarded in a loop (search trials, experiment variants) free their TF graphs."""

import gc

import keras
import numpy as np
import pytest
from tensorflow.python.framework import func_graph

import kerasnn as knn
from kerasnn import _graph_memory


@pytest.fixture(scope="module")
def iris():
    return knn.datasets.load("iris", seed=0)


def _graphs() -> int:
    gc.collect()
    return sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())


def _fit(data, epochs=2):
    model = knn.models.mlp(data, hidden=[8])
    knn.compile(model, "adam", learning_rate=1e-2)
    result = knn.fit(model, data, epochs=epochs, verbose=0, seed=0)
    return model, result


def test_release_frees_a_discarded_models_graphs(iris):
    keras.backend.clear_session()
    graphs, entries = _graphs(), _graph_memory.snapshot()
    assert entries is not None, "TensorFlow's gradient registry was not found"

    before = _graph_memory.snapshot()
    _fit(iris)
    keras.backend.clear_session()
    assert _graphs() > graphs  # the leak: the model is gone, its traced graphs are not
    removed = _graph_memory.release(before)
    assert removed > 0, "TF no longer registers custom gradients per fit: drop the workaround"
    assert _graphs() == graphs
    assert _graph_memory.snapshot() == entries


def test_release_keeps_older_entries_and_leaves_a_live_model_trainable(iris):
    _fit(iris)  # registered before the snapshot: kept
    kept = _graph_memory.snapshot()
    with _graph_memory.releasing():
        model, first = _fit(iris, epochs=3)
    assert _graph_memory.snapshot() == kept
    # The released model trains on. (kerasnn.fit traces its train step anew on each call: the
    # NaN guard's in-graph check is added for the call and taken out after it.)
    with _graph_memory.releasing():
        again = knn.fit(model, iris, epochs=3, verbose=0, seed=0)
    assert np.isfinite(again.history["loss"]).all()
    assert again.history["loss"][-1] < first.history["loss"][-1]
    assert _graph_memory.snapshot() == kept


def test_release_without_a_registry_does_nothing(monkeypatch, iris):
    assert _graph_memory.release(None) == 0
    before = _graph_memory.snapshot()
    _fit(iris)
    monkeypatch.setattr(_graph_memory, "_registry", lambda: None)
    assert _graph_memory.snapshot() is None
    assert _graph_memory.release(before) == 0
    monkeypatch.undo()
    assert _graph_memory.release(before) > 0


def _recipe(trials):
    return knn.Recipe.from_dict(
        {
            "name": "tiny",
            "data": {"name": "iris"},
            "model": {"hidden": [8]},
            "fit": {"epochs": 2},
            "search": {
                "trials": trials,
                "space": {"optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]}},
            },
        }
    )


def test_search_keeps_no_graph_of_its_trials(tmp_path):
    """Neither the trials' models nor the retrained best (saved as best.keras, then dropped)
    stay registered, whatever the number of trials."""
    left = []
    for trials in (1, 4):
        before = _graph_memory.snapshot()
        result = knn.search(_recipe(trials), seed=0, directory=tmp_path / str(trials))
        assert result.best is not None
        left.append(len(_graph_memory.snapshot() - before))
    assert left == [0, 0]


def test_compare_keeps_no_graph_of_its_variants(tmp_path):
    from kerasnn.compare import Experiment

    base = {
        "name": "tiny",
        "data": {"name": "iris"},
        "model": {"hidden": [8]},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "fit": {"epochs": 2},
    }
    left = []
    for n in (1, 3):
        variants = {f"lr{i}": {"optimizer.learning_rate": 0.01 * (i + 1)} for i in range(n)}
        experiment = Experiment.from_dict({"name": "tiny", "base": base, "variants": variants})
        before = _graph_memory.snapshot()
        experiment.run(tmp_path / str(n), log=None)
        left.append(len(_graph_memory.snapshot() - before))
    assert left == [0, 0]
