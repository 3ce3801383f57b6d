"""How much wall time the search engine itself adds on top of the evaluations.

    overhead = total wall time of evolve() / (sum of evaluation wall times / workers)

1.00 means the engine is free; the targets are <= 1.03 with one worker and <= 1.10 with
two. The total includes everything evolve() does: creating the run directory, variation,
NSGA-II survival, a checkpoint per generation and the final evaluations.csv / front.csv /
history.csv / front.png. With two workers the barrier at the end of each generation
(the slowest evaluation of a generation holds up the next) counts as overhead too.

Two evaluators:
* ``fake``: every evaluation sleeps a fixed time on a pool of ``workers`` threads (no
  training), so all the rest is the engine's;
* ``real``: the real Evaluator (loky worker processes, store) on tiny MLPs on digits.

Usage:
    python experiments/bench_engine_overhead.py                  # fake, 1 and 2 workers
    python experiments/bench_engine_overhead.py --real           # also the real Evaluator
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.problem import Problem, SearchConfig
from gi_energy.config.space import (
    Choice,
    Fixed,
    IntRange,
    LayerSpace,
    RealRange,
    SearchSpace,
)
from gi_energy.meters.reading import Reading
from gi_energy.search.evolve import evolve
from gi_energy.tasks.results import Evaluation, Outcome

SPACE = SearchSpace(
    layers={"hidden": LayerSpace(count=IntRange(1, 4), size=IntRange(4, 512, log=True))},
    params={"learning_rate": RealRange(1e-4, 1e-1, log=True), "epochs": IntRange(1, 50),
            "activation": Choice(("relu", "tanh", "gelu")), "batch_size": Choice((32, 64, 128)),
            "optimizer": Fixed("adam")},
)


class SleepingEvaluator:
    """Evaluations that take ``eval_s`` of wall time each on ``workers`` threads; the
    objectives are a cheap synthetic trade-off (accuracy vs width x depth)."""

    measured = False
    meter_description = "synthetic sleep (benchmark)"

    def __init__(self, eval_s: float, workers: int):
        self.eval_s = eval_s
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def _one(self, g: Genome) -> Evaluation:
        t0 = time.perf_counter()
        time.sleep(self.eval_s)
        widths = g.layers["hidden"]
        total = float(sum(widths))
        energy_j = 1e-3 * total * len(widths)
        reading = Reading("estimate", "process-estimate", False, energy_j, self.eval_s)
        return Evaluation(genome=g, status="ok", val_accuracy=1.0 - 1.0 / (1.0 + total / 16.0),
                          train=reading, inference=reading, inference_samples=1000,
                          params=int(total), wall_time_s=time.perf_counter() - t0)

    def evaluate(self, genomes, on_result=None):
        futures = {self.pool.submit(self._one, g): i for i, g in enumerate(genomes)}
        results: list[Evaluation | None] = [None] * len(genomes)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                ev = f.result()
                results[futures[f]] = ev
                if on_result is not None:
                    on_result(ev, False)
        return [Outcome(g, (ev,), False) for g, ev in zip(genomes, results)]

    def close(self):
        self.pool.shutdown()


def measure(problem: Problem, evaluator, workers: int, out: Path, plot: bool = True) -> dict:
    t0 = time.perf_counter()
    result = evolve(problem, out=out, evaluator=evaluator, workers=workers, plot=plot)
    total_s = time.perf_counter() - t0
    trained = [o for o in result.evaluations if not o.cached]
    eval_s = sum(e.wall_time_s or 0.0 for o in trained for e in o.evaluations)
    return {"workers": workers, "plot": plot, "evaluations": len(trained), "total_s": total_s, "eval_sum_s": eval_s,
            "overhead": total_s / (eval_s / workers)}


def fake_runs(args, root: Path) -> list[dict]:
    rows = []
    for workers in (1, 2):
        # Without front.png as well: the plot (~1 s with matplotlib's import) is paid once
        # per run, whatever its length, while the rest grows with the generations.
        for plot in (True, False):
            problem = Problem(name="bench", space=SPACE, seed=1,
                              search=SearchConfig(population=args.population, generations=args.generations))
            ev = SleepingEvaluator(args.eval_s, workers)
            try:
                row = measure(problem, ev, workers, root / f"fake-{workers}-{plot}", plot=plot)
            finally:
                ev.close()
            rows.append({"evaluator": f"fake ({args.eval_s * 1000:.0f} ms sleep)", **row})
    return rows


def real_runs(args, root: Path) -> list[dict]:
    from gi_energy.evaluation.evaluator import Evaluator
    from gi_energy.evaluation.store import Store

    base = load_problem("quickstart")
    space = dataclasses.replace(base.space, layers={
        "hidden": LayerSpace(count=IntRange(1, 2), size=IntRange(4, 32, log=True))},
        params={**base.space.params, "epochs": IntRange(2, 6)})
    rows = []
    for workers in (1, 2):
        problem = dataclasses.replace(
            base, space=space, search=SearchConfig(population=args.real_population, generations=args.real_generations))
        problem = problem.with_overrides(evaluation={"workers": workers, "min_inference_s": 0.05})
        store = Store(root / f"real-{workers}.sqlite")  # a fresh store: every evaluation trains
        ev = Evaluator(problem, store, workers=workers)
        try:
            # Start the worker processes (and import torch in them) before the clock runs:
            # that start-up is the evaluator's one-off cost, not the engine's per-run cost.
            ev.evaluate([problem.space.sample(np.random.default_rng(1000 + i)) for i in range(workers)])
            row = measure(problem, ev, workers, root / f"real-{workers}")
        finally:
            ev.close()
            store.close()
        rows.append({"evaluator": "real (tiny MLP, digits)", **row})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-s", type=float, default=0.05, help="wall time of one fake evaluation")
    ap.add_argument("--population", type=int, default=24)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--real", action="store_true", help="also measure the real Evaluator")
    ap.add_argument("--real-population", type=int, default=8)
    ap.add_argument("--real-generations", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = fake_runs(args, Path(tmp))
        if args.real:
            rows += real_runs(args, Path(tmp))
    print("| evaluator | workers | front.png | evaluations | total wall s | sum of evaluation s | overhead |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['evaluator']} | {r['workers']} | {'yes' if r['plot'] else 'no'} | {r['evaluations']} | "
              f"{r['total_s']:.2f} | "
              f"{r['eval_sum_s']:.2f} | {r['overhead']:.3f} |")


if __name__ == "__main__":
    main()
