"""Diagnostics: what the lectures check while a network is built and trained.

- `activation_statistics`: per-layer mean / std / dead and saturated fractions on a probe batch.
- `init_report`: those statistics at initialisation as a table, with the depth-wise std ratio.
- `gradcheck`: central finite differences in float64 vs autodiff gradients.
- `sanity_check`: initial loss ≈ ln C, regularization raises the loss, a tiny subset overfits.
"""

from kerasnn.diagnostics.gradcheck import GradcheckResult, VariableCheck, gradcheck
from kerasnn.diagnostics.init_report import InitReport, init_report
from kerasnn.diagnostics.layer_stats import LayerStats, activation_layers, activation_statistics
from kerasnn.diagnostics.sanity import SanityCheck, SanityReport, sanity_check

__all__ = [
    "GradcheckResult",
    "InitReport",
    "LayerStats",
    "SanityCheck",
    "SanityReport",
    "VariableCheck",
    "activation_layers",
    "activation_statistics",
    "gradcheck",
    "init_report",
    "sanity_check",
]
