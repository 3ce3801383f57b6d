"""Outcome.paid_energy: the joules a run paid for, shared by grid, evolve and compare."""

from __future__ import annotations

import dataclasses

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading
from gi_energy.tasks.results import Evaluation, Outcome


def _outcome(joules, cached=False):
    g = Genome(layers={"hidden": (8,)}, values={})
    evs = tuple(Evaluation(genome=g, status="ok", repeat=r,
                           train=Reading(backend="rapl", scope="package", measured=True, energy_j=j, duration_s=1.0))
                for r, j in enumerate(joules))
    return Outcome(genome=g, evaluations=evs, cached=cached)


def test_paid_energy_defaults_to_not_cached():
    assert _outcome([1.0, 2.0]).paid_energy() == (True, 3.0)
    assert _outcome([1.0, 2.0], cached=True).paid_energy() == (False, 0.0)


def test_paid_energy_follows_spent_flags():
    o = _outcome([1.0, 2.0], cached=True)
    assert o.paid_energy([False, True]) == (True, 2.0)
    assert o.paid_energy([False, False]) == (False, 0.0)
    assert [e.repeat for e in o.paid_evaluations([True, False])] == [0]


def test_paid_energy_unknown_when_a_paid_reading_is_missing():
    o = _outcome([1.0, None])
    assert o.paid_energy() == (True, None)
    assert o.paid_energy([True, False]) == (True, 1.0)
    assert dataclasses.replace(o, evaluations=()).paid_energy() == (False, 0.0)
