"""Mean/std standardization of features, fitted on the training split only."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Standardizer"]

# Keras divides by max(sqrt(variance), epsilon) with epsilon = 1e-7; a smaller std would make
# `Standardizer.as_layer()` disagree with `Standardizer.transform()`.
_MIN_STD = 1e-7


@dataclasses.dataclass(frozen=True, eq=False)
class Standardizer:
    """Mean/std standardization fitted on the training split only.

    `transform(x)` computes `(x - mean) / std` in float32. In per-feature mode `mean` and `std`
    have the per-sample feature shape (e.g. `(64,)` or `(8, 8, 1)`); in global mode they are
    scalars (shape `()`).

    Args:
        mean: Mean to subtract, cast to float32.
        std: Standard deviation to divide by, cast to float32. Every value must be at least
            1e-7 (Keras' epsilon), so `fit()` replaces the std of constant features by 1.0.

    Raises:
        ValueError: If `mean` and `std` have different shapes or `std` has a value that is not
            finite or is below 1e-7.

    Example:

    >>> s = Standardizer.fit(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> s.transform(np.array([[2.0, 1.0]])).tolist()
    [[1.0, 0.0]]
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if mean.shape != std.shape:
            raise ValueError(
                "Received an invalid value for argument std, expected the same shape as mean. "
                f"Received: mean.shape={mean.shape}, std.shape={std.shape}"
            )
        bad = ~(np.isfinite(std) & (std >= _MIN_STD))
        if np.any(bad):
            raise ValueError(
                f"Received an invalid value for argument std, expected finite values >= "
                f"{_MIN_STD}. Received: std={std.tolist()!r}"
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def per_feature(self) -> bool:
        """Whether `mean` and `std` hold one value per feature (else one global value)."""
        return self.mean.ndim > 0

    @classmethod
    def fit(cls, x: ArrayLike, *, per_feature: bool = True) -> Standardizer:
        """Computes the mean and std of `x` (samples along the first axis).

        Args:
            x: Training features of shape `(n, *feature_shape)`.
            per_feature: If `True`, one mean/std per feature (over axis 0); if `False`, a single
                mean/std over all values. Defaults to `True`.

        Returns:
            A fitted `Standardizer`. Std values below 1e-7 (constant features) become 1.0.

        Raises:
            ValueError: If `x` has no samples or fewer than 2 dimensions.

        Example:

        >>> Standardizer.fit(np.ones((4, 3)), per_feature=False).std
        array(1., dtype=float32)
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(
                "Received an invalid value for argument x, expected an array of shape "
                f"(n_samples, *feature_shape) with n_samples >= 1. Received: x.shape={x.shape}"
            )
        axis = 0 if per_feature else None
        mean = x.mean(axis=axis)
        std = x.std(axis=axis)
        std = np.where(std < _MIN_STD, 1.0, std)
        return cls(mean=mean, std=std)

    def _check_shape(self, x: np.ndarray) -> None:
        feature_ndim = self.mean.ndim
        if feature_ndim and x.shape[x.ndim - feature_ndim :] != self.mean.shape:
            raise ValueError(
                "Received an invalid value for argument x, expected trailing dimensions "
                f"{self.mean.shape} (the feature shape this Standardizer was fitted on). "
                f"Received: x.shape={x.shape}"
            )

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Returns `(x - mean) / std` as float32.

        Args:
            x: Features whose trailing dimensions match the fitted feature shape.

        Returns:
            The standardized float32 array, same shape as `x`.

        Raises:
            ValueError: If the trailing dimensions of `x` do not match (per-feature mode).
        """
        x = np.asarray(x, dtype=np.float32)
        self._check_shape(x)
        return (x - self.mean) / self.std

    def inverse_transform(self, x: ArrayLike) -> np.ndarray:
        """Returns `x * std + mean` as float32, undoing `transform()`.

        Args:
            x: Standardized features whose trailing dimensions match the fitted feature shape.

        Returns:
            The float32 array in the original units.

        Raises:
            ValueError: If the trailing dimensions of `x` do not match (per-feature mode).
        """
        x = np.asarray(x, dtype=np.float32)
        self._check_shape(x)
        return x * self.std + self.mean

    def as_layer(self, name: str | None = None) -> Any:
        """Returns a `keras.layers.Normalization` layer computing `transform()`.

        Use it to bake the standardization into an exported model. The layer expects batches of
        shape `(batch, *feature_shape)`.

        Args:
            name: Name of the layer. Defaults to `None` (Keras picks a unique name).

        Returns:
            A `keras.layers.Normalization` with `mean=mean`, `variance=std**2` and `axis` set
            to the feature axes (per-feature mode) or `None` (global mode).
        """
        import keras

        axis = tuple(range(1, self.mean.ndim + 1)) if self.per_feature else None
        variance = np.square(self.std.astype(np.float64)).astype(np.float32)
        return keras.layers.Normalization(axis=axis, mean=self.mean, variance=variance, name=name)

    def get_config(self) -> dict[str, Any]:
        """Returns a JSON-serializable config (`mean`, `std` as nested lists or floats)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Standardizer:
        """Creates a `Standardizer` from the output of `get_config()`."""
        return cls(mean=np.asarray(config["mean"]), std=np.asarray(config["std"]))
