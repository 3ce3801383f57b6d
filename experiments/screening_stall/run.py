"""Generations that evaluated nothing: the default search (surrogate "auto", which screens
on a [table]) on a 72-configuration table, budget 60, generation limit 60, seeds 0-20.

    .venv/bin/python experiments/screening_stall/run.py                    # this tree
    PYTHONPATH=<shadow of another tree> .venv/bin/python experiments/screening_stall/run.py

(For another tree, bench_scale.py's ``_importable`` makes the shadow folder whose gi_energy,
operators and problems are that tree's.) The table is one a QA session made as a
researcher's own (t1_basic.csv: optimizer x layers x lr x batchnorm, 3 x 3 x 4 x 2).
Figures: docs/measurements.md, "A QA round on tables, faults and user code".
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import warnings
from pathlib import Path

import gi_energy
from gi_energy.config.parse import load_problem
from gi_energy.search.evolve import evolve

HERE = Path(__file__).resolve().parent


def _spread(values) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{statistics.median(values):g} [{q[0]:g}-{q[2]:g}] ({min(values)}-{max(values)})"


def main() -> None:
    warnings.simplefilter("ignore")  # "energy is estimated": the table's own, known
    idle, made, generations = [], [], []
    for seed in range(21):
        with tempfile.TemporaryDirectory() as tmp:
            problem = load_problem(HERE / "t1.toml").with_overrides(search={"max_evaluations": 60, "generations": 60})
            res = evolve(problem, out=Path(tmp) / "run", seed=seed, plot=False, progress=False)
            with open(Path(tmp) / "run" / "history.csv", newline="") as fh:
                counts = [int(r["evaluations"]) for r in csv.DictReader(fh)]
        idle.append(sum(1 for a, b in zip(counts, counts[1:]) if b == a))
        made.append(len(res.evaluations))
        generations.append(len(counts) - 1)
    print(f"gi_energy from {Path(gi_energy.__file__).parent}; 21 seeds, median [IQR] (min-max)")
    print(f"generations that evaluated nothing: {_spread(idle)}")
    print(f"evaluations made (budget 60):       {_spread(made)}")
    print(f"generations run (limit 60):         {_spread(generations)}")


if __name__ == "__main__":
    main()
