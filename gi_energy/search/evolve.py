"""The NSGA-II search loop: ``gi-energy evolve`` and ``gi_energy.evolve(...)``.

One generation: crowded binary tournament -> crossover (``crossover_prob``) -> mutation
(``mutation_prob``) -> children already evaluated in this run are re-mutated (up to
``max_remutations``) -> the evaluator trains and meters the offspring -> NSGA-II survival
over parents + offspring. The budgets are checked between generations. With
``[search] surrogate = "forest"`` the operators breed ``surrogate_pool`` x the children
needed and a model fitted on the run's evaluations picks which are evaluated
(``gi_energy.surrogate``).

Every draw comes from one ``np.random.Generator`` seeded from the problem (or ``seed``).
After every generation the state is checkpointed as JSON; after a crash or Ctrl-C,
``resume`` restores the generator from the last checkpoint and replays the unfinished
generation, and the evaluation store serves the evaluations that had finished, so the
resumed run reaches the same front as an unbroken one. The run's journal (trained.jsonl,
one line per evaluation it trained, written as each finishes) makes those store hits
count as this run's energy, once, so the totals match an unbroken run's too. A resume
keeps the seed, search settings and evaluator kind recorded in run.json.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gi_energy.config.problem import Problem, SearchConfig, load_problem
from gi_energy.config.space import Genome, SearchSpace
from gi_energy.errors import UsageError
from gi_energy.evaluation.store import default_store_path
from gi_energy.operators import crossover, make_novel, mutate
from gi_energy.pareto import unique_outcomes
from gi_energy.report.plots import write_front_png
from gi_energy.report.progress import Progress, SilentProgress, format_energy
from gi_energy.runs.journal import TrainedJournal
from gi_energy.runs.rundir import evaluator_settings
from gi_energy.tasks.results import Evaluation, Outcome

from . import nsga2
from .checkpoint import Checkpoint, CheckpointWriter, load_checkpoint
from .termination import AnyOf, SearchState, from_config

# Margin added beyond the initial population's worst point, so the reference point stays
# strictly worse than the points that fixed it (they then add volume).
REFERENCE_MARGIN = 0.1

ResultCallback = Callable[[Evaluation, bool], None]


class EvaluatorLike(Protocol):
    """What the loop needs from an evaluator (the real one, a replay, or a test fake)."""

    def evaluate(self, genomes: Sequence[Genome],
                 on_result: ResultCallback | None = None) -> list[Outcome]: ...


@dataclass(frozen=True)
class EvolveResult:
    """What a search leaves: ``front`` (feasible non-dominated outcomes of every evaluation
    of the run), ``evaluations`` (every outcome, in evaluation order), ``run_dir``,
    ``history`` (one row per generation) and the ``totals``."""

    front: list[Outcome]
    evaluations: list[Outcome]
    run_dir: Path
    history: list[dict]
    totals: dict
    status: str
    stop_reason: str | None
    problem: Problem
    reference_point: list[float] | None = None


@dataclass
class _Totals:
    """Running totals of one run (carried across resumes through the checkpoint)."""

    evaluations: int = 0
    failures: int = 0
    cached: int = 0
    energy_spent_j: float = 0.0
    energy_unknown: int = 0
    evaluation_wall_s: float = 0.0
    wall_s: float = 0.0

    def add(self, outcome: Outcome, spent: Sequence[bool] | None = None) -> None:
        """Count ``outcome`` once. ``spent`` says per evaluation whether its energy is this
        run's (the run's journal: trained by this run, now or before a resume); without
        it, every evaluation of an outcome that was not cached is. An outcome none of
        whose evaluations is this run's counts as ``cached`` and costs nothing."""
        self.evaluations += 1
        self.failures += 0 if outcome.ok else 1
        paid, joules = outcome.paid_energy(spent)
        if not paid:
            self.cached += 1
            return
        if joules is None:
            self.energy_unknown += 1
        else:
            self.energy_spent_j += joules
        self.evaluation_wall_s += sum(e.wall_time_s or 0.0 for e in outcome.paid_evaluations(spent))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> _Totals:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class _Search:
    """The state of one run and the steps that move it on."""

    problem: Problem
    evaluator: EvaluatorLike
    termination: AnyOf
    rng: np.random.Generator
    progress: Progress
    outcomes: list[Outcome] = field(default_factory=list)
    by_key: dict[str, Outcome] = field(default_factory=dict)
    population: list[Outcome] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    totals: _Totals = field(default_factory=_Totals)
    generation: int = -1  # -1: the initial population is not evaluated yet
    reference_point: list[float] | None = None
    started_s: float = field(default_factory=time.perf_counter)
    wall_before_s: float = 0.0
    # Evaluations that arrived during the unfinished evaluate() call (for an interrupt).
    pending: list[tuple[Evaluation, bool]] = field(default_factory=list)
    # The front so far (indices into outcomes) and how many outcomes it has seen: a point
    # dominated once stays dominated, so each generation only sorts the front + newcomers.
    archive: list[int] = field(default_factory=list)
    archived: int = 0
    # Outcomes never change: their fitness is computed once (keyed by genome key).
    fitness_cache: dict[str, nsga2.Fitness] = field(default_factory=dict)
    # trained.jsonl: what this run trained (across resumes); decides whose energy counts.
    journal: TrainedJournal | None = None
    # Surrogate pre-screening ([search] surrogate): the genome encoder (built once) and the
    # seconds each screened generation spent fitting and predicting (for measurements).
    encoder: Any = None
    screen_s: list[float] = field(default_factory=list)

    @property
    def space(self) -> SearchSpace:
        return self.problem.space

    def fitness(self, outcomes: Sequence[Outcome]) -> list[nsga2.Fitness]:
        out = []
        for o in outcomes:
            key = o.key
            f = self.fitness_cache.get(key)
            if f is None:
                f = nsga2.fitness_of(o, self.problem.objectives, self.problem.constraints)
                self.fitness_cache[key] = f
            out.append(f)
        return out

    def state(self) -> SearchState:
        return SearchState(generation=max(self.generation, 0), evaluations=self.totals.evaluations,
                           wall_s=self.wall_s(), energy_spent_j=self.totals.energy_spent_j,
                           energy_unknown=self.totals.energy_unknown)

    def wall_s(self) -> float:
        return self.wall_before_s + time.perf_counter() - self.started_s

    # -- evaluation

    def evaluate(self, genomes: Sequence[Genome]) -> list[Outcome]:
        """Outcomes in input order; each new key is evaluated once, keys this run has
        already evaluated are answered from memory without counting again."""
        new: list[Genome] = []
        for g in genomes:
            if g.key not in self.by_key and all(g.key != n.key for n in new):
                new.append(g)
        self.pending = []

        reported: set[str] = set()

        def on_result(evaluation: Evaluation, cached: bool) -> None:
            if not cached and self.journal is not None:
                # Journaled the moment it finishes: a kill -9 after this line loses nothing.
                self.journal.record(evaluation)
            reported.add(evaluation.key)
            self.pending.append((evaluation, cached))
            self.progress.result(evaluation, cached)

        fresh = self.evaluator.evaluate(new, on_result) if new else []
        self.pending = []
        for outcome in fresh:
            if self.journal is not None and not outcome.cached and outcome.key not in reported:
                self.journal.seed([outcome])  # an evaluator that did not report through on_result
            self.outcomes.append(outcome)
            self.by_key[outcome.key] = outcome
            self.totals.add(outcome, self.spent(outcome))
        return [self.by_key[g.key] for g in genomes]

    def spent(self, outcome: Outcome) -> list[bool] | None:
        """Per evaluation: is its energy this run's? (None: no journal, go by ``cached``.)
        A store hit this run had trained before a crash or Ctrl-C is; an evaluator that
        says "uncached" again after a resume (a fresh replay) does not make it count twice,
        because each outcome enters the totals once."""
        return None if self.journal is None else self.journal.spent_repeats(outcome)

    def new_evaluation_count(self, genomes: Sequence[Genome]) -> int:
        return len({g.key for g in genomes} - set(self.by_key))

    # -- variation

    def initial_genomes(self, n: int) -> list[Genome]:
        """``n`` sampled genomes, re-sampled (bounded) while a key repeats."""
        max_tries = self.problem.search.max_remutations
        out: list[Genome] = []
        keys: set[str] = set()
        for _ in range(n):
            g = self.space.sample(self.rng)
            tries = 0
            while g.key in keys and tries < max_tries:
                g = self.space.sample(self.rng)
                tries += 1
            out.append(g)
            keys.add(g.key)
        return out

    def offspring(self, n: int) -> list[Genome]:
        """``n`` children of the current population."""
        search = self.problem.search
        ranks, crowding = nsga2.rank_and_crowding(self.fitness(self.population))
        n_parents = n + (n % 2)
        parents = nsga2.crowded_tournament(ranks, crowding, n_parents, self.rng)
        seen = _SeenKeys(self.by_key)
        children: list[Genome] = []
        for i in range(0, n_parents, 2):
            a = self.population[parents[i]].genome
            b = self.population[parents[i + 1]].genome
            if self.rng.random() < search.crossover_prob:
                a, b = crossover(a, b, self.space, self.rng)
            for child in (a, b):
                if self.rng.random() < search.mutation_prob:
                    child = mutate(child, self.space, self.rng)
                child = make_novel(child, seen, self.space, self.rng, search.max_remutations)
                seen.add(child.key)
                children.append(child)
        return children[:n]

    def screened_offspring(self, n: int) -> list[Genome]:
        """``n`` children; with a surrogate, the ``n`` most promising (plus some drawn at
        random) of ``surrogate_pool`` x ``n`` bred, once enough evaluations exist to fit it."""
        search = self.problem.search
        if search.surrogate == "none" or n <= 0:
            return self.offspring(n)
        from . import surrogate

        if self.encoder is None:
            self.encoder = surrogate.GenomeEncoder(self.space)
        fits = self.fitness(self.outcomes)
        train = [(o.genome, f.values) for o, f in zip(self.outcomes, fits) if f.valid]
        if len(train) < surrogate.min_points(self.encoder, search.population):
            return self.offspring(n)
        pool = self.offspring(n * search.surrogate_pool)
        t0 = time.perf_counter()
        model = surrogate.ForestSurrogate(self.encoder, int(self.rng.integers(2**31 - 1)))
        model.fit([g for g, _ in train], np.asarray([v for _, v in train], dtype=float))
        predicted = model.predict_model_space(pool)
        front = np.asarray([f.values for f in self.fitness(self.front())], dtype=float)
        violation = None
        limits = self.problem.constraints
        if limits:
            # the constrained metrics get forests of their own (every valid outcome has them)
            metrics = [[o.metric(name) for name in limits] for o, f in zip(self.outcomes, fits) if f.valid]
            cmodel = surrogate.ForestSurrogate(self.encoder, int(self.rng.integers(2**31 - 1)))
            cmodel.fit([g for g, _ in train], np.asarray(metrics, dtype=float))
            violation = surrogate.predicted_violation(cmodel.predict(pool), list(limits.values()))
        chosen = surrogate.screen(predicted, model.model_space(front), n, self.rng, violation=violation)
        self.screen_s.append(time.perf_counter() - t0)
        return [pool[i] for i in chosen]

    # -- the loop

    def run_initial(self) -> None:
        n = self.problem.search.population
        left = self.termination.evaluations_left(self.state())
        if left is not None:
            n = min(n, left)
        genomes = self.initial_genomes(n)
        self.progress.generation_start(0, self.new_evaluation_count(genomes), self.totals.to_dict())
        outcomes = unique_outcomes(self.evaluate(genomes))
        keep = nsga2.survive(self.fitness(outcomes), self.problem.search.population)
        self.population = [outcomes[i] for i in keep]
        self.generation = 0
        self.end_generation()

    def run_generation(self) -> bool:
        """One generation; False when the evaluation budget leaves no room for one."""
        n = self.problem.search.population
        left = self.termination.evaluations_left(self.state())
        if left is not None:
            n = min(n, left)
        if n <= 0 or not self.population:
            return False
        children = self.screened_offspring(n)
        self.progress.generation_start(self.generation + 1, self.new_evaluation_count(children),
                                       self.totals.to_dict())
        offspring = self.evaluate(children)
        parent_keys = {o.key for o in self.population}
        combined = self.population + [o for o in unique_outcomes(offspring) if o.key not in parent_keys]
        keep = nsga2.survive(self.fitness(combined), self.problem.search.population)
        self.population = [combined[i] for i in keep]
        self.generation += 1
        self.end_generation()
        return True

    def front(self) -> list[Outcome]:
        """Feasible non-dominated outcomes over every evaluation of the run, in evaluation order."""
        if self.archived < len(self.outcomes):
            candidates = self.archive + list(range(self.archived, len(self.outcomes)))
            fits = self.fitness([self.outcomes[i] for i in candidates])
            self.archive = [candidates[j] for j in nsga2.nondominated(fits)]
            self.archived = len(self.outcomes)
        return [self.outcomes[i] for i in self.archive]

    def end_generation(self) -> None:
        front = self.front()
        if self.reference_point is None:
            self.reference_point = reference_point(self.outcomes, self.problem.objectives)
        row = {
            "generation": self.generation,
            "evaluations": self.totals.evaluations,
            "failures": self.totals.failures,
            "energy_spent_j": self.totals.energy_spent_j,
            "energy_unknown": self.totals.energy_unknown,
            "hypervolume": self.hypervolume(front),
            "front_size": len(front),
            "wall_s": round(self.wall_s(), 3),
        }
        self.history.append(row)
        self.progress.generation_end(row)

    def hypervolume(self, front: Sequence[Outcome]) -> float | None:
        if self.reference_point is None:
            return None
        from gi_energy.report.indicators import hypervolume

        pts = np.array([o.objectives(self.problem.objectives) for o in front], dtype=float)
        return hypervolume(pts.reshape(len(front), len(self.problem.objectives)),
                           np.asarray(self.reference_point, dtype=float))

    def run(self) -> str | None:
        """Run to a budget; the name of the budget that stopped it."""
        if self.generation < 0:
            self.run_initial()
            self.after_generation()
        while (reason := self.termination.reason(self.state())) is None:
            if not self.run_generation():
                return "max_evaluations"
            self.after_generation()
        return reason

    def after_generation(self) -> None:
        """Hook: the caller checkpoints here (replaced per instance)."""

    # -- checkpoint

    def checkpoint(self, seed: int) -> Checkpoint:
        totals = self.totals.to_dict()
        totals["wall_s"] = self.wall_s()
        return Checkpoint(
            generation=self.generation, seed=seed, fingerprint=self.problem.fingerprint(),
            population=[o.key for o in self.population],
            rng_state=self.rng.bit_generator.state, outcomes=list(self.outcomes),
            history=list(self.history), totals=totals, reference_point=self.reference_point,
        )

    def restore(self, ckpt: Checkpoint) -> None:
        self.rng.bit_generator.state = dict(ckpt.rng_state)
        self.outcomes = list(ckpt.outcomes)
        self.by_key = {}
        for o in self.outcomes:
            self.by_key.setdefault(o.key, o)
        self.population = [self.by_key[k] for k in ckpt.population]
        self.history = list(ckpt.history)
        self.totals = _Totals.from_dict(ckpt.totals)
        self.wall_before_s = float(ckpt.totals.get("wall_s", 0.0))
        self.started_s = time.perf_counter()
        self.generation = ckpt.generation
        self.reference_point = ckpt.reference_point
        self.archive, self.archived = [], 0

    def pending_outcomes(self) -> list[Outcome]:
        """The evaluations of the unfinished generation, grouped per genome."""
        groups: dict[str, list[Evaluation]] = {}
        cached: dict[str, bool] = {}
        for ev, was_cached in self.pending:
            groups.setdefault(ev.key, []).append(ev)
            cached[ev.key] = cached.get(ev.key, True) and was_cached
        return [Outcome(evs[0].genome, tuple(evs), cached[k]) for k, evs in groups.items()]


class _SeenKeys:
    """Keys evaluated by the run plus those drawn this generation, without copying."""

    def __init__(self, evaluated: Mapping[str, Any]):
        self.evaluated = evaluated
        self.drawn: set[str] = set()

    def __contains__(self, key) -> bool:
        return key in self.evaluated or key in self.drawn

    def add(self, key: str) -> None:
        self.drawn.add(key)


def reference_point(outcomes: Sequence[Outcome], objectives: Mapping[str, str]) -> list[float] | None:
    """A fixed hypervolume reference point (minimisation), set once per run.

    Accuracy has a natural worst value (0, i.e. 0.0 after negation); every other objective
    takes the initial population's worst value plus a 10 % margin of its range. None until
    some outcome has all objectives.
    """
    points = [v for o in outcomes if (v := o.objectives(objectives)) is not None]
    if not points:
        return None
    arr = np.asarray(points, dtype=float)
    ref = []
    for j, name in enumerate(objectives):
        if name in ("accuracy", "test_accuracy"):
            ref.append(0.0)
            continue
        worst, best = float(arr[:, j].max()), float(arr[:, j].min())
        span = worst - best if worst > best else (abs(worst) or 1.0)
        ref.append(worst + REFERENCE_MARGIN * span)
    return ref


# ---------------------------------------------------------------- the library API


def _resolve_problem(problem: Problem | str | Path, seed: int | None, workers: int | None) -> Problem:
    if not isinstance(problem, Problem):
        problem = load_problem(problem)
    if seed is not None:
        # Not with_overrides: it skips falsy values, and seed 0 is a seed.
        problem = dataclasses.replace(problem, seed=int(seed))
    if workers is not None:
        problem = problem.with_overrides(evaluation={"workers": int(workers)})
    return problem


def _default_evaluator(problem: Problem, store_path: Path):
    """The real Evaluator over the shared store (the store creates its folder)."""
    from gi_energy.evaluation.evaluator import Evaluator
    from gi_energy.evaluation.store import Store

    store = Store(store_path)
    try:
        evaluator = Evaluator(problem, store, workers=problem.evaluation.workers)
    except BaseException:
        store.close()
        raise
    return evaluator, store


# Budgets a resume may extend (or shorten); every other search setting stays as recorded.
RESUME_BUDGETS = ("generations", "max_evaluations", "max_wall_s", "energy_budget_j")


def recorded_replay_source(settings: Mapping) -> str | None:
    """The grid run a recorded evolve run replayed (None: it trained for real)."""
    source = settings.get("replay") or (settings.get("flags") or {}).get("replay")
    return None if not source else str(source)


def _resume_problem(problem: Problem, info: Mapping, recorded: Mapping, seed: int | None,
                    overrides: Mapping, path: Path) -> Problem:
    """``problem`` with the seed and search settings the run recorded, then the budget
    overrides; a different seed, population or other setting asked for is refused."""
    rec_seed = info.get("seed", recorded.get("seed"))
    if rec_seed is not None:
        if seed is not None and int(seed) != int(rec_seed):
            raise UsageError(f"{path} ran with seed {rec_seed}; a resumed run keeps its seed "
                             f"(drop --seed {seed}, or start a new run)")
        problem = dataclasses.replace(problem, seed=int(rec_seed))
    names = [f.name for f in dataclasses.fields(SearchConfig)]
    kept = {k: recorded[k] for k in names if k in recorded}
    for k, v in overrides.items():
        if k not in RESUME_BUDGETS and k in kept and kept[k] != v:
            flag = "--" + k.replace("_", "-")
            raise UsageError(f"{path} ran with {k} {kept[k]}; a resumed run keeps it (asked for {v}): "
                             f"drop {flag}, or start a new run")
        kept[k] = v
    return dataclasses.replace(problem, search=dataclasses.replace(problem.search, **kept))


def _replay_source(evaluator) -> str | None:
    """The grid run a replay evaluator reads, as an absolute path (a resume may run elsewhere)."""
    source = getattr(evaluator, "source", None)
    if not getattr(evaluator, "replayed", False) or source is None:
        return None
    return str(Path(source).resolve())


def _settings(problem: Problem, termination: AnyOf, store_path: Path | None, evaluator,
              extra: Mapping | None) -> dict:
    s = problem.search
    return {
        "population": s.population,
        "generations": s.generations,
        "max_evaluations": s.max_evaluations,
        "max_wall_s": s.max_wall_s,
        "energy_budget_j": s.energy_budget_j,
        "crossover_prob": s.crossover_prob,
        "mutation_prob": s.mutation_prob,
        "max_remutations": s.max_remutations,
        "surrogate": s.surrogate,
        "surrogate_pool": s.surrogate_pool,
        "budgets": termination.describe(),
        "workers": problem.evaluation.workers,
        "repeats": problem.evaluation.repeats,
        "store": None if store_path is None else str(store_path),
        **evaluator_settings(evaluator),
        "replay": _replay_source(evaluator),
        "seed": problem.seed,
        "constraints": dict(problem.constraints),
        **dict(extra or {}),
    }


def evolve(
    problem: Problem | str | Path,
    *,
    out: str | Path | None = None,
    store: str | Path | None = None,
    seed: int | None = None,
    workers: int | None = None,
    resume: str | Path | None = None,
    evaluator: EvaluatorLike | None = None,
    progress: Progress | None = None,
    plot: bool = True,
    settings: Mapping | None = None,
    overrides: Mapping | None = None,
) -> EvolveResult:
    """Run NSGA-II on ``problem`` (a Problem, a TOML path or a bundled name).

    ``out`` is the run directory (default ``<[output] directory>/<name>-evolve-<time>``);
    ``resume`` continues the evolve run in that directory from its last checkpoint with
    the seed, search settings and evaluator kind (replay source) recorded in its run.json,
    whatever ``problem`` says. ``overrides`` are explicit [search] settings (the command
    line's flags): on a new run they replace the problem's; on a resume the budgets
    (generations, max_evaluations, max_wall_s, energy_budget_j) may extend the run, any
    other setting that differs from the recorded one is a UsageError, as is a ``seed``
    other than the recorded one. ``evaluator`` replaces the real one (tests, replay of a
    grid); it is not closed here. ``progress`` prints to the terminal (silent by default).

    Raises KeyboardInterrupt after saving the checkpoint and marking run.json
    "interrupted"; any other error marks it "failed" and propagates.
    """
    from gi_energy.runs.files import default_run_dir
    from gi_energy.runs.rundir import RunDirectory

    problem = _resolve_problem(problem, seed, workers)
    progress = progress or SilentProgress()
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(SearchConfig)})
    if unknown:
        raise UsageError(f"unknown search setting(s) {', '.join(unknown)}")
    checkpoint = None
    recorded_replay: str | None = None
    if resume is not None:
        rd = RunDirectory.open(resume)
        info = rd.read_run_json()
        if info.get("command") != "evolve":
            raise UsageError(f"{rd.path}: a {info.get('command')!r} run, not an evolve run; evolve --resume only "
                             "continues evolve runs (a grid run resumes with gi-energy grid --resume)")
        if info.get("fingerprint") not in (None, problem.fingerprint()):
            raise UsageError(f"{rd.path} ran a different problem (fingerprint {info.get('fingerprint')}, "
                             f"this one {problem.fingerprint()}); resume it with the problem.toml it holds")
        recorded = info.get("settings") or {}
        problem = _resume_problem(problem, info, recorded, seed, overrides, rd.path)
        recorded_replay = recorded_replay_source(recorded)
        checkpoint = load_checkpoint(rd.path)
        if checkpoint is not None and checkpoint.seed != problem.seed:
            raise UsageError(f"{rd.path} ran with seed {checkpoint.seed}, not {problem.seed}")
        was_replay = bool(recorded.get("replayed")) or recorded_replay is not None
        if evaluator is None and was_replay:
            if recorded_replay is None:
                raise UsageError(f"{rd.path}: a replay run whose run.json does not name its grid run; "
                                 "it cannot be resumed")
            from gi_energy.evaluation.replay import ReplayEvaluator

            evaluator = ReplayEvaluator(problem, Path(recorded_replay))
        is_replay = bool(getattr(evaluator, "replayed", False))
        if is_replay != was_replay:
            then, now = ("replayed a grid run", "train for real") if was_replay else \
                ("trained for real", "replay a grid run")
            raise UsageError(f"{rd.path}: the run {then}; resuming it would {now} and mix the two in one run")
        source = getattr(evaluator, "source", None)
        if is_replay and recorded_replay is not None and source is not None \
                and Path(source).resolve() != Path(recorded_replay).resolve():
            raise UsageError(f"{rd.path}: the run replays {recorded_replay}, not {source}")
    elif overrides:
        problem = dataclasses.replace(problem, search=dataclasses.replace(problem.search, **overrides))

    owned: list[Any] = []
    store_path: Path | None = None
    if evaluator is None:
        store_path = default_store_path(problem, store)
        evaluator, store_obj = _default_evaluator(problem, store_path)
        owned = [evaluator, store_obj]
    restrict = getattr(evaluator, "restrict", None)
    if callable(restrict):
        # A replay can only answer points of its grid: search the grid's restricted space.
        problem = dataclasses.replace(problem, space=restrict(problem.space))

    try:
        termination = from_config(problem.search)
        run_settings = _settings(problem, termination, store_path, evaluator, settings)
        if resume is not None:
            rd.update_run_json(status="running", resumed_from_generation=(
                None if checkpoint is None else checkpoint.generation), settings=run_settings)
        else:
            root = Path(problem.output.directory)
            path = Path(out) if out is not None else default_run_dir(problem, "evolve", root)
            rd = RunDirectory.create(path, problem, "evolve", run_settings)
        return _run(problem, evaluator, termination, rd, checkpoint, progress, plot)
    finally:
        for thing in owned:
            thing.close()


def _run(problem: Problem, evaluator: EvaluatorLike, termination: AnyOf, rd, checkpoint: Checkpoint | None,
         progress: Progress, plot: bool) -> EvolveResult:
    # A replay's journal is flushed, not fsynced: a flush survives kill -9, and an fsync
    # per line would cap replay far below its thousands of evaluations a second.
    journal = TrainedJournal(rd.path, durable=not getattr(evaluator, "replayed", False))
    if checkpoint is not None and not journal.exists():
        journal.seed(checkpoint.outcomes)  # a run checkpointed before journals existed
    try:
        return _run_search(problem, evaluator, termination, rd, checkpoint, progress, plot, journal)
    finally:
        journal.close()


def _run_search(problem: Problem, evaluator: EvaluatorLike, termination: AnyOf, rd, checkpoint: Checkpoint | None,
                progress: Progress, plot: bool, journal: TrainedJournal) -> EvolveResult:
    search = _Search(problem=problem, evaluator=evaluator, termination=termination,
                     rng=np.random.default_rng(problem.seed), progress=progress, journal=journal)
    if checkpoint is not None:
        search.restore(checkpoint)
    last: list[Checkpoint] = [checkpoint] if checkpoint is not None else []
    writer = CheckpointWriter(rd.path)

    def after_generation() -> None:
        ckpt = search.checkpoint(problem.seed)
        writer.save(ckpt)
        last[:] = [ckpt]
        rd.update_run_json(generation=search.generation, totals=_totals_json(search),
                           hypervolume_reference=_reference_json(search, problem))

    search.after_generation = after_generation
    measured = getattr(evaluator, "measured", None)
    if measured is False:
        print("gi-energy: warning: energy figures are ESTIMATES, not measurements "
              f"({getattr(evaluator, 'meter_description', 'no hardware meter')})", file=sys.stderr)
    progress.start(_header(problem, rd, termination, evaluator, checkpoint), problem.search.generations)

    try:
        stop_reason = search.run()
    except KeyboardInterrupt:
        _interrupted(search, rd, last, writer, problem, plot)
        raise
    except BaseException as exc:
        rd.update_run_json(status="failed", error=f"{type(exc).__name__}: {exc}",
                           totals=_totals_json(search), generation=search.generation)
        raise
    front = search.front()
    written = rd.write_results(search.outcomes, problem.objectives, search.history,
                               constraints=problem.constraints, spent=_spent_set(search))
    if plot:
        write_front_png(rd.path, search.outcomes, problem.objectives, written, label=f"{problem.name} evolve")
    rd.update_run_json(status="complete", stop_reason=stop_reason, generation=search.generation,
                       totals=_totals_json(search), front_size=len(front),
                       hypervolume_reference=_reference_json(search, problem))
    progress.finish(front, problem.objectives, _summary(search, rd, stop_reason, front), problem.space)
    return EvolveResult(front=front, evaluations=list(search.outcomes), run_dir=rd.path,
                        history=list(search.history), totals=_totals_json(search), status="complete",
                        stop_reason=stop_reason, problem=problem, reference_point=search.reference_point)


def _interrupted(search: _Search, rd, last: list[Checkpoint], writer: CheckpointWriter, problem: Problem,
                 plot: bool) -> None:
    """Ctrl-C: keep the last generation's checkpoint (its generator state is where a resume
    must restart), report the energy the unfinished generation spent in run.json, mark it.

    The checkpoint's totals stay those of its own outcomes: the unfinished generation is
    replayed on resume and its evaluations (in the journal) are counted then, once."""
    partial = search.pending_outcomes()
    spent = _Totals()
    for o in partial:
        spent.add(o, search.spent(o))
    if last:
        ckpt = last[0]
        ckpt.totals["wall_s"] = search.wall_s()
        writer.save(ckpt)
    totals = _totals_json(search)
    totals["energy_spent_j"] += spent.energy_spent_j
    totals["energy_unknown"] += spent.energy_unknown
    totals["unfinished_generation_evaluations"] = len(partial)
    rd.update_run_json(status="interrupted", generation=search.generation, totals=totals,
                       resume_hint=f"gi-energy evolve PROBLEM --resume {rd.path}")
    if search.outcomes or partial:
        everything = search.outcomes + partial
        front = rd.write_results(everything, problem.objectives, search.history,
                                 constraints=problem.constraints, spent=_spent_set(search))
        if plot:
            write_front_png(rd.path, everything, problem.objectives, front, label=f"{problem.name} evolve")


def _spent_set(search: _Search):
    return None if search.journal is None else search.journal.entries


def _totals_json(search: _Search) -> dict:
    t = search.totals.to_dict()
    t["wall_s"] = round(search.wall_s(), 3)
    # A missing reading is never a zero: say how many evaluations the energy total lacks.
    t["energy_complete"] = t["energy_unknown"] == 0
    return t


def _reference_json(search: _Search, problem: Problem) -> dict | None:
    if search.reference_point is None:
        return None
    return dict(zip(problem.objectives, search.reference_point))


def _header(problem: Problem, rd, termination: AnyOf, evaluator, checkpoint) -> list[str]:
    lines = [f"gi-energy evolve {problem.name}: seed {problem.seed}, population {problem.search.population}, "
             f"budgets {termination.describe()}",
             f"run directory {rd.path}"]
    meter = getattr(evaluator, "meter_description", None)
    if meter:
        lines.append(f"energy meter: {meter}")
    if checkpoint is not None:
        lines.append(f"resuming after generation {checkpoint.generation} "
                     f"({len(checkpoint.outcomes)} evaluations so far)")
    return lines


def _summary(search: _Search, rd, stop_reason, front) -> list[str]:
    t = search.totals
    energy = format_energy(t.energy_spent_j, t.energy_unknown)
    return [f"stopped by {stop_reason} after generation {search.generation}: {t.evaluations} evaluations "
            f"({t.failures} failed, {t.cached} from the store), {energy} spent by the search, "
            f"{search.wall_s():.1f} s",
            f"{len(front)} on the front; results in {rd.path}"]


# ---------------------------------------------------------------- the command line


def cli_evolve(*, problem, out=None, store=None, seed=None, workers=None, population=None, generations=None,
               max_evaluations=None, resume=None, replay=None) -> EvolveResult:
    """``gi-energy evolve``: flags override the problem file; run.json records what ran.

    With ``--resume`` the run's recorded settings, seed and replay source win over the
    file; only budget flags may change them (see :func:`evolve`)."""
    p = problem if isinstance(problem, Problem) else load_problem(problem)
    overrides = {k: v for k, v in (("population", population), ("generations", generations),
                                   ("max_evaluations", max_evaluations)) if v is not None}
    evaluator = None
    closing = []
    if resume is not None:
        replay_dir = _resume_replay_dir(resume, replay)
    else:
        replay_dir = replay if replay is not None else p.evaluation.replay
    if replay_dir is not None:
        from gi_energy.evaluation.replay import ReplayEvaluator

        evaluator = ReplayEvaluator(p, Path(replay_dir))
        if hasattr(evaluator, "close"):
            closing.append(evaluator)
    flags = {"seed": seed, "workers": workers, "population": population, "generations": generations,
             "max_evaluations": max_evaluations, "store": store, "out": out, "resume": resume,
             "replay": None if replay_dir is None else str(replay_dir)}
    try:
        return evolve(p, out=out, store=store, seed=seed, workers=workers, resume=resume, evaluator=evaluator,
                      progress=Progress(), settings={"flags": {k: v for k, v in flags.items() if v is not None}},
                      overrides=overrides)
    finally:
        for thing in closing:
            thing.close()


def _resume_replay_dir(resume, replay) -> str | None:
    """The replay source of the run being resumed: the recorded one (the problem file's
    ``replay`` is ignored); an explicit ``--replay`` must name the same grid run."""
    from gi_energy.runs.rundir import RunDirectory

    recorded = recorded_replay_source(RunDirectory.open(resume).read_run_json().get("settings") or {})
    if replay is not None:
        if recorded is None:
            raise UsageError(f"{resume}: the run trained for real; it cannot be resumed with --replay {replay}")
        if Path(replay).resolve() != Path(recorded).resolve():
            raise UsageError(f"{resume}: the run replays {recorded}, not {replay}")
    return recorded
