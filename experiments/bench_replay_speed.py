"""Engine speed in replay mode: evaluations per second of ReplayEvaluator lookups, and of a
whole NSGA-II search on a replayed grid (the search, not the table, is then the cost).

    .venv/bin/python experiments/bench_replay_speed.py [--points 864] [--lookups 200000]

Builds a synthetic grid run (no training) in a temporary directory, then times
``ReplayEvaluator.evaluate`` on one core. Target: >= 5,000 evaluations per second.
Not a timed test: timings depend on the machine; the figure goes in docs/measurements.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from gi_energy.config.parse import parse_problem
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
from gi_energy.search.grid import run_grid


def bench_problem(points: int):
    """A digits-like problem whose grid has about ``points`` points."""
    widths = [8, 16, 32, 64, 128, 256]
    lrs = [1e-3, 3e-3, 1e-2, 3e-2]
    epochs = list(range(5, 5 + max(1, points // (3 * len(widths) * len(lrs) * 2))))
    return parse_problem({
        "problem": {"name": "bench-replay", "seed": 1},
        "space": {"hidden_layers": {"min": 1, "max": 3}, "width": {"min": 4, "max": 256, "log": True},
                  "learning_rate": {"min": 1e-4, "max": 1e-1, "log": True}, "epochs": {"min": 1, "max": 200},
                  "activation": ["relu", "tanh"]},
        "grid": {"hidden_layers": [1, 2, 3], "width": widths, "learning_rate": lrs, "epochs": epochs,
                 "activation": ["relu", "tanh"]},
        "search": {"population": 24, "generations": 100000},
    }, source="<bench>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=864)
    ap.add_argument("--lookups", type=int, default=200_000)
    ap.add_argument("--search-evaluations", type=int, default=600)
    args = ap.parse_args()
    problem = bench_problem(args.points)
    with tempfile.TemporaryDirectory() as tmp:
        grid_dir = Path(tmp) / "grid"
        run_grid(problem, out=grid_dir, evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
                 warn=lambda s: None)
        t0 = time.perf_counter()
        rep = ReplayEvaluator(problem, grid_dir)
        load_s = time.perf_counter() - t0
        genomes = rep.genomes()
        rng = np.random.default_rng(0)
        asked = [genomes[i] for i in rng.integers(len(genomes), size=args.lookups)]
        calls = []
        t0 = time.perf_counter()
        for start in range(0, len(asked), 24):  # generation-sized calls, as the search makes them
            rep.evaluate(asked[start:start + 24], on_result=lambda ev, cached: calls.append(cached))
        lookup_s = time.perf_counter() - t0
        print(f"table: {len(rep)} grid points, loaded from evaluations.csv in {load_s * 1000:.0f} ms")
        print(f"lookups: {args.lookups} in {lookup_s:.3f} s = {args.lookups / lookup_s:,.0f} evaluations/s "
              "(with an on_result callback; target >= 5,000)")

        try:
            from gi_energy.search.evolve import evolve
        except ImportError as exc:  # the loop is another part; the lookup figure stands alone
            print(f"search: skipped ({exc})")
            return
        p = problem.with_overrides(search={"max_evaluations": args.search_evaluations})
        t0 = time.perf_counter()
        res = evolve(p, out=Path(tmp) / "evolve", seed=3, evaluator=ReplayEvaluator(problem, grid_dir), plot=False)
        search_s = time.perf_counter() - t0
        n = len(res.evaluations)
        print(f"whole NSGA-II search on the replay: {n} evaluations in {search_s:.2f} s = "
              f"{n / search_s:,.0f} evaluations/s (run directory writes and checkpoints included)")


if __name__ == "__main__":
    main()
