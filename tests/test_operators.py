"""Every registered operator keeps genomes inside the space (property-based), and each
does what its name says."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from gi_energy.operators import (
    CROSSOVERS,
    MUTATIONS,
    add_layer,
    crossover,
    get_mutation,
    make_novel,
    mutate,
    mutation_moves,
    remove_layer,
    resize_layer,
)
from gi_energy.operators.steps import step_int, step_level, step_param, step_real
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy.config.genome import Genome, normalise_float
from gi_energy.config.space import (
    Choice,
    Fixed,
    IntRange,
    LayerSpace,
    RealRange,
    SearchSpace,
)

PROPERTY = settings(max_examples=int(os.environ.get("GI_HYPOTHESIS_EXAMPLES", "60")), deadline=None)


@st.composite
def int_ranges(draw, low=0, high=600, positive=False):
    lo = draw(st.integers(max(low, 1 if positive else low), high))
    hi = draw(st.integers(lo, high))
    return IntRange(lo, hi, log=positive and draw(st.booleans()))


@st.composite
def int_levels(draw, low=0, high=600):
    levels = draw(st.lists(st.integers(low, high), min_size=1, max_size=5, unique=True))
    return Choice(tuple(sorted(levels)))


@st.composite
def layer_spaces(draw):
    count = draw(st.one_of(int_ranges(0, 5), int_levels(0, 5)))
    size = draw(st.one_of(int_ranges(1, 600, positive=True), int_levels(1, 600)))
    return LayerSpace(count=count, size=size, uniform=draw(st.booleans()))


@st.composite
def params(draw):
    kind = draw(st.sampled_from(["real", "int", "cat", "num", "fixed"]))
    if kind == "real":
        log = draw(st.booleans())
        # Bounds as a problem file writes them: genome keys keep 12 significant digits, so a
        # bound with more digits would round out of its own range (see the report).
        lo = normalise_float(draw(st.floats(1e-6 if log else -10.0, 10.0, allow_nan=False)))
        hi = normalise_float(draw(st.floats(lo, 100.0, allow_nan=False)))
        return RealRange(lo, hi, log=log)
    if kind == "int":
        return draw(int_ranges(1, 1000, positive=draw(st.booleans())))
    if kind == "cat":
        return Choice(tuple(draw(st.lists(st.sampled_from(["relu", "tanh", "gelu", "elu"]), min_size=1,
                                          unique=True))))
    if kind == "num":
        return draw(int_levels(1, 512))
    return Fixed(draw(st.sampled_from([0.0, 32, "adam"])))


@st.composite
def spaces(draw):
    names = draw(st.lists(st.sampled_from(["learning_rate", "batch_size", "epochs", "activation",
                                           "dropout"]), unique=True, max_size=5))
    structures = draw(st.sampled_from([("hidden",), ("hidden", "conv")]))
    return SearchSpace(layers={s: draw(layer_spaces()) for s in structures},
                       params={n: draw(params()) for n in names})


@st.composite
def space_genome_rng(draw):
    space = draw(spaces())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return space, space.sample(rng), rng


@PROPERTY
@given(space_genome_rng())
def test_sampled_genomes_are_in_space(sgr):
    space, genome, _ = sgr
    assert space.contains(genome)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
@PROPERTY
@given(sgr=space_genome_rng())
def test_every_mutation_keeps_genomes_in_space(name, sgr):
    """The contract every registered mutation is held to."""
    space, genome, rng = sgr
    op = get_mutation(name)
    for target in op.targets(genome, space):
        child = op.apply(genome, space, rng, target)
        assert space.contains(child), (name, target, genome, child)


@PROPERTY
@given(space_genome_rng(), st.integers(1, 8))
def test_mutate_chains_stay_in_space(sgr, steps):
    space, genome, rng = sgr
    for _ in range(steps):
        genome = mutate(genome, space, rng)
        assert space.contains(genome)


@pytest.mark.parametrize("name", sorted(CROSSOVERS))
@PROPERTY
@given(sgr=space_genome_rng(), seed=st.integers(0, 1000))
def test_crossover_children_in_space(name, sgr, seed):
    space, a, rng = sgr
    b = space.sample(np.random.default_rng(seed))
    for child in CROSSOVERS[name](a, b, space, rng):
        assert space.contains(child)


@PROPERTY
@given(space_genome_rng())
def test_make_novel_stays_in_space_and_avoids_seen_keys(sgr):
    space, genome, rng = sgr
    child = make_novel(genome, {genome.key}, space, rng, max_tries=20)
    assert space.contains(child)
    if mutation_moves(genome, space):
        # any applicable move changes the key, so one try is enough to leave {genome}
        assert child.key != genome.key


@PROPERTY
@given(space_genome_rng())
def test_every_applicable_move_changes_the_genome(sgr):
    space, genome, rng = sgr
    for name, target in mutation_moves(genome, space):
        child = MUTATIONS[name].apply(genome, space, rng, target)
        assert child.key != genome.key, (name, target)


# ---------------------------------------------------------------- what each one does

SPACE = SearchSpace(
    layers={"hidden": LayerSpace(count=IntRange(1, 4), size=IntRange(4, 512, log=True))},
    params={"learning_rate": RealRange(1e-4, 1e-1, log=True), "epochs": IntRange(1, 50),
            "activation": Choice(("relu", "tanh", "gelu")), "batch_size": Fixed(32)},
)
PARENT = Genome(layers={"hidden": (64, 16)},
                values={"learning_rate": 1e-2, "epochs": 10, "activation": "relu", "batch_size": 32})


def test_add_and_remove_layer_change_depth_by_one():
    rng = np.random.default_rng(0)
    assert len(add_layer(PARENT, SPACE, rng, "hidden").layers["hidden"]) == 3
    assert len(remove_layer(PARENT, SPACE, rng, "hidden").layers["hidden"]) == 1
    top = PARENT.replace(layers={"hidden": (8, 8, 8, 8)})
    assert add_layer(top, SPACE, rng, "hidden") == top  # at the edge: nothing to add


def test_layer_count_levels_jump_to_the_next_level():
    space = SearchSpace(layers={"hidden": LayerSpace(count=Choice((1, 3)), size=Choice((8, 32, 128)),
                                                     uniform=True)}, params={})
    g = Genome(layers={"hidden": (32,)})
    rng = np.random.default_rng(1)
    grown = add_layer(g, space, rng, "hidden")
    assert grown.layers["hidden"] == (32, 32, 32)
    assert remove_layer(grown, space, rng, "hidden").layers["hidden"] == (32,)
    resized = resize_layer(grown, space, rng, "hidden").layers["hidden"]
    assert resized in ((8, 8, 8), (128, 128, 128))  # a neighbouring level, all layers tied


def test_resize_is_a_log_scale_step():
    rng = np.random.default_rng(2)
    ratios = []
    for _ in range(300):
        child = resize_layer(PARENT.replace(layers={"hidden": (64,)}), SPACE, rng, "hidden")
        ratios.append(math.log(child.layers["hidden"][0] / 64))
    # symmetric in log space: as many halvings as doublings, centred near 0
    assert abs(np.median(ratios)) < 0.2
    assert 0.2 < np.std(ratios) < 1.0


def test_hyperparameter_steps_by_type():
    rng = np.random.default_rng(3)
    lr = RealRange(1e-4, 1e-1, log=True)
    logs = [math.log10(step_real(1e-2, lr, rng)) + 2 for _ in range(500)]
    assert abs(np.median(logs)) < 0.1  # log-normal around the parent
    assert all(1e-4 <= 10 ** (v - 2) <= 1e-1 * (1 + 1e-9) for v in logs)
    epochs = IntRange(1, 50)
    assert all(step_int(1, epochs, rng) != 1 for _ in range(100))
    assert all(1 <= step_int(50, epochs, rng) <= 50 for _ in range(100))
    act = Choice(("relu", "tanh", "gelu"))
    assert all(step_param("relu", act, rng) != "relu" for _ in range(50))
    assert step_param(32, Fixed(32), rng) == 32
    assert step_level(32, Choice((16, 32, 64, 128)), rng) in (16, 64)
    assert step_level(16, Choice((16, 32, 64)), rng) == 32


def test_fixed_values_are_never_mutated():
    rng = np.random.default_rng(4)
    g = PARENT
    for _ in range(200):
        g = mutate(g, SPACE, rng)
        assert g.values["batch_size"] == 32


def test_crossover_mixes_layers_and_values():
    rng = np.random.default_rng(5)
    other = Genome(layers={"hidden": (256, 256, 256, 256)},
                   values={"learning_rate": 1e-3, "epochs": 40, "activation": "gelu", "batch_size": 32})
    mixed_values = set()
    depths = set()
    for _ in range(100):
        a, b = crossover(PARENT, other, SPACE, rng)
        mixed_values.add((a.values["epochs"], a.values["activation"]))
        depths.add(len(a.layers["hidden"]))
        # every value of a child comes from one of the parents
        for name in SPACE.params:
            assert a.values[name] in (PARENT.values[name], other.values[name])
    assert len(mixed_values) == 4
    assert len(depths) >= 3


def test_same_generator_state_same_children():
    a = [mutate(PARENT, SPACE, np.random.default_rng(9)) for _ in range(3)]
    assert len({g.key for g in a}) == 1


def test_unknown_operator_lists_valid_names():
    with pytest.raises(KeyError, match="add_layer"):
        get_mutation("add_neuron")


def test_mutation_moves_memo_follows_the_table_and_asks_value_dependent_operators_each_time():
    from gi_energy.operators.registry import Mutation

    space = SearchSpace(layers={"hidden": LayerSpace(count=IntRange(1, 3), size=IntRange(4, 64))},
                        params={"epochs": IntRange(1, 50)})
    low = Genome(layers={"hidden": (8,)}, values={"epochs": 2})
    high = Genome(layers={"hidden": (8,)}, values={"epochs": 40})  # the same layer counts as low
    # an operator whose targets depend on a value, not only on the layer counts
    only_low = Mutation(lambda g, s, rng, t: g, lambda g, s: ["epochs"] if g.values["epochs"] < 10 else [])
    table = {"add_layer": MUTATIONS["add_layer"], "only_low": only_low}
    assert mutation_moves(low, space, table) == [("add_layer", "hidden"), ("only_low", "epochs")]
    assert mutation_moves(high, space, table) == [("add_layer", "hidden")]
    assert mutation_moves(low, space, table) == [("add_layer", "hidden"), ("only_low", "epochs")]
    counted = {"add_layer": MUTATIONS["add_layer"]}
    assert mutation_moves(low, space, counted) == [("add_layer", "hidden")]
    counted["remove_layer"] = MUTATIONS["remove_layer"]  # the table changed in place: asked again
    assert mutation_moves(Genome(layers={"hidden": (8, 8)}, values={"epochs": 2}), space, counted) == \
        [("add_layer", "hidden"), ("remove_layer", "hidden")]
    assert mutation_moves(low, space, counted) == [("add_layer", "hidden")]
