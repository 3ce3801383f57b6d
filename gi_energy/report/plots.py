"""Figures of fronts and hypervolume histories, and the axis labels that say how each
energy was metered.

Every figure is built on a bare :class:`matplotlib.figure.Figure` (no pyplot, no backend
chosen: nothing global changes, on a worker or in a notebook) and returned; the writers
(:func:`plot_front`, :func:`write_front_png`, :func:`plot_comparison`) save it. Metrics are
labelled by name: a built-in one with its unit, an energy one with "measured" or
"estimated", any other (a task's own metric) with its own name.
"""

from __future__ import annotations

import textwrap
from collections.abc import Container, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, NullFormatter
from matplotlib.transforms import blended_transform_factory

from gi_energy.pareto import ok_points
from gi_energy.runs.files import atomic_open
from gi_energy.runs.rundir import FRONT_PNG
from gi_energy.tasks.results import Evaluation, Outcome

from .columns import RunColumns, kind_of
from .figures import THRESHOLDS

# How each metric is labelled on a plot axis, with its unit; energy metrics also say how
# they were metered. A metric not listed is labelled with its own name.
AXIS_NAMES = {
    "accuracy": "validation accuracy [fraction]",
    "test_accuracy": "test accuracy [fraction]",
    "train_energy_j": "training energy [J]",
    "inference_energy_j_per_1k": "inference energy per 1,000 samples [J]",
    "energy_spent_j": "energy spent [J]",
    "train_time_s": "training time [s]",
    "inference_time_s_per_1k": "inference time per 1,000 samples [s]",
    "params": "parameters [count]",
    "flops_per_sample": "FLOPs per sample [FLOP]",
}

# The meter window each energy metric comes from (None: both windows).
_ENERGY_WINDOW = {"train_energy_j": ("train",), "inference_energy_j_per_1k": ("inference",),
                  "energy_spent_j": ("train", "inference")}


def is_energy(name: str) -> bool:
    return name in _ENERGY_WINDOW


def energy_kind(evaluations: Iterable[Evaluation], name: str = "energy_spent_j") -> tuple[str | None, list[str]]:
    """("measured" | "estimated" | "partly estimated" | None when no reading, the sources
    such as "rapl:package") of the ok evaluations' readings behind metric ``name``."""
    windows = _ENERGY_WINDOW.get(name, ("train", "inference"))
    readings = [getattr(e, w) for e in evaluations if e.ok for w in windows]
    readings = [r for r in readings if r is not None and not r.missing]
    if not readings:
        return None, []
    return kind_of([r.measured for r in readings]), sorted({f"{r.backend}:{r.scope}" for r in readings})


def metric_label(name: str, kind: str | None = None, sources: Sequence[str] = ()) -> str:
    """An axis label: the metric with its unit; an energy says ``kind`` (and its sources)."""
    base = AXIS_NAMES.get(name, name)
    if not is_energy(name):
        return base
    if kind is None:
        return f"{base} (no reading)"
    return f"{base} ({kind}{', ' + ', '.join(sources) if sources else ''})"


def _log_if_wide(ax, axis: str, values) -> None:
    """A log axis where the values span over two decades (energies do), with only the
    decade labels so tick labels never overlap."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v) or np.any(v <= 0) or v.max() / v.min() <= 100:
        return
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_formatter(LogFormatterSciNotation())
    target.set_minor_formatter(NullFormatter())


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary name, then moved into place)."""
    path = Path(path)
    # runs.files.atomic_open: a unique temporary name (two compares into one folder do not
    # share it), fsync before the move, and no temporary left behind on Ctrl-C or SIGTERM.
    with atomic_open(path, binary=True) as fh:
        fig.savefig(fh, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


# ---------------------------------------------------------------- one run


def front_figure(outcomes: Sequence[Outcome], objectives: Mapping[str, str], front: Sequence[Outcome],
                 title: str = "") -> Figure:
    """2 objectives: a scatter of every ok point with ``front`` highlighted and joined;
    3 or more: a pair plot of every pair, each objective's full label on the diagonal."""
    names = list(objectives)
    kept, _ = ok_points(outcomes, objectives)
    front_keys = {o.key for o in front}
    all_evals = [e for o in outcomes for e in o.evaluations]
    kinds = {n: energy_kind(all_evals, n) for n in names if is_energy(n)}
    values = {n: np.array([o.metric(n) for o in kept], dtype=float) for n in names}
    is_front = np.array([o.key in front_keys for o in kept], dtype=bool)
    return _front_panels(names, values, is_front, kinds, title)


def columns_front_figure(columns: RunColumns, objectives: Mapping[str, str], front_keys: Container[str],
                         title: str = "") -> Figure | None:
    """:func:`front_figure` of a run read column-wise (:class:`~.columns.RunColumns`), the
    front given by its outcomes' keys: the same figure, without an object per point. None
    where the columns cannot name the readings' sources (an older file)."""
    names = list(objectives)
    kinds = {}
    for n in names:
        if is_energy(n):
            kinds[n] = columns.energy_kind(_ENERGY_WINDOW[n])
            if kinds[n] is None:
                return None
    metrics = {n: columns.metric(n) for n in names}
    kept = np.ones(len(columns), dtype=bool)
    for v in metrics.values():
        kept &= ~np.isnan(v)
    is_front = np.array([k in front_keys for k in columns.keys[kept].tolist()], dtype=bool)
    return _front_panels(names, {n: v[kept] for n, v in metrics.items()}, is_front, kinds, title)


def _front_panels(names: Sequence[str], values: Mapping[str, np.ndarray], is_front: np.ndarray,
                  kinds: Mapping[str, tuple[str | None, list[str]]], title: str) -> Figure:
    """:func:`front_figure` from the ok points' values per objective, which of them are on
    the front, and each energy objective's :func:`energy_kind`."""
    labels = {n: metric_label(n, *kinds[n]) if n in kinds else AXIS_NAMES.get(n, n) for n in names}
    # Panels carry the name, unit and measured/estimated; the diagonal adds the sources.
    short = {n: metric_label(n, kinds[n][0]) if n in kinds else AXIS_NAMES.get(n, n) for n in names}

    def scatter(ax, xn, yn, connect: bool):
        x, y = values[xn], values[yn]
        ax.scatter(x[~is_front], y[~is_front], s=14, c="0.7", label="evaluated")
        order = np.argsort(x[is_front])
        # A line through the front reads as a trade-off curve, true only with 2 objectives;
        # in a projection of 3 or more the front's points need not be ordered.
        ax.plot(x[is_front][order], y[is_front][order], "o-" if connect else "o", c="tab:red", ms=5, lw=1,
                label="front (non-dominated)")
        _log_if_wide(ax, "x", x)
        _log_if_wide(ax, "y", y)

    if len(names) == 2:
        # Accuracy (or the first objective) up the side, the cost along the bottom.
        yn, xn = names[0], names[1]
        fig = Figure(figsize=(6.8, 5.0))
        ax = fig.subplots()
        if len(is_front):
            scatter(ax, xn, yn, connect=True)
            ax.legend(loc="best", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no ok evaluation with every objective", ha="center", transform=ax.transAxes)
        ax.set_xlabel(textwrap.fill(labels[xn], 70), fontsize=8)
        ax.set_ylabel(textwrap.fill(labels[yn], 45), fontsize=8)
    else:
        k = len(names)
        fig = Figure(figsize=(3.3 * k, 3.3 * k))
        axes = fig.subplots(k, k, squeeze=False)
        for i, yn in enumerate(names):
            for j, xn in enumerate(names):
                ax = axes[i][j]
                if i == j:
                    # The full label (with measured/estimated and the source) once per
                    # objective; the panels carry the short name so labels never collide.
                    ax.axis("off")
                    ax.text(0.5, 0.5, textwrap.fill(labels[xn], 28), ha="center", va="center", fontsize=8)
                    continue
                if len(is_front):
                    scatter(ax, xn, yn, connect=False)
                ax.set_xlabel(textwrap.fill(short[xn], 32), fontsize=7)
                ax.set_ylabel(textwrap.fill(short[yn], 32), fontsize=7)
                ax.tick_params(labelsize=7)
        handles, legend_labels = axes[0][1].get_legend_handles_labels()
        if handles:
            fig.legend(handles, legend_labels, loc="upper left", fontsize=8)
    fig.suptitle(title or "front", fontsize=10)
    fig.tight_layout()
    return fig


def plot_front(path: Path, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
               front: Sequence[Outcome], title: str = "") -> Path:
    """Write :func:`front_figure` to ``path``."""
    return save_figure(front_figure(outcomes, objectives, front, title), path)


def front_title(label: str, front_size: int, evaluated: int) -> str:
    title = f"{front_size} on the front of {evaluated} evaluated"
    return f"{label}: {title}" if label else title


def write_front_png(run_dir, outcomes: Sequence[Outcome], objectives: Mapping[str, str],
                    front: Sequence[Outcome], label: str = "") -> Path:
    """A run directory's front.png: :func:`front_figure` titled with how many of the
    evaluated points are on the front; ``label`` (e.g. "quickstart grid") starts the title."""
    return plot_front(Path(run_dir) / FRONT_PNG, outcomes, objectives, front,
                      title=front_title(label, len(front), len(outcomes)))


def history_figure(history: Sequence[Mapping], kind: str | None, title: str = "") -> Figure:
    """One run's history.csv: its front's hypervolume (against the run's own fixed
    reference point) relative to the first generation's or batch's, against evaluations
    and against the energy the run spent."""
    rows = [h for h in history if h.get("hypervolume") is not None]
    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2)
    base = next((float(h["hypervolume"]) for h in rows if float(h["hypervolume"]) > 0), None)
    step = "generation" if any("generation" in h for h in history) else "batch"
    if base is None:
        for ax in axes:
            ax.text(0.5, 0.5, "no hypervolume recorded", ha="center", transform=ax.transAxes)
    else:
        ratio = [float(h["hypervolume"]) / base for h in rows]
        evals = [h.get("evaluations") for h in rows]
        joules = [h.get("energy_spent_j") for h in rows]
        axes[0].plot(evals, ratio, "o-", c="tab:blue", ms=4, lw=1.2, label="this run")
        pos = [(j, r) for j, r in zip(joules, ratio) if j is not None and j > 0]
        if pos:
            axes[1].plot([p[0] for p in pos], [p[1] for p in pos], "o-", c="tab:blue", ms=4, lw=1.2,
                         label="this run")
            _log_if_wide(axes[1], "x", [p[0] for p in pos])
        for ax in axes:
            ax.axhline(1.0, c="0.75", lw=0.8, ls=":")
            ax.set_ylabel(f"hypervolume / first {step}'s\n(the run's own reference point)", fontsize=8)
            ax.set_ylim(bottom=min(0.0, min(ratio)), top=max(ratio) * 1.08)
            ax.legend(fontsize=8, loc="lower right")
    axes[0].set_xlabel("evaluations")
    axes[1].set_xlabel(metric_label("energy_spent_j", kind))
    axes[0].set_title("hypervolume against evaluations", fontsize=9)
    axes[1].set_title("hypervolume against energy spent", fontsize=9)
    fig.suptitle(title or "hypervolume history", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- a comparison


def comparison_kind(cmp: Mapping) -> str | None:
    """How the compared runs' energies were metered, in one word for a label."""
    return kind_of([bool(r.get("measured")) for r in cmp["runs"]])


def _colours(runs: Sequence[Mapping]) -> dict[str, str]:
    import matplotlib

    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys(r["label"] for r in runs if not r["reference"]))
    return {lab: cycle[i % len(cycle)] for i, lab in enumerate(labels)}


def median_runs(runs: Sequence[Mapping]) -> dict[str, Mapping]:
    """Per method, its run of median HV ratio (the one its front is drawn for)."""
    by_label: dict[str, list] = {}
    for r in runs:
        if not r["reference"]:
            by_label.setdefault(r["label"], []).append(r)
    return {lab: sorted(rs, key=lambda r: r["hv_ratio"] or 0.0)[len(rs) // 2] for lab, rs in by_label.items()}


def fronts_figure(cmp: Mapping) -> Figure:
    """fronts.png: the reference front and, per method, the front of its median run, in the
    first objective against each other one."""
    names = list(cmp["objectives"])
    signs = np.array([-1.0 if d == "max" else 1.0 for d in cmp["objectives"].values()])
    kind = comparison_kind(cmp)
    colour = _colours(cmp["runs"])
    ref = np.asarray(cmp["reference"]["front"], dtype=float).reshape(-1, len(names)) * signs
    pairs = [(0, j) for j in range(1, len(names))]
    fig = Figure(figsize=(6.4 * len(pairs), 5.0))
    axes = fig.subplots(1, len(pairs), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        order = np.argsort(ref[:, j])
        # With 3+ objectives a 2-D projection of a front is not a staircase: markers only.
        style = "-" if len(names) == 2 else ""
        ax.plot(ref[order, j], ref[order, i], "s" + style, c="k", ms=4, lw=1.2, label="reference front", zorder=3)
        xs = list(ref[:, j])
        for lab, med in median_runs(cmp["runs"]).items():
            pts = np.asarray(med.get("front_points") or np.zeros((0, len(names))), dtype=float) * signs
            if len(pts):
                o = np.argsort(pts[:, j])
                ax.plot(pts[o, j], pts[o, i], "o" + ("--" if style else ""), c=colour[lab], ms=4, lw=0.8,
                        alpha=0.9, label=f"{lab} (median run, HV ratio {_ratio(med['hv_ratio'])})")
                xs += list(pts[:, j])
        ax.set_xlabel(textwrap.fill(metric_label(names[j], kind), 60), fontsize=8)
        ax.set_ylabel(textwrap.fill(metric_label(names[i], kind), 45), fontsize=8)
        _log_if_wide(ax, "x", xs)
        ax.set_title(f"{AXIS_NAMES.get(names[i], names[i])} against {AXIS_NAMES.get(names[j], names[j])}",
                     fontsize=8)
        ax.legend(fontsize=7, loc="best")
    title = "fronts over the reference front"
    if kind and kind != "measured":
        title += f" (energies {kind})"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def hv_history_figure(cmp: Mapping) -> Figure:
    """hv_history.png: every run's hypervolume ratio (over the reference front's) after each
    evaluation, against evaluations and against joules spent, with the 90/95/99 % lines."""
    kind = comparison_kind(cmp)
    colour = _colours(cmp["runs"])
    fig = Figure(figsize=(12, 4.8))
    axes = fig.subplots(1, 2)
    seen: set[str] = set()
    top = 1.0
    joules_all: list[float] = []
    for r in cmp["runs"]:
        t = r["trajectory"]
        c = "k" if r["reference"] else colour[r["label"]]
        lab = "reference (grid order)" if r["reference"] else r["label"]
        kw = {"label": lab} if lab not in seen else {}
        seen.add(lab)
        ratio = [np.nan if h is None else h for h in t["hv_ratio"]]
        finite = [h for h in ratio if np.isfinite(h)]
        top = max([top, *finite])
        lw = 1.5 if r["reference"] else 0.8
        axes[0].plot(t["evaluations"], ratio, c=c, lw=lw, alpha=0.7, **kw)
        # nothing spent yet cannot sit on a log axis
        joules = [j if j is not None and j > 0 else np.nan for j in t["energy_j"]]
        joules_all += [j for j in joules if np.isfinite(j)]
        axes[1].plot(joules, ratio, c=c, lw=lw, alpha=0.7)
    for ax in axes:
        trans = blended_transform_factory(ax.transAxes, ax.transData)
        for q in THRESHOLDS:
            ax.axhline(q, c="0.6", lw=0.7, ls=":")
            ax.text(0.005, q, f"{q:.0%}", transform=trans, fontsize=7, color="0.35", va="bottom")
        ax.set_ylabel("hypervolume / reference front's hypervolume", fontsize=8)
        # Above 1 is possible (a run beyond a non-exhaustive reference): never clip it.
        ax.set_ylim(0, max(1.05, top * 1.05))
    axes[0].set_xlabel("evaluations")
    axes[1].set_xlabel(metric_label("energy_spent_j", kind))
    if joules_all and min(joules_all) > 0:
        axes[1].set_xscale("log")
        axes[1].xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_title("hypervolume ratio against evaluations", fontsize=9)
    axes[1].set_title("hypervolume ratio against energy spent", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("hypervolume ratio over the search", fontsize=10)
    fig.tight_layout()
    return fig


def plot_comparison(cmp: Mapping, out: Path) -> list[Path]:
    """Write fronts.png and hv_history.png under ``out``."""
    out = Path(out)
    return [save_figure(fronts_figure(cmp), out / "fronts.png"),
            save_figure(hv_history_figure(cmp), out / "hv_history.png")]


def _ratio(x) -> str:
    return "–" if x is None else format(x, ".3f")
