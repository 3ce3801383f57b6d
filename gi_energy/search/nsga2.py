"""NSGA-II selection with our own fitness and individual types.

Survival and ranking follow DEAP's ``selNSGA2`` / ``sortNondominated`` /
``assignCrowdingDist``, without their n^2 Python loops: up to ``_VECTOR_LIMIT`` points
the domination test is one numpy array and the answers are DEAP's, in DEAP's order;
beyond it the fronts are moocore's Pareto ranks. DEAP itself (``_survive_deap``,
``_rank_and_crowding_deap``) stays as the reference the tests hold both to. It only needs
objects with ``.fitness`` (hashable, with ``.values``, ``.dominates`` and a writable
``.crowding_dist``). We do not use ``deap.creator``: it writes classes into module
globals, which breaks worker processes and pickling. DEAP writes crowding distances into
the fitness objects it is given, so every call wraps the caller's fitnesses in fresh
copies and answers with indices: callers' objects are never mutated.

Objectives are a minimisation vector (maximised metrics negated). Constraints use Deb's
constrained domination: a feasible point dominates an infeasible one, two infeasible
points compare by total violation. A failed evaluation (or one whose objectives are
missing) has infinite violation and never takes part in the sorting at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import moocore
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
    Up to ``_VECTOR_LIMIT`` valid points: the same survivors, in the same order, as DEAP's
    ``selNSGA2`` (tests/test_survival_fast.py checks it on random inputs), the domination
    test one numpy comparison instead of DEAP's n^2 Python calls. Beyond it the fronts
    are moocore's Pareto ranks (:func:`_ranked_fronts`), so 100,000 points take about a
    second where DEAP's loops took minutes for 10,000: the same ranks, and the same
    crowding distances wherever no objective ties, each front in input order; so tied
    values may give their crowding to another of the tied points, and where crowding
    distances tie at the cut another of the tied points may survive.
    """
    valid = [i for i, f in enumerate(fitnesses) if f.valid]
    vf = [fitnesses[i] for i in valid]
    fronts = _sorted_fronts(vf, k)
    if len(vf) > k:
        chosen = [j for front in fronts[:-1] for j in front]
        rest = k - len(chosen)
        if rest > 0:
            last = fronts[-1]
            crowding = np.asarray(_crowding([vf[j].values for j in last]))
            chosen += [last[j] for j in np.argsort(-crowding, kind="stable")[:rest]]
    else:
        chosen = [j for front in fronts for j in front]
    chosen = [valid[j] for j in chosen]
    if len(chosen) < k:
        chosen += [i for i, f in enumerate(fitnesses) if not f.valid][: k - len(chosen)]
    return chosen


def _survive_deap(fitnesses: Sequence[Fitness], k: int) -> list[int]:
    """:func:`survive` by DEAP itself: the reference the tests hold the fast paths to."""
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
    and assignCrowdingDist give them; beyond ``_VECTOR_LIMIT`` valid points each front
    is in input order, see :func:`survive`.)
    """
    valid = [i for i, f in enumerate(fitnesses) if f.valid]
    vf = [fitnesses[i] for i in valid]
    fronts = _sorted_fronts(vf, len(vf))
    ranks = [len(fronts)] * len(fitnesses)
    crowding = [0.0] * len(fitnesses)
    for r, front in enumerate(fronts):
        for j, d in zip(front, _crowding([vf[j].values for j in front])):
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


# Above this many valid points the n x n domination array (O(n^2) time and memory) gives
# way to moocore's ranks (O(n log n) for two objectives).
_VECTOR_LIMIT = 2000


def _sorted_fronts(fitnesses: Sequence[Fitness], k: int) -> list[list[int]]:
    """The fronts (indices into ``fitnesses``, all valid) until ``k`` points are sorted."""
    if len(fitnesses) <= _VECTOR_LIMIT:
        return _fronts(fitnesses, k)
    return _ranked_fronts(fitnesses, k)


def _ranked_fronts(fitnesses: Sequence[Fitness], k: int) -> list[list[int]]:
    """:func:`_fronts` for many points, each front in input order: the feasible points'
    fronts are their moocore Pareto ranks; after them, by constrained domination, each
    level of violation is one front (a lower violation dominates, equal ones never do)."""
    if not fitnesses or k == 0:
        return []
    violation = np.fromiter((f.violation for f in fitnesses), dtype=float, count=len(fitnesses))
    feasible = violation == 0.0
    rank = np.empty(len(fitnesses), dtype=np.int64)
    ranked = 0
    if feasible.any():
        vals = np.asarray([f.values for f, ok in zip(fitnesses, feasible.tolist()) if ok], dtype=float)
        feasible_rank = moocore.pareto_rank(vals)
        rank[feasible] = feasible_rank
        ranked = int(feasible_rank.max()) + 1
    if not feasible.all():
        rank[~feasible] = ranked + np.unique(violation[~feasible], return_inverse=True)[1]
    order = np.argsort(rank, kind="stable")
    sizes = np.bincount(rank)
    wanted = min(len(fitnesses), k)
    fronts, done = [], 0
    for start, size in zip(np.cumsum(sizes) - sizes, sizes.tolist()):
        fronts.append(order[start:start + size].tolist())
        done += size
        if done >= wanted:
            break
    return fronts


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
    # u <= v in every objective (le), < in one (lt); one n x n comparison per objective,
    # which numpy does several times faster than reducing an n x n x m array.
    le = np.ones((len(vals), len(vals)), dtype=bool)
    lt = np.zeros((len(vals), len(vals)), dtype=bool)
    for column in vals.T:
        le &= column[:, None] <= column[None, :]
        lt |= column[:, None] < column[None, :]
    feasible = viol == 0.0
    dom = np.where(viol[:, None] != viol[None, :], viol[:, None] < viol[None, :], feasible[:, None] & le & lt)
    # DEAP's counting loop itself, on the domination array: each point of a front, in the
    # front's order, takes one off the count of every point it dominates (in input order);
    # a point whose count reaches zero joins the next front then. Python over the pairs of
    # the fronts taken is a few microseconds where numpy's calls per front cost more.
    count = dom.sum(axis=0).tolist()
    # Whom each point dominates, in input order: one nonzero over the whole array, cut
    # into rows, rather than a numpy call per point taken.
    rows, dominated = np.nonzero(dom)
    bounds = np.searchsorted(rows, np.arange(len(vals) + 1)).tolist()
    dominated = dominated.tolist()
    current = [u for u, c in enumerate(count) if c == 0]
    fronts = [[i for u in current for i in members[u]]]
    done, wanted = len(fronts[0]), min(len(fitnesses), k)
    while done < wanted:
        found = []
        for u in current:
            for v in dominated[bounds[u]:bounds[u + 1]]:
                count[v] -= 1
                if count[v] == 0:
                    found.append(v)
        if not found:  # cannot happen with finite values; never loop on
            break
        current = found
        fronts.append([i for u in found for i in members[u]])
        done += len(fronts[-1])
    return fronts


def _crowding(points: Sequence[Sequence[float]]) -> list[float]:
    """DEAP's ``assignCrowdingDist`` on one front's values (same sorts, same sums, so the
    same floats): in Python for a small front, where numpy's calls cost more than the
    sums, with numpy for a large one (and for NaN, whose place in a sort numpy fixes)."""
    n = len(points)
    if n == 0:
        return []
    pts = [tuple(map(float, p)) for p in points]
    if n > _SMALL_FRONT or any(x != x for p in pts for x in p):
        return _crowding_array(np.asarray(pts, dtype=float).reshape(n, len(pts[0]))).tolist()
    m = len(pts[0])
    dist = [0.0] * n
    order = list(range(n))
    for i in range(m):
        order.sort(key=lambda j: pts[j][i])
        dist[order[0]] = math.inf
        dist[order[-1]] = math.inf
        lo, hi = pts[order[0]][i], pts[order[-1]][i]
        if hi == lo:
            continue
        norm = m * (hi - lo)
        for before, j, after in zip(order, order[1:-1], order[2:]):
            dist[j] += (pts[after][i] - pts[before][i]) / norm
    return dist


# Up to this many points a front's crowding is summed in Python.
_SMALL_FRONT = 64


def _crowding_array(vals: np.ndarray) -> np.ndarray:
    """:func:`_crowding` with numpy (n x m values)."""
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
