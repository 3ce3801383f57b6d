"""``[search] surrogate = "auto"`` (the default): screen offspring with the forest when a
generation's evaluations take long against the screening, else run plain NSGA-II.

Each generation that could be screened (enough ok evaluations to fit the forest, see
:func:`gi_energy.search.surrogate.min_points`) is decided afresh from two figures:

- the evaluation time: the median over the run's outcomes of what one cost, as the
  outcomes record it (per evaluation its ``wall_time_s``, else its ``train_time_s`` plus
  ``inference_time_s``, summed over repeats). For a real run these are the measured times;
  for a replay of a grid or a ``[table]`` they are the recorded ones, which is what a real
  run would pay, and which make the decision the same for the same seed (no wall clock
  enters it). A generation of ``n`` children on ``workers`` workers takes
  ``n * median / workers``.
- the screening time: an estimate of fitting and querying the forests (one per objective
  and one per constrained metric) on the run's ``n_train`` ok evaluations,
  :func:`screening_seconds`, whose constants were measured on the development machine
  (2 cores, under load; see the module's tests and experiments/suite). An estimate, not
  the wall clock of this run, so that a replay decides the same way on every machine.

The forest screens when the generation's evaluations take at least
``SCREEN_WHEN_EVALUATION_OVER`` times the screening (screening then at most doubles
a generation's time). Where no outcome records a time (a table without time
columns), the evaluation's cost is unknown, not zero: the forest screens, since a
configuration stands for a training run. Outcomes never change and the run restores them
on resume, so a resumed run decides as an unbroken one. The latest decision, with both
figures, goes to run.json (``surrogate_decision``) so a reader sees what ran.

"auto" also sizes the generations to the evaluation budget (:func:`sized`): with
``max_evaluations`` set, the population is about ``max_evaluations / GENERATIONS_TARGET``
(at least ``MIN_POPULATION``, at most ``[search] population``), so a budget of 20 or 30
evaluations still runs a handful of screened generations instead of one random sample
of 24. The population it ran with is in ``surrogate_decision`` too. (A resume that
extends ``max_evaluations`` sizes the rest of the run to the new budget.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gi_energy.tasks.results import Outcome, median

# Generations sized to the budget: a population of about budget / this (never fewer than
# MIN_POPULATION, never more than [search] population), so a small budget still runs
# generations of a search instead of one random sample.
GENERATIONS_TARGET = 8
MIN_POPULATION = 6
# Screening must cost at most 1 / this of a generation's evaluation time (1: it at most
# doubles a generation's time; the dev half showed the forest needs far fewer evaluations).
SCREEN_WHEN_EVALUATION_OVER = 1.0
# Screening-time model per forest: a fixed cost (48 trees, Python overhead, breeding the
# pool) plus a term in n log2 n x features for the tree building. Measured on the dev
# machine (scikit-learn ExtraTreesRegressor, 48 trees, n_jobs=1, load average ~2.8):
# 24 points: 0.05-0.06 s; 1,600 points x 24 features: 0.41 s; 6,400 x 24: 2.0 s.
FOREST_FIXED_S = 0.06
FOREST_S_PER_UNIT = 1.0e-6


def sized_population(search) -> int:
    """The population "auto" runs with: ``[search] population``, or fewer where the
    evaluation budget (``max_evaluations``) would otherwise buy few generations."""
    if search.max_evaluations is None:
        return search.population
    want = max(MIN_POPULATION, int(round(search.max_evaluations / GENERATIONS_TARGET)))
    return max(2, min(search.population, want))


def sized(problem):
    """``problem`` with the population "auto" runs with (the same object when unchanged)."""
    import dataclasses

    n = sized_population(problem.search)
    if n == problem.search.population:
        return problem
    return dataclasses.replace(problem, search=dataclasses.replace(problem.search, population=n))


def outcome_seconds(outcome: Outcome) -> float | None:
    """What evaluating ``outcome`` cost, as its evaluations record it (None: unknown)."""
    total, known = 0.0, False
    for ev in outcome.evaluations:
        if ev.wall_time_s is not None:
            t = ev.wall_time_s
        elif ev.train_time_s is not None or ev.inference_time_s is not None:
            t = (ev.train_time_s or 0.0) + (ev.inference_time_s or 0.0)
        else:
            continue
        if math.isfinite(t):
            total += max(0.0, float(t))
            known = True
    return total if known else None


def screening_seconds(n_train: int, n_features: int, n_forests: int) -> float:
    """Estimated seconds to fit ``n_forests`` forests on ``n_train`` points of
    ``n_features`` features and rank a generation's pool."""
    n = max(2, int(n_train))
    return n_forests * (FOREST_FIXED_S + FOREST_S_PER_UNIT * n * math.log2(n) * max(1, n_features))


def decide(eval_s: float | None, n_train: int, n_features: int, n_forests: int, children: int,
           workers: int, generation: int) -> dict:
    """The decision for one generation, given the median evaluation time ``eval_s``:
    ``chose`` is "forest" or "none", with the figures it was made from."""
    screen_s = screening_seconds(n_train, n_features, n_forests)
    out = {"surrogate": "auto", "generation": int(generation), "ok_evaluations": int(n_train),
           "screening_s_estimate": round(screen_s, 4), "screen_when_evaluation_over": SCREEN_WHEN_EVALUATION_OVER}
    if eval_s is None:
        out.update(chose="forest", evaluation_s=None, generation_evaluation_s=None,
                   why="no outcome records its time: an evaluation's cost is unknown, not zero")
        return out
    gen_s = children * eval_s / max(1, int(workers))
    forest = gen_s >= SCREEN_WHEN_EVALUATION_OVER * screen_s
    out.update(chose="forest" if forest else "none", evaluation_s=round(eval_s, 6),
               generation_evaluation_s=round(gen_s, 4),
               why=(f"a generation's evaluations ({gen_s:.3g} s) take {'at least' if forest else 'less than'} "
                    f"{SCREEN_WHEN_EVALUATION_OVER:g} x the screening ({screen_s:.3g} s)"))
    return out


class AutoScreen:
    """The per-generation decision of one run, kept up to date as outcomes arrive (each
    outcome is looked at once; the median then sorts the recorded times, one float per
    outcome). ``decision`` is the latest one (None before the
    first generation that could breed children), with how many generations screened and
    how many bred plainly so far (counted from the start, or from a resume)."""

    def __init__(self, problem, encoder):
        from .surrogate import min_points

        self.needed = min_points(encoder, problem.search.population)
        self.n_features = encoder.n_features
        self.n_forests = len(problem.objectives) + (len(problem.constraints) if problem.constraints else 0)
        self.workers = problem.evaluation.workers
        self.population = problem.search.population  # as sized(): what the run breeds
        self.seen = 0
        self.n_train = 0
        self.times: list[float] = []
        self.decision: dict | None = None
        # generations decided by this process (a resumed run counts from its resume)
        self.counts = {"forest": 0, "none": 0}

    def update(self, outcomes: Sequence[Outcome], fitness) -> None:
        """Take in the outcomes not seen yet (``fitness``: the loop's cached fitness)."""
        if len(outcomes) < self.seen:  # restored to fewer outcomes: start again
            self.seen, self.n_train, self.times = 0, 0, []
        new = outcomes[self.seen:]
        self.n_train += sum(1 for f in fitness(new) if f.valid)
        for o in new:
            t = outcome_seconds(o)
            if t is not None:
                self.times.append(t)
        self.seen = len(outcomes)

    def median_seconds(self) -> float | None:
        return median(self.times) if self.times else None

    def screens(self, outcomes: Sequence[Outcome], fitness, children: int, generation: int) -> bool:
        """Does this generation screen its ``children`` with the forest?"""
        self.update(outcomes, fitness)
        if self.n_train < self.needed:
            self.decision = {"surrogate": "auto", "generation": int(generation), "chose": "none",
                             "ok_evaluations": self.n_train,
                             "why": f"{self.n_train} ok evaluations, fewer than the {self.needed} the forest needs"}
        else:
            self.decision = decide(self.median_seconds(), self.n_train, self.n_features, self.n_forests,
                                   children, self.workers, generation)
        self.decision["population"] = self.population
        self.counts[self.decision["chose"]] += 1
        self.decision["generations_screened"] = self.counts["forest"]
        self.decision["generations_plain"] = self.counts["none"]
        return self.decision["chose"] == "forest"
