"""The recipe as data: parsing, ``--set`` overrides, the one check, the round trip to YAML.

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

Every key, and every name kerasnn itself defines (builders, optimizers, schedules, callbacks,
augmentation presets, export formats, datasets), is checked here against the tables of
`kerasnn.recipe.keys` without importing TensorFlow: a typo is refused at once. The names only
Keras knows (activations, initializers, losses, metrics, an optimizer's numbers) become objects
once, when `kerasnn.recipe.run` builds the model, before any training. This module never imports
Keras.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

import kerasnn.recipe.keys as keys
from kerasnn import datasets
from kerasnn._validation import (
    fraction,
    invalid,
    one_of,
    positive_int,
    strict_bool,
    unknown_key,
)
from kerasnn.recipe.lsuv_options import recipe_options
from kerasnn.recipe.search_block import check_search_block

__all__ = ["Recipe", "parse_value"]


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"Received an invalid value for recipe section {where!r}, expected a mapping of "
            f"keys to values. Received: {where}={value!r}"
        )
    return dict(value)


def _check_keys(where: str, section: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for key in section:
        if key not in allowed:
            raise unknown_key(where, key, allowed)


def _plain(value: Any) -> Any:
    """`value` as plain YAML data: mappings -> dict, lists/tuples -> list (recursively).

    Keras wraps the containers it is handed in its own tracking types; a recipe keeps plain
    ones so that `to_yaml` can always write it.
    """
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _check_keras_config(where: str, value: Mapping[str, Any]) -> None:
    _check_keys(where, value, keys.KERAS_CONFIG_KEYS)
    if not isinstance(value["class_name"], str):
        raise invalid(f"{where}.class_name", "a Keras class name", value["class_name"])
    if not isinstance(value.get("config", {}), Mapping | None):
        raise invalid(f"{where}.config", "a mapping of the class's arguments", value["config"])


def _named_spec(where: str, spec: Any, tables: Mapping[str, Sequence[str]]) -> None:
    """Checks ``name`` or ``{name: {argument: value}}`` against `tables` (name -> arguments)."""
    if isinstance(spec, str):
        one_of(where, spec, tables)
        return
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise invalid(where, "a name or a one-entry mapping {name: {argument: value}}", spec)
    ((name, args),) = spec.items()
    one_of(where, name, tables)
    args = _mapping(f"{where}.{name}", args)
    _check_keys(f"{where}.{name}", args, tables[name])


def _check_booleans(where: str, section: Mapping[str, Any]) -> None:
    for key in keys.BOOLEAN_KEYS.get(where, ()):
        if key in section:
            strict_bool(f"{where}.{key}", section[key])


def parse_value(assignment: str, raw: str) -> Any:
    """The value of a ``key=value`` override, read as YAML (plain YAML only: no tags).

    Raises:
        ValueError: the value is not YAML, or uses a tag such as ``!!python/object``.
    """
    if not raw.strip():
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(
            f"Received an invalid override, expected section.key=VALUE with VALUE written in "
            f"YAML (e.g. 5, 0.1, [64, 32], adam, true); {problem}. Received: {assignment!r}"
        ) from None


@dataclasses.dataclass
class Recipe:
    """A training recipe: data, model, optimizer, loss/metrics, fit.

    Build one with `Recipe.from_yaml(path)` or `Recipe.from_dict(mapping)`; both check every key
    and every kerasnn name before anything is imported or loaded, so a typo fails at once.

    Attributes:
        name: run name (default run folder ``runs/<name>``).
        data: arguments of `kerasnn.datasets.load` (``name`` required).
        model: ``builder`` (``mlp``, ``cnn`` or ``residual_mlp``; default ``mlp``), the
            builder's arguments, and optionally ``lsuv`` (``true`` or a mapping of
            `kerasnn.recipe.lsuv_options.RECIPE_DEFAULTS` options): LSUV-initialise the built
            model on the first training samples.
        optimizer: ``name`` and `kerasnn.optimizers.get` arguments (a bare string is a name),
            or a Keras-serialized optimizer (``{class_name: Adam, config: {...}}``).
        loss: a Keras loss name or Keras-serialized loss; `None` picks the task's default.
        metrics: Keras metric names or Keras-serialized metrics; `None`: the task's defaults.
        fit: `kerasnn.fit` arguments: epochs, batch_size, validation_split, early_stopping,
            shuffle, steps_per_execution, callbacks (names or ``{name: {argument: value}}``
            from `kerasnn.callbacks.names()`), lr_schedule (a name or
            ``{name: {argument: value}}`` from `kerasnn.schedules.names()`).
        seed: seeds data split, weights and training. Defaults to 0.
        description: free text.
        export: optional export of the trained model into the run folder: ``path`` (relative
            to the run folder, default ``saved_model``), ``format`` (``saved_model`` or
            ``keras``) and ``standardize`` (bake the loader's input transform in so the
            artifact takes raw inputs; default true).
        search: the hyperparameter search block (``trials``, ``objective``, ``space``...) read
            by `kerasnn.search` / ``kerasnn search``; `None` when absent.

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
    def from_dict(
        cls, config: Mapping[str, Any], *, default_name: str = "run", check: bool = True
    ) -> Recipe:
        """Returns the `Recipe` a mapping describes, checked.

        Args:
            config: the recipe's sections.
            default_name: the name when `config` has none. Defaults to ``"run"``.
            check: check every key and kerasnn name. `False` takes the mapping as it is, for
                callers that checked it already (a search writes sampled values into a checked
                recipe). Defaults to `True`.

        Raises:
            ValueError: an unknown key or name (with the allowed ones and a close match), a
                missing section, or a value of the wrong kind.
        """
        if not isinstance(config, Mapping):
            raise ValueError(
                "Received an invalid recipe, expected a mapping with sections "
                f"{', '.join(keys.SECTIONS)}. Received: {type(config).__name__}"
            )
        if check:
            _check_keys("", config, keys.SECTIONS)
            for section in keys.REQUIRED:
                if section not in config:
                    raise ValueError(
                        f"The recipe has no {section!r} section; it needs at least "
                        f"{', '.join(keys.REQUIRED)}."
                    )
        optimizer = config.get("optimizer", "adam")
        if isinstance(optimizer, str):
            optimizer = {"name": optimizer}
        recipe = cls(
            name=str(config.get("name", default_name)),
            description=config.get("description"),
            seed=config.get("seed", 0),
            data=_plain(_mapping("data", config.get("data"))),
            model=_plain(_mapping("model", config.get("model"))),
            optimizer=_plain(_mapping("optimizer", optimizer)),
            loss=_plain(config.get("loss")),
            metrics=_plain(config.get("metrics")),
            fit=_plain(_mapping("fit", config.get("fit"))),
            export=_plain(_mapping("export", config["export"]))
            if config.get("export") is not None
            else None,
            search=_plain(_mapping("search", config["search"])) if "search" in config else None,
        )
        if check:
            recipe.check()
        return recipe

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, *, overrides: Iterable[str] = ()) -> Recipe:
        """Reads a YAML recipe, applies `overrides` and checks the result once.

        Args:
            path: the recipe file; its stem is the default name.
            overrides: ``section.key=value`` assignments (see `with_overrides`).

        Raises:
            FileNotFoundError: no such file.
            ValueError: malformed YAML (with the line and column), a bad override or an
                invalid recipe.
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
        config = config if config is not None else {}
        if not isinstance(config, Mapping):
            raise ValueError(
                f"Received an invalid recipe in {path}, expected a mapping with sections "
                f"{', '.join(keys.SECTIONS)}. Received: {type(config).__name__}"
            )
        config = _apply_overrides(dict(config), overrides)
        return cls.from_dict(config, default_name=path.stem)

    # -- the check ------------------------------------------------------------------------------
    def check(self) -> None:
        """Checks every key, kerasnn name and plain value; imports nothing heavy.

        Raises:
            ValueError: the first problem found, naming the recipe key and what was received.
        """
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(
                "Received an invalid value for recipe key 'seed', expected an integer >= 0. "
                f"Received: seed={self.seed!r}"
            )
        self._check_data()
        self._check_model()
        self._check_optimizer()
        self._check_loss_and_metrics()
        self._check_fit()
        if self.export is not None:
            self._check_export()
        if self.search is not None:
            check_search_block(self, probe=lambda config: Recipe.from_dict(config))

    def _check_data(self) -> None:
        _check_keys("data", self.data, _parameters(datasets.load))
        if "name" not in self.data:
            raise ValueError(
                "The recipe's data section needs a name: one of "
                f"{', '.join(datasets.KNOWN)} or a path to a .npz/.csv file."
            )
        name = self.data["name"]
        if not isinstance(name, str) or not str(name).endswith((".npz", ".csv")):
            one_of("data.name", name, datasets.KNOWN)

    def _check_model(self) -> None:
        builder = one_of("model.builder", self.model.get("builder", "mlp"), keys.BUILDERS)
        _check_keys("model", self.model, [*keys.BUILDERS[builder], *keys.MODEL_EXTRA_KEYS])
        _check_booleans("model", self.model)
        recipe_options(self.model.get("lsuv"))
        augment = self.model.get("augment")
        if isinstance(augment, str):
            one_of("model.augment", augment, keys.AUGMENT_PRESETS)
        elif isinstance(augment, Mapping):
            _check_keys("model.augment", augment, keys.AUGMENT_KEYS)
        elif augment is not None:
            raise invalid(
                "model.augment",
                f"a preset ({', '.join(keys.AUGMENT_PRESETS)}) or a mapping of "
                f"{', '.join(keys.AUGMENT_KEYS)}",
                augment,
            )

    def _check_optimizer(self) -> None:
        if keys.is_keras_config(self.optimizer):
            _check_keras_config("optimizer", self.optimizer)
            return
        if "name" not in self.optimizer:
            raise ValueError(
                "The recipe's optimizer section needs a name: one of "
                f"{', '.join(keys.OPTIMIZERS)} (or a Keras-serialized optimizer: class_name "
                "and config)."
            )
        name = self.optimizer["name"]
        name = one_of(
            "optimizer.name", name.lower() if isinstance(name, str) else name, keys.OPTIMIZERS
        )
        allowed = ["name", *keys.OPTIMIZER_COMMON, *keys.OPTIMIZERS[name]]
        _check_keys("optimizer", self.optimizer, allowed)
        _check_booleans("optimizer", self.optimizer)

    def _check_loss_and_metrics(self) -> None:
        if keys.is_keras_config(self.loss):
            _check_keras_config("loss", self.loss)
        elif self.loss is not None and not isinstance(self.loss, str):
            raise invalid("loss", "a Keras loss name, a Keras-serialized loss or null", self.loss)
        if self.metrics is None:
            return
        if not isinstance(self.metrics, list):
            raise ValueError(
                "Received an invalid value for recipe key 'metrics', expected a list of metric "
                f"names or null. Received: metrics={self.metrics!r}"
            )
        for i, metric in enumerate(self.metrics):
            if keys.is_keras_config(metric):
                _check_keras_config(f"metrics[{i}]", metric)
            elif not isinstance(metric, str):
                raise invalid(
                    f"metrics[{i}]", "a Keras metric name or a Keras-serialized metric", metric
                )

    def _check_fit(self) -> None:
        fit = self.fit
        _check_keys("fit", fit, keys.FIT_KEYS)
        for key in ("epochs", "batch_size"):
            if key in fit:
                positive_int(f"fit.{key}", fit[key])
        _check_booleans("fit", fit)
        if "validation_split" in fit:
            fraction("fit.validation_split", fit["validation_split"], allow_zero=True)
        steps = fit.get("steps_per_execution", "auto")
        if steps != "auto":
            if steps is None or isinstance(steps, str):
                raise invalid("fit.steps_per_execution", "'auto' or a positive integer", steps)
            positive_int("fit.steps_per_execution", steps)
        stopping = fit.get("early_stopping")
        is_patience = isinstance(stopping, int) and not isinstance(stopping, bool)
        if (is_patience and stopping < 0) or not (
            is_patience or stopping is None or isinstance(stopping, bool | Mapping)
        ):
            raise invalid(
                "fit.early_stopping",
                "true, false, a patience (an integer >= 0) or a mapping of EarlyStopping arguments",
                stopping,
            )
        specs = fit.get("callbacks") or []
        if not isinstance(specs, list):
            raise ValueError(
                "Received an invalid value for recipe key fit.callbacks, expected a list of "
                "callback names or {name: {argument: value}} mappings. "
                f"Received: callbacks={specs!r}"
            )
        for i, spec in enumerate(specs):
            _named_spec(f"fit.callbacks[{i}]", spec, keys.CALLBACKS)
        if fit.get("lr_schedule") is not None:
            _named_spec("fit.lr_schedule", fit["lr_schedule"], keys.SCHEDULES)
            self._check_cycled_momentum(fit["lr_schedule"])

    def _check_cycled_momentum(self, schedule: Any) -> None:
        """One-cycle cycles the momentum (Adam's beta_1): refuse an optimizer without one."""
        name, args = (schedule, {}) if isinstance(schedule, str) else next(iter(schedule.items()))
        cycled = name == "one_cycle" and (args or {}).get("cycle_momentum", True) is not False
        optimizer = self.optimizer.get("name")
        named = not keys.is_keras_config(self.optimizer)
        if cycled and named and optimizer not in keys.CYCLED_MOMENTUM:
            raise ValueError(
                "Received an invalid value for argument optimizer, expected an Adam-family "
                f"optimizer ({', '.join(keys.CYCLED_MOMENTUM)}) to cycle the momentum of a "
                "one_cycle schedule (Keras 3 reads SGD's momentum as a Python constant). Pass "
                f"cycle_momentum=False. Received: optimizer={optimizer!r}"
            )

    def _check_export(self) -> None:
        _check_keys("export", self.export, keys.EXPORT_DEFAULTS)
        spec = keys.EXPORT_DEFAULTS | self.export
        fmt = one_of("export.format", spec["format"], keys.EXPORT_FORMATS)
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
        _check_booleans("export", spec)

    # -- overrides and round trip ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data, in section order (loadable by `from_dict`)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out |= {
            "seed": self.seed,
            "data": _plain(self.data),
            "model": _plain(self.model),
            "optimizer": _plain(self.optimizer),
            "loss": _plain(self.loss),
            "metrics": _plain(self.metrics),
            "fit": _plain(self.fit),
        }
        if self.export is not None:
            out["export"] = _plain(self.export)
        if self.search is not None:
            out["search"] = _plain(self.search)
        return out

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """The recipe as YAML text, also written to `path` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def resolved(self) -> Recipe:
        """The recipe with every default made explicit: exactly what `run` executes.

        Reads the defaults from the functions the sections feed (the builder, `kerasnn.fit`,
        `kerasnn.datasets.load`), so it imports Keras.
        """
        from kerasnn import models, training  # the builders' and fit's defaults: Keras, lazily

        config = self.to_dict()
        config["data"] = _defaults(datasets.load) | {"seed": self.seed} | self.data
        builder = self.model.get("builder", "mlp")
        config["model"] = (
            {"builder": builder}
            | _defaults(models.get(builder), skip=("input_shape",))
            | self.model
        )
        fit_defaults = {k: v for k, v in _defaults(training.fit).items() if k in keys.FIT_KEYS}
        config["fit"] = fit_defaults | self.fit
        if self.export is not None:
            config["export"] = keys.EXPORT_DEFAULTS | self.export
        return Recipe.from_dict(config, default_name=self.name, check=False)

    def with_overrides(self, assignments: Iterable[str]) -> Recipe:
        """Returns a copy with ``section.key=value`` assignments applied (values read as YAML).

        ``fit.epochs=5``, ``model.hidden=[128,64]``, ``optimizer=sgd``,
        ``optimizer.learning_rate=0.1``, ``seed=3``.

        Raises:
            ValueError: an assignment without ``=``, a value that is not YAML, or a key the
                recipe does not allow.
        """
        config = _apply_overrides(self.to_dict(), assignments)
        return Recipe.from_dict(config, default_name=self.name)

    # -- running (kerasnn.recipe.run; imported when first used: it loads TensorFlow) -----------
    def build(self, strategy: Any = None) -> tuple[Any, Any]:
        """Loads the data and builds and compiles the model: ``(dataset, model)``.

        See `kerasnn.recipe.run.build`.
        """
        import kerasnn.recipe.run as run_part  # TensorFlow: only when a model is built

        return run_part.build(self, strategy)

    def build_model(self, data: Any) -> Any:
        """Builds and compiles the recipe's model for a loaded `Dataset` (no seeding).

        See `kerasnn.recipe.run.build_model`.
        """
        import kerasnn.recipe.run as run_part  # TensorFlow: only when a model is built

        return run_part.build_model(self, data)

    def run(
        self,
        out: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        verbose: int | str = "auto",
        strategy: Any = None,
        sanity: bool = False,
    ) -> Any:
        """Runs the recipe: load, build, compile, fit, evaluate; writes the run folder.

        See `kerasnn.recipe.run.run_recipe` for the arguments; returns its `RunResult`.
        """
        import kerasnn.recipe.run as run_part  # TensorFlow: only when a model is trained

        return run_part.run_recipe(
            self,
            out,
            resume=resume,
            overwrite=overwrite,
            verbose=verbose,
            strategy=strategy,
            sanity=sanity,
        )


def _parameters(fn: Callable[..., Any], skip: Iterable[str] = ()) -> list[str]:
    """The keyword parameters of `fn` (``*args``/``**kwargs`` left out)."""
    return [
        name
        for name, p in inspect.signature(fn).parameters.items()
        if name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _defaults(fn: Callable[..., Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Keyword parameters of `fn` with their defaults (parameters without one are left out)."""
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not p.empty:
            out[name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out


def _apply_overrides(config: dict[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Writes ``section.key=value`` assignments into a recipe mapping (in place); returns it."""
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                "Received an invalid override, expected the form section.key=value "
                f"(e.g. fit.epochs=5). Received: {assignment!r}"
            )
        value = parse_value(assignment, raw)
        parts = key.strip().split(".")
        if parts[0] not in keys.SECTIONS:
            raise unknown_key("", parts[0], keys.SECTIONS)
        node = config
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node.get(part), str) and part == "optimizer":
                node[part] = {"name": node[part]}
            if part not in node or node[part] is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ValueError(
                    f"Received an invalid override {assignment!r}: "
                    f"{'.'.join(parts[: depth + 1])} is not a section."
                )
            node = node[part]
        node[parts[-1]] = value
    return config
