"""`kerasnn search` end to end: help, a real SIGKILL then --resume, chief + two workers."""

import csv
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import communicate_all, kill_when, subprocess_env

from kerasnn.cli import main

KERASNN = [sys.executable, "-m", "kerasnn"]
SPACE = {
    "model.depth": {"int": [1, 2]},
    "model.units": {"choice": [8, 16, 32]},
    "optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
    "optimizer.momentum": {"uniform": [0.5, 0.95], "when": {"optimizer.name": ["momentum"]}},
    "optimizer.learning_rate": {"log_uniform": [1e-3, 1e-1]},
}


def _env():
    env = subprocess_env()
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(name, None)
    return env


def _recipe(tmp_path, **fit):
    config = {
        "name": "cli_search",
        "data": {"name": "iris"},
        "model": {"hidden": [8]},
        "fit": {"epochs": 2, **fit},
        "search": {"trials": 4, "space": SPACE},
    }
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def _started(out: Path) -> list[str]:
    return [
        json.loads(line)["trial_id"]
        for log in sorted((out / "tuner").glob("runs-*.jsonl"))
        for line in log.read_text().splitlines()
    ]


def test_help_lists_search_and_its_flags(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    flags = ("--trials", "--resume", "--grid", "--chief", "--worker", "--oracle", "--out")
    for flag in (*flags, "--ensemble"):
        assert flag in out


def test_bad_search_input_exits_2(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    code = main(["search", recipe, "--out", str(tmp_path / "s"), "--set", "search.trials=0"])
    assert code == 2
    assert "search.trials, expected a positive integer" in capsys.readouterr().err
    code = main(["search", recipe, "--worker", "1", "--oracle", "nowhere"])
    assert code == 2
    assert "argument --oracle, expected HOST:PORT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # the parser refuses it (search() does too)
        main(["search", recipe, "--out", str(tmp_path / "s"), "--ensemble", "0"])
    assert exit_info.value.code == 2
    assert "argument --ensemble: expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_grid_baseline_uses_the_same_budget(tmp_path, capsys):
    space = {"optimizer.name": {"choice": ["sgd", "adam"]}, "model.dropout": {"choice": [0.0, 0.2]}}
    config = yaml.safe_load(Path(_recipe(tmp_path)).read_text())
    config["search"]["space"] = space
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "grid"
    args = ["search", str(tmp_path / "grid.yaml"), "--grid", "--trials", "3", "--out", str(out)]
    assert main([*args, "--quiet", "--ensemble", "2"]) == 0
    rows = _rows(out)
    # The grid walks the 4 combinations from the defaults on: the budget of 3 covers 3.
    pairs = [(r["optimizer.name"], r["model.dropout"]) for r in rows]
    assert pairs[0] == ("sgd", "0.0") and len(set(pairs)) == 3
    assert set(pairs) < {(o, d) for o in ("sgd", "adam") for d in ("0.0", "0.2")}
    assert json.loads((out / "search.json").read_text())["kind"] == "grid"
    printed = capsys.readouterr().out
    assert "3 trials completed, 0 failed" in printed
    assert "averaged with the next 1 best" in printed  # --ensemble 2
    best = json.loads((out / "best.json").read_text())
    assert best["ensemble"] == 2
    # Trials are numbered from 1, as KerasTuner's "Trial #N": the table, best.json, the line.
    assert [r["trial"] for r in rows] == ["1", "2", "3"]
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    assert best["trial"] == int(best["trial_id"]) + 1
    assert f"; best trial {best['trial']} val_accuracy " in printed


def _completed_files(out: Path) -> dict[str, str]:
    found = {}
    for path in (out / "tuner").glob("trial_*/kerasnn.json"):
        text = path.read_text()
        if '"COMPLETED"' in text:
            found[path.parent.name] = text
    return found


@pytest.mark.slow
def test_sigkill_mid_search_then_resume(tmp_path):
    """A real SIGKILL during the second trial, then `--resume`: the finished trial is kept as
    it was, the interrupted one is run again, and the table ends complete and parseable."""
    # Tiny batches without fused steps make a trial last long enough to be killed inside it.
    recipe = _recipe(tmp_path, epochs=3, batch_size=2, steps_per_execution=1)
    out = tmp_path / "killed"
    cmd = [*KERASNN, "search", recipe, "--out", str(out), "--quiet"]
    kill_when(
        cmd,
        lambda: len(_completed_files(out)) >= 1 and len(_started(out)) >= 2,
        what="the second trial's start (the first one finished)",
        timeout=180,
        settle=0.3,
        env=_env(),
    )
    finished = _completed_files(out)
    assert 1 <= len(finished) < 4
    rows = _rows(out)  # the table written before the kill is whole
    assert [r["status"] for r in rows].count("COMPLETED") == len(finished)

    resumed = subprocess.run(
        [*cmd, "--resume"], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "4 trials completed, 0 failed" in resumed.stdout
    after = _completed_files(out)
    assert sorted(after) == ["trial_0", "trial_1", "trial_2", "trial_3"]
    assert {k: after[k] for k in finished} == finished  # not run again
    started = _started(out)
    for trial in finished:
        assert started.count(trial.removeprefix("trial_")) == 1
    assert sorted(set(started)) == ["0", "1", "2", "3"]
    rows = _rows(out)
    assert [r["trial_id"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["trial"] for r in rows] == ["1", "2", "3", "4"]
    assert all(r["status"] == "COMPLETED" and float(r["val_accuracy"]) >= 0 for r in rows)
    assert (out / "best.keras").exists() and (out / "results.png").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_share_the_trials(tmp_path):
    """One chief and two workers on 127.0.0.1 finish N trials with no trial run twice."""
    recipe = _recipe(tmp_path)
    out = tmp_path / "dist"
    oracle = f"127.0.0.1:{_free_port()}"
    base = [*KERASNN, "search", recipe, "--out", str(out), "--quiet", "--oracle", oracle]
    roles = [["--chief"], ["--worker", "1"], ["--worker", "2"]]
    procs = []
    for role in roles:
        procs.append(
            subprocess.Popen(
                [*base, *role],
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        if role == ["--chief"]:
            time.sleep(1.0)  # workers wait for the chief anyway (gRPC wait_for_ready)
    results = communicate_all(procs)
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    started = _started(out)
    assert sorted(started) == ["0", "1", "2", "3"]  # every trial ran exactly once
    logs = sorted(p.name for p in (out / "tuner").glob("runs-*.jsonl"))
    assert set(logs) <= {"runs-tuner-1.jsonl", "runs-tuner-2.jsonl"}  # the chief runs none
    rows = _rows(out)
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" for r in rows)
    assert {r["tuner_id"] for r in rows} <= {"tuner-1", "tuner-2"}
    configs = {
        tuple(v for k, v in r.items() if k.startswith(("model.", "optimizer."))) for r in rows
    }
    assert len(configs) == 4
    assert "4 trials completed" in results[0][0]
    assert (out / "best.keras").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tuner", "annealing"], "argument --tuner: invalid choice: 'annealing' (choose from"),
        (["--time-budget", "0"], "argument --time-budget"),
        (["--time-budget", "-5"], "argument --time-budget"),
        (["--cv", "1"], "argument --cv: expected an integer K >= 2 (folds). Received: '1'"),
    ],
)
def test_bad_tuner_budget_or_folds_exit_2(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", _recipe(tmp_path), "--out", str(tmp_path / "s"), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if flags[0] == "--tuner":
        assert "'random', 'grid', 'hyperband', 'bayesian'" in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "block, message",
    [
        ({"tuner": "annealing"}, r"search\.tuner, expected one of 'bayesian', 'grid'"),
        ({"time_budget": 0}, r"search\.time_budget, expected a number of seconds > 0"),
        ({"cv": 1}, r"search\.cv, expected an integer K >= 2"),
        ({"tuner": "hyperband", "refine": True}, r"refine, expected it with tuner 'random'"),
        ({"refine": {"tops": 3}}, r"Unknown recipe key search\.refine\.tops"),
        ({"hyperband": {"factor": 1}}, r"search\.hyperband\.factor, expected an integer >= 2"),
        ({"retrain": "no"}, r"search\.retrain, expected true or false. Received: retrain='no'"),
    ],
)
def test_bad_search_block_settings_exit_2(tmp_path, capsys, block, message):
    config = yaml.safe_load(Path(_recipe(tmp_path)).read_text())
    config["search"] |= block
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["search", str(path), "--out", str(tmp_path / "s")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "s").exists()
