"""The screened search (the default, surrogate "auto", on a [table]) spends every
generation on configurations not evaluated yet while there are any: on a small table
nearly all evaluated, re-mutation runs out of new keys and the pool holds repeats, and
screening used to pick them, so whole generations evaluated nothing."""

from __future__ import annotations

import csv
import itertools

import pytest

from gi_energy.config.parse import load_problem
from gi_energy.search.evolve import evolve


def _table(tmp_path, surrogate: str):
    rows = ["a,b,c,acc,energy_j"]
    for i, (a, b, c) in enumerate(itertools.product((1, 2, 3), ("x", "y"), (0.1, 0.2, 0.3, 0.4))):
        rows.append(f"{a},{b},{c},{0.5 + 0.1 * a - c / 3 + (b == 'y') * 0.05:.4f},{a * 10 + c * 7 + i % 5:.2f}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    extra = "" if surrogate == "auto" else f'surrogate = "{surrogate}"\n'
    (tmp_path / "p.toml").write_text(
        '[problem]\nname = "small"\nseed = 5\n[table]\npath = "t.csv"\nconfiguration = ["a", "b", "c"]\n'
        'energy = "energy_j"\n[objectives]\nacc = "max"\nenergy_j = "min"\n'
        f'[search]\npopulation = 6\ngenerations = 40\nmax_evaluations = 24\n{extra}')
    return load_problem(tmp_path / "p.toml")


@pytest.mark.parametrize("surrogate", ["auto", "forest"])
def test_every_generation_evaluates_new_configurations_until_the_budget_is_spent(tmp_path, surrogate):
    res = evolve(_table(tmp_path, surrogate), out=tmp_path / "run", plot=False, seed=5)
    assert res.stop_reason == "max_evaluations"
    assert len(res.evaluations) == 24  # the whole table, as the budget asks
    with open(tmp_path / "run" / "history.csv", newline="") as fh:
        counts = [int(r["evaluations"]) for r in csv.DictReader(fh)]
    assert all(b > a for a, b in zip(counts, counts[1:])), counts
