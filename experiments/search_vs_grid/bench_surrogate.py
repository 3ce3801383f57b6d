"""Engine overhead of surrogate pre-screening, per screened generation, in replay.

    .venv/bin/python experiments/search_vs_grid/bench_surrogate.py [--seeds 5] [--share 0.2]

For each problem (digits and breast cancer tables of the search-vs-grid experiment, grids
already built) runs ours with ``surrogate = "forest"`` and reports, per screened
generation, the milliseconds of the model (forest fit on every ok evaluation, prediction
of the pool, ranking) and of the whole screening step (breeding the pool of
``surrogate_pool`` x population children included), as median [max] over seeds and
generations, next to the same run's whole wall time without the surrogate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import gi_energy.search.evolve as search_mod
import gi_energy.search.loop as loop_mod
from gi_energy.config.parse import load_problem
from gi_energy.runs.replay import ReplayEvaluator
from gi_energy.runs.rundir import RunDirectory

HERE = Path(__file__).resolve().parent
TABLES = (("digits", HERE / "problem.toml", Path("runs/search_vs_grid/grid")),
          ("breast cancer", HERE / "problem_breast_cancer.toml", Path("runs/search_vs_grid_bc/grid")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.2)
    args = ap.parse_args()

    model_s: list[float] = []
    step_s: list[float] = []
    original = loop_mod.SearchLoop.screened_offspring

    def timed(self, n):
        before = len(self.screen_s)
        t0 = time.perf_counter()
        out = original(self, n)
        if len(self.screen_s) > before:  # this generation was screened
            step_s.append(time.perf_counter() - t0)
            model_s.append(self.screen_s[-1])
        return out

    loop_mod.SearchLoop.screened_offspring = timed
    # sklearn's first import is paid once per process, not per generation
    import sklearn.ensemble  # noqa: F401

    print("| table | evaluations | screened generations | model ms | screening step ms | run s, surrogate | run s, none |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, toml, grid in TABLES:
        problem = load_problem(toml)
        n_grid = int(RunDirectory.open(grid).read_run_json()["evaluations"])
        budget = round(args.share * n_grid)
        model_s.clear()
        step_s.clear()
        walls = {"forest": [], "none": []}
        with tempfile.TemporaryDirectory() as tmp:
            for surrogate in ("forest", "none"):
                p = problem.with_overrides(search={"max_evaluations": budget, "surrogate": surrogate})
                for seed in range(args.seeds):
                    t0 = time.perf_counter()
                    search_mod.evolve(p, out=Path(tmp) / f"{surrogate}-{seed}", seed=seed,
                                      evaluator=ReplayEvaluator(problem, grid), plot=False)
                    walls[surrogate].append(time.perf_counter() - t0)
        print(f"| {name} | {budget} | {len(model_s)} | {1000 * statistics.median(model_s):.0f} "
              f"[{1000 * max(model_s):.0f}] | {1000 * statistics.median(step_s):.0f} [{1000 * max(step_s):.0f}] "
              f"| {statistics.median(walls['forest']):.2f} | {statistics.median(walls['none']):.2f} |")


if __name__ == "__main__":
    main()
