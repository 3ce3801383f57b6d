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
