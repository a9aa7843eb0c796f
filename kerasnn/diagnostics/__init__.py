"""Diagnostics: what the lectures check while a network is built and trained.

- `activation_statistics`: per-layer mean / std / dead and saturated fractions on a probe batch.
"""

from kerasnn.diagnostics.layer_stats import LayerStats, activation_layers, activation_statistics

__all__ = ["LayerStats", "activation_layers", "activation_statistics"]
