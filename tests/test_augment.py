"""kerasnn.augment: validation, shifts against a NumPy reference, noise, inactive at inference."""

import warnings

import keras
import numpy as np
import pytest
from helpers import invalid_message

import kerasnn as knn
from kerasnn import augment


@pytest.fixture(scope="module")
def digits():
    return knn.datasets.load("digits", seed=0)


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`image` (H, W) moved by (dy, dx) pixels, the uncovered border set to 0."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _shift_of(augmented: np.ndarray, image: np.ndarray, limit: int) -> tuple[int, int] | None:
    """The (dy, dx) within ±limit that turns `image` into `augmented`, or None."""
    for dy in range(-limit, limit + 1):
        for dx in range(-limit, limit + 1):
            if np.allclose(_shifted(image, dy, dx), augmented, atol=1e-5):
                return dy, dx
    return None


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        (False, {}),
        ("none", {}),
        ("shift", {"shift": 1}),
        ("noise", {"noise": 0.3}),
        ("shift_noise", {"shift": 1, "noise": 0.3}),
        ({"shift": 2, "rotation": 10, "zoom": 0.1}, {"shift": 2, "rotation": 10, "zoom": 0.1}),
        ({"shift": 0, "noise": 0}, {}),
        ({"noise": 1, "image_shape": [8, 8, 1]}, {"noise": 1.0, "image_shape": (8, 8, 1)}),
    ],
)
def test_resolve_presets_and_mappings(value, expected):
    assert augment.get(value) == expected


def test_presets_are_listed():
    assert augment.names() == ["none", "shift", "noise", "shift_noise"]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("shfit", r"expected a preset name \(none, shift, noise, shift_noise\).*augment='shfit'"),
        (3, r"expected a preset name.*Received: augment=3$"),
        ({"shift": 1, "flip": True}, r"expected keys among shift, .*\(unknown: flip\)"),
        (
            {"shift": -1},
            invalid_message("augment.shift", "an integer number of pixels >= 0", "shift=-1"),
        ),
        ({"shift": 1.5}, r"augment.shift, expected an integer number of pixels"),
        ({"shift": True}, r"augment.shift, expected an integer number of pixels"),
        ({"rotation": 200}, r"augment.rotation, expected a number of degrees in \[0, 180\]"),
        ({"zoom": 1.0}, r"augment.zoom, expected a fraction in \[0, 1\)"),
        ({"noise": -0.1}, r"augment.noise, expected a standard deviation >= 0"),
        ({"noise": float("nan")}, r"augment.noise, expected a standard deviation >= 0"),
        ({"image_shape": [8, 8]}, r"augment.image_shape, expected \(height, width, channels\)"),
    ],
)
def test_invalid_values_are_named(value, match):
    with pytest.raises(ValueError, match=match):
        augment.get(value)


def test_geometric_transforms_need_images():
    with pytest.raises(ValueError, match=r"inputs of shape \(30,\) are neither.*image_shape"):
        knn.models.mlp((30,), hidden=[4], outputs=2, augment="shift")
    with pytest.raises(ValueError, match=r"augment.image_shape, expected a shape with as many"):
        knn.models.mlp((64,), hidden=[4], outputs=2, augment={"shift": 1, "image_shape": [4, 4, 1]})
    # Noise needs no image; a non-square flat input works with an explicit image shape.
    knn.models.mlp((30,), hidden=[4], outputs=2, augment="noise")
    model = knn.models.mlp(
        (32,), hidden=[4], outputs=2, augment={"shift": 1, "image_shape": [4, 8, 1]}
    )
    assert model.get_layer("augment_image").output.shape == (None, 4, 8, 1)


def test_recipe_checks_augment_when_loaded():
    config = {"data": {"name": "digits"}, "model": {"hidden": [8], "augment": "shfit"}}
    with pytest.raises(ValueError, match=r"augment='shfit'"):
        knn.Recipe.from_dict(config)


# -- behaviour -------------------------------------------------------------------------------------
def test_shifts_move_whole_pixels_with_a_zero_border():
    model = knn.models.mlp((6, 7, 1), hidden=[4], outputs=3, augment={"shift": 1}, seed=3)
    block = keras.Model(model.input, model.get_layer("augment_shift").output)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, size=(64, 6, 7, 1)).astype("float32")
    augmented = keras.ops.convert_to_numpy(block(x, training=True))
    shifts = [_shift_of(a[..., 0], xi[..., 0], 1) for a, xi in zip(augmented, x, strict=True)]
    assert None not in shifts  # every sample is one of the 9 whole-pixel shifts
    assert len(set(shifts)) >= 5  # and they vary from sample to sample
    # Inactive at inference: predict and training=False leave the input unchanged.
    np.testing.assert_array_equal(block.predict(x, verbose=0), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(x, training=False)), x)


def test_flat_standardized_digits_are_shifted_as_raw_pixels(digits):
    model = knn.models.mlp(digits, hidden=[8], augment="shift", seed=0)
    assert [layer.name for layer in model.layers[:6]] == [
        "inputs",
        "augment_unstandardize",
        "augment_image",
        "augment_shift",
        "augment_restore_shape",
        "augment_standardize",
    ]
    block = keras.Model(model.input, model.get_layer("augment_standardize").output)
    x = digits.x_train[:48]
    out = keras.ops.convert_to_numpy(block(x, training=True))
    raw_in = digits.standardizer.inverse_transform(x).reshape(-1, 8, 8)
    raw_out = digits.standardizer.inverse_transform(out).reshape(-1, 8, 8)
    shifts = [_shift_of(a, b, 1) for a, b in zip(raw_out, raw_in, strict=True)]
    assert None not in shifts
    assert any(s != (0, 0) for s in shifts)
    np.testing.assert_allclose(block.predict(x, verbose=0), x, atol=1e-5)


def test_noise_has_the_requested_std_in_training_only():
    model = knn.models.mlp((50,), hidden=[4], outputs=2, augment={"noise": 0.5}, seed=1)
    block = keras.Model(model.input, model.get_layer("augment_noise").output)
    x = np.ones((400, 50), "float32")
    delta = keras.ops.convert_to_numpy(block(x, training=True)) - x
    assert float(delta.std()) == pytest.approx(0.5, rel=0.03)
    assert abs(float(delta.mean())) < 0.01
    np.testing.assert_array_equal(block.predict(x, verbose=0), x)


@pytest.mark.parametrize(
    ("builder", "view", "kwargs"),
    [
        ("mlp", "flat", {"hidden": [16]}),
        ("cnn", "image", {"filters": [4], "dense": []}),
        ("residual_mlp", "flat", {"width": 8, "blocks": 1}),
    ],
)
def test_models_with_augmentation_train_save_and_reload(builder, view, kwargs, tmp_path):
    data = knn.datasets.load("digits", view=view, seed=0)
    aug = {"shift": 1, "rotation": 5, "zoom": 0.05, "noise": 0.2}
    model = knn.models.BUILDERS[builder](data, augment=aug, **kwargs)
    knn.compile(model, "adam", learning_rate=1e-2)
    result = knn.fit(model, data, epochs=4, batch_size=64, verbose=0)
    assert result.history["loss"][-1] < result.history["loss"][0]  # it trains through them
    x = data.x_test[:32]
    before = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)  # deterministic
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, atol=1e-6)
    names = [layer.name for layer in loaded.layers]
    for name in ("augment_shift", "augment_rotation", "augment_zoom", "augment_noise"):
        assert name in names


def test_same_seed_same_training_with_augmentation(digits):
    weights = []
    for _ in range(2):
        keras.backend.clear_session()
        keras.utils.set_random_seed(5)
        model = knn.models.mlp(digits, hidden=[16], augment="shift_noise")
        knn.compile(model, "adam")
        knn.fit(model, digits, epochs=2, verbose=0, seed=5)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)
