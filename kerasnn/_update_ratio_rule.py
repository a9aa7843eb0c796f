"""The babysitting rule of thumb for update ratios ‖Δw‖/‖w‖ (no imports: plots read it too).

An update should move a layer's weights by about a thousandth (`TARGET_RATIO`). A ratio more
than 10x away is flagged: below `LOW_RATIO` the layer barely learns (learning rate too low, or
vanishing gradients); above `HIGH_RATIO` the updates are violent (learning rate too high).
"""

__all__ = ["HIGH_RATIO", "LOW_RATIO", "TARGET_RATIO"]

TARGET_RATIO = 1e-3
LOW_RATIO = 1e-4
HIGH_RATIO = 1e-2
