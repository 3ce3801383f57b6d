"""compare on small runs built from a synthetic grid and replayed searches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.config.parse import load_problem
from gi_energy.errors import UsageError
from gi_energy.report.compare import compare
from gi_energy.report.figures import energy_saving
from gi_energy.report.markdown import render_report
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
from gi_energy.runs.rundir import RunDirectory
from gi_energy.search.grid import run_grid


def _replayed_run(problem, grid_dir, out, genomes, label, seed):
    rep = ReplayEvaluator(problem, grid_dir)
    outcomes = rep.evaluate(genomes)
    rd = RunDirectory.create(out, problem, "evolve", {"replay": str(grid_dir)})
    rd.update_run_json(label=label, seed=seed, status="complete")
    rd.write_results(outcomes, problem.objectives, [])
    return outcomes


# Per test in a mutation pass (experiments/mutation.py), so each test counts as covering
# what it checks; a module fixture would credit it all to the first test.
@pytest.fixture(scope=lambda fixture_name, config: "function" if os.environ.get("GI_ENERGY_MUTATION")
                else "module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    problem = load_problem("quickstart")
    grid = run_grid(problem, out=root / "grid", evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
                    warn=lambda s: None)
    front_keys = {o.key for o in grid.front}
    genomes = [o.genome for o in grid.outcomes]
    front_first = [g for g in genomes if g.key in front_keys] + [g for g in genomes if g.key not in front_keys][:2]
    paths = {"front-first": [], "random": []}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        p = root / f"ff{seed}"
        _replayed_run(problem, root / "grid", p, front_first[seed % 2:] + front_first[: seed % 2], "front-first",
                      seed)
        paths["front-first"].append(p)
        p = root / f"rs{seed}"
        _replayed_run(problem, root / "grid", p, [genomes[i] for i in rng.permutation(12)[:4]], "random", seed)
        paths["random"].append(p)
    return problem, root, grid, paths


def test_compare_against_the_grid(runs, tmp_path):
    problem, root, grid, paths = runs
    cmp = compare(paths["front-first"] + paths["random"], reference=root / "grid", out=tmp_path / "c")
    for name in ("report.md", "comparison.json", "fronts.png", "hv_history.png"):
        assert (tmp_path / "c" / name).stat().st_size > 100
    assert json.loads((tmp_path / "c" / "comparison.json").read_text()) == cmp
    ref_row = [r for r in cmp["runs"] if r["reference"]][0]
    assert ref_row["hv_ratio"] == pytest.approx(1.0) and ref_row["coverage"] == 1.0
    assert ref_row["igd_plus"] == pytest.approx(0.0) and ref_row["epsilon_additive"] == pytest.approx(0.0)
    assert ref_row["evaluations"] == 12 and ref_row["energy_spent_j"] == pytest.approx(grid.energy_spent_j)
    assert cmp["reference"]["front_size"] == len(grid.front)

    groups = {g["label"]: g for g in cmp["groups"]}
    assert set(groups) == {"front-first", "random"} and groups["random"]["runs"] == 3
    ff = groups["front-first"]
    assert ff["hv_ratio"]["median"] == pytest.approx(1.0) and ff["coverage"]["median"] == 1.0
    assert ff["evaluations_to_99"]["median"] <= len(grid.front)
    for r in cmp["runs"]:
        if r["label"] == "random":
            assert 0 < r["hv_ratio"] <= 1.0 + 1e-9
            assert r["coverage"] == pytest.approx(
                sum(1 for o in grid.front if o.key in _keys(r["path"])) / len(grid.front))
            spent = sum(o.energy_spent_j for o in RunDirectory.open(r["path"]).read_outcomes())
            assert r["energy_spent_j"] == pytest.approx(spent) and r["replayed"]
    assert [t["metric"] for t in cmp["tests"]] == ["hv_ratio", "hv_ratio_front"]
    for test in cmp["tests"]:
        assert {test["a"], test["b"]} == {"front-first", "random"} and 0 < test["p_value"] <= 1
    # the reference front's own extent: the reference and a run that holds it score 1, and
    # here every run at most 1 because all are subsets of the grid (it is unbounded above)
    assert ref_row["hv_ratio_front"] == pytest.approx(1.0) and ff["hv_ratio_front"]["median"] == pytest.approx(1.0)
    assert all(0 <= r["hv_ratio_front"] <= 1 + 1e-9 for r in cmp["runs"])

    report = (tmp_path / "c" / "report.md").read_text()
    assert "## Headline" in report and "reference (grid)" in report and "front-first" in report
    assert "*replayed*" in report and "estimated" in report and "Wilcoxon" in report
    assert "unbounded above" in report and "(stricter)" not in report
    saving = energy_saving(grid.outcomes)
    assert cmp["reference"]["headline"]["saving"] == pytest.approx(saving["saving"])


def _keys(path):
    return {o.key for o in RunDirectory.open(path).read_outcomes()}


def test_headline_by_hand(runs):
    _, _, grid, _ = runs
    rows = [(o.metric("accuracy"), o.metric("inference_energy_j_per_1k")) for o in grid.outcomes if o.ok]
    best = max(a for a, _ in rows)
    base = min(e for a, e in rows if a == best)
    cheapest = min(e for a, e in rows if a >= best - 0.01)
    h = energy_saving(grid.outcomes)
    assert h["saving"] == pytest.approx(1 - cheapest / base)
    assert 0 <= h["accuracy_lost"] <= 0.01 + 1e-12


def test_without_reference_uses_the_union(runs, tmp_path):
    _, _, _, paths = runs
    cmp = compare(paths["random"], out=None)
    assert cmp["reference"]["path"] is None and "union" in cmp["reference"]["source"]
    assert max(r["hv_ratio"] for r in cmp["runs"]) <= 1.0 + 1e-9
    assert cmp["tests"] == []  # one method only


def test_bad_run_dir_is_a_usage_error(runs, tmp_path):
    _, root, _, _ = runs
    with pytest.raises(UsageError, match=str(tmp_path / "nothing")):
        compare([tmp_path / "nothing"], reference=root / "grid")
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "nothing" in result.output


def test_cli_json(runs, tmp_path):
    _, root, _, paths = runs
    result = CliRunner().invoke(main, ["compare", *map(str, paths["random"]), "--reference", str(root / "grid"),
                                       "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # where it wrote goes to stderr, so stdout stays JSON
    assert len(data["runs"]) == 4 and (tmp_path / "o" / "report.md").exists()
    assert f"wrote {tmp_path / 'o'}/" in result.stderr and "report.html" in result.stderr


# ---------------------------------------------------------------- energy and constraints


class _Killed(BaseException):
    """Stands in for kill -9."""


def test_resumed_runs_report_the_energy_of_unbroken_ones(tmp_path):
    """A grid interrupted by Ctrl-C and an evolve killed mid-generation, both resumed: their
    evaluations.csv say which joules they spent, so compare agrees with the unbroken runs."""
    from gi_energy.search.evolve import evolve

    problem = load_problem("quickstart")
    quiet = {"echo": lambda s: None, "warn": lambda s: None}
    run_grid(problem, out=tmp_path / "grid", evaluator=SyntheticEvaluator(problem), **quiet)

    class Stop(SyntheticEvaluator):
        def __init__(self, problem, after, exc, **kw):
            super().__init__(problem, **kw)
            self.after, self.exc = after, exc

        def evaluate(self, genomes, on_result=None):
            out = []
            for g in genomes:
                if len(self.trained) >= self.after:
                    raise self.exc
                out += super().evaluate([g], on_result)
            return out

    memory = {}
    with pytest.raises(KeyboardInterrupt):
        run_grid(problem, out=tmp_path / "grid2", evaluator=Stop(problem, 5, KeyboardInterrupt, memory=memory),
                 **quiet)
    run_grid(problem, resume=tmp_path / "grid2", evaluator=SyntheticEvaluator(problem, memory=memory), **quiet)

    evolve(problem, out=tmp_path / "evo", evaluator=SyntheticEvaluator(problem), plot=False, overrides={
        "population": 6, "generations": 3})
    memory = {}
    with pytest.raises(_Killed):
        evolve(problem, out=tmp_path / "evo2", evaluator=Stop(problem, 6 + 4, _Killed(), memory=memory), plot=False,
               overrides={"population": 6, "generations": 3})
    evolve(problem, resume=tmp_path / "evo2", evaluator=SyntheticEvaluator(problem, memory=memory), plot=False)

    cmp = compare([tmp_path / "grid2", tmp_path / "evo", tmp_path / "evo2"], reference=tmp_path / "grid")
    by = {Path(r["path"]).name: r for r in cmp["runs"]}
    assert by["grid"]["energy_spent_j"] > 0 and by["evo"]["energy_spent_j"] > 0
    assert by["grid2"]["energy_spent_j"] == pytest.approx(by["grid"]["energy_spent_j"])
    assert by["grid2"]["trained"] == by["grid"]["trained"] == 12
    assert by["evo2"]["energy_spent_j"] == pytest.approx(by["evo"]["energy_spent_j"])
    assert by["evo2"]["evaluations"] == by["evo"]["evaluations"]
    for t in (90, 95, 99):
        assert by["evo2"][f"energy_j_to_{t}"] == by["evo"][f"energy_j_to_{t}"]
    info = json.loads((tmp_path / "evo2" / "run.json").read_text())
    assert info["totals"]["energy_spent_j"] == pytest.approx(by["evo"]["energy_spent_j"])


def test_compare_applies_the_constraints(tmp_path):
    """front.csv and the search keep only feasible points; so must every figure of compare."""
    from gi_energy.config.problem import Problem

    base = load_problem("quickstart")
    limit = 5000.0  # the width-128 networks have more parameters than this
    problem = Problem(**{**base.__dict__, "constraints": {"params": limit}})
    quiet = {"echo": lambda s: None, "warn": lambda s: None}
    grid = run_grid(problem, out=tmp_path / "grid", evaluator=SyntheticEvaluator(problem), **quiet)
    unconstrained = run_grid(base, out=tmp_path / "free", evaluator=SyntheticEvaluator(base), **quiet)
    assert {o.key for o in grid.front} != {o.key for o in unconstrained.front}
    infeasible = [o.genome for o in grid.outcomes if o.metric("params") > limit]
    feasible = [o for o in grid.outcomes if o.metric("params") <= limit]
    assert infeasible and feasible
    _replayed_run(problem, tmp_path / "grid", tmp_path / "bad", infeasible, "infeasible", 0)
    RunDirectory.open(tmp_path / "bad").update_run_json(settings={"constraints": {"params": limit}})

    cmp = compare([tmp_path / "bad"], reference=tmp_path / "grid")
    assert cmp["constraints"] == {"params": limit}
    assert cmp["reference"]["front_size"] == len(grid.front) == len(RunDirectory.open(tmp_path / "grid").read_front())
    assert all(p[0] >= -max(o.metric("accuracy") for o in feasible) - 1e-12 for p in cmp["reference"]["front"])
    bad = [r for r in cmp["runs"] if not r["reference"]][0]
    assert bad["hv_ratio"] == 0.0 and bad["coverage"] == 0.0 and bad["front_size"] == 0
    assert bad["headline"] is None
    chosen = cmp["reference"]["headline"]["chosen"]["key"]
    assert chosen in {g.key for g in feasible}
    assert "params ≤ 5000" in render_report(cmp)
    # two runs held to different constraints are not comparable
    with pytest.raises(UsageError, match="constraints"):
        compare([tmp_path / "free"], reference=tmp_path / "grid")
