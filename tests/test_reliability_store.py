"""Nothing lost, nothing replaced, nothing mixed: real ``gi-energy`` processes on one store
and one run directory (issue 11, store and resume).

Every case runs ``python -m gi_energy.cli`` in subprocesses on a tiny synthetic problem
(200 rows, 1 epoch: an evaluation trains in well under a second) with one real loky
worker: two runs of one problem at once on one store, kill -9 of the main process
mid-run, two resumes of one run directory at once, a resume from another working
directory, a resume with a changed problem, a damaged, a foreign and a newer store. Each
asserts the figures: rows replaced, evaluations trained twice, finished evaluations
lost, exit statuses, one-line messages, files untouched.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

TINY = """
[problem]
name = "tiny-store"
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
hidden_layers = {{ min = 1, max = 2 }}
width = {{ min = 2, max = 32 }}
learning_rate = [0.01]
batch_size = [64]
epochs = [1]

[objectives]
accuracy = "max"
params = "min"

[search]
population = 4
generations = {generations}

[evaluation]
workers = 1
min_inference_s = 0.0
timeout_s = 60

[energy]
meter = "estimate"
"""


def write_problem(folder: Path, generations: int = 2, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.toml"
    path.write_text(text if text is not None else TINY.format(generations=generations))
    return path


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "gi_energy.cli", *map(str, args)]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    # Its own session: whatever it leaves (a killed parent's workers) is cleaned up by group.
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen, timeout_s: float = 180) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        kill_group(proc)
    return proc.returncode, out, err


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def store_rows(path: Path) -> dict[tuple[str, int], tuple[str, float]]:
    """{(key, repeat): (payload, stored_at_s)} of every stored evaluation."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT key, repeat, payload, stored_at_s FROM evaluations").fetchall()
    return {(k, int(r)): (p, t) for k, r, p, t in rows}


def store_count(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def journal_lines(run_dir: Path) -> list[tuple[str, int]]:
    path = run_dir / "trained.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError, KeyError):
            d = json.loads(line)
            out.append((d["key"], int(d.get("repeat", 0))))
    return out


def csv_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "evaluations.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def run_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def folder_bytes(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "warning" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- two runs, one store


def test_two_runs_on_one_store_train_nothing_twice_and_replace_nothing(tmp_path):
    problem = write_problem(tmp_path, generations=1)
    store = tmp_path / "shared.sqlite"
    procs = [start(cli("evolve", problem, "--out", tmp_path / name, "--store", store), tmp_path)
             for name in ("a", "b")]
    results = [finish(p) for p in procs]
    assert [r[0] for r in results] == [0, 0], results
    runs = [tmp_path / "a", tmp_path / "b"]
    assert [run_json(r)["status"] for r in runs] == ["complete", "complete"]
    rows = store_rows(store)
    keys = {(r["key"], int(r["repeat"])) for run in runs for r in csv_rows(run)}
    trained = [item for run in runs for item in journal_lines(run)]
    # One seed, one problem: both runs want the same 8 configurations at the same moments.
    assert len(keys) == len(rows) == 8
    assert len(trained) == len(set(trained)) == 8  # 0 trained twice, across both runs
    assert store_count(store, "superseded") == 0  # 0 rows replaced
    assert store_count(store, "leases") == 0  # no claim left behind
    # Each run reports exactly what the store holds (a replaced row would differ from one run's copy).
    for run in runs:
        for r in csv_rows(run):
            stored = json.loads(rows[(r["key"], int(r["repeat"]))][0])
            assert float(r.get("val_accuracy") or r["accuracy"]) == pytest.approx(stored["val_accuracy"])
            # energy is what tells two trainings apart (CPU time never repeats exactly)
            assert float(r["train_energy_j"]) == pytest.approx(stored["train"]["energy_j"], rel=1e-9)
    # and one run's store hits are the other's trainings
    totals = [run_json(r)["totals"] for r in runs]
    assert sum(t["evaluations"] - t["cached"] for t in totals) == 8


# ---------------------------------------------------------------- kill -9, then compare and resume


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """An evolve run killed (SIGKILL to the main process) part-way through generation 1,
    started in ``home`` with a store path relative to it."""
    home = tmp_path_factory.mktemp("home")
    problem = write_problem(home, generations=3)
    proc = start(cli("evolve", problem, "--out", "run", "--store", "store.sqlite"), home)
    run = home / "run"
    deadline = time.monotonic() + 120
    try:
        # Generation 0 is checkpointed (4 trained) and generation 1 is under way.
        while not ((run / "checkpoint.json").exists() and len(journal_lines(run)) >= 6):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never reached generation 1"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the main process alone
        proc.wait(timeout=30)
    finally:
        kill_group(proc)  # its orphaned worker too: this test leaves no process behind
        proc.communicate()
    return {"home": home, "problem": problem, "run": run, "store": home / "store.sqlite",
            "rows": store_rows(home / "store.sqlite"), "journal": journal_lines(run),
            "files": folder_bytes(run),
            "checkpointed": json.loads((run / "checkpoint.json").read_text())["outcomes_count"],
            "leases": store_count(home / "store.sqlite", "leases"), "pid": proc.pid}


def test_a_run_killed_mid_way_can_be_compared(killed, tmp_path):
    assert run_json(killed["run"])["status"] == "running"  # kill -9: nothing could mark it
    with contextlib.closing(sqlite3.connect(killed["store"])) as conn:  # its claims outlive it
        assert {r[0] for r in conn.execute("SELECT pid FROM leases")} <= {killed["pid"]}
    rc, out, err = finish(start(cli("compare", killed["run"], "--out", tmp_path / "cmp", "--json"), tmp_path))
    assert rc == 0, err
    report = json.loads(out)
    assert report and (tmp_path / "cmp" / "report.md").exists()
    # generation 0's results were written when it was checkpointed
    assert len(csv_rows(killed["run"])) >= 4
    assert folder_bytes(killed["run"]) == killed["files"]  # compare only reads


def test_resume_with_a_changed_problem_is_refused_naming_the_keys(killed, tmp_path):
    text = killed["problem"].read_text().replace('params = "min"', 'train_energy_j = "min"') \
        .replace("width = { min = 2, max = 32 }", "width = { min = 200, max = 256 }")
    changed = write_problem(tmp_path, text=text)
    rc, _, err = finish(start(cli("evolve", changed, "--resume", killed["run"]), killed["home"]))
    assert rc == 2
    line = one_line(err)
    assert "[objectives]" in line and "[space] hidden" in line and str(killed["run"]) in line
    assert folder_bytes(killed["run"]) == killed["files"]  # nothing touched
    assert store_rows(killed["store"]) == killed["rows"]


def test_a_resume_while_another_process_holds_the_run_is_refused(killed, tmp_path):
    holder = start([sys.executable, "-c", "import sys, time; from gi_energy.runs.lock import RunLock; "
                    f"RunLock({str(killed['run'])!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                   tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, _, err = finish(start(cli("evolve", killed["problem"], "--resume", killed["run"]), killed["home"]))
        assert rc == 2
        line = one_line(err)
        assert "in use by another gi-energy process" in line and f"pid {holder.pid}" in line
        assert folder_bytes(killed["run"]) == {**killed["files"], "run.lock": (killed["run"] / "run.lock").read_bytes()}
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # the kernel drops its lock with it
        finish(holder)
    assert store_rows(killed["store"]) == killed["rows"]


def test_kill_9_then_two_resumes_at_once_from_another_directory(killed, tmp_path):
    """Two resumes at once, from a directory where the store path would mean a new empty
    store: one is refused, the other completes on the run's own store, with every
    evaluation that had finished before the kill kept as it was and none trained twice."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    procs = [start(cli("evolve", killed["problem"], "--resume", killed["run"]), elsewhere) for _ in range(2)]
    results = [finish(p) for p in procs]
    assert sorted(r[0] for r in results) == [0, 2], results
    refused = next(r for r in results if r[0] == 2)
    assert "in use by another gi-energy process" in one_line(refused[2])

    run = killed["run"]
    info = run_json(run)
    assert info["status"] == "complete" and info["generation"] == 3
    assert info["settings"]["store"] == str(killed["store"])  # absolute, as recorded at the start
    assert not (elsewhere / "store.sqlite").exists() and not (elsewhere / "runs").exists()
    after = store_rows(killed["store"])
    # 0 finished evaluations lost or replaced: every row stored before the kill is still there, unchanged
    assert {k: after[k] for k in killed["rows"]} == killed["rows"]
    assert store_count(killed["store"], "superseded") == 0
    # the killed process's claims on what it was training (a dead pid) were taken over
    assert store_count(killed["store"], "leases") == 0
    rows = csv_rows(run)
    keys = [(r["key"], int(r["repeat"])) for r in rows]
    assert len(keys) == len(set(keys)) == len(after)
    assert set(killed["journal"]) <= set(keys)
    # 0 trained twice: what the killed process had finished in its unfinished generation
    # (journaled and stored) came back from the store on resume (cached), not from a
    # worker. (An evaluation is journaled inside its store write, before the commit: the
    # kill, sent right after a journal line, can fall before that commit, and then the
    # evaluation never finished and is trained again.)
    checkpointed = {json.loads(line)["key"] for line in
                    (run / "checkpoint-outcomes.jsonl").read_text().splitlines()[:killed["checkpointed"]]}
    finished = set(killed["journal"]) & set(killed["rows"])
    again = [r["key"] for r in rows if (r["key"], int(r["repeat"])) in finished
             and r["key"] not in checkpointed and r["cached"] != "true"]
    assert again == []
    assert len(journal_lines(run)) == len(after)  # every stored evaluation trained once, by this run


# ---------------------------------------------------------------- stores that are not ours


def _damaged(path: Path) -> None:
    from gi_energy.evaluation.store import Store

    with Store(path) as store:
        from test_store import evaluation

        store.put_many("fp", "c", [evaluation(i) for i in range(400)])
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE").fetchall()
    data = bytearray(path.read_bytes())
    data[5000:9000] = b"\xff" * 4000
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
        conn.commit()


def _newer(path: Path) -> None:
    from gi_energy.evaluation.store import Store

    Store(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE meta SET value = '99'")
        conn.commit()
        conn.execute("PRAGMA journal_mode = DELETE").fetchall()


def test_a_damaged_foreign_or_newer_store_is_bad_input_before_any_run_directory(tmp_path):
    grid_problem = TINY.format(generations=1) + "\n[grid]\nhidden_layers = [1]\nwidth = [2, 4]\n"
    problem = write_problem(tmp_path, text=grid_problem)
    cases = {"damaged": (_damaged, "evolve", "damaged"),
             "foreign": (_foreign, "evolve", "not a gi-energy evaluation store"),
             "newer": (_newer, "grid", "schema version 99")}
    before, procs = {}, {}
    for name, (make, command, _) in cases.items():
        path = tmp_path / f"{name}.sqlite"
        make(path)
        before[name] = path.read_bytes()
        procs[name] = start(cli(command, problem, "--out", tmp_path / f"run-{name}", "--store", path), tmp_path)
    for name, (_, _, says) in cases.items():
        rc, _, err = finish(procs[name])
        assert rc == 2, err
        line = one_line(err)
        assert str(tmp_path / f"{name}.sqlite") in line and says in line
        assert not (tmp_path / f"run-{name}").exists()  # no run directory made
        assert (tmp_path / f"{name}.sqlite").read_bytes() == before[name]  # the file untouched


# ---------------------------------------------------------------- the grid's resume (in-process, synthetic)


def _grid_problem(tmp_path, width="[2, 4, 8]"):
    from gi_energy.config.parse import load_problem

    text = TINY.format(generations=1) + f"\n[grid]\nhidden_layers = [1, 2]\nwidth = {width}\n"
    return load_problem(write_problem(tmp_path, text=text))


def test_grid_resume_refuses_other_levels_and_a_held_run_directory(tmp_path):
    from gi_energy.errors import UsageError
    from gi_energy.runs.lock import RunLock
    from gi_energy.runs.replay import SyntheticEvaluator
    from gi_energy.search.grid import run_grid

    problem = _grid_problem(tmp_path)
    run = tmp_path / "g"
    run_grid(problem, out=run, evaluator=SyntheticEvaluator(problem))
    files = folder_bytes(run)
    other = _grid_problem(tmp_path / "other", width="[2, 4, 16]")
    with pytest.raises(UsageError, match=r"differs from the one this run holds in \[grid\] width;"):
        run_grid(other, resume=run, evaluator=SyntheticEvaluator(other))
    with RunLock(run):  # this process holds it: a resume through another open is refused too
        with pytest.raises(UsageError, match="in use by another gi-energy process"):
            run_grid(problem, resume=run, evaluator=SyntheticEvaluator(problem))
    files.pop("run.lock")  # rewritten by the test's own lock above
    assert {k: v for k, v in folder_bytes(run).items() if k != "run.lock"} == files
    resumed = run_grid(problem, resume=run, evaluator=SyntheticEvaluator(problem))
    assert len(resumed.outcomes) == 6 and run_json(run)["status"] == "complete"


def test_a_new_run_in_a_folder_another_process_holds_writes_nothing(tmp_path):
    from gi_energy.runs.lock import RunDirectoryBusy, RunLock
    from gi_energy.runs.replay import SyntheticEvaluator
    from gi_energy.search.grid import run_grid

    problem = _grid_problem(tmp_path)
    target = tmp_path / "new"
    target.mkdir()
    holder = start([sys.executable, "-c", "import time; from gi_energy.runs.lock import RunLock; "
                    f"RunLock({str(target)!r}).acquire(); print('held', flush=True); time.sleep(60)"], tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirectoryBusy, match=f"pid {holder.pid}"):
            run_grid(problem, out=target, evaluator=SyntheticEvaluator(problem))
        assert sorted(p.name for p in target.iterdir()) == ["run.lock"]  # no run.json, no problem.toml
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        finish(holder)
    with RunLock(target):  # the dead holder's lock is gone with it
        pass
    assert run_grid(problem, out=target, evaluator=SyntheticEvaluator(problem)).evaluations == 6


def test_results_are_rewritten_while_cheap_and_no_more_often():
    from gi_energy.runs.pacing import Pacer

    now = [0.0]

    def write(cost_s):
        now[0] += cost_s

    pacer = Pacer(ratio=20, clock=lambda: now[0])
    assert pacer.maybe(lambda: write(0.01))  # the first time always
    now[0] += 0.1
    assert not pacer.maybe(lambda: write(0.01))  # 0.1 s since a 0.01 s write: not yet (< 20 x)
    now[0] += 0.1
    assert pacer.maybe(lambda: write(0.5))  # 0.2 s: due
    now[0] += 9.0
    assert not pacer.maybe(lambda: write(0.5))  # a 0.5 s write waits 10 s
    now[0] += 1.0
    assert pacer.maybe(lambda: write(0.5)) and pacer.writes == 3
