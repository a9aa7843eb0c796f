"""Learning-rate schedules: the lectures' decay forms, warmup-cosine and one-cycle.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule`, evaluated by the optimizer
inside the training graph at every step, and serializable. Keras's own schedules are used where
they already are the formula; only one-cycle is kerasnn's own class.

With ``t`` the epoch index (``unit="epoch"``, the default: ``t = floor(step / steps_per_epoch)``)
or the step index (``unit="step"``):

=================  ================================================  ============================
name               learning rate at ``t``                            Keras class
=================  ================================================  ============================
``step``           ``α₀ · factor ** floor(t / every)``               ExponentialDecay (staircase)
``exponential``    ``α₀ · exp(−k·t)``                                ExponentialDecay
``inverse_time``   ``α₀ / (1 + k·t)``                                InverseTimeDecay
``warmup_cosine``  linear ``initial_lr → α₀`` over ``warmup``, then  CosineDecay (warmup)
                   cosine ``α₀ → alpha·α₀`` until the end
``one_cycle``      fastai's fit_one_cycle (see `OneCycle`)           `OneCycle`
=================  ================================================  ============================

In recipes a schedule is written ``fit: {lr_schedule: {one_cycle: {pct_start: 0.3}}}`` (or a bare
name); `kerasnn.fit` fills in ``α₀`` (the optimizer's learning rate unless given),
`steps_per_epoch` and the number of epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from kerasnn._validation import invalid, one_of, positive_int

__all__ = [
    "OneCycle",
    "bind_momentum",
    "exponential",
    "get",
    "inverse_time",
    "momentum_attribute",
    "momentum_value",
    "names",
    "one_cycle",
    "step_decay",
    "warmup_cosine",
]

UNITS = ("epoch", "step")
LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def _positive(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise invalid(argument, "a number > 0", value)
    return float(value)


def _non_negative(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise invalid(argument, "a number >= 0", value)
    return float(value)


def _unit_steps(unit: str, steps_per_epoch: int) -> int:
    """Steps per unit of ``t``."""
    one_of("unit", unit, UNITS)
    return positive_int("steps_per_epoch", steps_per_epoch) if unit == "epoch" else 1


def step_decay(
    initial_learning_rate: float,
    factor: float,
    every: int,
    *,
    unit: str = "epoch",
    steps_per_epoch: int = 1,
) -> LearningRateSchedule:
    """Step decay: ``α₀ · factor ** floor(t / every)`` (multiply by `factor` every `every` units).

    Args:
        initial_learning_rate: ``α₀`` > 0.
        factor: multiplier in (0, 1], e.g. 0.5 halves the rate.
        every: number of epochs (or steps) between two multiplications, > 0.
        unit: ``"epoch"`` or ``"step"``. Defaults to ``"epoch"``.
        steps_per_epoch: training steps per epoch (used when ``unit="epoch"``). Defaults to 1.

    Returns:
        A `keras.optimizers.schedules.ExponentialDecay` with ``staircase=True``.

    Raises:
        ValueError: a non-positive rate or `every`, a factor outside (0, 1], an unknown unit.

    Example:

    >>> s = step_decay(0.1, 0.5, every=2, steps_per_epoch=10)
    >>> [round(float(s(step)), 4) for step in (0, 19, 20, 40)]
    [0.1, 0.1, 0.05, 0.025]
    """
    _positive("initial_learning_rate", initial_learning_rate)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor <= 1:
        raise invalid("factor", "a number in (0, 1]", factor)
    positive_int("every", every)
    return keras.optimizers.schedules.ExponentialDecay(
        float(initial_learning_rate),
        decay_steps=every * _unit_steps(unit, steps_per_epoch),
        decay_rate=float(factor),
        staircase=True,
    )


def exponential(
    initial_learning_rate: float, k: float, *, unit: str = "epoch", steps_per_epoch: int = 1
) -> LearningRateSchedule:
    """Exponential decay ``α₀ · exp(−k·t)``.

    Args:
        initial_learning_rate: ``α₀`` > 0.
        k: decay constant >= 0 per epoch (or per step).
        unit: ``"epoch"`` (``t`` is the epoch index, constant within an epoch) or ``"step"``.
            Defaults to ``"epoch"``.
        steps_per_epoch: training steps per epoch. Defaults to 1.

    Returns:
        A `keras.optimizers.schedules.ExponentialDecay` with ``decay_rate = exp(−k)``.

    Example:

    >>> s = exponential(0.1, k=0.5, unit="step")
    >>> round(float(s(2)), 6) == round(0.1 * math.exp(-1.0), 6)
    True
    """
    _positive("initial_learning_rate", initial_learning_rate)
    _non_negative("k", k)
    return keras.optimizers.schedules.ExponentialDecay(
        float(initial_learning_rate),
        decay_steps=_unit_steps(unit, steps_per_epoch),
        decay_rate=math.exp(-float(k)),
        staircase=True,
    )


def inverse_time(
    initial_learning_rate: float, k: float, *, unit: str = "epoch", steps_per_epoch: int = 1
) -> LearningRateSchedule:
    """1/t decay ``α₀ / (1 + k·t)``.

    Args:
        initial_learning_rate: ``α₀`` > 0.
        k: decay constant >= 0 per epoch (or per step).
        unit: ``"epoch"`` or ``"step"``. Defaults to ``"epoch"``.
        steps_per_epoch: training steps per epoch. Defaults to 1.

    Returns:
        A `keras.optimizers.schedules.InverseTimeDecay`.

    Example:

    >>> s = inverse_time(0.1, k=1.0, steps_per_epoch=5)
    >>> [round(float(s(step)), 4) for step in (0, 4, 5, 10)]
    [0.1, 0.1, 0.05, 0.0333]
    """
    _positive("initial_learning_rate", initial_learning_rate)
    _non_negative("k", k)
    return keras.optimizers.schedules.InverseTimeDecay(
        float(initial_learning_rate),
        decay_steps=_unit_steps(unit, steps_per_epoch),
        decay_rate=float(k),
        staircase=True,
    )


def warmup_cosine(
    initial_learning_rate: float,
    total: int,
    *,
    warmup: int = 0,
    initial_lr: float = 0.0,
    alpha: float = 0.0,
    unit: str = "epoch",
    steps_per_epoch: int = 1,
) -> LearningRateSchedule:
    """Linear warm-up from `initial_lr` to ``α₀``, then cosine decay to ``alpha·α₀``.

    Warm-up and decay move every step (``unit`` only says what `total` and `warmup` count).

    Args:
        initial_learning_rate: ``α₀``, the peak rate reached after the warm-up, > 0.
        total: length of the whole schedule (warm-up included), > 0.
        warmup: length of the warm-up, in [0, total). Defaults to 0.
        initial_lr: rate at step 0 of the warm-up, >= 0. Defaults to 0.
        alpha: final rate as a fraction of ``α₀``, in [0, 1]. Defaults to 0.
        unit: ``"epoch"`` or ``"step"``. Defaults to ``"epoch"``.
        steps_per_epoch: training steps per epoch. Defaults to 1.

    Returns:
        A `keras.optimizers.schedules.CosineDecay` with warm-up.

    Example:

    >>> s = warmup_cosine(1.0, total=10, warmup=2, unit="step")
    >>> [round(float(s(step)), 3) for step in (0, 1, 2, 6, 10)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    peak = _positive("initial_learning_rate", initial_learning_rate)
    per = _unit_steps(unit, steps_per_epoch)
    positive_int("total", total)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < total:
        raise invalid("warmup", f"an integer in [0, total={total})", warmup)
    start = _non_negative("initial_lr", initial_lr)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise invalid("alpha", "a number in [0, 1]", alpha)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(peak, total * per, alpha=float(alpha))
    return keras.optimizers.schedules.CosineDecay(
        start,
        decay_steps=(total - warmup) * per,
        alpha=float(alpha),
        warmup_target=peak,
        warmup_steps=warmup * per,
    )


@keras.saving.register_keras_serializable(package="kerasnn")
class OneCycle(LearningRateSchedule):
    """One-cycle policy as fastai's `fit_one_cycle`: LR up then down, momentum down then up.

    Over the first ``pct_start`` of `total_steps` the rate rises from ``max_lr / div_factor`` to
    ``max_lr`` along a cosine; over the rest it falls along a cosine to
    ``max_lr / (div_factor · final_div_factor)``. The momentum (``beta_1`` of Adam-family
    optimizers) follows ``moms`` the opposite way: ``moms[0] → moms[1] → moms[2]``. Steps past
    `total_steps` keep the final values.

    The momentum is cycled only after `bind_momentum` (which `kerasnn.fit` calls when
    ``cycle_momentum`` is on); the schedule then writes it into a variable each time the
    optimizer evaluates the rate, i.e. once per step, inside the training graph.

    Args:
        max_lr: peak learning rate, > 0.
        total_steps: steps of the whole cycle, > 0.
        pct_start: fraction of the steps spent rising, in (0, 1). Defaults to 0.25.
        div_factor: ``max_lr / starting rate``, >= 1. Defaults to 25.
        final_div_factor: ``starting rate / final rate``, >= 1. Defaults to 1e5.
        moms: momentum at the start, at the peak and at the end, each in [0, 1).
            Defaults to ``(0.95, 0.85, 0.95)``.
        cycle_momentum: whether `kerasnn.fit` binds the momentum. Defaults to `True`.

    Example:

    >>> s = OneCycle(max_lr=1.0, total_steps=100, pct_start=0.25, div_factor=10)
    >>> [round(float(s(step)), 3) for step in (0, 25)]
    [0.1, 1.0]
    >>> round(float(s.momentum(25)), 3)
    0.85
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.25,
        div_factor: float = 25.0,
        final_div_factor: float = 1e5,
        moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
        cycle_momentum: bool = True,
    ) -> None:
        self.max_lr = _positive("max_lr", max_lr)
        self.total_steps = positive_int("total_steps", total_steps)
        if isinstance(pct_start, bool) or not isinstance(pct_start, int | float):
            raise invalid("pct_start", "a float in (0, 1)", pct_start)
        if not 0 < pct_start < 1:
            raise invalid("pct_start", "a float in (0, 1)", pct_start)
        self.pct_start = float(pct_start)
        for argument, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
                raise invalid(argument, "a number >= 1", value)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        moms = tuple(moms)
        if len(moms) != 3 or not all(
            isinstance(m, int | float) and not isinstance(m, bool) and 0 <= m < 1 for m in moms
        ):
            raise invalid("moms", "three numbers in [0, 1)", moms)
        self.moms = tuple(float(m) for m in moms)
        self.cycle_momentum = bool(cycle_momentum)
        self._momentum_variable: Any = None

    @property
    def warmup_steps(self) -> int:
        """Steps of the rising phase (at least 1)."""
        return max(1, round(self.pct_start * self.total_steps))

    def _phase(self, step: Any, start: float, peak: float, end: float) -> Any:
        ops = keras.ops
        step = ops.minimum(ops.cast(step, "float32"), float(self.total_steps))
        up = float(self.warmup_steps)
        down = float(max(1, self.total_steps - self.warmup_steps))
        pct_up = ops.minimum(step / up, 1.0)
        pct_down = ops.clip((step - up) / down, 0.0, 1.0)

        def cos(a: float, b: float, pct: Any) -> Any:
            return b + (a - b) / 2.0 * (ops.cos(math.pi * pct) + 1.0)

        return ops.where(step < up, cos(start, peak, pct_up), cos(peak, end, pct_down))

    def __call__(self, step: Any) -> Any:
        start = self.max_lr / self.div_factor
        lr = self._phase(step, start, self.max_lr, start / self.final_div_factor)
        if self._momentum_variable is not None:
            self._momentum_variable.assign(self.momentum(step))
        return lr

    def momentum(self, step: Any) -> Any:
        """The momentum at `step` (a tensor)."""
        return self._phase(step, *self.moms)

    def get_config(self) -> dict[str, Any]:
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "moms": list(self.moms),
            "cycle_momentum": self.cycle_momentum,
        }


def one_cycle(
    initial_learning_rate: float,
    total: int,
    *,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1e5,
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
    cycle_momentum: bool = True,
    unit: str = "epoch",
    steps_per_epoch: int = 1,
) -> OneCycle:
    """`OneCycle` over `total` epochs (or steps) peaking at ``initial_learning_rate``.

    Args:
        initial_learning_rate: the peak rate ``max_lr``, > 0.
        total: length of the cycle, > 0.
        pct_start, div_factor, final_div_factor, moms, cycle_momentum: as in `OneCycle`.
        unit: ``"epoch"`` or ``"step"``. Defaults to ``"epoch"``.
        steps_per_epoch: training steps per epoch. Defaults to 1.

    Returns:
        A `OneCycle`.
    """
    positive_int("total", total)
    return OneCycle(
        initial_learning_rate,
        total * _unit_steps(unit, steps_per_epoch),
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        moms=moms,
        cycle_momentum=cycle_momentum,
    )


# Momentum attribute per optimizer class name: Keras reads it as a tensor inside the graph.
_MOMENTUM_ATTRIBUTES = {
    "Adam": "beta_1",
    "AdamW": "beta_1",
    "Adamax": "beta_1",
    "Nadam": "beta_1",
    "Lion": "beta_1",
}


def momentum_attribute(optimizer: keras.optimizers.Optimizer) -> str:
    """The optimizer attribute a one-cycle schedule cycles (``beta_1``).

    Raises:
        ValueError: the optimizer has no momentum Keras reads as a tensor (SGD's momentum is a
            Python constant in Keras 3): use an Adam-family optimizer or
            ``cycle_momentum=False``.
    """
    # By the nearest Keras class, so subclasses (kerasnn's fused optimizers) count too.
    attribute = next(
        (
            _MOMENTUM_ATTRIBUTES[c.__name__]
            for c in type(optimizer).__mro__
            if c.__name__ in _MOMENTUM_ATTRIBUTES
        ),
        None,
    )
    if attribute is None:
        raise ValueError(
            "Received an invalid value for argument optimizer, expected an Adam-family "
            f"optimizer ({', '.join(sorted(_MOMENTUM_ATTRIBUTES))}) to cycle the momentum of a "
            "one_cycle schedule (Keras 3 reads SGD's momentum as a Python constant). Pass "
            f"cycle_momentum=False. Received: optimizer={type(optimizer).__name__}"
        )
    return attribute


def bind_momentum(schedule: OneCycle, optimizer: keras.optimizers.Optimizer) -> Callable[[], None]:
    """Lets `schedule` cycle `optimizer`'s momentum (``beta_1``) every step.

    The optimizer's ``beta_1`` float is replaced by a variable the schedule assigns; call the
    returned function to put the original float back (needed before saving the optimizer).
    The model's train function must be rebuilt afterwards (``make_train_function(force=True)``).

    Raises:
        ValueError: see `momentum_attribute`.
    """
    import tensorflow as tf

    attribute = momentum_attribute(optimizer)
    original = getattr(optimizer, attribute)
    variable = tf.Variable(schedule.moms[0], dtype="float32", trainable=False, name="momentum")
    setattr(optimizer, attribute, variable)
    schedule._momentum_variable = variable

    def unbind() -> None:
        setattr(optimizer, attribute, original)
        schedule._momentum_variable = None

    return unbind


def momentum_value(optimizer: keras.optimizers.Optimizer) -> float | None:
    """The optimizer's current momentum (``momentum`` or ``beta_1``), or `None`."""
    for attribute in ("beta_1", "momentum"):
        value = getattr(optimizer, attribute, None)
        if value is not None:
            return float(np.asarray(value))
    return None


# name -> factory; α₀, steps_per_epoch and (for the cyclic ones) total are filled in by fit.
_FACTORIES: dict[str, Callable[..., LearningRateSchedule]] = {
    "step": step_decay,
    "exponential": exponential,
    "inverse_time": inverse_time,
    "warmup_cosine": warmup_cosine,
    "one_cycle": one_cycle,
}
_NEEDS_TOTAL = ("warmup_cosine", "one_cycle")


def names() -> list[str]:
    """Schedule names usable in recipes and `get`."""
    return sorted(_FACTORIES)


def _split_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return one_of("lr_schedule", spec, names()), {}
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((name, args),) = spec.items()
        one_of("lr_schedule", name, names())
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise invalid(f"lr_schedule.{name}", "a mapping of arguments", args)
        return name, dict(args)
    raise invalid(
        "lr_schedule",
        f"a schedule name ({', '.join(names())}), a one-entry mapping "
        "{name: {argument: value}} or a LearningRateSchedule",
        spec,
    )


def get(
    spec: str | Mapping[str, Any] | LearningRateSchedule,
    *,
    learning_rate: float,
    steps_per_epoch: int,
    epochs: int,
) -> LearningRateSchedule:
    """Builds a schedule from its recipe form, filling in what training knows.

    Args:
        spec: ``"one_cycle"``, ``{"step": {"factor": 0.5, "every": 10}}``, or a schedule (returned
            as is).
        learning_rate: ``α₀`` unless the spec sets ``initial_learning_rate``.
        steps_per_epoch: training steps per epoch.
        epochs: number of epochs: the default ``total`` of warmup_cosine / one_cycle (in
            epochs; in steps when ``unit: step``).

    Returns:
        A `LearningRateSchedule`.

    Raises:
        ValueError: an unknown name (with the known ones), an unknown argument (with the
            accepted ones) or a bad value.

    Example:

    >>> s = get({"step": {"factor": 0.5, "every": 1}}, learning_rate=0.1,
    ...               steps_per_epoch=10, epochs=5)
    >>> round(float(s(10)), 3)
    0.05
    """
    if isinstance(spec, LearningRateSchedule):
        return spec
    name, args = _split_spec(spec)
    factory = _FACTORIES[name]
    import inspect

    accepted = [p for p in inspect.signature(factory).parameters if p != "steps_per_epoch"]
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise ValueError(
            f"Received an invalid argument for lr_schedule {name!r}: {', '.join(unknown)}. "
            f"It accepts: {', '.join(accepted)}."
        )
    args.setdefault("initial_learning_rate", learning_rate)
    if name in _NEEDS_TOTAL and "total" not in args:
        in_steps = args.get("unit", "epoch") == "step"
        args["total"] = epochs * steps_per_epoch if in_steps else epochs
    missing = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.default is p.empty and p.name not in args
    ]
    if missing:
        raise ValueError(
            f"The lr_schedule {name!r} needs the argument(s) {', '.join(missing)}. "
            f"Received: {args!r}"
        )
    return factory(**args, steps_per_epoch=steps_per_epoch)
