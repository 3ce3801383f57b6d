"""One run as a comparison sees it, and its figures against a reference front:
hypervolume (ratio, trajectory, evaluations and joules to reach a threshold), IGD+,
additive epsilon, coverage, and the headline energy saving for one accuracy point.

Every figure is taken in one normalised space (bounds from the union of all runs and the
reference) against one reference point, ``REFERENCE_POINT`` per objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gi_energy.errors import UsageError
from gi_energy.pareto import (
    constraint_violation,
    feasible_only,
    nondominated,
    ok_points,
    unique_outcomes,
)
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Outcome

from .indicators import Normaliser, coverage, epsilon_additive, hypervolume, igd_plus

REFERENCE_POINT = 1.1  # per objective, in normalised space: the worst point seen plus 10%


THRESHOLDS = (0.90, 0.95, 0.99)


ACCURACY_TOLERANCE = 0.01  # "one accuracy point"


ENERGY_METRIC = "inference_energy_j_per_1k"


@dataclass
class Run:
    """One run directory as compare sees it."""

    path: Path
    info: dict
    label: str
    outcomes: list[Outcome]
    replayed: bool = False
    measured: bool = False
    is_reference: bool = False
    result: dict = field(default_factory=dict)
    # per outcome, per evaluation: does its energy count as spent by this run?
    spent: list[tuple[bool, ...]] = field(default_factory=list)
    constraints: dict[str, float] | None = None  # None: the run did not record any


def load_run(path, label: str | None = None) -> Run:
    """Read a run directory; UsageError naming the path if it is not one or has no results."""
    rd = RunDirectory.open(path)
    info = rd.read_run_json()
    if not rd.has_results():
        raise UsageError(f"{path}: the run has no evaluations.csv yet")
    outcomes, spent = rd.read_outcomes_and_spent()
    settings = info.get("settings") or {}
    replayed = bool(info.get("replayed") or settings.get("replay") or settings.get("replayed")
                    or settings.get("evaluator") == "ReplayEvaluator")
    evs = [e for o in outcomes for e in o.evaluations if e.ok]
    name = label or info.get("label") or settings.get("label") or (
        str(info.get("command", "run")) + (" (replay)" if replayed and info.get("command") != "grid" else ""))
    return Run(path=Path(path), info=info, label=str(name), outcomes=outcomes, replayed=replayed,
               measured=bool(evs) and all(e.measured for e in evs), spent=spent,
               constraints=_constraints_of(Path(path), settings))


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
    evals, joules, hvs = [], [], []
    front = np.zeros((0, len(objectives)))
    spent = 0.0
    hv = 0.0
    for i, o in enumerate(outcomes):
        _, j = o.paid_energy(None if spent_flags is None else spent_flags[i])
        if j is not None:
            spent += j
        v = o.objectives(objectives)
        if v is not None and constraints and constraint_violation(o, constraints) != 0.0:
            v = None
        if v is not None:
            p = norm(np.asarray([v]))
            # Recompute only when the point is not weakly dominated: most are, and a 3-D
            # hypervolume per evaluation would otherwise dominate the compare time.
            if not len(front) or not np.any(np.all(front <= p, axis=1)):
                front = np.vstack([front, p])
                front = front[nondominated(front)]
                hv = hypervolume(front, ref_point)
        evals.append(i + 1)
        joules.append(spent)
        hvs.append(hv)
    return {"evaluations": evals, "energy_j": joules, "hypervolume": hvs}


def energy_saving(outcomes: Sequence[Outcome], tolerance: float = ACCURACY_TOLERANCE,
                  constraints: Mapping[str, float] | None = None) -> dict | None:
    """The largest inference-energy saving among models within ``tolerance`` accuracy of
    the most accurate one, relative to that most accurate model (ties in accuracy: the
    cheapest of them, so the saving is never flattered). Only models meeting
    ``constraints`` take part."""
    rows = []
    for o in feasible_only(unique_outcomes(outcomes), constraints):
        acc, e = o.metric("accuracy"), o.metric(ENERGY_METRIC)
        if acc is not None and e is not None:
            rows.append((acc, e, o))
    if not rows:
        return None
    best_acc = max(r[0] for r in rows)
    base = min((r for r in rows if r[0] == best_acc), key=lambda r: r[1])
    pick = min((r for r in rows if r[0] >= best_acc - tolerance - 1e-12), key=lambda r: (r[1], -r[0]))

    def desc(r):
        o = r[2]
        return {"key": o.key, "accuracy": r[0], ENERGY_METRIC: r[1], "test_accuracy": o.metric("test_accuracy"),
                "measured": o.measured}

    saving = 1.0 - pick[1] / base[1] if base[1] > 0 else 0.0
    return {"most_accurate": desc(base), "chosen": desc(pick), "saving": saving,
            "accuracy_lost": best_acc - pick[0], "tolerance": tolerance}


def normalised_span(norm: Normaliser) -> np.ndarray:
    span = np.subtract(norm.high, norm.low)
    return np.where(span > 0, span, 1.0)


def feasible_points(run: Run, objectives, constraints: Mapping[str, float] | None) -> np.ndarray:
    """The minimisation vectors of the run's feasible ok outcomes, each genome once."""
    return ok_points(feasible_only(unique_outcomes(run.outcomes), constraints), objectives)[1]


def run_figures(run: Run, pts: np.ndarray, objectives, norm, ref_point, ref_front_n, hv_ref, front_scale,
                 constraints: Mapping[str, float] | None = None) -> dict:
    """The figures of one run; ``pts`` is :func:`feasible_points` of it."""
    pts_n = norm(pts) if len(pts) else np.zeros((0, len(objectives)))
    # Normalising is a positive affine map per objective: it leaves dominance alone, so one
    # mask (taken on the raw points) picks the front in both spaces.
    on_front = nondominated(pts) if len(pts) else np.zeros(0, dtype=bool)
    front_n = pts_n[on_front]
    hv = hypervolume(front_n, ref_point)
    front_norm, hv_ref_front = front_scale
    hv_front = hypervolume(front_norm(pts), ref_point) if len(pts) else 0.0
    flags = run.spent if len(run.spent) == len(run.outcomes) else None
    traj = hv_trajectory(run.outcomes, objectives, norm, ref_point, flags, constraints)
    spent = [j for i, o in enumerate(run.outcomes)
             for paid, j in [o.paid_energy(None if flags is None else flags[i])] if paid]
    out = {
        "path": str(run.path), "label": run.label, "command": run.info.get("command"),
        "seed": run.info.get("seed"), "replayed": run.replayed, "measured": run.measured,
        "reference": run.is_reference,
        "evaluations": len(run.outcomes), "trained": len(spent),
        "failures": sum(1 for o in unique_outcomes(run.outcomes) if not o.ok),
        "energy_spent_j": float(sum(s for s in spent if s is not None)),
        "energy_unknown": sum(1 for s in spent if s is None),
        "front_size": int(len(front_n)),
        "hypervolume": hv, "hv_ratio": hv / hv_ref if hv_ref > 0 else None,
        "hv_ratio_front": hv_front / hv_ref_front if hv_ref_front > 0 else None,
        "igd_plus": igd_plus(front_n, ref_front_n), "epsilon_additive": epsilon_additive(front_n, ref_front_n),
        "coverage": coverage(front_n, ref_front_n),
        "headline": energy_saving(run.outcomes, constraints=constraints),
        # raw minimisation vectors of the run's front, for the fronts plot and JSON readers
        "front_points": pts[on_front].tolist(),
    }
    for q in THRESHOLDS:
        hit = next((i for i, h in enumerate(traj["hypervolume"]) if h >= q * hv_ref - 1e-12), None)
        tag = f"{round(q * 100)}"
        out[f"evaluations_to_{tag}"] = None if hit is None else traj["evaluations"][hit]
        out[f"energy_j_to_{tag}"] = None if hit is None else traj["energy_j"][hit]
    out["trajectory"] = {k: v for k, v in traj.items()}
    out["trajectory"]["hv_ratio"] = [h / hv_ref if hv_ref > 0 else None for h in traj["hypervolume"]]
    return out
