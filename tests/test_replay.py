"""Replay: lookups in a finished grid run and the restriction of the space to its levels."""

from __future__ import annotations

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.space import Choice, Fixed
from gi_energy.errors import UsageError
from gi_energy.runs.replay import ReplayEvaluator, ReplayMissError, SyntheticEvaluator
from gi_energy.search.grid import grid_genomes, run_grid


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    problem = load_problem("quickstart")
    out = tmp_path_factory.mktemp("replay") / "grid"
    res = run_grid(problem, out=out, evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
                   warn=lambda s: None)
    return problem, out, res


def test_lookups_return_the_recorded_outcomes(grid_run):
    problem, out, res = grid_run
    rep = ReplayEvaluator(problem, out)
    assert len(rep) == 12 and rep.replayed and not rep.measured and "replay of" in rep.meter_description
    seen = []
    got = rep.evaluate(list(reversed(grid_genomes(problem))), on_result=lambda e, c: seen.append((e.key, c)))
    assert [o.key for o in got] == [o.key for o in reversed(res.outcomes)]
    assert [o.evaluations for o in got] == [o.evaluations for o in reversed(res.outcomes)]
    # first time asked: the recorded energy is spent again; a second time it is "stored"
    assert all(not o.cached for o in got) and all(not c for _, c in seen)
    again = rep.evaluate(grid_genomes(problem)[:1])
    assert again[0].cached and again[0].energy_spent_j == res.outcomes[0].energy_spent_j


def test_unknown_genome_is_a_clear_error(grid_run):
    problem, out, _ = grid_run
    rep = ReplayEvaluator(problem, out)
    off = Genome(layers={"hidden": (9,)}, values=dict(grid_genomes(problem)[0].values))
    with pytest.raises(ReplayMissError, match="not in the grid run.*restrict"):
        rep.evaluate([off])


def test_restrict_makes_only_grid_genomes(grid_run):
    problem, out, _ = grid_run
    rep = ReplayEvaluator(problem, out)
    space = rep.restrict(problem.space)
    hidden = space.layers["hidden"]
    assert hidden.count == Choice((1, 2)) and hidden.size == Choice((8, 32, 128)) and hidden.uniform
    assert space.params["learning_rate"] == Choice((0.003, 0.01))
    # the grid does not vary these: fixed at the value every grid point has
    assert space.params["activation"] == Fixed(grid_genomes(problem)[0].values["activation"])
    assert set(space.params) == set(problem.space.params)
    rng = np.random.default_rng(0)
    keys = {g.key for g in grid_genomes(problem)}
    samples = [space.sample(rng) for _ in range(300)]
    assert {g.key for g in samples} <= keys and len({g.key for g in samples}) == 12
    # repair of an off-grid genome lands on the grid too
    off = Genome(layers={"hidden": (30, 100)}, values={**samples[0].values, "learning_rate": 0.009})
    assert space.repair(off).key in keys


def test_incomplete_grid_cannot_be_replayed(grid_run, tmp_path):
    problem, _, res = grid_run
    from gi_energy.runs.rundir import RunDirectory

    rd = RunDirectory.create(tmp_path / "part", problem, "grid", {})
    rd.write_results(res.outcomes[:7], problem.objectives, [])
    rep = ReplayEvaluator(problem, tmp_path / "part")
    with pytest.raises(UsageError, match="covers 7 genomes but its levels span 12"):
        rep.restrict(problem.space)


def test_other_problem_is_refused(grid_run):
    _, out, _ = grid_run
    with pytest.raises(UsageError, match="fingerprint"):
        ReplayEvaluator(load_problem("wine"), out)


def test_only_a_grid_run_can_be_replayed(grid_run, tmp_path):
    from click.testing import CliRunner

    from gi_energy.cli import main
    from gi_energy.runs.rundir import RunDirectory

    problem, _, res = grid_run
    rd = RunDirectory.create(tmp_path / "evo", problem, "evolve", {})
    rd.write_results(res.outcomes, problem.objectives, [])
    with pytest.raises(UsageError, match=r"evo: an evolve run, not a grid run"):
        ReplayEvaluator(problem, tmp_path / "evo")
    result = CliRunner().invoke(main, ["evolve", "quickstart", "--replay", str(tmp_path / "evo"),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a grid run" in result.output
    assert not (tmp_path / "out").exists()
