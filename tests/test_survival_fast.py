"""The vectorised NSGA-II survival gives DEAP's survivors, ranks and crowding distances,
in DEAP's order, on random inputs with ties, duplicates, constraints and failed points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gi_energy.search import nsga2
from gi_energy.search.nsga2 import Fitness


def _random_fitnesses(rng: np.random.Generator, n: int, m: int) -> list[Fitness]:
    levels = rng.integers(2, 8)  # few levels: many ties and duplicates
    out = []
    for _ in range(n):
        values = tuple(float(v) for v in rng.integers(0, levels, m))
        r = rng.random()
        violation = 0.0 if r < 0.7 else (math.inf if r > 0.92 else float(rng.integers(1, 3)) / 2)
        out.append(Fitness(values, violation))
    return out


@pytest.mark.parametrize("seed", range(60))
def test_survival_and_ranks_are_deaps(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 60)), int(rng.integers(2, 4))
    fits = _random_fitnesses(rng, n, m)
    for k in {1, max(1, n // 2), n, n + 3}:
        assert nsga2.survive(fits, k) == nsga2._survive_deap(fits, k), (n, m, k)
    ranks, crowding = nsga2.rank_and_crowding(fits)
    deap_ranks, deap_crowding = nsga2._rank_and_crowding_deap(fits)
    assert ranks == deap_ranks
    assert crowding == deap_crowding  # the same sums in the same order: equal, not close


def test_real_valued_points_too():
    rng = np.random.default_rng(7)
    fits = [Fitness(tuple(rng.normal(size=3).tolist())) for _ in range(48)]
    assert nsga2.survive(fits, 24) == nsga2._survive_deap(fits, 24)
    assert nsga2.rank_and_crowding(fits) == nsga2._rank_and_crowding_deap(fits)


# Beyond nsga2._VECTOR_LIMIT valid points the fronts are moocore's Pareto ranks, each
# front in input order (not DEAP's): the ranks are DEAP's; so are the crowding distances
# where no objective ties (the sorts then have one answer whatever the order); survival
# keeps whole fronts and, in the last, points of DEAP's crowding distances.
@pytest.mark.parametrize("seed", range(40))
def test_ranked_fronts_give_deaps_ranks_and_survivors(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 80)), int(rng.integers(2, 4))
    fits = _random_fitnesses(rng, n, m)
    deap_ranks, _ = nsga2._rank_and_crowding_deap(fits)
    monkeypatch.setattr(nsga2, "_VECTOR_LIMIT", 0)
    ranks, _ = nsga2.rank_and_crowding(fits)
    assert ranks == deap_ranks
    for k in {1, max(1, n // 2), n, n + 3}:
        survivors = nsga2.survive(fits, k)
        deap = nsga2._survive_deap(fits, k)
        assert len(survivors) == len(set(survivors)) == len(deap)
        # whole fronts as DEAP keeps them, and as many of the last one
        assert sorted(ranks[i] for i in survivors) == sorted(ranks[i] for i in deap), (n, m, k)


@pytest.mark.parametrize("seed", range(20))
def test_ranked_fronts_without_ties_are_deaps_in_all_but_order(seed, monkeypatch):
    rng = np.random.default_rng(100 + seed)
    n, m = int(rng.integers(2, 120)), int(rng.integers(2, 4))
    fits = [Fitness(tuple(rng.random(m).tolist()),
                    0.0 if rng.random() < 0.8 else float(rng.integers(1, 4)) / 4) for _ in range(n)]
    deap_ranks, deap_crowding = nsga2._rank_and_crowding_deap(fits)
    monkeypatch.setattr(nsga2, "_VECTOR_LIMIT", 0)
    assert nsga2.rank_and_crowding(fits) == (deap_ranks, deap_crowding)  # equal, not close
    for k in {1, n // 2, n - 1}:
        survivors, deap = nsga2.survive(fits, k), nsga2._survive_deap(fits, k)
        key = [(deap_ranks[i], deap_crowding[i]) for i in range(n)]
        assert sorted(key[i] for i in survivors) == sorted(key[i] for i in deap)


def test_past_the_limit_the_ranked_fronts_are_used(monkeypatch):
    # At the limit the numpy array (DEAP's order); one point more, moocore's ranks.
    rng = np.random.default_rng(3)
    fits = [Fitness(tuple(rng.random(2).tolist())) for _ in range(12)]
    calls = []
    monkeypatch.setattr(nsga2.moocore, "pareto_rank", lambda v, _real=nsga2.moocore.pareto_rank: (
        calls.append(len(v)), _real(v))[1])
    monkeypatch.setattr(nsga2, "_VECTOR_LIMIT", 12)
    assert nsga2.survive(fits, 6) == nsga2._survive_deap(fits, 6)
    assert calls == []
    monkeypatch.setattr(nsga2, "_VECTOR_LIMIT", 11)
    nsga2.survive(fits, 6)
    assert calls == [12]


@pytest.mark.parametrize("seed", range(10))
def test_crowding_in_python_and_with_numpy_are_the_same_floats(seed, monkeypatch):
    # A small front's crowding is summed in Python, a large one's with numpy: both are
    # DEAP's sorts and sums, so each gives the other's floats, ties and infinities included
    # (here Python sums every size).
    monkeypatch.setattr(nsga2, "_SMALL_FRONT", 10**9)
    rng = np.random.default_rng(200 + seed)
    n, m = int(rng.integers(1, 150)), int(rng.integers(1, 4))
    pts = [tuple(float(v) for v in row) for row in np.round(rng.normal(size=(n, m)), int(rng.integers(0, 3)))]
    pts[int(rng.integers(n))] = (math.inf,) * m
    with np.errstate(invalid="ignore"):  # inf - inf: nan, in both
        expected = nsga2._crowding_array(np.asarray(pts, dtype=float)).tolist()
        got = nsga2._crowding(pts)
    assert [repr(d) for d in got] == [repr(d) for d in expected]  # nan spelled as nan


def test_crowding_with_nan_is_numpys():
    pts = [(1.0, 2.0), (math.nan, 1.0), (0.5, 3.0), (2.0, 0.0)]
    expected = nsga2._crowding_array(np.asarray(pts)).tolist()
    assert [repr(d) for d in nsga2._crowding(pts)] == [repr(d) for d in expected]
