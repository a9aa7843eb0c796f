"""Diagnostics: what the lectures check while a network is built and trained.

- `activation_statistics`: per-layer mean / std / dead and saturated fractions on a probe batch.
- `sanity_check`: initial loss ≈ ln C, regularization raises the loss, a tiny subset overfits.
"""

from kerasnn.diagnostics.layer_stats import LayerStats, activation_layers, activation_statistics
from kerasnn.diagnostics.sanity import SanityCheck, SanityReport, sanity_check

__all__ = [
    "LayerStats",
    "SanityCheck",
    "SanityReport",
    "activation_layers",
    "activation_statistics",
    "sanity_check",
]
