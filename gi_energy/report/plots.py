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

from .figures import THRESHOLDS

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


def plot_comparison(cmp: Mapping, runs: Sequence[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    names = list(cmp["objectives"])
    signs = np.array([-1.0 if d == "max" else 1.0 for d in cmp["objectives"].values()])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys(r["label"] for r in runs if not r["reference"]))
    colour = {lab: colours[i % len(colours)] for i, lab in enumerate(labels)}

    # fronts.png: the reference front, and per method the front of its median run.
    ref = np.asarray(cmp["reference"]["front"]) * signs
    pairs = [(0, j) for j in range(1, len(names))]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.0 * len(pairs), 4.6), squeeze=False)
    by_label = {}
    for r in runs:
        if not r["reference"]:
            by_label.setdefault(r["label"], []).append(r)
    for ax, (i, j) in zip(axes[0], pairs):
        order = np.argsort(ref[:, j])
        # With 3+ objectives a 2-D projection of a front is not a staircase: markers only.
        style = "-" if len(names) == 2 else ""
        ax.plot(ref[order, j], ref[order, i], "s" + style, c="k", ms=4, lw=1.2, label="reference front", zorder=3)
        for lab, rs in by_label.items():
            rs = sorted(rs, key=lambda r: r["hv_ratio"] or 0.0)
            med = rs[len(rs) // 2]
            pts = np.asarray(med["front_points"]) * signs if med.get("front_points") else np.zeros((0, len(names)))
            if len(pts):
                o = np.argsort(pts[:, j])
                ax.plot(pts[o, j], pts[o, i], "o" + ("--" if style else ""), c=colour[lab], ms=4, lw=0.8, alpha=0.9,
                        label=f"{lab} (median run, HV ratio {_ratio(med['hv_ratio'])})")
        ax.set_xlabel(names[j])
        ax.set_ylabel(names[i])
        vals = ref[:, j]
        if len(vals) and np.all(vals > 0) and vals.max() / vals.min() > 100:
            ax.set_xscale("log")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("fronts over the reference front", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "fronts.png", dpi=110)
    plt.close(fig)

    # hv_history.png: against evaluations and against joules spent.
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    seen = set()
    for r in runs:
        t = r["trajectory"]
        c = "k" if r["reference"] else colour[r["label"]]
        lab = ("reference (grid order)" if r["reference"] else r["label"])
        kw = {"label": lab} if lab not in seen else {}
        seen.add(lab)
        ratio = [np.nan if h is None else h for h in t["hv_ratio"]]
        axes[0].plot(t["evaluations"], ratio, c=c, lw=0.8 if not r["reference"] else 1.5, alpha=0.6, **kw)
        # nothing spent yet cannot sit on a log axis
        joules = [j if j > 0 else np.nan for j in t["energy_j"]]
        axes[1].plot(joules, ratio, c=c, lw=0.8 if not r["reference"] else 1.5, alpha=0.6)
    for ax, xl in zip(axes, ("evaluations", "energy spent [J]")):
        for q in THRESHOLDS:
            ax.axhline(q, c="0.8", lw=0.6, ls=":")
        ax.set_xlabel(xl)
        ax.set_ylabel("hypervolume / reference hypervolume")
        ax.set_ylim(0, 1.05)
    axes[1].set_xscale("log")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "hv_history.png", dpi=110)
    plt.close(fig)


def _ratio(x) -> str:
    return "–" if x is None else format(x, ".3f")
