"""Evaluating batches of genomes on worker processes, with the store in front.

``Evaluator.evaluate(genomes)`` looks every (genome, repeat) up in the store with one
query per batch, trains only what is missing, streams each result to the store and to the
caller's ``on_result`` as it finishes, and returns one :class:`Outcome` per input genome.

Store keys: (problem fingerprint, evaluation context, genome key, repeat). The context
names the measurement setup, so evaluations made under different setups are different
evidence and never share a row. Its form is stable::

    <device>/<meter>/t<threads>@<host>        e.g. "cpu/estimate:10W/t2@lab-3"

``device`` is "cpu" or "cuda"; ``meter`` the meter's store label ("rapl", "nvml",
"rapl+nvml", "rapl:cpu-share", "estimate:10W" with its watts per core, ...); ``threads``
the torch intra-op threads of each evaluation (``threads_per_worker``, else cores //
workers, else on dask the workers' own ``nthreads``, "1-4" when they differ); ``host``
the machine's hostname. The context is computed in the process that runs the Evaluator:
with dask workers on other machines, their evaluations are recorded under this (client)
machine's hostname -- a known limitation.

Why not one ``joblib.Parallel`` call: a worker that dies (segfault, ``os._exit``, the OOM
killer) makes loky raise ``TerminatedWorkerError`` for the whole call and lose every other
result, and Parallel has no per-task timeout. Instead:

* loky (default): one single-process loky executor per worker slot. Each slot runs one
  task at a time, so when its process dies, only that task is "crashed", and a task past
  ``timeout_s`` is stopped by killing that slot's process alone; the slot then gets a
  fresh process. Other slots keep running. A slot's process is kept across tasks and
  batches, so its dataset and meter are loaded once.
* dask: ``distributed.Client(scheduler)`` futures, at most as many in flight as the
  cluster has worker processes, so a task's clock starts when it can run: a worker
  process runs one evaluation at a time (its threads would share one meter and torch's
  process-wide seed and thread count; see worker.py), and its ``nthreads`` become torch
  threads. A worker that dies is reported by the scheduler as ``KilledWorker`` (after its
  own retries): "crashed". A task past its timeout is recorded as "timeout" and
  cancelled, but see the known limitations.

Retries on resume: "failed" and "nan" are deterministic and never retried. "timeout" is
retried only when the current ``timeout_s`` is larger than the one it ran out of.
"crashed" is an accident of the machine, not the genome's doing: a worker that died (OOM
killer, segfault, a killed dask worker), a meter error, CUDA out of memory, a result that
could not be unpickled (see worker.py). It is retried on a later ``evaluate`` call until it
has been tried ``MAX_CRASH_ATTEMPTS`` times. So is an "ok" evaluation whose training or
inference reading is missing (a meter that could not be read): a missing reading keeps the
genome out of every front that uses energy. Attempts are stored with the evaluation
(``extra["attempts"]``), so a genome that always kills its worker costs a bounded number
of attempts.

Known limitations:

* Under ``attribution = "exclusive"`` (RAPL, NVML) a metered window waits for a
  cross-process lock while another worker's window is open, and that wait counts against
  ``timeout_s``: the clock runs from dispatch, not from the moment the window opens. With
  several workers on a metered machine, set ``timeout_s`` generously (several times one
  evaluation's expected time).
* On dask, a timed-out task is cancelled, but a dask worker cannot stop a running Python
  thread: the task keeps running on its worker thread until it ends, holding that
  process's evaluation lock (and cores), so the next task sent there waits behind it.
* On dask, the store context is computed here, on the client: evaluations by workers on
  other hosts are recorded under this host's name (see "Store keys" above).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace

from gi_energy.config.problem import Problem
from gi_energy.config.space import Genome
from gi_energy.errors import GiEnergyError
from gi_energy.tasks.results import Evaluation, Outcome
from gi_energy.tasks.training import resolve_device

from .store import Store
from .worker import evaluate_task

MAX_CRASH_ATTEMPTS = 2
# A fresh worker process imports torch and loads the dataset before its clock starts;
# this bounds that start-up, separately from the evaluation timeout.
WORKER_START_TIMEOUT_S = 300.0

Task = Callable[[Problem, Genome, int], Evaluation]
OnResult = Callable[[Evaluation, bool], None]


def evaluation_context(problem: Problem, threads: int | str | None = None) -> str:
    """The measurement-setup part of the store key, e.g. "cpu/estimate:10W/t2@lab-3".

    See the module docstring for its form. Evaluations under different devices, meters,
    thread counts or machines are different evidence and are stored apart. An estimate
    carries its watts per core (its readings scale with it); a measured RAPL reading
    under cpu-share attribution is marked, since it is apportioned. ``threads`` defaults
    to what a local worker uses (:func:`gi_energy.training.threads_per_worker`).
    """
    device = resolve_device(problem.evaluation.device)
    name, _, _ = _meter_info(problem, device)
    return _context(device, name, _threads(problem) if threads is None else threads)


def _context(device: str, meter_label: str, threads: int | str) -> str:
    import socket

    # The hostname of this process. With dask, the context is computed here, on the
    # client side: evaluations run by workers on other hosts are recorded under it.
    return f"{device}/{meter_label}/t{threads}@{socket.gethostname()}"


def _meter_info(problem: Problem, device: str) -> tuple[str, bool, str]:
    """(store label, measured, description) of the meter the workers will create."""
    from gi_energy.meters import create_meter

    meter = create_meter(problem.energy, device=device)
    try:
        parts = getattr(meter, "parts", None)
        name = "+".join(p.name for p in parts) if parts else meter.name
        if meter.name == "estimate":
            name += f":{problem.energy.cpu_watts_per_core:g}W"
            if problem.energy.gpu_watts is not None and device == "cuda":
                name += f"+{problem.energy.gpu_watts:g}W"
        elif problem.energy.attribution != "exclusive":
            name += f":{problem.energy.attribution}"
        return name, bool(meter.measured), meter.describe()
    finally:
        meter.close()


@dataclass(frozen=True)
class Job:
    """One repeat of one genome to run; ``attempts`` counts earlier crashes of it."""

    genome: Genome
    repeat: int
    attempts: int = 0


def missing_reading(evaluation: Evaluation) -> bool:
    """Whether an evaluation lacks its training or inference energy reading."""
    return any(r is None or r.missing for r in (evaluation.train, evaluation.inference))


def _counts_attempts(evaluation: Evaluation) -> bool:
    """Whether an evaluation is retried on the bounded attempts counter."""
    return evaluation.status == "crashed" or (evaluation.status == "ok" and missing_reading(evaluation))


def should_retry(evaluation: Evaluation, timeout_s: float) -> bool:
    """Whether a stored evaluation is to be run again (see the module docstring)."""
    if evaluation.status == "timeout":
        return timeout_s > float(evaluation.extra.get("timeout_s", math.inf))
    if _counts_attempts(evaluation):
        return int(evaluation.extra.get("attempts", 1)) < MAX_CRASH_ATTEMPTS
    return False


def _settle(ev: Evaluation, job: Job) -> Evaluation:
    """A worker's Evaluation for ``job``: its repeat, and the attempt it was (if counted)."""
    if ev.repeat != job.repeat:
        ev = replace(ev, repeat=job.repeat)
    if _counts_attempts(ev):
        ev = replace(ev, extra={**ev.extra, "attempts": float(job.attempts + 1)})
    return ev


def _lost(job: Job, status: str, reason: str, *, device: str, timeout_s: float, wall_time_s: float,
          worker: str = "") -> Evaluation:
    """The record of a task whose worker gave no result (timeout or crash)."""
    extra = {"attempts": float(job.attempts + 1)}
    if status == "timeout":
        extra["timeout_s"] = float(timeout_s)
    return Evaluation(genome=job.genome, status=status, repeat=job.repeat, reason=reason,
                      wall_time_s=wall_time_s, device=device, worker=worker, extra=extra)


def expected_cost(genome: Genome) -> float:
    """A rough relative training cost, used only to order dispatch (never reported).

    Cost per epoch ~ optimizer steps (fixed overhead each, so 1 / batch size) plus the
    work per sample (~ weights between consecutive layers); times the epochs.
    """
    values = genome.values
    sizes = [*genome.layers.get("conv", ()), *genome.layers.get("hidden", ())]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:])) + 64 * sum(sizes[:1])
    batch_size = float(values.get("batch_size", 64) or 64)
    return float(values.get("epochs", 1) or 1) * (1.0 / batch_size + weights * 5e-6)


class Evaluator:
    """Runs genomes on workers; a context manager that owns its worker processes.

    ``workers`` overrides ``problem.evaluation.workers``. ``task`` is the function run in
    the workers (default :func:`gi_energy.worker.evaluate_task`); it must be picklable and
    is injectable for tests and for research code that evaluates differently.
    """

    def __init__(self, problem: Problem, store: Store | None = None, *, workers: int | None = None,
                 task: Task = evaluate_task):
        if workers is not None:
            if workers < 1:
                raise GiEnergyError(f"workers must be >= 1, got {workers}")
            problem = problem.with_overrides(evaluation={"workers": int(workers)})
        self.problem = problem
        self.store = store
        self.task = task
        self.workers = problem.evaluation.workers
        self.device = resolve_device(problem.evaluation.device)
        self.fingerprint = problem.fingerprint()
        self._meter_label, self.measured, self.meter_description = _meter_info(problem, self.device)
        self._context: str | None = None
        # Without a store, evaluations are still never repeated within this evaluator.
        self._memo: dict[tuple[str, int], Evaluation] = {}
        self._runner: _Runner | None = None
        self.trained = 0  # evaluations run on workers (not served from the store)

    # ------------------------------------------------------------------ public

    @property
    def context(self) -> str:
        """The store key's measurement setup (see the module docstring). On dask it needs
        the cluster's thread counts, so it is computed on first use, not at construction."""
        if self._context is None:
            threads: int | str = _threads(self.problem)
            if self.problem.evaluation.backend == "dask" and not self.problem.evaluation.threads_per_worker:
                threads = self._runner_for().worker_threads() or threads
            self._context = _context(self.device, self._meter_label, threads)
        return self._context

    def evaluate(self, genomes: Sequence[Genome], on_result: OnResult | None = None) -> list[Outcome]:
        """One Outcome per input genome, in input order; see the module docstring.

        Never raises for a failing genome: its Outcome carries the failure status.
        """
        repeats = self.problem.evaluation.repeats
        timeout_s = self.problem.evaluation.timeout_s
        unique = list(dict.fromkeys(genomes))
        known = self._lookup([g.key for g in unique])
        results: dict[tuple[str, int], Evaluation] = {}
        trained_keys: set[str] = set()
        jobs: list[Job] = []
        for genome in unique:
            for repeat in range(repeats):
                ev = known.get((genome.key, repeat))
                if ev is not None and not should_retry(ev, timeout_s):
                    results[(genome.key, repeat)] = ev
                    if on_result is not None:
                        on_result(ev, True)
                else:
                    attempts = int(ev.extra.get("attempts", 1)) if ev is not None and _counts_attempts(ev) else 0
                    jobs.append(Job(genome, repeat, attempts))
        if jobs:
            # Longest expected first: a generation waits for its slowest evaluation, and
            # starting the long ones early keeps both workers busy to the end (LPT order).
            jobs.sort(key=lambda j: expected_cost(j.genome), reverse=True)
            stream = self._runner_for().run(jobs, self.task, self.problem, timeout_s)
            try:
                for ev in stream:
                    self.trained += 1
                    self._record(ev)
                    results[(ev.key, ev.repeat)] = ev
                    trained_keys.add(ev.key)
                    if on_result is not None:
                        on_result(ev, False)
            finally:
                # If on_result raised (or Ctrl-C), stop the tasks still running now rather
                # than whenever the generator is garbage-collected.
                stream.close()
        outcomes = {
            g.key: Outcome(g, tuple(results[(g.key, r)] for r in range(repeats)),
                           cached=g.key not in trained_keys)
            for g in unique
        }
        return [outcomes[g.key] for g in genomes]

    def close(self):
        """Stop the worker processes (or the dask client); the store stays open."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ internals

    def _lookup(self, keys: list[str]) -> dict[tuple[str, int], Evaluation]:
        if self.store is None:
            wanted = set(keys)
            return {k: v for k, v in self._memo.items() if k[0] in wanted}
        return self.store.get_many(self.fingerprint, self.context, keys)

    def _record(self, ev: Evaluation):
        if self.store is None:
            self._memo[(ev.key, ev.repeat)] = ev
        else:
            self.store.put(self.fingerprint, self.context, ev)

    def _runner_for(self) -> _Runner:
        if self._runner is None:
            ev = self.problem.evaluation
            if ev.backend == "dask":
                self._runner = DaskRunner(ev.scheduler, device=self.device)
            else:
                self._runner = LokyRunner(self.workers, device=self.device,
                                          threads=_threads(self.problem))
        return self._runner


def _threads(problem: Problem) -> int:
    from gi_energy.tasks.training import threads_per_worker

    return threads_per_worker(problem.evaluation)


class _Runner:
    """Runs jobs and yields each one's Evaluation as it finishes (any order)."""

    def run(self, jobs: list[Job], task: Task, problem: Problem, timeout_s: float) -> Iterator[Evaluation]:
        raise NotImplementedError

    def close(self):
        raise NotImplementedError


def _warm_up(problem: Problem) -> int:
    """Run once in a new worker, before any clock starts: import torch, load the dataset,
    create the meter, warm torch up. Returns the worker's process id."""
    import os

    from .worker import prepare

    prepare(problem)
    return os.getpid()


class _Slot:
    """One worker process (a loky executor with max_workers=1) and what it is running."""

    def __init__(self, threads: int, problem: Problem, device: str = "cpu"):
        from joblib.externals.loky import ProcessPoolExecutor

        from gi_energy.tasks.training import CUBLAS_WORKSPACE_CONFIG

        # OMP_NUM_THREADS before torch is imported keeps the process from creating a
        # thread pool per core that set_num_threads would only shrink afterwards.
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if device == "cuda":
            # Deterministic cuBLAS; it must be in the environment before CUDA initialises.
            env["CUBLAS_WORKSPACE_CONFIG"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        self.executor = ProcessPoolExecutor(max_workers=1, env=env)
        self.ready: Future = self.executor.submit(_warm_up, problem)
        self.started_s = time.monotonic()
        self.pid: int | None = None
        self.job: Job | None = None
        self.future: Future | None = None
        self.deadline_s = math.inf

    def kill(self):
        # Killing the process is the only way to stop a running task; loky kills the
        # process tree when shutting down with kill_workers.
        self.executor.shutdown(wait=False, kill_workers=True)


class LokyRunner(_Runner):
    """A fixed number of single-process loky slots (see the module docstring)."""

    def __init__(self, workers: int, *, device: str, threads: int):
        self.workers = int(workers)
        self.device = device
        self.threads = threads
        self._slots: list[_Slot] = []
        self._problem: Problem | None = None

    def _fresh_slots(self, problem: Problem):
        self._problem = problem
        while len(self._slots) < self.workers:
            self._slots.append(_Slot(self.threads, problem, self.device))

    def _replace(self, slot: _Slot):
        slot.kill()
        self._slots[self._slots.index(slot)] = _Slot(self.threads, self._problem, self.device)

    def run(self, jobs, task, problem, timeout_s):
        self._fresh_slots(problem)
        pending = deque(jobs)
        try:
            while pending or any(s.job is not None for s in self._slots):
                self._start_ready(pending, task, problem, timeout_s)
                waiting = [s.future for s in self._slots if s.future is not None]
                waiting += [s.ready for s in self._slots if s.pid is None]
                now = time.monotonic()
                next_deadline = min([s.deadline_s for s in self._slots if s.job is not None]
                                    + [s.started_s + WORKER_START_TIMEOUT_S for s in self._slots
                                       if s.pid is None])
                wait(waiting, timeout=max(0.0, min(next_deadline - now, 1.0)), return_when=FIRST_COMPLETED)
                yield from self._collect(timeout_s)
        finally:
            # Interrupted (or the caller stopped reading): running tasks would hold their
            # slots, so stop them; the slots are rebuilt on the next call.
            for slot in list(self._slots):
                if slot.job is not None:
                    self._replace(slot)

    def _start_ready(self, pending: deque, task, problem, timeout_s):
        for slot in list(self._slots):
            if slot.pid is None:
                if not slot.ready.done():
                    if time.monotonic() - slot.started_s > WORKER_START_TIMEOUT_S:
                        slot.kill()
                        raise GiEnergyError(f"a worker process did not start within "
                                            f"{WORKER_START_TIMEOUT_S:g} s")
                    continue
                try:
                    slot.pid = slot.ready.result()
                except Exception as exc:
                    slot.kill()
                    # The dataset or meter cannot be set up: the problem, not a genome, is at
                    # fault, so stop rather than record every genome as failed.
                    raise GiEnergyError(f"a worker process failed to start: {exc}") from exc
            if slot.job is None and pending:
                job = pending.popleft()
                slot.job = job
                slot.future = slot.executor.submit(task, problem, job.genome, job.repeat)
                slot.deadline_s = time.monotonic() + timeout_s

    def _collect(self, timeout_s) -> Iterator[Evaluation]:
        now = time.monotonic()
        for slot in list(self._slots):
            job, future = slot.job, slot.future
            if job is None:
                continue
            elapsed_s = now - (slot.deadline_s - timeout_s)
            worker = f"pid {slot.pid}"
            if future.done():
                ev = self._result(slot, job, future, elapsed_s, timeout_s, worker)
                if ev.status == "crashed" and future.exception() is not None:
                    # The process died or its pipe broke. A "crashed" the task returned itself
                    # (a meter error, CUDA OOM) left a working process: worker.py recovers it.
                    self._replace(slot)
                else:
                    slot.job, slot.future, slot.deadline_s = None, None, math.inf
                yield ev
            elif now >= slot.deadline_s:
                self._replace(slot)
                yield _lost(job, "timeout", f"no result after {timeout_s:g} s; worker process killed",
                            device=self.device, timeout_s=timeout_s, wall_time_s=elapsed_s, worker=worker)

    def _result(self, slot, job, future, elapsed_s, timeout_s, worker) -> Evaluation:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        from .worker import is_transient

        try:
            ev = future.result()
        except BrokenProcessPool as exc:
            # loky also reports a result that failed to unpickle here ("un-serialize").
            what = "result could not be unpickled" if "un-serialize" in str(exc) else "worker process died"
            return _lost(job, "crashed", f"{what}: {_first_line(exc)}", device=self.device,
                         timeout_s=timeout_s, wall_time_s=elapsed_s, worker=worker)
        except Exception as exc:  # noqa: BLE001
            # The default task never raises; a custom task's own exception is the genome's
            # ("failed"), a (un)pickling error or a meter error the machine's ("crashed").
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
            if is_transient(exc):
                return _lost(job, "crashed", reason, device=self.device, timeout_s=timeout_s,
                             wall_time_s=elapsed_s, worker=worker)
            return Evaluation(genome=job.genome, status="failed", repeat=job.repeat, reason=reason,
                              wall_time_s=elapsed_s, device=self.device, worker=worker)
        return _settle(ev, job)

    def close(self):
        for slot in self._slots:
            slot.executor.shutdown(wait=True, kill_workers=slot.job is not None)
        self._slots = []


class DaskRunner(_Runner):
    """Futures on a dask.distributed cluster (see the module docstring)."""

    def __init__(self, scheduler: str | None, *, device: str):
        try:
            from distributed import Client
        except ImportError as exc:
            raise GiEnergyError('backend = "dask" needs the dask extra: pip install '
                                '"gi-energy[dask]"') from exc
        if not scheduler:
            raise GiEnergyError('backend = "dask" needs scheduler = "tcp://host:port"')
        self.device = device
        try:
            self.client = Client(scheduler, timeout=30)
        except OSError as exc:
            raise GiEnergyError(f"cannot reach the dask scheduler {scheduler}: {exc}") from exc

    def worker_threads(self) -> str | None:
        """The workers' ``nthreads`` (torch threads per evaluation, see worker.py): "2", or
        "1-4" when they differ; None while the cluster has no workers."""
        counts = sorted(set(self.client.nthreads().values()))
        if not counts:
            return None
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    def _capacity(self) -> int:
        # One per worker process, not per thread: a process runs one evaluation at a time
        # (worker.py), so a second task there would only wait, with its clock running.
        return max(1, len(self.client.nthreads()))

    def run(self, jobs, task, problem, timeout_s):
        from distributed import wait as dask_wait

        pending = deque(jobs)
        running: dict = {}  # future -> (job, started_s)
        try:
            while pending or running:
                capacity = self._capacity()
                while pending and len(running) < capacity:
                    job = pending.popleft()
                    future = self.client.submit(task, problem, job.genome, job.repeat, pure=False)
                    running[future] = (job, time.monotonic())
                next_deadline = min(start + timeout_s for _, start in running.values())
                try:
                    dask_wait(list(running), timeout=max(0.01, min(next_deadline - time.monotonic(), 1.0)),
                              return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
                now = time.monotonic()
                for future in list(running):
                    job, start = running[future]
                    if future.done():
                        del running[future]
                        yield self._result(future, job, now - start, timeout_s)
                    elif now - start >= timeout_s:
                        del running[future]
                        future.cancel()
                        yield _lost(job, "timeout", f"no result after {timeout_s:g} s; dask task "
                                    "cancelled (a running dask task cannot be stopped)",
                                    device=self.device, timeout_s=timeout_s, wall_time_s=now - start)
        finally:
            for future in running:
                future.cancel()

    def _result(self, future, job, elapsed_s, timeout_s) -> Evaluation:
        from distributed.scheduler import KilledWorker

        try:
            ev = future.result()
        except KilledWorker as exc:
            return _lost(job, "crashed", f"dask worker died: {_first_line(exc)}", device=self.device,
                         timeout_s=timeout_s, wall_time_s=elapsed_s)
        except Exception as exc:  # noqa: BLE001
            # The task turns its own exceptions into "failed" records, so what arrives here
            # is the cluster's (lost connection, cancelled, lost data): not the genome's
            # fault, hence "crashed", which is retried a bounded number of times.
            return _lost(job, "crashed", f"dask: {type(exc).__name__}: {_first_line(exc)}",
                         device=self.device, timeout_s=timeout_s, wall_time_s=elapsed_s)
        return _settle(ev, job)

    def close(self):
        self.client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
