"""Resume is exact: seeded layers (Dropout, AlphaDropout, noise, augmentation) resume their
random-generator state, and --resume refuses a recipe other than the interrupted run's."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from helpers import kill_when, subprocess_env

import kerasnn as knn
from kerasnn.callbacks import read_history_csv

ROOT = Path(__file__).resolve().parents[1]
KERASNN = [sys.executable, "-m", "kerasnn"]
# Metrics that differ between two runs of the same recipe by nature.
_PER_RUN = ("wall_time", "run_dir")


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch: int) -> None:
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def _seeded_model(data: knn.Dataset) -> keras.Model:
    """Every kind of seeded layer kerasnn builds: augmentation (shift + noise), SELU's
    AlphaDropout, and a Dropout of the second block."""
    model = knn.models.mlp(
        data, hidden=[32, 32], activation="selu", dropout=0.3, augment="shift_noise", seed=0
    )
    return knn.compile(model, "adam", learning_rate=3e-3)


def test_resume_after_crash_repeats_dropout_noise_and_augmentation_exactly(tmp_path):
    data = knn.datasets.load("digits", n_samples=400)
    kwargs = dict(epochs=6, early_stopping=False, verbose=0, steps_per_execution=4)
    straight = knn.fit(_seeded_model(data), data, run_dir=tmp_path / "a", **kwargs)
    kinds = {type(layer).__name__ for layer in _seeded_model(data).layers}
    assert {"AlphaDropout", "GaussianNoise", "RandomTranslation"} <= kinds

    with pytest.raises(KeyboardInterrupt):
        knn.fit(_seeded_model(data), data, run_dir=tmp_path / "b", callbacks=[_Crash(3)], **kwargs)
    assert len(read_history_csv(tmp_path / "b.partial" / "history.csv")) == 3
    resumed = knn.fit(_seeded_model(data), data, run_dir=tmp_path / "b", resume=True, **kwargs)
    # Bit for bit: the same dropout masks, noise and shifts after the resume point.
    assert (tmp_path / "a" / "history.csv").read_text() == (
        tmp_path / "b" / "history.csv"
    ).read_text()
    assert resumed.test_metrics == straight.test_metrics


def _metrics(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in _PER_RUN}


@pytest.mark.slow
def test_sigkill_the_bundled_recipe_then_resume_matches_an_uninterrupted_run(tmp_path):
    """`kerasnn train recipes/digits_mlp.yaml` (its dropout included), kill -9 mid-run, then
    `--resume`: history.csv and metrics.json are those of the uninterrupted run. Resuming with
    another seed is refused, naming the key."""
    recipe = str(ROOT / "recipes" / "digits_mlp.yaml")
    # Small unfused steps make an epoch slow enough to kill in the middle of the run.
    overrides = ["fit.epochs=8", "fit.batch_size=8", "fit.steps_per_execution=1"]
    sets = [arg for o in overrides for arg in ("--set", o)]

    def train(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*KERASNN, "train", recipe, "--out", str(out), "--quiet", *sets, *extra],
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    straight = train(tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr

    out = tmp_path / "killed"
    history = tmp_path / "killed.partial" / "history.csv"
    kill_when(
        [*KERASNN, "train", recipe, "--out", str(out), "--quiet", *sets],
        lambda: history.exists() and len(read_history_csv(history)) >= 3,
        what="the third epoch's end",
        settle=0.1,  # land inside the next epoch
    )
    done = len(read_history_csv(history))
    assert 3 <= done < 8

    refused = train(out, "--resume", "--set", "seed=7")
    assert refused.returncode == 2
    assert "the recipe differs from the one the interrupted run started with" in refused.stderr
    assert "seed: 0 -> 7" in refused.stderr
    assert len(read_history_csv(history)) == done  # nothing ran, nothing was lost

    resumed = train(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "history.csv").read_text() == (tmp_path / "straight" / "history.csv").read_text()
    assert _metrics(out) == {**_metrics(tmp_path / "straight")}
    assert not (tmp_path / "killed.partial").exists()


def test_resume_with_a_changed_recipe_is_refused_before_anything_runs(tmp_path):
    recipe = knn.Recipe.from_dict(
        {"name": "r", "data": {"name": "iris"}, "model": {"hidden": [4]}, "fit": {"epochs": 2}}
    )
    # What an interrupted run leaves: its staging folder, the recipe it ran and a backup.
    staging = knn.runs.RunFolder(tmp_path / "run").staging
    (staging / "backup").mkdir(parents=True)
    (staging / "recipe.yaml").write_text(recipe.resolved().to_yaml())
    changed = recipe.with_overrides(["fit.epochs=5", "model.hidden=[8]"])
    expected = r"in 2 key\(s\): model.hidden: \[4\] -> \[8\]; fit.epochs: 2 -> 5\. Resume"
    with pytest.raises(ValueError, match=expected):
        changed.run(tmp_path / "run", resume=True, verbose=0)
    assert sorted(p.name for p in staging.iterdir()) == ["backup", "recipe.yaml"]
    assert (staging / "recipe.yaml").read_text() == recipe.resolved().to_yaml()
