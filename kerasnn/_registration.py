"""Registers kerasnn's Keras serializables as soon as Keras is there, without importing it.

`keras.saving.load_model` finds custom classes only once the module that defines them has run
its `keras.saving.register_keras_serializable` decorator. After ``import kerasnn`` every file
kerasnn writes must open with plain Keras, so the modules holding kerasnn's layers, constraints,
schedules and optimizer loaders are imported:

- at once, if Keras is already imported;
- otherwise right after Keras is first imported (a one-shot import hook), so that
  ``import kerasnn`` itself stays cheap: the command line checks a recipe before TensorFlow
  starts.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

# The modules whose import registers every custom object kerasnn can write into a file.
SERIALIZABLE_MODULES = ("kerasnn.layers", "kerasnn.schedules", "kerasnn.optimizers.fused")


def register() -> None:
    """Imports the modules that register kerasnn's custom Keras objects (idempotent)."""
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Finds ``keras`` through the other finders and runs `register` once it has executed."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # one shot: the real finders answer from now on
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            exec_module(module)
            register()

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def register_when_keras_loads() -> None:
    """`register` now if Keras is imported, else right after its first import."""
    if "keras" in sys.modules:
        register()
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())
