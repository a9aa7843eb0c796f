"""`kerasnn compare`: several recipes compared, bad input (exit 2), the help text."""

import json

import pytest
import yaml
from helpers import TINY_BASE, TINY_EXPERIMENT

from kerasnn.cli import main
from kerasnn.recipe import Recipe


def test_cli_compare_several_recipes(tmp_path, capsys):
    paths = []
    for name, hidden in (("small", [2]), ("wide", [16])):
        path = tmp_path / f"{name}.yaml"
        Recipe.from_dict({**TINY_BASE, "name": name, "model": {"hidden": hidden}}).to_yaml(path)
        paths.append(str(path))
    out = tmp_path / "cmp"
    code = main(["compare", *paths, "--out", str(out), "--set", "fit.epochs=2", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "small" in printed and "wide" in printed and "summary.csv" in printed
    table = json.loads((out / "summary.json").read_text())
    assert [r["variant"] for r in table] == ["small", "wide"]
    assert [r["epochs"] for r in table] == [2, 2]
    assert (out / "comparison.png").exists()


def test_cli_compare_bad_input_exits_2(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(TINY_EXPERIMENT))
    assert main(["compare", str(path), "--set", "fit.epoch=2"]) == 2
    err = capsys.readouterr().err
    assert (
        "In variant 'adam' of 'tiny': Unknown recipe key fit.epoch. Did you mean 'epochs'?" in err
    )
    assert main(["compare", str(tmp_path / "missing.yaml")]) == 2


def test_cli_compare_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--set", "--out", "--resume", "--overwrite", "--quiet", "--name"):
        assert flag in out
