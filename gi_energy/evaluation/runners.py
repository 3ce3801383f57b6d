"""Worker processes that run evaluation jobs: loky slots on this machine, or a Dask
cluster.

Why not one ``joblib.Parallel`` call: a worker that dies (segfault, ``os._exit``, the OOM
killer) makes loky raise ``TerminatedWorkerError`` for the whole call and lose every other
result, and Parallel has no per-task timeout. Instead:

* loky (default): one single-process loky executor per worker slot. Each slot runs one
  task at a time, so when its process dies, only that task is "crashed", and a task past
  ``timeout_s`` is stopped by killing that slot's process alone; the slot then gets a
  fresh process. Other slots keep running. A slot's process is kept across tasks and
  batches, so its dataset and meter are loaded once.
* dask (:mod:`.dask_runner`): ``distributed.Client(scheduler)`` futures, at most as many
  in flight as the cluster has worker processes; a task's clock starts when a worker
  starts it (the task announces it; a cluster without workers runs no clock): a worker
  process runs one evaluation at a time (its threads would share one meter and torch's
  process-wide seed and thread count; see worker.py), and its ``nthreads`` become torch
  threads. A worker that dies is reported by the scheduler as ``KilledWorker`` (after its
  own retries): "crashed". A task past its timeout is recorded as "timeout" and
  cancelled, but see the known limitations. A lost scheduler is :class:`RunInterrupted`.
  The scheduler and its workers are trusted: they run the code the client sends.

Every loky worker process ends with its parent (:func:`.parent_death.die_with_parent`), so a
kill -9 of the main process leaves no worker behind.

Known limitations:

* Under ``attribution = "exclusive"`` (RAPL, NVML) a metered window waits for a
  cross-process lock while another worker's window is open, and that wait counts against
  ``timeout_s``: the clock runs from dispatch, not from the moment the window opens. With
  several workers on a metered machine, set ``timeout_s`` generously (several times one
  evaluation's expected time).
* On dask, a timed-out task is cancelled, but a dask worker cannot stop a running Python
  thread: the task keeps running on its worker thread until it ends, holding that
  process's evaluation lock (and cores), so the next task sent there waits behind it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

from gi_energy.config.genome import Genome
from gi_energy.config.problem import Problem
from gi_energy.errors import GiEnergyError, first_line
from gi_energy.tasks.results import Evaluation

from .attempts import Job, lost, settle

# A fresh worker process imports torch and loads the dataset before its clock starts;
# this bounds that start-up, separately from the evaluation timeout.
WORKER_START_TIMEOUT_S = 300.0


Task = Callable[[Problem, Genome, int], Evaluation]


class Runner:
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


def check_data(problem: Problem) -> None:
    """Refuse bad data (a ProblemError: the user's input) in this process, before any
    worker starts: in a worker it would fail every genome, or every worker's start."""
    from gi_energy.problems.datasets import check_dataset

    check_dataset(problem.dataset, problem.evaluation.seed, problem.source)  # errors name the problem file


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
        from .parent_death import die_with_parent

        # The process dies with this one (see parent_death.py); the kernel's
        # parent-death signal follows the forking thread, so only when that is the main one.
        watch = (os.getpid(), threading.current_thread() is threading.main_thread())
        self.executor = ProcessPoolExecutor(max_workers=1, env=env, initializer=die_with_parent, initargs=watch)
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


class LokyRunner(Runner):
    """A fixed number of single-process loky slots (see the module docstring)."""

    def __init__(self, workers: int, *, device: str, threads: int):
        self.workers = int(workers)
        self.device = device
        self.threads = threads
        self._slots: list[_Slot] = []
        self._problem: Problem | None = None

    def _fresh_slots(self, problem: Problem):
        if not self._slots:
            check_data(problem)
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
            # slots, so stop them; the next call starts fresh slots (not now: a Ctrl-C or
            # SIGTERM is on its way out, and a new process would only delay it).
            for slot in list(self._slots):
                if slot.job is not None:
                    slot.kill()
                    self._slots.remove(slot)

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
                yield lost(job, "timeout", f"no result after {timeout_s:g} s; worker process killed",
                            device=self.device, timeout_s=timeout_s, wall_time_s=elapsed_s, worker=worker)

    def _result(self, slot, job, future, elapsed_s, timeout_s, worker) -> Evaluation:
        from joblib.externals.loky.process_executor import BrokenProcessPool

        from .worker import is_transient

        try:
            ev = future.result()
        except BrokenProcessPool as exc:
            # loky also reports a result that failed to unpickle here ("un-serialize").
            what = "result could not be unpickled" if "un-serialize" in str(exc) else "worker process died"
            return lost(job, "crashed", f"{what}: {first_line(exc)}", device=self.device,
                         timeout_s=timeout_s, wall_time_s=elapsed_s, worker=worker)
        except Exception as exc:  # noqa: BLE001
            # The default task never raises; a custom task's own exception is the genome's
            # ("failed"), a (un)pickling error or a meter error the machine's ("crashed").
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            if is_transient(exc):
                return lost(job, "crashed", reason, device=self.device, timeout_s=timeout_s,
                             wall_time_s=elapsed_s, worker=worker)
            return Evaluation(genome=job.genome, status="failed", repeat=job.repeat, reason=reason,
                              wall_time_s=elapsed_s, device=self.device, worker=worker)
        except KeyboardInterrupt:
            # A Ctrl-C reached the workers too (the terminal signals the whole group): this
            # process stops as interrupted, even where its own SIGINT fell inside a finalizer
            # and was lost. (A task raising KeyboardInterrupt itself is taken for one as well.)
            raise
        except BaseException as exc:  # noqa: BLE001
            # SystemExit raised in the worker (a task's own sys.exit()): it ends that
            # evaluation, never this process. "crashed", as a worker that died (tried
            # again), never the genome's own "failed".
            said = str(exc).strip()
            return lost(job, "crashed", f"{type(exc).__name__} raised in the worker" + (f": {said}" if said else ""),
                        device=self.device, timeout_s=timeout_s, wall_time_s=elapsed_s, worker=worker)
        return settle(ev, job)

    def close(self):
        for slot in self._slots:
            # A slot still starting (or busy) is killed: waiting for its warm-up would only
            # delay the exit.
            slot.executor.shutdown(wait=True, kill_workers=slot.job is not None or slot.pid is None)
        self._slots = []


