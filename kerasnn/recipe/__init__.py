"""Recipes: the five steps of the lectures as one YAML file (spec) and what runs it (run)."""

from kerasnn.recipe.spec import EXPORT_DEFAULTS as EXPORT_DEFAULTS
from kerasnn.recipe.spec import Recipe as Recipe
from kerasnn.recipe.spec import RunResult as RunResult
from kerasnn.recipe.spec import check_resume as check_resume
from kerasnn.recipe.spec import export_trained as export_trained

__all__ = ["EXPORT_DEFAULTS", "Recipe", "RunResult", "check_resume", "export_trained"]

# Transitional (removed once tuning and compare stop using them).
from kerasnn.recipe.spec import _check_keys, _unknown_key_error  # noqa: E402, F401
