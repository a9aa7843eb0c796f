"""What a dataset loader does to a sample between its source and the model.

`kerasnn.datasets.load` reads a sample as its source gives it (the digits' 64 pixels in 0–16,
MNIST's 28×28 bytes in 0–255, a CSV row's columns as written), then rescales it (digits ÷ 16,
MNIST ÷ 255), reshapes it to the view the model takes (8×8×1 images, flat 784 vectors) and
standardizes it with statistics of the training split. `InputTransform` records those three
steps, applies them to NumPy arrays, undoes them, and gives them as Keras layers, so an exported
model can take the source's own values (`kerasnn.export`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import numpy as np

__all__ = ["InputTransform", "Standardizer"]


class Standardizer(Protocol):
    """What `InputTransform` uses of a `kerasnn.datasets.Standardizer` (no import of it here:
    `kerasnn.datasets` builds the transform)."""

    def transform(self, x: Any) -> np.ndarray: ...

    def inverse_transform(self, x: Any) -> np.ndarray: ...

    def as_layer(self, name: str | None = None) -> Any: ...


@dataclasses.dataclass(frozen=True, eq=False)
class InputTransform:
    """Source sample → model input: reshape, then ``x · scale``, then standardize.

    Attributes:
        source_shape: one sample's shape as the source gives it, e.g. ``(64,)`` for
            `sklearn.datasets.load_digits().data`, ``(28, 28)`` for MNIST.
        input_shape: one sample's shape as the model takes it, e.g. ``(8, 8, 1)``.
        scale: the factor the loader multiplies source values by (1/16 for digits, 1/255
            for MNIST, 1 for tabular data and files).
        standardizer: the `kerasnn.datasets.Standardizer` fitted on the training split, or
            `None` when the data were not standardized.

    Example:

    >>> t = InputTransform(source_shape=(4,), input_shape=(2, 2, 1), scale=0.5)
    >>> t.transform(np.array([[2.0, 4.0, 6.0, 8.0]])).reshape(-1).tolist()
    [1.0, 2.0, 3.0, 4.0]
    """

    source_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    scale: float = 1.0
    standardizer: Standardizer | None = None

    def __post_init__(self) -> None:
        if math.prod(self.source_shape) != math.prod(self.input_shape):
            raise ValueError(
                "Received an invalid value for argument source_shape, expected as many values "
                f"per sample as input_shape {self.input_shape}. Received: "
                f"source_shape={self.source_shape}"
            )
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(
                "Received an invalid value for argument scale, expected a finite number > 0. "
                f"Received: scale={self.scale!r}"
            )

    @property
    def identity(self) -> bool:
        """Whether the model takes the source's values unchanged."""
        return (
            self.source_shape == self.input_shape
            and self.scale == 1.0
            and self.standardizer is None
        )

    def transform(self, x: Any) -> np.ndarray:
        """Source values (batch first) → the model's float32 inputs."""
        x = np.asarray(x, dtype=np.float32)
        self._check(x, self.source_shape, "x")
        x = x.reshape((len(x), *self.input_shape)) * np.float32(self.scale)
        return x if self.standardizer is None else self.standardizer.transform(x)

    def inverse_transform(self, x: Any) -> np.ndarray:
        """The model's inputs (batch first) → the source's values, float32."""
        x = np.asarray(x, dtype=np.float32)
        self._check(x, self.input_shape, "x")
        if self.standardizer is not None:
            x = self.standardizer.inverse_transform(x)
        return (x / np.float32(self.scale)).reshape((len(x), *self.source_shape))

    def as_layers(self, *, standardize: bool = True) -> list[Any]:
        """The transform as Keras layers (`Reshape`, `Rescaling`, `Normalization`), in order.

        Args:
            standardize: include the standardization. Defaults to `True`.
        """
        import keras

        layers: list[Any] = []
        if self.source_shape != self.input_shape:
            layers.append(keras.layers.Reshape(self.input_shape, name="source_reshape"))
        if self.scale != 1.0:
            layers.append(keras.layers.Rescaling(float(self.scale), name="source_scale"))
        if standardize and self.standardizer is not None:
            layers.append(self.standardizer.as_layer(name="standardize"))
        return layers

    def describe(self) -> str:
        """One line: what the source gives and what is done to it."""
        steps = []
        if self.source_shape != self.input_shape:
            steps.append(f"reshape {self.source_shape} -> {self.input_shape}")
        if self.scale != 1.0:
            steps.append(f"multiply by {self.scale:.6g}")
        if self.standardizer is not None:
            steps.append("standardize with the training split's mean and std")
        return ", then ".join(steps) or "none (the model takes the source's values)"

    @staticmethod
    def _check(x: np.ndarray, shape: tuple[int, ...], argument: str) -> None:
        if tuple(x.shape[1:]) != tuple(shape):
            raise ValueError(
                f"Received an invalid value for argument {argument}, expected samples of shape "
                f"{tuple(shape)}. Received: {argument}.shape={x.shape}"
            )
