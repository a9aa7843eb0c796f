"""What the search tests share: a tiny iris recipe with a search block, and one seed-0 search.

The seed-0 search runs once per test process (`seed0_search`) and is read by the tuner and
results tests; it prints KerasTuner's per-trial display, kept for the numbering test.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import kerasnn as knn
from kerasnn.recipe.hypermodel import search

SPACE = {
    "model.depth": {"int": [1, 2]},
    "model.units": {"choice": [4, 8, 16]},
    "model.activation": {"choice": ["relu", "tanh", "elu"]},
    "optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
    "optimizer.momentum": {"uniform": [0.5, 0.95], "when": {"optimizer.name": ["momentum"]}},
    "optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]},
    "fit.batch_size": {"choice": [16, 32]},
}


def tiny_recipe(space: Any = SPACE, trials: int = 3, **fit: Any) -> knn.Recipe:
    """A 2-epoch iris MLP whose search block samples `space` over `trials` trials."""
    return knn.Recipe.from_dict(
        {
            "name": "tiny",
            "data": {"name": "iris"},
            "model": {"hidden": [8]},
            "fit": {"epochs": 2, **fit},
            "search": {"trials": trials, "space": space},
        }
    )


_SEED0: dict[str, Any] = {}


def seed0_search(tmp_path_factory: Any) -> tuple[Any, str]:
    """The 3-trial seed-0 search of `tiny_recipe()` and what it printed (``verbose=1``)."""
    if not _SEED0:
        out = tmp_path_factory.mktemp("search") / "seed0"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            result = search(tiny_recipe(), seed=0, directory=out, verbose=1)
        _SEED0.update(result=result, printed=printed.getvalue())
    return _SEED0["result"], _SEED0["printed"]
