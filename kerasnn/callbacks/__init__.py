"""Callbacks kerasnn adds to Keras's own (`keras.callbacks` stays the place for the rest)."""

from kerasnn.callbacks.early_stopping import EarlyStopping as EarlyStopping
from kerasnn.callbacks.history_log import HistoryLog as HistoryLog
from kerasnn.callbacks.history_log import read_history_csv as read_history_csv
from kerasnn.callbacks.nan_guard import NaNGuard as NaNGuard

__all__ = ["EarlyStopping", "HistoryLog", "NaNGuard", "read_history_csv"]
