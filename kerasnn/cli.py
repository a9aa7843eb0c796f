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


def _add_search(sub: argparse._SubParsersAction, name: str) -> None:
    search = sub.add_parser(
        name,
        help="random hyperparameter search over a recipe's search: block",
        description=(
            "Random search (KerasTuner) over the space in the recipe's search: block (or the "
            "builder's ready space). Writes DIR/results.csv and results.json (every trial, "
            "failed ones with their reason), results.png, and best.keras: the best "
            "configuration retrained on train+validation and evaluated on the test split. "
            "Distributed: start one --chief and any number of --worker processes sharing DIR "
            "(or set KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT)."
        ),
    )
    search.add_argument("recipe", help="path to a YAML recipe, e.g. recipes/digits_mlp.yaml")
    search.add_argument("--trials", type=int, metavar="N", help="number of trials (default 20)")
    search.add_argument("--objective", help="metric to optimize (default val_accuracy/val_loss)")
    search.add_argument("--seed", type=int, help="search seed (default: the recipe's)")
    search.add_argument(
        "--out", metavar="DIR", help="search folder (default runs/NAME-search, runs/NAME-grid)"
    )
    search.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe entry, e.g. --set fit.epochs=20",
    )
    search.add_argument(
        "--resume", action="store_true", help="continue an interrupted search in --out"
    )
    search.add_argument("--overwrite", action="store_true", help="delete a search in --out first")
    search.add_argument(
        "--grid", action="store_true", help="grid search with the same budget (baseline)"
    )
    role = search.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="run the oracle for distributed workers")
    role.add_argument("--worker", metavar="ID", help="run trials for the chief at --oracle")
    search.add_argument(
        "--oracle",
        metavar="HOST:PORT",
        help="the chief's address (with --chief: where it listens), e.g. 10.0.0.1:8000",
    )
    search.add_argument("--quiet", action="store_true", help="no per-trial tables")


def _search(args: argparse.Namespace) -> int:
    from kerasnn.recipe import Recipe
    from kerasnn.tuning import search

    if args.chief or args.worker:
        host, sep, port = (args.oracle or "").rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(
                "Received an invalid value for argument --oracle, expected HOST:PORT (the "
                f"chief's address) with --chief/--worker. Received: --oracle={args.oracle!r}"
            )
        os.environ["KERASTUNER_TUNER_ID"] = "chief" if args.chief else f"tuner-{args.worker}"
        os.environ["KERASTUNER_ORACLE_IP"] = host
        os.environ["KERASTUNER_ORACLE_PORT"] = port
    recipe = Recipe.from_yaml(args.recipe).with_overrides(args.overrides)
    try:
        result = search(
            recipe,
            max_trials=args.trials,
            objective=args.objective,
            seed=args.seed,
            directory=args.out,
            grid=args.grid,
            resume=args.resume,
            overwrite=args.overwrite,
            verbose=0 if args.quiet else 1,
        )
    except RuntimeError as err:  # KerasTuner's limit of consecutive failed trials
        print(f"kerasnn: search stopped: {str(err).splitlines()[0]}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    print(f"kerasnn: {recipe.name}: {result.summary()}")
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[..., None], Callable[[argparse.Namespace], int]]] = {
    "train": (_add_train, _train),
    "search": (_add_search, _search),
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
