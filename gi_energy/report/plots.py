"""Plots of fronts, and the axis labels that say how each energy was metered."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from gi_energy.pareto import ok_points
from gi_energy.runs.rundir import FRONT_PNG
from gi_energy.tasks.results import Evaluation, Outcome

# How each metric is labelled on a plot axis; energy metrics also say how they were metered.
AXIS_NAMES = {
    "accuracy": "validation accuracy",
    "test_accuracy": "test accuracy",
    "train_energy_j": "training energy [J]",
    "inference_energy_j_per_1k": "inference energy per 1,000 samples [J]",
    "train_time_s": "training time [s]",
    "inference_time_s_per_1k": "inference time per 1,000 samples [s]",
    "params": "parameters",
    "flops_per_sample": "FLOPs per sample",
}


_ENERGY_WINDOW = {"train_energy_j": "train", "inference_energy_j_per_1k": "inference"}


def energy_label(name: str, evaluations: Iterable[Evaluation]) -> str:
    """An axis label that says whether the metric was measured or estimated, and by what."""
    base = AXIS_NAMES.get(name, name)
    window = _ENERGY_WINDOW.get(name)
    if window is None:
        return base
    readings = [getattr(e, window) for e in evaluations if e.ok]
    readings = [r for r in readings if r is not None and not r.missing]
    if not readings:
        return f"{base} (no reading)"
    measured = [r.measured for r in readings]
    sources = sorted({f"{r.backend}:{r.scope}" for r in readings})
    if all(measured):
        kind = "measured"
    elif not any(measured):
        kind = "estimated"
    else:
        kind = "partly estimated"
    return f"{base} ({kind}, {', '.join(sources)})"


def plot_front(path: Path, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
               front: Sequence[Outcome], title: str = "") -> None:
    """front.png: 2 objectives a scatter of every ok point with ``front`` (as
    :func:`front_outcomes` gives it) highlighted, 3 or more a pair plot of every pair."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and CI; never pick an interactive backend
    import matplotlib.pyplot as plt

    names = list(objectives)
    kept, _ = ok_points(outcomes, objectives)
    front_keys = {o.key for o in front}
    all_evals = [e for o in outcomes for e in o.evaluations]
    labels = {n: energy_label(n, all_evals) for n in names}
    values = {n: np.array([o.metric(n) for o in kept], dtype=float) for n in names}
    is_front = np.array([o.key in front_keys for o in kept], dtype=bool)

    def scatter(ax, xn, yn, connect: bool):
        x, y = values[xn], values[yn]
        ax.scatter(x[~is_front], y[~is_front], s=14, c="0.7", label="evaluated")
        order = np.argsort(x[is_front])
        # A line through the front reads as a trade-off curve, true only with 2 objectives;
        # in a projection of 3 or more the front's points need not be ordered.
        ax.plot(x[is_front][order], y[is_front][order], "o-" if connect else "o", c="tab:red", ms=5, lw=1,
                label="front")
        for axis_set, v in ((ax.set_xscale, x), (ax.set_yscale, y)):
            # Energies span orders of magnitude; a log axis keeps the cheap end readable.
            if len(v) and np.all(v > 0) and v.max() / v.min() > 100:
                axis_set("log")

    if len(names) == 2:
        # Accuracy (or the first objective) up the side, the cost along the bottom.
        yn, xn = names[0], names[1]
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        if len(kept):
            scatter(ax, xn, yn, connect=True)
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel(labels[xn], fontsize=8)
        ax.set_ylabel(labels[yn], fontsize=8)
    else:
        k = len(names)
        fig, axes = plt.subplots(k, k, figsize=(3.2 * k, 3.2 * k), squeeze=False)
        for i, yn in enumerate(names):
            for j, xn in enumerate(names):
                ax = axes[i][j]
                if i == j:
                    # The full label (with measured/estimated and the source) once per
                    # objective; the panels carry the short name so labels never collide.
                    ax.axis("off")
                    ax.text(0.5, 0.5, textwrap.fill(labels[xn], 30), ha="center", va="center", fontsize=8)
                    continue
                if len(kept):
                    scatter(ax, xn, yn, connect=False)
                ax.set_xlabel(AXIS_NAMES.get(xn, xn), fontsize=7)
                ax.set_ylabel(AXIS_NAMES.get(yn, yn), fontsize=7)
                ax.tick_params(labelsize=7)
    fig.suptitle(title or "front", fontsize=10)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_front_png(run_dir, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
                    front: Sequence[Outcome], label: str = "") -> Path:
    """A run directory's front.png: :func:`plot_front` titled with how many of the
    evaluated points are on the front; ``label`` (e.g. "quickstart grid") starts the title."""
    title = f"{len(front)} on the front of {len(outcomes)} evaluated"
    if label:
        title = f"{label}: {title}"
    path = Path(run_dir) / FRONT_PNG
    plot_front(path, outcomes, objectives, front, title=title)
    return path
