"""One arm of an experiment: a name, a validated recipe, its grid levels."""

from __future__ import annotations

import dataclasses

from kerasnn.recipe import Recipe

__all__ = ["Variant"]


@dataclasses.dataclass
class Variant:
    """One arm of an experiment: its name, its validated recipe and its grid levels."""

    name: str
    recipe: Recipe
    levels: dict[str, str] = dataclasses.field(default_factory=dict)
