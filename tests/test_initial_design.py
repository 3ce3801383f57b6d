"""The first generation's designs (gi_energy.search.initial): a Latin hypercube over the
space's factors spreads every factor's levels, stays in the space, and is seeded."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from gi_energy.config.parse import parse_problem
from gi_energy.config.space import Choice, Fixed, IntRange, LayerSpace, RealRange, SearchSpace
from gi_energy.search.initial import spread_column, spread_genomes

SPACE = SearchSpace(
    layers={"hidden": LayerSpace(count=IntRange(1, 3), size=Choice((8, 16, 32, 64, 128)), uniform=True,
                                 per_layer=(("kind", Choice(("a", "b"))),))},
    params={"learning_rate": RealRange(1e-4, 1e-1, log=True), "epochs": IntRange(1, 50),
            "activation": Choice(("relu", "tanh", "gelu")), "batch_size": Fixed(32)},
)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 12, 24])
def test_a_choice_takes_each_level_as_often_as_n_allows(n):
    col = spread_column(Choice(("relu", "tanh", "gelu")), n, np.random.default_rng(n))
    counts = Counter(col)
    assert len(col) == n and set(counts) <= {"relu", "tanh", "gelu"}
    assert max(counts.values()) - min(counts.get(k, 0) for k in ("relu", "tanh", "gelu")) <= 1


@pytest.mark.parametrize("p", [RealRange(1e-4, 1e-1, log=True), RealRange(0.0, 0.5), IntRange(1, 1000),
                               IntRange(4, 512, log=True)])
def test_a_range_has_one_value_in_each_of_n_strata(p):
    n = 10
    col = spread_column(p, n, np.random.default_rng(3))
    assert all(p.contains(v) for v in col)
    log = p.log
    hi = p.high + (1 if isinstance(p, IntRange) else 0)
    lo, hi = (math.log(p.low), math.log(hi)) if log else (p.low, hi)
    strata = sorted(int(((math.log(v) if log else v) - lo) / (hi - lo) * n) for v in col)
    if isinstance(p, IntRange) and p.high - p.low < 1000:
        assert len(set(strata)) >= n - 2  # integers round a draw into the stratum below now and then
    else:
        assert strata == list(range(n))


def test_fixed_values_stay_fixed():
    assert spread_column(Fixed(32), 4, np.random.default_rng(0)) == [32] * 4


def test_spread_genomes_are_in_the_space_seeded_and_spread_the_layers():
    a = spread_genomes(SPACE, 9, np.random.default_rng(7))
    b = spread_genomes(SPACE, 9, np.random.default_rng(7))
    assert [g.key for g in a] == [g.key for g in b]
    assert [g.key for g in a] != [g.key for g in spread_genomes(SPACE, 9, np.random.default_rng(8))]
    assert all(SPACE.contains(g) for g in a)
    assert Counter(len(g.layers["hidden"]) for g in a) == {1: 3, 2: 3, 3: 3}
    assert Counter(g.values["activation"] for g in a) == {"relu": 3, "tanh": 3, "gelu": 3}
    assert len({g.layers["hidden"][0] for g in a}) == 5  # every size level, 9 draws over 5
    assert all(len(g.layers["hidden.kind"]) == len(g.layers["hidden"]) for g in a)
    assert spread_genomes(SPACE, 0, np.random.default_rng(0)) == []


def test_the_search_starts_from_the_spread_design(monkeypatch):
    from gi_energy.report.progress import SilentProgress
    from gi_energy.search import initial as initial_mod
    from gi_energy.search.loop import SearchLoop
    from gi_energy.search.termination import from_config

    problem = parse_problem({"problem": {"name": "t", "seed": 1}, "objectives": {"accuracy": "max", "inference_energy_j_per_1k": "min"},
                             "space": {"hidden_layers": {"min": 1, "max": 3}, "width": {"min": 4, "max": 64}}},
                            source="<test>")

    def first(design):
        monkeypatch.setattr(initial_mod, "DESIGN", design)
        search = SearchLoop(problem=problem, evaluator=None, termination=from_config(problem.search),
                            rng=np.random.default_rng(5), progress=SilentProgress())
        return search.initial_genomes(6)

    expected = spread_genomes(problem.space, 6, np.random.default_rng(5))
    assert len({g.key for g in expected}) == 6  # no repeat to re-draw: the design is the generation
    spread = first("spread")
    assert [g.key for g in spread] == [g.key for g in expected]
    assert Counter(len(g.layers["hidden"]) for g in spread) == {1: 2, 2: 2, 3: 2}
    assert [g.key for g in first("random")] != [g.key for g in spread]
