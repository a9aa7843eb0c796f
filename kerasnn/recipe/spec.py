"""Recipes: the five steps of the lectures as one YAML file.

```yaml
name: digits_mlp
seed: 0
data:       {name: digits, test_size: 0.2}              # kerasnn.datasets.load arguments
model:      {builder: mlp, hidden: [256, 256]}          # kerasnn.models.<builder> arguments
optimizer:  {name: adam, learning_rate: 0.001}          # or just `optimizer: adam`
loss: null                                              # null: the task's default
metrics: null
fit:        {epochs: 60, batch_size: 32}                # kerasnn.fit arguments
export:     {path: saved_model, format: saved_model}    # optional: kerasnn.export into the run
```

This module is the one place where recipe names become objects: every key is checked against
the signature of the function it feeds before anything is loaded or trained, and the recipe
that actually ran (defaults filled in) is written back to the run folder as `recipe.yaml`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kerasnn._validation import positive_int

SECTIONS = (
    "name",
    "description",
    "seed",
    "data",
    "model",
    "optimizer",
    "loss",
    "metrics",
    "fit",
    "export",
    "search",
)
REQUIRED = ("data", "model")
# fit() arguments a recipe may set (the rest come from the recipe itself or the command line).
_FIT_KEYS = (
    "epochs",
    "batch_size",
    "validation_split",
    "early_stopping",
    "shuffle",
    "steps_per_execution",
    "callbacks",
    "lr_schedule",
)
# The optional export block: the trained model is exported into the run folder.
EXPORT_DEFAULTS = {"path": "saved_model", "format": "saved_model", "standardize": True}


def _unknown_key_error(where: str, key: str, allowed: Iterable[str]) -> ValueError:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"Unknown recipe key {where}{key!r}.{hint} Allowed keys here: {', '.join(allowed)}."
    )


def _defaults(fn: Callable[..., Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Keyword parameters of `fn` with their defaults (parameters without one are left out)."""
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not p.empty:
            out[name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out


def _check_keys(where: str, section: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for key in section:
        if key not in allowed:
            raise _unknown_key_error(where, key, allowed)


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"Received an invalid value for recipe section {where!r}, expected a mapping of "
            f"keys to values. Received: {where}={value!r}"
        )
    return dict(value)


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
        line = f"{self.recipe.name}: {self.fit.summary()} -> {self.run_dir}"
        if self.export is not None:
            line += f" ({self.export.format} export verified, max abs diff "
            line += f"{self.export.max_abs_diff:.1e})"
        return line


@dataclasses.dataclass
class Recipe:
    """A training recipe: data, model, optimizer, loss/metrics, fit.

    Build one with `Recipe.from_yaml(path)` or `Recipe.from_dict(mapping)`; both validate
    every key against the function it feeds (`kerasnn.datasets.load`, the model builder,
    `kerasnn.optimizers.get`, `kerasnn.fit`) so a typo fails at once, before any training.

    Attributes:
        name: run name (default run folder ``runs/<name>``).
        data: arguments of `kerasnn.datasets.load` (``name`` required).
        model: ``builder`` (``mlp``, ``cnn`` or ``residual_mlp``; default ``mlp``), the
            builder's arguments, and optionally ``lsuv`` (``true`` or a mapping of
            `kerasnn.lsuv.RECIPE_DEFAULTS` options): LSUV-initialise the built model on the
            first training samples.
        optimizer: ``name`` and `kerasnn.optimizers.get` arguments (a bare string is a name).
        loss: a Keras loss name or config; `None` picks the task's default.
        metrics: Keras metric names; `None` picks the task's defaults.
        fit: `kerasnn.fit` arguments: epochs, batch_size, validation_split, early_stopping,
            shuffle, steps_per_execution, callbacks (names or ``{name: {argument: value}}``
            from `kerasnn.callbacks.names()`), lr_schedule (a name or
            ``{name: {argument: value}}`` from `kerasnn.schedules.names()`).
        seed: seeds data split, weights and training. Defaults to 0.
        description: free text.
        export: optional `kerasnn.export.export` of the trained model into the run folder:
            ``path`` (relative to the run folder, default ``saved_model``), ``format``
            (``saved_model`` or ``keras``) and ``standardize`` (bake the training split's
            standardization in so the artifact takes raw inputs; default true).
        search: the hyperparameter search block (``trials``, ``objective``, ``space``) read by
            `kerasnn.search` / ``kerasnn search``; `None` when absent.

    Example:

    >>> r = Recipe.from_dict({"data": {"name": "iris"}, "model": {"hidden": [8]}})
    >>> r.with_overrides(["fit.epochs=3", "optimizer.learning_rate=0.01"]).fit["epochs"]
    3
    """

    name: str
    data: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "adam"})
    loss: Any = None
    metrics: list[Any] | None = None
    fit: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    description: str | None = None
    export: dict[str, Any] | None = None
    search: dict[str, Any] | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, config: Mapping[str, Any], *, default_name: str = "run") -> Recipe:
        """Validates a recipe mapping and returns a `Recipe`.

        Raises:
            ValueError: an unknown key (with the allowed ones and a close match), a missing
                section, or a value of the wrong kind.
        """
        if not isinstance(config, Mapping):
            raise ValueError(
                "Received an invalid recipe, expected a mapping with sections "
                f"{', '.join(SECTIONS)}. Received: {type(config).__name__}"
            )
        _check_keys("", config, SECTIONS)
        for section in REQUIRED:
            if section not in config:
                raise ValueError(
                    f"The recipe has no {section!r} section; it needs at least "
                    f"{', '.join(REQUIRED)}."
                )
        optimizer = config.get("optimizer", "adam")
        if isinstance(optimizer, str):
            optimizer = {"name": optimizer}
        metrics = config.get("metrics")
        if metrics is not None and not isinstance(metrics, list):
            raise ValueError(
                "Received an invalid value for recipe key 'metrics', expected a list of metric "
                f"names or null. Received: metrics={metrics!r}"
            )
        seed = config.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(
                "Received an invalid value for recipe key 'seed', expected an integer >= 0. "
                f"Received: seed={seed!r}"
            )
        recipe = cls(
            name=str(config.get("name", default_name)),
            description=config.get("description"),
            seed=seed,
            data=_mapping("data", config["data"]),
            model=_mapping("model", config["model"]),
            optimizer=_mapping("optimizer", optimizer),
            loss=config.get("loss"),
            metrics=metrics,
            fit=_mapping("fit", config.get("fit")),
            export=_mapping("export", config["export"])
            if config.get("export") is not None
            else None,
            search=_mapping("search", config["search"]) if "search" in config else None,
        )
        recipe.validate()
        return recipe

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> Recipe:
        """Reads and validates a YAML recipe; the file's stem is the default name.

        Raises:
            FileNotFoundError: no such file.
            ValueError: malformed YAML (with the line and column) or an invalid recipe.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Recipe file not found: {path}")
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ValueError(f"Malformed YAML in recipe {path}{where}: {problem}") from err
        return cls.from_dict(config if config is not None else {}, default_name=path.stem)

    # -- validation -----------------------------------------------------------------------------
    def _builder(self) -> Callable[..., Any]:
        from kerasnn.models import BUILDERS

        name = self.model.get("builder", "mlp")
        if name not in BUILDERS:
            close = difflib.get_close_matches(str(name), BUILDERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                "Received an invalid value for recipe key model.builder, expected one of "
                f"{', '.join(sorted(BUILDERS))}.{hint} Received: builder={name!r}"
            )
        return BUILDERS[name]

    def validate(self) -> None:
        """Checks every key and the values that can be checked without loading anything."""
        from kerasnn import augment, datasets, lsuv, optimizers, training

        _check_keys("data.", self.data, _defaults(datasets.load) | {"name": None})
        if "name" not in self.data:
            raise ValueError(
                "The recipe's data section needs a name: one of "
                f"{', '.join(datasets.KNOWN)} or a path to a .npz/.csv file."
            )
        builder = self._builder()
        _check_keys(
            "model.", self.model, [*_defaults(builder, skip=("input_shape",)), "builder", "lsuv"]
        )
        lsuv.recipe_options(self.model.get("lsuv"))
        augment.resolve(self.model.get("augment"))
        _check_keys("fit.", self.fit, _FIT_KEYS)
        fit_defaults = _defaults(training.fit)
        for key in ("epochs", "batch_size"):
            positive_int(f"fit.{key}", self.fit.get(key, fit_defaults[key]))
        if "name" not in self.optimizer:
            raise ValueError(
                "The recipe's optimizer section needs a name: one of "
                f"{', '.join(optimizers.names())}."
            )
        options = {k: v for k, v in self.optimizer.items() if k != "name"}
        optimizers.get(self.optimizer["name"], **options)  # raises on unknown names/arguments
        self._validate_fit_objects()
        if self.export is not None:
            self._validate_export()
        if self.search is not None:
            from kerasnn.tuning.spaces import search_settings

            search_settings(self)

    def _validate_export(self) -> None:
        from kerasnn._validation import one_of
        from kerasnn.export import FORMATS

        _check_keys("export.", self.export, EXPORT_DEFAULTS)
        spec = EXPORT_DEFAULTS | self.export
        fmt = one_of("export.format", spec["format"], FORMATS)
        path = Path(str(spec["path"]))
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise ValueError(
                "Received an invalid value for recipe key export.path, expected a relative "
                "path inside the run folder (e.g. saved_model or model_raw.keras). Received: "
                f"path={spec['path']!r}"
            )
        if (fmt == "keras") != (path.suffix == ".keras"):
            raise ValueError(
                "Received an invalid value for recipe key export.path, expected a name ending "
                "in .keras exactly when export.format is keras. Received: "
                f"path={spec['path']!r}, format={fmt!r}"
            )
        if not isinstance(spec["standardize"], bool):
            raise ValueError(
                "Received an invalid value for recipe key export.standardize, expected true or "
                f"false. Received: standardize={spec['standardize']!r}"
            )

    def _validate_fit_objects(self) -> None:
        """Builds the fit section's callbacks and schedule once, so bad names/values fail now."""
        from kerasnn import callbacks, schedules

        specs = self.fit.get("callbacks") or []
        if not isinstance(specs, list):
            raise ValueError(
                "Received an invalid value for recipe key fit.callbacks, expected a list of "
                "callback names or {name: {argument: value}} mappings. "
                f"Received: callbacks={specs!r}"
            )
        for spec in specs:
            callbacks.get(spec)
        spec = self.fit.get("lr_schedule")
        if spec is not None:
            lr = self.optimizer.get("learning_rate") or 1e-3
            epochs = self.fit.get("epochs", 100)
            schedule = schedules.from_spec(
                spec, learning_rate=lr, steps_per_epoch=10**6, epochs=epochs
            )
            if isinstance(schedule, schedules.OneCycle) and schedule.cycle_momentum:
                from kerasnn import optimizers

                # SGD's momentum cannot be cycled: say so now, not when this run's fit starts.
                options = {k: v for k, v in self.optimizer.items() if k != "name"}
                schedules.momentum_attribute(optimizers.get(self.optimizer["name"], **options))

    # -- overrides and round trip ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain mapping, in section order (loadable by `from_dict`)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out |= {
            "seed": self.seed,
            "data": copy.deepcopy(self.data),
            "model": copy.deepcopy(self.model),
            "optimizer": copy.deepcopy(self.optimizer),
            "loss": copy.deepcopy(self.loss),
            "metrics": copy.deepcopy(self.metrics),
            "fit": copy.deepcopy(self.fit),
        }
        if self.export is not None:
            out["export"] = copy.deepcopy(self.export)
        if self.search is not None:
            out["search"] = copy.deepcopy(self.search)
        return out

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """The recipe as YAML text, also written to `path` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def resolved(self) -> Recipe:
        """The recipe with every default made explicit: exactly what `run` executes."""
        from kerasnn import datasets, training

        config = self.to_dict()
        config["data"] = _defaults(datasets.load) | {"seed": self.seed} | self.data
        builder = self._builder()
        config["model"] = (
            {"builder": self.model.get("builder", "mlp")}
            | _defaults(builder, skip=("input_shape",))
            | self.model
        )
        fit_defaults = {k: v for k, v in _defaults(training.fit).items() if k in _FIT_KEYS}
        config["fit"] = fit_defaults | self.fit
        if self.export is not None:
            config["export"] = EXPORT_DEFAULTS | self.export
        return Recipe.from_dict(config)

    def with_overrides(self, assignments: Iterable[str]) -> Recipe:
        """Returns a copy with ``section.key=value`` assignments applied (values parsed as YAML).

        ``fit.epochs=5``, ``model.hidden=[128,64]``, ``optimizer=sgd``,
        ``optimizer.learning_rate=0.1``, ``seed=3``.

        Raises:
            ValueError: an assignment without ``=``, or a key the recipe does not allow.
        """
        config = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep or not key.strip():
                raise ValueError(
                    "Received an invalid override, expected the form section.key=value "
                    f"(e.g. fit.epochs=5). Received: {assignment!r}"
                )
            value = yaml.safe_load(raw) if raw.strip() else None
            parts = key.strip().split(".")
            node = config
            for depth, part in enumerate(parts[:-1]):
                if isinstance(node.get(part), str) and part == "optimizer":
                    node[part] = {"name": node[part]}
                if part not in node or node[part] is None:
                    if depth == 0 and part not in SECTIONS:
                        raise _unknown_key_error("", part, SECTIONS)
                    node[part] = {}
                if not isinstance(node[part], dict):
                    raise ValueError(
                        f"Received an invalid override {assignment!r}: "
                        f"{'.'.join(parts[: depth + 1])} is not a section."
                    )
                node = node[part]
            node[parts[-1]] = value
        return Recipe.from_dict(config, default_name=self.name)

    # -- running --------------------------------------------------------------------------------
    def build(self, strategy: Any = None) -> tuple[Any, Any]:
        """Loads the data and builds and compiles the model: ``(dataset, model)``.

        Args:
            strategy: a `tf.distribute.Strategy` or a `kerasnn.devices.strategy` name; the
                model is built and compiled in its scope. Defaults to `None` (TensorFlow's
                default placement).
        """
        import contextlib

        import keras

        from kerasnn import datasets

        data = datasets.load(**({"seed": self.seed} | self.data))
        scope = contextlib.nullcontext()
        if strategy is not None:
            from kerasnn import devices

            scope = devices.strategy(strategy).scope()
        with scope:
            keras.utils.set_random_seed(self.seed)
            model = self.build_model(data)
        return data, model

    def build_model(self, data: Any) -> Any:
        """Builds and compiles the recipe's model for a loaded `Dataset` (no seeding)."""
        from kerasnn import lsuv, training

        builder_args = {k: v for k, v in self.model.items() if k not in ("builder", "lsuv")}
        model = self._builder()(data, **builder_args)
        lsuv.lsuv_from_recipe(model, data.x_train, self.model.get("lsuv"), seed=self.seed)
        options = {k: v for k, v in self.optimizer.items() if k != "name"}
        training.compile(
            model, self.optimizer["name"], loss=self.loss, metrics=self.metrics, **options
        )
        return model

    def run(
        self,
        out: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        verbose: int | str = "auto",
        strategy: Any = None,
        sanity: bool = False,
    ) -> RunResult:
        """Runs the recipe: load, build, compile, fit, evaluate; writes the run folder.

        Args:
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
        from kerasnn import runs, training

        recipe = self.resolved()
        if out is None:
            out = runs.next_free(Path("runs") / recipe.name)
        if resume:
            check_resume(runs.RunFolder(out).file("recipe.yaml"), recipe)
        data, model = recipe.build(strategy)
        folder = runs.RunFolder(out, overwrite=overwrite, resume=resume).open()
        folder.write_yaml("recipe.yaml", recipe.to_dict())
        report = None
        if sanity:
            from kerasnn.diagnostics import sanity_check

            report = sanity_check(model, data, seed=recipe.seed, out_dir=folder.staging)
            if not report.passed:
                folder.finalize()
                return RunResult(fit=None, run_dir=folder.path, recipe=recipe, sanity=report)
        result = training.fit(
            model, data, seed=recipe.seed, run_dir=folder, verbose=verbose, **recipe.fit
        )
        exported = None
        if recipe.export is not None and result.stop_reason != "nan_loss":
            exported = export_trained(
                model, data, recipe.export, folder.file(recipe.export["path"])
            )
        folder.finalize()
        result.run_dir = folder.path
        if exported is not None:
            exported = dataclasses.replace(exported, path=folder.path / recipe.export["path"])
        return RunResult(
            fit=result, run_dir=folder.path, recipe=recipe, export=exported, sanity=report
        )


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


def export_trained(model: Any, data: Any, spec: Mapping[str, Any], target: Path) -> Any:
    """Exports a trained model as a recipe's ``export`` block asks, verified on raw test inputs.

    Args:
        model: the trained model.
        data: the `Dataset` it was trained on (its whole input transform is baked in when
            ``spec["standardize"]``, see `kerasnn.export.dataset_preprocessing`; its test
            inputs, as the source gives them, are the verification probe).
        spec: the recipe's export block (missing keys take `EXPORT_DEFAULTS`).
        target: where the artifact goes; an earlier one there (a resumed run) is replaced.

    Returns:
        The `kerasnn.export.ExportResult`.
    """
    from kerasnn import export

    spec = EXPORT_DEFAULTS | dict(spec)
    preprocessing, probe = export.dataset_preprocessing(data, standardize=spec["standardize"])
    return export.export(
        model,
        target,
        format=spec["format"],
        preprocessing=preprocessing,
        probe=probe,
        overwrite=Path(target).exists(),  # a resumed run may have exported before
    )
