"""Grid baseline: enumeration, the run directory it writes, resume after an interrupt."""

from __future__ import annotations

import pytest

from gi_energy.errors import ProblemError
from gi_energy.grid import batches, grid_genomes, run_grid
from gi_energy.problem import load_problem, parse_problem
from gi_energy.replay import SyntheticEvaluator
from gi_energy.rundir import RunDirectory


@pytest.fixture
def problem():
    return load_problem("quickstart")  # 2 layer counts x 3 widths x 2 learning rates = 12 points


class _Interrupting(SyntheticEvaluator):
    """Stops (as Ctrl-C would) once ``after`` genomes have been trained."""

    def __init__(self, problem, after, **kw):
        super().__init__(problem, **kw)
        self.after = after

    def evaluate(self, genomes, on_result=None):
        out = []
        for g in genomes:
            if len(self.trained) >= self.after:
                raise KeyboardInterrupt
            out += super().evaluate([g], on_result)
        return out


def test_grid_evaluates_every_point_once(problem, tmp_path):
    lines, warnings = [], []
    ev = SyntheticEvaluator(problem)
    res = run_grid(problem, out=tmp_path / "g", evaluator=ev, echo=lines.append, warn=warnings.append)
    expected = [g.key for g in problem.grid.enumerate(problem.space)]
    assert len(expected) == 12 and [o.key for o in res.outcomes] == expected
    assert ev.trained == expected and res.trained == 12
    rd = RunDirectory.open(tmp_path / "g")
    info = rd.read_run_json()
    assert info["status"] == "complete" and info["evaluations"] == 12 and info["command"] == "grid"
    assert info["energy_spent_j"] == pytest.approx(res.energy_spent_j) and res.energy_spent_j > 0
    assert len(rd.read_evaluations()) == 12 and len(rd.read_front()) == len(res.front) > 0
    hist = rd.read_history()
    assert [h["evaluations"] for h in hist] == [2, 10, 12]  # one worker round, then 4 rounds a batch
    assert all(a["hypervolume"] <= b["hypervolume"] for a, b in zip(hist, hist[1:]))
    assert lines[0].startswith("grid: 12 points")
    assert any(line.startswith("estimate for the remaining 10 points") for line in lines)
    assert sum(line.startswith("[") for line in lines) == 12  # one progress line per evaluation
    assert len(warnings) == 1 and "estimated" in warnings[0]
    assert (tmp_path / "g" / "front.png").exists()


def test_grid_resume_trains_nothing_twice(problem, tmp_path):
    memory = {}  # plays the store: it outlives the interrupted evaluator
    with pytest.raises(KeyboardInterrupt):
        run_grid(problem, out=tmp_path / "g", evaluator=_Interrupting(problem, 5, memory=memory),
                 echo=lambda s: None, warn=lambda s: None)
    rd = RunDirectory.open(tmp_path / "g")
    assert rd.read_run_json()["status"] == "interrupted"
    assert len(rd.read_outcomes()) == 2  # the first batch was written; 3 more sit in the "store"
    second = SyntheticEvaluator(problem, memory=memory)
    res = run_grid(problem, resume=tmp_path / "g", evaluator=second, echo=lambda s: None, warn=lambda s: None)
    assert len(res.outcomes) == 12 and len(second.trained) == 7
    assert res.trained == 9  # 2 from the first run's written batch, 7 now; 3 came from the store
    assert [o.key for o in res.outcomes] == [g.key for g in grid_genomes(problem)]
    assert rd.read_run_json()["status"] == "complete"


def test_grid_records_failures_and_keeps_them_off_the_front(problem, tmp_path):
    bad = grid_genomes(problem)[3].key
    res = run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem, fail_keys=[bad]),
                   echo=lambda s: None, warn=lambda s: None)
    assert bad not in {o.key for o in res.front}
    row = [e for e in RunDirectory.open(tmp_path / "g").read_evaluations() if e.key == bad][0]
    assert row.status == "failed" and row.train_energy_j is None


def test_no_grid_is_a_problem_error(tmp_path):
    p = parse_problem({"problem": {"name": "nogrid"}}, source="nogrid.toml")
    with pytest.raises(ProblemError, match=r"nogrid.toml: \[grid\]"):
        run_grid(p, out=tmp_path / "g", evaluator=SyntheticEvaluator(p))
    assert not (tmp_path / "g").exists()


def test_batches_cover_everything_once():
    assert batches(0, 2) == []
    for n, w in [(1, 2), (12, 2), (37, 3), (5, 8)]:
        spans = batches(n, w)
        assert [i for a, b in spans for i in range(a, b)] == list(range(n))
