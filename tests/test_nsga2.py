"""NSGA-II survival and selection against fronts worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading
from gi_energy.pareto import constraint_violation
from gi_energy.search.nsga2 import (
    Fitness,
    crowded_tournament,
    fitness_of,
    nondominated,
    rank_and_crowding,
    survive,
)
from gi_energy.tasks.results import Evaluation, Outcome

# Minimisation. By hand: A, B, C are non-dominated; D is dominated only by B, E only by C
# (rank 1); F by B and D (rank 2); G by F (rank 3).
POINTS = {"A": (1, 5), "B": (2, 3), "C": (3, 1), "D": (2, 4), "E": (4, 2), "F": (3, 4), "G": (5, 5)}
NAMES = list(POINTS)


def fits(points):
    return [Fitness(tuple(float(x) for x in p)) for p in points]


def names(idx):
    return [NAMES[i] for i in idx]


def test_ranks_by_hand():
    ranks, _ = rank_and_crowding(fits(POINTS.values()))
    assert dict(zip(NAMES, ranks)) == {"A": 0, "B": 0, "C": 0, "D": 1, "E": 1, "F": 2, "G": 3}


@pytest.mark.parametrize("k, expected", [
    (3, {"A", "B", "C"}),
    (5, {"A", "B", "C", "D", "E"}),
    (6, {"A", "B", "C", "D", "E", "F"}),
    (7, set(NAMES)),
])
def test_survival_takes_whole_fronts_first(k, expected):
    assert set(names(survive(fits(POINTS.values()), k))) == expected


def test_survival_breaks_a_front_by_crowding_distance():
    # One front. Crowding by hand (range 10 on each axis, 2 objectives => divide by 20):
    # (1,6): (2-0)/20 + (10-5.9)/20 = 0.305; (2,5.9): 5/20 + 5/20 = 0.5;
    # (6,1): 8/20 + 5.9/20 = 0.695; the two extremes are infinite.
    front = [(0, 10), (1, 6), (2, 5.9), (6, 1), (10, 0)]
    _, crowding = rank_and_crowding(fits(front))
    assert crowding[0] == crowding[4] == math.inf
    assert crowding[1:4] == pytest.approx([0.305, 0.5, 0.695])
    assert set(survive(fits(front), 4)) == {0, 2, 3, 4}
    assert set(survive(fits(front), 3)) == {0, 3, 4}


def test_callers_fitnesses_are_not_mutated():
    f = fits(POINTS.values())
    survive(f, 4)
    rank_and_crowding(f)
    assert all(x.crowding_dist == 0.0 for x in f)


def test_constrained_domination():
    feasible_bad = Fitness((10.0, 10.0), 0.0)
    infeasible_good = Fitness((0.0, 0.0), 0.5)
    worse_violation = Fitness((0.0, 0.0), 2.0)
    assert feasible_bad.dominates(infeasible_good)
    assert infeasible_good.dominates(worse_violation)
    assert not infeasible_good.dominates(Fitness((1.0, 1.0), 0.5))  # equal violation: a tie
    assert survive([infeasible_good, feasible_bad], 1) == [1]
    assert nondominated([infeasible_good, feasible_bad]) == [1]


def test_failed_points_are_never_sorted_and_survive_last():
    failed = Fitness((math.inf, math.inf), math.inf)
    f = [failed, *fits([(1, 1), (2, 2)])]
    assert not failed.valid
    assert survive(f, 2) == [1, 2]
    assert survive(f, 3) == [1, 2, 0]  # only to fill the population
    ranks, crowding = rank_and_crowding(f)
    assert ranks[0] > max(ranks[1:]) and crowding[0] == 0.0
    assert nondominated(f) == [1]


def test_duplicates_share_a_front():
    assert nondominated(fits([(1, 2), (1, 2), (2, 1), (3, 3)])) == [0, 1, 2]


def test_crowded_tournament_prefers_rank_then_crowding():
    rng = np.random.default_rng(0)
    picks = crowded_tournament([0, 1], [0.0, 0.0], 4000, rng)
    # index 1 wins only when both draws are 1: probability 1/4
    assert picks.count(1) / 4000 == pytest.approx(0.25, abs=0.03)
    picks = crowded_tournament([0, 0], [math.inf, 0.1], 4000, rng)
    assert picks.count(1) / 4000 == pytest.approx(0.25, abs=0.03)
    again = crowded_tournament([0, 1, 2], [1.0, 1.0, 1.0], 50, np.random.default_rng(7))
    assert again == crowded_tournament([0, 1, 2], [1.0, 1.0, 1.0], 50, np.random.default_rng(7))


def _outcome(status="ok", accuracy=0.9, energy_j=2.0, params=1000):
    g = Genome(layers={"hidden": (8,)}, values={})
    reading = Reading("estimate", "process-estimate", False, energy_j, 1.0)
    ev = Evaluation(genome=g, status=status, val_accuracy=accuracy, train=reading, inference=reading,
                    inference_samples=1000, params=params)
    return Outcome(g, (ev,))


def test_fitness_of_outcomes():
    objectives = {"accuracy": "max", "inference_energy_j_per_1k": "min"}
    ok = fitness_of(_outcome(), objectives)
    assert ok.values == (-0.9, 2.0) and ok.feasible
    assert not fitness_of(_outcome(status="failed"), objectives).valid
    assert not fitness_of(_outcome(energy_j=None), objectives).valid  # a missing reading is not 0
    over = fitness_of(_outcome(params=1500), objectives, {"params": 1000.0})
    assert over.violation == pytest.approx(0.5)
    assert constraint_violation(_outcome(params=500), {"params": 1000.0}) == 0.0


# Two fronts of four points and a third of one. Crowding by hand, per front (DEAP's
# definition: per objective, (next - previous) / (n_obj x the front's range)):
#   front 0 (0,6) (1,3) (2,2) (6,0): ranges 6 and 6, divide by 12.
#     (1,3): (2-0)/12 + (6-2)/12 = 0.5        (2,2): (6-1)/12 + (3-0)/12 = 2/3
#   front 1 (1,7) (2,4) (4,2.5) (7,1): ranges 6 and 6, divide by 12.
#     (2,4): (4-1)/12 + (7-2.5)/12 = 0.625    (4,2.5): (7-2)/12 + (4-1)/12 = 2/3
#   front 2 (8,8): alone, infinite. Each front's extremes are infinite.
SEVERAL_FRONTS = [(0, 6), (1, 3), (2, 2), (6, 0), (1, 7), (2, 4), (4, 2.5), (7, 1), (8, 8)]


def test_crowding_is_computed_per_front():
    ranks, crowding = rank_and_crowding(fits(SEVERAL_FRONTS))
    assert ranks == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    inf = math.inf
    assert crowding == pytest.approx([inf, 0.5, 2 / 3, inf, inf, 0.625, 2 / 3, inf, inf])


def test_survival_cuts_the_second_front_by_its_own_crowding():
    # Front 0 (4 points) goes whole; front 1 is cut: extremes first, then (4,2.5) over (2,4).
    assert set(survive(fits(SEVERAL_FRONTS), 6)) == {0, 1, 2, 3, 4, 7}
    assert set(survive(fits(SEVERAL_FRONTS), 7)) == {0, 1, 2, 3, 4, 6, 7}


def test_crowded_tournament_decides_by_rank_then_crowding_then_a_coin():
    class Draws:
        """Replays fixed index pairs and coin values."""

        def __init__(self, pairs, coins=()):
            self.pairs = list(pairs)
            self.coins = list(coins)

        def integers(self, high, size=None):
            return np.array(self.pairs.pop(0))

        def random(self):
            return self.coins.pop(0)

    ranks = [0, 1, 0, 2, 0]
    crowding = [0.5, math.inf, 2.0, 9.0, 0.5]
    pairs = [(0, 1), (1, 0), (1, 3), (3, 1), (0, 2), (2, 0)]
    draws = Draws(pairs)
    assert crowded_tournament(ranks, crowding, 6, draws) == [0, 0, 1, 1, 2, 2]
    assert draws.pairs == []
    # A tie in rank and crowding: the coin decides, a below 0.5, b otherwise.
    coin = Draws([(0, 4), (0, 4), (4, 0)], coins=[0.49, 0.5, 0.0])
    assert crowded_tournament(ranks, crowding, 3, coin) == [0, 4, 4]


def test_domination_of_equal_points_and_of_equal_violations():
    a, b = Fitness((1.0, 2.0)), Fitness((1.0, 2.0))
    assert not a.dominates(b) and not b.dominates(a)              # equal points: neither
    assert not Fitness((2.0, 2.0)).dominates(Fitness((1.0, 1.0)))  # equal violation 0: by values
    assert Fitness((1.0, 1.0)).dominates(Fitness((2.0, 2.0)))
    assert Fitness((1.0, 1.0), 0.5).dominates(Fitness((0.0, 0.0), 0.7))


def test_fitness_identity_is_values_and_violation():
    a = Fitness((1.0, 2.0), 0.0)
    a.crowding_dist = 3.0
    assert a == Fitness((1.0, 2.0), 0.0) and hash(a) == hash(Fitness((1.0, 2.0), 0.0))
    assert a != Fitness((1.0, 2.0), 0.5) and a != Fitness((1.0, 3.0), 0.0)
    assert a != (1.0, 2.0)
    assert a.copy() == a and a.copy().crowding_dist == 0.0


def test_failed_points_fill_only_the_missing_places():
    failed = Fitness((math.inf, math.inf), math.inf)
    f = [failed, *fits([(1, 1)]), failed, failed]
    assert survive(f, 2) == [1, 0]
    assert survive(f, 1) == [1]
    assert fitness_of(_outcome(status="failed"), {"accuracy": "max", "params": "min"}).values \
        == (math.inf, math.inf)


def test_the_ranked_path_for_large_populations_gives_the_same_answers(monkeypatch):
    # Above _VECTOR_LIMIT valid points survival and ranking take moocore's ranks; with the
    # limit at 3 the hand-worked fronts above take that path. DEAP itself, the reference
    # both paths are held to, gives the same.
    from gi_energy.search import nsga2

    monkeypatch.setattr(nsga2, "_VECTOR_LIMIT", 3)
    assert set(survive(fits(SEVERAL_FRONTS), 6)) == {0, 1, 2, 3, 4, 7}
    ranks, crowding = rank_and_crowding(fits(SEVERAL_FRONTS))
    assert ranks == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    inf = math.inf
    assert crowding == pytest.approx([inf, 0.5, 2 / 3, inf, inf, 0.625, 2 / 3, inf, inf])
    failed = Fitness((math.inf, math.inf), math.inf)
    assert nsga2._survive_deap([failed, *fits([(1, 1)]), failed, failed], 2) == [1, 0]
    monkeypatch.setattr(nsga2, "_VECTOR_LIMIT", 0)
    assert survive([failed, *fits([(1, 1)]), failed, failed], 2) == [1, 0]
    assert rank_and_crowding([failed, *fits([(1, 1)])]) == ([1, 0], [0.0, inf])
