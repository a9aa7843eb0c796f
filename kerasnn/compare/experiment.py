"""An experiment: a base recipe and named variants (or a grid), validated, run and compared.

See `kerasnn.compare` for the YAML format. `Experiment.run` writes one run folder per variant,
the summary tables (`kerasnn.compare.results`) and the figures (`kerasnn.compare.figures`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kerasnn import _atomic, _graph_memory, runs
from kerasnn._validation import unknown_key
from kerasnn.compare.figures import FIGURES
from kerasnn.compare.results import ExperimentResult, VariantResult, write_tables
from kerasnn.compare.variant import Variant
from kerasnn.recipe import Recipe

__all__ = ["EXPERIMENT_KEYS", "Experiment"]


EXPERIMENT_KEYS = ("name", "description", "base", "overrides", "variants", "grid", "figures")
_NAME = re.compile(r"^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*$")


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
                raise unknown_key("", key, EXPERIMENT_KEYS)
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
        _atomic.write_text(out / "experiment.yaml", yaml.safe_dump(self.config, sort_keys=False))
        results: list[VariantResult] = []
        for index, (variant, recipe, folder, action) in enumerate(plans, start=1):
            if action != "reuse":
                with _graph_memory.releasing():  # the variant's model is discarded
                    recipe.run(
                        folder, resume=action == "resume", overwrite=overwrite, verbose=verbose
                    )
            result = VariantResult.read(variant, folder)
            results.append(result)
            write_tables(out, results)
            if log is not None:
                reused = " (reused)" if action == "reuse" else ""
                log(f"kerasnn: [{index}/{len(plans)}] {result.line()}{reused}")
        outcome = ExperimentResult(self, out, results, {})
        for figure in self.figures:
            outcome.figures[figure] = FIGURES[figure].draw(outcome)
        return outcome
