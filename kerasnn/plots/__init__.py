"""Figures people look at while training, drawn with matplotlib's Agg backend into PNG files.

One module per subsystem; every figure function is re-exported here
(``from kerasnn import plots; plots.plot_history(...)``):

- `history`: one run's curves (`plot_history`) and its learning rate (`plot_lr`).
- `diagnostics`: `plot_lr_find`, `plot_grad_norms`, `plot_update_ratios`, `plot_activation_stats`,
  `plot_sanity`,
  `plot_layer_profiles` (a value per layer against depth).
- `comparison`: several runs side by side (`plot_comparison`, `plot_decision_boundary`,
  `plot_grid_heatmap`, `plot_lr_comparison`).
- `search`: hyperparameter searches compared (`plot_search_progress`).

Importing `kerasnn.plots` imports matplotlib (`import kerasnn` does not). Every ``path=`` PNG is
written atomically: a crash leaves the earlier file or none, never half of one.
"""

from kerasnn.plots.comparison import plot_comparison as plot_comparison
from kerasnn.plots.comparison import plot_decision_boundary as plot_decision_boundary
from kerasnn.plots.comparison import plot_grid_heatmap as plot_grid_heatmap
from kerasnn.plots.comparison import plot_lr_comparison as plot_lr_comparison
from kerasnn.plots.diagnostics import plot_activation_stats as plot_activation_stats
from kerasnn.plots.diagnostics import plot_grad_norms as plot_grad_norms
from kerasnn.plots.diagnostics import plot_layer_profiles as plot_layer_profiles
from kerasnn.plots.diagnostics import plot_lr_find as plot_lr_find
from kerasnn.plots.diagnostics import plot_sanity as plot_sanity
from kerasnn.plots.diagnostics import plot_update_ratios as plot_update_ratios
from kerasnn.plots.history import plot_history as plot_history
from kerasnn.plots.history import plot_lr as plot_lr
from kerasnn.plots.search import plot_search_progress as plot_search_progress

__all__ = [
    "plot_activation_stats",
    "plot_comparison",
    "plot_decision_boundary",
    "plot_grad_norms",
    "plot_grid_heatmap",
    "plot_history",
    "plot_layer_profiles",
    "plot_lr",
    "plot_lr_comparison",
    "plot_lr_find",
    "plot_sanity",
    "plot_search_progress",
    "plot_update_ratios",
]
