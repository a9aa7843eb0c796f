"""The `kerasnn` command line: the edge where input is checked before TensorFlow loads.

Each command first checks what it was given (the recipe's keys and kerasnn's names, the paths,
the numbers) without importing TensorFlow, then imports it with its start-up notes filtered out
(`kerasnn._quiet`; ``--verbose`` shows them), then works. Exit codes: 0 done, 1 the work failed
(training diverged, a sanity check or an export's verification failed, a search stopped on
failed trials, a dataset could not be downloaded), 2 bad input: a message naming the
argument and what was received, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kerasnn import __version__, _quiet
from kerasnn.datasets import DatasetDownloadError
from kerasnn.tuning.settings import TUNERS

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_OK", "EXIT_TRAINING_FAILED", "main"]

EXIT_OK, EXIT_TRAINING_FAILED, EXIT_BAD_INPUT = 0, 1, 2
# What bad input raises on its way in: caught at the edge, by type, and reported with exit 2.
BAD_INPUT_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _int_at_least(low: int, expected: str) -> Callable[[str], int]:
    """An argparse type: an integer >= `low` (``--trials 0`` is refused, not read as the
    default), else an error saying it `expected` that."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected {expected}. Received: {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_folds = _int_at_least(2, "an integer K >= 2 (folds)")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0. Received: {text!r}")
    return value


def _check_out(out: str | None, argument: str = "--out") -> None:
    """A folder argument must not name an existing file."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(
            f"Received an invalid value for argument {argument}, expected a folder (new or "
            f"existing); {out} is a file. Received: {argument}={out!r}"
        )


def _tensorflow(args: argparse.Namespace) -> None:
    """Imports TensorFlow: after the input checks, with its start-up notes filtered out."""
    _quiet.import_tensorflow(verbose=args.verbose)


def _recipe(args: argparse.Namespace) -> object:
    """The command's recipe with its --set overrides: checked once, before TensorFlow loads."""
    from kerasnn.recipe import Recipe

    return Recipe.from_yaml(args.recipe, overrides=args.overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasnn",
        description="Describe, compile, fit and evaluate Keras models from YAML recipes.",
    )
    parser.add_argument("--version", action="version", version=f"kerasnn {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's start-up lines (CUDA probing, CPU notes); hidden by default",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(sub, name)
    return parser


# One entry per command: name -> (add_arguments(subparsers, name), run(args) -> exit code).
# A new command adds its two functions below and one line to COMMANDS.


def _add_overrides(cmd: argparse.ArgumentParser, help: str) -> None:
    """The repeatable ``--set KEY=VALUE`` recipe override every recipe command takes."""
    cmd.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


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
    _add_overrides(
        train, "override a recipe entry, e.g. --set fit.epochs=5 --set model.hidden=[64]"
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
        "--strategy",
        metavar="NAME",
        help="build and train under a tf.distribute strategy: auto, cpu, gpu, mirrored, "
        "multi_worker (cluster from TF_CONFIG) or one_device:DEVICE; fit.batch_size is then "
        "the global batch, split across replicas (default: no strategy)",
    )
    train.add_argument(
        "--sanity",
        action="store_true",
        help="first check initial loss ~ ln(C), that regularization raises the loss and that "
        "20 samples can be overfit; train only if all pass (report in the run folder)",
    )


def _train(args: argparse.Namespace) -> int:
    recipe = _recipe(args)
    _check_out(args.out)
    _tensorflow(args)
    strategy, out, scratch = None, args.out, None
    if args.strategy is not None:  # first: multi_worker must precede any TensorFlow op
        from kerasnn import devices

        strategy = devices.strategy(args.strategy)
        if not devices.is_chief(strategy):  # only the chief writes the run folder
            import tempfile

            scratch = tempfile.mkdtemp(prefix="kerasnn-worker-")
            out = os.path.join(scratch, "run")
    try:
        result = recipe.run(
            out,
            resume=args.resume,
            overwrite=args.overwrite,
            verbose=0 if args.quiet else 2,
            strategy=strategy,
            sanity=args.sanity,
        )
    except RuntimeError as err:  # the recipe's export block failed verification
        from kerasnn.export import ExportVerificationError

        if not isinstance(err, ExportVerificationError):
            raise
        print(f"kerasnn: export failed verification: {err}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    finally:
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    if result.sanity is not None:
        print(f"kerasnn: sanity check:\n{result.sanity.summary()}")
        if not result.sanity.passed:
            print(f"kerasnn: {result.summary()}", file=sys.stderr)
            return EXIT_TRAINING_FAILED
    if result.fit.stop_reason == "nan_loss":
        print(f"kerasnn: {result.fit.message}", file=sys.stderr)
        print(f"kerasnn: run folder: {result.run_dir}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    print(f"kerasnn: {result.summary()}")
    return EXIT_OK


def _add_export(sub: argparse._SubParsersAction, name: str) -> None:
    cmd = sub.add_parser(
        name,
        help="export a trained model as a verified SavedModel or .keras file",
        description=(
            "Export a run folder's model (or a .keras file) for serving. From a run folder the "
            "loader's whole input transform (reshape, rescaling such as the digits' /16, the "
            "training split's standardization) is baked in, so the artifact takes the values "
            "the data source gives (load_digits().data's 0-16 pixels, a CSV's columns). "
            "The artifact is written to a hidden sibling, reloaded in a fresh process and "
            "compared with the in-memory model (max abs diff <= 1e-5), then renamed into place."
        ),
    )
    cmd.add_argument("source", metavar="RUN_DIR_or_MODEL", help="a run folder or a .keras file")
    cmd.add_argument("path", metavar="PATH", help="the artifact to write")
    cmd.add_argument(
        "--format",
        choices=["saved_model", "keras"],
        help="saved_model (a folder) or keras (a .keras file); default: keras when PATH ends "
        "in .keras, else saved_model",
    )
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
    cmd.add_argument(
        "--no-standardize",
        action="store_true",
        help="from a run folder: bake no input transform in; the artifact then takes what the "
        "model was trained on: kerasnn.datasets.load(...)'s x_train/x_test (rescaled and "
        "standardized), like the model in the run folder",
    )
    cmd.add_argument(
        "--unsafe",
        action="store_true",
        help="allow a .keras source with Lambda layers (runs its Python code: trusted files only)",
    )


def _export(args: argparse.Namespace) -> int:
    from kerasnn import export
    from kerasnn.recipe.export_run import export_source

    try:
        result = export_source(
            args.source,
            args.path,
            format=args.format,
            overwrite=args.overwrite,
            standardize=not args.no_standardize,
            safe_mode=not args.unsafe,
        )
    except export.ExportVerificationError as err:
        print(f"kerasnn: export failed verification: {err}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    print(f"kerasnn: {result.summary()}")
    return EXIT_OK


def _add_predict(sub: argparse._SubParsersAction, name: str) -> None:
    cmd = sub.add_parser(
        name,
        help="predict with an exported SavedModel or a .keras file",
        description=(
            "Run an exported model (SavedModel folder or .keras file) on a batch of inputs "
            "from a .npy file or a .csv file (one sample per row, header optional; rows of an "
            "image model's flattened width are reshaped). Predictions go to --out (.npy or "
            ".csv) or, as CSV, to standard output."
        ),
    )
    cmd.add_argument("model", metavar="MODEL", help="a SavedModel folder or a .keras file")
    cmd.add_argument("input", metavar="INPUT", help="inputs: a .npy or .csv file")
    cmd.add_argument("--out", metavar="FILE", help="write predictions to FILE (.npy or .csv)")
    cmd.add_argument("--batch-size", type=_positive_int, default=1024, help="default: 1024")
    cmd.add_argument(
        "--unsafe",
        action="store_true",
        help="allow a .keras model with Lambda layers (runs its Python code: trusted files only)",
    )


def _predict(args: argparse.Namespace) -> int:
    if args.out is not None and not args.out.endswith((".npy", ".csv")):
        raise ValueError(
            "Received an invalid value for argument --out, expected a file name ending in .npy "
            f"or .csv. Received: --out={args.out!r}"
        )
    for argument, path in (("MODEL", args.model), ("INPUT", args.input)):
        if not Path(path).exists():
            raise FileNotFoundError(
                f"Received an invalid value for argument {argument}, expected an existing "
                f"path. Received: {argument}={path!r}"
            )
    _tensorflow(args)
    import numpy as np

    from kerasnn import export

    model = export.load(args.model, safe_mode=not args.unsafe)
    x = export.read_inputs(args.input, model.input_shape)
    y = model.predict(x, batch_size=args.batch_size)
    if args.out is None:
        np.savetxt(sys.stdout, y.reshape(len(y), -1), delimiter=",", fmt="%.8g")
    else:
        export.write_outputs(args.out, y)
        print(f"kerasnn: {len(y)} predictions of shape {y.shape[1:]} -> {args.out}")
    return EXIT_OK


def _add_devices(sub: argparse._SubParsersAction, name: str) -> None:
    cmd = sub.add_parser(
        name,
        help="show the devices TensorFlow sees, versions, oneDNN/XLA and mixed precision",
        description="Report physical and logical devices, GPU names and memory, TensorFlow and "
        "Keras versions, whether oneDNN and XLA are on, and the TF_CONFIG cluster if set.",
    )
    cmd.add_argument("--json", action="store_true", help="print the report as JSON")


def _devices(args: argparse.Namespace) -> int:
    import json

    _tensorflow(args)
    from kerasnn import devices

    info = devices.report()
    print(json.dumps(info, indent=2) if args.json else devices.format_report(info))
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
    _add_overrides(compare, "override a recipe entry in every variant, e.g. --set fit.epochs=5")
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
    _check_out(args.out)
    _tensorflow(args)
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
    _add_overrides(cmd, "override a recipe entry, e.g. --set optimizer=sgd")
    cmd.add_argument("--out", metavar="DIR", help="output folder (default: runs/NAME-lr_find)")
    cmd.add_argument(
        "--min-lr", type=_positive_float, default=1e-7, help="first rate (default 1e-7)"
    )
    cmd.add_argument("--max-lr", type=_positive_float, default=10.0, help="last rate (default 10)")
    cmd.add_argument(
        "--num-steps", type=_positive_int, default=100, help="ramp length (default 100)"
    )
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def _lr_find(args: argparse.Namespace) -> int:
    recipe = _recipe(args)
    if not args.min_lr < args.max_lr:
        raise ValueError(
            "Received an invalid value for argument --max-lr, expected a rate above --min-lr. "
            f"Received: --min-lr={args.min_lr!r}, --max-lr={args.max_lr!r}"
        )
    _check_out(args.out)
    _tensorflow(args)
    from kerasnn.recipe.lr_find import lr_find_recipe

    result, out = lr_find_recipe(
        recipe,
        out=args.out,
        overwrite=args.overwrite,
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        num_steps=args.num_steps,
    )
    rates = ", ".join(f"{k} {v:.3g}" for k, v in result.suggestions.items())
    print(f"kerasnn: lr-find: suggested learning rate {result.suggested:.3g} ({rates}) -> {out}")
    return EXIT_OK


def _add_search(sub: argparse._SubParsersAction, name: str) -> None:
    search = sub.add_parser(
        name,
        help="hyperparameter search (random, grid, Hyperband, Bayesian) over a recipe's space",
        description=(
            "Search (KerasTuner's random, grid, Hyperband or Bayesian oracle) over the space in "
            "the recipe's search: block (or the builder's ready space), optionally within a "
            "time budget, with K-fold scores or a coarse-to-fine second stage. One line per "
            "trial and per retrained member. Writes DIR/results.csv and results.json (every trial, "
            "failed ones with their reason), results.png, and best.keras: the best "
            "configuration retrained on train+validation and evaluated on the test split. "
            "Distributed: start one --chief and any number of --worker processes sharing DIR "
            "(or set KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT)."
        ),
    )
    search.add_argument("recipe", help="path to a YAML recipe, e.g. recipes/digits_mlp.yaml")
    search.add_argument(
        "--trials", type=_positive_int, metavar="N", help="number of trials (default 20)"
    )
    search.add_argument("--objective", help="metric to optimize (default val_accuracy/val_loss)")
    search.add_argument(
        "--seed", type=_non_negative_int, help="search seed (default: the recipe's)"
    )
    search.add_argument(
        "--out", metavar="DIR", help="search folder (default runs/NAME-search, runs/NAME-grid)"
    )
    _add_overrides(search, "override a recipe entry, e.g. --set fit.epochs=20")
    search.add_argument(
        "--resume", action="store_true", help="continue an interrupted search in --out"
    )
    search.add_argument("--overwrite", action="store_true", help="delete a search in --out first")
    search.add_argument(
        "--tuner",
        choices=TUNERS,
        help="KerasTuner's oracle (default: search.tuner, else random); hyperband's max_epochs "
        "is fit.epochs",
    )
    search.add_argument(
        "--grid", action="store_true", help="grid search with the same budget (--tuner grid)"
    )
    search.add_argument(
        "--time-budget",
        type=_positive_float,
        metavar="SECONDS",
        help="no new trial after SECONDS; the running one stops at an epoch boundary "
        "(retraining apart; default: search.time_budget)",
    )
    search.add_argument(
        "--cv",
        type=_folds,
        metavar="K",
        help="each trial's objective: the mean over K stratified folds of the training split",
    )
    search.add_argument(
        "--refine",
        action="store_true",
        default=None,
        help="coarse-to-fine: a second stage samples ranges narrowed around the best (random)",
    )
    search.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="TensorBoard HParams dashboard in DIR, one run per trial",
    )
    search.add_argument(
        "--ensemble",
        type=_positive_int,
        metavar="K",
        help="best.keras averages the K best configurations (default: search.ensemble, else 1)",
    )
    search.add_argument(
        "--no-retrain",
        dest="retrain",
        action="store_false",
        default=None,
        help="best.keras from the trials' own models, not retrained (default: search.retrain)",
    )
    role = search.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="run the oracle for distributed workers")
    role.add_argument("--worker", metavar="ID", help="run trials for the chief at --oracle")
    search.add_argument(
        "--oracle",
        metavar="HOST:PORT",
        help="the chief's address (with --chief: where it listens), e.g. 10.0.0.1:8000",
    )
    search.add_argument("--quiet", action="store_true", help="no per-trial lines")


def _search(args: argparse.Namespace) -> int:
    recipe = _recipe(args)
    _check_out(args.out)
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
    _tensorflow(args)
    from kerasnn.recipe.hypermodel import search

    try:
        result = search(
            recipe,
            max_trials=args.trials,
            objective=args.objective,
            seed=args.seed,
            directory=args.out,
            tuner=args.tuner,
            grid=args.grid,
            time_budget=args.time_budget,
            cv=args.cv,
            refine=args.refine,
            tensorboard=args.tensorboard,
            ensemble=args.ensemble,
            retrain=args.retrain,
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
    "export": (_add_export, _export),
    "predict": (_add_predict, _predict),
    "devices": (_add_devices, _devices),
    "compare": (_add_compare, _compare),
    "lr-find": (_add_lr_find, _lr_find),
    "search": (_add_search, _search),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kerasnn` console script; returns the exit code."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except DatasetDownloadError as err:  # offline, no cached file: the message says what to do
        print(f"kerasnn: error: {err}", file=sys.stderr)
        return EXIT_TRAINING_FAILED
    except BAD_INPUT_ERRORS as err:
        print(f"kerasnn: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
