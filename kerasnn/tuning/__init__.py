"""Hyperparameter search on KerasTuner: ready spaces, a declarative YAML space, `search`.

`kerasnn.search(recipe_or_hypermodel, ...)` runs a seeded random (or grid) search whose trials
go through `kerasnn.fit`, writes a results table and plot, retrains the best configuration (or
the k best, averaged by `ensemble_model`) and saves it as `best.keras`; it resumes after a kill
and runs distributed with KerasTuner's chief/worker oracle. See `kerasnn.tuning.search` and
`kerasnn.tuning.spaces`.
"""

from kerasnn.tuning.search import SearchResult as SearchResult
from kerasnn.tuning.search import ensemble_model as ensemble_model
from kerasnn.tuning.search import plot_results as plot_results
from kerasnn.tuning.search import read_trials as read_trials
from kerasnn.tuning.search import search as search
from kerasnn.tuning.search import write_results as write_results
from kerasnn.tuning.spaces import DEFAULT_ACTIVATIONS as DEFAULT_ACTIVATIONS
from kerasnn.tuning.spaces import DEFAULT_AUGMENT as DEFAULT_AUGMENT
from kerasnn.tuning.spaces import DEFAULT_L2 as DEFAULT_L2
from kerasnn.tuning.spaces import DEFAULT_LEARNING_RATES as DEFAULT_LEARNING_RATES
from kerasnn.tuning.spaces import IMAGE_AUGMENT as IMAGE_AUGMENT
from kerasnn.tuning.spaces import CNNHyperModel as CNNHyperModel
from kerasnn.tuning.spaces import MLPHyperModel as MLPHyperModel
from kerasnn.tuning.spaces import RecipeHyperModel as RecipeHyperModel
from kerasnn.tuning.spaces import SearchSpace as SearchSpace
from kerasnn.tuning.spaces import default_cnn_space as default_cnn_space
from kerasnn.tuning.spaces import default_mlp_space as default_mlp_space

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "DEFAULT_AUGMENT",
    "DEFAULT_L2",
    "DEFAULT_LEARNING_RATES",
    "IMAGE_AUGMENT",
    "CNNHyperModel",
    "MLPHyperModel",
    "RecipeHyperModel",
    "SearchResult",
    "SearchSpace",
    "default_cnn_space",
    "default_mlp_space",
    "ensemble_model",
    "plot_results",
    "read_trials",
    "search",
    "write_results",
]
