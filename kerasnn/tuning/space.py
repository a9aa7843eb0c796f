"""The declarative search space: entries, their syntax, `when`/`by` conditions, declaration order.

A space maps recipe keys (``section.key``) to how they are sampled::

    model.l2: {log_uniform: [1.0e-6, 1.0e-3]}
    model.dropout: {uniform: [0.0, 0.5]}
    model.depth: {int: [1, 3]}
    model.units: {choice: [64, 128, 256]}      # one width per hidden layer (units_1, units_2…)
    optimizer.name: {choice: [sgd, momentum, adam]}
    optimizer.momentum: {uniform: [0.5, 0.99], when: {optimizer.name: [momentum]}}
    optimizer.learning_rate:                    # one range per optimizer; one for all would be
      by: optimizer.name                        #   {log_uniform: [1.0e-4, 1.0e-1]}
      log_uniform: {sgd: [1.0e-2, 0.5], momentum: [1.0e-3, 0.1], adam: [1.0e-4, 1.0e-2]}
    fit.batch_size: {choice: [32, 64]}
    model.batchnorm: false                      # a bare value is fixed

Sections are ``model`` (builder arguments), ``optimizer`` (`kerasnn.optimizers.get`
arguments, ``name`` included) and ``fit`` (`kerasnn.fit` arguments). Three virtual keys build
lists and data-dependent steps: ``model.depth`` with ``model.units`` gives the MLP's ``hidden``
(the CNN's ``dense``) with one sampled width per layer; ``model.conv_depth`` with
``model.conv_filters`` gives the CNN's ``filters``. ``model.lsuv: {choice: [false, true]}``
samples the recipe's LSUV switch (`kerasnn.initializers.lsuv`). ``when`` makes an entry
conditional on another ``choice`` or ``int`` entry of the space (KerasTuner's conditional
scopes); ``by`` gives
an entry its own range (or options) for each value of another entry — one conditional
KerasTuner hyperparameter per value, named ``key[value]`` (``optimizer.learning_rate[adam]``: a
column of the results table each), written to the recipe key of the value drawn.

Keys may come in any order: each entry is declared after the entries it depends on (its
``when``/``by`` parent, ``model.depth`` for ``model.units``, ``model.conv_depth`` for
``model.conv_filters``), otherwise in the order written — the order of the results table's
columns and of a grid search's axes (KerasTuner's grid steps the last one first). Random
search draws each trial in an order of its own (parents first, then by name: see
`kerasnn.tuning.tuner`), so one space written in any key order samples the same
configurations for a seed.

Two checks, both before the first trial, name the entry in their errors:

- `SearchSpace.from_config` parses the space: an empty choice, ``min > max``, a log range that
  is not > 0, an unknown section, a ``when``/``by`` on a key the space does not have, entries
  that depend on each other in a cycle, a rate or batch size out of range. It imports neither
  Keras nor KerasTuner (``declare`` takes KerasTuner's ``HyperParameters`` duck-typed), so a
  recipe's ``search.space`` is parsed before TensorFlow loads.
- `SearchSpace.check_values` checks the names against kerasnn's registries (activations,
  initializers, optimizers, augmentation presets), which import Keras; `kerasnn.search` runs it
  when the search starts.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from kerasnn._validation import is_number, one_of

__all__ = ["KINDS", "SECTIONS", "VIRTUAL_KEYS", "Entry", "SearchSpace"]

KINDS = ("log_uniform", "uniform", "int", "choice")
_OPTIONS = ("when", "step", "default")
SECTIONS = ("model", "optimizer", "fit")
# Virtual keys: (depth key, width key) -> builder argument receiving the list of widths.
_LISTS = {
    ("model.depth", "model.units"): {"mlp": "hidden", "cnn": "dense", "residual_mlp": None},
    ("model.conv_depth", "model.conv_filters"): {"cnn": "filters"},
}
#: The virtual keys: sampled, but written to the recipe as the builder's lists of widths.
VIRTUAL_KEYS = frozenset(key for pair in _LISTS for key in pair)


def _entry_error(name: str, expected: str, received: Any) -> ValueError:
    return ValueError(
        f"Received an invalid value for search entry {name!r}, expected {expected}. "
        f"Received: {name}={received!r}"
    )


@dataclasses.dataclass(frozen=True)
class Entry:
    """One validated entry of a space.

    Attributes:
        name: the recipe key, e.g. ``"optimizer.learning_rate"``.
        kind: ``"log_uniform"``, ``"uniform"``, ``"int"``, ``"choice"`` or ``"fixed"``.
        values: ``[low, high]`` for ranges, the options for ``choice``, ``[value]`` if fixed.
        step: grid step for ranges (`None`: continuous). Defaults to `None`.
        when: ``(parent entry, allowed parent values)`` or `None`.
        default: the value a grid search starts from. Defaults to KerasTuner's.
        label: the KerasTuner hyperparameter's name (a column of the results table), when it
            is not `name`: ``by`` gives each parent value its own, e.g.
            ``optimizer.learning_rate[adam]`` (KerasTuner keeps one value per name, so
            same-named conditional hyperparameters would overwrite each other).
    """

    name: str
    kind: str
    values: tuple[Any, ...]
    step: Any = None
    when: tuple[str, tuple[Any, ...]] | None = None
    default: Any = None
    label: str | None = None

    @property
    def log(self) -> bool:
        """Whether the entry is sampled on a log scale."""
        return self.kind == "log_uniform"

    def declare(self, hp: Any, name: str | None = None) -> Any:
        """Declares the entry on `hp` (under `name`, default its label or name) and returns its
        value.

        Args:
            hp: a `keras_tuner.HyperParameters` (anything with its ``Fixed``, ``Boolean``,
                ``Choice``, ``Int`` and ``Float`` methods).
            name: the hyperparameter's name. Defaults to the entry's label, else its name.
        """
        name = name or self.label or self.name
        extra = {} if self.default is None else {"default": self.default}
        if self.kind == "fixed":
            return hp.Fixed(name, self.values[0])
        if self.kind == "choice" and all(isinstance(v, bool) for v in self.values):
            # KerasTuner's Choice turns booleans into 0/1; Boolean keeps them.
            if len(self.values) == 1:
                return hp.Fixed(name, self.values[0])
            return hp.Boolean(name, default=bool(self.default))
        if self.kind == "choice":
            return hp.Choice(name, list(self.values), **extra)
        if self.kind == "int":
            return hp.Int(name, self.values[0], self.values[1], step=self.step or 1, **extra)
        sampling = "log" if self.log else "linear"
        return hp.Float(
            name, self.values[0], self.values[1], step=self.step, sampling=sampling, **extra
        )


def _parent_options(
    where: str, parent: Any, earlier: Mapping[str, Entry | None]
) -> tuple[Any, ...]:
    """The options of `parent`, the choice/int entry that `where` is conditional on.

    `earlier` holds the entries parsed so far (parents are parsed first, see
    `_declaration_order`), `None` for a ``by`` entry (one hyperparameter per value: not a
    parent).
    """
    if not isinstance(parent, str) or parent not in earlier:
        raise _entry_error(
            where, f"the name of a choice or int entry of the space (it has no {parent!r})", parent
        )
    entry = earlier[parent]
    if entry is None or entry.kind not in ("choice", "int"):
        kind = "a `by` entry" if entry is None else f"a {entry.kind} entry"
        raise _entry_error(
            where, f"the name of a choice or int entry of the space ({parent} is {kind})", parent
        )
    if any(parent == width for _, width in _LISTS):
        depth = next(d for d, w in _LISTS if w == parent)
        raise _entry_error(
            where,
            f"a choice or int entry other than {parent} (one width per layer, declared as "
            f"{parent}_1, {parent}_2…; condition on {depth} instead)",
            parent,
        )
    options = entry.values
    if entry.kind == "int":
        options = tuple(range(options[0], options[1] + 1))
    return options


def _check_key(name: Any) -> None:
    if not isinstance(name, str) or name.count(".") != 1 or name.split(".")[0] not in SECTIONS:
        raise ValueError(
            f"Received an invalid search entry name, expected section.key with section one of "
            f"{', '.join(SECTIONS)} (e.g. optimizer.learning_rate). Received: {name!r}"
        )


def _dependencies(name: str, spec: Any, keys: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(option, key)`` for each key of the space that entry `name` depends on: its ``when``
    parent, its ``by`` parent, or (``"depth"``) the depth key of a width key. A parent that is
    not in the space is left to `_parent_options`, which names it."""
    found = []
    if isinstance(spec, Mapping):
        when = spec.get("when")
        if isinstance(when, Mapping) and len(when) == 1:
            found.append(("when", next(iter(when))))
        if "by" in spec:
            found.append(("by", spec["by"]))
    found += [("depth", depth) for depth, width in _LISTS if width == name]
    return [(option, key) for option, key in found if isinstance(key, str) and key in keys]


def _declaration_order(config: Mapping[str, Any]) -> list[str]:
    """The keys of `config` in the order their entries are declared: every key after the keys
    it depends on (`_dependencies`), otherwise in the order written (a stable topological
    order: a space whose parents already come first keeps its order).

    Raises:
        ValueError: entries that depend on each other in a cycle, named.
    """
    depends = {name: _dependencies(name, spec, config) for name, spec in config.items()}
    waiting = {name: {key for _, key in deps} for name, deps in depends.items()}
    users: dict[str, list[str]] = {name: [] for name in config}
    for name, keys in waiting.items():
        for key in keys:
            users[key].append(name)
    position = {name: i for i, name in enumerate(config)}
    ready = [(position[name], name) for name, keys in waiting.items() if not keys]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for user in users[name]:
            waiting[user].discard(name)
            if not waiting[user]:
                heapq.heappush(ready, (position[user], user))
    if len(order) < len(config):
        # Each key left waits on another key left: follow them from the first to a repeat.
        path = [min(name for name in config if waiting[name])]
        while path[-1] not in path[:-1]:
            path.append(min(waiting[path[-1]]))
        cycle = path[path.index(path[-1]) :]
        child, parent = cycle[-2], cycle[-1]
        option = next(o for o, key in depends[child] if key == parent)
        expected = (
            f"another entry ({child} cannot depend on itself)"
            if child == parent
            else f"an entry that does not depend back on {child} (a cycle, each entry "
            f"depending on the next: {' -> '.join(cycle)})"
        )
        raise _entry_error(f"{child}.{option}", expected, parent)
    return order


def _parse_entry(name: Any, spec: Any, earlier: Mapping[str, Entry | None]) -> list[Entry]:
    """Parses one entry of a space: one `Entry`, or one per parent value with ``by`` (in the
    order of the parent's options, whatever the order of the mapping)."""
    if not isinstance(spec, Mapping) or "by" not in spec:
        return [_parse_one(name, spec, earlier)]
    parent = spec["by"]
    kinds = [k for k in spec if k in KINDS]
    unknown = [k for k in spec if k not in (*KINDS, "by")]
    if unknown or len(kinds) != 1:
        raise _entry_error(
            name,
            f"with by: exactly one of {', '.join(KINDS)} (a mapping parent value -> its range "
            "or options) and no when/step/default",
            dict(spec),
        )
    kind = kinds[0]
    options = _parent_options(f"{name}.by", parent, earlier)
    per_value = spec[kind]
    if not isinstance(per_value, Mapping) or not per_value:
        raise _entry_error(
            f"{name}.{kind}", f"with by: a mapping {{{parent} value: {kind} value}}", per_value
        )
    bad = [v for v in per_value if v not in options]
    if bad:
        raise _entry_error(f"{name}.{kind}", f"keys among {parent}'s {list(options)}", bad)
    entries = []
    for value, raw in sorted(per_value.items(), key=lambda item: options.index(item[0])):
        try:
            entry = _parse_one(name, {kind: raw, "when": {parent: [value]}}, earlier)
        except ValueError as err:
            raise ValueError(f"{err} (the {kind} for {parent}={value!r})") from None
        entries.append(dataclasses.replace(entry, label=f"{name}[{value}]"))
    return entries


def _parse_one(name: Any, spec: Any, earlier: Mapping[str, Entry | None]) -> Entry:
    _check_key(name)
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):
            raise _entry_error(name, "a value or {choice: [...]} (a bare list is ambiguous)", spec)
        return Entry(name, "fixed", (spec,))
    kinds = [k for k in spec if k in KINDS]
    unknown = [k for k in spec if k not in KINDS and k not in _OPTIONS]
    if unknown or len(kinds) != 1:
        raise _entry_error(
            name,
            f"a mapping with exactly one of {', '.join(KINDS)} (and optionally "
            f"{', '.join(_OPTIONS)})",
            dict(spec),
        )
    kind = kinds[0]
    raw = spec[kind]
    if kind == "choice":
        if not isinstance(raw, list) or not raw:
            raise _entry_error(name, "a non-empty list for choice", raw)
        if not all(isinstance(v, str | int | float | bool) for v in raw):
            raise _entry_error(name, "choice values that are strings, numbers or booleans", raw)
        if len({type(v) for v in raw}) > 1 and not all(is_number(v) for v in raw):
            raise _entry_error(name, "choice values of one type", raw)
        if len(set(raw)) != len(raw):
            raise _entry_error(name, "distinct choice values", raw)
        values: tuple[Any, ...] = tuple(raw)
        if len({type(v) for v in raw}) > 1:  # ints and floats: KerasTuner's Choice takes one type
            values = tuple(float(v) for v in raw)
    else:
        if not isinstance(raw, list) or len(raw) != 2 or not all(is_number(v) for v in raw):
            raise _entry_error(name, f"{kind}: [min, max] with two finite numbers", raw)
        low, high = raw
        if kind == "int" and not all(isinstance(v, int) for v in raw):
            raise _entry_error(name, "int: [min, max] with two integers", raw)
        if low > high:
            raise _entry_error(name, f"{kind}: [min, max] with min <= max", raw)
        if kind != "int" and low == high:
            raise _entry_error(name, f"{kind}: [min, max] with min < max", raw)
        if kind == "log_uniform" and low <= 0:
            raise _entry_error(name, "log_uniform: [min, max] with 0 < min (a log range)", raw)
        values = (low, high)
    step = spec.get("step")
    if step is not None and (kind == "choice" or not is_number(step) or step <= 0):
        raise _entry_error(f"{name}.step", "a number > 0, only for int/uniform/log_uniform", step)
    when = spec.get("when")
    condition = None
    if when is not None:
        if not isinstance(when, Mapping) or len(when) != 1:
            raise _entry_error(f"{name}.when", "a mapping {parent_entry: [values]}", when)
        (parent, allowed), *_ = when.items()
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        options = _parent_options(f"{name}.when", parent, earlier)
        bad = [v for v in allowed if v not in options]
        if bad or not allowed:
            raise _entry_error(
                f"{name}.when", f"values among {parent}'s {list(options)}", list(allowed)
            )
        condition = (parent, allowed)
    default = spec.get("default")
    if kind == "choice" and is_number(default) and isinstance(values[0], float):
        default = float(default)
    return Entry(name, kind, values, step=step, when=condition, default=default)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A parsed declarative search space.

    Build one with `SearchSpace.from_config(mapping, builder=...)`; `check_values()` checks
    its names against kerasnn's registries; `declare(hp)` declares every entry on a
    `keras_tuner.HyperParameters` and returns the sampled values, and
    `apply(recipe_config, values)` writes them into a recipe mapping. `entries` are in
    declaration order: each after the entries it depends on, otherwise as written.

    Example:

    >>> space = SearchSpace.from_config({"optimizer.learning_rate": {"log_uniform": [1e-3, 1]}})
    >>> space.entries[0].log
    True
    """

    entries: tuple[Entry, ...]
    builder: str = "mlp"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, builder: str = "mlp") -> SearchSpace:
        """Parses and validates a space mapping, in any key order (imports nothing heavy).

        Each entry is parsed (and declared) after the entries it depends on (its ``when`` or
        ``by`` parent; ``model.depth`` for ``model.units``, ``model.conv_depth`` for
        ``model.conv_filters``), otherwise in the order written; a ``by`` entry's branches
        follow the parent's options. The names the entries hold are checked against kerasnn's
        registries by `check_values`, a step of its own.

        Args:
            config: the space, ``{recipe key: sampling rule or fixed value}``.
            builder: the model builder the space is for (``mlp``, ``cnn``, ``residual_mlp``):
                it decides what ``model.depth``/``model.units`` build. Defaults to ``"mlp"``.

        Raises:
            ValueError: an invalid entry, named in the message — including a ``when``/``by``
                parent the space does not have (or that is not a choice/int entry) and entries
                that depend on each other in a cycle.
        """
        if not isinstance(config, Mapping) or not config:
            raise ValueError(
                "Received an invalid value for argument space, expected a non-empty mapping of "
                f"recipe keys to sampling rules. Received: space={config!r}"
            )
        for name in config:
            _check_key(name)
        # Parents first (a when/by parent, model.depth before model.units), else as written.
        parsed: dict[str, Entry | None] = {}  # None: a `by` entry, never a parent
        entries: list[Entry] = []
        for name in _declaration_order(config):
            branches = _parse_entry(name, config[name], parsed)
            entries += branches
            parsed[name] = branches[0] if branches[0].label is None else None
        space = cls(tuple(entries), builder=builder)
        space._check_entries()
        return space

    def for_builder(self, builder: str) -> SearchSpace:
        """This space for another model builder (checked again: the lists it builds differ).

        Raises:
            ValueError: the space has depth/width entries that `builder` does not take.
        """
        if builder == self.builder:
            return self
        space = dataclasses.replace(self, builder=builder)
        space._check_entries()
        return space

    def __getitem__(self, name: str) -> Entry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def names(self) -> list[str]:
        """The entries' recipe keys, in declaration order (a ``by`` entry once per branch)."""
        return [e.name for e in self.entries]

    def _check_entries(self) -> None:
        """The checks that need nothing but the space: depth/width pairs and plain values."""
        names = self.names()
        for depth, width in _LISTS:
            target = _LISTS[(depth, width)]
            if (depth in names) != (width in names):
                missing = width if depth in names else depth
                raise _entry_error(
                    missing,
                    f"to be given together with {depth if missing == width else width}",
                    None,
                )
            if depth in names:
                if self.builder not in target or target[self.builder] is None:
                    raise _entry_error(
                        depth,
                        f"a builder among {', '.join(k for k, v in target.items() if v)}",
                        self.builder,
                    )
                d = self[depth]
                if d.kind not in ("int", "fixed", "choice") or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in d.values
                ):
                    raise _entry_error(depth, "an int entry (or choice) of depths >= 0", d.values)
                w = self[width]
                if w.kind not in ("int", "choice", "fixed") or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in w.values
                ):
                    raise _entry_error(width, "positive integer widths", list(w.values))
                if d.when or w.when:
                    raise _entry_error(f"{depth}.when", "no condition on depth/width", d.when)
        for entry in self.entries:
            values = entry.values  # choice options, or a range's bounds
            if entry.name == "model.lsuv":
                if not all(isinstance(v, bool) for v in values):
                    raise _entry_error(entry.name, "true/false values", list(values))
            elif entry.name in _VALUE_RULES:
                rule, check = _VALUE_RULES[entry.name]
                if not all(check(v) for v in values):
                    raise _entry_error(entry.name, rule, list(values))

    def check_values(self) -> None:
        """Checks the entries' names against kerasnn's registries: activations, initializers,
        optimizers and augmentation presets.

        The registries import Keras, so this is a step of its own (parsing stays light):
        `kerasnn.search` runs it when a search starts, before the first trial.

        Raises:
            ValueError: a name the registry does not hold, with the allowed ones and a close
                match (``search entry model.activation ... Did you mean 'relu'?``).
        """
        from kerasnn import activations, augment, initializers, optimizers  # Keras: lazily

        names_of = {
            "model.activation": activations.names,
            "model.initializer": initializers.names,
            "optimizer.name": optimizers.names,
        }
        presets = list(augment.PRESETS)
        for entry in self.entries:
            if entry.name in names_of:
                allowed = names_of[entry.name]()
                for value in entry.values:
                    _check_name(entry.name, value, allowed)
            elif entry.name == "model.augment" and not all(
                v is False or (isinstance(v, str) and v in presets) for v in entry.values
            ):
                rule = f"preset names ({', '.join(presets)}) or false"
                raise _entry_error(entry.name, rule, list(entry.values))

    # -- sampling -------------------------------------------------------------------------------
    def declare(self, hp: Any) -> dict[str, Any]:
        """Declares the space on `hp` (the same order every call) and returns the active values.

        `hp` is a `keras_tuner.HyperParameters` (duck-typed: its ``conditional_scope`` and the
        methods `Entry.declare` uses).

        The widths of ``model.units`` become ``model.units_1``, ``model.units_2``…, each active
        only when the sampled depth reaches its layer.
        """
        values: dict[str, Any] = {}
        width_of = {depth: width for depth, width in _LISTS}
        widths = set(width_of.values())
        for entry in self.entries:
            if entry.name in widths:
                depth = next(d for d, w in width_of.items() if w == entry.name)
                d = self[depth]
                low, high = (
                    (d.values[0], d.values[-1])
                    if d.kind != "choice"
                    else (min(d.values), max(d.values))
                )
                options = d.values if d.kind == "choice" else tuple(range(low, high + 1))
                for i in range(1, high + 1):
                    layer_name = f"{entry.name}_{i}"
                    if i <= low:
                        values[layer_name] = entry.declare(hp, layer_name)
                        continue
                    active = [v for v in options if v >= i]
                    with hp.conditional_scope(depth, active):
                        value = entry.declare(hp, layer_name)
                    if values.get(depth, 0) >= i:
                        values[layer_name] = value
                continue
            if entry.when is not None:
                parent, allowed = entry.when
                with hp.conditional_scope(parent, list(allowed)):
                    value = entry.declare(hp)
                if parent in values and values[parent] in allowed:
                    values[entry.name] = value
                continue
            values[entry.name] = entry.declare(hp)
        return values

    def apply(self, config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        """Writes sampled `values` into a recipe mapping; returns the new mapping."""
        out = copy.deepcopy(dict(config))
        for section in SECTIONS:
            if not isinstance(out.get(section), dict):
                out[section] = {} if out.get(section) is None else out[section]
        if isinstance(out.get("optimizer"), str):
            out["optimizer"] = {"name": out["optimizer"]}
        for (depth, width), target in _LISTS.items():
            if depth in values:
                n = values[depth]
                argument = target[self.builder]
                out["model"][argument] = [values[f"{width}_{i}"] for i in range(1, n + 1)]
        for name, value in values.items():
            if name in VIRTUAL_KEYS or any(name.startswith(f"{w}_") for _, w in _LISTS):
                continue
            section, key = name.split(".")
            out[section][key] = value
        return out


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


_VALUE_RULES = {
    "model.dropout": ("rates in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    "fit.batch_size": ("positive integers", _positive_int),
    "fit.epochs": ("positive integers", _positive_int),
    "optimizer.learning_rate": ("numbers > 0", lambda v: is_number(v) and v > 0),
    "model.l1": ("numbers >= 0", lambda v: is_number(v) and v >= 0),
    "model.l2": ("numbers >= 0", lambda v: is_number(v) and v >= 0),
}


def _check_name(entry: str, value: Any, allowed: Sequence[str]) -> None:
    try:
        one_of(entry, value, allowed)
    except ValueError as err:
        raise ValueError(str(err).replace("argument", "search entry", 1)) from None
