"""Exporting what a recipe trained: a finished run folder (``kerasnn export RUN_DIR PATH``) or
the model a run has just trained (a recipe's ``export`` block).

The recipe knows the data the model was trained on, hence the loader's input transform fitted
on its training split: it is baked into the artifact (`kerasnn.export.dataset_preprocessing`),
so the artifact takes the values the data source gives, and the test inputs, as the source
gives them, are the verification probe. `kerasnn.export` itself never sees a recipe.
"""

from __future__ import annotations

import os
from pathlib import Path

from kerasnn import datasets
from kerasnn.export import (
    ExportResult,
    check_export_target,
    dataset_preprocessing,
    export,
    export_file,
    load,
)
from kerasnn.recipe.spec import Recipe

__all__ = ["export_run_folder", "export_source"]


def export_run_folder(
    run_dir: str | os.PathLike,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
    standardize: bool = True,
    safe_mode: bool = True,
) -> ExportResult:
    """Exports a finished run folder's model (``model.keras`` + ``recipe.yaml``).

    The recipe's data is reloaded to get the loader's input transform fitted on its training
    split, which is baked in (unless `standardize` is off, see
    `kerasnn.export.dataset_preprocessing`), and the test inputs, as the source gives them,
    are the verification probe. A folder without ``recipe.yaml`` exports its model as is.

    Args:
        run_dir: a run folder written by `kerasnn train` / `Recipe.run`.
        path: the artifact to write.
        format: ``"saved_model"`` or ``"keras"``. Defaults to ``"keras"`` when `path` ends in
            ``.keras``, else ``"saved_model"``.
        overwrite: replace an existing artifact. Defaults to `False`.
        standardize: bake the run's input transform in (the artifact takes the source's
            values); `False`: the artifact takes the loader's transformed inputs, like the
            model in the run folder. Defaults to `True`.
        safe_mode: load the run's ``model.keras`` with Keras's safe mode. Defaults to `True`.

    Returns:
        The `kerasnn.export.ExportResult`.

    Raises:
        FileNotFoundError: `run_dir` has no ``model.keras``.
        ValueError, FileExistsError, PermissionError, ExportVerificationError: as
            `kerasnn.export.export`.
    """
    format = check_export_target(path, format=format, overwrite=overwrite)
    run_dir = Path(run_dir)
    model_file = run_dir / "model.keras"
    if not model_file.is_file():
        raise FileNotFoundError(
            f"No model.keras in {run_dir}: expected a finished run folder (kerasnn train) "
            "or a .keras file."
        )
    model = load(model_file, safe_mode=safe_mode).model
    preprocessing = probe = None
    recipe_file = run_dir / "recipe.yaml"
    if recipe_file.is_file():
        recipe = Recipe.from_yaml(recipe_file)
        data = datasets.load(**({"seed": recipe.seed} | recipe.data))
        preprocessing, probe = dataset_preprocessing(data, standardize=standardize)
    return export(
        model, path, format=format, preprocessing=preprocessing, overwrite=overwrite, probe=probe
    )


def export_source(
    source: str | os.PathLike,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    overwrite: bool = False,
    standardize: bool = True,
    safe_mode: bool = True,
) -> ExportResult:
    """Exports a run folder's model, or a ``.keras`` file (what ``kerasnn export`` runs).

    A folder goes to `export_run_folder` (its recipe's input transform baked in), a file to
    `kerasnn.export.export_file` (nothing baked in; `standardize` does not apply).

    Args:
        source: a run folder written by `kerasnn train` / `Recipe.run`, or a ``.keras`` file.
        path: the artifact to write.
        format: ``"saved_model"`` or ``"keras"``. Defaults to ``"keras"`` when `path` ends in
            ``.keras``, else ``"saved_model"``.
        overwrite: replace an existing artifact. Defaults to `False`.
        standardize: bake the run's input transform in (the artifact takes the source's
            values); `False`: the artifact takes the loader's transformed inputs, like the
            model in the run folder. Defaults to `True`.
        safe_mode: load the source ``.keras`` with Keras's safe mode. Defaults to `True`.

    Returns:
        The `kerasnn.export.ExportResult`.

    Raises:
        FileNotFoundError: `source` is neither a run folder nor a ``.keras`` file.
        ValueError, FileExistsError, PermissionError, ExportVerificationError: as
            `kerasnn.export.export`.
    """
    format = check_export_target(path, format=format, overwrite=overwrite)  # before loading
    source = Path(source)
    options = {"format": format, "overwrite": overwrite, "safe_mode": safe_mode}
    if source.is_dir():
        return export_run_folder(source, path, standardize=standardize, **options)
    if source.is_file():
        return export_file(source, path, **options)
    raise FileNotFoundError(
        f"Nothing at {source}: expected a run folder (kerasnn train) or a .keras file."
    )
