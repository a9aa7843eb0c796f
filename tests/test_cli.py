"""The `kerasnn` command: help, train, bad input, NaN stops (kill and resume: test_resume.py)."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from helpers import subprocess_env

from kerasnn.cli import main

ROOT = Path(__file__).resolve().parents[1]
KERASNN = [sys.executable, "-m", "kerasnn"]


_env = subprocess_env


def _recipe(tmp_path, **fit):
    config = {
        "name": "cli",
        "data": {"name": "digits"},
        "model": {"hidden": [64]},
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "fit": {"epochs": 3, **fit},
    }
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


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
        (["--set", "optimizer=adamm"], "argument optimizer, expected one of"),
        (["--set", "data.name=nope"], "digits"),
        (["--set", "fit.batch_size=-2"], "argument fit.batch_size"),
        (["--set", "modle.hidden=[3]"], "Unknown recipe key 'modle'"),
    ],
)
def test_bad_input_exits_2_with_message(tmp_path, capsys, args, match):
    code = main(["train", str(_recipe(tmp_path)), "--out", str(tmp_path / "run"), *args])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


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
