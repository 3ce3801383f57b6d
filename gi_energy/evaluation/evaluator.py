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

Several processes may share one store (two runs, a grid and an evolve). Before training,
the evaluator claims each (genome, repeat) it is missing (:meth:`Store.claim`: a lease with
this process's pid, host and a heartbeat). One that another live process has claimed is
not trained again: the evaluator waits for that result and reports it as a store hit. A
claim whose owner died (kill -9) or stopped beating is taken over. A result is stored
once and never replaced (see :mod:`.store`); should two processes still both train one
configuration (a claim taken over from a process that was only stopped), the one stored
first is the result both report.

The worker processes are :mod:`.runners`; what is retried, and how often, is
:mod:`.attempts`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gi_energy.config.genome import Genome
from gi_energy.config.problem import Problem
from gi_energy.errors import GiEnergyError
from gi_energy.tasks.loader import bound
from gi_energy.tasks.results import Evaluation, Outcome
from gi_energy.tasks.training import resolve_device

from .attempts import Job, counts_attempts, should_retry
from .dask_runner import DaskRunner
from .leases import Heartbeat, LeaseOwner
from .runners import LokyRunner, Runner, Task
from .store import Store
from .worker import evaluate_task

OnResult = Callable[[Evaluation, bool], None]
# How often to look for the result of a configuration another process is training.
WAIT_POLL_S = 0.25


def evaluation_context(problem: Problem, threads: int | str | None = None) -> str:
    """The measurement-setup part of the store key, e.g. "cpu/estimate:10W/t2@lab-3".

    See the module docstring for its form. Evaluations under different devices, meters,
    thread counts or machines are different evidence and are stored apart. An estimate
    carries its watts per core (its readings scale with it); a measured RAPL reading
    under cpu-share attribution is marked, since it is apportioned. ``threads`` defaults
    to what a local worker uses (:func:`gi_energy.tasks.training.threads_per_worker`).
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
    the workers (default :func:`gi_energy.evaluation.worker.evaluate_task`); it must be picklable and
    is injectable for tests and for research code that evaluates differently.
    """

    def __init__(self, problem: Problem, store: Store | None = None, *, workers: int | None = None,
                 task: Task = evaluate_task):
        if workers is not None:
            if workers < 1:
                raise GiEnergyError(f"workers must be >= 1, got {workers}")
            problem = problem.with_overrides(evaluation={"workers": int(workers)})
        problem = bound(problem)  # a user's task: imported and checked (unless the run did), by name in each worker
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
        self._runner: Runner | None = None
        self.trained = 0  # evaluations run on workers (not served from the store)
        # Who this evaluator is in the store's leases (see evaluate()).
        self.owner = LeaseOwner.this_process()

    # ------------------------------------------------------------------ public

    @property
    def context(self) -> str:
        """The store key's measurement setup (see the module docstring). On dask it follows
        the cluster's thread counts, asked each time (workers come and go); each result is
        stored under the threads it ran with (:meth:`_ran_under`)."""
        if self._follows_cluster():
            threads = self._runner_for().worker_threads() or _threads(self.problem)
            return _context(self.device, self._meter_label, threads)
        if self._context is None:
            self._context = _context(self.device, self._meter_label, _threads(self.problem))
        return self._context

    def _follows_cluster(self) -> bool:
        ev = self.problem.evaluation
        return ev.backend == "dask" and not ev.threads_per_worker

    def _ran_under(self, ev: Evaluation) -> str:
        """The context ``ev`` was measured in: on dask, with the torch threads its worker
        used (the task records them); else :attr:`context`."""
        threads = ev.extra.get("threads")
        if self._follows_cluster() and threads:
            return _context(self.device, self._meter_label, int(threads))
        return self.context

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
        genome_of = {g.key: g for g in unique}
        wanted: list[tuple[str, int]] = []
        for genome in unique:
            for repeat in range(repeats):
                ev = known.get((genome.key, repeat))
                if ev is not None and not should_retry(ev, timeout_s):
                    results[(genome.key, repeat)] = ev
                    if on_result is not None:
                        on_result(ev, True)
                else:
                    wanted.append((genome.key, repeat))
        heartbeat = None
        try:
            while wanted:
                stored, claimed, held = self._claim(wanted)
                for item, ev in stored.items():  # another process finished it meanwhile
                    results[item] = ev
                    if on_result is not None:
                        on_result(ev, True)
                if claimed and heartbeat is None and self.store is not None:
                    heartbeat = Heartbeat(lambda: self.store.heartbeat(self.owner))
                jobs = [Job(genome_of[k], r, int(ev.extra.get("attempts", 1)) if ev is not None
                            and counts_attempts(ev) else 0) for (k, r), ev in claimed.items()]
                if jobs:
                    self._run_jobs(jobs, timeout_s, results, trained_keys, on_result)
                elif held:
                    time.sleep(WAIT_POLL_S)  # another process trains them: wait for its results
                wanted = held
        finally:
            if heartbeat is not None:  # there were claims (a store, something to train)
                heartbeat.stop()
                # Claims not stored (Ctrl-C, an error in on_result) go back at once; a
                # process killed outright leaves them to be found stale.
                self.store.release(self.owner)
        outcomes = {
            g.key: Outcome(g, tuple(results[(g.key, r)] for r in range(repeats)),
                           cached=g.key not in trained_keys)
            for g in unique
        }
        return [outcomes[g.key] for g in genomes]

    def _run_jobs(self, jobs: list[Job], timeout_s: float, results: dict, trained_keys: set[str],
                  on_result: OnResult | None) -> None:
        # Longest expected first: a generation waits for its slowest evaluation, and
        # starting the long ones early keeps both workers busy to the end (LPT order).
        jobs.sort(key=lambda j: expected_cost(j.genome), reverse=True)
        stream = self._runner_for().run(jobs, self.task, self.problem, timeout_s)
        try:
            for ev in stream:
                self.trained += 1
                # What the store holds afterwards: this result, or one that another
                # process stored first (a lease taken over as stale), which stays.
                ev = self._record(ev)
                results[(ev.key, ev.repeat)] = ev
                trained_keys.add(ev.key)
                if on_result is not None:
                    on_result(ev, False)
        finally:
            # If on_result raised (or Ctrl-C), stop the tasks still running now rather
            # than whenever the generator is garbage-collected.
            stream.close()

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

    def _claim(self, items: list[tuple[str, int]]):
        """(stored, claimed, held) of :meth:`Store.claim`; without a store all are ours."""
        timeout_s = self.problem.evaluation.timeout_s
        if self.store is None:
            return {}, {item: self._memo.get(item) for item in items}, []
        return self.store.claim(self.fingerprint, self.context, items, self.owner,
                                lambda ev: should_retry(ev, timeout_s))

    def _record(self, ev: Evaluation) -> Evaluation:
        if self.store is None:
            self._memo[(ev.key, ev.repeat)] = ev
            return ev
        return self.store.put(self.fingerprint, self._ran_under(ev), ev, owner=self.owner)

    def _runner_for(self) -> Runner:
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
