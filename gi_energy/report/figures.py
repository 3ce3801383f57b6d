"""One run as a comparison sees it, and its figures against a reference front:
hypervolume (ratio, trajectory, evaluations and joules to reach a threshold), IGD+,
additive epsilon, coverage, and the headline energy saving for one accuracy point (or one
point of the problem's one maximised quality objective where accuracy is not an objective).

Every figure is taken in one normalised space (bounds from the union of all runs and the
reference) against one reference point, ``REFERENCE_POINT`` per objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gi_energy.errors import UsageError
from gi_energy.pareto import nondominated
from gi_energy.runs.lock import holder_gone
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import BUILTIN_METRICS, Outcome

from .columns import RunColumns
from .indicators import Normaliser, coverage, epsilon_additive, hypervolume, igd_plus

REFERENCE_POINT = 1.1  # per objective, in normalised space: the worst point seen plus 10%


THRESHOLDS = (0.90, 0.95, 0.99)


ACCURACY_TOLERANCE = 0.01  # "one accuracy point"


ENERGY_METRIC = "inference_energy_j_per_1k"


@dataclass
class Run:
    """One run directory as compare sees it: its evaluations column-wise (:mod:`.columns`)."""

    path: Path
    info: dict
    label: str
    columns: RunColumns
    replayed: bool = False
    measured: bool = False
    is_reference: bool = False
    result: dict = field(default_factory=dict)
    constraints: dict[str, float] | None = None  # None: the run did not record any
    status: str = "unknown"


def run_status(path, info: Mapping) -> str:
    """run.json's status ("complete", "interrupted", "failed", "running"); "interrupted"
    for a run that says "running" while the process that held its lock is gone (killed
    before it could write its status)."""
    status = str(info.get("status", "unknown"))
    if status == "running" and holder_gone(Path(path)):
        return "interrupted"
    return status


def load_run(path, label: str | None = None) -> Run:
    """Read a run directory; UsageError naming the path if it is not one or has no results."""
    rd = RunDirectory.open(path)
    info = rd.read_run_json()
    if not rd.has_results():
        raise UsageError(f"{path}: the run has no evaluations.csv yet")
    columns = RunColumns.read(path)
    settings = info.get("settings") or {}
    replayed = bool(info.get("replayed") or settings.get("replay") or settings.get("replayed")
                    or settings.get("evaluator") == "ReplayEvaluator")
    ok = columns.row_ok
    name = label or info.get("label") or settings.get("label") or (
        str(info.get("command", "run")) + (" (replay)" if replayed and info.get("command") != "grid" else ""))
    return Run(path=Path(path), info=info, label=str(name), columns=columns, replayed=replayed,
               measured=bool(ok.any()) and bool(columns.row_measured[ok].all()),
               constraints=_constraints_of(Path(path), settings), status=run_status(path, info))


def _constraints_of(path: Path, settings: Mapping) -> dict[str, float] | None:
    """run.json settings.constraints; else the constraints of the run's problem.toml
    (runs written before grids recorded them); None when neither says."""
    if "constraints" in settings:
        return {str(k): float(v) for k, v in (settings.get("constraints") or {}).items()}
    from gi_energy.config.parse import load_problem

    try:
        return dict(load_problem(path / "problem.toml").constraints) or None
    except Exception:  # noqa: BLE001 - an unreadable problem.toml just says nothing about constraints
        return None


def objectives_of(run: Run) -> dict[str, str]:
    obj = run.info.get("objectives")
    if obj:
        return dict(obj)
    from gi_energy.config.parse import load_problem

    try:
        return dict(load_problem(run.path / "problem.toml").objectives)
    except Exception as exc:  # any unreadable problem.toml is the same user-facing fault
        raise UsageError(f"{run.path}: run.json names no objectives and problem.toml cannot be read: {exc}") \
            from None


def hv_trajectory(outcomes: Sequence[Outcome], objectives, norm: Normaliser, ref_point,
                  spent_flags: Sequence[Sequence[bool]] | None = None,
                  constraints: Mapping[str, float] | None = None) -> dict[str, list]:
    """Hypervolume after each evaluation, in the order the run made them, with the
    evaluations and joules spent so far: the joules the run counted as its own
    (``spent_flags``, per outcome and evaluation; default: not cached). Only points
    meeting ``constraints`` add hypervolume; every evaluation adds its cost."""
    columns = RunColumns.from_outcomes(outcomes, spent_flags)
    return trajectory(columns, objectives, norm, ref_point, constraints, points=len(columns))[0]


class _Front:
    """The non-dominated points seen so far, kept as the search would keep them: a point
    weakly dominated by one seen before is dropped, every other one is added and the
    points it dominates go. So at any moment ``points`` is the same array, in the same
    order, as adding the points one at a time gives, and so is its hypervolume."""

    CHUNK = 256  # points compared at once: bounds the n x front x m comparison

    def __init__(self, points: np.ndarray):
        self.points = points

    def add(self, pts: np.ndarray) -> bool:
        """Add ``pts`` (in order); True if the front changed."""
        changed = False
        for s in range(0, len(pts), self.CHUNK):
            new = pts[s:s + self.CHUNK]
            if len(self.points):
                new = new[~_weakly_dominated(new, self.points).any(axis=1)]
            if len(new) > 1:  # weakly dominated by an earlier one of the chunk
                new = new[~np.tril(_weakly_dominated(new, new), k=-1).any(axis=1)]
            if len(new):
                both = np.vstack([self.points, new])
                self.points = both[nondominated(both)]
                changed = True
        return changed


def _weakly_dominated(pts: np.ndarray, by: np.ndarray) -> np.ndarray:
    """[i, j]: ``by[j]`` is no worse than ``pts[i]`` in every objective (one 2-D
    comparison per objective: faster than reducing a 3-D array over its short last axis)."""
    out = by[None, :, 0] <= pts[:, None, 0]
    for k in range(1, pts.shape[1]):
        out &= by[None, :, k] <= pts[:, None, k]
    return out


TRAJECTORY_POINTS = 1000  # the most evaluations a run's reported trajectory is sampled at


def checkpoints(n: int, points: int = TRAJECTORY_POINTS) -> np.ndarray:
    """The evaluations (1-based) a trajectory of ``n`` is reported at: every one when
    ``n <= points``, else ``points`` of them evenly spaced, the first and the last included."""
    if n <= points:
        return np.arange(1, n + 1)
    return np.unique(np.round(np.linspace(1, n, points)).astype(int))


def trajectory(columns: RunColumns, objectives, norm: Normaliser, ref_point,
               constraints: Mapping[str, float] | None, targets: Sequence[float] = (),
               points: int = TRAJECTORY_POINTS) -> tuple[dict[str, list], list[int | None]]:
    """The run's hypervolume and joules spent against evaluations, at :func:`checkpoints`
    (every evaluation for a run of up to ``points``), and for each of ``targets`` the first
    evaluation whose hypervolume reaches it (None: never), found exactly: the interval
    between two checkpoints where it is first reached is replayed one evaluation at a time.

    Joules are those the run counted as its own (:meth:`RunColumns.paid`); only feasible
    points with every objective add hypervolume; every evaluation adds its cost."""
    n = len(columns)
    energy = spent_so_far(columns)
    has, pts = columns.objectives(objectives)
    keep = columns.feasible(constraints)[has]
    at = np.flatnonzero(has)[keep]  # the 0-based evaluation of each point
    pts_n = norm(pts[keep])
    marks = checkpoints(n, points)
    bounds = np.searchsorted(at, marks)  # the points up to each checkpoint (at < mark)
    front, hv = _Front(pts_n[:0]), 0.0
    hvs: list[float] = []
    # Nothing found yet is a hypervolume of 0: a target of 0 or less is reached at once.
    hits: list[int | None] = [1 if n and t <= 0.0 else None for t in targets]
    lo = 0
    for hi in bounds:
        before = front.points
        if front.add(pts_n[lo:hi]):
            hv = hypervolume(front.points, ref_point)
        for k, t in enumerate(targets):
            if hits[k] is None and hv >= t:
                hits[k] = _first_reaching(t, before, pts_n[lo:hi], at[lo:hi], ref_point)
        hvs.append(hv)
        lo = hi
    traj = {"evaluations": marks.tolist(), "energy_j": energy[marks - 1].tolist(), "hypervolume": hvs}
    return traj, hits


def spent_so_far(columns: RunColumns) -> np.ndarray:
    """The joules the run had paid for after each evaluation (a reading that is missing
    adds nothing; the run's row counts it as unknown)."""
    _, joules = columns.paid()
    return np.cumsum(np.where(np.isnan(joules), 0.0, joules))


def _first_reaching(target: float, front: np.ndarray, pts: np.ndarray, at: np.ndarray, ref_point) -> int:
    """The evaluation (1-based) of the first of ``pts``, added one at a time to ``front``
    (whose hypervolume is under ``target``), after which the hypervolume reaches it: all of
    them together reach it, so when none before the last does, the last one does."""
    f = _Front(front)
    for p, i in zip(pts[:-1], at[:-1]):
        if f.add(p[None, :]) and hypervolume(f.points, ref_point) >= target:
            return int(i) + 1
    return int(at[-1]) + 1


# Built-in metrics that are costs, never the quality a headline keeps.
_COSTS = frozenset(BUILTIN_METRICS) - {"accuracy", "test_accuracy"}


def headline_metric(objectives: Mapping[str, str]) -> tuple[str | None, str]:
    """The quality the headline trades for energy, and why: "accuracy" where it is an
    objective (as the seed papers have it); else the one maximised objective that is not
    a built-in cost (a task's F1, say); else None (none or several: no single quality to
    trade), with the sentence that says so."""
    if "accuracy" in objectives:
        return "accuracy", ""
    quality = [n for n, d in objectives.items() if d == "max" and n not in _COSTS]
    if len(quality) == 1:
        return quality[0], ""
    why = ("no objective is maximised" if not quality
           else f"several objectives are maximised ({', '.join(quality)})")
    return None, f"accuracy is not an objective and {why}, so no one quality is traded for energy."


def energy_saving(outcomes: Sequence[Outcome], tolerance: float = ACCURACY_TOLERANCE,
                  constraints: Mapping[str, float] | None = None, metric: str = "accuracy") -> dict | None:
    """The largest inference-energy saving among models within ``tolerance`` of the best
    ``metric`` (validation accuracy by default; higher is better), relative to that best
    model (ties: the cheapest of them, so the saving is never flattered). Only models
    meeting ``constraints`` take part."""
    return saving_of(RunColumns.from_outcomes(outcomes), tolerance, constraints, metric)


def saving_of(columns: RunColumns, tolerance: float = ACCURACY_TOLERANCE,
              constraints: Mapping[str, float] | None = None, metric: str = "accuracy") -> dict | None:
    """:func:`energy_saving` of a run's columns (each genome's first outcome): the best
    and the chosen model (``most_accurate``, ``chosen``: each with its ``metric`` value),
    the saving (a fraction), ``<metric>_lost`` and the ``metric`` itself."""
    acc, e = columns.metric(metric), columns.metric(ENERGY_METRIC)
    rows = np.flatnonzero(columns.first & columns.feasible(constraints)
                          & ~np.isnan(acc) & ~np.isnan(e))
    if not len(rows):
        return None
    best_acc = acc[rows].max()
    top = rows[acc[rows] == best_acc]
    base = top[np.argmin(e[top])]  # the first of the cheapest
    near = rows[acc[rows] >= best_acc - tolerance - 1e-12]
    pick = near[np.lexsort((-acc[near], e[near]))[0]]  # cheapest, then most accurate, then first
    test_acc, measured = columns.metric("test_accuracy"), columns.measured

    def desc(i):
        return {"key": str(columns.keys[i]), metric: float(acc[i]), ENERGY_METRIC: float(e[i]),
                "test_accuracy": None if np.isnan(test_acc[i]) else float(test_acc[i]),
                "measured": bool(measured[i])}

    saving = 1.0 - float(e[pick]) / float(e[base]) if e[base] > 0 else 0.0
    return {"metric": metric, "most_accurate": desc(base), "chosen": desc(pick), "saving": saving,
            f"{metric}_lost": float(best_acc - acc[pick]), "tolerance": tolerance}


def normalised_span(norm: Normaliser) -> np.ndarray:
    span = np.subtract(norm.high, norm.low)
    return np.where(span > 0, span, 1.0)


def feasible_points(run: Run, objectives, constraints: Mapping[str, float] | None) -> np.ndarray:
    """The minimisation vectors of the run's feasible ok outcomes, each genome once."""
    c = run.columns
    first = c.first
    has, pts = c.objectives(objectives)
    return pts[(first & c.feasible(constraints))[has]]


def run_figures(run: Run, pts: np.ndarray, objectives, norm, ref_point, ref_front_n, hv_ref, front_scale,
                 constraints: Mapping[str, float] | None = None) -> dict:
    """The figures of one run; ``pts`` is :func:`feasible_points` of it."""
    pts_n = norm(pts)  # (an empty set of points stays empty, in each step)
    # Normalising is a positive affine map per objective: it leaves dominance alone, so one
    # mask (taken on the raw points) picks the front in both spaces.
    on_front = nondominated(pts)
    front_n = pts_n[on_front]
    hv = hypervolume(front_n, ref_point)
    front_norm, hv_ref_front = front_scale
    hv_front = hypervolume(front_norm(pts), ref_point)
    c = run.columns
    targets = [q * hv_ref - 1e-12 for q in THRESHOLDS]
    traj, hits = trajectory(c, objectives, norm, ref_point, constraints, targets)
    paid, joules = c.paid()
    paid_j = joules[paid]
    energy = spent_so_far(c)
    known_j = float(energy[-1]) if len(energy) else 0.0
    unknown = int(np.isnan(paid_j).sum())
    unknown_so_far = np.cumsum(paid & np.isnan(joules))
    first = c.first
    metric, _ = headline_metric(objectives)
    out = {
        "path": str(run.path), "label": run.label, "command": run.info.get("command"),
        "seed": run.info.get("seed"), "replayed": run.replayed, "measured": run.measured,
        "reference": run.is_reference, "status": run.status,
        "evaluations": len(c), "trained": int(paid.sum()),
        "failures": int((first & ~c.ok).sum()),
        # The total is unknown while any reading it sums is: None, never the known part
        # alone; that part and the count of unknown readings are beside it.
        "energy_spent_j": known_j if unknown == 0 else None,
        "energy_known_j": known_j,
        "energy_unknown": unknown,
        "front_size": int(len(front_n)),
        "hypervolume": hv, "hv_ratio": hv / hv_ref if hv_ref > 0 else None,
        "hv_ratio_front": hv_front / hv_ref_front if hv_ref_front > 0 else None,
        "igd_plus": igd_plus(front_n, ref_front_n), "epsilon_additive": epsilon_additive(front_n, ref_front_n),
        "coverage": coverage(front_n, ref_front_n),
        "headline": None if metric is None else saving_of(c, constraints=constraints, metric=metric),
        # raw minimisation vectors of the run's front, for the fronts plot and JSON readers
        "front_points": pts[on_front].tolist(),
    }
    for q, hit in zip(THRESHOLDS, hits):
        tag = f"{round(q * 100)}"
        out[f"evaluations_to_{tag}"] = hit
        # Joules to reach it are unknown (None) when a reading before it is missing; how
        # many are is beside it, so that None is not read as "never reached".
        missing = 0 if hit is None else int(unknown_so_far[hit - 1])
        out[f"energy_j_to_{tag}"] = None if hit is None or missing else float(energy[hit - 1])
        out[f"energy_j_to_{tag}_unknown"] = missing
    out["trajectory"] = traj
    out["trajectory"]["hv_ratio"] = [h / hv_ref if hv_ref > 0 else None for h in traj["hypervolume"]]
    return out
