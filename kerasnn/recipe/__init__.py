"""Recipes: the five steps of the lectures as one YAML file.

Two parts. The spec (`kerasnn.recipe.spec`, `kerasnn.recipe.keys`): parsing, ``--set``
overrides and the one check of every key and kerasnn name, without importing TensorFlow. The
run (`kerasnn.recipe.run`): names become Keras objects once, the model is built, trained and
written to its run folder, and exported when the recipe asks. Beside them, the recipe's search
(`kerasnn.recipe.hypermodel`), lr-find (`kerasnn.recipe.lr_find`) and export of a finished run
(`kerasnn.recipe.export_run`).

``from kerasnn.recipe import Recipe`` stays light; the run part is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kerasnn.recipe.keys import EXPORT_DEFAULTS as EXPORT_DEFAULTS
from kerasnn.recipe.spec import Recipe as Recipe

if TYPE_CHECKING:  # pragma: no cover
    from kerasnn.recipe.hypermodel import CNNHyperModel, MLPHyperModel, RecipeHyperModel
    from kerasnn.recipe.run import RunResult, build, build_model, check_resume, export_trained

__all__ = [
    "EXPORT_DEFAULTS",
    "CNNHyperModel",
    "MLPHyperModel",
    "Recipe",
    "RecipeHyperModel",
    "RunResult",
    "build",
    "build_model",
    "check_resume",
    "export_trained",
]

# The run part imports TensorFlow, the hypermodels KerasTuner: their names load on first access
# (PEP 562), to keep the spec light.
_LAZY = {
    "RunResult": "kerasnn.recipe.run",
    "build": "kerasnn.recipe.run",
    "build_model": "kerasnn.recipe.run",
    "check_resume": "kerasnn.recipe.run",
    "export_trained": "kerasnn.recipe.run",
    "CNNHyperModel": "kerasnn.recipe.hypermodel",
    "MLPHyperModel": "kerasnn.recipe.hypermodel",
    "RecipeHyperModel": "kerasnn.recipe.hypermodel",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerasnn.recipe' has no attribute {name!r}")
