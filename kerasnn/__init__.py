"""kerasnn: describe → compile → fit → evaluate on Keras 3 (TensorFlow backend).

The lectures' five-step recipe, one call per step::

    import kerasnn as knn
    data = knn.datasets.load("digits")
    model = knn.models.mlp(data, hidden=[256, 256])
    knn.compile(model, "adam", learning_rate=1e-3)
    result = knn.fit(model, data, epochs=60)
    print(knn.evaluate(model, data))

Importing kerasnn is cheap: TensorFlow, Keras, matplotlib and KerasTuner are imported the first
time a name that needs them is used. kerasnn's custom Keras objects (layers, constraints,
schedules, optimizer loaders) are registered as soon as Keras is imported, so after
``import kerasnn`` plain `keras.saving.load_model` opens every file kerasnn writes.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# Keras reads KERAS_BACKEND once, when it is first imported: choose TensorFlow unless the user did.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ INFO lines (CUDA probing, CPU feature notes) drown Keras's own progress output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from kerasnn._registration import register_when_keras_loads as _register_when_keras_loads

_register_when_keras_loads()

# Public name -> module that defines it. Modules are imported on first access (PEP 562).
_LAZY_ATTRS: dict[str, str] = {
    "compile": "kerasnn.training",
    "fit": "kerasnn.training",
    "evaluate": "kerasnn.training",
    "FitResult": "kerasnn.training",
    "Recipe": "kerasnn.recipe",
    "RunResult": "kerasnn.recipe",
    "Dataset": "kerasnn.datasets",
    "lr_find": "kerasnn.diagnostics",
    "lsuv": "kerasnn.initializers",
    "search": "kerasnn.recipe.hypermodel",
}
_LAZY_MODULES = (
    "activations",
    "augment",
    "callbacks",
    "compare",
    "datasets",
    "devices",
    "diagnostics",
    "export",
    "initializers",
    "layers",
    "models",
    "optimizers",
    "plots",
    "recipe",
    "runs",
    "schedules",
    "training",
    "tuning",
)

__all__ = [
    "Dataset",
    "FitResult",
    "Recipe",
    "RunResult",
    "__version__",
    "activations",
    "augment",
    "callbacks",
    "compare",
    "compile",
    "datasets",
    "devices",
    "diagnostics",
    "evaluate",
    "export",
    "fit",
    "initializers",
    "layers",
    "lr_find",
    "lsuv",
    "models",
    "optimizers",
    "plots",
    "recipe",
    "runs",
    "schedules",
    "search",
    "training",
    "tuning",
]

if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from kerasnn import (
        activations,
        callbacks,
        compare,
        datasets,
        devices,
        diagnostics,
        export,
        initializers,
        layers,
        models,
        optimizers,
        plots,
        recipe,
        runs,
        schedules,
        training,
        tuning,
    )
    from kerasnn.datasets import Dataset
    from kerasnn.diagnostics import lr_find
    from kerasnn.initializers import lsuv
    from kerasnn.recipe import Recipe, RunResult
    from kerasnn.recipe.hypermodel import search
    from kerasnn.training import FitResult, compile, evaluate, fit


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"kerasnn.{name}")
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    raise AttributeError(f"module 'kerasnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
