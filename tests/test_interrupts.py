"""A real SIGINT / SIGTERM that lands while a finished evaluation is being recorded (here:
sent to this process from inside the journal's fsync, the widest window) must leave that
evaluation in the interrupted run's evaluations.csv as well as in its journal."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import types
import warnings

import pytest
from test_evolve import FakeEvaluator, make_problem

from gi_energy.config.parse import parse_problem
from gi_energy.errors import Terminated
from gi_energy.runs import journal as journal_mod
from gi_energy.runs.interrupts import InterruptGate
from gi_energy.runs.replay import SyntheticEvaluator
from gi_energy.search.evolve import evolve
from gi_energy.search.grid import run_grid


def _signal_in_fsync(monkeypatch, signum: int, on_call: int) -> list[int]:
    """The journal's ``os`` with an fsync that sends ``signum`` to this process on its
    ``on_call``-th call, after the real fsync (the line is on disk, as in the race)."""
    calls = [0]

    def fsync(fd):
        os.fsync(fd)
        calls[0] += 1
        if calls[0] == on_call:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(journal_mod, "os", types.SimpleNamespace(fsync=fsync))
    return calls


def _journaled(run_dir) -> set[str]:
    with open(run_dir / "trained.jsonl", encoding="utf-8") as fh:
        return {json.loads(line)["key"] for line in fh if line.strip()}


def _in_csv(run_dir) -> set[str]:
    with open(run_dir / "evaluations.csv", newline="", encoding="utf-8") as fh:
        return {row["key"] for row in csv.DictReader(fh)}


@pytest.fixture(autouse=True)
def sigint_raises():
    """SIGINT raises KeyboardInterrupt while a test runs, as in a terminal, also where the
    suite was started with SIGINT ignored (a shell's background job, nohup)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigterm_raises():
    """SIGTERM raises Terminated while a test runs, as the command line sets it up."""
    def terminate(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_evolve_interrupted_in_a_journal_fsync_keeps_that_evaluation(tmp_path, monkeypatch, sigterm_raises, signum):
    calls = _signal_in_fsync(monkeypatch, signum, on_call=11)  # in the second generation
    with pytest.raises(KeyboardInterrupt):
        evolve(make_problem(generations=6), out=tmp_path / "e", evaluator=FakeEvaluator(), plot=False)
    assert calls[0] >= 11
    run_dir = tmp_path / "e"
    journaled = _journaled(run_dir)
    assert len(journaled) >= 11
    assert journaled <= _in_csv(run_dir), "a journaled evaluation is missing from evaluations.csv"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert info["totals"]["evaluations"] + info["totals"]["unfinished_generation_evaluations"] == len(journaled)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_grid_interrupted_in_a_journal_fsync_keeps_that_evaluation(tmp_path, monkeypatch, sigterm_raises, signum):
    problem = parse_problem({
        "problem": {"name": "g", "seed": 1},
        "space": {"hidden_layers": {"min": 1, "max": 2}, "width": {"min": 4, "max": 64}},
        "grid": {"hidden_layers": [1, 2], "width": [4, 8, 16, 32, 64]},
        "evaluation": {"workers": 1},
    }, source="<grid>")
    _signal_in_fsync(monkeypatch, signum, on_call=4)
    with warnings.catch_warnings(), pytest.raises(KeyboardInterrupt):
        warnings.simplefilter("ignore")
        run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem), echo=lambda s: None,
                 warn=lambda s: None)
    journaled = _journaled(tmp_path / "g")
    assert len(journaled) >= 4
    assert journaled <= _in_csv(tmp_path / "g"), "a journaled evaluation is missing from evaluations.csv"


@pytest.fixture
def gate():
    g = InterruptGate().open()
    yield g
    g.close()


def test_a_held_signal_takes_effect_when_the_held_section_ends(gate):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with gate:
            os.kill(os.getpid(), signal.SIGINT)
            with gate:  # nested: the outermost section's end is what counts
                pass
            done.append("the section ran to its end")
    assert done == ["the section ran to its end"]
    with pytest.raises(KeyboardInterrupt):  # outside a held section it acts at once
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass


def test_sigterm_is_held_and_handed_to_its_own_handler(sigterm_raises):
    handler = signal.getsignal(signal.SIGTERM)
    g = InterruptGate().open()
    done = []
    with pytest.raises(Terminated):
        with g:
            os.kill(os.getpid(), signal.SIGTERM)
            done.append(1)
    g.close()
    assert done == [1] and signal.getsignal(signal.SIGTERM) is handler


def test_closing_puts_the_handlers_back_unless_one_was_replaced_meanwhile():
    before = signal.getsignal(signal.SIGINT)
    g = InterruptGate().open()
    assert signal.getsignal(signal.SIGINT) == g._on_signal
    g.close()
    assert signal.getsignal(signal.SIGINT) is before
    g = InterruptGate().open()
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a handler that wants the rest ignored
    try:
        g.close()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        g = InterruptGate().open()
        with g:
            os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        g.close()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_the_gate_routes_nothing():
    seen = []

    def worker():
        g = InterruptGate().open()
        with g:
            seen.append(signal.getsignal(signal.SIGINT))
        g.close()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler]


def _signal_in_write_results(monkeypatch, signum: int, when) -> list[int]:
    """RunDirectory.write_results sending ``signum`` to this process at its start when
    ``when(front)`` holds (the write itself then goes on, as a real signal lets it)."""
    from gi_energy.runs.rundir import RunDirectory

    real = RunDirectory.write_results
    sent = []

    def write_results(self, *args, front=None, **kwargs):
        if not sent and when(front):
            sent.append(signum)
            os.kill(os.getpid(), signum)
        return real(self, *args, front=front, **kwargs)

    monkeypatch.setattr(RunDirectory, "write_results", write_results)
    return sent


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_final_write_out_leaves_every_evaluation_in_an_interrupted_run(
        tmp_path, monkeypatch, sigterm_raises, signum):
    sent = _signal_in_write_results(monkeypatch, signum, when=lambda front: front is not None)
    with pytest.raises(Terminated if signum == signal.SIGTERM else KeyboardInterrupt):
        evolve(make_problem(generations=3), out=tmp_path / "e", evaluator=FakeEvaluator(), plot=False)
    assert sent
    run_dir = tmp_path / "e"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert _in_csv(run_dir) == _journaled(run_dir) and len(_journaled(run_dir)) == info["totals"]["evaluations"]
    assert (run_dir / "checkpoint.json").exists()


@pytest.mark.parametrize("first,second", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT),
                                          (signal.SIGINT, signal.SIGTERM)])
def test_a_second_signal_does_not_cut_the_saving_short(tmp_path, monkeypatch, sigterm_raises, first, second):
    calls = _signal_in_fsync(monkeypatch, first, on_call=11)
    sent = _signal_in_write_results(monkeypatch, second, when=lambda front: calls[0] >= 11)
    # The first signal's exit stands (Terminated for a SIGTERM: exit 143).
    with pytest.raises(Terminated if first == signal.SIGTERM else KeyboardInterrupt) as caught:
        evolve(make_problem(generations=6), out=tmp_path / "e", evaluator=FakeEvaluator(), plot=False)
    assert sent == [second]
    assert (first == signal.SIGTERM) == isinstance(caught.value, Terminated)
    run_dir = tmp_path / "e"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    journaled = _journaled(run_dir)
    assert len(journaled) >= 11 and journaled <= _in_csv(run_dir)
    assert (run_dir / "front.csv").exists() and (run_dir / "history.csv").exists()
