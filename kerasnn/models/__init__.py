"""Model builders: each returns an uncompiled, built `keras.Model`.

All take the input shape (or a `kerasnn.datasets.Dataset`) first, and resolve activation and
initializer names through `kerasnn.activations` / `kerasnn.initializers`.
"""

from kerasnn.models.cnn import cnn as cnn
from kerasnn.models.mlp import mlp as mlp
from kerasnn.models.residual import residual_mlp as residual_mlp

BUILDERS = {"mlp": mlp, "cnn": cnn, "residual_mlp": residual_mlp}

__all__ = ["BUILDERS", "cnn", "mlp", "residual_mlp"]
