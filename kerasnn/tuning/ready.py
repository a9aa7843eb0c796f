"""The ready spaces: the lectures' menu for an MLP or a CNN, as declarative space mappings.

`default_mlp_space()` / `default_cnn_space()` return plain mappings (edit them, or write them
into a recipe's ``search.space``) for `kerasnn.tuning.SearchSpace.from_config`; the ``DEFAULT_*``
constants are the menu they draw from. A recipe's ``search.space: default`` picks the builder's
(`DEFAULT_SPACES`), with the image augmentations for image datasets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "DEFAULT_ACTIVATIONS",
    "DEFAULT_AUGMENT",
    "DEFAULT_INITIALIZERS",
    "DEFAULT_L2",
    "DEFAULT_LEARNING_RATES",
    "DEFAULT_OPTIMIZERS",
    "DEFAULT_SPACES",
    "IMAGE_AUGMENT",
    "default_cnn_space",
    "default_mlp_space",
]

# The lectures' menu (Bergstra & Bengio 2012: sample rates and penalties on a log scale).
DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "pelu", "maxout", "tanh")
DEFAULT_INITIALIZERS = (
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "lecun_normal",
)
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
# Log-uniform learning-rate range of each optimizer (``by: optimizer.name``): the adaptive
# ones around their 1e-3 default, momentum a decade below plain SGD (its step is lr / (1 - m)).
DEFAULT_LEARNING_RATES = {
    "sgd": (1e-2, 0.5),
    "momentum": (1e-3, 1e-1),
    "nesterov": (1e-3, 1e-1),
    "rmsprop": (1e-4, 1e-2),
    "adam": (1e-4, 1e-2),
}
# Log-uniform L2 penalty (Keras's l2 * sum(w^2)); above 1e-3 it dominates the loss of a wide MLP.
DEFAULT_L2 = (1e-6, 1e-3)
# Augmentations (kerasnn.augment presets) the ready spaces offer: shifts only for image data.
DEFAULT_AUGMENT = ("none", "noise")
IMAGE_AUGMENT = ("none", "shift", "noise", "shift_noise")


def _common_space(
    activation_names: Sequence[str], lsuv: bool, augment: Sequence[str]
) -> dict[str, Any]:
    space: dict[str, Any] = {}
    if augment:
        space["model.augment"] = {"choice": list(augment)}
    space |= {
        "model.activation": {"choice": list(activation_names)},
        "model.initializer": {"choice": list(DEFAULT_INITIALIZERS)},
    }
    if lsuv:
        space["model.lsuv"] = {"choice": [False, True]}
    space |= {
        "model.dropout": {"uniform": [0.0, 0.5]},
        "model.l2": {"log_uniform": list(DEFAULT_L2)},
        "optimizer.name": {"choice": list(DEFAULT_OPTIMIZERS)},
        "optimizer.momentum": {
            "uniform": [0.5, 0.99],
            "when": {"optimizer.name": ["momentum", "nesterov"]},
        },
        "optimizer.learning_rate": {
            "by": "optimizer.name",
            "log_uniform": {name: list(rates) for name, rates in DEFAULT_LEARNING_RATES.items()},
        },
        "fit.batch_size": {"choice": [16, 32, 64, 128]},
    }
    return space


def default_mlp_space(
    activation_names: Sequence[str] = DEFAULT_ACTIVATIONS,
    *,
    lsuv: bool = True,
    augment: Sequence[str] = DEFAULT_AUGMENT,
) -> dict[str, Any]:
    """The ready MLP space: depth 1-3, a width per layer, data augmentation, activation,
    initializer (LSUV optional), dropout, log-uniform L2 and learning rate, optimizer with
    conditional momentum, batch size.

    Args:
        activation_names: activations to choose from. Defaults to `DEFAULT_ACTIVATIONS`.
        lsuv: offer LSUV initialization as a choice. Defaults to `True`.
        augment: `kerasnn.augment` presets to choose from (``()``: no ``model.augment``
            entry). Defaults to `DEFAULT_AUGMENT` (none or input noise); `IMAGE_AUGMENT` adds
            the pixel shifts, which need image data (a recipe's ``search.space: default``
            offers it for the image datasets: digits, mnist, fashion_mnist).

    Returns:
        A declarative space (a dict), ready for `SearchSpace.from_config`.
    """
    return {
        "model.depth": {"int": [1, 3]},
        "model.units": {"choice": [64, 128, 256, 512]},
        **_common_space(activation_names, lsuv, augment),
    }


def default_cnn_space(
    activation_names: Sequence[str] = DEFAULT_ACTIVATIONS,
    *,
    lsuv: bool = True,
    augment: Sequence[str] = IMAGE_AUGMENT,
) -> dict[str, Any]:
    """The ready CNN space: 1-2 conv stages with sampled filters, 0-1 dense layers, and the
    MLP space's augmentation/activation/initializer/regularization/optimizer/batch-size
    entries (`augment` defaults to `IMAGE_AUGMENT`: a CNN's inputs are images)."""
    return {
        "model.conv_depth": {"int": [1, 2]},
        "model.conv_filters": {"choice": [16, 32, 64]},
        "model.depth": {"int": [0, 1]},
        "model.units": {"choice": [64, 128, 256]},
        **_common_space(activation_names, lsuv, augment),
    }


#: The ready space of each builder that has one (a recipe's ``search.space: default``).
DEFAULT_SPACES = {"mlp": default_mlp_space, "cnn": default_cnn_space}
