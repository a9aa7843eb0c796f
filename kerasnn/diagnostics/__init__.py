"""Diagnostics: what the lectures check while a network is built and trained.

- `activation_statistics`: per-layer mean / std / dead and saturated fractions on a probe batch.
- `init_report`: those statistics at initialisation as a table, with the depth-wise std ratio.
- `gradcheck`: central finite differences in float64 vs autodiff gradients.
"""

from kerasnn.diagnostics.gradcheck import GradcheckResult, VariableCheck, gradcheck
from kerasnn.diagnostics.init_report import InitReport, init_report
from kerasnn.diagnostics.layer_stats import LayerStats, activation_layers, activation_statistics

__all__ = [
    "GradcheckResult",
    "InitReport",
    "LayerStats",
    "VariableCheck",
    "activation_layers",
    "activation_statistics",
    "gradcheck",
    "init_report",
]
