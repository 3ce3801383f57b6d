"""Grid baseline: enumeration, the run directory it writes, resume after an interrupt."""

from __future__ import annotations

import pytest

from gi_energy.config.parse import load_problem, parse_problem
from gi_energy.errors import ProblemError
from gi_energy.runs.replay import SyntheticEvaluator
from gi_energy.runs.rundir import RunDirectory
from gi_energy.search.grid import batches, grid_genomes, run_grid


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
    # the final summary is progress.front_table, as evolve prints it
    assert lines[-1].startswith("grid done: 12 points") and "energy source" in lines[-1]
    # header, rule, a row per point and the energy source every row shares
    assert len(lines[-1].splitlines()) == 4 + len(res.front)
    header = lines[-1].splitlines()[1].split()
    assert header == ["accuracy", "inference_energy_j_per_1k", "hidden_layers", "widths", "learning_rate"]
    assert any(line.startswith("estimate for the remaining 10 points") for line in lines)
    assert sum(line.startswith("[") for line in lines) == 12  # one progress line per evaluation
    assert len(warnings) == 1 and "estimated" in warnings[0]
    assert (tmp_path / "g" / "front.png").exists()


def _quiet(**kw):
    return {"echo": lambda s: None, "warn": lambda s: None, **kw}


def test_grid_resume_trains_nothing_twice(problem, tmp_path):
    whole = run_grid(problem, out=tmp_path / "whole", evaluator=SyntheticEvaluator(problem), **_quiet())
    memory = {}  # plays the store: it outlives the interrupted evaluator
    with pytest.raises(KeyboardInterrupt):
        run_grid(problem, out=tmp_path / "g", evaluator=_Interrupting(problem, 5, memory=memory), **_quiet())
    rd = RunDirectory.open(tmp_path / "g")
    info = rd.read_run_json()
    assert info["status"] == "interrupted"
    # the first batch and the 3 points of the second that finished before Ctrl-C
    assert len(rd.read_outcomes()) == 5 and info["trained"] == 5
    second = SyntheticEvaluator(problem, memory=memory)
    res = run_grid(problem, resume=tmp_path / "g", evaluator=second, **_quiet())
    assert len(res.outcomes) == 12 and len(second.trained) == 7
    assert [o.key for o in res.outcomes] == [g.key for g in grid_genomes(problem)]
    info = rd.read_run_json()
    assert info["status"] == "complete"
    # this run trained all 12 (5 before the interrupt): the same as an unbroken grid
    assert res.trained == whole.trained == 12 == info["trained"]
    assert res.energy_spent_j == pytest.approx(whole.energy_spent_j)
    assert info["energy_spent_j"] == pytest.approx(whole.energy_spent_j)


class _Killed(BaseException):
    """Stands in for kill -9 (nothing of the grid's own clean-up may count on it)."""


def test_grid_kill_mid_batch_then_resume_counts_every_joule(problem, tmp_path):
    """kill -9 in the second batch: the files on disk are those of the first batch; the
    3 points trained since sit in the store and the journal only."""
    whole = run_grid(problem, out=tmp_path / "whole", evaluator=SyntheticEvaluator(problem), **_quiet())
    memory, snapshot = {}, {}
    path = tmp_path / "g"

    class Killing(SyntheticEvaluator):
        calls = 0

        def evaluate(self, genomes, on_result=None):
            Killing.calls += 1
            if Killing.calls == 2:
                for name in ("evaluations.csv", "history.csv", "run.json", "front.csv"):
                    snapshot[name] = (path / name).read_bytes()
                super().evaluate(list(genomes)[:3], on_result)
                raise _Killed
            return super().evaluate(genomes, on_result)

    with pytest.raises(_Killed):
        run_grid(problem, out=path, evaluator=Killing(problem, memory=memory), **_quiet())
    for name, data in snapshot.items():  # what kill -9 would have left
        (path / name).write_bytes(data)
    assert len(RunDirectory.open(path).read_outcomes()) == 2
    res = run_grid(problem, resume=path, evaluator=SyntheticEvaluator(problem, memory=memory), **_quiet())
    info = RunDirectory.open(path).read_run_json()
    assert res.trained == info["trained"] == whole.trained == 12
    assert info["energy_spent_j"] == pytest.approx(whole.energy_spent_j)
    assert info["evaluations"] == 12


def test_grid_resume_refuses_an_evolve_run(problem, tmp_path):
    from gi_energy.errors import UsageError

    RunDirectory.create(tmp_path / "e", problem, "evolve", {})
    with pytest.raises(UsageError, match=r"e: an evolve run, not a grid run"):
        run_grid(problem, resume=tmp_path / "e", evaluator=SyntheticEvaluator(problem), **_quiet())
    assert not (tmp_path / "e" / "evaluations.csv").exists()


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
