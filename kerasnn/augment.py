"""Data augmentation inside the model: random shifts, rotations, zooms and input noise.

The builders' ``augment`` argument (`kerasnn.models.mlp`, `cnn`, `residual_mlp`; ``model.augment``
in a recipe, a sampled entry of the search spaces) puts Keras's own random preprocessing layers
between the model's input and its first layer. They act only while training (``training=True``,
i.e. inside `fit`); `predict`, `evaluate` and a saved or exported model see the input unchanged,
so every epoch sees new variants of the training images and inference is deterministic.

``augment`` is `None` (no augmentation), a preset name from `PRESETS` or a mapping:

=============  =====================================================  ==========================
key            what it does (training only)                           Keras layer
=============  =====================================================  ==========================
``shift``      moves the image by up to ``shift`` whole pixels in      `RandomTranslation`
               each direction; uncovered pixels become background (0)  (nearest)
``rotation``   rotates by up to ± ``rotation`` degrees                 `RandomRotation`
``zoom``       zooms in or out by up to ± ``zoom`` (a fraction)        `RandomZoom`
``noise``      adds Gaussian noise of this standard deviation to the   `GaussianNoise`
               (standardized) inputs
``image_shape``  the ``(height, width, channels)`` the flat inputs are  `Reshape`
               viewed as for shift/rotation/zoom
=============  =====================================================  ==========================

Geometric transforms need images: image inputs ``(H, W, C)`` are used as they are, flat inputs
of ``n`` features are viewed as ``(√n, √n, 1)`` when ``n`` is a square (the 64 pixels of the
8x8 digits) or as ``image_shape``. When the builder is given a `kerasnn.datasets.Dataset`, its
standardization is undone before the transform and applied again after it (two
`keras.layers.Normalization` layers), so shifted pixels keep their meaning even when each pixel
is standardized with its own mean and std, and the uncovered border is raw background (0).
Noise is added after that, in standardized units. Rotations and zooms interpolate bilinearly:
on 8x8 images that blurs the strokes (measured on the digits in `bench/search.py`'s notes:
shift ±1 alone 98.5 % test accuracy, with rotation 10° and zoom 0.1 96.3 %).

Example:

>>> import kerasnn as knn
>>> data = knn.datasets.load("digits")
>>> model = knn.models.mlp(data, hidden=[64], augment="shift_noise")
>>> [layer.name for layer in model.layers if layer.name.startswith("augment")][:3]
['augment_unstandardize', 'augment_image', 'augment_shift']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from kerasnn._validation import is_number

__all__ = ["KEYS", "PRESETS", "apply", "get", "names"]

KEYS = ("shift", "rotation", "zoom", "noise", "image_shape")
#: Named augmentations, for recipes and search spaces (``model.augment: {choice: [...]}``).
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "shift": {"shift": 1},
    "noise": {"noise": 0.3},
    "shift_noise": {"shift": 1, "noise": 0.3},
}


def names() -> list[str]:
    """The preset names (`PRESETS`)."""
    return list(PRESETS)


def _invalid(key: str, expected: str, value: Any) -> ValueError:
    return ValueError(
        f"Received an invalid value for argument augment.{key}, expected {expected}. "
        f"Received: {key}={value!r}"
    )


def get(augment: Any) -> dict[str, Any]:
    """Validates an ``augment`` value and returns it as a mapping (``{}``: no augmentation).

    Args:
        augment: `None`, `False`, a name from `PRESETS`, or a mapping of `KEYS`: ``shift`` (an
            integer >= 0, pixels), ``rotation`` (degrees in [0, 180]), ``zoom`` (a fraction in
            [0, 1)), ``noise`` (a standard deviation >= 0), ``image_shape`` (three positive
            integers).

    Returns:
        The mapping with only the non-zero transforms (and ``image_shape`` when given).

    Raises:
        ValueError: an unknown preset or key, or a value outside its range.
    """
    if augment is None or augment is False:
        return {}
    if isinstance(augment, str):
        if augment not in PRESETS:
            raise ValueError(
                "Received an invalid value for argument augment, expected a preset name "
                f"({', '.join(PRESETS)}), a mapping of {', '.join(KEYS)}, or None. "
                f"Received: augment={augment!r}"
            )
        return dict(PRESETS[augment])
    if not isinstance(augment, Mapping):
        raise ValueError(
            "Received an invalid value for argument augment, expected a preset name "
            f"({', '.join(PRESETS)}), a mapping of {', '.join(KEYS)}, or None. "
            f"Received: augment={augment!r}"
        )
    unknown = [k for k in augment if k not in KEYS]
    if unknown:
        raise ValueError(
            f"Received an invalid value for argument augment, expected keys among "
            f"{', '.join(KEYS)}. Received: augment={dict(augment)!r} (unknown: "
            f"{', '.join(map(str, unknown))})"
        )
    spec: dict[str, Any] = {}
    shift = augment.get("shift", 0)
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
        raise _invalid("shift", "an integer number of pixels >= 0", shift)
    rotation = augment.get("rotation", 0)
    if not is_number(rotation) or not 0 <= rotation <= 180:
        raise _invalid("rotation", "a number of degrees in [0, 180]", rotation)
    zoom = augment.get("zoom", 0)
    if not is_number(zoom) or not 0 <= zoom < 1:
        raise _invalid("zoom", "a fraction in [0, 1)", zoom)
    noise = augment.get("noise", 0)
    if not is_number(noise) or noise < 0:
        raise _invalid("noise", "a standard deviation >= 0", noise)
    for key, value in (("shift", shift), ("rotation", rotation), ("zoom", zoom)):
        if value:
            spec[key] = value
    if noise:
        spec["noise"] = float(noise)
    if augment.get("image_shape") is not None:
        shape = augment["image_shape"]
        if (
            not isinstance(shape, Sequence)
            or isinstance(shape, str)
            or len(shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise _invalid("image_shape", "(height, width, channels): positive integers", shape)
        spec["image_shape"] = tuple(shape)
    return spec


def _image_shape(input_shape: tuple[int, ...], spec: Mapping[str, Any]) -> tuple[int, ...]:
    """The image shape the geometric transforms work on."""
    n = int(np.prod(input_shape))
    if "image_shape" in spec:
        shape = tuple(spec["image_shape"])
        if int(np.prod(shape)) != n:
            raise _invalid(
                "image_shape",
                f"a shape with as many values as the input ({input_shape}: {n})",
                shape,
            )
        return shape
    if len(input_shape) == 3:
        return tuple(input_shape)
    side = math.isqrt(n)
    if len(input_shape) == 1 and side * side == n:
        return (side, side, 1)
    raise ValueError(
        "Received an invalid value for argument augment: shift, rotation and zoom need images, "
        f"and inputs of shape {input_shape} are neither (height, width, channels) nor a square "
        "number of features. Add image_shape: [height, width, channels] to augment, or use "
        f"noise only. Received: augment={dict(spec)!r}"
    )


def _normalization(standardizer: Any, *, invert: bool, name: str) -> keras.layers.Layer:
    axis = tuple(range(1, standardizer.mean.ndim + 1)) if standardizer.per_feature else None
    variance = np.square(standardizer.std.astype(np.float64)).astype(np.float32)
    return keras.layers.Normalization(
        axis=axis, mean=standardizer.mean, variance=variance, invert=invert, name=name
    )


def apply(
    x: Any,
    augment: Any,
    *,
    input_shape: Sequence[int],
    standardizer: Any = None,
    seed: int | None = None,
) -> Any:
    """Applies the augmentation layers to the symbolic input `x` (a no-op for ``{}``/`None`).

    Args:
        x: the model's input tensor (``keras.Input``).
        augment: as in `get`.
        input_shape: the per-sample input shape.
        standardizer: the `kerasnn.datasets.Standardizer` the inputs were standardized with:
            undone before shift/rotation/zoom and applied again after them. Defaults to `None`
            (the inputs are transformed as they are; the border is filled with 0).
        seed: seeds the random layers (each gets its own seed derived from it). Defaults to
            `None` (Keras's global seed).

    Returns:
        The augmented tensor, with the shape of `x`.

    Raises:
        ValueError: an invalid `augment`, or geometric transforms on inputs that are not
            images (see `get`).
    """
    spec = get(augment)
    if not spec:
        return x
    input_shape = tuple(int(d) for d in input_shape)

    def seed_of(i: int) -> int | None:
        return None if seed is None else seed * 1000 + 900 + i

    if any(k in spec for k in ("shift", "rotation", "zoom")):
        image = _image_shape(input_shape, spec)
        if standardizer is not None:
            x = _normalization(standardizer, invert=True, name="augment_unstandardize")(x)
        if image != input_shape:
            x = keras.layers.Reshape(image, name="augment_image")(x)
        height, width = image[0], image[1]
        if "shift" in spec:
            x = keras.layers.RandomTranslation(
                spec["shift"] / height,
                spec["shift"] / width,
                fill_mode="constant",
                fill_value=0.0,
                interpolation="nearest",
                seed=seed_of(1),
                name="augment_shift",
            )(x)
        if "rotation" in spec:
            x = keras.layers.RandomRotation(
                spec["rotation"] / 360.0,
                fill_mode="constant",
                fill_value=0.0,
                seed=seed_of(2),
                name="augment_rotation",
            )(x)
        if "zoom" in spec:
            x = keras.layers.RandomZoom(
                spec["zoom"],
                spec["zoom"],
                fill_mode="constant",
                fill_value=0.0,
                seed=seed_of(3),
                name="augment_zoom",
            )(x)
        if image != input_shape:
            x = keras.layers.Reshape(input_shape, name="augment_restore_shape")(x)
        if standardizer is not None:
            x = _normalization(standardizer, invert=False, name="augment_standardize")(x)
    if "noise" in spec:
        x = keras.layers.GaussianNoise(spec["noise"], seed=seed_of(4), name="augment_noise")(x)
    return x
