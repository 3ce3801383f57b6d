"""Surrogate pre-screening of offspring: the genome encoder, the screening rule, the
forest on a synthetic problem whose truth is known, and the two [search] keys."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from test_evolve import SPACE, synthetic_evaluation

from gi_energy import ProblemError, parse_problem
from gi_energy.config.space import Choice, Fixed, LayerSpace, SearchSpace
from gi_energy.search import nsga2
from gi_energy.search.surrogate import (
    ForestSurrogate,
    GenomeEncoder,
    min_points,
    predicted_violation,
    screen,
)

GRID_SPACE = SearchSpace(  # a replay space: every axis restricted to levels
    layers={"hidden": LayerSpace(count=Choice((1, 2, 3)), size=Choice((8, 16, 32, 64, 128, 256)), uniform=True)},
    params={
        "learning_rate": Choice((1e-3, 3e-3, 1e-2, 3e-2)),
        "batch_size": Choice((32, 128)),
        "epochs": Choice((5, 10, 20)),
        "activation": Choice(("relu", "tanh")),
        "shuffle": Fixed(True),
    },
)


@pytest.mark.parametrize("space", [SPACE, GRID_SPACE], ids=["ranges", "grid-levels"])
def test_encoder_shape_and_round_trip(space):
    enc = GenomeEncoder(space)
    rng = np.random.default_rng(0)
    genomes = [space.sample(rng) for _ in range(200)]
    x = enc.encode_many(genomes)
    assert x.shape == (200, enc.n_features) == (200, len(enc.columns))
    assert np.isfinite(x).all()
    for g, row in zip(genomes, x):
        assert enc.decode(row) == g
    # deterministic: a second encoder of the same space gives the same columns and numbers
    assert np.array_equal(GenomeEncoder(space).encode_many(genomes), x)


def test_encoder_columns():
    enc = GenomeEncoder(GRID_SPACE)
    assert enc.columns == ["hidden.count", "hidden.mean_size", "hidden.size0", "hidden.size1", "hidden.size2",
                           "learning_rate", "batch_size", "epochs", "activation=relu", "activation=tanh"]
    g = GRID_SPACE.sample(np.random.default_rng(1)).replace(layers={"hidden": (16, 16)},
                                                            values={"activation": "tanh", "learning_rate": 1e-2})
    row = dict(zip(enc.columns, enc.encode(g)))
    assert row["hidden.count"] == 2 and row["hidden.size2"] == 0.0
    assert row["hidden.size0"] == pytest.approx(np.log(16))  # sizes spanning a decade: log
    assert row["learning_rate"] == pytest.approx(np.log(1e-2))
    assert (row["activation=relu"], row["activation=tanh"]) == (0.0, 1.0)
    assert min_points(enc, 12) == 12 and min_points(enc, 100) == 20


def test_screen_ranks_predicted_front_first_and_explores():
    front = np.array([[0.0, 10.0], [10.0, 0.0]])
    predicted = np.array([[9.0, 9.0],    # dominated by nothing on the front: rank 0
                          [20.0, 20.0],  # dominated
                          [1.0, 5.0],    # rank 0
                          [30.0, 30.0],  # dominated
                          [5.0, 1.0],    # rank 0
                          [25.0, 25.0]])
    rng = np.random.default_rng(0)
    assert screen(predicted, front, 3, rng, explore=0.0) == [0, 2, 4]
    # with exploration one of the three is drawn from the rest
    picked = screen(predicted, front, 3, np.random.default_rng(5), explore=0.25)
    assert len(picked) == 3 and len(set(picked) & {0, 2, 4}) == 2
    assert screen(predicted, front, 10, rng) == list(range(6))
    # same generator state, same picks
    assert screen(predicted, front, 4, np.random.default_rng(7)) == screen(predicted, front, 4,
                                                                              np.random.default_rng(7))



def test_screen_with_constraints_ranks_predicted_feasible_first():
    front = np.array([[0.0, 10.0], [10.0, 0.0]])
    predicted = np.array([[1.0, 1.0],    # best objectives, but predicted infeasible
                          [9.0, 9.0],    # feasible, rank 0
                          [20.0, 20.0],  # feasible, dominated
                          [2.0, 2.0]])   # infeasible, less so
    metrics = np.array([[3000.0], [1000.0], [1500.0], [2200.0]])  # a params limit of 2000
    violation = predicted_violation(metrics, [2000.0])
    assert violation.tolist() == pytest.approx([0.5, 0.0, 0.0, 0.1])
    rng = np.random.default_rng(0)
    assert screen(predicted, front, 2, rng, explore=0.0, violation=violation) == [1, 2]
    assert screen(predicted, front, 3, rng, explore=0.0, violation=violation) == [1, 2, 3]
    # without constraints the infeasible ones win
    assert screen(predicted, front, 2, rng, explore=0.0) == [0, 3]

def _truth(genomes):
    out = []
    for g in genomes:
        ev = synthetic_evaluation(g)
        out.append((-ev.val_accuracy, ev.inference.energy_j))
    return np.asarray(out)


def _seen_and_pool(seed: int, n_seen: int, n_pool: int):
    """A generator, then ``n_seen`` evaluated genomes and ``n_pool`` candidates drawn from it."""
    rng = np.random.default_rng(seed)
    return rng, [SPACE.sample(rng) for _ in range(n_seen)], [SPACE.sample(rng) for _ in range(n_pool)]


def test_forest_screening_picks_the_truly_better_candidates():
    rng, seen, pool = _seen_and_pool(3, 80, 120)
    enc = GenomeEncoder(SPACE)
    model = ForestSurrogate(enc, random_state=1).fit(seen, _truth(seen))
    predicted = model.predict(pool)
    assert predicted.shape == (120, 2)
    truth = _truth(pool)
    # the forest ranks the pool much like the truth does
    for j in range(2):
        assert np.corrcoef(predicted[:, j], truth[:, j])[0, 1] > 0.8
    front = _truth(seen)[nsga2.nondominated([nsga2.Fitness(tuple(v)) for v in _truth(seen)])]
    chosen = screen(predicted, front, 15, rng, explore=0.0)
    ranks, _ = nsga2.rank_and_crowding([nsga2.Fitness(tuple(v)) for v in truth])
    ranks = np.asarray(ranks)
    others = np.setdiff1d(np.arange(120), chosen)
    # the chosen lie on much better true fronts than the rest of the pool
    assert ranks[chosen].mean() < 0.5 * ranks[others].mean()
    # refit with the same random_state: the same predictions (a resume refits it)
    again = ForestSurrogate(enc, random_state=1).fit(seen, _truth(seen)).predict(pool)
    assert np.array_equal(again, predicted)


def test_positive_objectives_are_modelled_in_log_and_predicted_in_their_units():
    _, seen, pool = _seen_and_pool(4, 60, 200)
    enc = GenomeEncoder(SPACE)
    model = ForestSurrogate(enc, random_state=2).fit(seen, _truth(seen))
    # -accuracy is never positive, energy always is: only the energy is logged
    assert model.log.tolist() == [False, True]
    z = model.predict_model_space(pool)
    raw = model.predict(pool)
    assert np.allclose(raw[:, 0], z[:, 0]) and np.allclose(raw[:, 1], np.exp(z[:, 1]))
    assert np.allclose(model.model_space(raw), z)
    # the front lies at the low end of the energy: the model ranks the cheapest quarter
    # of the pool among themselves, not only the pool as a whole
    truth = _truth(pool)[:, 1]
    low = np.argsort(truth)[:50]
    assert np.corrcoef(np.log(raw[low, 1]), np.log(truth[low]))[0, 1] > 0.85  # a raw-scale multi-output forest: 0.80

BASE = '[problem]\nname = "t"\n\n[search]\n'


def test_search_keys_default_and_parse():
    p = parse_problem(tomllib.loads(BASE))
    assert (p.search.surrogate, p.search.surrogate_pool) == ("auto", 16)
    p = parse_problem(tomllib.loads(BASE + 'surrogate = "forest"\nsurrogate_pool = 4\n'))
    assert (p.search.surrogate, p.search.surrogate_pool) == ("forest", 4)


@pytest.mark.parametrize("text,expect", [
    ('surrogate = "forrest"', 'did you mean "forest"'),
    ("surrogate = true", "expected a non-empty string"),
    ("surrogate_pool = 1", ">= 2"),
    ('surrogate_pool = "8"', "expected an integer"),
    ("surrogate_poool = 8", 'did you mean "surrogate_pool"'),
])
def test_search_keys_validated(text, expect):
    with pytest.raises(ProblemError) as exc:
        parse_problem(tomllib.loads(BASE + text + "\n"))
    assert expect in str(exc.value)


def test_hvi_picks_by_predicted_gain_on_the_fronts_own_scale():
    from gi_energy.search.surrogate import hvi_order

    front = np.array([[-0.99, 100.0], [-0.95, 1.0]])  # accuracy spans 0.04, energy 99
    predicted = np.array([[-0.95, 0.5],     # 0: a sliver less energy than the front's cheapest
                          [-0.995, 50.0],   # 1: beyond the front's best accuracy: a large gain on its scale
                          [-0.5, 0.01],     # 2: far beyond the reference in accuracy: adds nothing
                          [-0.97, 120.0],   # 3: dominated by the front
                          [-0.3, 200.0]])   # 4: widens the pool, dominated
    assert hvi_order(predicted, front, range(5), 5) == [1, 0]
    assert hvi_order(predicted, front, range(5), 1) == [1]
    assert hvi_order(predicted, front, [0, 2, 3], 5) == [0]
    # the batch rule: a second copy of the best point adds nothing once the first is in
    twice = np.vstack([predicted[1], predicted[1]])
    assert hvi_order(twice, front, [0, 1], 2) == [0]


def test_screen_by_hvi_then_by_rank():
    front = np.array([[0.0, 10.0], [10.0, 0.0]])
    predicted = np.array([[9.0, 9.0], [20.0, 20.0], [1.0, 5.0], [30.0, 30.0], [5.0, 1.0], [25.0, 25.0]])
    rng = np.random.default_rng(0)
    assert screen(predicted, front, 3, rng, explore=0.0, acquisition="hvi") == [0, 2, 4]
    # two picks: the two largest gains ((1, 5) and (5, 1)), not the crowding extreme (9, 9)
    assert screen(predicted, front, 2, rng, explore=0.0, acquisition="hvi") == [2, 4]
    # more than gain > 0 can fill: the rest as ranked
    assert screen(predicted, front, 4, rng, explore=0.0, acquisition="hvi") == [0, 1, 2, 4]


def test_parego_picks_by_a_random_tchebycheff_scalarisation_per_pick():
    from gi_energy.search.surrogate import parego_order

    front = np.array([[0.0, 10.0], [10.0, 0.0]])  # the front's own scale: both objectives 0-10
    predicted = np.array([[0.0, 9.0], [9.0, 0.0], [5.0, 5.0], [20.0, 20.0]])
    for seed in range(20):
        rng = np.random.default_rng(seed)
        w = np.random.default_rng(seed).dirichlet(np.ones(2))
        d = predicted / 10.0 * w
        first = int(np.argmin(d.max(axis=1) + 0.05 * d.sum(axis=1)))
        picked = parego_order(predicted, front, range(4), 3, rng)
        assert picked[0] == first and len(set(picked)) == 3 and 3 not in picked  # (20, 20) is never best
    assert parego_order(predicted, front, [2, 3], 5, np.random.default_rng(0)) in ([2, 3], [3, 2])
    rng = np.random.default_rng(1)
    assert screen(predicted, front, 2, rng, explore=0.0, acquisition="parego") == \
        sorted(parego_order(predicted, front, [0, 1, 2, 3], 2, np.random.default_rng(1)))


def test_optimism_is_the_trees_mean_less_k_spreads():
    _, seen, pool = _seen_and_pool(6, 40, 30)
    model = ForestSurrogate(GenomeEncoder(SPACE), random_state=2).fit(seen, _truth(seen))
    plain = model.predict_model_space(pool, optimism=0.0)
    x = model.encoder.encode_many(pool)
    spread = np.column_stack([np.stack([t.predict(x) for t in m.estimators_]).std(axis=0) for m in model.models])
    assert np.allclose(model.predict_model_space(pool, optimism=1.5), plain - 1.5 * spread * model.scale)
    assert (spread > 0).any()
