"""Model builders: each returns an uncompiled, built `keras.Model`.

All take the input shape (or a `kerasnn.datasets.Dataset`) first, and resolve activation and
initializer names through `kerasnn.activations` / `kerasnn.initializers`. `get(name)` is the
builder a recipe's ``model.builder`` names. Each builder lives in a private module (`_mlp.py`,
`_cnn.py`, `_residual.py`; `_head.py` holds their shared pieces), re-exported here.
"""

from collections.abc import Callable
from typing import Any

from kerasnn._validation import one_of
from kerasnn.models._cnn import cnn as cnn
from kerasnn.models._mlp import mlp as mlp
from kerasnn.models._residual import residual_mlp as residual_mlp

BUILDERS: dict[str, Callable[..., Any]] = {"mlp": mlp, "cnn": cnn, "residual_mlp": residual_mlp}


def names() -> list[str]:
    """The builder names: ``["cnn", "mlp", "residual_mlp"]``."""
    return sorted(BUILDERS)


def get(identifier: str | Callable[..., Any]) -> Callable[..., Any]:
    """Returns the builder function `identifier` names (a callable is returned as is).

    Raises:
        ValueError: an unknown name (with the known ones and a close match).

    Example:

    >>> get("mlp").__name__
    'mlp'
    """
    if callable(identifier):
        return identifier
    return BUILDERS[one_of("model.builder", identifier, BUILDERS)]


__all__ = ["BUILDERS", "cnn", "get", "mlp", "names", "residual_mlp"]
