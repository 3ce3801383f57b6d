"""The Evaluator on real worker processes: streaming, failures, the store, dask."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.evaluation.attempts import MAX_CRASH_ATTEMPTS, should_retry
from gi_energy.evaluation.evaluator import Evaluator, evaluation_context
from gi_energy.evaluation.store import Store
from gi_energy.evaluation.worker import evaluate_task, run_evaluation
from gi_energy.meters.reading import Reading
from gi_energy.tasks.results import Evaluation
from gi_energy.tasks.training import threads_per_worker

pytestmark = pytest.mark.slow


def faulty_task(problem, genome, repeat):
    """The real task, except for genomes carrying a test-only "fault" value."""
    fault = genome.values.get("fault")
    if fault == "exit":
        os._exit(3)  # the worker process dies without a word
    if fault == "sleep":
        time.sleep(120)
    if fault == "raise":
        raise RuntimeError("raised outside the worker's own error handling")
    if fault == "keyboard":
        raise KeyboardInterrupt
    if fault == "sysexit":
        raise SystemExit(4)
    return evaluate_task(problem, genome, repeat)


class BrokenMeter:
    """A meter whose windows fail the way a hardware meter's can (a read error)."""

    measured = True

    def window(self):
        from gi_energy.errors import MeterError

        raise MeterError("rapl: energy counter could not be read")


def flaky_task(problem, genome, repeat):
    """The real task, with infrastructure faults injected for "fault" genomes."""
    fault = genome.values.get("fault")
    if fault == "meter":
        return run_evaluation(problem, genome, repeat, meter=BrokenMeter())
    ev = evaluate_task(problem, genome, repeat)
    if fault == "missing":
        return dataclasses.replace(ev, inference=Reading.missing_reading("rapl", "counter read failed"))
    return ev


def tiny(epochs: int = 2, **values) -> Genome:
    base = {"epochs": epochs, "batch_size": 64, "learning_rate": 0.01, "optimizer": "adam",
            "activation": "relu"}
    return Genome(layers={"hidden": (16,)}, values={**base, **values})


@pytest.fixture(scope="module")
def problem():
    return load_problem("digits").with_overrides(
        evaluation={"min_inference_s": 0.02, "timeout_s": 5.0, "workers": 2},
        energy={"meter": "estimate"},
    )


def test_context_names_device_meter_threads_and_host(problem):
    import socket

    host = socket.gethostname()
    threads = threads_per_worker(problem.evaluation)
    assert evaluation_context(problem) == f"cpu/estimate:10W/t{threads}@{host}"
    four = problem.with_overrides(evaluation={"threads_per_worker": 4})
    assert evaluation_context(four) == f"cpu/estimate:10W/t4@{host}"
    with Evaluator(four) as ev:
        assert ev.context == evaluation_context(four)


def test_sys_exit_raised_in_a_worker_stops_that_evaluation_only(problem, tmp_path):
    """A task's own sys.exit() ends neither the run nor gi-energy with its status: the
    evaluation is "crashed" (tried again, as after a worker that died; never the genome's
    own "failed"), the others go on. A KeyboardInterrupt from a worker stops the run as
    interrupted: it is what a Ctrl-C to the terminal's process group looks like."""
    se, ok = tiny(fault="sysexit"), tiny(2)
    with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store, task=faulty_task) as ev:
        outcomes = ev.evaluate([se, ok])
        assert [o.status for o in outcomes] == ["crashed", "ok"]
        assert outcomes[0].reason == "SystemExit raised in the worker: 4"
        again = ev.evaluate([se, ok])
        assert ev.trained == 3 and [o.status for o in again] == ["crashed", "ok"]
        assert again[0].evaluations[0].extra["attempts"] == 2
        with pytest.raises(KeyboardInterrupt):
            ev.evaluate([tiny(fault="keyboard")])


def test_batch_with_every_kind_of_failure(problem, tmp_path):
    ok1, ok2 = tiny(2), tiny(3)
    exc = tiny(optimizer="lbfgs")                          # raises inside the worker task
    raised = tiny(fault="raise")                           # raises out of the task itself
    nan = tiny(5, optimizer="sgd", learning_rate=9.0)      # diverges
    crash = tiny(fault="exit")
    slow = tiny(fault="sleep")
    batch = [ok1, crash, exc, slow, nan, ok2, raised, ok1]  # ok1 twice: evaluated once
    seen: list[tuple[Evaluation, bool, float]] = []
    with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store, task=faulty_task) as ev:
        assert ev.measured is False and "estimate" in ev.meter_description
        start = time.monotonic()
        outcomes = ev.evaluate(batch, on_result=lambda e, c: seen.append((e, c, time.monotonic() - start)))
        assert [o.genome for o in outcomes] == batch
        assert outcomes[0] is outcomes[-1]
        status = {o.key: o.status for o in outcomes}
        assert status[ok1.key] == status[ok2.key] == "ok"
        assert status[exc.key] == status[raised.key] == "failed"
        assert "lbfgs" in outcomes[2].reason and "RuntimeError" in outcomes[6].reason
        assert status[nan.key] == "nan"
        assert status[crash.key] == "crashed" and "died" in outcomes[1].reason
        assert status[slow.key] == "timeout"
        assert ev.trained == 7 and len(seen) == 7 and not any(c for _, c, _ in seen)
        # streaming: results arrived as they finished, not all at the end of the batch
        # (dispatch order is the evaluator's own, so no assumption about which comes last)
        t_timeout = next(t for e, _, t in seen if e.status == "timeout")
        assert seen[0][2] < t_timeout - 3
        # the timed-out worker process was killed, not left running
        pid = int(outcomes[3].evaluations[0].worker.split()[-1])
        time.sleep(1.0)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert store.count(problem.fingerprint()) == 7

        # Second call: nothing is trained again, except the crash (retried once).
        seen.clear()
        again = ev.evaluate(batch, on_result=lambda e, c: seen.append((e, c, 0)))
        assert [o.status for o in again] == [o.status for o in outcomes]
        assert ev.trained == 8
        assert [o.cached for o in again] == [o.key != crash.key for o in again]
        crashed = again[1].evaluations[0]
        assert crashed.extra["attempts"] == MAX_CRASH_ATTEMPTS
        assert not should_retry(crashed, problem.evaluation.timeout_s)
        assert sum(not c for _, c, _ in seen) == 1

    # A new evaluator on the same store (a resumed run) trains nothing at all.
    with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store, task=faulty_task) as ev:
        third = ev.evaluate(batch)
        assert ev.trained == 0 and all(o.cached for o in third)
        assert third[0].metric("accuracy") == outcomes[0].metric("accuracy")


def test_timeout_is_retried_only_with_a_longer_timeout():
    ev = Evaluation(genome=Genome(), status="timeout", extra={"timeout_s": 10.0, "attempts": 1.0})
    assert not should_retry(ev, 10.0) and should_retry(ev, 20.0)
    est = Reading(backend="estimate", scope="process-estimate", measured=False, energy_j=1.0, duration_s=1.0)
    for status in ("ok", "failed", "nan"):
        assert not should_retry(Evaluation(genome=Genome(), status=status, train=est, inference=est), 1e9)


def test_ok_with_a_missing_reading_is_retried_a_bounded_number_of_times():
    est = Reading(backend="estimate", scope="process-estimate", measured=False, energy_j=1.0, duration_s=1.0)
    gap = Reading.missing_reading("rapl", "counter read failed")
    complete = Evaluation(genome=Genome(), status="ok", train=est, inference=est)
    assert not should_retry(complete, 1.0)
    for train, inference in ((est, gap), (gap, est), (est, None)):
        first = dataclasses.replace(complete, train=train, inference=inference, extra={"attempts": 1.0})
        assert should_retry(first, 1.0)
        assert not should_retry(dataclasses.replace(first, extra={"attempts": float(MAX_CRASH_ATTEMPTS)}), 1.0)


def test_infrastructure_faults_are_crashed_and_retried_genome_errors_are_not(problem, tmp_path):
    good, meter, missing, bad = tiny(1), tiny(1, fault="meter"), tiny(1, fault="missing"), tiny(1, optimizer="lbfgs")
    batch = [good, meter, missing, bad]
    with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store, workers=1, task=flaky_task) as ev:
        first = ev.evaluate(batch)
        assert [o.status for o in first] == ["ok", "crashed", "ok", "failed"]
        assert "MeterError" in first[1].reason and "counter could not be read" in first[1].reason
        assert first[2].metric("inference_energy_j_per_1k") is None  # out of every front
        assert [o.evaluations[0].extra.get("attempts") for o in first[1:3]] == [1.0, 1.0]
        assert ev.trained == 4
        second = ev.evaluate(batch)  # the meter fault and the missing reading run again
        assert ev.trained == 6
        assert [o.cached for o in second] == [True, False, False, True]
        assert [o.evaluations[0].extra["attempts"] for o in second[1:3]] == [2.0, 2.0]
        ev.evaluate(batch)  # ... but no more than MAX_CRASH_ATTEMPTS times
        assert ev.trained == 6


def test_single_worker_repeats_and_cnn(tmp_path):
    problem = load_problem("digits_cnn").with_overrides(
        evaluation={"min_inference_s": 0.02, "repeats": 2, "timeout_s": 60.0},
        energy={"meter": "estimate"})
    g = Genome(layers={"conv": (4,), "hidden": ()},
               values={"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "kernel_size": 3,
                       "pooling": "max", "activation": "relu", "optimizer": "adam"})
    with Evaluator(problem, Store(tmp_path / "s.sqlite"), workers=1) as ev:
        (out,) = ev.evaluate([g])
        assert out.ok, out.reason
        assert [e.repeat for e in out.evaluations] == [0, 1]
        assert out.spread("accuracy") >= 0.0 and out.metric("accuracy") > 0.3
        assert ev.evaluate([g])[0].cached


def test_dask_backend_on_a_local_cluster(tmp_path):
    import dask
    from distributed import LocalCluster

    # One death is enough to call a worker crashed (the default retries it 3 times).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
         LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        problem = load_problem("digits").with_overrides(
            evaluation={"backend": "dask", "scheduler": cluster.scheduler_address,
                        "min_inference_s": 0.02, "timeout_s": 60.0, "repeats": 2},
            energy={"meter": "estimate"})
        with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store, task=faulty_task) as ev:
            good, crash = tiny(2), tiny(fault="exit", epochs=1)
            outcomes = ev.evaluate([good, crash])
            assert outcomes[0].ok, outcomes[0].reason
            assert outcomes[1].status == "crashed"
            assert len(store.evaluations(problem.fingerprint())) == 4
            assert ev.evaluate([good])[0].cached


def test_a_problem_whose_data_cannot_load_stops_instead_of_failing_every_genome(problem, tmp_path):
    import dataclasses

    from gi_energy.errors import ProblemError

    broken = dataclasses.replace(problem, dataset=dataclasses.replace(
        problem.dataset, source="csv", path=tmp_path / "gone.csv", target="y"))
    with Store(tmp_path / "s.sqlite") as store, Evaluator(broken, store, workers=1) as ev:
        # Bad input, found in this process before any worker starts (not in every worker).
        with pytest.raises(ProblemError, match=r"gone\.csv: \[dataset\.path\] expected a readable CSV file"):
            ev.evaluate([tiny()])
        assert ev._runner is None or not ev._runner._slots
        assert store.count() == 0


def test_dask_tasks_sharing_one_worker_process_take_turns(tmp_path):
    from distributed import LocalCluster

    # Two threads in one worker process share its meter, torch seed and thread count: the
    # tasks must run one at a time there, with the worker's own threads for torch.
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        problem = load_problem("digits").with_overrides(
            evaluation={"backend": "dask", "scheduler": cluster.scheduler_address, "workers": 2,
                        "min_inference_s": 0.02, "timeout_s": 60.0},
            energy={"meter": "estimate"})
        genomes = [tiny(1), tiny(2), tiny(1, learning_rate=0.02), tiny(2, batch_size=32)]
        with Evaluator(problem, Store(tmp_path / "s.sqlite")) as ev:
            outcomes = ev.evaluate(genomes)
            # the workers' own threads, not this machine's cores // workers
            assert ev.context.startswith("cpu/estimate:10W/t2@")
        assert [o.status for o in outcomes] == ["ok"] * 4, [o.reason for o in outcomes]
        assert {o.evaluations[0].extra["threads"] for o in outcomes} == {2.0}
