"""compare says which runs did not finish: an interrupted run (Ctrl-C, or kill -9, whose
run.json still says "running") is compared on what it had evaluated, and report.md and
comparison.json said nothing of it, so a half-run read like a finished one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

import gi_energy
from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.meters.reading import Reading
from gi_energy.report.markdown import render_report
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome


def _outcome(width: int, accuracy: float, energy_j: float) -> Outcome:
    g = Genome(layers={"hidden": (width,)}, values={"lr": 0.01})
    ev = Evaluation(genome=g, status="ok", val_accuracy=accuracy, test_accuracy=accuracy,
                    train=Reading("estimate", "process-estimate", False, 1.0, 1.0),
                    inference=Reading("estimate", "process-estimate", False, energy_j, 1.0),
                    inference_samples=1000, params=width)
    return Outcome(g, (ev,))


def _run(path, status: str):
    problem = load_problem("quickstart")
    rd = RunDirectory.create(path, problem, "evolve", {})
    rd.update_run_json(status=status)
    outcomes = [_outcome(8, 0.8, 1.0), _outcome(16, 0.9, 2.0), _outcome(32, 0.85, 3.0)]
    rd.write_results(outcomes, dict(problem.objectives), [])
    return path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("how", ["interrupted", "killed", "failed"])
def test_a_run_that_did_not_finish_is_marked_in_the_comparison(tmp_path, how):
    done = _run(tmp_path / "done", "complete")
    cut = _run(tmp_path / "cut", {"interrupted": "interrupted", "killed": "running", "failed": "failed"}[how])
    if how == "killed":  # kill -9 leaves "running" and a lock naming a process that is gone
        (cut / "run.lock").write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    status = "failed" if how == "failed" else "interrupted"
    cmp = gi_energy.compare([done, cut])
    assert [r["status"] for r in cmp["runs"]] == ["complete", status]
    text = render_report(cmp)
    assert f"Not every run finished: `cut` ({status})" in text
    assert f"| `cut ({status})` |" in text and "| `done` |" in text
    assert gi_energy.open_run(cut).status == status


def test_a_comparison_of_finished_runs_says_nothing_of_it(tmp_path):
    cmp = gi_energy.compare([_run(tmp_path / "a", "complete"), _run(tmp_path / "b", "complete")])
    assert "Not every run finished" not in render_report(cmp)
    old = {**cmp, "runs": [{k: v for k, v in r.items() if k != "status"} for r in cmp["runs"]]}
    assert "Not every run finished" not in render_report(old)  # comparison.json written before it
