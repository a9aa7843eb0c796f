"""How a training ended: why it stopped, which epoch was best and whose weights the model
kept, read from the early-stopping and NaN-guard callbacks (epochs counted from 1)."""

from __future__ import annotations

import dataclasses

from kerasnn.callbacks import EarlyStopping, NaNGuard

__all__ = ["Outcome", "outcome"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The end of a training, as `FitResult` reports it (1-based epochs)."""

    stop_reason: str
    message: str | None
    best_epoch: int | None
    stopped_epoch: int | None
    kept_weights: str
    kept_epoch: int | None


def outcome(
    n_epochs: int, stopper: EarlyStopping | None, guard: NaNGuard, has_folder: bool
) -> Outcome:
    """Reads the end of a training of `n_epochs` epochs from its callbacks.

    Keras's `EarlyStopping` counts epochs from 0 (`best_epoch`, `stopped_epoch`); the NaN
    guard's `where.epoch` and `restored_epoch` count from 1 (0: the state before training).
    """
    best_epoch: int | None = n_epochs
    if stopper is not None and stopper.best is not None:
        best_epoch = stopper.best_epoch + 1
    # Early stopping's best epoch is always a finite one (kerasnn's EarlyStopping skips the
    # others); its on_train_end restores those weights after the guard put back its state.
    restored_best = (
        stopper is not None and stopper.restore_best_weights and stopper.best_weights is not None
    )
    kept_weights, kept_epoch = ("best", stopper.best_epoch + 1) if restored_best else ("last", None)
    message, stopped_epoch = None, None
    if guard.where is not None:
        stop_reason, stopped_epoch = "nan_loss", guard.where.epoch
        if not restored_best:
            kept_epoch = guard.restored_epoch
            if kept_epoch is None:
                kept_weights = "none"
            elif kept_epoch == 0:
                kept_weights, kept_epoch = "initial", None
            else:
                kept_weights = "last_finite"
            if stopper is None or stopper.best is None:
                best_epoch = kept_epoch
        message = nan_message(guard, stopper, kept_weights, kept_epoch, has_folder)
    elif stopper is not None and stopper.stop_reason:
        stop_reason, message = stopper.stop_reason, stopper.message
        stopped_epoch = stopper.stopped_epoch + 1
    else:
        stop_reason = "completed"
    if kept_weights == "last":
        kept_epoch = n_epochs
    return Outcome(stop_reason, message, best_epoch, stopped_epoch, kept_weights, kept_epoch)


def nan_message(
    guard: NaNGuard,
    stopper: EarlyStopping | None,
    kept_weights: str,
    kept_epoch: int | None,
    has_folder: bool,
) -> str:
    """What a NaN stop did: where the loss went bad, which weights the model holds and why."""
    saved = " (they are the run folder's model.keras)" if has_folder else ""
    not_saved = (
        "; the run folder has no model.keras (history.csv and metrics.json describe the run)"
        if has_folder
        else ""
    )
    if kept_weights == "best":
        if guard.restored_epoch is None:
            optimizer = "was not finite at any epoch's end and was left as it was"
        elif guard.restored_epoch == 0:
            optimizer = "is the one from before training"
        else:
            optimizer = f"is that of epoch {guard.restored_epoch}, the last with a finite loss"
        kept = (
            f"The model holds the weights of epoch {kept_epoch}, the best "
            f"{stopper.monitor} ({float(stopper.best):.6g}), restored by early stopping{saved}; "
            f"its optimizer state {optimizer}."
        )
    elif kept_weights == "last_finite":
        kept = (
            f"The model holds the weights and optimizer state of epoch {kept_epoch}, the "
            f"last epoch that ended with a finite loss{saved}."
        )
    elif kept_weights == "initial":
        kept = (
            "No epoch ended with a finite loss, so no trained weights were kept: the model "
            f"holds its weights and optimizer state from before training again{not_saved}."
        )
    else:
        kept = (
            "No finite weights were kept: the model's weights were not finite before "
            f"training{not_saved}."
        )
    return (
        f"Training stopped: {guard.where.describe()}. {kept} Try a lower learning rate, "
        "gradient clipping (clipnorm) or standardized inputs."
    )
