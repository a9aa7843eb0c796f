"""Callbacks kerasnn adds to Keras's own (`keras.callbacks` stays the place for the rest)."""

from kerasnn.callbacks.activation_stats import ActivationStats as ActivationStats
from kerasnn.callbacks.early_stopping import EarlyStopping as EarlyStopping
from kerasnn.callbacks.gradient_norms import GradientNorms as GradientNorms
from kerasnn.callbacks.history_log import HistoryLog as HistoryLog
from kerasnn.callbacks.history_log import read_history_csv as read_history_csv
from kerasnn.callbacks.learning_rate import LearningRateLogger as LearningRateLogger
from kerasnn.callbacks.lr_finder import LRFinder as LRFinder
from kerasnn.callbacks.lr_finder import LRFindResult as LRFindResult
from kerasnn.callbacks.nan_guard import NaNGuard as NaNGuard
from kerasnn.callbacks.registry import get as get
from kerasnn.callbacks.registry import names as names
from kerasnn.callbacks.seed_state import SeedState as SeedState
from kerasnn.callbacks.update_ratios import UpdateRatios as UpdateRatios

__all__ = [
    "ActivationStats",
    "EarlyStopping",
    "GradientNorms",
    "HistoryLog",
    "LRFindResult",
    "LRFinder",
    "LearningRateLogger",
    "NaNGuard",
    "SeedState",
    "UpdateRatios",
    "get",
    "names",
    "read_history_csv",
]
