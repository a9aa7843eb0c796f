"""Experiments: variants and grids from a base recipe, validated before training; finished
variants refused, reused or overwritten; an interrupted variant resumed.
"""

import keras
import numpy as np
import pytest
import yaml
from helpers import TINY_BASE, TINY_EXPERIMENT

from kerasnn.compare import Experiment
from kerasnn.recipe import Recipe


def test_variants_apply_overrides_in_order():
    exp = Experiment.from_dict(TINY_EXPERIMENT).with_overrides(
        ["fit.epochs=2", "model.dropout=0.1"]
    )
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
    exp = Experiment.from_dict({"base": TINY_BASE, "variants": {"v": values}})
    recipe = exp.variants[0].recipe
    assert recipe.model["hidden"] == [] and recipe.data["name"] == "wine"
    assert recipe.optimizer["learning_rate"] == 1e-4


def test_grid_is_the_product_of_its_axes():
    exp = Experiment.from_dict(
        {
            "base": TINY_BASE,
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
    Recipe.from_dict(TINY_BASE).to_yaml(tmp_path / "sub" / "base.yaml")
    other = {**TINY_BASE, "model": {"hidden": [5]}}
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
        (
            {**TINY_EXPERIMENT, "variantz": {}},
            r"^Unknown recipe key variantz\. Did you mean 'variants'\? Allowed keys at the top "
            r"level: base, description, figures, grid, name, overrides, variants\.$",
        ),
        ({"base": TINY_BASE}, r"exactly one of 'variants'"),
        ({**TINY_EXPERIMENT, "grid": {"a": {"b": {}}}}, r"exactly one of 'variants'"),
        ({"base": TINY_BASE, "variants": {}}, r"key variants, expected a non-empty mapping"),
        ({"base": TINY_BASE, "variants": {"a/b": {}}}, r"invalid value for a variant name"),
        ({"variants": {"a": {}}}, r"Variant 'a' has no recipe"),
        (
            {"base": TINY_BASE, "variants": {"a": {"model.hiden": [2]}}},
            r"^In variant 'a' of 'experiment': Unknown recipe key model\.hiden\. Did you mean "
            r"'hidden'\? Allowed keys in model: ",
        ),
        (
            {"base": TINY_BASE, "variants": {"a": {"fit.epochs": 0}}},
            r"In variant 'a'.*fit.epochs, expected a positive integer",
        ),
        ({**TINY_EXPERIMENT, "figures": ["curvez"]}, r"key figures, expected names from curves"),
        ({"base": TINY_BASE, "variants": {"a": 3}}, r"key variants.a, expected a mapping"),
        ({"base": TINY_BASE, "variants": None}, r"key variants, expected a non-empty"),
    ],
)
def test_bad_experiments_fail_before_training(config, match):
    with pytest.raises(ValueError, match=match):
        Experiment.from_dict(config)


def test_finished_variants_are_refused_reused_or_overwritten(tmp_path):
    out = tmp_path / "out"
    exp = Experiment.from_dict(TINY_EXPERIMENT).with_overrides(["fit.epochs=1"])
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

    exp = Experiment.from_dict(TINY_EXPERIMENT).with_overrides(["fit.epochs=4"])
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
