"""One attempt at one (genome, repeat): the job, the record of an attempt that gave no
result, and when a stored evaluation is tried again.

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

In the store, a result is never replaced: only a retryable record (timeout, crashed, a
missing reading) gives way to a later attempt of the same (genome, repeat), and the record
it replaces moves to the store's attempt history (:func:`supersedes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from gi_energy.config.genome import Genome
from gi_energy.tasks.results import Evaluation

MAX_CRASH_ATTEMPTS = 2


@dataclass(frozen=True)
class Job:
    """One repeat of one genome to run; ``attempts`` counts earlier crashes of it."""

    genome: Genome
    repeat: int
    attempts: int = 0


def missing_reading(evaluation: Evaluation) -> bool:
    """Whether an evaluation lacks its training or inference energy reading."""
    return any(r is None or r.missing for r in (evaluation.train, evaluation.inference))


def counts_attempts(evaluation: Evaluation) -> bool:
    """Whether an evaluation is retried on the bounded attempts counter."""
    return evaluation.status == "crashed" or (evaluation.status == "ok" and missing_reading(evaluation))


def should_retry(evaluation: Evaluation, timeout_s: float) -> bool:
    """Whether a stored evaluation is to be run again (see the module docstring)."""
    if evaluation.status == "timeout":
        return timeout_s > float(evaluation.extra.get("timeout_s", math.inf))
    if counts_attempts(evaluation):
        return int(evaluation.extra.get("attempts", 1)) < MAX_CRASH_ATTEMPTS
    return False


def retryable(evaluation: Evaluation) -> bool:
    """Whether a stored evaluation is a record that a later attempt may take the place
    of: a timeout, a crash, an ok evaluation with a missing reading. Every other result
    ("ok" with its readings, "failed", "nan") is final and never replaced."""
    return evaluation.status == "timeout" or counts_attempts(evaluation)


def supersedes(new: Evaluation, old: Evaluation) -> bool:
    """Whether the store may put ``new`` in the place of the stored ``old`` of the same
    (genome, repeat): ``old`` is retryable and ``new`` is a later attempt -- a counted
    attempt must carry a higher count, a timeout a longer ``timeout_s``. The store keeps
    ``old`` in its attempt history; it is never lost."""
    if not retryable(old):
        return False
    if new.status == "timeout" and old.status == "timeout":
        return float(new.extra.get("timeout_s", 0.0)) > float(old.extra.get("timeout_s", math.inf))
    if counts_attempts(new) and counts_attempts(old):
        return int(new.extra.get("attempts", 1)) > int(old.extra.get("attempts", 1))
    return True


def settle(ev: Evaluation, job: Job) -> Evaluation:
    """A worker's Evaluation for ``job``: its repeat, and the attempt it was (if counted)."""
    if ev.repeat != job.repeat:
        ev = replace(ev, repeat=job.repeat)
    if counts_attempts(ev):
        ev = replace(ev, extra={**ev.extra, "attempts": float(job.attempts + 1)})
    return ev


def lost(job: Job, status: str, reason: str, *, device: str, timeout_s: float, wall_time_s: float,
          worker: str = "") -> Evaluation:
    """The record of a task whose worker gave no result (timeout or crash)."""
    extra = {"attempts": float(job.attempts + 1)}
    if status == "timeout":
        extra["timeout_s"] = float(timeout_s)
    return Evaluation(genome=job.genome, status=status, repeat=job.repeat, reason=reason,
                      wall_time_s=wall_time_s, device=device, worker=worker, extra=extra)
