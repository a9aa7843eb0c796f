"""`kerasnn compare`: experiments of variants, summary tables, figures, resume, bad input."""

import csv
import json
from pathlib import Path

import keras
import matplotlib.image
import numpy as np
import pytest
import yaml

from kerasnn.cli import main
from kerasnn.compare import Experiment
from kerasnn.recipe import Recipe

BASE = {
    "name": "tiny",
    "data": {"name": "iris"},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "fit": {"epochs": 3, "early_stopping": False},
}
TINY = {
    "name": "tiny",
    "base": BASE,
    "variants": {
        "sgd": {"optimizer": {"name": "sgd", "learning_rate": 0.1}},
        "adam": {"optimizer.learning_rate": 0.03, "model.hidden": [4]},
    },
}


def _png_has_content(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert np.asarray(image[..., :3]).std() > 0.05  # not a blank canvas


def test_variants_apply_overrides_in_order():
    exp = Experiment.from_dict(TINY).with_overrides(["fit.epochs=2", "model.dropout=0.1"])
    sgd, adam = exp.variants
    assert [v.name for v in exp.variants] == ["sgd", "adam"]
    assert sgd.recipe.optimizer == {"name": "sgd", "learning_rate": 0.1}
    assert sgd.recipe.name == "tiny-sgd"
    assert adam.recipe.optimizer == {"name": "adam", "learning_rate": 0.03}
    assert adam.recipe.model["hidden"] == [4] and sgd.recipe.model["hidden"] == [8]
    for variant in exp.variants:  # command-line overrides reach every variant, last
        assert variant.recipe.fit["epochs"] == 2
        assert variant.recipe.model["dropout"] == 0.1


def test_overrides_keep_values_exactly():
    values = {"model.hidden": [], "optimizer.learning_rate": 1e-4, "data.name": "wine"}
    exp = Experiment.from_dict({"base": BASE, "variants": {"v": values}})
    recipe = exp.variants[0].recipe
    assert recipe.model["hidden"] == [] and recipe.data["name"] == "wine"
    assert recipe.optimizer["learning_rate"] == 1e-4


def test_grid_is_the_product_of_its_axes():
    exp = Experiment.from_dict(
        {
            "base": BASE,
            "grid": {
                "opt": {"sgd": {"optimizer.name": "sgd"}, "adam": {}},
                "width": {"w2": {"model.hidden": [2]}, "w3": {"model.hidden": [3]}},
            },
        }
    )
    assert [v.name for v in exp.variants] == ["sgd-w2", "sgd-w3", "adam-w2", "adam-w3"]
    assert exp.axes == {"opt": ["sgd", "adam"], "width": ["w2", "w3"]}
    assert exp.variants[1].levels == {"opt": "sgd", "width": "w3"}
    assert exp.variants[1].recipe.model["hidden"] == [3]
    assert exp.variants[1].recipe.optimizer["name"] == "sgd"


def test_variant_recipe_paths_are_relative_to_the_experiment(tmp_path):
    (tmp_path / "sub").mkdir()
    Recipe.from_dict(BASE).to_yaml(tmp_path / "sub" / "base.yaml")
    other = {**BASE, "model": {"hidden": [5]}}
    Recipe.from_dict(other).to_yaml(tmp_path / "other.yaml")
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump(
            {"base": "sub/base.yaml", "variants": {"a": {}, "b": {"recipe": "other.yaml"}}}
        )
    )
    exp = Experiment.from_yaml(path)
    assert exp.name == "exp"
    assert [v.recipe.model["hidden"] for v in exp.variants] == [[8], [5]]
    # experiment.yaml is self-contained: recipes inlined, it loads from anywhere.
    again = Experiment.from_dict(exp.config, base_dir="/")
    assert [v.recipe.to_dict() for v in again.variants] == [
        v.recipe.to_dict() for v in exp.variants
    ]


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({**TINY, "variantz": {}}, r"Unknown recipe key 'variantz'. Did you mean 'variants'\?"),
        ({"base": BASE}, r"exactly one of 'variants'"),
        ({**TINY, "grid": {"a": {"b": {}}}}, r"exactly one of 'variants'"),
        ({"base": BASE, "variants": {}}, r"key variants, expected a non-empty mapping"),
        ({"base": BASE, "variants": {"a/b": {}}}, r"invalid value for a variant name"),
        ({"variants": {"a": {}}}, r"Variant 'a' has no recipe"),
        (
            {"base": BASE, "variants": {"a": {"model.hiden": [2]}}},
            r"In variant 'a' of 'experiment': Unknown recipe key model.'hiden'",
        ),
        (
            {"base": BASE, "variants": {"a": {"fit.epochs": 0}}},
            r"In variant 'a'.*fit.epochs, expected a positive integer",
        ),
        ({**TINY, "figures": ["curvez"]}, r"key figures, expected names from curves"),
        ({"base": BASE, "variants": {"a": 3}}, r"key variants.a, expected a mapping"),
        ({"base": BASE, "variants": None}, r"key variants, expected a non-empty"),
    ],
)
def test_bad_experiments_fail_before_training(config, match):
    with pytest.raises(ValueError, match=match):
        Experiment.from_dict(config)


def test_figures_that_cannot_be_drawn_fail_before_training(tmp_path):
    exp = Experiment.from_dict({**TINY, "figures": ["decision_boundary"]})
    with pytest.raises(ValueError, match=r"decision boundaries need 2 features"):
        exp.run(tmp_path / "out", log=None)
    exp = Experiment.from_dict({**TINY, "figures": ["grid_heatmap"]})
    with pytest.raises(ValueError, match=r"needs 'grid' with exactly 2 axes"):
        exp.run(tmp_path / "out", log=None)
    assert not (tmp_path / "out" / "sgd").exists()


def test_run_writes_runs_table_and_figure(tmp_path):
    out = tmp_path / "out"
    lines = []
    result = Experiment.from_dict(TINY).run(out, log=lines.append)
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
    _png_has_content(out / "comparison.png")
    assert Experiment.from_yaml(out / "experiment.yaml").config == result.experiment.config
    assert "variant" in result.summary() and "sgd" in result.summary()


def test_finished_variants_are_refused_reused_or_overwritten(tmp_path):
    out = tmp_path / "out"
    exp = Experiment.from_dict(TINY).with_overrides(["fit.epochs=1"])
    first = exp.run(out, log=None)
    with pytest.raises(FileExistsError, match=r"already holds a finished run"):
        exp.run(out, log=None)
    lines = []
    again = exp.run(out, resume=True, log=lines.append)
    assert all(line.endswith("(reused)") for line in lines)
    assert again.table() == first.table()
    changed = exp.with_overrides(["seed=1"])
    with pytest.raises(ValueError, match=r"finished run of a different recipe"):
        changed.run(out, resume=True, log=None)
    replaced = changed.run(out, overwrite=True, log=None)
    assert replaced.table()[0]["final_loss"] != first.table()[0]["final_loss"]


def test_cli_compare_several_recipes(tmp_path, capsys):
    paths = []
    for name, hidden in (("small", [2]), ("wide", [16])):
        path = tmp_path / f"{name}.yaml"
        Recipe.from_dict({**BASE, "name": name, "model": {"hidden": hidden}}).to_yaml(path)
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
    path.write_text(yaml.safe_dump(TINY))
    assert main(["compare", str(path), "--set", "fit.epoch=2"]) == 2
    assert "Unknown recipe key fit.'epoch'" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing.yaml")]) == 2


class _Interrupt(keras.callbacks.Callback):
    """Raises at the end of epoch `after` (0-based), as a crash would."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after:
            raise KeyboardInterrupt("simulated interruption")


def test_resume_continues_an_interrupted_variant(tmp_path):
    from kerasnn import runs, training

    exp = Experiment.from_dict(TINY).with_overrides(["fit.epochs=4"])
    reference = exp.run(tmp_path / "reference", log=None)
    # The first variant finished; the second was interrupted after its second epoch.
    out = tmp_path / "out"
    first, second = exp.variants
    first.recipe.run(out / "sgd", verbose=0)
    recipe = second.recipe.resolved()
    data, model = recipe.build()
    folder = runs.RunFolder(out / "adam").open()
    folder.write_yaml("recipe.yaml", recipe.to_dict())
    fit_kwargs = dict(recipe.fit)
    interrupted = [*(fit_kwargs.pop("callbacks", None) or []), _Interrupt(1)]
    with pytest.raises(KeyboardInterrupt):
        training.fit(
            model,
            data,
            seed=recipe.seed,
            run_dir=folder,
            callbacks=interrupted,
            verbose=0,
            **fit_kwargs,
        )
    assert not (out / "adam").exists() and folder.backup_dir.exists()
    lines = []
    resumed = exp.run(out, resume=True, log=lines.append)
    assert lines[0].endswith("(reused)") and not lines[1].endswith("(reused)")
    for got, want in zip(resumed.results, reference.results, strict=True):
        assert got.history.keys() == want.history.keys()
        for key in want.history:
            np.testing.assert_allclose(got.history[key], want.history[key], rtol=1e-5)


def test_cli_compare_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--set", "--out", "--resume", "--overwrite", "--quiet", "--name"):
        assert flag in out
