"""A replay paces its checkpoints and result files (search/session.py): none in its first
second, then at most 1/20 of its time, and the last generation's always at the end. A run
that trains still checkpoints every generation. A replay killed (kill -9) at any moment
leaves files a resume goes on from to the unbroken run's evaluations and energy."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
from test_evolve import HookedReplay

import gi_energy.search.session as session
from gi_energy.config.parse import parse_problem
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
from gi_energy.search import checkpoint as ckpt_mod
from gi_energy.search.evolve import evolve
from gi_energy.search.grid import run_grid


def _problem(**search):
    return parse_problem({
        "problem": {"name": "pace", "seed": 2},
        "space": {"hidden_layers": {"min": 1, "max": 2}, "width": {"min": 4, "max": 64, "log": True},
                  "learning_rate": {"min": 1e-3, "max": 3e-2, "log": True}},
        "grid": {"hidden_layers": [1, 2], "width": [8, 16, 32, 64], "learning_rate": [3e-3, 1e-2]},
        "search": {"population": 4, "generations": 5, "surrogate": "none", **search},
    }, source="<pace>")


@pytest.fixture
def grid(tmp_path):
    p = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_grid(p, out=tmp_path / "grid", evaluator=SyntheticEvaluator(p), echo=lambda s: None,
                 warn=lambda s: None)
    return tmp_path / "grid"


def _saves(monkeypatch) -> list[int]:
    """The generation of every checkpoint saved from now on."""
    saved: list[int] = []
    real = ckpt_mod.CheckpointWriter.save

    def save(self, checkpoint):
        saved.append(checkpoint.generation)
        return real(self, checkpoint)

    monkeypatch.setattr(ckpt_mod.CheckpointWriter, "save", save)
    return saved


def _evolve(problem, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evolve(problem, plot=False, **kw)


def test_a_short_replay_checkpoints_once_at_the_end(tmp_path, grid, monkeypatch):
    saved = _saves(monkeypatch)
    p = _problem()
    res = _evolve(p, out=tmp_path / "e", evaluator=ReplayEvaluator(p, grid))
    assert saved == [5]  # generations 0-5 ran in well under a second
    ck = ckpt_mod.load_checkpoint(tmp_path / "e")
    assert ck.generation == 5 and [o.key for o in ck.outcomes] == [o.key for o in res.evaluations]
    info = json.loads((tmp_path / "e" / "run.json").read_text())
    assert info["status"] == "complete" and info["generation"] == 5


def test_a_run_that_trains_checkpoints_every_generation(tmp_path, monkeypatch):
    saved = _saves(monkeypatch)
    p = _problem()
    _evolve(p, out=tmp_path / "e", evaluator=SyntheticEvaluator(p))
    assert saved == [0, 1, 2, 3, 4, 5]


def test_a_replay_paced_from_the_start_checkpoints_as_it_goes(tmp_path, grid, monkeypatch):
    monkeypatch.setattr(session, "REPLAY_FIRST_WRITE_S", 0.0)
    saved = _saves(monkeypatch)
    p = _problem()
    _evolve(p, out=tmp_path / "e", evaluator=ReplayEvaluator(p, grid))
    assert saved[0] == 0 and saved[-1] == 5 and saved == sorted(set(saved))


class _Snapshot(HookedReplay):
    """A replay that copies its run directory after ``after`` lookups: what a kill -9 at
    that moment leaves on disk (every write is flushed; the lock dies with the process)."""

    def __init__(self, problem, grid, run_dir, copy_to, after):
        super().__init__(problem, grid, after)
        self.run_dir, self.copy_to = run_dir, copy_to

    def before_lookup(self) -> None:
        if self.asked == self.after:
            shutil.copytree(self.run_dir, self.copy_to)


@pytest.mark.parametrize("first_write_s", [1.0, 0.0], ids=["no-checkpoint-yet", "paced-checkpoints"])
@pytest.mark.parametrize("after", [2, 9, 15])
def test_a_replay_killed_at_any_moment_resumes_to_the_unbroken_run(tmp_path, grid, monkeypatch, first_write_s,
                                                                  after):
    monkeypatch.setattr(session, "REPLAY_FIRST_WRITE_S", first_write_s)
    p = _problem()
    whole = _evolve(p, out=tmp_path / "whole", evaluator=ReplayEvaluator(p, grid))
    _evolve(p, out=tmp_path / "run", evaluator=_Snapshot(p, grid, tmp_path / "run", tmp_path / "killed", after))
    left = ckpt_mod.load_checkpoint(tmp_path / "killed")
    assert (left is not None) == (first_write_s == 0.0 and after >= 4)  # generation 0 is 4 lookups
    resumed = _evolve(p, resume=tmp_path / "killed")
    assert [o.key for o in resumed.evaluations] == [o.key for o in whole.evaluations]
    assert resumed.totals["evaluations"] == whole.totals["evaluations"]
    assert resumed.totals["energy_spent_j"] == pytest.approx(whole.totals["energy_spent_j"])
    assert ckpt_mod.load_checkpoint(tmp_path / "killed").generation == 5
