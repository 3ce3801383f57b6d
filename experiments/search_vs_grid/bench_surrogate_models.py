"""How well each candidate surrogate model ranks unseen grid points.

    .venv/bin/python experiments/search_vs_grid/bench_surrogate_models.py [--reps 15] [--sizes 24,48]

For each search-vs-grid table (grids already built), draws ``n`` grid points at random,
fits a model on them and ranks the rest: the figure is the Spearman rank correlation
between predicted and recorded values, per objective, averaged over ``--reps`` draws.
Screening keeps what the model ranks best, so rank agreement (not error in joules) is
what matters. Models: the forest gi-energy used first (one multi-output random forest
on raw standardised objectives), the same in log, one random forest per objective in
log, one extra-trees forest per objective in log (what ``surrogate = "forest"`` fits
now), and a Gaussian process per objective in log (Matern 5/2 with a noise term), for
reference. "log" applies to objectives whose values are all positive (energies).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from gi_energy.config.parse import load_problem
from gi_energy.runs.replay import ReplayEvaluator
from gi_energy.search import nsga2
from gi_energy.search.surrogate import N_TREES, GenomeEncoder

HERE = Path(__file__).resolve().parent
TABLES = (("digits", HERE / "problem.toml", Path("runs/search_vs_grid/grid")),
          ("breast cancer", HERE / "problem_breast_cancer.toml", Path("runs/search_vs_grid_bc/grid")))


def _models():
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    def gp(seed, n_features):
        kernel = ConstantKernel() * Matern(length_scale=np.ones(n_features), nu=2.5) + WhiteKernel()
        return GaussianProcessRegressor(kernel, random_state=seed)

    def forest(s, f):
        return RandomForestRegressor(N_TREES, random_state=s, n_jobs=1)

    def extra_trees(s, f):
        return ExtraTreesRegressor(N_TREES, random_state=s, n_jobs=1)

    # name, log targets, one model per objective, inputs scaled to [0, 1], factory(seed, n_features)
    return (("random forest, multi-output, raw (before)", False, False, False, forest),
            ("random forest, multi-output, log", True, False, False, forest),
            ("random forest per objective, log", True, True, False, forest),
            ("extra trees per objective, log (now)", True, True, False, extra_trees),
            ("Gaussian process per objective, log", True, True, True, gp))


def rank_agreement(x, y, n, reps, log, per_objective, scale_inputs, make) -> np.ndarray:
    rng = np.random.default_rng(0)
    logged = np.all(y > 0, axis=0) & log
    t = np.where(logged, np.log(np.where(logged, y, 1.0)), y)
    if scale_inputs:  # a GP wants inputs on one scale (trees do not care)
        lo, hi = x.min(axis=0), x.max(axis=0)
        x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    out = []
    for r in range(reps):
        idx = rng.permutation(len(x))
        train, test = idx[:n], idx[n:]
        mu, sd = t[train].mean(axis=0), t[train].std(axis=0)
        z = (t[train] - mu) / np.where(sd > 0, sd, 1.0)
        if per_objective:
            pred = np.column_stack([make(r, x.shape[1]).fit(x[train], z[:, j]).predict(x[test])
                                    for j in range(z.shape[1])])
        else:
            pred = make(r, x.shape[1]).fit(x[train], z).predict(x[test]).reshape(len(test), -1)
        out.append([spearmanr(pred[:, j], t[test, j]).statistic for j in range(z.shape[1])])
    return np.mean(out, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--sizes", default="24,48", help="training points per draw")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # GP convergence chatter
    rows = []
    for table, toml, grid in TABLES:
        if not (grid / "evaluations.csv").exists():
            print(f"{table}: no grid at {grid}; run experiments/search_vs_grid/run.py first")
            continue
        problem = load_problem(toml)
        replay = ReplayEvaluator(problem, grid)
        outcomes = [o for o in replay.outcomes() if o.ok]
        encoder = GenomeEncoder(replay.restrict(problem.space))
        x = encoder.encode_many([o.genome for o in outcomes])
        y = np.asarray([nsga2.fitness_of(o, problem.objectives, problem.constraints).values for o in outcomes])
        names = list(problem.objectives)
        for n in (int(s) for s in args.sizes.split(",")):
            for name, log, per, scale, make in _models():
                rho = rank_agreement(x, y, n, args.reps, log, per, scale, make)
                cells = ", ".join(f"{o} {r:.3f}" for o, r in zip(names, rho))
                rows.append(f"| {table} | {n} | {name} | {cells} |")
                print(rows[-1], flush=True)
    print("\n| table | training points | model | Spearman per objective |\n|---|---:|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
