"""Exact copies of a model's and its optimizer's state, to put back after an experiment.

`lr_find` and `sanity_check` train the model they are given; a `Snapshot` taken before puts every
variable back afterwards: weights, non-trainable state (batch-norm statistics, dropout seed
generators), the optimizer's iteration count, learning rate and slots, and the model's
`steps_per_execution`.
"""

from __future__ import annotations

import keras
import numpy as np


class Snapshot:
    """The values of every variable of `model` and of its optimizer, taken now.

    An optimizer that has not been built yet is built first (its slots are zeros, as a fresh
    optimizer's), so that it can be put back into that state.

    Example:

    >>> import kerasnn as knn
    >>> model = knn.compile(knn.models.mlp((4,), hidden=[8], outputs=3))
    >>> snap = Snapshot(model)
    >>> _ = model.layers[1].kernel.assign(model.layers[1].kernel * 0)
    >>> snap.restore(); bool(np.any(model.layers[1].kernel.numpy() != 0))
    True
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        self._variables = list(model.variables)
        if optimizer is not None:
            self._variables += list(optimizer.variables)
        self._values = [np.array(v.numpy(), copy=True) for v in self._variables]
        self.steps_per_execution = model.steps_per_execution

    def restore(self) -> None:
        """Puts every variable back and rebuilds the train/test functions if needed."""
        for variable, value in zip(self._variables, self._values, strict=True):
            variable.assign(value)
        if self.model.steps_per_execution != self.steps_per_execution:
            self.model.steps_per_execution = self.steps_per_execution
            self.model.make_train_function(force=True)
            self.model.make_test_function(force=True)
        self.model.stop_training = False

    def equal(self) -> bool:
        """Whether every variable holds exactly its snapshot value."""
        return all(
            np.array_equal(v.numpy(), value)
            for v, value in zip(self._variables, self._values, strict=True)
        )
