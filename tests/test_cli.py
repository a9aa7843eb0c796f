"""The `kerasnn` command: help, train, bad input, NaN stops (kill and resume: test_resume.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import subprocess_env, write_recipe

from kerasnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
KERASNN = [sys.executable, "-m", "kerasnn"]


_env = subprocess_env


def _recipe(tmp_path, **fit):
    return write_recipe(tmp_path, **fit)


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "train" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--set", "--out", "--resume", "--overwrite"):
        assert flag in out


def test_train_in_process_prints_summary(tmp_path, capsys):
    code = main(["train", str(_recipe(tmp_path)), "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "kerasnn: cli: test: accuracy" in out
    assert (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--set", "fit.epochs=0"], "argument fit.epochs, expected a positive integer"),
        (["--set", "model.activation=rleu"], "Did you mean 'relu'"),
        (["--set", "optimizer=adamm"], "argument optimizer.name, expected one of"),
        (["--set", "data.name=nope"], "digits"),
        (["--set", "fit.batch_size=-2"], "argument fit.batch_size"),
        (["--set", "modle.hidden=[3]"], "Unknown recipe key modle. Did you mean 'model'?"),
        (["--set", "model.hiden=[64]"], "Unknown recipe key model.hiden. Did you mean 'hidden'?"),
        (["--set", "model.hidden=[16,"], "VALUE written in YAML"),
        (["--set", "model.hidden=!!python/object/apply:os.getcwd []"], "VALUE written in YAML"),
        (["--set", 'fit.shuffle="yes"'], "argument fit.shuffle, expected true or false"),
        (["--set", "export.standardize=1"], "argument export.standardize, expected true or"),
        (["--set", "fit.callbacks=[grad_norm]"], "Did you mean 'grad_norms'?"),
        (["--set", "fit.lr_schedule={step: {factr: 0.5}}"], "fit.lr_schedule.step.factr"),
        (["--set", "optimizer.betta_1=0.8"], "Unknown recipe key optimizer.betta_1"),
    ],
)
def test_bad_input_exits_2_with_message(tmp_path, capsys, args, match):
    code = main(["train", str(_recipe(tmp_path)), "--out", str(tmp_path / "run"), *args])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_exits_2(tmp_path, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    assert main(["train", str(_recipe(tmp_path)), "--out", str(taken)]) == 2
    assert "argument --out, expected a folder" in capsys.readouterr().err
    assert taken.read_text() == "mine"


@pytest.mark.parametrize(
    "args",
    [
        ["search", "RECIPE", "--trials", "0"],
        ["search", "RECIPE", "--ensemble", "-1"],
        ["lr-find", "RECIPE", "--num-steps", "0"],
        ["lr-find", "RECIPE", "--max-lr", "nan"],
        ["predict", "m.keras", "x.npy", "--batch-size", "0"],
    ],
)
def test_bad_numbers_are_refused_by_the_parser(tmp_path, capsys, args):
    args = [str(_recipe(tmp_path)) if a == "RECIPE" else a for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "expected a positive integer" in err or "expected a number > 0" in err


def test_version(capsys):
    import kerasnn

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kerasnn {kerasnn.__version__}"


def test_a_typo_is_refused_before_tensorflow_loads(tmp_path):
    """The edge: a misspelt key costs no TensorFlow import and prints one line, exit 2."""
    code = (
        "import sys\n"
        "from kerasnn.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF loaded'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "train", str(_recipe(tmp_path)), "--set", "model.hiden=[64]"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "kerasnn: error: Unknown recipe key model.hiden. Did you mean 'hidden'? Allowed keys in "
        "model: activation, augment, batchnorm, builder, dropout, hidden, initializer, l1, l2, "
        "lsuv, name, output_activation, outputs, seed, task."
    ]


def test_tensorflow_startup_lines_are_hidden_unless_verbose():
    """On a CPU machine TensorFlow prints CUDA-probe notes at start-up; the CLI filters them."""
    from kerasnn._quiet import STARTUP_NOISE

    env = subprocess_env()
    del env["TF_CPP_MIN_LOG_LEVEL"]  # as a user's shell: the CLI picks its own level
    quiet, verbose = (
        subprocess.run(
            [*KERASNN, *flags, "devices", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        for flags in ((), ("--verbose",))
    )
    assert quiet.returncode == verbose.returncode == 0
    assert json.loads(quiet.stdout)["physical"]
    assert not [line for line in quiet.stderr.splitlines() if STARTUP_NOISE.search(line)]
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):  # what --verbose shows on a CPU machine
        assert [line for line in verbose.stderr.splitlines() if STARTUP_NOISE.search(line)]


def test_keras_config_loss_round_trips_into_recipe_yaml(tmp_path, capsys):
    """A Keras-serialized loss, metric and optimizer in a recipe train and are written back."""
    from kerasnn.recipe import Recipe

    path = _recipe(tmp_path, epochs=1)
    config = yaml.safe_load(path.read_text())
    config["loss"] = {
        "class_name": "SparseCategoricalCrossentropy",
        "config": {"from_logits": False},
    }
    config["metrics"] = [{"class_name": "SparseCategoricalAccuracy", "config": {"name": "acc"}}]
    config["optimizer"] = {"class_name": "Adam", "config": {"learning_rate": 0.003}}
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--quiet"]) == 0
    written = Recipe.from_yaml(out / "recipe.yaml")
    assert written.loss == config["loss"]
    assert written.metrics == config["metrics"]
    assert written.optimizer == config["optimizer"]
    assert "val_acc" in (out / "history.csv").read_text().splitlines()[0]


def test_a_dataset_that_cannot_be_downloaded_exits_1_with_its_message(
    tmp_path, capsys, monkeypatch
):
    import functools

    import kerasnn as knn

    @functools.wraps(knn.datasets.load)  # the same signature: the recipe check reads it
    def offline(**_):
        raise knn.datasets.DatasetDownloadError("mnist: not in the Keras cache and offline")

    monkeypatch.setattr(knn.datasets, "load", offline)
    out = tmp_path / "run"
    assert (
        main(["train", str(_recipe(tmp_path)), "--out", str(out), "--set", "data.name=mnist"]) == 1
    )
    assert capsys.readouterr().err == (
        "kerasnn: error: mnist: not in the Keras cache and offline\n"
    )
    assert not out.exists()


def test_existing_run_is_refused_then_overwritten(tmp_path, capsys):
    recipe = str(_recipe(tmp_path))
    out = str(tmp_path / "run")
    assert main(["train", recipe, "--out", out, "--quiet"]) == 0
    assert main(["train", recipe, "--out", out, "--quiet"]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert main(["train", recipe, "--out", out, "--quiet", "--overwrite", "--set", "seed=1"]) == 0
    assert yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["seed"] == 1


def test_nan_loss_exits_1_and_keeps_the_run(tmp_path, capsys):
    recipe = _recipe(tmp_path, epochs=20)
    code = main(
        [
            *("train", str(recipe), "--out", str(tmp_path / "run"), "--quiet"),
            *("--set", "optimizer={name: sgd, learning_rate: 100000.0}"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "the loss became nan at epoch" in err.lower() or "the loss became inf" in err.lower()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["stop_reason"] == "nan_loss"


def test_nan_loss_names_the_exact_step_and_writes_no_nan_model(tmp_path, capsys):
    """The bug report: SGD at learning rate 1000 goes NaN in the first epoch on digits."""
    recipe = str(_recipe(tmp_path, epochs=5))
    sgd = ("--set", "optimizer={name: sgd, learning_rate: 1000}")
    found = {}
    for name, extra in (("fused", ()), ("single", ("--set", "fit.steps_per_execution=1"))):
        out = tmp_path / name
        assert main(["train", recipe, "--out", str(out), "--quiet", *sgd, *extra]) == 1
        err = capsys.readouterr().err
        text = (out / "metrics.json").read_text()
        metrics = json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
        where, value = metrics["non_finite_loss"], metrics["non_finite"]["/non_finite_loss/loss"]
        assert (
            f"the loss became {value} at epoch 1, step {where['step']} of {where['steps']} "
            f"(optimizer step {where['global_step']}): the first step whose batch loss"
        ) in err
        assert "No epoch ended with a finite loss, so no trained weights were kept" in err
        assert "best weights" not in err
        assert metrics["kept_weights"] == "initial" and not (out / "model.keras").exists()
        found[name] = (where["step"], metrics["steps_per_execution"])
    (fused_step, fused_spe), (single_step, single_spe) = found["fused"], found["single"]
    assert fused_spe > 1 and single_spe == 1
    assert fused_step == single_step < fused_spe  # not the execution's last step
