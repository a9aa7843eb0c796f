"""Running a recipe: names become objects once, the model is built, trained and written out.

`build_model` is the one place where a checked recipe's names become Keras objects (the builder,
the activation and initializer inside it, the optimizer, the loss and metrics); `kerasnn.fit`
then builds the callbacks and the learning-rate schedule once, from the recipe's ``fit``
section. `run` writes the run folder (``recipe.yaml`` with every default filled in,
``history.csv``, ``metrics.json``, ``model.keras``, ``history.png``) and the verified export of
the recipe's ``export`` block.

This module takes a `kerasnn.recipe.Recipe` but does not import its module: the recipe's
methods (`Recipe.build`, `Recipe.run`...) call in here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import keras
import yaml

import kerasnn.recipe.keys as keys
from kerasnn import datasets, devices, models, runs, training
from kerasnn.diagnostics import sanity_check
from kerasnn.export import dataset_preprocessing
from kerasnn.export import export as export_model
from kerasnn.recipe.lsuv_options import lsuv_from_recipe

__all__ = ["RunResult", "build", "build_model", "check_resume", "export_trained", "run_recipe"]


class Recipe(Protocol):
    """What this module reads of a `kerasnn.recipe.Recipe` (it does not import the spec)."""

    name: str
    seed: int
    data: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    loss: Any
    metrics: list[Any] | None
    fit: dict[str, Any]
    export: dict[str, Any] | None

    def resolved(self) -> Recipe: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclasses.dataclass
class RunResult:
    """What `Recipe.run` returns: the fit result, the run folder and the recipe that ran."""

    fit: Any  # kerasnn.training.FitResult; None when a sanity check failed before training
    run_dir: Path
    recipe: Recipe
    export: Any = None  # kerasnn.export.ExportResult when the recipe has an export block
    sanity: Any = None  # kerasnn.diagnostics.SanityReport when run with sanity=True

    def summary(self) -> str:
        if self.fit is None:
            return f"{self.recipe.name}: sanity check failed, not trained -> {self.run_dir}"
        first, *notes = self.fit.summary().split("\n")
        line = f"{self.recipe.name}: {first} -> {self.run_dir}"
        if self.export is not None:
            line += f" ({self.export.format} export verified, max abs diff "
            line += f"{self.export.max_abs_diff:.1e})"
        return "\n".join([line, *notes])


def _keras_object(section: str, value: Any) -> Any:
    """A Keras-serialized loss/metric/optimizer -> the object; names are left to Keras."""
    if not keys.is_keras_config(value):
        return value
    module = {"loss": keras.losses, "metrics": keras.metrics, "optimizer": keras.optimizers}
    return module[section].deserialize(copy.deepcopy(dict(value)))


def build_model(recipe: Recipe, data: Any) -> keras.Model:
    """Builds and compiles `recipe`'s model for a loaded `Dataset` (no seeding).

    Args:
        recipe: a checked `kerasnn.recipe.Recipe`.
        data: the `kerasnn.datasets.Dataset` it trains on.

    Returns:
        The compiled `keras.Model` (LSUV-initialised when the recipe's ``model.lsuv`` says so).

    Raises:
        ValueError: a name or value only Keras can judge (an activation, an initializer, a loss,
            an optimizer argument's value), before any training.
    """
    spec = recipe.model
    builder_args = {k: copy.deepcopy(v) for k, v in spec.items() if k not in keys.MODEL_EXTRA_KEYS}
    model = models.get(spec.get("builder", "mlp"))(data, **builder_args)
    lsuv_from_recipe(model, data.x_train, spec.get("lsuv"), seed=recipe.seed)
    if keys.is_keras_config(recipe.optimizer):
        optimizer, options = _keras_object("optimizer", recipe.optimizer), {}
    else:
        optimizer = recipe.optimizer["name"]
        options = {k: copy.deepcopy(v) for k, v in recipe.optimizer.items() if k != "name"}
    metrics = recipe.metrics
    if metrics is not None:
        metrics = [_keras_object("metrics", m) for m in metrics]
    training.compile(
        model,
        optimizer,
        loss=_keras_object("loss", recipe.loss),
        metrics=metrics,
        **options,
    )
    return model


def build(recipe: Recipe, strategy: Any = None) -> tuple[Any, keras.Model]:
    """Loads `recipe`'s data and builds and compiles its model: ``(dataset, model)``.

    Args:
        recipe: a checked `kerasnn.recipe.Recipe`.
        strategy: a `tf.distribute.Strategy` or a `kerasnn.devices.strategy` name; the model
            is built and compiled in its scope. Defaults to `None` (TensorFlow's default
            placement).
    """
    data = datasets.load(**({"seed": recipe.seed} | recipe.data))
    scope = contextlib.nullcontext()
    if strategy is not None:
        scope = devices.strategy(strategy).scope()
    with scope:
        keras.utils.set_random_seed(recipe.seed)
        model = build_model(recipe, data)
    return data, model


def run_recipe(
    recipe: Recipe,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int | str = "auto",
    strategy: Any = None,
    sanity: bool = False,
) -> RunResult:
    """Runs `recipe`: load, build, compile, fit, evaluate; writes the run folder.

    Args:
        recipe: a checked `kerasnn.recipe.Recipe`.
        out: run folder. Defaults to ``runs/<name>`` (or ``runs/<name>-2``… when taken).
        resume: continue an interrupted run of this recipe in `out`. Defaults to `False`.
        overwrite: replace a finished run in `out` once this one finishes.
            Defaults to `False`.
        verbose: Keras progress output. Defaults to ``"auto"``.
        strategy: a `tf.distribute.Strategy` or a `kerasnn.devices.strategy` name
            (``"auto"``, ``"mirrored"``, ``"multi_worker"``…) to build and train under;
            ``fit.batch_size`` is then the global batch. Defaults to `None`.
        sanity: first run `kerasnn.diagnostics.sanity_check` on the freshly built model
            (report and figure in the run folder: ``sanity.json``, ``sanity_overfit.png``);
            if a check fails, training does not start and `RunResult.fit` is `None`.
            Defaults to `False`.

    Returns:
        A `RunResult`; the folder holds `recipe.yaml` (with defaults filled in),
        `history.csv`, `metrics.json`, `model.keras` and `history.png`, plus the verified
        export when the recipe has an ``export`` block.
    """
    recipe = recipe.resolved()
    if out is None:
        out = runs.next_free(Path("runs") / recipe.name)
    if resume:
        check_resume(runs.RunFolder(out).file("recipe.yaml"), recipe)
    data, model = build(recipe, strategy)
    folder = runs.RunFolder(out, overwrite=overwrite, resume=resume).open()
    folder.write_yaml("recipe.yaml", recipe.to_dict())
    report = None
    if sanity:
        report = sanity_check(model, data, seed=recipe.seed, out_dir=folder.staging)
        if not report.passed:
            folder.finalize()
            return RunResult(fit=None, run_dir=folder.path, recipe=recipe, sanity=report)
    result = training.fit(
        model, data, seed=recipe.seed, run_dir=folder, verbose=verbose, **recipe.fit
    )
    exported = None
    if recipe.export is not None and result.stop_reason != "nan_loss":
        exported = export_trained(model, data, recipe.export, folder.file(recipe.export["path"]))
    folder.finalize()
    result.run_dir = folder.path
    if exported is not None:
        exported = dataclasses.replace(exported, path=folder.path / recipe.export["path"])
    return RunResult(fit=result, run_dir=folder.path, recipe=recipe, export=exported, sanity=report)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"fit": {"epochs": 3}}`` -> ``{"fit.epochs": 3}`` (lists and scalars are leaves)."""
    if not isinstance(value, Mapping) or (prefix and not value):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def check_resume(staged: Path, recipe: Recipe) -> None:
    """Refuses to resume an interrupted run with a recipe other than the one it started with.

    Args:
        staged: the interrupted run's ``recipe.yaml`` (in its staging folder).
        recipe: the resolved recipe asked to resume it.

    Raises:
        ValueError: the recipes differ; the message names every differing key, with both
            values. (A missing `staged` file is left to `kerasnn.runs.RunFolder`, which says
            there is nothing to resume.)
    """
    if not staged.is_file():
        return
    before = _flatten(yaml.safe_load(staged.read_text()) or {})
    now = _flatten(yaml.safe_load(yaml.safe_dump(recipe.to_dict(), sort_keys=False)))
    differing = [key for key in dict.fromkeys([*before, *now]) if before.get(key) != now.get(key)]
    if differing:
        changes = "; ".join(
            f"{key}: {before.get(key, '(absent)')!r} -> {now.get(key, '(absent)')!r}"
            for key in differing
        )
        raise ValueError(
            f"Received an invalid value for argument resume: the recipe differs from the one "
            f"the interrupted run started with ({staged}), in {len(differing)} key(s): "
            f"{changes}. Resume with the same recipe and --set options, or start a new run "
            "(without --resume, or with another --out)."
        )


def export_trained(model: keras.Model, data: Any, spec: Mapping[str, Any], target: Path) -> Any:
    """Exports a trained model as a recipe's ``export`` block asks, verified on raw test inputs.

    Args:
        model: the trained model.
        data: the `Dataset` it was trained on (its whole input transform is baked in when
            ``spec["standardize"]``, see `kerasnn.export.dataset_preprocessing`; its test
            inputs, as the source gives them, are the verification probe).
        spec: the recipe's export block (missing keys take `keys.EXPORT_DEFAULTS`).
        target: where the artifact goes; an earlier one there (a resumed run) is replaced.

    Returns:
        The `kerasnn.export.ExportResult`.
    """
    spec = keys.EXPORT_DEFAULTS | dict(spec)
    preprocessing, probe = dataset_preprocessing(data, standardize=spec["standardize"])
    return export_model(
        model,
        target,
        format=spec["format"],
        preprocessing=preprocessing,
        probe=probe,
        overwrite=Path(target).exists(),  # a resumed run may have exported before
    )
