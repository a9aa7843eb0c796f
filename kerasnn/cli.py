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
    train.add_argument(
        "--sanity",
        action="store_true",
        help="first check initial loss ~ ln(C), that regularization raises the loss and that "
        "20 samples can be overfit; train only if all pass (report in the run folder)",
    )


def _train(args: argparse.Namespace) -> int:
    from kerasnn.recipe import Recipe

    recipe = Recipe.from_yaml(args.recipe).with_overrides(args.overrides)
    result = recipe.run(
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        verbose=0 if args.quiet else 2,
        sanity=args.sanity,
    )
    if result.sanity is not None:
        print(f"kerasnn: sanity check:\n{result.sanity.summary()}")
        if not result.sanity.passed:
            print(f"kerasnn: {result.summary()}", file=sys.stderr)
            return EXIT_TRAINING_FAILED
    if result.fit.stop_reason == "nan_loss":
        print(f"kerasnn: {result.fit.message}", file=sys.stderr)
        print(f"kerasnn: run folder (best weights so far): {result.run_dir}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    print(f"kerasnn: {result.summary()}")
    return EXIT_OK


def _add_lr_find(sub: argparse._SubParsersAction, name: str) -> None:
    cmd = sub.add_parser(
        name,
        help="learning-rate range test on a recipe's model: curve, suggested rates, plot",
        description=(
            "Train the recipe's model for up to --num-steps steps while the learning rate "
            "rises exponentially from --min-lr to --max-lr, stop when the smoothed loss "
            "exceeds 4x its minimum, and write lr_find.png and lr_find.json (curve and "
            "suggested rates) to the output folder. The recipe's model is not trained."
        ),
    )
    cmd.add_argument("recipe", help="path to a YAML recipe")
    cmd.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe entry, e.g. --set optimizer=sgd",
    )
    cmd.add_argument("--out", metavar="DIR", help="output folder (default: runs/NAME-lr_find)")
    cmd.add_argument("--min-lr", type=float, default=1e-7, help="first rate (default 1e-7)")
    cmd.add_argument("--max-lr", type=float, default=10.0, help="last rate (default 10)")
    cmd.add_argument("--num-steps", type=int, default=100, help="ramp length (default 100)")
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def _lr_find(args: argparse.Namespace) -> int:
    from kerasnn.callbacks.lr_finder import run_recipe

    result, out = run_recipe(
        args.recipe,
        args.overrides,
        out=args.out,
        overwrite=args.overwrite,
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        num_steps=args.num_steps,
    )
    rates = ", ".join(f"{k} {v:.3g}" for k, v in result.suggestions.items())
    print(f"kerasnn: lr-find: suggested learning rate {result.suggested:.3g} ({rates}) -> {out}")
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[..., None], Callable[[argparse.Namespace], int]]] = {
    "train": (_add_train, _train),
    "lr-find": (_add_lr_find, _lr_find),
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
