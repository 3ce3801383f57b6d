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
    The same survivors, in the same order, as DEAP's ``selNSGA2`` (tests/test_survival_fast.py
    checks it on random inputs); the domination test is one numpy comparison instead of
    DEAP's n^2 Python calls, which were the replay search's largest cost.
    """
    valid = [i for i, f in enumerate(fitnesses) if f.valid]
    if len(valid) > _VECTOR_LIMIT:
        return _survive_deap(fitnesses, k)
    vf = [fitnesses[i] for i in valid]
    if len(vf) > k:
        fronts = _fronts(vf, k)
        chosen = [j for front in fronts[:-1] for j in front]
        rest = k - len(chosen)
        if rest > 0:
            last = fronts[-1]
            crowding = _crowding(np.asarray([vf[j].values for j in last], dtype=float))
            chosen += [last[j] for j in np.argsort(-crowding, kind="stable")[:rest]]
    else:
        chosen = [j for front in _fronts(vf, len(vf)) for j in front]
    chosen = [valid[j] for j in chosen]
    if len(chosen) < k:
        chosen += [i for i, f in enumerate(fitnesses) if not f.valid][: k - len(chosen)]
    return chosen


def _survive_deap(fitnesses: Sequence[Fitness], k: int) -> list[int]:
    """:func:`survive` by DEAP itself (for populations too large for an n x n array)."""
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

    Failed points rank after every front with crowding 0. (As DEAP's sortNondominated
    and assignCrowdingDist give them.)
    """
    valid = [i for i, f in enumerate(fitnesses) if f.valid]
    if len(valid) > _VECTOR_LIMIT:
        return _rank_and_crowding_deap(fitnesses)
    vf = [fitnesses[i] for i in valid]
    fronts = _fronts(vf, len(vf)) if vf else []
    ranks = [len(fronts)] * len(fitnesses)
    crowding = [0.0] * len(fitnesses)
    for r, front in enumerate(fronts):
        dist = _crowding(np.asarray([vf[j].values for j in front], dtype=float))
        for j, d in zip(front, dist.tolist()):
            ranks[valid[j]] = r
            crowding[valid[j]] = d
    return ranks, crowding


def _rank_and_crowding_deap(fitnesses: Sequence[Fitness]) -> tuple[list[int], list[float]]:
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


# Above this many valid points the n x n domination array is left to DEAP's loops.
_VECTOR_LIMIT = 2000


def _fronts(fitnesses: Sequence[Fitness], k: int) -> list[list[int]]:
    """DEAP's ``sortNondominated(individuals, k)``: the fronts (indices) until ``k``
    points are sorted, in DEAP's order. Equal fitnesses go together at the first one's
    place; a front's members come in the order their last dominator was taken, then by
    first appearance, which is the order DEAP's counting loop finds them in."""
    if not fitnesses or k == 0:
        return []
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(fitnesses):
        groups.setdefault(f._identity(), []).append(i)
    members = list(groups.values())
    vals = np.asarray([ident[0] for ident in groups], dtype=float)
    viol = np.asarray([ident[1] for ident in groups], dtype=float)
    le = np.all(vals[:, None, :] <= vals[None, :, :], axis=2)
    lt = np.any(vals[:, None, :] < vals[None, :, :], axis=2)
    feasible = viol == 0.0
    dom = np.where(viol[:, None] != viol[None, :], viol[:, None] < viol[None, :], feasible[:, None] & le & lt)
    count = dom.sum(axis=0)
    current = np.flatnonzero(count == 0)
    fronts = [[i for u in current.tolist() for i in members[u]]]
    done, wanted = len(fronts[0]), min(len(fitnesses), k)
    while done < wanted:
        sub = dom[current]
        count = count - sub.sum(axis=0)
        hit = np.flatnonzero((count == 0) & sub.any(axis=0))
        if not len(hit):  # cannot happen with finite values; never loop on
            break
        last = (len(current) - 1) - np.argmax(sub[::-1][:, hit], axis=0)
        current = hit[np.lexsort((hit, last))]
        fronts.append([i for u in current.tolist() for i in members[u]])
        done += len(fronts[-1])
    return fronts


def _crowding(vals: np.ndarray) -> np.ndarray:
    """DEAP's ``assignCrowdingDist`` on one front's values (same sorts, same sums)."""
    n, m = vals.shape
    dist = np.zeros(n)
    order = np.arange(n)
    for i in range(m):
        order = order[np.argsort(vals[order, i], kind="stable")]
        dist[order[0]] = math.inf
        dist[order[-1]] = math.inf
        lo, hi = vals[order[0], i], vals[order[-1], i]
        if hi == lo:
            continue
        if n > 2:
            dist[order[1:-1]] += (vals[order[2:], i] - vals[order[:-2], i]) / (m * float(hi - lo))
    return dist


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
