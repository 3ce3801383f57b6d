"""Fault and run-directory edge cases, with real processes where they involve them.

- A run refused because its ``--out`` is in use (another process holds the folder's lock)
  or already holds a run creates and changes nothing: no store file, nothing new in the
  folder.
- ``--resume`` of a run that is complete, with budgets it has spent, says so and changes
  nothing (every file byte-identical, exit 0); with a budget raised it goes on.
- A kill -9 (or a Ctrl-C) right after an evaluation is written to the store, before the
  run's journal has it: the resumed run keeps that evaluation, counts its energy once as
  its own and trains nothing again.
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


# ---------------------------------------------------------------- 3. between the store and the journal

# gi-energy's command line, with this (main) process sent a signal right after its Nth
# write to the evaluation store has committed: the moment between the store and the run's
# journal. The evaluation written last is noted in KILL_NOTE first.
KILLER = """
import json, os, signal, sys
from gi_energy.evaluation.store import Store

after, sig, note = int(os.environ["KILL_AFTER_PUT"]), int(os.environ["KILL_SIGNAL"]), os.environ["KILL_NOTE"]
put_many, writes = Store.put_many, []

def put_and_kill(self, fingerprint, context, evaluations, **kw):
    out = put_many(self, fingerprint, context, evaluations, **kw)
    writes.extend(out)
    if len(writes) == after:
        with open(note, "w") as fh:
            json.dump({"key": out[-1].key, "repeat": out[-1].repeat}, fh)
        os.kill(os.getpid(), sig)
    return out

Store.put_many = put_and_kill
from gi_energy.cli import main
sys.exit(main())
"""


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background shell's ignored SIGINT is not inherited


def _store_rows(store: Path) -> dict[tuple[str, int], str]:
    import sqlite3

    conn = sqlite3.connect(store)
    try:
        return {(k, int(r)): p for k, r, p in conn.execute("SELECT key, repeat, payload FROM evaluations")}
    finally:
        conn.close()


def _superseded(store: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(store)
    try:
        return conn.execute("SELECT COUNT(*) FROM superseded").fetchone()[0]
    finally:
        conn.close()


def _journal(run: Path) -> list[tuple[str, int]]:
    out = []
    for line in (run / "trained.jsonl").read_text().splitlines():
        d = json.loads(line)
        out.append((d["key"], int(d["repeat"])))
    return out


def _rows(run: Path) -> list[dict]:
    import csv

    with open(run / "evaluations.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.parametrize(("after", "signame"), [(6, "KILL"), (2, "KILL"), (6, "INT")],
                         ids=["kill9-mid-generation", "kill9-before-first-checkpoint", "sigint-mid-generation"])
def test_a_signal_between_the_store_and_the_journal_loses_nothing(tmp_path, after, signame):
    """Generation 0 stores 4 evaluations: the 6th write is in generation 1 (resumed from
    generation 0's checkpoint), the 2nd before any checkpoint (resumed from the seed)."""
    sig = getattr(signal, f"SIG{signame}")
    problem = tmp_path / "tiny.toml"
    problem.write_text(TINY.replace("generations = 1", "generations = 2"))
    (tmp_path / "killer.py").write_text(KILLER)
    run, store, note = tmp_path / "run", tmp_path / "store.sqlite", tmp_path / "killed.json"
    env = {**os.environ, "KILL_AFTER_PUT": str(after), "KILL_SIGNAL": str(int(sig)), "KILL_NOTE": str(note)}
    killed = subprocess.run([sys.executable, tmp_path / "killer.py", "evolve", problem, "--out", run,
                             "--store", store], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300, preexec_fn=_sigint_default)
    assert killed.returncode == (-9 if sig == signal.SIGKILL else 130), killed.stderr
    last = json.loads(note.read_text())
    last = (last["key"], int(last["repeat"]))
    stored = _store_rows(store)
    assert len(stored) == after and last in stored
    if sig == signal.SIGINT:  # the interrupted run's own files already show it
        assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
        assert last in {(r["key"], int(r["repeat"])) for r in _rows(run)}

    resumed = subprocess.run(cli("evolve", problem, "--resume", run), cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete"
    rows = _rows(run)
    keys = [(r["key"], int(r["repeat"])) for r in rows]
    # not lost: the evaluation is the run's, once, as the store had it (not trained again)
    assert keys.count(last) == 1
    row = rows[keys.index(last)]
    assert row["spent"] == "true"
    ev = json.loads(stored[last])
    assert float(row["wall_time_s"]) == pytest.approx(ev["wall_time_s"])
    after_rows = _store_rows(store)
    assert {k: after_rows[k] for k in stored} == stored and _superseded(store) == 0
    assert len(after_rows) == len(keys)  # every evaluation of the run trained once, into this store
    journal = _journal(run)
    assert sorted(journal) == sorted(set(journal)) == sorted(keys)
    # its energy counted exactly once, as this run's: the totals are the sum of its rows
    assert all(r["spent"] == "true" for r in rows)
    totals = info["totals"]
    assert totals["cached"] == 0 and totals["evaluations"] == len(keys) and totals["energy_unknown"] == 0
    assert totals["energy_spent_j"] == pytest.approx(sum(float(r["energy_spent_j"]) for r in rows))


def test_the_store_notifies_inside_its_write_before_the_commit(tmp_path):
    """The callback runs in the write's transaction: an error in it stores nothing; a write
    that finds another result stored calls nothing; other threads' writes call nothing."""
    import threading

    from test_store import evaluation

    from gi_energy.evaluation.store import Store

    with Store(tmp_path / "s.sqlite") as store:
        seen = []

        def refuse(ev):
            raise OSError("journal full")

        with store.notifying(refuse), pytest.raises(OSError, match="journal full"):
            store.put("fp", "c", evaluation(1))
        assert store.count() == 0  # undone with the callback's error
        with store.notifying(seen.append):
            store.put("fp", "c", evaluation(1))
            store.put("fp", "c", evaluation(1))  # stored already: kept, nothing new written
            other = threading.Thread(target=store.put, args=("fp", "c", evaluation(2)))
            other.start()
            other.join()
        store.put("fp", "c", evaluation(3))  # after the block
        assert [ev.key for ev in seen] == [evaluation(1).key]
        assert store.count() == 3


@pytest.mark.slow
@pytest.mark.reliability
def test_a_kill_between_the_grid_s_store_write_and_its_journal_loses_nothing(tmp_path):
    """The grid's points are journaled inside their store writes too: a point stored just
    before a kill -9 is the run's on resume (spent, its joules in the run's total), once."""
    problem = tmp_path / "tiny.toml"
    problem.write_text(TINY.replace("width = [2, 4]", "width = [2, 4, 8]"))
    (tmp_path / "killer.py").write_text(KILLER)
    run, store, note = tmp_path / "grid", tmp_path / "store.sqlite", tmp_path / "killed.json"
    env = {**os.environ, "KILL_AFTER_PUT": "2", "KILL_SIGNAL": str(int(signal.SIGKILL)), "KILL_NOTE": str(note)}
    killed = subprocess.run([sys.executable, tmp_path / "killer.py", "grid", problem, "--out", run,
                             "--store", store], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300, preexec_fn=_sigint_default)
    assert killed.returncode == -9, killed.stderr
    last = json.loads(note.read_text())
    last = (last["key"], int(last["repeat"]))
    stored = _store_rows(store)
    assert len(stored) == 2 and last in stored
    resumed = subprocess.run(cli("grid", problem, "--resume", run), cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((run / "run.json").read_text())
    rows = _rows(run)
    keys = [(r["key"], int(r["repeat"])) for r in rows]
    assert info["status"] == "complete" and keys.count(last) == 1 and len(keys) == 3
    assert all(r["spent"] == "true" for r in rows)  # the killed point's too: not another run's
    assert {k: v for k, v in _store_rows(store).items() if k in stored} == stored and _superseded(store) == 0
    assert sorted(_journal(run)) == sorted(keys)
    assert info["trained"] == 3
    assert info["energy_spent_j"] == pytest.approx(sum(float(r["energy_spent_j"]) for r in rows))


def test_resuming_a_complete_grid_changes_nothing(tmp_path, problem_file):
    run, store = tmp_path / "g", tmp_path / "s.sqlite"
    done = subprocess.run(cli("grid", problem_file, "--out", run, "--store", store), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before, stored = _everything(run), store.read_bytes()
    again = subprocess.run(cli("grid", problem_file, "--resume", run), cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{run} is already complete: all 2 points are in it; nothing was run or changed" in again.stdout
    assert "grid done: 2 points (2 trained now)" in again.stdout  # its summary and front, as it stands
    assert _everything(run) == before and store.read_bytes() == stored


def test_resuming_a_grid_with_a_point_missing_goes_on(tmp_path):
    import gi_energy
    from gi_energy.runs.replay import SyntheticEvaluator
    from gi_energy.search.grid import run_grid

    problem = gi_energy.load_problem("quickstart")
    first = run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem))
    assert len(first.outcomes) == 12
    again = run_grid(problem, resume=tmp_path / "g", evaluator=SyntheticEvaluator(problem))
    assert [o.key for o in again.outcomes] == [o.key for o in first.outcomes]
    assert again.trained == first.trained and again.energy_spent_j == first.energy_spent_j
    # A run.json that says complete over files missing a point (a grid widened by hand, a
    # file cut short) is no reason to stop: the missing point is run.
    lines = (tmp_path / "g" / "evaluations.csv").read_text().splitlines(keepends=True)
    (tmp_path / "g" / "evaluations.csv").write_text("".join(lines[:-1]))
    more = run_grid(problem, resume=tmp_path / "g", evaluator=SyntheticEvaluator(problem))
    assert len(more.outcomes) == 12
