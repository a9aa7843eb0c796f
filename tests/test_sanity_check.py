"""sanity_check on sane and broken models, and `kerasnn train --sanity`."""

import json
import math

import keras
import numpy as np
import pytest
from helpers import assert_png, write_recipe

import kerasnn as knn
from kerasnn.cli import main
from kerasnn.diagnostics import sanity_check


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _mlp(data, lr=1e-3, **kwargs):
    keras.utils.set_random_seed(0)
    return knn.compile(knn.models.mlp(data, hidden=[64], **kwargs), "adam", learning_rate=lr)


def test_sanity_check_passes_on_a_sane_model_and_restores_it(digits, tmp_path):
    model = _mlp(digits, l2=1e-3)
    before = [v.numpy().copy() for v in model.variables]
    report = sanity_check(model, digits, out_dir=tmp_path)
    assert report.passed, report.summary()
    names = [c.name for c in report.checks]
    assert names == ["initial loss ≈ ln(C)", "regularization raises the loss", "overfit 20 samples"]
    initial = report.checks[0]
    assert abs(initial.value - math.log(10)) <= 0.25 * math.log(10)
    assert report.checks[1].value > initial.value  # the model's own L2 raises it
    assert report.checks[2].value == 1.0
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.variables, strict=True))
    assert model.trainable_variables[0].regularizer is not None  # put back
    saved = json.loads((tmp_path / "sanity.json").read_text())
    assert saved["passed"] is True
    assert_png(tmp_path / "sanity_overfit.png")


def test_sanity_check_fails_with_a_learning_rate_of_10(digits):
    report = sanity_check(_mlp(digits, lr=10.0), digits, max_epochs=40)
    assert not report.passed
    assert [c.passed for c in report.checks] == [True, True, False]
    assert report.summary().splitlines()[-1].startswith("FAIL  overfit 20 samples")


def test_sanity_check_fails_on_a_badly_scaled_output(digits):
    """Huge output weights: the network starts out confidently wrong, loss far above ln 10."""
    model = _mlp(digits)
    out = model.get_layer("output_dense")
    out.kernel.assign(out.kernel * 50.0)
    report = sanity_check(model, digits, max_epochs=5)
    assert not report.checks[0].passed and report.checks[0].value > 2 * math.log(10)


def test_sanity_check_bad_arguments(digits):
    with pytest.raises(ValueError, match="argument num_samples, expected a positive integer"):
        sanity_check(_mlp(digits), digits, num_samples=0)
    with pytest.raises(ValueError, match="argument regularization, expected a number > 0"):
        sanity_check(_mlp(digits), digits, regularization=-1)


def _recipe(tmp_path, **fit):
    return write_recipe(tmp_path, name="cli4", hidden=[32], epochs=2, **fit)


def test_cli_train_sanity_and_recipe_callbacks(tmp_path, capsys):
    recipe = _recipe(
        tmp_path,
        callbacks=[{"grad_norms": {"every_n_steps": 20}}],
        lr_schedule={"step": {"factor": 0.5, "every": 1}},
    )
    code = main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet", "--sanity"])
    assert code == 0
    out = capsys.readouterr().out
    assert "PASS  overfit 20 samples" in out
    run = tmp_path / "run"
    assert {"sanity.json", "sanity_overfit.png", "grad_norms.png", "lr.png"} <= {
        p.name for p in run.iterdir()
    }
    code = main(
        [
            "train",
            str(recipe),
            "--out",
            str(tmp_path / "bad"),
            "--quiet",
            "--sanity",
            "--set",
            "optimizer.learning_rate=10",
        ]
    )
    assert code == 1
    assert not (tmp_path / "bad" / "model.keras").exists()
    assert json.loads((tmp_path / "bad" / "sanity.json").read_text())["passed"] is False


def test_sanity_check_binary_expects_ln_2():
    data = knn.datasets.load("breast_cancer", seed=0)
    report = sanity_check(_mlp(data, lr=1e-2), data)
    assert report.passed, report.summary()
    assert "ln(2) = 0.6931" in report.checks[0].detail
