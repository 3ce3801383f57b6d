"""Fault and run-directory edge cases, with real processes where they involve them.

- A run refused because its ``--out`` is in use (another process holds the folder's lock)
  or already holds a run creates and changes nothing: no store file, nothing new in the
  folder.
- ``--resume`` of a run that is complete, with budgets it has spent, says so and changes
  nothing (every file byte-identical, exit 0); with a budget raised it goes on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")]

TINY = """
[problem]
name = "tiny-edges"
seed = 1

[dataset]
source = "synthetic"
n_samples = 200
n_features = 6
n_informative = 3
n_classes = 2

[model]
family = "mlp"

[space]
hidden_layers = { min = 1, max = 2 }
width = { min = 2, max = 32 }
learning_rate = [0.01]
batch_size = [64]
epochs = [1]

[grid]
hidden_layers = [1]
width = [2, 4]

[objectives]
accuracy = "max"
params = "min"

[search]
population = 4
generations = 1

[evaluation]
workers = 1
min_inference_s = 0.0
timeout_s = 60

[energy]
meter = "estimate"
"""


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "gi_energy.cli", *map(str, args)]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def problem_file(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


# ---------------------------------------------------------------- 1. a refused run leaves nothing


def _hold(folder: Path, cwd: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s run lock until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; from gi_energy.runs.lock import RunLock; "
                               f"RunLock({str(folder)!r}).acquire(); print('held', flush=True); time.sleep(120)"],
                              cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evolve", "grid"])
@pytest.mark.parametrize("store", ["flag", "default"])
def test_a_run_refused_because_out_is_in_use_creates_no_store(tmp_path, problem_file, command, store):
    """Another live process holds --out's lock: exit 2, one line naming it, and neither
    the --store file nor the default runs/gi-energy.sqlite is created."""
    held = tmp_path / "held"
    held.mkdir()
    holder = _hold(held, tmp_path)
    try:
        before = folder_bytes(held)
        args = ["--store", tmp_path / "mine.sqlite"] if store == "flag" else []
        proc = subprocess.run(cli(command, problem_file, "--out", held, *args), cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        line = one_line(proc.stderr)
        assert "in use by another gi-energy process" in line and f"pid {holder.pid}" in line
        assert folder_bytes(held) == before  # the holder's lock file only, as it wrote it
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert not (tmp_path / "mine.sqlite").exists()
    assert not (tmp_path / "runs").exists()  # where the default store would go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held", "tiny.toml"]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evolve", "grid"])
def test_a_run_refused_because_out_holds_a_run_creates_no_store(tmp_path, problem_file, command):
    from gi_energy.config.parse import load_problem
    from gi_energy.runs.rundir import RunDirectory

    done = tmp_path / "done"
    RunDirectory.create(done, load_problem(problem_file), command).update_run_json(status="complete")
    before = folder_bytes(done)
    proc = subprocess.run(cli(command, problem_file, "--out", done), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "already holds a run" in one_line(proc.stderr)
    assert folder_bytes(done) == before
    assert not (tmp_path / "runs").exists()


def test_the_library_refuses_a_held_folder_before_opening_the_store(tmp_path, problem_file):
    """gi_energy.evolve(out=...) and run_grid(out=...) on a folder another process holds:
    RunDirectoryBusy, and the store they would have opened does not exist."""
    from gi_energy.config.parse import load_problem
    from gi_energy.runs.lock import RunDirectoryBusy
    from gi_energy.search.evolve import evolve
    from gi_energy.search.grid import run_grid

    problem = load_problem(problem_file)
    held = tmp_path / "held"
    held.mkdir()
    holder = _hold(held, tmp_path)
    try:
        with pytest.raises(RunDirectoryBusy, match=f"pid {holder.pid}"):
            evolve(problem, out=held, store=tmp_path / "e.sqlite", plot=False)
        with pytest.raises(RunDirectoryBusy, match=f"pid {holder.pid}"):
            run_grid(problem, out=held, store=tmp_path / "g.sqlite")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert not (tmp_path / "e.sqlite").exists() and not (tmp_path / "g.sqlite").exists()
    assert sorted(p.name for p in held.iterdir()) == ["run.lock"]


# ---------------------------------------------------------------- 2. resuming a complete run


def _everything(folder: Path) -> dict[str, bytes]:
    assert folder_bytes(folder)
    return folder_bytes(folder)


def test_cli_resume_of_a_complete_run_changes_nothing_until_a_budget_is_raised(tmp_path):
    from click.testing import CliRunner
    from test_evolve import _grid_run

    from gi_energy.cli import main

    _, grid = _grid_run(tmp_path)
    run = tmp_path / "e"
    first = CliRunner().invoke(main, ["evolve", "quickstart", "--replay", str(grid), "--population", "6",
                                      "--generations", "1", "--out", str(run)])
    assert first.exit_code == 0, first.output
    before = _everything(run)
    for again in (["--resume", str(run)], ["--resume", str(run), "--generations", "1"],
                  ["--resume", str(run), "--generations", "0"]):
        result = CliRunner().invoke(main, ["evolve", "quickstart", *again])
        assert result.exit_code == 0, result.output
        assert f"{run} is already complete: stopped by generations after generation 1" in result.output
        assert "nothing was run or changed" in result.output and "--generations N" in result.output
        assert _everything(run) == before  # run.json, evaluations.csv, front.csv, ... byte for byte
    longer = CliRunner().invoke(main, ["evolve", "quickstart", "--resume", str(run), "--generations", "2"])
    assert longer.exit_code == 0, longer.output
    assert "already complete" not in longer.output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["generation"] == 2 and info["settings"]["generations"] == 2
    assert info["settings"]["flags"]["resume"] == str(run)


def test_library_resume_of_a_complete_run_evaluates_nothing(tmp_path):
    from test_evolve import FakeEvaluator, front_signature, make_problem

    from gi_energy.search.evolve import evolve

    class Refusing(FakeEvaluator):
        def evaluate(self, genomes, on_result=None):
            raise AssertionError("a complete run was evaluated again")

    problem = make_problem(generations=5, max_evaluations=15)
    store: dict = {}
    whole = evolve(problem, out=tmp_path / "a", evaluator=FakeEvaluator(store), plot=False)
    assert whole.stop_reason == "max_evaluations"
    before = _everything(tmp_path / "a")
    # the same budgets, a lower one, and a raised one that another spent budget still stops
    for overrides in ({}, {"max_evaluations": 10}, {"generations": 9}):
        again = evolve(problem, resume=tmp_path / "a", evaluator=Refusing(store), plot=False, overrides=overrides)
        assert again.status == "complete" and again.stop_reason == "max_evaluations"
        assert front_signature(again) == front_signature(whole)
        assert [o.key for o in again.evaluations] == [o.key for o in whole.evaluations]
        assert again.totals == json.loads((tmp_path / "a" / "run.json").read_text())["totals"]
        assert _everything(tmp_path / "a") == before
    more = evolve(problem, resume=tmp_path / "a", evaluator=FakeEvaluator(store), plot=False,
                  overrides={"max_evaluations": 30})
    assert more.totals["evaluations"] > whole.totals["evaluations"]
