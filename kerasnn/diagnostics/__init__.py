"""Diagnostics: what the lectures check while a network is built and trained.

- `activation_statistics`: per-layer mean / std / dead and saturated fractions on a probe batch
  (defined in `kerasnn.layer_stats`, beside the layers, so callbacks and LSUV can use it).
- `init_report`: those statistics at initialisation as a table, with the depth-wise std ratio.
- `gradcheck`: central finite differences in float64 vs autodiff gradients.
- `sanity_check`: initial loss ≈ ln C, regularization raises the loss, a tiny subset overfits.
- `lr_find`: the learning-rate range test on a model and data, the model put back as it was.
"""

from kerasnn.diagnostics.gradient_check import GradcheckResult as GradcheckResult
from kerasnn.diagnostics.gradient_check import VariableCheck as VariableCheck
from kerasnn.diagnostics.gradient_check import gradcheck as gradcheck
from kerasnn.diagnostics.initialization import InitReport as InitReport
from kerasnn.diagnostics.initialization import init_report as init_report
from kerasnn.diagnostics.lr_range_test import lr_find as lr_find
from kerasnn.diagnostics.sanity import SanityCheck as SanityCheck
from kerasnn.diagnostics.sanity import SanityReport as SanityReport
from kerasnn.diagnostics.sanity import sanity_check as sanity_check
from kerasnn.layer_stats import LayerStats as LayerStats
from kerasnn.layer_stats import activation_layers as activation_layers
from kerasnn.layer_stats import activation_statistics as activation_statistics

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
    "lr_find",
    "sanity_check",
]
