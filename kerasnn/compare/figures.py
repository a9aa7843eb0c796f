"""The figures an experiment can ask for, by name (`FIGURES`), and the series they draw.

- ``curves`` (``comparison.png``): train dashed, validation solid, one colour per variant.
- ``decision_boundary`` (``decision_boundaries.png``): each trained model on 2-D data.
- ``grid_heatmap`` (``grid_heatmap.png``): the final loss over a two-axis grid.
- ``grad_norms`` (``grad_norms.png``): per-layer gradient norms against depth
  (`grad_norm_profiles`).
- ``init_stats`` (``init_stats.png``, ``init_stats.json``): per-layer activation std of the
  freshly built models (`init_std_profiles`, `init_statistics`).
- ``learning_rates`` (``learning_rates.png``): the logged rates overlaid.

matplotlib and Keras are imported when a figure is drawn, not with this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kerasnn import _atomic, _json, datasets
from kerasnn.compare.results import ExperimentLike, ExperimentResult, VariantResult
from kerasnn.recipe import Recipe

__all__ = ["FIGURES", "Figure", "grad_norm_profiles", "init_statistics", "init_std_profiles"]


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure an experiment can ask for: ``draw(result) -> PNG path``.

    `check(experiment)`, when given, raises `ValueError` before any training if the figure
    cannot be drawn for these variants.
    """

    draw: Callable[[ExperimentResult], Path]
    check: Callable[[ExperimentLike], None] | None = None


def _draw_curves(result: ExperimentResult) -> Path:
    from kerasnn import plots

    path = result.out / "comparison.png"
    plots.plot_comparison(
        {r.name: r.history for r in result.results},
        test={r.name: r.metrics["test_metrics"] or {} for r in result.results},
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


def _load_data(recipe: Recipe) -> Any:
    return datasets.load(**({"seed": recipe.seed} | recipe.data))


def _check_two_features(experiment: ExperimentLike) -> None:
    for variant in experiment.variants:
        shape = _load_data(variant.recipe).input_shape
        if tuple(shape) != (2,):
            raise ValueError(
                f"Received figures=['decision_boundary'] for variant {variant.name!r} whose data "
                f"has input shape {shape}; decision boundaries need 2 features (spirals, xor)."
            )


def _draw_decision_boundaries(result: ExperimentResult) -> Path:
    import keras
    import matplotlib.pyplot as plt

    from kerasnn import plots

    axes_spec = result.experiment.axes
    if len(axes_spec) == 2:
        rows, cols = (len(levels) for levels in axes_spec.values())
    else:
        cols = min(len(result.results), 3)
        rows = -(-len(result.results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(result.results) :]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, result.results, strict=False):
        if not (r.run_dir / "model.keras").exists():  # went NaN in its first epoch: no model
            ax.set_title(f"{r.name}\nno model (no finite epoch)", fontsize=9)
            ax.set_axis_off()
            continue
        model = keras.saving.load_model(r.run_dir / "model.keras")
        data = _load_data(r.recipe)
        accuracy = (r.metrics["test_metrics"] or {}).get("accuracy")
        title = r.name if accuracy is None else f"{r.name}\ntest accuracy {accuracy:.3f}"
        plots.plot_decision_boundary(model, data.x_train, data.y_train, ax=ax, title=title)
    fig.suptitle(result.experiment.description or result.experiment.name, fontsize=10)
    fig.tight_layout()
    path = result.out / "decision_boundaries.png"
    with _atomic.replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def _check_two_axes(experiment: ExperimentLike) -> None:
    if len(experiment.axes) != 2:
        raise ValueError(
            "Received figures=['grid_heatmap'] for an experiment without a two-axis grid; "
            f"it needs 'grid' with exactly 2 axes. Received: axes={list(experiment.axes)}"
        )


def _draw_grid_heatmap(result: ExperimentResult) -> Path:
    from kerasnn import plots

    (row_axis, rows), (col_axis, cols) = result.experiment.axes.items()
    key = "final_val_loss" if all("final_val_loss" in r.row() for r in result.results) else None
    key = key or "final_loss"
    values = {(r.levels[row_axis], r.levels[col_axis]): r.row()[key] for r in result.results}
    path = result.out / "grid_heatmap.png"
    plots.plot_grid_heatmap(
        [[values[(a, b)] for b in cols] for a in rows],
        rows=rows,
        cols=cols,
        row_label=row_axis,
        col_label=col_axis,
        value_label=key.replace("_", " "),
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


def _logs_gradient_norms(recipe: Recipe) -> bool:
    """Whether a recipe's fit logs per-layer gradient norms (the ``gradient_norms`` callback)."""
    for spec in recipe.fit.get("callbacks") or []:
        if spec == "gradient_norms":
            return True
        if isinstance(spec, Mapping) and "gradient_norms" in spec:
            return (spec["gradient_norms"] or {}).get("per_layer", True) is not False
    return False


def _check_gradient_norms(experiment: ExperimentLike) -> None:
    for variant in experiment.variants:
        if not _logs_gradient_norms(variant.recipe):
            raise ValueError(
                f"Received figures=['grad_norms'] for variant {variant.name!r} whose fit does "
                "not log per-layer gradient norms; add the callback to the base recipe, e.g. "
                "fit.callbacks: [{gradient_norms: {every_n_steps: 50}}]. Received: "
                f"callbacks={variant.recipe.fit.get('callbacks')!r}"
            )


def _weight_layers(result: VariantResult) -> list[str]:
    """Names of the variant's layers with a kernel (Dense/Conv/Maxout), input side first."""
    import keras

    if not (result.run_dir / "model.keras").exists():  # went NaN in its first epoch: no model
        return []
    model = keras.saving.load_model(result.run_dir / "model.keras")
    names = [layer.name for layer in model.layers if hasattr(layer, "kernel")]
    return [name for name in names if f"grad_norm/{name}" in result.history]


def grad_norm_profiles(
    result: ExperimentResult,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[str]]]:
    """Per-layer gradient norms of every variant after the first and after the last epoch.

    Read from the ``grad_norm/<layer>`` columns the gradient-norm callback logged, for the
    layers with a kernel (input side first).

    Returns:
        ``(profiles, layers)``: ``{"after epoch 1": {variant: [norm per layer]}, "after epoch
        N": {...}}`` (N: the shortest run's last epoch; one panel when N = 1) and panel ->
        layer names.
    """
    last = min(len(r.history["loss"]) for r in result.results)
    epochs = {"after epoch 1": 0} | ({f"after epoch {last}": last - 1} if last > 1 else {})
    profiles: dict[str, dict[str, list[float]]] = {panel: {} for panel in epochs}
    layers: dict[str, list[str]] = {}
    for r in result.results:
        names = _weight_layers(r)
        for panel, epoch in epochs.items():
            profiles[panel][r.name] = [r.history[f"grad_norm/{n}"][epoch] for n in names]
            layers.setdefault(panel, names)
    return profiles, layers


def _draw_grad_norms(result: ExperimentResult) -> Path:
    """Per-layer gradient norms against depth after the first and the last epoch."""
    from kerasnn import plots

    profiles, layers = grad_norm_profiles(result)
    path = result.out / "grad_norms.png"
    plots.plot_layer_profiles(
        profiles,
        layers=layers,
        ylabel="gradient L2 norm of the layer's weights",
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


def init_statistics(recipe: Recipe, *, probe_size: int = 512) -> list[Any]:
    """Per-layer activation statistics of a recipe's freshly built model (before training).

    The model is built exactly as `Recipe.run` builds it (same seed, so the same initial weights;
    LSUV applied when the recipe asks for it) and probed on the first `probe_size` training
    samples.

    Args:
        recipe: the recipe.
        probe_size: number of training samples in the probe batch. Defaults to 512.

    Returns:
        One `kerasnn.diagnostics.LayerStats` per activation layer, output layer last.
    """
    from kerasnn.diagnostics import activation_statistics

    data, model = recipe.build()
    return activation_statistics(model, data.x_train[:probe_size])


def init_std_profiles(
    result: ExperimentResult,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """The std of each hidden activation of every variant's freshly built model.

    Returns:
        ``(profiles, table)``: ``{"activation: <name>": {label: [std per hidden layer]}}``
        (one panel per activation function; in a grid with an ``activation`` axis a variant is
        labelled by its other levels) and variant -> every activation layer's statistics
        (`LayerStats.to_dict`, the output layer included).
    """
    profiles: dict[str, dict[str, list[float]]] = {}
    table: dict[str, Any] = {}
    for r in result.results:
        stats = init_statistics(r.recipe)
        hidden = stats[:-1] if len(stats) > 1 else stats
        panel = f"activation: {r.recipe.model.get('activation', 'relu')}"
        label = "-".join(v for k, v in r.levels.items() if k != "activation") or r.name
        profiles.setdefault(panel, {})[label] = [s.std for s in hidden]
        table[r.name] = [s.to_dict() for s in stats]
    return profiles, table


def _draw_init_stats(result: ExperimentResult) -> Path:
    """Std of each hidden activation at initialisation, one panel per activation function.

    Also writes ``init_stats.json``: variant -> every activation layer's statistics.
    """
    from kerasnn import plots

    profiles, table = init_std_profiles(result)
    _atomic.write_text(result.out / "init_stats.json", _json.dumps(table, indent=2) + "\n")
    path = result.out / "init_stats.png"
    plots.plot_layer_profiles(
        profiles,
        ylabel="std of the layer's activations at init",
        path=path,
        title=(result.experiment.description or result.experiment.name)
        + " - activations at initialisation",
    )
    return path


def _draw_learning_rates(result: ExperimentResult) -> Path:
    from kerasnn import plots

    path = result.out / "learning_rates.png"
    plots.plot_lr_comparison(
        {r.name: r.history for r in result.results},
        path=path,
        title=result.experiment.description or result.experiment.name,
    )
    return path


FIGURES: dict[str, Figure] = {
    "curves": Figure(_draw_curves),
    "decision_boundary": Figure(_draw_decision_boundaries, _check_two_features),
    "grid_heatmap": Figure(_draw_grid_heatmap, _check_two_axes),
    "grad_norms": Figure(_draw_grad_norms, _check_gradient_norms),
    "init_stats": Figure(_draw_init_stats),
    "learning_rates": Figure(_draw_learning_rates),
}
