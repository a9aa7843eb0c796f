"""`kerasnn lr-find`: the plot and the suggested rates, and a bad range refused (exit 2)."""

import json

from helpers import assert_png, write_recipe

from kerasnn.cli import main


def _recipe(tmp_path, **fit):
    return write_recipe(tmp_path, name="cli4", hidden=[32], epochs=2, **fit)


def test_cli_lr_find_writes_plot_and_suggestions(tmp_path, capsys):
    out = tmp_path / "lrf"
    code = main(
        [
            "lr-find",
            str(_recipe(tmp_path)),
            "--out",
            str(out),
            "--num-steps",
            "40",
            "--min-lr",
            "1e-5",
            "--max-lr",
            "1",
        ]
    )
    assert code == 0
    assert "suggested learning rate" in capsys.readouterr().out
    saved = json.loads((out / "lr_find.json").read_text())
    assert set(saved["suggestions"]) == {"valley", "steepest", "minimum/10"}
    assert_png(out / "lr_find.png")
    code = main(
        [
            "lr-find",
            str(_recipe(tmp_path)),
            "--out",
            str(tmp_path / "x"),
            "--min-lr",
            "1",
            "--max-lr",
            "0.1",
        ]
    )
    assert code == 2
    assert "--max-lr, expected a rate above --min-lr. Received: --min-lr=1.0, --max-lr=0.1" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()
