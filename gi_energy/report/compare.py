"""``gi-energy compare``: fronts of several runs side by side, against a reference front.

All runs are normalised once, with bounds from the union of every run's ok points and the
reference, and measured against one fixed reference point (1.1 in normalised space), so
the indicators of different runs are on one scale. Runs of one method (several seeds) are
summarised as median and interquartile range, with a Wilcoxon rank-sum test between
methods. The headline follows the seed papers: the largest inference-energy saving
available for at most one accuracy point lost relative to the most accurate model.

Only feasible points count: the runs' [constraints] (run.json settings.constraints) are
applied with the search's own test (``nsga2.constraint_violation == 0``) before anything
is computed, as in front.csv and the search. Energy is what each run counted as spent by
itself (evaluations.csv's ``spent`` column, from its journal; older files: not cached).
"""

from __future__ import annotations

import json
import math
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
from gi_energy.runs.files import now_iso, timestamped_dir, write_json_atomic
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


def _objectives_of(run: Run) -> dict[str, str]:
    obj = run.info.get("objectives")
    if obj:
        return dict(obj)
    from gi_energy.config.parse import load_problem

    try:
        return dict(load_problem(run.path / "problem.toml").objectives)
    except Exception as exc:  # any unreadable problem.toml is the same user-facing fault
        raise UsageError(f"{run.path}: run.json names no objectives and problem.toml cannot be read: {exc}") \
            from None


# ---------------------------------------------------------------- per-run figures


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


def _span(norm: Normaliser) -> np.ndarray:
    span = np.subtract(norm.high, norm.low)
    return np.where(span > 0, span, 1.0)


def _finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _feasible_points(run: Run, objectives, constraints: Mapping[str, float] | None) -> np.ndarray:
    """The minimisation vectors of the run's feasible ok outcomes, each genome once."""
    return ok_points(feasible_only(unique_outcomes(run.outcomes), constraints), objectives)[1]


def _run_figures(run: Run, pts: np.ndarray, objectives, norm, ref_point, ref_front_n, hv_ref, front_scale,
                 constraints: Mapping[str, float] | None = None) -> dict:
    """The figures of one run; ``pts`` is :func:`_feasible_points` of it."""
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


# ---------------------------------------------------------------- groups and tests


SUMMARY_METRICS = ("hv_ratio", "hv_ratio_front", "igd_plus", "epsilon_additive", "coverage", "evaluations", "energy_spent_j",
                   *(f"evaluations_to_{round(q * 100)}" for q in THRESHOLDS),
                   *(f"energy_j_to_{round(q * 100)}" for q in THRESHOLDS))


def _summary(values: Sequence) -> dict:
    """Median and interquartile range; runs that never reached a threshold (None) count
    as infinitely late, so the median says 'not reached' when most did not."""
    n = len(values)
    vals = np.array([np.inf if v is None else float(v) for v in values], dtype=float)
    reached = int(np.sum(np.isfinite(vals)))
    if n == 0:
        return {"n": 0}
    q25, med, q75 = np.percentile(vals, [25, 50, 75], method="linear") if reached == n else \
        np.percentile(vals, [25, 50, 75], method="lower")
    return {"n": n, "finite": reached, "median": _finite(float(med)), "q25": _finite(float(q25)),
            "q75": _finite(float(q75)), "iqr": _finite(float(q75 - q25)) if reached == n else None}


def summarise_groups(results: Sequence[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["label"], []).append(r)
    out = []
    for label, rs in groups.items():
        g = {"label": label, "runs": len(rs), "replayed": any(r["replayed"] for r in rs)}
        for m in SUMMARY_METRICS:
            g[m] = _summary([r[m] for r in rs])
        savings = [r["headline"]["saving"] for r in rs if r["headline"]]
        g["saving"] = _summary(savings)
        out.append(g)
    return out


def rank_sum_tests(results: Sequence[dict], metric: str = "hv_ratio") -> list[dict]:
    """Wilcoxon rank-sum (Mann-Whitney) between every pair of methods with 2+ runs each."""
    groups: dict[str, list[float]] = {}
    for r in results:
        if r[metric] is not None:
            groups.setdefault(r["label"], []).append(float(r[metric]))
    labels = [k for k, v in groups.items() if len(v) >= 2]
    if len(labels) < 2:
        return []
    try:
        from scipy.stats import ranksums
    except ImportError:
        return [{"metric": metric, "note": "scipy is not installed (pip install gi-energy[experiments])"}]
    tests = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            xa, xb = groups[a], groups[b]
            if np.ptp(xa + xb) == 0:
                stat, p = 0.0, 1.0  # identical samples: no evidence of a difference
            else:
                res = ranksums(xa, xb)
                stat, p = float(res.statistic), float(res.pvalue)
            tests.append({"metric": metric, "a": a, "b": b, "n_a": len(xa), "n_b": len(xb),
                          "median_a": float(np.median(xa)), "median_b": float(np.median(xb)),
                          "statistic": stat, "p_value": p})
    return tests


# ---------------------------------------------------------------- the comparison


def _common_constraints(runs: Sequence[Run]) -> dict[str, float]:
    """The constraints every run was held to; UsageError if two runs recorded different ones."""
    found = [(r, r.constraints) for r in runs if r.constraints is not None]
    distinct = {json.dumps(c, sort_keys=True) for _, c in found}
    if len(distinct) > 1:
        a, b = found[0], next(f for f in found if f[1] != found[0][1])
        raise UsageError(f"{b[0].path}: constraints {b[1]} differ from {a[0].path}'s {a[1]}; fronts under "
                         "different constraints cannot be compared")
    return dict(found[0][1]) if found else {}


def compare_runs(run_dirs: Sequence, reference=None, labels: Mapping[str, str] | None = None) -> dict:
    """Compare runs against a reference front; returns what comparison.json holds.

    ``reference`` is a grid run whose front is the reference; without one the reference
    front is the non-dominated union of every run's points. ``labels`` maps a run path
    to a method name (default: run.json ``label``, else the command).
    """
    labels = {str(Path(k)): v for k, v in (labels or {}).items()}
    runs: list[Run] = []
    seen_paths = set()
    ref_run = None
    if reference is not None:
        ref_run = load_run(reference, labels.get(str(Path(reference))))
        ref_run.is_reference = True
        seen_paths.add(Path(reference).resolve())
    for p in run_dirs:
        if Path(p).resolve() in seen_paths:
            continue
        seen_paths.add(Path(p).resolve())
        runs.append(load_run(p, labels.get(str(Path(p)))))
    if not runs and ref_run is None:
        raise UsageError("no run directories to compare")
    everything = ([ref_run] if ref_run else []) + runs
    objectives = _objectives_of(everything[0])
    fingerprint = everything[0].info.get("fingerprint")
    for r in everything[1:]:
        if _objectives_of(r) != objectives:
            raise UsageError(f"{r.path}: objectives {list(_objectives_of(r))} differ from {everything[0].path}'s "
                             f"{list(objectives)}; fronts on different objectives cannot be compared")
        if fingerprint and r.info.get("fingerprint") and r.info["fingerprint"] != fingerprint:
            raise UsageError(f"{r.path}: a different problem setup (fingerprint {r.info['fingerprint']}, "
                             f"{everything[0].path} has {fingerprint})")

    constraints = _common_constraints(everything)
    point_sets = [_feasible_points(r, objectives, constraints) for r in everything]
    if not any(len(p) for p in point_sets):
        raise UsageError("none of the runs has an ok evaluation with every objective"
                         + (" that meets the constraints" if constraints else "") + "; nothing to compare")
    norm = Normaliser.from_points(*point_sets)
    ref_point = [REFERENCE_POINT] * len(objectives)
    if ref_run is not None:
        base = norm(point_sets[0]) if len(point_sets[0]) else None
        if base is None:
            raise UsageError(f"{ref_run.path}: the reference run has no ok evaluations")
        ref_source = f"front of the grid run {ref_run.path}"
    else:
        base = norm(np.vstack([p for p in point_sets if len(p)]))
        ref_source = "non-dominated union of every run's points (no --reference given)"
    ref_front_n = base[nondominated(base)]
    ref_front_n = np.unique(ref_front_n, axis=0)
    hv_ref = hypervolume(ref_front_n, ref_point)
    # A second scale: the reference front's own ideal and nadir points. With the union's
    # bounds, a front that hugs one corner of the evaluated cloud makes almost any decent
    # point score near 1; against the front's own extent only the trade-off region counts.
    # Reported beside the union figure as hv_ratio_front. It is unbounded above: a point
    # beyond the reference front's ideal gets negative normalised coordinates and adds
    # volume the reference front does not have, so > 1 means the run found points beyond
    # the reference front (possible when the reference is not exhaustive).
    ref_front_raw = ref_front_n * _span(norm) + np.asarray(norm.low)
    front_norm = Normaliser(tuple(ref_front_raw.min(axis=0).tolist()), tuple(ref_front_raw.max(axis=0).tolist()))
    hv_ref_front = hypervolume(front_norm(ref_front_raw), ref_point)

    results = []
    for r, pts in zip(everything, point_sets):
        r.result = _run_figures(r, pts, objectives, norm, ref_point, ref_front_n, hv_ref, (front_norm, hv_ref_front),
                                constraints)
        results.append(r.result)
    searched = [res for res in results if not res["reference"]]
    reference_info = {
        "source": ref_source, "path": None if ref_run is None else str(ref_run.path),
        "front_size": int(len(ref_front_n)), "hypervolume": hv_ref,
        "front_normalised": ref_front_n.tolist(),
        "front": ref_front_raw.tolist(),
        "front_scale": {**front_norm.to_dict(), "hypervolume": hv_ref_front,
                        "note": "hv_ratio_front: normalised by the reference front's ideal and nadir points; "
                                "unbounded above (> 1: the run found points beyond the reference front)"},
    }
    if ref_run is not None:
        reference_info.update({k: ref_run.result[k] for k in ("evaluations", "trained", "energy_spent_j",
                                                              "measured", "headline")})
    return {
        "created_at": now_iso(),
        "objectives": objectives,
        "constraints": constraints,
        "normalisation": {**norm.to_dict(), "note": "minimisation vectors (maximised objectives negated), "
                          "bounds from the union of every run's ok points"},
        "reference_point": ref_point,
        "reference": reference_info,
        "runs": results,
        "groups": summarise_groups(searched),
        "tests": rank_sum_tests(searched) + rank_sum_tests(searched, "hv_ratio_front"),
    }


# ---------------------------------------------------------------- outputs


def _clean(obj):
    """JSON has no infinity: an unreachable value is written as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _f(x, spec=".3f") -> str:
    return "–" if x is None else format(x, spec)


def _mi(s: Mapping, spec=".3f") -> str:
    """'median [q25, q75]' or 'not reached (k/n)'."""
    if not s or s.get("n", 0) == 0:
        return "–"
    if s["median"] is None:
        return f"not reached ({s['finite']}/{s['n']})"
    text = _f(s["median"], spec)
    if s["n"] > 1:
        text += f" [{_f(s['q25'], spec)}, {_f(s['q75'], spec)}]"
    if s["finite"] < s["n"]:
        text += f" ({s['finite']}/{s['n']} reached)"
    return text


def _headline_row(name: str, h: Mapping | None) -> str:
    if not h:
        return f"| {name} | – | – | – | – | – |"
    m, c = h["most_accurate"], h["chosen"]
    return (f"| {name} | {m['accuracy']:.4f} | {m[ENERGY_METRIC]:.4g} | {c['accuracy']:.4f} | "
            f"{c[ENERGY_METRIC]:.4g} | **{100 * h['saving']:.1f}%** |")


def render_report(cmp: Mapping) -> str:
    obj = cmp["objectives"]
    ref = cmp["reference"]
    runs = cmp["runs"]
    any_replayed = any(r["replayed"] for r in runs)
    all_measured = all(r["measured"] for r in runs)
    lines = ["# Front comparison", ""]
    lines.append(f"Objectives: {', '.join(f'{k} ({v})' for k, v in obj.items())}. Reference front: "
                 f"{ref['source']} ({ref['front_size']} points, hypervolume {ref['hypervolume']:.4f}).")
    lines.append(f"Normalised once for all runs (bounds from the union of their ok points); reference point "
                 f"{cmp['reference_point'][0]} in every objective.")
    if cmp.get("constraints"):
        lines.append("Only points meeting the constraints count ("
                     + ", ".join(f"{k} ≤ {v:g}" for k, v in cmp["constraints"].items())
                     + "), as in each run's front.csv.")
    if "evaluations" in ref:
        kind = "measured" if ref.get("measured") else "estimated"
        lines.append(f"The reference grid cost {ref['evaluations']} evaluations and {ref['energy_spent_j']:.1f} J "
                     f"({kind}).")
    notes = []
    if any_replayed:
        notes.append("Runs marked *replayed* looked their results up in the grid run instead of training: their "
                     "energy is the grid's recorded energy for the same configurations, counted as spent.")
    if not all_measured:
        notes.append("Some energies are **estimated**, not measured (see each run's meter in run.json).")
    lines += [""] + notes if notes else []

    lines += ["", "## Headline: energy saved for at most one accuracy point lost", "",
              "Relative to the most accurate model found; inference energy in J per 1,000 samples.", "",
              "| run | best accuracy | its energy | chosen accuracy | chosen energy | saving |",
              "|---|---|---|---|---|---|"]
    if ref.get("headline"):
        lines.append(_headline_row("reference (grid)", ref["headline"]))
    for g in cmp["groups"]:
        if g["saving"].get("n"):
            lines.append(f"| {g['label']} (median of {g['runs']}) | | | | | {_mi(g['saving'], '.1%')} |")
    if len(runs) <= 12:
        for r in runs:
            if not r["reference"]:
                lines.append(_headline_row(f"{r['label']} `{Path(r['path']).name}`", r["headline"]))

    lines += ["", "## Per method: median [interquartile range]", "",
              "| method | runs | HV ratio | HV ratio (front scale) | IGD+ | additive ε | ref. front covered | evaluations | energy spent (J) |"
              " evals to 90% / 95% / 99% HV | joules to 90% / 95% / 99% HV |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in cmp["groups"]:
        to_e = " / ".join(_mi(g[f"evaluations_to_{t}"], ".0f") for t in (90, 95, 99))
        to_j = " / ".join(_mi(g[f"energy_j_to_{t}"], ".1f") for t in (90, 95, 99))
        name = g["label"] + (" *(replayed)*" if g["replayed"] else "")
        lines.append(f"| {name} | {g['runs']} | {_mi(g['hv_ratio'], '.4f')} | {_mi(g['hv_ratio_front'], '.4f')} | "
                     f"{_mi(g['igd_plus'], '.4f')} | "
                     f"{_mi(g['epsilon_additive'], '.4f')} | {_mi(g['coverage'], '.0%')} | "
                     f"{_mi(g['evaluations'], '.0f')} | {_mi(g['energy_spent_j'], '.1f')} | {to_e} | {to_j} |")

    if cmp["tests"]:
        lines += ["", "## Wilcoxon rank-sum tests", "",
                  "| metric | A | B | n | median A | median B | statistic | p |", "|---|---|---|---|---|---|---|---|"]
        for t in cmp["tests"]:
            if "note" in t:
                lines.append(f"| {t['metric']} | {t['note']} | | | | | | |")
                continue
            lines.append(f"| {t['metric']} | {t['a']} | {t['b']} | {t['n_a']} / {t['n_b']} | {t['median_a']:.4f} | "
                         f"{t['median_b']:.4f} | {t['statistic']:.3f} | {t['p_value']:.3g} |")

    lines += ["", "## Runs", "", "| run | method | seed | evaluations | trained | energy (J) | front | HV ratio | "
              "IGD+ | ε+ | covered | evals to 90/95/99% |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        to = " / ".join(_f(r[f"evaluations_to_{t}"], "d") if r[f"evaluations_to_{t}"] is not None else "–"
                        for t in (90, 95, 99))
        name = Path(r["path"]).name + (" (reference)" if r["reference"] else "")
        lines.append(f"| `{name}` | {r['label']} | {r['seed'] if r['seed'] is not None else '–'} | {r['evaluations']} | "
                     f"{r['trained']} | {r['energy_spent_j']:.1f} | {r['front_size']} | {_f(r['hv_ratio'], '.4f')} | "
                     f"{_f(_finite(r['igd_plus']), '.4f')} | {_f(_finite(r['epsilon_additive']), '.4f')} | "
                     f"{r['coverage']:.0%} | {to} |")
    lines += ["", "HV ratio: hypervolume over the reference front's, both normalised by the bounds of every "
              "evaluated point. HV ratio (front scale): the same, normalised by the reference front's own ideal "
              "and nadir points, so only the trade-off region counts. It is unbounded above: a value over 1 "
              "means the run found points beyond the reference front (better than its best in some objective), "
              "which only a non-exhaustive reference allows.", "",
              "Energy spent: the joules each run counted as its own (evaluations it trained, before or after "
              "a resume; evaluations another run had put in the store cost nothing).", "",
              "Files: `comparison.json` (every figure), `fronts.png` (fronts over the reference), "
              "`hv_history.png` (hypervolume ratio against evaluations and joules spent).", ""]
    return "\n".join(lines)


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
                        label=f"{lab} (median run, HV ratio {_f(med['hv_ratio'])})")
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


def write_comparison(cmp: dict, out: Path) -> Path:
    """report.md, comparison.json, fronts.png and hv_history.png under ``out``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc}") from None
    plot_comparison(cmp, cmp["runs"], out)
    (out / "report.md").write_text(render_report(cmp), encoding="utf-8")
    write_json_atomic(out / "comparison.json", _clean(cmp))
    return out


def compare(run_dirs: Sequence, reference=None, out=None, labels: Mapping[str, str] | None = None) -> dict:
    """Library entry point: compare, write the outputs under ``out`` (if given), return
    the comparison dict (as in comparison.json)."""
    cmp = compare_runs(run_dirs, reference, labels)
    if out is not None:
        write_comparison(cmp, Path(out))
    return _clean(cmp)


def cli_compare(run_dirs, reference=None, out=None, as_json=False) -> dict:
    """The ``gi-energy compare`` command."""
    import click

    out = Path(out) if out is not None else timestamped_dir(Path("runs"), "compare")
    cmp = compare(run_dirs, reference=reference, out=out)
    if as_json:
        click.echo(json.dumps(cmp, indent=2))
    else:
        click.echo(render_report(cmp))
        click.echo(f"written to {out}/ (report.md, comparison.json, fronts.png, hv_history.png)")
    return cmp
