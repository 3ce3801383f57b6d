"""Peer searches on the same replay table as gi-energy's NSGA-II: random search, Optuna's
NSGAIISampler and multi-objective TPE, pymoo's NSGA-II.

Every peer searches the grid's levels (the space ``ReplayEvaluator.restrict`` gives) and
is charged as the engine charges: a configuration evaluated for the first time costs one
evaluation and its recorded energy; asking again for one already evaluated is served by
the store for free and does not count. Each peer stops after ``budget`` distinct
evaluations, or earlier only for an honest reason that its run.json records (``stop``):
the space has no configuration left to evaluate, or the peer made
``STALL_PROPOSALS`` proposals in a row without a new configuration (it has converged
and only re-proposes known points). ``evaluations`` and ``proposals`` in run.json say
how many it got, so a summary can show each method's evaluated count beside its figure.
It leaves a run directory that ``gi-energy compare`` reads like any other.

A problem with a ``[table]`` (a tabular benchmark of any making) runs through the same
functions: ``grid_dir`` is then the table's path (``problem.table.path``) and the lookups
are :class:`gi_energy.evaluation.table.TableEvaluator`'s; :func:`table_reference` writes
the whole table as the reference run that compare measures fronts against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import Choice, Fixed, SearchSpace
from gi_energy.runs.replay import ReplayEvaluator
from gi_energy.runs.rundir import RunDirectory

# Proposals in a row that bring no new configuration before a peer counts as stuck. The
# old cap (20 x budget proposals in all) stopped pymoo's NSGA-II early on small tables,
# where rounding SBX children lands on known points most of the time.
STALL_PROPOSALS = 5000


def open_replay(problem, grid_dir: Path):
    """The lookup table the peers search: the problem's [table], else the grid run."""
    if getattr(problem, "table", None) is not None:
        from gi_energy.evaluation.table import TableEvaluator

        return TableEvaluator(problem)
    return ReplayEvaluator(problem, grid_dir)


def table_reference(problem, out: Path) -> Path:
    """Every configuration of the problem's [table] as a run directory (command "grid"),
    the exhaustive reference that ``gi-energy compare --reference`` reads: what
    ``gi-energy grid`` writes for a [table] problem."""
    from gi_energy.search.table_grid import table_reference as write

    return write(problem, out).run_dir


class Axes:
    """The restricted space as a list of categorical axes, each with its ordered options."""

    def __init__(self, space: SearchSpace):
        self.axes: list[tuple[str, str, tuple]] = []
        for name, ls in space.layers.items():
            self.axes.append(("count", name, tuple(ls.count.options)))
            self.axes.append(("size", name, tuple(ls.size.options)))
        self.fixed = {}
        for name, p in space.params.items():
            if isinstance(p, Choice):
                self.axes.append(("param", name, tuple(p.options)))
            elif isinstance(p, Fixed):
                self.fixed[name] = p.value
            else:
                raise ValueError(f"{name}: replay spaces hold only Choice and Fixed parameters, got {p}")

    @property
    def names(self) -> list[str]:
        return [f"{kind}:{name}" for kind, name, _ in self.axes]

    @property
    def sizes(self) -> list[int]:
        return [len(opts) for _, _, opts in self.axes]

    @property
    def space_size(self) -> int:
        """How many distinct configurations the axes make."""
        return int(np.prod(self.sizes, dtype=object)) if self.axes else 1

    def genome(self, index: list[int]) -> Genome:
        """The genome at one option index per axis."""
        counts, sizes, values = {}, {}, dict(self.fixed)
        for (kind, name, opts), i in zip(self.axes, index):
            v = opts[int(i)]
            {"count": counts, "size": sizes, "param": values}[kind][name] = v
        layers = {name: (sizes[name],) * counts[name] for name in counts}
        return Genome(layers=layers, values=values)


class Budgeted:
    """Counts distinct evaluations on a replay table and keeps them in arrival order."""

    def __init__(self, replay: ReplayEvaluator, objectives, budget: int, space_size: int | None = None):
        self.replay = replay
        self.objectives = dict(objectives)
        self.budget = budget
        self.space_size = space_size
        self.outcomes = []
        self.seen: dict[str, tuple | None] = {}
        self.proposals = 0
        self.stale = 0  # proposals since the last new configuration

    @property
    def stop(self) -> str | None:
        """Why the peer must stop now (None: go on)."""
        if len(self.outcomes) >= self.budget:
            return "budget"
        if self.space_size is not None and len(self.outcomes) >= self.space_size:
            return "space exhausted"
        if self.stale >= STALL_PROPOSALS:
            return f"stalled: {STALL_PROPOSALS} proposals in a row without a new configuration"
        return None

    @property
    def done(self) -> bool:
        return self.stop is not None

    def __call__(self, genome: Genome) -> tuple | None:
        """The minimisation vector of ``genome`` (None if it failed)."""
        self.proposals += 1
        if genome.key in self.seen:
            self.stale += 1
            return self.seen[genome.key]
        self.stale = 0
        o = self.replay.evaluate([genome])[0]
        self.outcomes.append(o)
        v = o.objectives(self.objectives)
        self.seen[genome.key] = v
        return v

    def worst(self) -> list[float]:
        """A stand-in for a failed evaluation: worse than anything in the table."""
        pts = [o.objectives(self.objectives) for o in self.replay.outcomes()]
        arr = np.array([p for p in pts if p is not None], dtype=float)
        return (arr.max(axis=0) + np.abs(arr.max(axis=0)) + 1.0).tolist()


def _write(problem, out: Path, label: str, seed: int, grid_dir: Path, b: Budgeted, extra: dict | None = None) -> Path:
    rd = RunDirectory.create(out, problem, "peer", {"label": label, "replay": str(grid_dir), "budget": b.budget,
                                                     "proposals": b.proposals, **(extra or {})})
    rd.write_results(b.outcomes, problem.objectives, [])  # then "complete" (see table_reference)
    rd.update_run_json(label=label, seed=seed, replayed=True, status="complete", evaluations=len(b.outcomes),
                       proposals=b.proposals, stop=b.stop or "budget")
    return rd.path


def random_search(problem, grid_dir: Path, budget: int, seed: int, out: Path) -> Path:
    """Uniform sampling of the restricted space without repeats."""
    rep = open_replay(problem, grid_dir)
    axes = Axes(rep.restrict(problem.space))
    rng = np.random.default_rng(seed)
    b = Budgeted(rep, problem.objectives, budget, axes.space_size)
    while not b.done:
        b(axes.genome([int(rng.integers(k)) for k in axes.sizes]))
    return _write(problem, out, "random search", seed, grid_dir, b)


def _optuna(problem, grid_dir: Path, budget: int, seed: int, out: Path, sampler_name: str) -> Path:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rep = open_replay(problem, grid_dir)
    axes = Axes(rep.restrict(problem.space))
    b = Budgeted(rep, problem.objectives, budget, axes.space_size)
    if sampler_name == "nsga2":
        # Same population as ours, so the comparison is of the algorithms, not of a setting.
        sampler = optuna.samplers.NSGAIISampler(population_size=problem.search.population, seed=seed)
        label = "Optuna NSGAIISampler"
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
        label = "Optuna TPE (multi-objective)"
    study = optuna.create_study(directions=["minimize"] * len(problem.objectives), sampler=sampler)
    names, sizes = axes.names, axes.sizes
    while not b.done:
        trial = study.ask()
        # Ordered levels as an integer index, so the samplers can use their order.
        idx = [trial.suggest_int(n, 0, k - 1) for n, k in zip(names, sizes)]
        v = b(axes.genome(idx))
        if v is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, list(v))
    return _write(problem, out, label, seed, grid_dir, b)


def optuna_nsga2(problem, grid_dir, budget, seed, out) -> Path:
    return _optuna(problem, grid_dir, budget, seed, out, "nsga2")


def optuna_tpe(problem, grid_dir, budget, seed, out) -> Path:
    return _optuna(problem, grid_dir, budget, seed, out, "tpe")


def pymoo_nsga2(problem, grid_dir: Path, budget: int, seed: int, out: Path) -> Path:
    """pymoo's NSGA-II on integer option indices (SBX and polynomial mutation, rounded)."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.problem import Problem as PymooProblem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.problems.static import StaticProblem

    rep = open_replay(problem, grid_dir)
    axes = Axes(rep.restrict(problem.space))
    b = Budgeted(rep, problem.objectives, budget, axes.space_size)
    worst = b.worst()
    pp = PymooProblem(n_var=len(axes.sizes), n_obj=len(problem.objectives), xl=0,
                      xu=np.array(axes.sizes) - 1, vtype=int)
    algo = NSGA2(pop_size=problem.search.population, sampling=IntegerRandomSampling(),
                 crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                 mutation=PM(eta=20, vtype=float, repair=RoundingRepair()), eliminate_duplicates=True)
    algo.setup(pp, termination=("n_eval", 10**9), seed=seed, verbose=False)
    while not b.done:
        pop = algo.ask()
        X = np.clip(np.rint(pop.get("X")).astype(int), 0, np.array(axes.sizes) - 1)
        F = []
        for x in X:
            v = b(axes.genome(list(x))) if not b.done else None
            F.append(worst if v is None else list(v))
        Evaluator().eval(StaticProblem(pp, F=np.array(F, dtype=float)), pop)
        algo.tell(infills=pop)
    return _write(problem, out, "pymoo NSGA-II", seed, grid_dir, b)


def available_peers() -> tuple[dict[str, Callable], dict[str, str]]:
    """(name -> function) of the peers that can run here, and (name -> why not) for the rest."""
    peers: dict[str, Callable] = {"random": random_search}
    missing: dict[str, str] = {}
    try:
        import optuna  # noqa: F401

        peers["optuna-nsga2"] = optuna_nsga2
        peers["optuna-tpe"] = optuna_tpe
    except ImportError as exc:
        missing["optuna-nsga2"] = missing["optuna-tpe"] = f"optuna not installed ({exc}); pip install 'gi-energy[experiments]'"
    try:
        import pymoo  # noqa: F401

        peers["pymoo-nsga2"] = pymoo_nsga2
    except ImportError as exc:
        missing["pymoo-nsga2"] = f"pymoo not installed ({exc}); pip install 'gi-energy[experiments]'"
    return peers, missing
