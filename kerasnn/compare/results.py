"""What an experiment's run returns: one result per variant and the summary tables.

`VariantResult` reads a finished variant back from its run folder; `ExperimentResult` holds them
all and formats the summary table that `write_tables` writes as ``summary.csv`` and
``summary.json`` (atomically, after each variant, so a kill loses nothing finished).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from kerasnn import _atomic, _json
from kerasnn.compare.variant import Variant
from kerasnn.recipe import Recipe

__all__ = ["ExperimentLike", "ExperimentResult", "VariantResult", "write_tables"]


class ExperimentLike(Protocol):
    """What results and figures read of a `kerasnn.compare.Experiment`.

    `Experiment` runs its variants into these results and draws these figures, so its module
    imports this one; naming the class here would close an import circle.
    """

    name: str
    variants: list[Variant]
    figures: list[str]
    axes: dict[str, list[str]]
    description: str | None
    config: dict[str, Any]


@dataclasses.dataclass
class VariantResult:
    """A finished variant, read back from its run folder.

    Attributes:
        name: variant name.
        levels: grid axis -> level (empty for plain variants).
        recipe: the resolved recipe that ran.
        run_dir: the run folder.
        history: metric -> one value per epoch (from ``history.csv``).
        metrics: the run's ``metrics.json`` (best/final/test metrics, epochs, wall time…).
    """

    name: str
    levels: dict[str, str]
    recipe: Recipe
    run_dir: Path
    history: dict[str, list[float]]
    metrics: dict[str, Any]

    @classmethod
    def read(cls, variant: Variant, folder: Path) -> VariantResult:
        from kerasnn.callbacks import read_history_csv

        rows = read_history_csv(folder / "history.csv")
        history = {k: [float(r[k]) for r in rows] for k in rows[0] if k != "epoch"}
        metrics = _json.read(folder / "metrics.json")
        recipe = Recipe.from_yaml(folder / "recipe.yaml")
        return cls(variant.name, dict(variant.levels), recipe, folder, history, metrics)

    def row(self) -> dict[str, Any]:
        """One summary-table row: final, best-epoch and test metrics, gap, epochs, time."""
        m = self.metrics
        row: dict[str, Any] = {"variant": self.name, **self.levels}
        row |= {
            "epochs": m["epochs"],
            "best_epoch": m["best_epoch"],
            "stop_reason": m["stop_reason"],
        }
        row |= {f"final_{k}": v for k, v in m["final_metrics"].items()}
        if "val_loss" in m["final_metrics"]:
            row["final_gap"] = m["final_metrics"]["val_loss"] - m["final_metrics"]["loss"]
        if "val_accuracy" in m["final_metrics"]:
            final = m["final_metrics"]
            row["final_accuracy_gap"] = final["accuracy"] - final["val_accuracy"]
        row |= {f"best_{k}": v for k, v in m["best_metrics"].items()}
        row |= {f"test_{k}": v for k, v in (m["test_metrics"] or {}).items()}
        row["wall_time_s"] = m["wall_time"]
        row["run_dir"] = str(self.run_dir)
        return row

    def line(self) -> str:
        test = self.metrics["test_metrics"] or {}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items())
        return (
            f"{self.name}: test {shown} | {self.metrics['epochs']} epochs "
            f"({self.metrics['stop_reason']}) in {self.metrics['wall_time']:.1f} s "
            f"-> {self.run_dir}"
        )


@dataclasses.dataclass
class ExperimentResult:
    """What `Experiment.run` returns.

    Attributes:
        experiment: the `Experiment` that ran.
        out: its output folder.
        results: one `VariantResult` per variant, in order.
        figures: figure name -> PNG path.
    """

    experiment: ExperimentLike
    out: Path
    results: list[VariantResult]
    figures: dict[str, Path]

    def table(self) -> list[dict[str, Any]]:
        """The summary table, one row per variant (as in ``summary.csv``)."""
        return [r.row() for r in self.results]

    def summary(self, columns: Sequence[str] | None = None) -> str:
        """The summary table as aligned text (headline columns unless `columns` is given)."""
        rows = self.table()
        if columns is None:
            wanted = ["variant", *self.experiment.axes, "epochs", "best_epoch"]
            wanted += [
                c
                for c in rows[0]
                if c.startswith(("final_", "test_"))
                and not c.startswith(("final_auc", "final_val_auc"))
            ]
            wanted.append("wall_time_s")
            columns = [c for c in wanted if any(c in r for r in rows)]
        cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def write_tables(out: Path, results: Sequence[VariantResult]) -> None:
    """Writes ``summary.csv`` and ``summary.json`` in `out`: one row per finished variant."""
    rows = [r.row() for r in results]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic.write_text(out / "summary.csv", buffer.getvalue())
    _atomic.write_text(out / "summary.json", _json.dumps(rows, indent=2) + "\n")
