"""The benchmark suite: every method on every table of experiments/suite/split.toml, on
exactly the same table (a grid run's recorded results, or a ``[table]``), 21 seeds,
budgets 1 %, 2 %, 5 % and 10 % of each table's configurations (at least 20 evaluations).

    .venv/bin/python experiments/suite/run.py --tables dev          # the development half
    .venv/bin/python experiments/suite/run.py --tables held-out
    .venv/bin/python experiments/suite/run.py --tables digits-2obj,iris-3obj --seeds 5
    .venv/bin/python experiments/suite/run.py --build-only --tables all   # grids and landscapes only

Per table (``OUT/<table>/``): the grid (built once with real training, resumed if
interrupted) or, for a ``[table]`` problem, the whole table as the reference run; then
per distinct budget ``b<N>/<method>-s<seed>/`` run directories (a finished one is
skipped, so a rerun resumes where it stopped); ``summary.json`` and ``summary.md``. And
for the whole suite ``OUT/summary.json`` / ``summary.md`` (experiments/suite/summary.py).

Methods: ``ours`` is gi-energy's search exactly as ``gi-energy evolve`` runs it with no
search flags (only the evaluation budget is set, and the generation limit raised so
that the budget is what stops it); ``ours-surrogate`` adds ``[search] surrogate =
"forest"``; the peers of experiments/search_vs_grid/peers.py. Every method is charged
alike: a configuration's first evaluation costs one evaluation, repeats are free.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import shutil
import sys
import time
import tomllib
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
SVG = HERE.parent / "search_vs_grid"
sys.path.insert(0, str(SVG))  # peers.py
sys.path.insert(0, str(HERE))  # landscape.py, suite_summary.py


def _load_svg_run():
    """experiments/search_vs_grid/run.py as a module (its name clashes with this file's)."""
    spec = importlib.util.spec_from_file_location("search_vs_grid_run", SVG / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


import landscape  # noqa: E402
import suite_summary  # noqa: E402
from peers import available_peers, table_reference  # noqa: E402

from gi_energy.config.parse import load_problem  # noqa: E402
from gi_energy.report.compare import compare_runs  # noqa: E402
from gi_energy.runs.files import write_json_atomic  # noqa: E402
from gi_energy.runs.rundir import RunDirectory  # noqa: E402

_svg = _load_svg_run()
ensure_grid, run_ours = _svg.ensure_grid, _svg.run_ours

SPLIT = HERE / "split.toml"
TABLES = HERE / "tables"
SHARES = (0.01, 0.02, 0.05, 0.1)
MIN_BUDGET = 20
OURS_DEFAULT = "gi-energy default (evolve, no search flags)"
OURS_FOREST = "gi-energy + surrogate (forest)"
METHODS = ("ours", "ours-surrogate", "random", "optuna-nsga2", "optuna-tpe", "pymoo-nsga2")


def budget_for(share: float, n: int) -> int:
    """A share of ``n`` configurations, at least MIN_BUDGET evaluations (and at most n)."""
    return min(n, max(MIN_BUDGET, round(share * n)))


def read_split(path: Path = SPLIT) -> dict[str, str]:
    """table name -> "development" or "held-out"."""
    d = tomllib.loads(path.read_text())
    return {name: half for half in ("development", "held-out") for name in d[half]["tables"]}


def select_tables(spec: str, split: dict[str, str]) -> list[tuple[str, Path, str]]:
    """(name, problem file, half) for ``dev``, ``held-out``, ``all`` or a comma list of
    names (of split.toml) or problem-file paths (half "other")."""
    halves = {"dev": ["development"], "development": ["development"], "held-out": ["held-out"],
              "all": ["development", "held-out"]}
    if spec in halves:
        return [(n, TABLES / f"{n}.toml", h) for h in halves[spec] for n, hh in split.items() if hh == h]
    out = []
    for item in spec.split(","):
        if item in split:
            out.append((item, TABLES / f"{item}.toml", split[item]))
        elif Path(item).is_file():
            out.append((Path(item).stem, Path(item), "other"))
        else:
            raise SystemExit(f"--tables: {item!r} is neither a table of {SPLIT} nor a problem file")
    return out


def run_default(problem, grid_dir, budget, seed, out):
    return run_ours(problem, grid_dir, budget, seed, out, surrogate=None, label=OURS_DEFAULT,
                    generations=max(problem.search.generations, 20 * budget))


def run_forest(problem, grid_dir, budget, seed, out):
    return run_ours(problem, grid_dir, budget, seed, out, surrogate="forest", label=OURS_FOREST,
                    generations=max(problem.search.generations, 20 * budget))


def method_functions(wanted: list[str]) -> tuple[dict, dict]:
    peers, missing = available_peers()
    fns = {"ours": run_default, "ours-surrogate": run_forest, **peers}
    return {m: fns[m] for m in wanted if m in fns}, {m: missing[m] for m in wanted if m in missing}


def prepare(name: str, path: Path, out: Path, workers: int | None, grid_dir: Path | None = None):
    """(problem, lookup source, reference run, configurations, reference info) of one
    table: its grid run (``grid_dir``, default OUT/grid; built if missing), or its [table]
    written as a reference run."""
    if "landscape-a" in path.name:
        landscape.write_landscape("landscape-a")
    elif "landscape-b" in path.name:
        landscape.write_landscape("landscape-b")
    if "csv3" in path.name:
        landscape.write_three_class_csv()
    problem = load_problem(path)
    if problem.table is not None:
        source = Path(problem.table.path)
        reference = out / "reference"
        if not (reference / "run.json").exists():
            if reference.exists():
                shutil.rmtree(reference)
            table_reference(problem, reference)
        info = {"kind": "table", "energy": "synthetic or as the table records it, not measured here"}
    else:
        source = reference = ensure_grid(problem, out, workers, grid_dir)
        info = {"kind": "grid"}
    ri = RunDirectory.open(reference).read_run_json()
    n = int(ri["evaluations"])
    info.update(configurations=n, energy_j=ri.get("energy_spent_j"), measured=bool(ri.get("measured")),
                meter=ri.get("meter"), wall_s=ri.get("wall_s"))
    return problem, source, reference, n, info


def code_version() -> dict:
    """The commit the searches ran on, and the files of gi_energy/ that differed from it
    (the default is whatever the working tree's gi-energy does)."""
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=HERE, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    import hashlib

    pkg = str(HERE.parents[1] / "gi_energy")
    changed = git("status", "--porcelain", "--", pkg)
    diff = git("diff", "HEAD", "--", pkg) or ""
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_gi_energy": (changed or "").splitlines(),
            "diff_sha1": hashlib.sha1(diff.encode()).hexdigest() if diff else None}


def _finished(run_dir: Path) -> bool:
    try:
        return (run_dir / "evaluations.csv").exists() and \
            RunDirectory.open(run_dir).read_run_json().get("status") == "complete"
    except Exception:  # noqa: BLE001 - a half-written run.json is an unfinished run
        return False


def _preload(fns: dict) -> None:
    """Import what the methods import before the workers fork, so that no method's
    timing carries the first import of evolve (torch, scikit-learn), optuna or pymoo."""
    import gi_energy.search.evolve  # noqa: F401

    for module in (("optuna",) if any(m.startswith("optuna") for m in fns) else ()) + \
            (("pymoo.algorithms.moo.nsga2",) if "pymoo-nsga2" in fns else ()):
        importlib.import_module(module)


def _one(method: str, problem_path: str, source: str, budget: int, seed: int, run_dir: str) -> tuple[str, float]:
    """One search (a joblib job): skipped when finished, else run quietly and timed."""
    rd = Path(run_dir)
    if _finished(rd):
        return run_dir, 0.0
    if rd.exists():
        shutil.rmtree(rd)  # half-written by an interrupted run
    fns, _ = method_functions([method])
    problem = load_problem(problem_path)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # said once per table in its summary (energy estimated / synthetic), not per run
        warnings.filterwarnings("ignore", message="energy is estimated")
        fns[method](problem, Path(source), budget, seed, rd)
    return run_dir, time.perf_counter() - t0


def run_table(name, path, half, out: Path, methods: list[str], seeds: list[int], shares, n_jobs: int,
              workers: int | None, build_only: bool = False, grids: Path | None = None) -> dict | None:
    t_start = time.perf_counter()
    problem, source, reference, n, info = prepare(name, path, out, workers,
                                                  None if grids is None else grids / name / "grid")
    print(f"{name} ({half}): {n} configurations, reference {reference}", flush=True)
    if build_only:
        return None
    fns, skipped = method_functions(methods)
    for m, why in skipped.items():
        print(f"  {m}: skipped: {why}")
    _preload(fns)
    budgets = sorted({budget_for(s, n) for s in shares})
    cells = {}
    timings = {}
    for budget in budgets:
        jobs = [(m, str(path), str(source), budget, seed, str(out / f"b{budget}" / f"{m}-s{seed:02d}"))
                for m in fns for seed in seeds]
        t0 = time.perf_counter()
        if n_jobs > 1:
            from joblib import Parallel, delayed

            # fork: the workers inherit this process's sys.path and modules (peers, landscape)
            done = Parallel(n_jobs=n_jobs, backend="multiprocessing")(delayed(_one)(*j) for j in jobs)
        else:
            done = [_one(*j) for j in jobs]
        for (m, *_), (_, secs) in zip(jobs, done):
            timings.setdefault(f"b{budget}", {}).setdefault(m, 0.0)
            timings[f"b{budget}"][m] += secs
        print(f"  b{budget}: {len(jobs)} runs in {time.perf_counter() - t0:.1f} s "
              f"(method seconds: {json.dumps({k: round(v, 1) for k, v in timings[f'b{budget}'].items()})})",
              flush=True)
        # Every finished run of this budget, this call's and earlier calls' (other methods),
        # so that a call for one method completes the cell instead of replacing it.
        paths = [d for m in METHODS for seed in seeds
                 if _finished(d := out / f"b{budget}" / f"{m}-s{seed:02d}")]
        cmp = compare_runs(paths, reference=reference)
        write_json_atomic(out / f"b{budget}" / "comparison.json", cmp)
        cells[budget] = suite_summary.cell(cmp, OURS_DEFAULT)
    rows = {sh: {"share": sh, "budget": budget_for(sh, n), "methods": cells[budget_for(sh, n)]} for sh in shares}
    wall = time.perf_counter() - t_start
    old = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    if old is not None and old.get("seeds") == seeds:
        # A call on other budgets (or methods) of this table adds to its summary: budgets
        # of this call replace theirs, the others are kept as they were.
        rows = {**{b["share"]: b for b in old["budgets"]}, **rows}
        timings = {b: {**old.get("method_wall_s", {}).get(b, {}), **timings.get(b, {})}
                   for b in {**old.get("method_wall_s", {}), **timings}}
        wall += old.get("wall_s", 0.0)
    s = {"table": name, "half": half, "problem": str(path), "problem_name": problem.name,
         "objectives": dict(problem.objectives), "constraints": dict(problem.constraints), **info,
         "seeds": seeds, "min_budget": MIN_BUDGET, "default": OURS_DEFAULT, "skipped": skipped,
         "budgets": [rows[sh] for sh in sorted(rows)],
         "method_wall_s": timings, "wall_s": wall, "code": code_version()}
    write_json_atomic(out / "summary.json", s)
    (out / "summary.md").write_text(suite_summary.render_table(s))
    return s


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="dev", help="dev | held-out | all | comma list of names or problem files")
    ap.add_argument("--split", default=str(SPLIT))
    ap.add_argument("--out", default="runs/suite")
    ap.add_argument("--seeds", type=int, default=21)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budgets", default=",".join(str(s) for s in SHARES), help="shares of each table")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--jobs", type=int, default=2, help="searches run in parallel (joblib)")
    ap.add_argument("--workers", type=int, default=None, help="training workers when a grid is built")
    ap.add_argument("--grids", default=None,
                    help="folder holding <table>/grid runs to replay (default OUT; e.g. runs/suite from another --out)")
    ap.add_argument("--build-only", action="store_true", help="build the grids and landscapes, run no search")
    args = ap.parse_args(argv)
    split = read_split(Path(args.split))
    tables = select_tables(args.tables, split)
    out = Path(args.out)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    shares = [float(s) for s in args.budgets.split(",")]
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; valid: {', '.join(METHODS)}")
    results = []
    for name, path, half in tables:
        s = run_table(name, path, half, out / name, methods, seeds, shares, args.jobs, args.workers,
                      args.build_only, Path(args.grids) if args.grids else None)
        if s is not None:
            results.append(s)
            print(f"{name}: summary in {out / name / 'summary.md'} ({s['wall_s']:.0f} s)", flush=True)
    if args.build_only:
        return {}
    # The suite summary covers every table of the split that has a summary, not only this call's.
    every = []
    for name in split:
        f = out / name / "summary.json"
        if f.exists():
            every.append(json.loads(f.read_text()))
    every += [s for s in results if s["half"] == "other"]
    suite = suite_summary.suite(every, OURS_DEFAULT)
    write_json_atomic(out / "summary.json", suite)
    (out / "summary.md").write_text(suite_summary.render_suite(suite))
    (out / "summary_compact.md").write_text(suite_summary.render_compact(suite))
    print(f"suite summary: {out / 'summary.md'}")
    return suite


if __name__ == "__main__":
    main()
