"""Tuning the default search on the development half of the benchmark suite (issue 14).

    nice -n 10 .venv/bin/python experiments/tune_default.py --tables dev --budgets 0.01,0.02,0.05,0.1 \\
        --seeds 21 --variants auto,none,forest [--out runs/tune_default/NAME.json]

Runs gi-energy's search loop in memory (no run directory: the figures are the search's,
the bookkeeping is not what is tuned) on each table of experiments/suite (its problem
file; a grid table replays runs/suite/<name>/grid, a [table] problem looks its table up)
and scores each run by the front-scale HV ratio against the table's exhaustive front:
the run's feasible points normalised by the exhaustive front's own ideal and nadir,
reference point 1.1, as ``gi-energy compare`` computes ``hv_ratio_front``. Prints the
median [IQR] per table x budget x variant, with the Wilcoxon rank-sum p of each variant
against the first. Only the development half may be tuned on (experiments/suite/split.toml);
``--tables held-out`` is refused unless ``--final`` says the default is fixed.

A variant is a name from VARIANTS: [search] overrides plus module constants of
gi_energy.search.surrogate / autoscreen set for its runs (restored after).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "experiments" / "suite"

# name -> ({search overrides}, {module.CONSTANT: value})
VARIANTS: dict[str, tuple[dict, dict]] = {
    "auto": ({"surrogate": "auto"}, {}),
    "none": ({"surrogate": "none"}, {}),
    "forest": ({"surrogate": "forest"}, {}),
}


def _load_variants() -> None:
    """Extra variants from experiments/tune_variants.json, if present (experiments in progress)."""
    extra = ROOT / "experiments" / "tune_variants.json"
    if extra.exists():
        for name, (search, consts) in json.loads(extra.read_text()).items():
            VARIANTS[name] = (search, consts)


def table_names(which: str, final: bool) -> list[str]:
    split = tomllib.loads((SUITE / "split.toml").read_text())
    if which in ("dev", "development"):
        return list(split["development"]["tables"])
    if which in ("held-out", "heldout"):
        if not final:
            raise SystemExit("the held-out half is run once, with the final default: add --final")
        return list(split["held-out"]["tables"])
    names = which.split(",")
    held = set(split["held-out"]["tables"])
    if held & set(names) and not final:
        raise SystemExit(f"{sorted(held & set(names))} are held out: add --final once the default is fixed")
    return names


def open_table(name: str):
    from gi_energy.config.parse import load_problem
    from gi_energy.evaluation.table import TableEvaluator
    from gi_energy.runs.replay import ReplayEvaluator

    problem = load_problem(SUITE / "tables" / f"{name}.toml")
    if problem.table is not None:
        ev = TableEvaluator(problem)
    else:
        ev = ReplayEvaluator(problem, ROOT / "runs" / "suite" / name / "grid")
    restrict = getattr(ev, "restrict", None)
    import dataclasses

    source = problem.table.path if problem.table is not None else ROOT / "runs" / "suite" / name / "grid"
    return dataclasses.replace(problem, space=restrict(problem.space)), ev, problem, source


PEERS = ("tpe", "random", "optuna-nsga2")


def run_peer(kind: str, problem, source, budget: int, seed: int):
    """A peer of experiments/search_vs_grid/peers.py, its Budgeted lookups kept in memory."""
    sys.path.insert(0, str(ROOT / "experiments" / "search_vs_grid"))
    import peers

    peers._write = lambda problem, out, label, seed, grid_dir, b, extra=None: b  # no run directory
    fn = {"tpe": peers.optuna_tpe, "random": peers.random_search, "optuna-nsga2": peers.optuna_nsga2}[kind]
    return fn(problem, source, budget, seed, None).outcomes


def min_vectors(outcomes, problem) -> np.ndarray:
    from gi_energy.search import nsga2

    pts = []
    seen = set()
    for o in outcomes:
        if o.key in seen:
            continue
        seen.add(o.key)
        f = nsga2.fitness_of(o, problem.objectives, problem.constraints)
        if f.valid and f.feasible:
            pts.append(f.values)
    return np.asarray(pts, dtype=float).reshape(-1, len(problem.objectives))


class FrontScale:
    """hv_ratio_front against the exhaustive front of a table."""

    def __init__(self, all_points: np.ndarray):
        from gi_energy.pareto import nondominated
        from gi_energy.report.indicators import Normaliser, hypervolume

        front = all_points[nondominated(all_points)]
        self.norm = Normaliser(tuple(front.min(axis=0).tolist()), tuple(front.max(axis=0).tolist()))
        self.ref = [1.1] * all_points.shape[1]
        self.hv = hypervolume
        self.hv_ref = hypervolume(self.norm(front), self.ref)

    def __call__(self, pts: np.ndarray) -> float:
        return self.hv(self.norm(pts), self.ref) / self.hv_ref if len(pts) else 0.0


@contextlib.contextmanager
def constants(consts: dict):
    import importlib

    old = {}
    try:
        for dotted, value in consts.items():
            mod, name = dotted.rsplit(".", 1)
            m = importlib.import_module(mod)
            old[dotted] = (m, name, getattr(m, name))
            setattr(m, name, value)
        yield
    finally:
        for m, name, value in old.values():
            setattr(m, name, value)


def run_one(problem, ev, budget: int, seed: int, search: dict, consts: dict):
    import dataclasses

    from gi_energy.report.progress import Progress
    from gi_energy.search.loop import SearchLoop
    from gi_energy.search.termination import from_config

    p = dataclasses.replace(problem, seed=seed, search=dataclasses.replace(
        problem.search, max_evaluations=budget, generations=1_000_000, **search))
    ev._seen = set()  # a fresh lookup per run: every first ask is charged
    with open(os.devnull, "w") as null, constants(consts):
        loop = SearchLoop(problem=p, evaluator=ev, termination=from_config(p.search),
                          rng=np.random.default_rng(seed), progress=Progress(null, live=False))
        loop.run()
    decision = None if loop.auto is None else (loop.auto.decision or {}).get("chose")
    return loop.outcomes, decision


def main() -> None:
    _load_variants()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="dev")
    ap.add_argument("--budgets", default="0.01,0.02,0.05,0.1")
    ap.add_argument("--seeds", type=int, default=21)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--variants", default="auto,none,forest")
    ap.add_argument("--out", default=None, help="JSON of every run's figure")
    ap.add_argument("--final", action="store_true", help="allow held-out tables (the default is fixed)")
    args = ap.parse_args()
    from scipy.stats import ranksums

    variants = args.variants.split(",")
    results: dict = {}
    for name in table_names(args.tables, args.final):
        problem, ev, original, source = open_table(name)
        all_pts = min_vectors(ev.outcomes(), problem)
        score = FrontScale(all_pts)
        n = len(ev)
        for share in (float(s) for s in args.budgets.split(",")):
            budget = max(20, round(share * n))
            cell = results.setdefault(name, {}).setdefault(f"{share:g}", {})
            for v in variants:
                search, consts = VARIANTS.get(v, ({}, {}))
                t0 = time.perf_counter()
                figs, chose = [], set()
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    if v in PEERS:
                        outcomes, decision = run_peer(v, original, source, budget, seed), None
                    else:
                        outcomes, decision = run_one(problem, ev, budget, seed, search, consts)
                    figs.append(score(min_vectors(outcomes, problem)))
                    chose.add(decision)
                cell[v] = {"hv_ratio_front": figs, "seconds": time.perf_counter() - t0,
                           "auto_chose": sorted(str(c) for c in chose)}
            base = cell[variants[0]]["hv_ratio_front"]
            line = [f"{name} {share:g} ({budget} evals):"]
            for v in variants:
                f = np.asarray(cell[v]["hv_ratio_front"])
                q1, med, q3 = np.percentile(f, [25, 50, 75])
                p = "" if v == variants[0] or np.ptp(np.r_[f, base]) == 0 else \
                    f" p={ranksums(f, base).pvalue:.2g}"
                line.append(f"{v} {med:.4f} [{q1:.4f}, {q3:.4f}]{p} ({cell[v]['seconds']:.0f}s)")
            print("  ".join(line), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
