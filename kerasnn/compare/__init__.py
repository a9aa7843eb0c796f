"""Experiments: several variants of a recipe run side by side, tabled and overlaid.

An experiment is a YAML file (``recipes/experiments/*.yaml``) with a base recipe and named
variants, each variant a set of ``--set``-style overrides:

```yaml
name: optimizers
description: SGD vs momentum vs Nesterov vs RMSprop vs Adam at their tuned rates.
base: ../digits_mlp.yaml          # a recipe file (relative to this file) or an inline recipe
overrides:                        # applied to every variant, after the variant's own
  fit.early_stopping: false
variants:                         # name -> overrides (dotted keys, as with --set)
  sgd:      {optimizer: {name: sgd, learning_rate: 0.1}}
  adam:     {optimizer.name: adam, optimizer.learning_rate: 0.001}
  cnn:      {recipe: ../digits_cnn.yaml}   # a variant may bring its own recipe instead of base
figures: [curves]                 # curves (default), decision_boundary, grid_heatmap,
                                  # grad_norms, init_stats, learning_rates
```

Instead of ``variants``, ``grid`` names axes whose levels combine (every combination is a
variant, named ``level1-level2``):

```yaml
grid:
  data:  {spirals: {data.name: spirals}, xor: {data.name: xor}}
  depth: {linear: {model.hidden: []}, two_hidden: {model.hidden: [64, 64]}}
```

Each variant's recipe is ``base`` (or its own ``recipe``) + its overrides (grid axes in order)
+ ``overrides`` + the command line's ``--set``, validated before anything trains. Running the
experiment writes one run folder per variant (``OUT/<variant>/``, as `kerasnn train` does),
``summary.csv`` / ``summary.json`` (final, best and test metrics, epochs, wall time per variant,
rewritten after each variant so a kill loses nothing finished), ``experiment.yaml`` (what ran,
self-contained) and the figures (``comparison.png``: train dashed, validation solid, one
colour per variant; ``decision_boundaries.png`` for 2-D data; ``grad_norms.png``: per-layer
gradient norms against depth, ``init_stats.png``: per-layer activation std of the freshly built
models, ``learning_rates.png``: the logged rates overlaid).

Modules: `experiment` (`Experiment`: parsing, validation, variants/grid, overrides, `run`),
`variant` (`Variant`), `results` (`VariantResult`, `ExperimentResult`, the summary tables) and
`figures` (`Figure`, the `FIGURES` registry and the series they draw). Their public names are
re-exported here.
"""

from kerasnn.compare.experiment import EXPERIMENT_KEYS as EXPERIMENT_KEYS
from kerasnn.compare.experiment import Experiment as Experiment
from kerasnn.compare.figures import FIGURES as FIGURES
from kerasnn.compare.figures import Figure as Figure
from kerasnn.compare.figures import grad_norm_profiles as grad_norm_profiles
from kerasnn.compare.figures import init_statistics as init_statistics
from kerasnn.compare.figures import init_std_profiles as init_std_profiles
from kerasnn.compare.results import ExperimentResult as ExperimentResult
from kerasnn.compare.results import VariantResult as VariantResult
from kerasnn.compare.variant import Variant as Variant

__all__ = [
    "EXPERIMENT_KEYS",
    "FIGURES",
    "Experiment",
    "ExperimentResult",
    "Figure",
    "Variant",
    "VariantResult",
    "grad_norm_profiles",
    "init_statistics",
    "init_std_profiles",
]
