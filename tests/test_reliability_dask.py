"""Dask faults by real mechanisms: a cluster whose workers arrive late (and change), and a
scheduler process killed mid-run (then resumed with a new one)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from gi_energy.config.genome import Genome  # noqa: E402
from gi_energy.config.parse import load_problem  # noqa: E402
from gi_energy.evaluation.evaluator import Evaluator  # noqa: E402
from gi_energy.evaluation.store import Store  # noqa: E402
from gi_energy.tasks.results import Evaluation  # noqa: E402

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


def quick_task(problem, genome, repeat):
    """A task that needs no torch: ok, with the threads of the dask worker it ran on."""
    from distributed import get_worker

    return Evaluation(genome=genome, status="ok", repeat=repeat, val_accuracy=0.5,
                      extra={"threads": float(get_worker().state.nthreads)})


def genome(width: int) -> Genome:
    return Genome(layers={"hidden": (width,)}, values={"epochs": 1, "batch_size": 64, "learning_rate": 0.01,
                                                       "optimizer": "adam", "activation": "relu"})


def test_no_clock_without_workers_and_each_result_under_its_own_threads(tmp_path):
    import cloudpickle
    from distributed import LocalCluster

    # The workers import this test module by value, not by name (it is not installed).
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # preload: the worker imports gi-energy before it joins, so the task's own clock is not
    # spent on imports.
    with LocalCluster(n_workers=0, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None, preload=["gi_energy.tasks.results"]) as cluster:
        problem = load_problem("digits").with_overrides(
            evaluation={"backend": "dask", "scheduler": cluster.scheduler_address, "workers": 2,
                        "timeout_s": 2.0},
            energy={"meter": "estimate"})
        with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store, task=quick_task) as ev:
            before = ev.context  # no workers yet: this machine's default threads
            box = {}
            thread = threading.Thread(target=lambda: box.update(out=ev.evaluate([genome(4), genome(8)])))
            thread.start()
            time.sleep(4.0)  # twice the timeout, with no worker to run anything
            assert thread.is_alive()
            cluster.scale(1)
            thread.join(timeout=60)
            assert not thread.is_alive()
            assert [o.status for o in box["out"]] == ["ok", "ok"], [o.evaluations[0].reason for o in box["out"]]
            assert "/t2@" in ev.context  # follows the cluster now that it has a 2-thread worker
            import sqlite3

            contexts = {c for (c,) in sqlite3.connect(tmp_path / "s.sqlite").execute(
                "SELECT context FROM evaluations")}
        assert len(contexts) == 1 and "/t2@" in contexts.pop(), (before, contexts)


# ---------------------------------------------------------------- the scheduler dies

PROBLEM = """
[problem]
name = "dask-tiny"
seed = 1

[dataset]
source = "synthetic"
n_samples = 200
n_features = 8
n_informative = 4
n_classes = 2

[space]
hidden_layers = {{ min = 1, max = 2 }}
width = {{ min = 4, max = 16 }}
batch_size = [16, 32]
epochs = 1

[search]
population = 4
generations = 1

[evaluation]
workers = 1
backend = "dask"
scheduler = "tcp://127.0.0.1:{port}"

[energy]
meter = "estimate"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_bin() -> str:
    return str(Path(sys.executable).with_name("dask"))


def start_cluster(port: int, folder: Path) -> list[subprocess.Popen]:
    sched = subprocess.Popen([dask_bin(), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], cwd=folder, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    worker = subprocess.Popen([dask_bin(), "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1",
                               "--nthreads", "1", "--no-dashboard"], cwd=folder, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    return [sched, worker]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)


def journal(run: Path) -> list[tuple[str, int]]:
    path = run / "trained.jsonl"
    if not path.exists():
        return []
    return [(d["key"], d["repeat"]) for d in map(json.loads, path.read_text().splitlines())]


def test_a_lost_scheduler_interrupts_the_run_in_one_line_and_it_resumes(tmp_path):
    port = free_port()
    problem = tmp_path / "p.toml"
    problem.write_text(PROBLEM.format(port=port))
    run = tmp_path / "run"
    # Give up reconnecting after 3 s, not dask's default 30 s (dask's own setting).
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}
    cli = [sys.executable, "-m", "gi_energy.cli", "evolve", str(problem)]
    cluster = start_cluster(port, tmp_path)
    try:
        proc = subprocess.Popen([*cli, "--out", str(run)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while len(journal(run)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before the scheduler was killed"
        before = journal(run)
        assert len(before) >= 2
        os.killpg(cluster[0].pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 1, err
        assert "Traceback" not in err and " - ERROR - " not in err, err
        errors = [line for line in err.splitlines() if line.startswith("gi-energy: error:")]
        assert len(errors) == 1 and "lost the dask scheduler" in errors[0], err
        assert err.strip().splitlines()[-1] == errors[0], err
        assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    finally:
        stop(cluster)

    cluster = start_cluster(port, tmp_path)
    try:
        resumed = subprocess.run([*cli, "--resume", str(run)], cwd=tmp_path, env=env, capture_output=True,
                                 text=True, timeout=180)
    finally:
        stop(cluster)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    after = journal(run)
    assert set(before) <= set(after)
    assert len(after) == len(set(after)), "an evaluation was trained twice"
