"""Experiments: several variants of a recipe run side by side, tabled and overlaid.

An experiment is a YAML file (``recipes/experiments/*.yaml``) with a base recipe and named
variants, each variant a set of ``--set``-style overrides:

```yaml
name: optimizers
description: SGD vs momentum vs Nesterov vs RMSprop vs Adam at their tuned rates.
base: ../digits_mlp.yaml          # a recipe file (relative to this file) or an inline recipe
overrides:                        # applied to every variant, after the variant's own
  fit.early_stopping: false
variants:                         # name -> overrides (dotted keys, as with --set)
  sgd:      {optimizer: {name: sgd, learning_rate: 0.1}}
  adam:     {optimizer.name: adam, optimizer.learning_rate: 0.001}
  cnn:      {recipe: ../digits_cnn.yaml}   # a variant may bring its own recipe instead of base
figures: [curves]                 # curves (default), decision_boundary, grid_heatmap,
                                  # grad_norms, init_stats, learning_rates
```

Instead of ``variants``, ``grid`` names axes whose levels combine (every combination is a
variant, named ``level1-level2``):

```yaml
grid:
  data:  {spirals: {data.name: spirals}, xor: {data.name: xor}}
  depth: {linear: {model.hidden: []}, two_hidden: {model.hidden: [64, 64]}}
```

Each variant's recipe is ``base`` (or its own ``recipe``) + its overrides (grid axes in order)
+ ``overrides`` + the command line's ``--set``, validated before anything trains. Running the
experiment writes one run folder per variant (``OUT/<variant>/``, as `kerasnn train` does),
``summary.csv`` / ``summary.json`` (final, best and test metrics, epochs, wall time per variant,
rewritten after each variant so a kill loses nothing finished), ``experiment.yaml`` (what ran,
self-contained) and the figures (``comparison.png``: train dashed, validation solid, one
colour per variant; ``decision_boundaries.png`` for 2-D data; ``grad_norms.png``: per-layer
gradient norms against depth, ``init_stats.png``: per-layer activation std of the freshly built
models, ``learning_rates.png``: the logged rates overlaid).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kerasnn import _graph_memory, _json
from kerasnn.recipe import Recipe, _unknown_key_error

__all__ = [
    "FIGURES",
    "Experiment",
    "ExperimentResult",
    "Variant",
    "VariantResult",
    "grad_norm_profiles",
    "init_statistics",
    "init_std_profiles",
]

EXPERIMENT_KEYS = ("name", "description", "base", "overrides", "variants", "grid", "figures")
_NAME = re.compile(r"^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*$")


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------
def _assignments(where: str, overrides: Any) -> list[str]:
    """Normalizes overrides (a mapping ``key: value`` or a list of ``key=value``) to strings.

    A mapping entry becomes exactly the ``--set key=value`` assignment whose YAML value reads
    back as the same object.
    """
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        out = []
        for key, value in overrides.items():
            text = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1)
            text = text.removesuffix("...\n").strip()  # a scalar document's end marker
            out.append(f"{key}={text}")
        return out
    if isinstance(overrides, list | tuple) and all(isinstance(a, str) for a in overrides):
        return list(overrides)
    raise ValueError(
        f"Received an invalid value for experiment key {where}, expected a mapping of "
        f"section.key: value or a list of 'section.key=value' strings. Received: "
        f"{where}={overrides!r}"
    )


def _check_name(where: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"Received an invalid value for {where}, expected a name made of letters, digits, "
            f"'_', '.', '+' and '-' (it names a folder). Received: {name!r}"
        )
    return name


# --------------------------------------------------------------------------------------------
# Experiment
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Variant:
    """One arm of an experiment: its name, its validated recipe and its grid levels."""

    name: str
    recipe: Recipe
    levels: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Experiment:
    """A set of variants that run the same way and are compared.

    Build one with `Experiment.from_yaml(path)`, `Experiment.from_dict(mapping)` or
    `Experiment.from_recipes([...])`; every variant's recipe is validated on construction.

    Attributes:
        name: experiment name (default output folder ``runs/<name>``).
        variants: the `Variant`s, in order.
        figures: figure names from `FIGURES` drawn after the runs.
        axes: for a grid, axis name -> its levels in order (else empty).
        description: free text.
        config: the experiment as a self-contained mapping (base recipe inlined, overrides
            included); written to ``experiment.yaml`` and loadable by `from_dict`.

    Example:

    >>> exp = Experiment.from_dict({
    ...     "base": {"data": {"name": "iris"}, "model": {"hidden": [8]}},
    ...     "variants": {"sgd": {"optimizer": "sgd"}, "adam": {"optimizer": "adam"}},
    ... }, default_name="opt")
    >>> [(v.name, v.recipe.optimizer["name"]) for v in exp.variants]
    [('sgd', 'sgd'), ('adam', 'adam')]
    """

    name: str
    variants: list[Variant]
    figures: list[str]
    axes: dict[str, list[str]]
    description: str | None
    config: dict[str, Any]

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> Experiment:
        """Reads an experiment file; ``base``/``recipe`` paths are relative to it.

        Raises:
            FileNotFoundError: no such file (or a missing base recipe).
            ValueError: malformed YAML or an invalid experiment or variant.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Experiment file not found: {path}")
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"Malformed YAML in experiment {path}: {err}") from err
        return cls.from_dict(config or {}, base_dir=path.parent, default_name=path.stem)

    @classmethod
    def from_recipes(
        cls, recipes: Sequence[str | os.PathLike | Recipe], *, name: str = "compare"
    ) -> Experiment:
        """An experiment whose variants are whole recipes, named after each recipe.

        Raises:
            ValueError: fewer than one recipe, or two recipes with the same name.
        """
        variants: dict[str, Any] = {}
        for item in recipes:
            recipe = item if isinstance(item, Recipe) else Recipe.from_yaml(item)
            if recipe.name in variants:
                raise ValueError(
                    f"Received two recipes named {recipe.name!r}; variant names must differ."
                )
            variants[recipe.name] = {"recipe": recipe.to_dict()}
        return cls.from_dict({"name": name, "variants": variants})

    @classmethod
    def from_dict(
        cls,
        config: Mapping[str, Any],
        *,
        base_dir: str | os.PathLike = ".",
        default_name: str = "experiment",
    ) -> Experiment:
        """Validates an experiment mapping and every variant's recipe.

        Raises:
            ValueError: an unknown key, neither or both of ``variants`` and ``grid``, a bad
                variant name, an unknown figure, or an invalid variant recipe (the message
                names the variant).
        """
        if not isinstance(config, Mapping):
            raise ValueError(
                "Received an invalid experiment, expected a mapping with keys "
                f"{', '.join(EXPERIMENT_KEYS)}. Received: {type(config).__name__}"
            )
        for key in config:
            if key not in EXPERIMENT_KEYS:
                raise _unknown_key_error("", key, EXPERIMENT_KEYS)
        base_dir = Path(base_dir)
        name = _check_name("experiment key 'name'", str(config.get("name", default_name)))
        figures = config.get("figures", ["curves"])
        if not isinstance(figures, list):
            figures = [figures]
        for figure in figures:
            if figure not in FIGURES:
                raise ValueError(
                    "Received an invalid value for experiment key figures, expected names "
                    f"from {', '.join(sorted(FIGURES))}. Received: figures={figures!r}"
                )
        if ("variants" in config) == ("grid" in config):
            raise ValueError(
                "An experiment needs exactly one of 'variants' (name -> overrides) and 'grid' "
                f"(axis -> level -> overrides). Received keys: {', '.join(map(str, config))}"
            )
        base = cls._load_recipe("base", config.get("base"), base_dir, name)
        common = _assignments("overrides", config.get("overrides"))

        axes: dict[str, list[str]] = {}
        if "variants" in config:
            arms = config["variants"]
            if not isinstance(arms, Mapping) or not arms:
                raise ValueError(
                    "Received an invalid value for experiment key variants, expected a "
                    f"non-empty mapping of name -> overrides. Received: variants={arms!r}"
                )
            plan = [(str(k), {}, [v]) for k, v in arms.items()]
        else:
            grid = config["grid"]
            if not isinstance(grid, Mapping) or not grid:
                raise ValueError(
                    "Received an invalid value for experiment key grid, expected a non-empty "
                    f"mapping of axis -> (level -> overrides). Received: grid={grid!r}"
                )
            for axis, levels in grid.items():
                if not isinstance(levels, Mapping) or not levels:
                    raise ValueError(
                        f"Received an invalid value for grid axis {axis!r}, expected a "
                        f"non-empty mapping of level -> overrides. Received: {levels!r}"
                    )
                axes[str(axis)] = [str(level) for level in levels]
            plan = []
            for combo in itertools.product(*(list(levels.items()) for levels in grid.values())):
                levels = {axis: str(level) for axis, (level, _) in zip(axes, combo, strict=True)}
                plan.append(("-".join(levels.values()), levels, [ov for _, ov in combo]))

        variants = []
        for variant_name, levels, parts in plan:
            _check_name("a variant name", variant_name)
            recipe, assignments = base, []
            for part in parts:
                if isinstance(part, Mapping) and "recipe" in part:
                    part = dict(part)
                    recipe = cls._load_recipe(
                        f"variant {variant_name!r} recipe", part.pop("recipe"), base_dir, name
                    )
                assignments += _assignments(f"variants.{variant_name}", part)
            if recipe is None:
                raise ValueError(
                    f"Variant {variant_name!r} has no recipe: give the experiment a 'base' "
                    "recipe or the variant a 'recipe'."
                )
            try:
                recipe = recipe.with_overrides(
                    [*assignments, *common, f"name={name}-{variant_name}"]
                )
            except ValueError as err:
                raise ValueError(f"In variant {variant_name!r} of {name!r}: {err}") from err
            variants.append(Variant(variant_name, recipe, levels))
        if len({v.name for v in variants}) != len(variants):
            raise ValueError(f"Experiment {name!r} has two variants with the same name.")

        written = {k: copy.deepcopy(v) for k, v in config.items() if k != "base"}
        written["name"] = name
        if base is not None:
            written["base"] = base.to_dict()
        written["overrides"] = common
        for key in ("variants", "grid"):
            if key in written:
                written[key] = cls._inline_recipes(written[key], base_dir, name, key == "grid")
        return cls(
            name=name,
            variants=variants,
            figures=list(figures),
            axes=axes,
            description=config.get("description"),
            config=written,
        )

    @staticmethod
    def _load_recipe(where: str, spec: Any, base_dir: Path, name: str) -> Recipe | None:
        if spec is None:
            return None
        if isinstance(spec, Recipe):
            return spec
        if isinstance(spec, str | os.PathLike):
            path = Path(spec)
            return Recipe.from_yaml(path if path.is_absolute() else base_dir / path)
        if isinstance(spec, Mapping):
            return Recipe.from_dict(spec, default_name=name)
        raise ValueError(
            f"Received an invalid value for experiment key {where}, expected a recipe file path "
            f"or an inline recipe mapping. Received: {spec!r}"
        )

    @classmethod
    def _inline_recipes(cls, arms: Any, base_dir: Path, name: str, grid: bool) -> Any:
        """The variants/grid mapping with every ``recipe`` path replaced by its content."""
        groups = arms.values() if grid else [arms]
        for group in groups:
            for overrides in group.values():
                if isinstance(overrides, dict) and "recipe" in overrides:
                    recipe = cls._load_recipe("recipe", overrides["recipe"], base_dir, name)
                    overrides["recipe"] = recipe.to_dict()
        return arms

    def with_overrides(self, assignments: Iterable[str]) -> Experiment:
        """A copy with ``section.key=value`` assignments applied to every variant (last)."""
        assignments = list(assignments)
        if not assignments:
            return self
        config = copy.deepcopy(self.config)
        config["overrides"] = [*config.get("overrides", []), *assignments]
        return Experiment.from_dict(config, default_name=self.name)

    # -- running --------------------------------------------------------------------------------
    def run(
        self,
        out: str | os.PathLike | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        verbose: int | str = 0,
        log: Callable[[str], None] | None = print,
    ) -> ExperimentResult:
        """Runs every variant, then writes the summary table and the figures.

        Args:
            out: output folder. Defaults to ``runs/<name>``.
            resume: reuse finished variants in `out` (their recipe must match) and continue an
                interrupted one from its last epoch. Defaults to `False`.
            overwrite: replace finished variant runs in `out`. Defaults to `False`.
            verbose: Keras progress output for each fit. Defaults to 0.
            log: called with one line per finished variant. Defaults to `print`; `None` is
                silent.

        Returns:
            An `ExperimentResult`.

        Raises:
            FileExistsError: `out` holds a finished run of a variant and neither `resume` nor
                `overwrite` is set (checked before anything trains).
            ValueError: with `resume`, a finished variant whose recipe differs from this one;
                a figure that cannot be drawn for these variants (e.g. a decision boundary of
                data that is not 2-D).
        """
        from kerasnn import runs

        out = Path("runs") / self.name if out is None else Path(out)
        plans = []
        for variant in self.variants:
            recipe = variant.recipe.resolved()
            folder = out / variant.name
            finished = (folder / runs.FINISHED_MARKER).exists()
            action = "run"
            if finished and resume:
                ran = yaml.safe_load((folder / "recipe.yaml").read_text())
                if ran != recipe.to_dict():
                    raise ValueError(
                        f"Cannot resume variant {variant.name!r}: {folder} holds a finished run "
                        "of a different recipe. Use overwrite=True (CLI: --overwrite) or "
                        "another output folder."
                    )
                action = "reuse"
            elif finished and not overwrite:
                raise FileExistsError(
                    f"Received an invalid value for argument out: {folder} already holds a "
                    "finished run of this variant. Pass resume=True to reuse it (CLI: "
                    f"--resume), overwrite=True to replace it (CLI: --overwrite), or another "
                    f"folder. Received: out={str(out)!r}"
                )
            elif resume and runs.RunFolder(folder).backup_dir.exists():
                action = "resume"
            plans.append((variant, recipe, folder, action))
        for figure in self.figures:
            check = FIGURES[figure].check
            if check is not None:
                check(self)

        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / "experiment.yaml", yaml.safe_dump(self.config, sort_keys=False))
        results: list[VariantResult] = []
        for index, (variant, recipe, folder, action) in enumerate(plans, start=1):
            if action != "reuse":
                with _graph_memory.releasing():  # the variant's model is discarded
                    recipe.run(
                        folder, resume=action == "resume", overwrite=overwrite, verbose=verbose
                    )
            result = VariantResult.read(variant, folder)
            results.append(result)
            _write_tables(out, results)
            if log is not None:
                reused = " (reused)" if action == "reuse" else ""
                log(f"kerasnn: [{index}/{len(plans)}] {result.line()}{reused}")
        outcome = ExperimentResult(self, out, results, {})
        for figure in self.figures:
            outcome.figures[figure] = FIGURES[figure].draw(outcome)
        return outcome


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class VariantResult:
    """A finished variant, read back from its run folder.

    Attributes:
        name: variant name.
        levels: grid axis -> level (empty for plain variants).
        recipe: the resolved recipe that ran.
        run_dir: the run folder.
        history: metric -> one value per epoch (from ``history.csv``).
        metrics: the run's ``metrics.json`` (best/final/test metrics, epochs, wall time…).
    """

    name: str
    levels: dict[str, str]
    recipe: Recipe
    run_dir: Path
    history: dict[str, list[float]]
    metrics: dict[str, Any]

    @classmethod
    def read(cls, variant: Variant, folder: Path) -> VariantResult:
        from kerasnn.callbacks import read_history_csv

        rows = read_history_csv(folder / "history.csv")
        history = {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}
        metrics = _json.read(folder / "metrics.json")
        recipe = Recipe.from_yaml(folder / "recipe.yaml")
        return cls(variant.name, dict(variant.levels), recipe, folder, history, metrics)

    def row(self) -> dict[str, Any]:
        """One summary-table row: final, best-epoch and test metrics, gap, epochs, time."""
        m = self.metrics
        row: dict[str, Any] = {"variant": self.name, **self.levels}
        row |= {
            "epochs": m["epochs"],
            "best_epoch": None if m["best_epoch"] is None else m["best_epoch"] + 1,
            "stop_reason": m["stop_reason"],
        }
        row |= {f"final_{k}": v for k, v in m["final_metrics"].items()}
        if "val_loss" in m["final_metrics"]:
            row["final_gap"] = m["final_metrics"]["val_loss"] - m["final_metrics"]["loss"]
        if "val_accuracy" in m["final_metrics"]:
            final = m["final_metrics"]
            row["final_accuracy_gap"] = final["accuracy"] - final["val_accuracy"]
        row |= {f"best_{k}": v for k, v in m["best_metrics"].items()}
        row |= {f"test_{k}": v for k, v in (m["test_metrics"] or {}).items()}
        row["wall_time_s"] = m["wall_time"]
        row["run_dir"] = str(self.run_dir)
        return row

    def line(self) -> str:
        test = self.metrics["test_metrics"] or {}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items())
        return (
            f"{self.name}: test {shown} | {self.metrics['epochs']} epochs "
            f"({self.metrics['stop_reason']}) in {self.metrics['wall_time']:.1f} s "
            f"-> {self.run_dir}"
        )


@dataclasses.dataclass
class ExperimentResult:
    """What `Experiment.run` returns.

    Attributes:
        experiment: the `Experiment` that ran.
        out: its output folder.
        results: one `VariantResult` per variant, in order.
        figures: figure name -> PNG path.
    """

    experiment: Experiment
    out: Path
    results: list[VariantResult]
    figures: dict[str, Path]

    def table(self) -> list[dict[str, Any]]:
        """The summary table, one row per variant (as in ``summary.csv``)."""
        return [r.row() for r in self.results]

    def summary(self, columns: Sequence[str] | None = None) -> str:
        """The summary table as aligned text (headline columns unless `columns` is given)."""
        rows = self.table()
        if columns is None:
            wanted = ["variant", *self.experiment.axes, "epochs", "best_epoch"]
            wanted += [
                c
                for c in rows[0]
                if c.startswith(("final_", "test_"))
                and not c.startswith(("final_auc", "final_val_auc"))
            ]
            wanted.append("wall_time_s")
            columns = [c for c in wanted if any(c in r for r in rows)]
        cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_tables(out: Path, results: Sequence[VariantResult]) -> None:
    rows = [r.row() for r in results]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(out / "summary.csv", buffer.getvalue())
    _write_atomic(out / "summary.json", _json.dumps(rows, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure an experiment can ask for: ``draw(result) -> PNG path``.

    `check(experiment)`, when given, raises `ValueError` before any training if the figure
    cannot be drawn for these variants.
    """

    draw: Callable[[ExperimentResult], Path]
    check: Callable[[Experiment], None] | None = None


def _draw_curves(result: ExperimentResult) -> Path:
    from kerasnn import plots

    path = result.out / "comparison.png"
    plots.plot_comparison(
        {r.name: r.history for r in result.results},
        test={r.name: r.metrics["test_metrics"] or {} for r in result.results},
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


def _load_data(recipe: Recipe) -> Any:
    from kerasnn import datasets

    return datasets.load(**({"seed": recipe.seed} | recipe.data))


def _check_two_features(experiment: Experiment) -> None:
    for variant in experiment.variants:
        shape = _load_data(variant.recipe).input_shape
        if tuple(shape) != (2,):
            raise ValueError(
                f"Received figures=['decision_boundary'] for variant {variant.name!r} whose data "
                f"has input shape {shape}; decision boundaries need 2 features (spirals, xor)."
            )


def _draw_decision_boundaries(result: ExperimentResult) -> Path:
    import keras
    import matplotlib.pyplot as plt

    from kerasnn import plots

    axes_spec = result.experiment.axes
    if len(axes_spec) == 2:
        rows, cols = (len(levels) for levels in axes_spec.values())
    else:
        cols = min(len(result.results), 3)
        rows = -(-len(result.results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(result.results) :]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, result.results, strict=False):
        if not (r.run_dir / "model.keras").exists():  # went NaN in its first epoch: no model
            ax.set_title(f"{r.name}\nno model (no finite epoch)", fontsize=9)
            ax.set_axis_off()
            continue
        model = keras.saving.load_model(r.run_dir / "model.keras")
        data = _load_data(r.recipe)
        accuracy = (r.metrics["test_metrics"] or {}).get("accuracy")
        title = r.name if accuracy is None else f"{r.name}\ntest accuracy {accuracy:.3f}"
        plots.plot_decision_boundary(model, data.x_train, data.y_train, ax=ax, title=title)
    fig.suptitle(result.experiment.description or result.experiment.name, fontsize=10)
    fig.tight_layout()
    path = result.out / "decision_boundaries.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _check_two_axes(experiment: Experiment) -> None:
    if len(experiment.axes) != 2:
        raise ValueError(
            "Received figures=['grid_heatmap'] for an experiment without a two-axis grid; "
            f"it needs 'grid' with exactly 2 axes. Received: axes={list(experiment.axes)}"
        )


def _draw_grid_heatmap(result: ExperimentResult) -> Path:
    from kerasnn import plots

    (row_axis, rows), (col_axis, cols) = result.experiment.axes.items()
    key = "final_val_loss" if all("final_val_loss" in r.row() for r in result.results) else None
    key = key or "final_loss"
    values = {(r.levels[row_axis], r.levels[col_axis]): r.row()[key] for r in result.results}
    path = result.out / "grid_heatmap.png"
    plots.plot_grid_heatmap(
        [[values[(a, b)] for b in cols] for a in rows],
        rows=rows,
        cols=cols,
        row_label=row_axis,
        col_label=col_axis,
        value_label=key.replace("_", " "),
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


def _logs_gradient_norms(recipe: Recipe) -> bool:
    """Whether a recipe's fit logs per-layer gradient norms (the ``gradient_norms`` callback)."""
    for spec in recipe.fit.get("callbacks") or []:
        if spec == "gradient_norms":
            return True
        if isinstance(spec, Mapping) and "gradient_norms" in spec:
            return (spec["gradient_norms"] or {}).get("per_layer", True) is not False
    return False


def _check_gradient_norms(experiment: Experiment) -> None:
    for variant in experiment.variants:
        if not _logs_gradient_norms(variant.recipe):
            raise ValueError(
                f"Received figures=['grad_norms'] for variant {variant.name!r} whose fit does "
                "not log per-layer gradient norms; add the callback to the base recipe, e.g. "
                "fit.callbacks: [{gradient_norms: {every_n_steps: 50}}]. Received: "
                f"callbacks={variant.recipe.fit.get('callbacks')!r}"
            )


def _weight_layers(result: VariantResult) -> list[str]:
    """Names of the variant's layers with a kernel (Dense/Conv/Maxout), input side first."""
    import keras

    if not (result.run_dir / "model.keras").exists():  # went NaN in its first epoch: no model
        return []
    model = keras.saving.load_model(result.run_dir / "model.keras")
    names = [layer.name for layer in model.layers if hasattr(layer, "kernel")]
    return [name for name in names if f"grad_norm/{name}" in result.history]


def grad_norm_profiles(
    result: ExperimentResult,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[str]]]:
    """Per-layer gradient norms of every variant after the first and after the last epoch.

    Read from the ``grad_norm/<layer>`` columns the gradient-norm callback logged, for the
    layers with a kernel (input side first).

    Returns:
        ``(profiles, layers)``: ``{"after epoch 1": {variant: [norm per layer]}, "after epoch
        N": {...}}`` (N: the shortest run's last epoch; one panel when N = 1) and panel ->
        layer names.
    """
    last = min(len(r.history["loss"]) for r in result.results)
    epochs = {"after epoch 1": 0} | ({f"after epoch {last}": last - 1} if last > 1 else {})
    profiles: dict[str, dict[str, list[float]]] = {panel: {} for panel in epochs}
    layers: dict[str, list[str]] = {}
    for r in result.results:
        names = _weight_layers(r)
        for panel, epoch in epochs.items():
            profiles[panel][r.name] = [r.history[f"grad_norm/{n}"][epoch] for n in names]
            layers.setdefault(panel, names)
    return profiles, layers


def _draw_grad_norms(result: ExperimentResult) -> Path:
    """Per-layer gradient norms against depth after the first and the last epoch."""
    from kerasnn import plots

    profiles, layers = grad_norm_profiles(result)
    path = result.out / "grad_norms.png"
    plots.plot_layer_profiles(
        profiles,
        layers=layers,
        ylabel="gradient L2 norm of the layer's weights",
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


def init_statistics(recipe: Recipe, *, probe_size: int = 512) -> list[Any]:
    """Per-layer activation statistics of a recipe's freshly built model (before training).

    The model is built exactly as `Recipe.run` builds it (same seed, so the same initial weights;
    LSUV applied when the recipe asks for it) and probed on the first `probe_size` training
    samples.

    Args:
        recipe: the recipe.
        probe_size: number of training samples in the probe batch. Defaults to 512.

    Returns:
        One `kerasnn.diagnostics.LayerStats` per activation layer, output layer last.
    """
    from kerasnn.diagnostics import activation_statistics

    data, model = recipe.build()
    return activation_statistics(model, data.x_train[:probe_size])


def init_std_profiles(
    result: ExperimentResult,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """The std of each hidden activation of every variant's freshly built model.

    Returns:
        ``(profiles, table)``: ``{"activation: <name>": {label: [std per hidden layer]}}``
        (one panel per activation function; in a grid with an ``activation`` axis a variant is
        labelled by its other levels) and variant -> every activation layer's statistics
        (`LayerStats.to_dict`, the output layer included).
    """
    profiles: dict[str, dict[str, list[float]]] = {}
    table: dict[str, Any] = {}
    for r in result.results:
        stats = init_statistics(r.recipe)
        hidden = stats[:-1] if len(stats) > 1 else stats
        panel = f"activation: {r.recipe.model.get('activation', 'relu')}"
        label = "-".join(v for k, v in r.levels.items() if k != "activation") or r.name
        profiles.setdefault(panel, {})[label] = [s.std for s in hidden]
        table[r.name] = [s.to_dict() for s in stats]
    return profiles, table


def _draw_init_stats(result: ExperimentResult) -> Path:
    """Std of each hidden activation at initialisation, one panel per activation function.

    Also writes ``init_stats.json``: variant -> every activation layer's statistics.
    """
    from kerasnn import plots

    profiles, table = init_std_profiles(result)
    _write_atomic(result.out / "init_stats.json", _json.dumps(table, indent=2) + "\n")
    path = result.out / "init_stats.png"
    plots.plot_layer_profiles(
        profiles,
        ylabel="std of the layer's activations at init",
        path=path,
        title=(result.experiment.description or result.experiment.name)
        + " - activations at initialisation",
    )
    return path


def _draw_learning_rates(result: ExperimentResult) -> Path:
    from kerasnn import plots

    path = result.out / "learning_rates.png"
    plots.plot_lr_comparison(
        {r.name: r.history for r in result.results},
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


# Figure name -> how to draw it. Later experiments add their own figures here.
FIGURES: dict[str, Figure] = {
    "curves": Figure(_draw_curves),
    "decision_boundary": Figure(_draw_decision_boundaries, _check_two_features),
    "grid_heatmap": Figure(_draw_grid_heatmap, _check_two_axes),
    "grad_norms": Figure(_draw_grad_norms, _check_gradient_norms),
    "init_stats": Figure(_draw_init_stats),
    "learning_rates": Figure(_draw_learning_rates),
}
