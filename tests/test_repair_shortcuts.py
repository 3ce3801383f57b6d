"""A genome repaired into a space remembers it, so that the operators' repairs cost only
the part they changed (``SearchSpace.repair`` / ``with_value`` / ``with_structure``).
These shortcuts must give exactly the genome a full repair gives, on spaces with
per-layer values, uniform structures and values out of range."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from gi_energy.operators import MUTATIONS, crossover, mutate
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy.config.genome import REPAIRED_IN, Genome
from gi_energy.config.space import Choice, Fixed, IntRange, LayerSpace, RealRange, SearchSpace

PROPERTY = settings(max_examples=int(os.environ.get("GI_HYPOTHESIS_EXAMPLES", "60")), deadline=None)


@st.composite
def counts(draw):
    if draw(st.booleans()):
        lo = draw(st.integers(0, 3))
        return IntRange(lo, draw(st.integers(lo, 5)))
    return Choice(tuple(sorted(draw(st.lists(st.integers(0, 5), min_size=1, max_size=4, unique=True)))))


@st.composite
def sizes(draw):
    if draw(st.booleans()):
        lo = draw(st.integers(1, 64))
        return IntRange(lo, draw(st.integers(lo, 512)), log=draw(st.booleans()))
    return Choice(tuple(sorted(draw(st.lists(st.integers(1, 512), min_size=1, max_size=5, unique=True)))))


@st.composite
def layer_spaces(draw):
    per_layer = []
    if draw(st.booleans()):
        kinds = draw(st.lists(st.sampled_from(["dense", "res", "gate"]), min_size=1, unique=True))
        per_layer.append(("kind", Choice(tuple(kinds))))
    if draw(st.booleans()):
        per_layer.append(("kernel", draw(sizes())))
    return LayerSpace(count=draw(counts()), size=draw(sizes()), uniform=draw(st.booleans()),
                      per_layer=tuple(per_layer))


@st.composite
def spaces(draw):
    params = {}
    if draw(st.booleans()):
        lo = draw(st.floats(1e-5, 1e-2))
        params["learning_rate"] = RealRange(lo, lo * draw(st.floats(1.5, 1e3)), log=True)
    if draw(st.booleans()):
        params["dropout"] = RealRange(0.0, draw(st.floats(0.1, 0.9)))
    if draw(st.booleans()):
        params["batch_size"] = Choice((16, 32, 64, 128))
    if draw(st.booleans()):
        params["epochs"] = IntRange(1, draw(st.integers(1, 40)))
    if draw(st.booleans()):
        params["optimizer"] = Choice(("adam", "sgd", "rmsprop"))
    if draw(st.booleans()):
        params["momentum"] = Choice((0.0, 0.5, 0.9))  # float levels: 0.0 is written as the int 0
    if draw(st.booleans()):
        params["seed_fixed"] = Fixed(7)
    structures = draw(st.sampled_from([("hidden",), ("hidden", "conv")]))
    return SearchSpace(layers={s: draw(layer_spaces()) for s in structures}, params=params)


def any_value(draw):
    return draw(st.one_of(st.integers(-5, 2000), st.floats(-10, 1e4, allow_nan=False),
                          st.sampled_from(["adam", "sgd", "dense", "gate", "nope", 0.5, 1.0, True])))


@st.composite
def cases(draw):
    space = draw(spaces())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return space, space.sample(rng), rng


def fresh(genome: Genome) -> Genome:
    """The same genome without the space it remembers (a pickle round trip drops it)."""
    out = pickle.loads(pickle.dumps(genome))
    assert REPAIRED_IN not in out.__dict__
    return out


def same(a: Genome, b: Genome) -> None:
    assert a.key == b.key
    assert a.to_json() == b.to_json()  # the same values and the same types (1 against 1.0)
    assert list(a.layers) == list(b.layers) and list(a.values) == list(b.values)


@PROPERTY
@given(cases(), st.data())
def test_with_value_is_a_full_repair_of_the_replaced_genome(case, data):
    space, genome, _ = case
    g = space.repair(genome)
    name = data.draw(st.sampled_from([*space.params, "not_a_param"]))
    value = any_value(data.draw)
    if name in space.params and isinstance(space.params[name], RealRange | IntRange) and isinstance(value, str):
        value = 3
    same(space.with_value(g, name, value), space.repair(fresh(g).replace(values={name: value})))


@PROPERTY
@given(cases(), st.data())
def test_with_structure_is_a_full_repair_of_the_replaced_genome(case, data):
    space, genome, _ = case
    g = space.repair(genome)
    structure = data.draw(st.sampled_from(list(space.layers)))
    keys = [structure, *(t for t, _ in space.layers[structure].tracks(structure))]
    parts = {}
    for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, unique=True)):
        if key == structure:
            parts[key] = tuple(data.draw(st.lists(st.integers(-3, 900), max_size=7)))
        elif key.endswith(".kind"):
            parts[key] = tuple(data.draw(st.lists(st.sampled_from(["dense", "res", "gate", "zz"]), max_size=7)))
        else:
            parts[key] = tuple(data.draw(st.lists(st.integers(-3, 900), max_size=7)))
    same(space.with_structure(g, structure, parts), space.repair(fresh(g).replace(layers=parts)))


@PROPERTY
@given(cases())
def test_repairing_twice_changes_nothing_and_the_shortcut_is_only_for_that_space(case):
    space, genome, _ = case
    g = space.repair(genome)
    assert space.repair(g) is g
    same(space.repair(fresh(g)), g)
    other = SearchSpace(layers=dict(space.layers), params=dict(space.params))  # equal, not the same
    again = other.repair(g)
    assert again is not g and again.__dict__[REPAIRED_IN] is other
    same(again, g)


@PROPERTY
@given(cases(), st.integers(1, 12))
def test_mutation_and_crossover_chains_match_full_repairs(case, steps):
    """The same draws give the same children whether or not a genome remembers its space."""
    space, genome, rng = case
    seed = int(rng.integers(2**31))
    fast_rng, slow_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    fast, slow = space.repair(genome), fresh(space.repair(genome))
    other_fast, other_slow = space.sample(rng), None
    other_slow = fresh(other_fast)
    for _ in range(steps):
        fast = mutate(fast, space, fast_rng)
        slow = fresh(mutate(slow, space, slow_rng))
        same(fast, slow)
        fast, other_fast = crossover(fast, other_fast, space, fast_rng)
        slow, other_slow = (fresh(x) for x in crossover(slow, other_slow, space, slow_rng))
        same(fast, slow)
        same(other_fast, other_slow)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutation_of_a_user_structure_matches_a_full_repair(name):
    space = SearchSpace(
        layers={"blocks": LayerSpace(count=IntRange(0, 4), size=Choice((8, 16, 32)),
                                     per_layer=(("kind", Choice(("dense", "res", "gate"))),
                                                ("kernel", IntRange(1, 7))))},
        params={"learning_rate": RealRange(1e-4, 1e-1, log=True), "optimizer": Choice(("adam", "sgd"))})
    op = MUTATIONS[name]
    for seed in range(40):
        rng = np.random.default_rng(seed)
        g = space.repair(space.sample(rng))
        for target in op.targets(g, space):
            a = op.apply(g, space, np.random.default_rng(seed), target)
            b = op.apply(fresh(g), space, np.random.default_rng(seed), target)
            same(a, b)
            assert space.contains(a)


def test_a_pickled_genome_carries_no_space():
    space = SearchSpace(layers={"hidden": LayerSpace(count=IntRange(1, 3), size=IntRange(4, 64))},
                        params={"learning_rate": RealRange(1e-4, 1e-1, log=True)})
    g = space.repair(space.sample(np.random.default_rng(0)))
    assert g.__dict__[REPAIRED_IN] is space
    assert b"SearchSpace" not in pickle.dumps(g)
    assert fresh(g) == g
