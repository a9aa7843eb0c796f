"""An experiment's results: one run folder per variant, summary.csv / summary.json, the table."""

import csv
import json

import pytest
import yaml
from helpers import TINY_EXPERIMENT, assert_png

from kerasnn.compare import Experiment


def test_run_writes_runs_table_and_figure(tmp_path):
    out = tmp_path / "out"
    lines = []
    result = Experiment.from_dict(TINY_EXPERIMENT).run(out, log=lines.append)
    assert [r.name for r in result.results] == ["sgd", "adam"]
    assert len(lines) == 2 and lines[0].startswith("kerasnn: [1/2] sgd: test accuracy")
    for name in ("sgd", "adam"):
        assert (out / name / "metrics.json").exists()
        ran = yaml.safe_load((out / name / "recipe.yaml").read_text())
        assert ran["name"] == f"tiny-{name}"
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    table = json.loads((out / "summary.json").read_text())
    assert [r["variant"] for r in rows] == [r["variant"] for r in table] == ["sgd", "adam"]
    for row, variant in zip(table, result.results, strict=True):
        metrics = json.loads((out / variant.name / "metrics.json").read_text())
        assert row["epochs"] == 3 == len(variant.history["loss"])
        assert row["final_loss"] == pytest.approx(variant.history["loss"][-1])
        assert row["final_val_accuracy"] == pytest.approx(variant.history["val_accuracy"][-1])
        assert row["final_gap"] == pytest.approx(row["final_val_loss"] - row["final_loss"])
        assert row["test_accuracy"] == pytest.approx(metrics["test_metrics"]["accuracy"])
        assert row["wall_time_s"] > 0
    # The two variants really trained differently.
    assert table[0]["final_loss"] != table[1]["final_loss"]
    assert result.figures == {"curves": out / "comparison.png"}
    assert_png(out / "comparison.png")
    assert Experiment.from_yaml(out / "experiment.yaml").config == result.experiment.config
    assert "variant" in result.summary() and "sgd" in result.summary()
