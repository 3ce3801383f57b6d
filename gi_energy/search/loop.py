"""One NSGA-II run in memory: the population, the evaluations so far, the front, the
running totals, and the steps that move a run on by one generation.

One generation: crowded binary tournament -> crossover (``crossover_prob``) -> mutation
(``mutation_prob``) -> children already evaluated in this run are re-mutated (up to
``max_remutations``) -> the evaluator trains and meters the offspring -> NSGA-II survival
over parents + offspring. With ``[search] surrogate = "forest"`` the operators breed
``surrogate_pool`` x the children needed and a model fitted on the run's evaluations
picks which are evaluated (:mod:`gi_energy.search.surrogate`). Every draw comes from the
one ``np.random.Generator`` the loop is given.

:mod:`gi_energy.search.evolve` drives this loop: the run directory, checkpoints, resume
and the command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.problem import Problem
from gi_energy.config.space import SearchSpace
from gi_energy.operators import crossover, make_novel, mutate
from gi_energy.pareto import unique_outcomes
from gi_energy.report.progress import Progress
from gi_energy.runs.interrupts import InterruptGate
from gi_energy.runs.journal import TrainedJournal
from gi_energy.tasks.results import Evaluation, Outcome

from . import nsga2
from .checkpoint import Checkpoint
from .initial import first_generation
from .termination import AnyOf, SearchState
from .totals import Totals

# Margin added beyond the initial population's worst point, so the reference point stays
# strictly worse than the points that fixed it (they then add volume).
REFERENCE_MARGIN = 0.1


ResultCallback = Callable[[Evaluation, bool], None]


class EvaluatorLike(Protocol):
    """What the loop needs from an evaluator (the real one, a replay, or a test fake)."""

    def evaluate(self, genomes: Sequence[Genome],
                 on_result: ResultCallback | None = None) -> list[Outcome]: ...


@dataclass
class SearchLoop:
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
    totals: Totals = field(default_factory=Totals)
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
    # The front's hypervolume, kept with the front (archive) and reference it was taken on:
    # late in a run most generations leave the front as it was.
    hv_memo: tuple | None = None
    # Outcomes never change: their fitness is computed once (keyed by genome key).
    fitness_cache: dict[str, nsga2.Fitness] = field(default_factory=dict)
    # trained.jsonl: what this run trained (across resumes); decides whose energy counts.
    journal: TrainedJournal | None = None
    # Holds SIGINT/SIGTERM while a finished evaluation is recorded (opened by the session).
    gate: InterruptGate = field(default_factory=InterruptGate)
    # Surrogate pre-screening ([search] surrogate): the genome encoder (built once) and the
    # seconds each screened generation spent fitting and predicting (for measurements).
    encoder: Any = None
    screen_s: list[float] = field(default_factory=list)
    # surrogate = "auto": when to screen, and its latest decision (autoscreen.AutoScreen).
    auto: Any = None

    def __post_init__(self) -> None:
        if self.problem.search.surrogate == "auto":  # generations sized to the evaluation budget
            from .autoscreen import sized

            self.problem = sized(self.problem)

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
        asked: set[str] = set()
        for g in genomes:
            if g.key not in self.by_key and g.key not in asked:
                new.append(g)
                asked.add(g.key)
        self.pending = []

        reported: set[str] = set()

        def on_result(evaluation: Evaluation, cached: bool) -> None:
            with self.gate:  # journaled and in pending, or neither (a signal waits for the end)
                if not cached and self.journal is not None:
                    # Journaled the moment it finishes: a kill -9 after this line loses nothing.
                    self.journal.record(evaluation)
                reported.add(evaluation.key)
                self.pending.append((evaluation, cached))
            self.progress.result(evaluation, cached)

        fresh = self.evaluator.evaluate(new, on_result) if new else []
        for outcome in fresh:
            if self.journal is not None and not outcome.cached and outcome.key not in reported:
                self.journal.seed([outcome])  # an evaluator that did not report through on_result
            self.outcomes.append(outcome)
            self.by_key[outcome.key] = outcome
            self.totals.add(outcome, self.spent(outcome))
        self.pending = []  # only now: an interrupt in the loop above still finds the rest there
        return [self.by_key[g.key] for g in genomes]

    def spent(self, outcome: Outcome) -> list[bool] | None:
        """Per evaluation: is its energy this run's? (None: no journal, go by ``cached``.)
        A store hit this run had trained before a crash or Ctrl-C is; an evaluator that
        says "uncached" again after a resume (a fresh replay) does not make it count twice,
        because each outcome enters the totals once."""
        return None if self.journal is None else self.journal.spent_repeats(outcome)

    def new_evaluation_count(self, genomes: Sequence[Genome]) -> int:
        return sum(1 for key in {g.key for g in genomes} if key not in self.by_key)

    # -- variation

    def initial_genomes(self, n: int) -> list[Genome]:
        """The first generation: ``n`` genomes of :func:`~.initial.first_generation`."""
        return first_generation(self.space, n, self.rng, self.problem.search.max_remutations)

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
        if search.surrogate == "auto":  # screen only where it costs little against the evaluations
            from .autoscreen import AutoScreen

            self.auto = self.auto or AutoScreen(self.problem, self.encoder)
            if not self.auto.screens(self.outcomes, self.fitness, n, self.generation + 1):
                return self.offspring(n)
        fits = self.fitness(self.outcomes)
        train = [(o.genome, f.values) for o, f in zip(self.outcomes, fits) if f.valid]
        if len(train) < surrogate.min_points(self.encoder, search.population):
            return self.offspring(n)
        pool = self.offspring(n * search.surrogate_pool)
        # Only children not evaluated yet are worth screening: where re-mutation ran out of
        # new keys (a small table nearly all evaluated) the pool holds repeats, and a pick
        # of them made whole generations that evaluated nothing, ending a run with budget
        # and configurations left. Fewer new ones than n: all of them, topped up with repeats.
        pool, repeats = _new_first(pool, self.by_key)
        if repeats and len(pool) <= n:
            return (pool + repeats)[:n]
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
            "hypervolume": self._front_hypervolume(front),
            "front_size": len(front),
            "wall_s": round(self.wall_s(), 3),
        }
        self.history.append(row)
        self.progress.generation_end(row)

    def _front_hypervolume(self, front: Sequence[Outcome]) -> float | None:
        """:meth:`hypervolume` of ``front`` (the run's front now), computed again only
        when the front or the reference point changed."""
        memo_key = (tuple(self.archive), None if self.reference_point is None else tuple(self.reference_point))
        if self.hv_memo is None or self.hv_memo[0] != memo_key:
            self.hv_memo = (memo_key, self.hypervolume(front))
        return self.hv_memo[1]

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
        self.totals = Totals.from_dict(ckpt.totals)
        self.wall_before_s = float(ckpt.totals.get("wall_s", 0.0))
        self.started_s = time.perf_counter()
        self.generation = ckpt.generation
        self.reference_point = ckpt.reference_point
        self.archive, self.archived, self.hv_memo = [], 0, None

    def pending_outcomes(self) -> list[Outcome]:
        """The evaluations of the unfinished generation, grouped per genome (those of
        genomes already among the run's outcomes left out)."""
        groups: dict[str, list[Evaluation]] = {}
        cached: dict[str, bool] = {}
        for ev, was_cached in self.pending:
            if ev.key in self.by_key:
                continue  # an interrupt after its outcome was kept, before pending was cleared
            groups.setdefault(ev.key, []).append(ev)
            cached[ev.key] = cached.get(ev.key, True) and was_cached
        return [Outcome(evs[0].genome, tuple(evs), cached[k]) for k, evs in groups.items()]


def _new_first(genomes: Sequence[Genome], evaluated: Mapping[str, Any]) -> tuple[list[Genome], list[Genome]]:
    """(the genomes whose keys are not evaluated, each key once, in order; the rest)."""
    new: list[Genome] = []
    rest: list[Genome] = []
    seen: set[str] = set()
    for g in genomes:
        if g.key in evaluated or g.key in seen:
            rest.append(g)
        else:
            seen.add(g.key)
            new.append(g)
    return new, rest


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
