"""sanity_check on sane and broken models; the plots; run-folder figures; CLI lr-find/--sanity."""

import json
import math

import keras
import numpy as np
import pytest
import yaml

import kerasnn as knn
from kerasnn import plots
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
    assert saved["passed"] is True and (tmp_path / "sanity_overfit.png").stat().st_size > 1000


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


def _png_ok(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_plots_are_written_and_not_empty(digits, tmp_path):
    history = {
        "loss": [1.0, 0.6, 0.4, 0.3],
        "val_loss": [1.1, 0.8, 0.7, 0.75],
        "accuracy": [0.5, 0.7, 0.8, 0.9],
        "val_accuracy": [0.45, 0.6, 0.7, 0.68],
        "learning_rate": [0.1, 0.1, 0.05, 0.05],
        "grad_norm": [3.0, 2.0, 1.5, 1.0],
        "grad_norm/dense": [2.0, 1.5, 1.0, 0.8],
        "act_mean/dense_act": [0.1, 0.2, 0.3, 0.3],
    }
    fig = plots.plot_history(history, path=tmp_path / "history.png")
    assert len(fig.axes) == 2  # loss and accuracy; lr, norms, activation stats left out
    plots.plot_lr(history, path=tmp_path / "lr.png")
    plots.plot_lr(schedule=knn.schedules.OneCycle(0.1, 100), steps=100, path=tmp_path / "oc.png")
    plots.plot_grad_norms(history, path=tmp_path / "grad_norms.png")
    stats = knn.callbacks.ActivationStats(probe=digits.x_train[:50], bins=8)
    model = _mlp(digits)
    model.fit(digits.x_train, digits.y_train, epochs=2, verbose=0, callbacks=[stats])
    plots.plot_activation_stats(stats, path=tmp_path / "act.png")
    result = knn.lr_find(_mlp(digits), digits, num_steps=30, min_lr=1e-5, max_lr=1.0)
    plots.plot_lr_find(result, path=tmp_path / "lr_find.png")
    for name in ("history", "lr", "oc", "grad_norms", "act", "lr_find"):
        assert _png_ok(tmp_path / f"{name}.png"), name
    with pytest.raises(ValueError, match="expected a history with 'learning_rate'"):
        plots.plot_lr({"loss": [1.0]})


def test_run_folder_gets_the_figures_and_csv_logger_sees_the_new_logs(digits, tmp_path):
    csv = tmp_path / "keras.csv"
    result = knn.fit(
        _mlp(digits),
        digits,
        epochs=2,
        verbose=0,
        run_dir=tmp_path / "run",
        callbacks=[
            "activation_stats",
            {"gradient_norms": {"every_n_steps": 10}},
            {"csv_logger": {"filename": str(csv)}},
        ],
        lr_schedule={"exponential": {"k": 0.5}},
    )
    for name in ("history", "lr", "grad_norms", "activation_stats"):
        assert _png_ok(tmp_path / "run" / f"{name}.png"), name
    header = csv.read_text().splitlines()[0].split(",")
    for key in ("learning_rate", "grad_norm", "grad_norm/dense_1", "act_mean/dense_1_act"):
        assert key in header
    assert result.history["learning_rate"] == pytest.approx([1e-3, 1e-3 * math.exp(-0.5)])


def _recipe(tmp_path, **fit):
    config = {
        "name": "cli4",
        "data": {"name": "digits"},
        "model": {"hidden": [32]},
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "fit": {"epochs": 2, **fit},
    }
    path = tmp_path / "cli4.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


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
    assert _png_ok(out / "lr_find.png")
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
    assert "expected a rate above min_lr=1.0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


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
