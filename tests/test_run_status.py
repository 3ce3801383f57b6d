"""A run killed with kill -9 cannot write its status: run.json keeps "running". Readers
tell it apart by the lock file's holder, a real process killed here."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import gi_energy
from gi_energy.runs.lock import holder_gone

HOLD = """
import sys, time
from gi_energy.config.parse import load_problem
from gi_energy.runs.lock import create_locked
rd, lock = create_locked(sys.argv[1], load_problem("quickstart"), "evolve")
print("ready", flush=True)
time.sleep(60)
"""


def test_a_run_killed_by_sigkill_reads_as_interrupted(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert not holder_gone(run)
        assert gi_energy.open_run(run).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert holder_gone(run)
    result = gi_energy.open_run(run)
    assert result.status == "interrupted" and result.info["status"] == "running"


def test_no_lock_file_or_another_host_is_not_called_gone(tmp_path):
    assert not holder_gone(tmp_path)
    (tmp_path / "run.lock").write_text(json.dumps({"pid": 1, "host": f"elsewhere-{time.time_ns()}", "since": "x"}))
    assert not holder_gone(tmp_path)
    (tmp_path / "run.lock").write_text("not json")
    assert not holder_gone(tmp_path)
