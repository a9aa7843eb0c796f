"""What a user takes away opens the way a user opens it: run-folder models in a fresh process
(plain Keras after `import kerasnn`, or Keras alone), exports that take the source's values."""

import csv

import keras
import numpy as np
import pytest
import sklearn.datasets
from helpers import run_python

import kerasnn as knn
from kerasnn import export as ex
from kerasnn.recipe.export_run import export_run_folder


def _fit_to_folder(model, data, run_dir, **kwargs):
    return knn.fit(model, data, epochs=2, verbose=0, run_dir=run_dir, **kwargs)


@pytest.mark.slow
def test_run_folder_models_open_with_plain_keras_in_a_fresh_process(tmp_path):
    data = knn.datasets.load("digits", n_samples=300)
    # kerasnn's own objects: PELU (and its MinValue constraint), Maxout, a one-cycle schedule.
    custom = knn.models.mlp(data, hidden=[16, 16], activation="pelu", seed=0)
    inputs = keras.Input(data.input_shape)
    x = knn.layers.Maxout(8, pieces=3)(custom(inputs))
    custom = knn.compile(keras.Model(inputs, keras.layers.Dense(10, "softmax")(x)), "adamw")
    _fit_to_folder(custom, data, tmp_path / "custom", lr_schedule="one_cycle")
    # Only Keras's layers, kerasnn's default (fused) optimizer.
    plain = knn.compile(knn.models.mlp(data, hidden=[16], dropout=0.2, seed=0), "adam")
    _fit_to_folder(plain, data, tmp_path / "plain")
    np.save(tmp_path / "x.npy", data.x_test)
    for name, model in (("custom", custom), ("plain", plain)):
        np.save(tmp_path / f"{name}.npy", model.predict(data.x_test, verbose=0))

    # `import kerasnn` imports nothing heavy, and registers kerasnn's objects once Keras loads.
    after_import = (
        "import sys, numpy as np\n"
        "import kerasnn\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'keras_tuner', 'matplotlib', 'sklearn')"
        " if m in sys.modules]\n"
        "assert heavy == [], heavy\n"
        "import keras\n"
        "names = ['PELU', 'Maxout', 'MaxoutChannels', 'MinValue', 'OneCycle', 'FusedAdam']\n"
        "get = keras.saving.get_registered_object\n"
        "missing = [n for n in names if get('kerasnn>' + n) is None]\n"
        "assert missing == [], missing\n"
        "m = keras.saving.load_model(sys.argv[1] + '/custom/model.keras')\n"
        "p = m.predict(np.load(sys.argv[1] + '/x.npy'), verbose=0)\n"
        "np.testing.assert_array_equal(p, np.load(sys.argv[1] + '/custom.npy'))\n"
        "schedule = m.optimizer.get_config()['learning_rate']['class_name']\n"
        "print(type(m.optimizer).__name__, schedule)\n"
    )
    assert run_python(after_import, str(tmp_path)).split()[-2:] == ["AdamW", "OneCycle"]
    keras_alone = (
        "import sys, numpy as np, keras\n"
        "m = keras.saving.load_model(sys.argv[1] + '/plain/model.keras')\n"
        "assert not [k for k in sys.modules if k.startswith('kerasnn')], 'kerasnn imported'\n"
        "p = m.predict(np.load(sys.argv[1] + '/x.npy'), verbose=0)\n"
        "np.testing.assert_array_equal(p, np.load(sys.argv[1] + '/plain.npy'))\n"
        "print(type(m.optimizer).__module__, type(m.optimizer).__name__)\n"
    )
    out = run_python(keras_alone, str(tmp_path), kerasnn_on_path=False)
    assert out.split()[-1] == "Adam" and out.split()[-2].startswith("keras")


def test_keras_format_export_with_preprocessing_of_a_model_compiled_in_memory(tmp_path):
    data = knn.datasets.load("iris")
    model = knn.compile(knn.models.mlp(data, hidden=[8], seed=0), "adam", learning_rate=0.01)
    knn.fit(model, data, epochs=2, verbose=0)
    result = ex.export(
        model, tmp_path / "m.keras", format="keras", preprocessing=data.input_transform
    )
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-5
    raw = sklearn.datasets.load_iris().data.astype("float32")
    np.testing.assert_allclose(
        ex.load(tmp_path / "m.keras").predict(raw),
        model.predict(data.input_transform.transform(raw), verbose=0),
        atol=1e-5,
    )


def _source_accuracy_in_fresh_process(artifact, x, y, tmp_path) -> float:
    """Accuracy of a SavedModel on `x` (the source's values), from plain TensorFlow."""
    np.save(tmp_path / "source_x.npy", x.astype("float32"))
    np.save(tmp_path / "source_y.npy", y)
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "x, y = np.load(sys.argv[2] + '/source_x.npy'), np.load(sys.argv[2] + '/source_y.npy')\n"
        "p = m.serve(tf.constant(x)).numpy()\n"
        "np.save(sys.argv[2] + '/source_p.npy', p)\n"
        "print(float(np.mean(p.argmax(1) == y)))\n"
    )
    return float(run_python(code, str(artifact), str(tmp_path), kerasnn_on_path=False).split()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("view", ["image"])  # flat: tests/test_export_run.py's CLI test
def test_digits_export_takes_the_source_pixels(tmp_path, view):
    """From a run folder: the artifact takes load_digits().data (0-16, 64 values per image,
    whatever view the model trained on) and scores what the model scores on its inputs."""
    builder = {"flat": {"hidden": [32]}, "image": {"builder": "cnn", "filters": [8], "dense": []}}
    recipe = knn.Recipe.from_dict(
        {
            "name": "digits",
            "data": {"name": "digits", "view": view},
            "model": builder[view],
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "fit": {"epochs": 3},
        }
    )
    run = recipe.run(tmp_path / "run", verbose=0)
    result = export_run_folder(run.run_dir, tmp_path / "sm")
    assert result.input_shape == (None, 64)
    assert (
        result.preprocessing
        == {
            "flat": "Rescaling+Normalization",
            "image": "Reshape+Rescaling+Normalization",
        }[view]
    )
    digits = sklearn.datasets.load_digits()
    accuracy = _source_accuracy_in_fresh_process(
        tmp_path / "sm", digits.data, digits.target, tmp_path
    )
    data = knn.datasets.load("digits", view=view)
    trained = keras.saving.load_model(run.run_dir / "model.keras")
    inputs = data.input_transform.transform(digits.data)
    expected = trained.predict(inputs, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "source_p.npy"), expected, atol=1e-5)
    assert accuracy == pytest.approx(float(np.mean(expected.argmax(1) == digits.target)))
    assert accuracy > 0.9


def test_csv_export_takes_the_columns_as_written(tmp_path):
    bunch = sklearn.datasets.load_wine()
    path = tmp_path / "wine.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*bunch.feature_names, "cultivar"])
        writer.writerows([*row, label] for row, label in zip(bunch.data, bunch.target, strict=True))
    data = knn.datasets.load(str(path), target="cultivar")
    model = knn.compile(knn.models.mlp(data, hidden=[8], seed=0), "adam", learning_rate=0.01)
    knn.fit(model, data, epochs=2, verbose=0)
    preprocessing, probe = ex.dataset_preprocessing(data)
    ex.export(model, tmp_path / "sm", preprocessing=preprocessing, probe=probe)
    np.testing.assert_allclose(probe, bunch.data[: len(probe)] * 0 + probe)  # shapes line up
    rows = np.loadtxt(path, delimiter=",", skiprows=1)[:, :-1]
    np.testing.assert_allclose(
        ex.load(tmp_path / "sm").predict(rows),
        model.predict(data.input_transform.transform(rows), verbose=0),
        atol=1e-5,
    )
    # --no-standardize: nothing baked in, the artifact takes the loader's inputs.
    assert ex.dataset_preprocessing(data, standardize=False)[0] is None
