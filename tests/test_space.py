"""Search space: sampling, repair, grid enumeration and canonical keys."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy import Genome, load_problem
from gi_energy.config.space import Choice, Grid, IntRange, LayerSpace, RealRange, SearchSpace


def test_sampling_stays_in_space_and_is_seeded():
    p = load_problem("digits")
    a = [p.space.sample(np.random.default_rng(3)) for _ in range(1)]
    b = [p.space.sample(np.random.default_rng(3)) for _ in range(1)]
    assert a == b
    rng = np.random.default_rng(0)
    for _ in range(300):
        assert p.space.contains(p.space.sample(rng))


def test_log_sampling_covers_small_values():
    r = RealRange(1e-4, 1e-1, log=True)
    xs = [r.sample(np.random.default_rng(i)) for i in range(400)]
    assert sum(x < 1e-3 for x in xs) > 80  # a third of the log range lies below 1e-3


def test_key_normalises_floats():
    a = Genome(layers={"hidden": (8,)}, values={"learning_rate": 0.001})
    b = Genome(layers={"hidden": (8,)}, values={"learning_rate": 1e-3})
    c = Genome(layers={"hidden": (8,)}, values={"learning_rate": 0.1 * 0.01})  # 0.0010000000000000002
    assert a.key == b.key == c.key
    assert hash(a) == hash(c) and a == c


def test_key_is_order_independent_and_distinguishes_structure():
    a = Genome(layers={"hidden": (8, 4)}, values={"b": 1, "a": "relu"})
    b = Genome(layers={"hidden": (8, 4)}, values={"a": "relu", "b": 1})
    assert a.key == b.key
    assert a.key != Genome(layers={"hidden": (4, 8)}, values={"b": 1, "a": "relu"}).key


def test_key_is_stable_across_processes():
    code = ("from gi_energy import Genome; "
            "print(Genome(layers={'hidden': (64, 32)}, values={'learning_rate': 3e-3, 'activation': 'tanh', "
            "'epochs': 10}).key)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    here = Genome(layers={"hidden": (64, 32)}, values={"learning_rate": 0.003, "activation": "tanh", "epochs": 10})
    assert out == here.key == "hidden=64-32|activation=tanh|epochs=10|learning_rate=0.003"


def test_key_spells_each_value_by_its_own_type_whichever_came_first(monkeypatch):
    # 1, 1.0 and True are one dict key; the key's memo of (name, value) parts must still
    # spell True as True and 2.5 as 2.5 after meeting 1 and 2 (and the other way round).
    from gi_energy.config import genome as genome_mod

    spelled = {}
    for order in ([True, 1, 2, 2.5, "1"], ["1", 2.5, 2, 1, True]):
        monkeypatch.setattr(genome_mod, "_VALUE_PARTS", {})
        for v in order:
            spelled.setdefault(repr(v), set()).add(Genome(values={"x": v}).key)
    assert spelled == {"True": {"x=True"}, "1": {"x=1"}, "2": {"x=2"}, "2.5": {"x=2.5"}, "'1'": {"x=1"}}


def test_key_memo_stays_bounded(monkeypatch):
    from gi_energy.config import genome as genome_mod

    monkeypatch.setattr(genome_mod, "_VALUE_PARTS", {})
    monkeypatch.setattr(genome_mod, "_VALUE_PARTS_MAX", 8)
    keys = [Genome(values={"learning_rate": i + 0.5}).key for i in range(50)]
    assert len(genome_mod._VALUE_PARTS) <= 8
    assert keys == [f"learning_rate={i}.5" for i in range(50)]
    assert Genome(values={"learning_rate": 0.5}).key == keys[0]


def test_genome_json_round_trip():
    g = load_problem("digits_cnn").space.sample(np.random.default_rng(1))
    assert Genome.from_json(g.to_json()) == g
    json.loads(g.to_json())


def test_repair_clips_into_space():
    p = load_problem("digits")
    bad = Genome(layers={"hidden": (1000, 0, 5, 6, 7)},
                 values={**p.space.default().values, "learning_rate": 5.0, "batch_size": 100, "epochs": 0})
    fixed = p.space.repair(bad)
    assert p.space.contains(fixed)
    assert fixed.layers["hidden"] == (256, 4, 5)
    assert fixed.values["batch_size"] == 128  # nearest level
    assert fixed.values["learning_rate"] == 3e-2


def test_repair_fills_missing_parts_with_defaults():
    p = load_problem("digits")
    fixed = p.space.repair(Genome())
    assert p.space.contains(fixed)


def test_grid_enumeration_counts_and_order():
    p = load_problem("digits")
    points = list(p.grid.enumerate(p.space))
    assert len(points) == 3 * 4 * 2 * 2 * 2
    assert len({g.key for g in points}) == len(points)
    assert points == list(p.grid.enumerate(p.space))  # stable order
    assert all(len(set(g.layers["hidden"])) == 1 for g in points)  # one width for all layers
    assert {len(g.layers["hidden"]) for g in points} == {1, 2, 3}


def test_grid_with_zero_layers_deduplicates():
    space = SearchSpace(layers={"hidden": LayerSpace(IntRange(0, 2), IntRange(4, 64))},
                        params={"lr": RealRange(1e-3, 1e-1, log=True)})
    grid = Grid({"hidden_layers": (0, 1), "width": (8, 16), "lr": (1e-3, 1e-2)})
    points = list(grid.enumerate(space))
    assert len(points) == (1 + 2) * 2


def test_grid_leaves_unlisted_params_at_default():
    p = load_problem("quickstart")
    for g in p.grid.enumerate(p.space):
        assert g.values["activation"] == "relu"
        assert g.values["epochs"] == p.space.params["epochs"].center()


def test_uniform_choice_layers():
    ls = LayerSpace(Choice((1, 2, 3)), Choice((8, 32, 128)), uniform=True)
    assert ls.repair((30, 7, 200, 5)) == (32, 32, 32)
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert ls.contains(ls.sample(rng))


spaces = st.builds(
    lambda lo, span, wlo, wspan, log: LayerSpace(IntRange(lo, lo + span), IntRange(wlo, wlo + wspan, log=log)),
    st.integers(0, 3), st.integers(0, 4), st.integers(1, 64), st.integers(0, 500), st.booleans())


@settings(max_examples=150, deadline=None)
@given(spaces, st.lists(st.integers(-1000, 100000), max_size=12))
def test_layer_repair_always_lands_in_space(ls, sizes):
    assert ls.contains(ls.repair(sizes))


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 1e3), st.floats(1.0, 1e3), st.floats(-1e6, 1e6), st.booleans())
def test_real_clip_stays_inside_bounds_with_long_digits(low, factor, value, log):
    r = RealRange(low, low * factor, log=log)
    assert r.contains(r.clip(value))
