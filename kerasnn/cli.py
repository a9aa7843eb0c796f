"""The `kerasnn` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_TRAINING_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasnn",
        description="Describe, compile, fit and evaluate Keras models from YAML recipes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(sub, name)
    return parser


# One entry per command: name -> (add_arguments(subparsers, name), run(args) -> exit code).
# A new command adds its two functions below and one line to COMMANDS.


def _add_train(sub: argparse._SubParsersAction, name: str) -> None:
    train = sub.add_parser(
        name,
        help="train a model from a recipe and write its run folder",
        description=(
            "Train the model a recipe describes and write the run folder: recipe.yaml (what "
            "ran, defaults filled in), history.csv, metrics.json, model.keras, history.png. "
            "The folder is written beside the target as DIR.partial and moved into place "
            "when the run ends, so an earlier run is never overwritten by a failed one."
        ),
    )
    train.add_argument("recipe", help="path to a YAML recipe, e.g. recipes/digits_mlp.yaml")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe entry, e.g. --set fit.epochs=5 --set model.hidden=[64]",
    )
    train.add_argument(
        "--out", metavar="DIR", help="run folder (default: runs/NAME, or runs/NAME-2… if taken)"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of this recipe from its last completed epoch",
    )
    train.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")


def _train(args: argparse.Namespace) -> int:
    from kerasnn.recipe import Recipe

    recipe = Recipe.from_yaml(args.recipe).with_overrides(args.overrides)
    result = recipe.run(
        args.out, resume=args.resume, overwrite=args.overwrite, verbose=0 if args.quiet else 2
    )
    if result.fit.stop_reason == "nan_loss":
        print(f"kerasnn: {result.fit.message}", file=sys.stderr)
        print(f"kerasnn: run folder (best weights so far): {result.run_dir}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    print(f"kerasnn: {result.summary()}")
    return EXIT_OK


def _add_compare(sub: argparse._SubParsersAction, name: str) -> None:
    compare = sub.add_parser(
        name,
        help="run an experiment's variants (or several recipes) and compare them",
        description=(
            "Run every variant of an experiment (recipes/experiments/*.yaml: a base recipe and "
            "named variants of overrides), or several recipes, each into OUT/VARIANT/ as "
            "`kerasnn train` would; then write OUT/summary.csv and summary.json (final, best "
            "and test metrics, epochs and wall time per variant), OUT/experiment.yaml (what "
            "ran) and the experiment's figures (OUT/comparison.png: curves overlaid)."
        ),
    )
    compare.add_argument(
        "experiment",
        nargs="+",
        help="one experiment YAML file, or two or more recipe YAML files to compare",
    )
    compare.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe entry in every variant, e.g. --set fit.epochs=5",
    )
    compare.add_argument("--out", metavar="DIR", help="output folder (default: runs/NAME)")
    compare.add_argument(
        "--name", help="experiment name when comparing recipe files (default: compare)"
    )
    compare.add_argument(
        "--resume",
        action="store_true",
        help="reuse finished variants in --out and continue an interrupted one",
    )
    compare.add_argument(
        "--overwrite", action="store_true", help="replace finished variant runs in --out"
    )
    compare.add_argument("--quiet", action="store_true", help="print only the summary table")


def _compare(args: argparse.Namespace) -> int:
    from kerasnn.compare import Experiment

    paths = args.experiment
    if len(paths) == 1:
        experiment = Experiment.from_yaml(paths[0])
    else:  # several recipes; an experiment file among them fails on its unknown keys
        experiment = Experiment.from_recipes(paths, name=args.name or "compare")
    experiment = experiment.with_overrides(args.overrides)
    result = experiment.run(
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        log=None if args.quiet else print,
    )
    print(result.summary())
    for path in [result.out / "summary.csv", *result.figures.values()]:
        print(f"kerasnn: wrote {path}")
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[..., None], Callable[[argparse.Namespace], int]]] = {
    "train": (_add_train, _train),
    "compare": (_add_compare, _compare),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kerasnn` console script; returns the exit code."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"kerasnn: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
