"""Every key a recipe may hold, and kerasnn's own names, as data: read before TensorFlow loads.

A recipe is checked against these tables by `kerasnn.recipe.Recipe.from_dict` without importing
Keras, so a misspelt key or name is refused in a fraction of a second. The tables mirror the
signatures and registries they stand for (the builders, `kerasnn.optimizers`, the Keras optimizer
classes, `kerasnn.schedules`, `kerasnn.callbacks`, `kerasnn.augment`, the LSUV options,
`kerasnn.export`); ``tests/test_recipe_keys.py`` reads the live ones and fails when a table
drifts. Values that only Keras can judge (activation, initializer, loss and metric names, an
optimizer's numbers) are checked when the objects are built, before any training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AUGMENT_KEYS",
    "AUGMENT_PRESETS",
    "BOOLEAN_KEYS",
    "BUILDERS",
    "CALLBACKS",
    "CYCLED_MOMENTUM",
    "EXPORT_DEFAULTS",
    "EXPORT_FORMATS",
    "FIT_KEYS",
    "KERAS_CONFIG_KEYS",
    "MODEL_EXTRA_KEYS",
    "OPTIMIZERS",
    "OPTIMIZER_COMMON",
    "REQUIRED",
    "SCHEDULES",
    "SECTIONS",
    "is_keras_config",
]

SECTIONS = (
    "name",
    "description",
    "seed",
    "data",
    "model",
    "optimizer",
    "loss",
    "metrics",
    "fit",
    "export",
    "search",
)
REQUIRED = ("data", "model")

# model: the builder's keyword arguments (kerasnn.models.<builder>, less data/input_shape).
_SHARED_MODEL = (
    "outputs",
    "task",
    "activation",
    "initializer",
    "dropout",
    "batchnorm",
    "l1",
    "l2",
    "output_activation",
    "augment",
    "seed",
    "name",
)
BUILDERS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden", *_SHARED_MODEL),
    "cnn": (
        "filters",
        "dense",
        "kernel_size",
        "pool_size",
        "padding",
        "data_format",
        *_SHARED_MODEL,
    ),
    "residual_mlp": ("width", "blocks", *_SHARED_MODEL),
}
MODEL_EXTRA_KEYS = ("builder", "lsuv")  # recipe keys of the model section that are not builder's

# optimizer: kerasnn.optimizers.get's name -> the Keras class's own arguments (besides the
# arguments every Keras optimizer takes) and kerasnn's `fused`.
OPTIMIZER_COMMON = (
    "learning_rate",
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "fused",
)
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "adadelta": ("rho", "epsilon"),
    "adagrad": ("initial_accumulator_value", "epsilon"),
    "adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "adamax": ("beta_1", "beta_2", "epsilon"),
    "adamw": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "lion": ("beta_1", "beta_2"),
    "momentum": ("momentum", "nesterov"),
    "nadam": ("beta_1", "beta_2", "epsilon"),
    "nesterov": ("momentum", "nesterov"),
    "rmsprop": ("rho", "momentum", "epsilon", "centered"),
    "sgd": ("momentum", "nesterov"),
}
# The optimizers whose momentum a one_cycle schedule can cycle (Keras reads their beta_1 as a
# tensor; SGD's momentum is a Python constant in Keras 3): kerasnn.schedules.momentum_attribute.
CYCLED_MOMENTUM = ("adam", "adamax", "adamw", "lion", "nadam")
# A Keras-serialized object ({class_name: Adam, config: {...}}), accepted for the optimizer,
# the loss and each metric.
KERAS_CONFIG_KEYS = ("class_name", "config", "module", "registered_name")

FIT_KEYS = (
    "epochs",
    "batch_size",
    "validation_split",
    "early_stopping",
    "shuffle",
    "steps_per_execution",
    "callbacks",
    "lr_schedule",
)
# fit.lr_schedule: kerasnn.schedules name -> its arguments.
SCHEDULES: dict[str, tuple[str, ...]] = {
    "exponential": ("initial_learning_rate", "k", "unit"),
    "inverse_time": ("initial_learning_rate", "k", "unit"),
    "one_cycle": (
        "initial_learning_rate",
        "total",
        "pct_start",
        "div_factor",
        "final_div_factor",
        "moms",
        "cycle_momentum",
        "unit",
    ),
    "step": ("initial_learning_rate", "factor", "every", "unit"),
    "warmup_cosine": ("initial_learning_rate", "total", "warmup", "initial_lr", "alpha", "unit"),
}
# fit.callbacks: kerasnn.callbacks name -> its recipe arguments.
CALLBACKS: dict[str, tuple[str, ...]] = {
    "activation_stats": ("bins", "histogram_range", "layers"),
    "csv_logger": ("filename", "separator", "append"),
    "grad_norms": ("every_n_steps", "per_layer", "log_dir"),
    "gradient_norms": ("every_n_steps", "per_layer", "log_dir"),
    "learning_rate_logger": ("log_momentum",),
    "model_checkpoint": (
        "filepath",
        "monitor",
        "verbose",
        "save_best_only",
        "save_weights_only",
        "mode",
        "save_freq",
        "initial_value_threshold",
    ),
    "reduce_lr_on_plateau": (
        "monitor",
        "factor",
        "patience",
        "verbose",
        "mode",
        "min_delta",
        "cooldown",
        "min_lr",
    ),
    "tensorboard": (
        "log_dir",
        "histogram_freq",
        "write_graph",
        "write_images",
        "write_steps_per_second",
        "update_freq",
        "profile_batch",
        "embeddings_freq",
        "embeddings_metadata",
    ),
    "update_ratios": ("every_n_steps", "log_dir"),
}
# model.augment: a preset name or a mapping of these keys (kerasnn.augment).
AUGMENT_PRESETS = ("none", "shift", "noise", "shift_noise")
AUGMENT_KEYS = ("shift", "rotation", "zoom", "noise", "image_shape")

# export: kerasnn.export formats, and the block's keys with their defaults.
EXPORT_FORMATS = ("saved_model", "keras")
EXPORT_DEFAULTS = {"path": "saved_model", "format": "saved_model", "standardize": True}

# Keys whose value must be true or false (not "yes", not 1), by section.
BOOLEAN_KEYS = {
    "model": ("batchnorm",),
    "fit": ("shuffle",),
    "export": ("standardize",),
    "optimizer": ("fused", "nesterov", "amsgrad", "centered", "use_ema"),
}


def is_keras_config(value: Any) -> bool:
    """Whether `value` is a Keras-serialized object (``{class_name: ..., config: {...}}``)."""
    return isinstance(value, Mapping) and "class_name" in value
