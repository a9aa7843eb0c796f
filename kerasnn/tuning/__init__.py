"""Hyperparameter search on KerasTuner: declarative spaces, the seeded search engine, results.

Layout: `space` (`SearchSpace`: a YAML space's entries, ``when``/``by`` conditions and
declaration order, parsed without Keras), `ready` (the lectures' MLP/CNN spaces and the
``DEFAULT_*`` menus), `tuner` (the engine: `run_search` over any `keras_tuner.HyperModel`,
the seeded oracles, `trial_seed`), `results` (``results.csv/json/png``, `SearchResult`),
`ensemble` (the k best retrained; `ensemble_model`). This package knows nothing of recipes:
`kerasnn.search` (`kerasnn.recipe.hypermodel`) reads a recipe's ``search:`` block and calls
`run_search`.

Importing the package loads neither Keras nor KerasTuner: the engine's names (`run_search`,
`SearchSettings`, `trial_seed`, `ensemble_model`…) import them when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kerasnn.tuning.ready import DEFAULT_ACTIVATIONS as DEFAULT_ACTIVATIONS
from kerasnn.tuning.ready import DEFAULT_AUGMENT as DEFAULT_AUGMENT
from kerasnn.tuning.ready import DEFAULT_INITIALIZERS as DEFAULT_INITIALIZERS
from kerasnn.tuning.ready import DEFAULT_L2 as DEFAULT_L2
from kerasnn.tuning.ready import DEFAULT_LEARNING_RATES as DEFAULT_LEARNING_RATES
from kerasnn.tuning.ready import DEFAULT_OPTIMIZERS as DEFAULT_OPTIMIZERS
from kerasnn.tuning.ready import DEFAULT_SPACES as DEFAULT_SPACES
from kerasnn.tuning.ready import IMAGE_AUGMENT as IMAGE_AUGMENT
from kerasnn.tuning.ready import default_cnn_space as default_cnn_space
from kerasnn.tuning.ready import default_mlp_space as default_mlp_space
from kerasnn.tuning.results import SearchResult as SearchResult
from kerasnn.tuning.results import plot_results as plot_results
from kerasnn.tuning.results import read_trials as read_trials
from kerasnn.tuning.results import write_results as write_results
from kerasnn.tuning.space import Entry as Entry
from kerasnn.tuning.space import SearchSpace as SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from kerasnn.tuning.ensemble import ensemble_model
    from kerasnn.tuning.tuner import (
        SearchSettings,
        check_objective,
        default_objective,
        run_search,
        trial_seed,
    )

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "DEFAULT_AUGMENT",
    "DEFAULT_INITIALIZERS",
    "DEFAULT_L2",
    "DEFAULT_LEARNING_RATES",
    "DEFAULT_OPTIMIZERS",
    "DEFAULT_SPACES",
    "IMAGE_AUGMENT",
    "Entry",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "check_objective",
    "default_cnn_space",
    "default_mlp_space",
    "default_objective",
    "ensemble_model",
    "plot_results",
    "read_trials",
    "run_search",
    "trial_seed",
    "write_results",
]

# The engine imports Keras and KerasTuner: its names load on first access (PEP 562).
_ENGINE = {
    "SearchSettings": "kerasnn.tuning.tuner",
    "check_objective": "kerasnn.tuning.tuner",
    "default_objective": "kerasnn.tuning.tuner",
    "run_search": "kerasnn.tuning.tuner",
    "trial_seed": "kerasnn.tuning.tuner",
    "ensemble_model": "kerasnn.tuning.ensemble",
}


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        return getattr(importlib.import_module(_ENGINE[name]), name)
    raise AttributeError(f"module 'kerasnn.tuning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
