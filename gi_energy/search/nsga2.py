"""NSGA-II selection with our own fitness and individual types.

DEAP's ``sortNondominated`` / ``selNSGA2`` / ``assignCrowdingDist`` do the sorting; they
only need objects with ``.fitness`` (hashable, with ``.values``, ``.dominates`` and a
writable ``.crowding_dist``). We do not use ``deap.creator``: it writes classes into
module globals, which breaks worker processes and pickling. DEAP writes crowding
distances into the fitness objects it is given, so every call here wraps the caller's
fitnesses in fresh copies and answers with indices: callers' objects are never mutated.

Objectives are a minimisation vector (maximised metrics negated). Constraints use Deb's
constrained domination: a feasible point dominates an infeasible one, two infeasible
points compare by total violation. A failed evaluation (or one whose objectives are
missing) has infinite violation and never takes part in the sorting at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from deap import tools
from deap.tools.emo import assignCrowdingDist

from gi_energy.pareto import FAILED, constraint_violation
from gi_energy.pareto import nondominated as nondominated_mask
from gi_energy.tasks.results import Outcome


@dataclass(eq=False)
class Fitness:
    """A point to be sorted: ``values`` to minimise, ``violation`` of the constraints.

    ``violation`` is 0.0 when feasible, the summed relative excess over the limits when
    not, and ``inf`` for a failed evaluation. ``crowding_dist`` is written by DEAP.
    """

    values: tuple[float, ...]
    violation: float = 0.0
    crowding_dist: float = field(default=0.0, compare=False)

    @property
    def feasible(self) -> bool:
        return self.violation == 0.0

    @property
    def valid(self) -> bool:
        """False for failed evaluations: they are never sorted nor put in a front."""
        return math.isfinite(self.violation)

    def dominates(self, other: Fitness) -> bool:
        """Constrained domination (Deb 2000)."""
        if self.violation != other.violation:
            return self.violation < other.violation
        if not self.feasible:
            return False  # equally infeasible: neither dominates
        not_worse = all(a <= b for a, b in zip(self.values, other.values))
        return not_worse and any(a < b for a, b in zip(self.values, other.values))

    def _identity(self):
        return (self.values, self.violation)

    def __hash__(self) -> int:
        return hash(self._identity())

    def __eq__(self, other) -> bool:
        return isinstance(other, Fitness) and self._identity() == other._identity()

    def copy(self) -> Fitness:
        return Fitness(self.values, self.violation)


@dataclass(eq=False)
class Individual:
    """What DEAP sorts: a fitness copy and the caller's index."""

    fitness: Fitness
    index: int


def fitness_of(outcome: Outcome, objectives: Mapping[str, str],
               constraints: Mapping[str, float] | None = None) -> Fitness:
    """The fitness of an outcome; failed or objective-less outcomes get infinite violation."""
    vector = outcome.objectives(objectives) if outcome.ok else None
    if vector is None:
        return Fitness(tuple(math.inf for _ in objectives), FAILED)
    return Fitness(tuple(float(v) for v in vector), constraint_violation(outcome, constraints or {}))


def _wrap(fitnesses: Sequence[Fitness]) -> list[Individual]:
    return [Individual(f.copy(), i) for i, f in enumerate(fitnesses) if f.valid]


def survive(fitnesses: Sequence[Fitness], k: int) -> list[int]:
    """Indices of the ``k`` survivors by NSGA-II (rank, then crowding distance).

    Failed points survive only when there are fewer than ``k`` valid ones, in input order.
    """
    valid = _wrap(fitnesses)
    if len(valid) > k:
        chosen = [ind.index for ind in tools.selNSGA2(valid, k, nd="standard")]
    else:
        chosen = [ind.index for front in tools.sortNondominated(valid, len(valid)) for ind in front]
    if len(chosen) < k:
        chosen += [i for i, f in enumerate(fitnesses) if not f.valid][: k - len(chosen)]
    return chosen


def rank_and_crowding(fitnesses: Sequence[Fitness]) -> tuple[list[int], list[float]]:
    """Front rank (0 = non-dominated) and crowding distance of each point.

    Failed points rank after every front with crowding 0.
    """
    valid = _wrap(fitnesses)
    fronts = tools.sortNondominated(valid, len(valid)) if valid else []
    ranks = [len(fronts)] * len(fitnesses)
    crowding = [0.0] * len(fitnesses)
    for r, front in enumerate(fronts):
        assignCrowdingDist(front)
        for ind in front:
            ranks[ind.index] = r
            crowding[ind.index] = ind.fitness.crowding_dist
    return ranks, crowding


def crowded_tournament(ranks: Sequence[int], crowding: Sequence[float], n: int,
                       rng: np.random.Generator) -> list[int]:
    """``n`` parent indices by crowded binary tournament: lower rank wins, then larger
    crowding distance, then a coin flip."""
    size = len(ranks)
    out = []
    for _ in range(n):
        a, b = (int(x) for x in rng.integers(size, size=2))
        if ranks[a] != ranks[b]:
            out.append(a if ranks[a] < ranks[b] else b)
        elif crowding[a] != crowding[b]:
            out.append(a if crowding[a] > crowding[b] else b)
        else:
            out.append(a if rng.random() < 0.5 else b)
    return out


def nondominated(fitnesses: Sequence[Fitness]) -> list[int]:
    """Indices of the feasible non-dominated points, in input order (duplicates kept).

    Vectorised: the search calls this on its whole archive every generation, where the
    pairwise Python comparisons of ``sortNondominated`` were the engine's largest cost.
    """
    feasible = [i for i, f in enumerate(fitnesses) if f.valid and f.feasible]
    if not feasible:
        return []
    mask = nondominated_mask(np.asarray([fitnesses[i].values for i in feasible], dtype=float))
    return [i for i, keep in zip(feasible, mask) if keep]
