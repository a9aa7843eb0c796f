"""The learning-rate range test on a recipe's model and data: what ``kerasnn lr-find`` runs.

This module loads Keras: the command line imports it only to run the command.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kerasnn import diagnostics, runs
from kerasnn.callbacks.lr_finder import LRFinder, LRFindResult
from kerasnn.recipe.spec import Recipe

__all__ = ["lr_find_recipe"]


def lr_find_recipe(
    recipe: Recipe | str | os.PathLike,
    overrides: Iterable[str] = (),
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    **kwargs: Any,
) -> tuple[LRFindResult, Path]:
    """`kerasnn.diagnostics.lr_find` on a recipe's model and data.

    Writes ``lr_find.png`` and ``lr_find.json`` into `out` (default ``runs/<name>-lr_find``),
    staged and moved into place at the end. `kwargs` go to `lr_find`; the batch size and seed
    come from the recipe.

    Args:
        recipe: a `Recipe`, or the path of a YAML recipe.
        overrides: ``key=value`` overrides of recipe entries (``--set``). Defaults to none.
        out: the output folder. Defaults to `None` (the next free ``runs/<name>-lr_find``).
        overwrite: replace an existing `out`. Defaults to `False`.
        **kwargs: `lr_find` arguments (``min_lr``, ``max_lr``, ``num_steps``, ...).

    Returns:
        The result and the output folder.

    Raises:
        ValueError: an invalid recipe or override, or bad `min_lr`/`max_lr`/`num_steps` (before
            the output folder is created), or what `lr_find` raises.
    """
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_yaml(recipe)
    recipe = recipe.with_overrides(overrides).resolved()
    if out is None:
        out = runs.next_free(Path("runs") / f"{recipe.name}-lr_find")
    LRFinder(**{k: kwargs[k] for k in ("min_lr", "max_lr", "num_steps") if k in kwargs})
    folder = runs.RunFolder(out, overwrite=overwrite).open()
    data, model = recipe.build()
    result = diagnostics.lr_find(
        model,
        data,
        batch_size=recipe.fit["batch_size"],
        seed=recipe.seed,
        path=folder.file("lr_find.png"),
        **kwargs,
    )
    folder.write_json("lr_find.json", result.to_dict())
    folder.finalize()
    return result, folder.path
