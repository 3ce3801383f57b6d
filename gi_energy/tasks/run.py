"""One (genome, repeat) through a task: seeding, the trial's meter windows, and the
Evaluation that records what happened.

What a task returns is checked here: numbers only; the built-in names (``accuracy`` is
validation accuracy, ``test_accuracy``, ``params``, ``flops_per_sample``) fill their own
fields, every other declared name is kept under its own name; gi-energy's measurements
(energy, times) cannot be reported by a task. A metric that is not finite is status
``nan``, as a diverged training is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import time
from collections.abc import Mapping

import torch

from gi_energy.config.custom import MEASURED_METRICS
from gi_energy.config.genome import Genome
from gi_energy.config.problem import EnergyConfig, Problem
from gi_energy.meters.reading import Reading

from .base import Diverged, Task, TaskError, Trial, is_bool
from .results import Evaluation, whole_or_float
from .training import configure_determinism, derive_seed

JOULES_PER_KWH = 3.6e6
_INT_FIELDS = {"params": "params", "flops_per_sample": "flops_per_sample"}
_FLOAT_FIELDS = {"accuracy": "val_accuracy", "test_accuracy": "test_accuracy"}
_RESERVED = ("train_energy_j", "inference_energy_j_per_1k", "train_time_s", "inference_time_s_per_1k",
             "inference_energy_j", "co2_g")


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def co2_grams(energy_j: float | None, energy: EnergyConfig) -> float | None:
    """Grams of CO2 for ``energy_j`` joules at the configured carbon intensity (g/kWh)."""
    if energy_j is None:
        return None
    return energy_j / JOULES_PER_KWH * energy.carbon_intensity_g_per_kwh


def run_task(task: Task, problem: Problem, genome: Genome, repeat: int, *, data, meter,
             device: str) -> Evaluation:
    """Evaluate one repeat of ``genome`` with ``task`` on this process's ``data`` and
    ``meter``. Returns status "ok" or "nan"; other exceptions propagate (the worker
    records them as "failed" or "crashed")."""
    wall_start = time.perf_counter()
    configure_determinism(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    seed = derive_seed(problem.evaluation.seed, repeat)
    trial = Trial(genome=genome, seed=seed, device=device, data=data, meter=meter,
                  min_inference_s=problem.evaluation.min_inference_s, sync=sync)
    cuda_devices = [torch.cuda.current_device()] if device == "cuda" else []
    diverged = None
    # Weight initialisation and dropout draw from torch's default generator; fork_rng
    # scopes the seeded state to this evaluation and gives the worker's state back after.
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        try:
            returned = task.run(trial)
        except Diverged as exc:
            diverged, returned = str(exc) or "training diverged", {}
        except Exception as exc:
            # The readings the task took before it raised are energy it spent: the worker
            # keeps them on the "failed" evaluation it makes of this exception.
            with contextlib.suppress(AttributeError):
                exc.gi_energy_readings = (trial.train_reading, trial.train_time_s, trial.inference_reading)
            raise
    fields, metrics, bad = _sort_metrics({**trial.metrics, **returned}, task)
    name = getattr(meter, "name", "unknown")
    if trial.train_reading is None:  # a task of the low-level form that never opened it
        trial.train_reading = Reading.missing_reading(name, "the task opened no training window")
    if trial.inference_reading is None and diverged is None and not bad:
        trial.inference_reading = Reading.missing_reading(name, "the task opened no inference window")
    extra = {**{k: float(v) for k, v in trial.extra.items()}, "threads": float(torch.get_num_threads())}
    common = dict(genome=genome, repeat=repeat, train=trial.train_reading, train_time_s=trial.train_time_s,
                  device=device, worker=worker_label(), extra=extra)
    # Every reading the task took counts, a "nan" evaluation's too: that energy was spent.
    taken = [r for r in (trial.train_reading, trial.inference_reading) if r is not None]
    spent = sum(r.energy_j for r in taken) if all(r.energy_j is not None for r in taken) else None
    measured = dict(inference=trial.inference_reading, inference_time_s=trial.inference_time_s,
                    inference_samples=trial.inference_samples, co2_g=co2_grams(spent, problem.energy),
                    metrics=metrics, **fields, **common)
    if diverged is not None or bad:
        # The metrics that were finite and the readings taken are kept: only the one that
        # was not finite (or all, when training diverged before evaluate()) is missing.
        return Evaluation(status="nan", reason=diverged or f"metric {bad} is not finite",
                          wall_time_s=time.perf_counter() - wall_start, **measured)
    ev = Evaluation(status="ok", wall_time_s=time.perf_counter() - wall_start, **measured)
    # An objective or constraint the task was to return and did not (a misspelt key) is
    # this evaluation's failure, said so, never an "ok" that silently leaves the front.
    # The energies gi-energy measures are not the task's to return: one missing is a
    # missing reading, and says so in its own reason.
    lacking = [name for name in (*problem.objectives, *problem.constraints)
               if name not in MEASURED_METRICS and ev.metric(name) is None]
    if lacking:
        return dataclasses.replace(ev, status="failed", reason=f"{type(task).__name__}.run() returned no "
                                   f"{lacking[0]!r}, which the problem's objectives or constraints name")
    return ev


def _sort_metrics(returned, task: Task) -> tuple[dict, dict, str | None]:
    """(Evaluation fields, the task's own metrics, the first metric that is not finite)."""
    if not isinstance(returned, Mapping):
        raise TaskError(f"{type(task).__name__}.run() must return a mapping of metric names to numbers, "
                        f"got {type(returned).__name__}")
    fields, metrics, bad = {}, {}, None
    declared = set(task.metrics)
    for name, value in returned.items():
        if name in _RESERVED:
            raise TaskError(f"{name!r} is measured by gi-energy around the task; a task cannot report it")
        if name not in declared and name not in _INT_FIELDS and name not in _FLOAT_FIELDS:
            raise TaskError(f"metric {name!r} is not declared: add it to {type(task).__name__}.metrics")
        if is_bool(value):  # True is no accuracy of 1.0, nor np.True_ one
            raise TaskError(f"metric {name!r} must be a number, got {type(value).__name__} {value!r}")
        if not isinstance(value, int | float):
            try:
                value = float(value)  # a numpy or torch scalar
            except (TypeError, ValueError):
                raise TaskError(f"metric {name!r} must be a number, got {type(value).__name__}") from None
        if not math.isfinite(float(value)):
            bad = bad or name
            continue
        if name in _INT_FIELDS:
            fields[_INT_FIELDS[name]] = whole_or_float(value)
        elif name in _FLOAT_FIELDS:
            fields[_FLOAT_FIELDS[name]] = float(value)
        else:
            metrics[name] = float(value)
    return fields, metrics, bad
