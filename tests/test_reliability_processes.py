"""Real signals to real processes: ``gi-energy evolve`` and ``grid`` on a tiny problem with
two real loky workers, started in their own process group, then SIGTERM, SIGINT or
kill -9 to the main process alone or to the whole group, at two moments (workers started,
evaluations finished). Each case asserts the exit status, run.json's status, that no
process of the group is left a few seconds later, and that ``--resume`` completes with
every evaluation that had finished before the signal kept and none trained twice.

Processes are found through /proc (Linux), by process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)"),
]

TINY = """
[problem]
name = "tiny"
seed = 1

[dataset]
source = "synthetic"
n_samples = 200
n_features = 8
n_informative = 4
n_classes = 2

[model]
family = "mlp"

[space]
hidden_layers = {{ min = 1, max = 2 }}
width = {{ min = 4, max = 16 }}
learning_rate = {{ min = 1e-3, max = 1e-2, log = true }}
batch_size = [16, 32]
epochs = 1

[grid]
hidden_layers = [1, 2]
width = [4, 8, 12, 16]
learning_rate = [1e-3]

[search]
population = 4
generations = {generations}

[evaluation]
workers = 2
threads_per_worker = 1

[energy]
meter = "estimate"
"""


def write_problem(folder: Path, generations: int = 1) -> Path:
    path = folder / "tiny.toml"
    path.write_text(TINY.format(generations=generations))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gi_energy.cli", *args]


def _sigint_default() -> None:
    # A non-interactive shell starts background jobs (`pytest ... &`) with SIGINT ignored,
    # an ignored signal stays ignored across fork and exec, and Python then installs no
    # KeyboardInterrupt handler: gi-energy would ignore the SIGINT these cases send and
    # finish with status 0. What is tested is what a deliverable SIGINT does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """A gi-energy process leading its own process group (pgid == pid), with SIGINT at its
    default whatever the test runner inherited."""
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_sigint_default)


def group_pids(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def workers_of(pgid: int) -> list[int]:
    pids = []
    for pid in group_pids(pgid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"LokyProcess" in cmd:
            pids.append(pid)
    return pids


def journal(run: Path) -> list[tuple[str, int]]:
    path = run / "trained.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by kill -9
        entries.append((d["key"], int(d["repeat"])))
    return entries


def wait_until(predicate, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def run_json(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def evaluated_keys(run: Path) -> set[tuple[str, int]]:
    import csv

    with open(run / "evaluations.csv", newline="") as fh:
        return {(r["key"], int(r["repeat"])) for r in csv.DictReader(fh)}


def interrupt(proc: subprocess.Popen, sig: int, target: str) -> None:
    if target == "group":
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)


def expected_rc(sig: int) -> int:
    return {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -9}[sig]


def settle(proc: subprocess.Popen, pgid: int) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("the main process did not exit within 60 s of the signal") from None
    return proc.returncode, err


def assert_no_process_left(pgid: int, within_s: float = 10.0) -> None:
    end = time.monotonic() + within_s
    while group_pids(pgid) and time.monotonic() < end:
        time.sleep(0.1)
    left = group_pids(pgid)
    if left:
        cmds = [Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:120] for p in left]
        os.killpg(pgid, signal.SIGKILL)
        raise AssertionError(f"{len(left)} process(es) of the group left {within_s} s after the main one ended: "
                             f"{cmds}")


SIGNALS = {"term": signal.SIGTERM, "int": signal.SIGINT, "kill": signal.SIGKILL}

# (command, signal, target, moment, resume): moment "workers" = both loky workers exist and
# nothing has finished; "finished" = at least three evaluations are in the run's journal.
# Every case checks the exit status, run.json, the journal and that no process is left;
# those marked resume (the costly part: a second start of three processes) also resume.
CASES = [
    ("evolve", "term", "main", "finished", True),
    ("evolve", "kill", "main", "finished", True),
    ("evolve", "int", "main", "workers", False),
    ("evolve", "kill", "main", "workers", False),
    ("evolve", "term", "group", "workers", False),
    ("evolve", "int", "group", "finished", False),
    ("grid", "term", "main", "finished", False),
    ("grid", "kill", "main", "finished", True),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "signame", "target", "moment", "resume"), CASES,
                         ids=["-".join(c[:4]) + ("-resume" if c[4] else "") for c in CASES])
def test_signal_then_resume(tmp_path, command, signame, target, moment, resume):
    sig = SIGNALS[signame]
    problem = write_problem(tmp_path)
    run = tmp_path / "run"
    proc = start(cli(command, str(problem), "--out", str(run)), tmp_path)
    pgid = proc.pid
    try:
        if moment == "workers":
            wait_until(lambda: len(workers_of(pgid)) >= 2, 60, "two loky workers")
        else:
            wait_until(lambda: len(journal(run)) >= 3 or proc.poll() is not None, 90, "three evaluations")
            assert proc.poll() is None, "the run ended before the signal; make it longer"
        before = journal(run)
        interrupt(proc, sig, target)
        rc, err = settle(proc, pgid)
    except BaseException:
        if proc.poll() is None:
            os.killpg(pgid, signal.SIGKILL)
        raise
    assert rc == expected_rc(sig), err
    assert_no_process_left(pgid)
    if sig != signal.SIGKILL:
        assert run_json(run)["status"] == "interrupted"
        last = err.strip().splitlines()[-1]
        assert last == ("gi-energy: terminated (SIGTERM)" if sig == signal.SIGTERM else "gi-energy: interrupted")
        assert "Traceback" not in err
    # The journal survives the signal: whatever had finished is still there.
    kept = journal(run)
    assert set(before) <= set(kept)
    if sig != signal.SIGKILL and kept:
        assert set(kept) <= evaluated_keys(run), "a finished evaluation is missing from evaluations.csv"
    if not resume:
        return

    resumed = subprocess.run(cli(command, str(problem), "--resume", str(run)), cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert run_json(run)["status"] == "complete"
    after = journal(run)
    assert len(after) == len(set(after)), "an evaluation was trained twice"
    assert set(kept) <= set(after)
    assert set(kept) <= evaluated_keys(run), "a finished evaluation is missing from evaluations.csv"


# ---------------------------------------------------------------- compare, killed


def _finished_runs(root: Path) -> list[Path]:
    """A synthetic grid run and a replayed search of it: compare's inputs, no training."""
    from gi_energy.config.parse import load_problem
    from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
    from gi_energy.runs.rundir import RunDirectory
    from gi_energy.search.grid import run_grid

    problem = load_problem("quickstart")
    grid = run_grid(problem, out=root / "grid", evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
                    warn=lambda s: None)
    outcomes = ReplayEvaluator(problem, root / "grid").evaluate([o.genome for o in grid.outcomes[::3]])
    rd = RunDirectory.create(root / "search", problem, "evolve", {"replay": str(root / "grid")})
    rd.update_run_json(status="complete")
    rd.write_results(outcomes, problem.objectives, [])
    return [root / "search", root / "grid"]


def _complete(path: Path) -> bool:
    data = path.read_bytes()
    if path.suffix == ".png":
        return data.startswith(b"\x89PNG") and data.rstrip().endswith(b"IEND\xaeB`\x82")
    if path.suffix == ".json":
        json.loads(data)
        return True
    return len(data) > 0


@pytest.mark.slow
def test_compare_killed_at_any_moment_leaves_no_partial_file(tmp_path):
    runs = _finished_runs(tmp_path)
    out = tmp_path / "cmp"
    args = cli("compare", *map(str, runs), "--reference", str(runs[1]), "--out", str(out), "--force")
    t0 = time.monotonic()
    subprocess.run(args, cwd=tmp_path, capture_output=True, check=True, timeout=120)
    whole_s = time.monotonic() - t0
    for f in out.iterdir():
        f.unlink()
    seen = 0
    for i in range(6):
        # Spread over the second half of a run, where the files are written.
        proc = start(args, tmp_path)
        time.sleep(whole_s * (0.5 + 0.1 * i))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        for f in out.iterdir():
            if not f.name.startswith("."):  # a temporary a kill -9 left: never read as output
                seen += 1
                assert _complete(f), f"{f.name} is partial after a kill -9"
    assert seen, "no kill landed after a file was written; the delays need adjusting"


# ---------------------------------------------------------------- parent death, each mechanism

PARENT = """
import os, subprocess, sys, time
code = ("import sys, time; from gi_energy.evaluation.parent_death import die_with_parent; "
        "die_with_parent(int(sys.argv[1]), pdeathsig=sys.argv[2] == '1', poll_s=0.1); "
        "print('ready', flush=True); time.sleep(120)")
child = subprocess.Popen([sys.executable, "-c", code, str(os.getpid()), sys.argv[1]], stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.parametrize("pdeathsig", [True, False], ids=["prctl", "watchdog-only"])
def test_a_worker_ends_with_its_parent(pdeathsig):
    """kill -9 of the parent alone: the child ends by PR_SET_PDEATHSIG, or, without it
    (another platform, a worker forked by another thread), by its getppid watchdog."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, "1" if pdeathsig else "0"], stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(timeout=30)
        wait_until(lambda: not alive(child), 5, f"child {child} to end after its parent was killed")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
