"""The Dask runner: evaluation jobs as futures on a ``dask.distributed`` cluster (the
module docstring of :mod:`.runners` says how it differs from the loky slots).

The scheduler and its workers are trusted: they run whatever code the client sends,
gi-energy's own included. Only name a scheduler you control in a problem file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from concurrent.futures import CancelledError

from gi_energy.config.genome import Genome
from gi_energy.config.problem import Problem
from gi_energy.errors import GiEnergyError, RunInterrupted, first_line
from gi_energy.tasks.results import Evaluation

from .attempts import lost, settle
from .runners import Runner, Task, check_data


class DaskRunner(Runner):
    """Futures on a dask.distributed cluster (see the module docstring).

    A task's timeout clock starts when a worker starts it: the task announces its start
    (:func:`_announced`, a dask event) and the client starts the clock when it sees that,
    not at submission (with no worker, nothing runs and no clock runs; a task a worker
    received but has not begun, as one still starting up, has no clock either). A task
    started again elsewhere (its worker died) restarts its clock. Losing the scheduler raises
    :class:`RunInterrupted` (one line; the run is resumable). The scheduler is trusted:
    it and its workers run whatever code the client sends, gi-energy's included.
    """

    # distributed logs a lost scheduler connection as tracebacks at ERROR; the run says it
    # in one line instead (RunInterrupted), so these loggers are quieted while we hold a client.
    QUIET_LOGGERS = ("distributed.client", "distributed.comm", "distributed.core", "distributed.batched")

    def __init__(self, scheduler: str | None, *, device: str):
        try:
            from distributed import Client
        except ImportError as exc:
            raise GiEnergyError('backend = "dask" needs the dask extra: pip install '
                                '"gi-energy[dask]"') from exc
        if not scheduler:
            raise GiEnergyError('backend = "dask" needs scheduler = "tcp://host:port"')
        self.device = device
        self.scheduler = scheduler
        self._levels = {name: logging.getLogger(name).level for name in self.QUIET_LOGGERS}
        try:
            # The connect (and reconnect) timeout is dask's own setting:
            # distributed.comm.timeouts.connect, 30 s unless configured.
            self.client = Client(scheduler)
        except OSError as exc:
            raise GiEnergyError(f"cannot reach the dask scheduler {scheduler}: {exc}") from exc
        for name in self.QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def worker_threads(self) -> str | None:
        """The workers' ``nthreads`` (torch threads per evaluation, see worker.py): "2", or
        "1-4" when they differ; None while the cluster has no workers. Asked of the
        scheduler each time: workers come and go."""
        counts = sorted(set(self._ask(self.client.nthreads).values()))
        if not counts:
            return None
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    def _capacity(self) -> int:
        # One per worker process, not per thread: a process runs one evaluation at a time
        # (worker.py), so a second task there would only wait, with its clock running.
        return max(1, len(self._ask(self.client.nthreads)))

    def _ask(self, call, *args, **kwargs):
        """A call to the scheduler; a lost scheduler becomes RunInterrupted."""
        try:
            return call(*args, **kwargs)
        except (OSError, CancelledError) as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> BaseException:
        if self.client.status == "running" and not isinstance(exc, OSError):
            return exc
        return RunInterrupted(f"lost the dask scheduler {self.scheduler} ({type(exc).__name__}: "
                              f"{first_line(exc)}); finished evaluations are stored: resume the run "
                              "when the scheduler is back")

    def run(self, jobs, task, problem, timeout_s):
        from distributed import wait as dask_wait

        check_data(problem)
        pending = deque(jobs)
        # future -> [job, submitted_s, started_s (None until a worker starts it), its start event's stamp]
        running: dict = {}
        try:
            while pending or running:
                capacity = self._capacity()
                while pending and len(running) < capacity:
                    job = pending.popleft()
                    future = self._ask(self.client.submit, _announced, task, problem, job.genome, job.repeat,
                                       pure=False)
                    running[future] = [job, time.monotonic(), None, None]
                self._clock(running)
                started = [s for _, _, s, _ in running.values() if s is not None]
                next_deadline = min(started) + timeout_s if started else math.inf
                try:
                    dask_wait(list(running), timeout=max(0.01, min(next_deadline - time.monotonic(), 1.0)),
                              return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
                except (OSError, CancelledError) as exc:
                    raise self._lost(exc) from None
                now = time.monotonic()
                for future in list(running):
                    job, submitted, start, _ = running[future]
                    if future.done():
                        del running[future]
                        yield self._result(future, job, now - (start or submitted), timeout_s)
                    elif start is not None and now - start >= timeout_s:
                        del running[future]
                        future.cancel()
                        yield lost(job, "timeout", f"no result after {timeout_s:g} s on a worker; dask task "
                                    "cancelled (a running dask task cannot be stopped)",
                                    device=self.device, timeout_s=timeout_s, wall_time_s=now - start)
        finally:
            for future in running:
                with contextlib.suppress(Exception):
                    future.cancel()

    def _clock(self, running: dict) -> None:
        """Start the clock of each task whose start a worker announced since the last look
        (again if it started again: its first worker died)."""
        if not running:
            return
        events = self._ask(self.client.get_events, START_TOPIC)
        latest: dict = {}
        for stamp, key in events:
            latest[key] = max(stamp, latest.get(key, stamp))
        now = time.monotonic()
        for future, entry in running.items():
            stamp = latest.get(future.key)
            if stamp is not None and stamp != entry[3]:
                entry[2], entry[3] = now, stamp

    def _result(self, future, job, elapsed_s, timeout_s) -> Evaluation:
        from distributed.scheduler import KilledWorker

        try:
            ev = future.result()
        except KilledWorker as exc:
            return lost(job, "crashed", f"dask worker died: {first_line(exc)}", device=self.device,
                         timeout_s=timeout_s, wall_time_s=elapsed_s)
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, (OSError, CancelledError)) and self.client.status != "running":
                raise self._lost(exc) from None
            # The task turns its own exceptions into "failed" records, so what arrives here
            # is the cluster's (lost connection, cancelled, lost data): not the genome's
            # fault, hence "crashed", which is retried a bounded number of times.
            return lost(job, "crashed", f"dask: {type(exc).__name__}: {first_line(exc)}",
                         device=self.device, timeout_s=timeout_s, wall_time_s=elapsed_s)
        return settle(ev, job)

    def close(self):
        try:
            # A lost scheduler must not hold the exit up for the client's default 30 s.
            with contextlib.suppress(Exception):
                self.client.close(timeout=5 if self.client.status == "running" else 1)
        finally:
            for name, level in self._levels.items():
                logging.getLogger(name).setLevel(level)


# The dask event topic on which a task says it has started (see DaskRunner).
START_TOPIC = "gi-energy-task-start"


def _announced(task: Task, problem: Problem, genome: Genome, repeat: int) -> Evaluation:
    """Run on a dask worker: announce this task's start (its timeout clock starts now),
    then run ``task``."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(START_TOPIC, worker.get_current_task())
    return task(problem, genome, repeat)
