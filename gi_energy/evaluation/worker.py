"""What runs inside a worker process: one (genome, repeat) -> one Evaluation.

The dataset (as device tensors) and the meter are made once per process and reused by
every evaluation the process runs; they are cached by their frozen configs, the only
state this module keeps besides one lock.

An exception never leaves :func:`evaluate_task`; it becomes an Evaluation, so a worker
pool never sees a task error. Which status says whose fault it was:

* "crashed" for faults of the machine, not the genome (:func:`is_transient`): a meter
  error (a counter that could not be read, a vendor library error), CUDA running out of
  memory (other processes share the GPU), a result that could not be (un)pickled, a
  task or data file edited since the run started that this process has not loaded (a
  SourceChanged: the run's key names the old version). The evaluator retries these a
  bounded number of times. After a meter error the process's
  cached meter is closed and dropped, so the next evaluation starts with a fresh one.
* "failed" for everything else: a bad genome config, an exception from the model or the
  training code. Deterministic, never retried.

A worker that dies, or runs past its timeout, is the evaluator's to record (see
runners.py). A worker whose parent dies (kill -9, a crash) ends too: see
:mod:`.parent_death`.

One evaluation at a time per process: a dask worker runs tasks on several threads of one
process, and those would share the process's meter (which allows one open window), torch's
global seed and its process-wide thread count. So every evaluation holds a process lock
from start to end; tasks in one process would contend for the same cores anyway. Torch
threads on a dask worker come from that worker's own ``nthreads`` (unless
``threads_per_worker`` is configured), not from this machine's cores // workers.
"""

from __future__ import annotations

import functools
import pickle
import sys
import threading
import time
import traceback

import torch

from gi_energy.config.genome import Genome
from gi_energy.config.problem import EnergyConfig, Problem
from gi_energy.config.sources import Pins, SourceChanged, still_all
from gi_energy.config.versioned import VersionedCache
from gi_energy.errors import MeterError
from gi_energy.tasks.base import TaskError
from gi_energy.tasks.loader import task_from
from gi_energy.tasks.results import Evaluation
from gi_energy.tasks.run import run_task, worker_label
from gi_energy.tasks.training import configure_determinism, resolve_device, threads_per_worker

# Held around each whole evaluation (see the module docstring).
_EVALUATION_LOCK = threading.Lock()


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a fault of the machine rather than of the genome: status
    "crashed" (retried a bounded number of times), not "failed" (see the module docstring)."""
    return isinstance(exc, (MeterError, torch.cuda.OutOfMemoryError, pickle.PicklingError,
                            pickle.UnpicklingError, SourceChanged))


def dask_worker_threads() -> int | None:
    """The ``nthreads`` of the dask worker running this code, None outside a dask worker."""
    if "distributed" not in sys.modules:  # never import dask into a loky worker
        return None
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return None


def worker_threads(problem: Problem) -> int:
    """Torch intra-op threads for an evaluation in this process (see the module docstring)."""
    return threads_per_worker(problem.evaluation, worker_threads=dask_worker_threads())


def task_data(task_config, family: str, source: str, dataset_config, seed: int, device: str,
              pinned: Pins | None = None):
    """What the problem's task reads as ``trial.data``: the dataset's splits, loaded once
    per process and (task, dataset, seed, device), then given to :meth:`Task.prepare` (the
    built-in tasks put them on ``device`` and warm torch up, so the first evaluation's
    windows are not charged for it). ``pinned``: the run's sources; the task and the data
    are those versions (a data file edited since, and not loaded here before, is a
    SourceChanged), or without pins the files on disk now (see
    :mod:`gi_energy.config.userfile`)."""
    from gi_energy.problems.datasets import dataset_stamp

    pinned = pinned or Pins()
    task = task_from(task_config, family, source, pinned.task)
    stamp = dataset_stamp(dataset_config) if pinned.dataset is None else tuple(s[3] for s in pinned.dataset)
    return _PREPARED.get((task_config, family, source, dataset_config, seed, device), (_Same(task), stamp),
                         lambda: _prepared(task, source, dataset_config, seed, device, pinned.dataset))


class _Same:
    """A task compared by identity (a user's task may define == or be unhashable)."""

    __slots__ = ("task",)

    def __init__(self, task):
        self.task = task

    def __hash__(self) -> int:
        return id(self.task)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.task is self.task


# What each (task, dataset, seed, device) prepared, for its task's and data's latest version.
_PREPARED = VersionedCache(4)


def _prepared(task, source: str, dataset_config, seed: int, device: str, pinned):
    from gi_energy.problems.datasets import load_dataset

    still_all(pinned, "the dataset's file", "the dataset loader's helper")  # the run's data, or none
    dataset = load_dataset(dataset_config, seed, source)
    try:
        return task.prepare(dataset, device)
    except Exception as exc:  # noqa: BLE001 - said as the task's, wherever it surfaces
        if is_transient(exc):  # a machine fault (CUDA out of memory, a meter): crashed and retried, as anywhere
            raise
        # It surfaces as a worker that failed to start (or every evaluation failing): its
        # own message alone ("'label'" for a KeyError) would not say where it came from.
        raise TaskError(f"{type(task).__name__}.prepare() raised {type(exc).__name__}: {exc}"
                        f"{_where(exc)}") from exc


def _where(exc: BaseException) -> str:
    """`` (at file.py:12)``: the line that raised ``exc``, or "" without a traceback."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    return f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""


def _data(problem: Problem, device: str):
    return task_data(problem.task, problem.model.family, problem.source, problem.dataset,
                     problem.evaluation.seed, device, problem.pinned)


@functools.lru_cache(maxsize=4)
def worker_meter(energy: EnergyConfig, device: str):
    """The process's meter for ``energy`` on ``device``, created once."""
    from gi_energy.meters import create_meter

    sync = torch.cuda.synchronize if device == "cuda" else None
    return create_meter(energy, device=device, cuda_sync=sync)


def prepare(problem: Problem) -> tuple[object, object]:
    """Set this process's threads and load its dataset and meter (cached): the work a new
    worker does once, before any evaluation's clock starts. Returns (data, meter)."""
    device = resolve_device(problem.evaluation.device)
    configure_determinism(device)  # before the first CUDA use (cuBLAS reads its env then)
    torch.set_num_threads(worker_threads(problem))
    data = _data(problem, device)
    return data, worker_meter(problem.energy, device)


def run_evaluation(problem: Problem, genome: Genome, repeat: int, meter=None) -> Evaluation:
    """Evaluate one repeat with ``meter`` (default: this process's cached meter).

    Never raises: an exception becomes status "crashed" (a machine fault) or "failed" (the
    genome's), with the exception as reason. Holds the process's evaluation lock throughout (see the module docstring).
    """
    with _EVALUATION_LOCK:
        return _run_evaluation(problem, genome, repeat, meter)


def _run_evaluation(problem: Problem, genome: Genome, repeat: int, meter) -> Evaluation:
    start = time.perf_counter()
    device = "cpu"
    cached_meter = meter is None
    try:
        device = resolve_device(problem.evaluation.device)
        if meter is None:
            data, meter = prepare(problem)
        else:
            configure_determinism(device)
            torch.set_num_threads(worker_threads(problem))
            data = _data(problem, device)
        task = task_from(problem.task, problem.model.family, problem.source, problem.pinned.task)
        return run_task(task, problem, genome, repeat, data=data, meter=meter, device=device)
    except Exception as exc:  # noqa: BLE001 - every failure is data for the search
        # A TaskError says what the task did wrong; the line of gi-energy's that noticed it is no help.
        where = "" if isinstance(exc, TaskError) else _where(exc)
        transient = is_transient(exc)
        if transient:
            _recover(exc, meter if cached_meter else None)
        # A task that raised after its training window still spent that energy: a failed
        # evaluation keeps the readings it took (a crash's meter is not to be trusted).
        train, train_s, inference = (None, None, None) if transient else getattr(exc, "gi_energy_readings",
                                                                                 (None, None, None))
        return Evaluation(genome=genome, status="crashed" if transient else "failed", repeat=repeat,
                          reason=f"{type(exc).__name__}: {exc}{where}", train=train, train_time_s=train_s,
                          inference=inference,
                          wall_time_s=time.perf_counter() - start, device=device, worker=worker_label())


def _recover(exc: BaseException, cached_meter) -> None:
    """Leave the process fit for its next evaluation after a transient fault."""
    if isinstance(exc, MeterError) and cached_meter is not None:
        # The meter may be stuck (a window left open, a lost vendor handle): make a new one.
        worker_meter.cache_clear()
        try:
            cached_meter.close()
        except Exception:  # noqa: BLE001, S110 - best effort; the meter is dropped anyway
            pass
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()


def evaluate_task(problem: Problem, genome: Genome, repeat: int) -> Evaluation:
    """The default task an Evaluator submits to its workers."""
    return run_evaluation(problem, genome, repeat)
