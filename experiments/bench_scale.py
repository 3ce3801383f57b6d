"""Scale: time and peak memory of the engine's bookkeeping at 1,000, 10,000 and 100,000
evaluations (issue 14). Target: the 100,000 case of each under 10 s and 1 GiB.

    .venv/bin/python experiments/bench_scale.py [--sizes 1000,10000,100000] [--repeats 3]
    .venv/bin/python experiments/bench_scale.py --case front --size 100000     # one case, one process

Cases (each run in a fresh process, ``--repeats`` times, so one case's memory is never
another's):

    front    pareto.front_outcomes over n outcomes (3 objectives, one constraint), the
             front the run directory writes and compare reads
    survival NSGA-II survival of n/2 of n outcomes (nsga2.survive: the fitnesses made, then
             rank and crowding; the same three objectives and constraint as front), and
             rank_s, nsga2.rank_and_crowding of all n (what breeding's tournament asks)
    compare  report.compare.compare_runs on two runs and a reference of n evaluations each,
             run directories synthesised with RunDirectory.write_results; files_s is the
             writing of its outputs after it (write_comparison: report.md, comparison.json,
             the two PNGs, and report.html where plotly is installed), command_s both, as
             ``gi-energy compare`` runs them
    open     a run of n evaluations opened as a researcher would (report.run.RunResult):
             summary(), plot_front() (seconds: both, the first call reading the file) and
             to_dataframe() (df_s)
    grid     one batch of the grid's bookkeeping when the run holds n outcomes: now (the
             front, the hypervolume's points and the totals kept up batch by batch;
             seconds) and as it was before (old_batch_s: ok_points, front_outcomes and the
             hypervolume over the whole run, then RunDirectory.write_results of
             evaluations.csv, front.csv, history.csv after every batch); rewrite_s is that
             rewrite alone, which the grid now does only when due (runs.pacing: at most
             1/20 of the run's time) and at the end
    table    a replay search of 1,000 evaluations (plain NSGA-II, run directory and
             checkpoints included) on a 100,000-row [table] CSV: parsing the problem,
             loading the table, the search (n is the table's rows)
    store    the evaluation store holding n evaluations: one batch of 4 written (one
             transaction), 1,000 stored keys looked up, and the time to fill it

Throughput (``--throughput``): the whole replay search, plain NSGA-II (``surrogate =
"none"``, whatever the default is) with its run directory and checkpoints, in
evaluations/s on one core (run it under ``taskset -c 0``): 600 evaluations on the
864-point replayed grid of experiments/bench_replay_speed.py.
``--baseline DIR`` runs the same search, alternating, on the gi-energy source tree in DIR
(a ``git worktree`` of an older commit; see docs/measurements.md) and gives the ratio,
so before and after are measured side by side in one run on one loaded machine. Each
run also gives evaluations per second of its CPU time (process_time), which a loaded
machine disturbs far less than the wall clock. ``--table-rows N --evaluations E``
searches a synthetic [table] of N rows instead.

Memory is the process's peak resident set (resource.getrusage ru_maxrss), reported with
the same figure taken just before the case starts (the interpreter and the imports), so
the difference is what the case itself needed. tracemalloc is not used: it slows Python
allocation several times and would distort the times. Figures are median [min-max] over
the repeats; the synthetic outcomes are built before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

CASES = ("front", "survival", "compare", "open", "grid", "table", "store")


# ---------------------------------------------------------------- synthetic outcomes


def synthetic_outcomes(n: int, seed: int = 0):
    """``n`` distinct ok outcomes with accuracy, two energies and params (estimated
    readings), a front of a few hundred points, as a large sweep gives."""
    from gi_energy.config.genome import Genome
    from gi_energy.meters.reading import Reading
    from gi_energy.tasks.results import Evaluation, Outcome

    rng = np.random.default_rng(seed)
    size = rng.uniform(0.0, 1.0, n)
    acc = 0.5 + 0.45 * size ** 0.3 + rng.normal(0.0, 0.02, n)
    train_j = 1.0 + 100.0 * size * rng.uniform(0.8, 1.2, n)
    inf_j = 0.01 + size * rng.uniform(0.5, 1.5, n)
    params = (1000 + 200_000 * size).astype(int)
    out = []
    for i in range(n):
        g = Genome(values={"i": i, "lr": 1e-3})
        ev = Evaluation(genome=g, status="ok", val_accuracy=float(acc[i]), test_accuracy=float(acc[i]),
                        train=Reading("estimate", "process-estimate", False, float(train_j[i]), 1.0),
                        inference=Reading("estimate", "process-estimate", False, float(inf_j[i]), 0.1),
                        train_time_s=1.0, inference_time_s=0.1, inference_samples=1000, params=int(params[i]),
                        flops_per_sample=2 * int(params[i]), wall_time_s=1.0, worker="bench")
        out.append(Outcome(genome=g, evaluations=(ev,)))
    return out


OBJECTIVES = {"accuracy": "max", "inference_energy_j_per_1k": "min", "train_energy_j": "min"}
CONSTRAINTS = {"params": 180_000.0}


def _problem(name: str):
    from gi_energy.config.parse import parse_problem

    return parse_problem({"problem": {"name": name}, "space": {"hidden_layers": {"min": 1, "max": 3}},
                          "objectives": OBJECTIVES, "constraints": {"params": {"max": CONSTRAINTS["params"]}}},
                         source="<bench>")


# ---------------------------------------------------------------- the cases


def case_front(n: int, tmp: Path) -> dict:
    from gi_energy.pareto import front_outcomes

    outcomes = synthetic_outcomes(n)
    t0 = time.perf_counter()
    front = front_outcomes(outcomes, OBJECTIVES, CONSTRAINTS)
    return {"seconds": time.perf_counter() - t0, "front": len(front)}


def case_survival(n: int, tmp: Path) -> dict:
    from gi_energy.search import nsga2

    outcomes = synthetic_outcomes(n)
    t0 = time.perf_counter()
    fitnesses = [nsga2.fitness_of(o, OBJECTIVES, CONSTRAINTS) for o in outcomes]
    survivors = nsga2.survive(fitnesses, n // 2)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    ranks, _ = nsga2.rank_and_crowding(fitnesses)
    return {"seconds": seconds, "rank_s": time.perf_counter() - t1, "survivors": len(survivors),
            "fronts": max(ranks) + 1}


def _write_run(path: Path, outcomes, command: str, label: str) -> Path:
    from gi_energy.runs.rundir import RunDirectory

    rd = RunDirectory.create(path, _problem("bench-scale"), command, {"constraints": CONSTRAINTS, "label": label})
    rd.update_run_json(status="complete", label=label, evaluations=len(outcomes))
    rd.write_results(outcomes, OBJECTIVES, [{"generation": 0, "evaluations": len(outcomes), "hypervolume": 1.0,
                                             "energy_spent_j": 1.0}], constraints=CONSTRAINTS)
    return rd.path


def case_compare(n: int, tmp: Path) -> dict:
    from gi_energy.report import compare as compare_mod
    from gi_energy.report.html import plotly_available

    runs = [_write_run(tmp / f"run{s}", synthetic_outcomes(n, seed=s), "evolve", "bench") for s in (1, 2)]
    ref = _write_run(tmp / "reference", synthetic_outcomes(n, seed=0), "grid", "reference")
    # As `gi-energy compare` runs it: the comparison hands the columns it read to
    # report.html (a tree older than compare_loaded reads them again there).
    loaded = getattr(compare_mod, "compare_loaded", None)
    t0 = time.perf_counter()
    cmp, columns = loaded(runs, reference=ref) if loaded else (compare_mod.compare_runs(runs, reference=ref), None)
    t1 = time.perf_counter()
    written = compare_mod.write_comparison(cmp, tmp / "comparison", **({"columns": columns} if loaded else {}))
    t2 = time.perf_counter()
    return {"seconds": t1 - t0, "runs": len(cmp.get("runs", [])), "files_s": t2 - t1, "command_s": t2 - t0,
            "report_html": plotly_available() and any(p.name == "report.html" for p in written)}


def case_open(n: int, tmp: Path) -> dict:
    from gi_energy.report.run import RunResult

    path = _write_run(tmp / "run", synthetic_outcomes(n), "grid", "run")
    t0 = time.perf_counter()
    run = RunResult(path)
    summary = run.summary()
    run.plot_front()
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    rows = len(run.to_dataframe())
    return {"seconds": seconds, "df_s": time.perf_counter() - t1, "front": summary["front_size"], "rows": rows}


def case_grid(n: int, tmp: Path) -> dict:
    """The bookkeeping of search/grid.py after one batch of 4 points, with ``n`` outcomes
    so far: as it is now (the front, the hypervolume's point set and the totals kept up
    batch by batch; the result files rewritten only when due, runs.pacing) and as it was
    (everything recomputed over the whole run, then every file rewritten)."""
    from gi_energy.pareto import front_outcomes, ok_points
    from gi_energy.report.indicators import hypervolume
    from gi_energy.runs.rundir import RunDirectory
    from gi_energy.search.grid import _front_points, history_reference

    outcomes = synthetic_outcomes(n)
    before, batch = outcomes[:-4], outcomes[-4:]
    rd = RunDirectory.create(tmp / "grid", _problem("bench-grid"), "grid", {})
    history = [{"batch": b, "evaluations": 4 * b, "hypervolume": 1.0} for b in range(n // 4)]
    ref = history_reference(ok_points(before, OBJECTIVES)[1])
    front = front_outcomes(before, OBJECTIVES, CONSTRAINTS)
    hv_points = _front_points(ok_points(before, OBJECTIVES)[1])
    t0 = time.perf_counter()  # now: one batch's update
    _, pts = ok_points(batch, OBJECTIVES)
    hv_points = _front_points(np.vstack([hv_points, pts]))
    front = front_outcomes(front + batch, OBJECTIVES, CONSTRAINTS)
    hypervolume(hv_points, ref)
    batch_s = time.perf_counter() - t0
    t0 = time.perf_counter()  # as it was: all recomputed, then every file rewritten
    _, pts = ok_points(outcomes, OBJECTIVES)
    full_front = front_outcomes(outcomes, OBJECTIVES, CONSTRAINTS)
    hypervolume(pts, ref)
    recompute_s = time.perf_counter() - t0
    rd.write_results(outcomes, OBJECTIVES, history, constraints=CONSTRAINTS, front=full_front)
    write_s = time.perf_counter() - t0 - recompute_s
    assert [o.key for o in front] == [o.key for o in full_front]
    return {"seconds": batch_s, "old_recompute_s": recompute_s, "rewrite_s": write_s,
            "old_batch_s": recompute_s + write_s, "front": len(front)}


def case_store(n: int, tmp: Path) -> dict:
    """The evaluation store holding ``n`` evaluations: one batch of 4 results written (one
    transaction, as the evaluator writes a batch; seconds), 1,000 stored keys looked up
    (``get_many``, as a resumed run or a second run asks), and filling it in batches of
    1,000 (fill_s, before the clock of the other two)."""
    from gi_energy.evaluation.store import Store

    outcomes = synthetic_outcomes(n + 4)
    evaluations = [o.evaluations[0] for o in outcomes]
    store = Store(tmp / "store.sqlite")
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        store.put_many("bench", "cpu", evaluations[i:min(i + 1000, n)])
    fill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.put_many("bench", "cpu", evaluations[n:])
    batch_s = time.perf_counter() - t0
    keys = [evaluations[i].key for i in np.random.default_rng(0).choice(n, size=min(1000, n), replace=False)]
    t0 = time.perf_counter()
    found = store.get_many("bench", "cpu", keys)
    lookup_s = time.perf_counter() - t0
    assert len(found) == len(keys) and store.count("bench") == n + 4
    store.close()
    return {"seconds": batch_s, "lookup_1000_s": lookup_s, "fill_s": fill_s,
            "file_mb": (tmp / "store.sqlite").stat().st_size / 1e6}


def write_table(path: Path, rows: int, seed: int = 0) -> list[str]:
    """A synthetic benchmark table of ``rows`` configurations: five ordinal and
    categorical columns of 10 levels each (10^5 = 100,000 combinations), accuracy and an
    energy column; the first ``rows`` combinations."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    levels = 10
    idx = np.arange(rows)
    cols = {}
    digits = []
    for j, name in enumerate(("layers", "width", "lr", "batch", "act")):
        d = (idx // levels ** j) % levels
        digits.append(d)
        cols[name] = d + 1 if name != "act" else np.array([f"act{k}" for k in range(levels)])[d]
    cols["width"] = 2 ** (cols["width"] + 2)
    cols["lr"] = np.round(10.0 ** (-4 + 0.3 * digits[2]), 8)
    size = (digits[0] + 1) * (digits[1] + 1) / 100.0
    cols["accuracy"] = np.round(0.5 + 0.4 * size ** 0.3 - 0.02 * np.abs(digits[2] - 5) / 5
                                + rng.normal(0, 0.01, rows), 6)
    cols["energy_j"] = np.round(1.0 + 50.0 * size * (1 + digits[3] / 10.0) * rng.uniform(0.9, 1.1, rows), 6)
    pd.DataFrame(cols).to_csv(path, index=False)
    return ["layers", "width", "lr", "batch", "act"]


def case_table(n: int, tmp: Path, evaluations: int = 1000) -> dict:
    from gi_energy.config.parse import load_problem
    from gi_energy.search.evolve import evolve

    configuration = write_table(tmp / "t.csv", n)
    (tmp / "p.toml").write_text(
        f'[problem]\nname = "bench-table"\nseed = 3\n[table]\npath = "t.csv"\nconfiguration = {json.dumps(configuration)}\n'
        f'energy = "energy_j"\n[objectives]\naccuracy = "max"\nenergy_j = "min"\n'
        f'[search]\npopulation = 24\ngenerations = 100000\nmax_evaluations = {evaluations}\n'
        'surrogate = "none"\n')
    t0 = time.perf_counter()
    problem = load_problem(tmp / "p.toml")
    t_parse = time.perf_counter() - t0
    res = evolve(problem, out=tmp / "evolve", plot=False)
    total = time.perf_counter() - t0
    return {"seconds": total, "parse_s": t_parse, "evaluations": len(res.evaluations),
            "evaluations_per_s": len(res.evaluations) / (total - t_parse)}


def run_case(case: str, n: int) -> dict:
    warnings.simplefilter("ignore")  # "energy is estimated": known, these are synthetic
    fn = {"front": case_front, "survival": case_survival, "compare": case_compare, "open": case_open,
          "grid": case_grid, "table": case_table, "store": case_store}[case]
    _imports()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        out = fn(n, Path(tmp))
    out.update(case=case, n=n, base_mb=before, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def replay_search_speed(evaluations: int) -> float:
    """Evaluations/s of one whole NSGA-II search on the replayed 864-point grid."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_replay_speed import bench_problem

    from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
    from gi_energy.search.evolve import evolve
    from gi_energy.search.grid import run_grid

    warnings.simplefilter("ignore")
    problem = bench_problem(864)
    with tempfile.TemporaryDirectory() as tmp:
        run_grid(problem, out=Path(tmp) / "grid", evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
                 warn=lambda s: None)
        p = problem.with_overrides(search={"max_evaluations": evaluations, "surrogate": "none"})
        rep = ReplayEvaluator(problem, Path(tmp) / "grid")
        t0, c0 = time.perf_counter(), time.process_time()
        res = evolve(p, out=Path(tmp) / "evolve", seed=3, evaluator=rep, plot=False)
        return _speeds(len(res.evaluations), t0, c0)


def table_search_speed(rows: int, evaluations: int, population: int = 24) -> float:
    """Evaluations/s of one whole NSGA-II search on a [table] of ``rows`` rows (the clock
    starts after the problem is read; loading the table is inside it)."""
    from gi_energy.config.parse import load_problem
    from gi_energy.search.evolve import evolve

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        configuration = write_table(tmp / "t.csv", rows)
        (tmp / "p.toml").write_text(
            f'[problem]\nname = "bench-table"\nseed = 3\n[table]\npath = "t.csv"\n'
            f'configuration = {json.dumps(configuration)}\nenergy = "energy_j"\n'
            f'[objectives]\naccuracy = "max"\nenergy_j = "min"\n'
            f'[search]\npopulation = {population}\ngenerations = 100000\nmax_evaluations = {evaluations}\n'
            'surrogate = "none"\n')
        problem = load_problem(tmp / "p.toml")
        t0, c0 = time.perf_counter(), time.process_time()
        res = evolve(problem, out=tmp / "evolve", plot=False)
        return _speeds(len(res.evaluations), t0, c0)


def _speeds(n: int, t0: float, c0: float) -> tuple[float, float]:
    """Evaluations per second of wall time and per second of the process's CPU time (the
    second is what the search itself costs, whatever else the machine runs)."""
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def _importable(tree: Path, shadow: Path) -> Path:
    """A folder to put on PYTHONPATH so that ``gi_energy`` and its ``gi_energy.operators``
    and ``gi_energy.problems`` all come from ``tree``: setup.cfg installs operators/ and
    problems/ under those names, and the editable install maps them to this checkout's
    folders, so another tree's gi_energy alone would import this checkout's operators."""
    pkg = shadow / "gi_energy"
    pkg.mkdir(parents=True)
    for entry in (tree / "gi_energy").iterdir():
        (pkg / entry.name).symlink_to(entry.resolve())
    for name in ("operators", "problems"):
        if (tree / name).is_dir() and not (pkg / name).exists():
            (pkg / name).symlink_to((tree / name).resolve())
    return shadow


def throughput(baseline: str | None, repeats: int, evaluations: int, table_rows: int | None = None,
               population: int = 24) -> None:
    import os

    trees = {"this tree": None} if baseline is None else {"baseline": baseline, "this tree": None}
    shadows = tempfile.TemporaryDirectory()
    paths = {label: _importable(Path(tree or Path(__file__).resolve().parents[1]).resolve(),
                                Path(shadows.name) / str(i))
             for i, (label, tree) in enumerate(trees.items())}
    speeds: dict[str, list[float]] = {k: [] for k in trees}
    cpu: dict[str, list[float]] = {k: [] for k in trees}
    for _ in range(repeats):
        for label in trees:  # alternating, so load changes hit both alike
            env = dict(os.environ)
            # The tree's own gi_energy, operators and problems first (the editable install
            # is only a fallback); run from a neutral folder, so the working directory's
            # copy is not picked up.
            env["PYTHONPATH"] = str(paths[label])
            code = (f"import sys; sys.argv = ['x']; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
                    f"import bench_scale, gi_energy, gi_energy.operators as ops; print(ops.__file__); "
                    + (f"print(*bench_scale.table_search_speed({table_rows}, {evaluations}, {population}))" if table_rows
                       else f"print(*bench_scale.replay_search_speed({evaluations}))"))
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                  cwd=tempfile.gettempdir())
            if proc.returncode != 0:
                raise SystemExit(f"{label}: {proc.stderr.strip().splitlines()[-1:]}")
            where, line = proc.stdout.strip().splitlines()[-2:]
            wall, per_cpu = (float(x) for x in line.split())
            speeds[label].append(wall)
            cpu[label].append(per_cpu)
            print(f"  {label} ({Path(where).resolve().parent.parent}): {wall:,.0f} evaluations/s "
                  f"({per_cpu:,.0f} per CPU second)", flush=True)
    for label in trees:
        print(f"{label}: {_spread(speeds[label])} evaluations/s, {_spread(cpu[label])} per CPU second, "
              f"over {len(speeds[label])} runs")
    if baseline is not None:
        for name, values in (("evaluations/s", speeds), ("per CPU second", cpu)):
            ratios = [a / b for a, b in zip(values["this tree"], values["baseline"])]
            print(f"ratio this tree / baseline, run by run, {name}: {_spread(ratios)}")


def _imports() -> None:
    """What every case imports, loaded before the baseline memory is read."""
    import pandas  # noqa: F401

    import gi_energy.report.compare  # noqa: F401
    import gi_energy.search.evolve  # noqa: F401
    import gi_energy.search.grid  # noqa: F401


def _spread(values) -> str:
    return f"{statistics.median(values):.3g} [{min(values):.3g}-{max(values):.3g}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--case", help="run one case in this process and print its JSON")
    ap.add_argument("--size", type=int)
    ap.add_argument("--throughput", action="store_true", help="the whole replay search, evaluations/s")
    ap.add_argument("--baseline", help="with --throughput: a source tree to run side by side")
    ap.add_argument("--evaluations", type=int, default=600)
    ap.add_argument("--table-rows", type=int, help="with --throughput: search a [table] of this many rows instead")
    ap.add_argument("--population", type=int, default=24, help="with --table-rows: the search's population")
    args = ap.parse_args()
    if args.throughput:
        throughput(args.baseline, args.repeats, args.evaluations, args.table_rows, args.population)
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.size)))
        return
    print("| case | n | seconds | peak RSS MB | RSS before the case MB | notes |")
    print("|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            results = []
            for _ in range(args.repeats):
                proc = subprocess.run([sys.executable, __file__, "--case", case, "--size", str(n)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"| {case} | {n} | failed: {proc.stderr.strip().splitlines()[-1:]} | | | |")
                    break
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            if not results:
                continue
            extra = {k: v for k, v in results[0].items()
                     if k not in ("seconds", "base_mb", "rss_mb", "case", "n")}
            notes = ", ".join(f"{k} {_spread([r[k] for r in results]) if isinstance(v, float) else v}"
                              for k, v in extra.items())
            print(f"| {case} | {n:,} | {_spread([r['seconds'] for r in results])} | "
                  f"{_spread([r['rss_mb'] for r in results])} | {_spread([r['base_mb'] for r in results])} | "
                  f"{notes} |", flush=True)


if __name__ == "__main__":
    main()
