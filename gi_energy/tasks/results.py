"""The result of evaluating one genome: accuracy, energy readings, times and sizes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading

STATUSES = ("ok", "failed", "nan", "timeout", "crashed", "missing")  # missing: not in a [table]


# evaluations.csv columns after the readable genome columns (and the task's own metrics,
# each under its own name). The *_json columns carry what a flat cell cannot (genome,
# full readings, the task's metrics) so an Evaluation rebuilds exactly. Validation
# accuracy is "val_accuracy" (the objective "accuracy"); files written before the rename
# call it "accuracy" and still read.
METRIC_COLUMNS = (
    "repeat", "status", "reason", "val_accuracy", "test_accuracy",
    "train_energy_j", "inference_energy_j", "inference_energy_j_per_1k", "energy_spent_j",
    "train_backend", "train_scope", "train_measured",
    "inference_backend", "inference_scope", "inference_measured",
    "train_time_s", "inference_time_s", "inference_samples", "wall_time_s",
    "params", "flops_per_sample", "co2_g", "device", "worker", "cached", "spent",
    "genome_json", "train_json", "inference_json", "extra_json", "metrics_json",
)
# Every column evaluations.csv and front.csv write themselves (beside the genome's and the
# task's metrics): no configuration value or metric of a user's may take one of these names.
FILE_COLUMNS = frozenset({"index", "key", *METRIC_COLUMNS, "train_source", "inference_source", "measured",
                          "repeats"})


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of one genome (one repeat).

    ``status`` is "ok" or why not (failed = exception, nan = diverged loss, timeout,
    crashed = the worker died); ``reason`` says more. A failed evaluation has no
    objectives and never enters a front.
    """

    genome: Genome
    status: str
    repeat: int = 0
    reason: str | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    train: Reading | None = None
    inference: Reading | None = None
    train_time_s: float | None = None
    inference_time_s: float | None = None
    inference_samples: int | None = None
    params: int | float | None = None  # a count; a float where a table gives one (millions)
    flops_per_sample: int | float | None = None
    co2_g: float | None = None
    wall_time_s: float | None = None
    device: str = "cpu"
    worker: str = ""
    extra: Mapping[str, float] = field(default_factory=dict)
    # Metrics a task of the user's own returned, by the names it gave them.
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.genome.key

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def train_energy_j(self) -> float | None:
        return None if self.train is None else self.train.energy_j

    @property
    def inference_energy_j_per_1k(self) -> float | None:
        if self.inference is None or self.inference.energy_j is None or not self.inference_samples:
            return None
        return self.inference.energy_j * 1000.0 / self.inference_samples

    @property
    def inference_time_s_per_1k(self) -> float | None:
        if self.inference_time_s is None or not self.inference_samples:
            return None
        return self.inference_time_s * 1000.0 / self.inference_samples

    @property
    def energy_spent_j(self) -> float | None:
        """Energy this evaluation cost (training plus inference windows), None if unknown."""
        parts = [r.energy_j for r in (self.train, self.inference) if r is not None]
        if not parts or any(p is None for p in parts):
            return None
        return float(sum(parts))

    @property
    def measured(self) -> bool:
        """Every energy reading this evaluation has is measured (and it has one). A window
        it never had (a table with one energy column) is not a missing reading; a reading
        that failed (Reading.missing_reading) is, and is never measured."""
        readings = [r for r in (self.train, self.inference) if r is not None]
        return bool(readings) and all(r.measured for r in readings)

    def metric(self, name: str) -> float | None:
        """A metric by the name used in [objectives] / [constraints]: a built-in one, else
        one the task returned; None if missing."""
        getter = BUILTIN_METRICS.get(name)
        value = getter(self) if getter is not None else self.metrics.get(name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return None
        return float(value)

    def to_dict(self, *, genome: bool = True, readings: bool = True) -> dict:
        """Every field as plain data, in field order (``genome`` first). ``genome=False`` /
        ``readings=False`` leave the genome / the train and inference readings out (a
        caller that has their JSON already: :meth:`Genome.to_json`, :meth:`Reading.to_json`)."""
        # Field by field, not asdict(): every nested value is converted below, and asdict's
        # deep copy was the largest cost of a replay's checkpoints.
        d = {name: getattr(self, name) for name in _EVALUATION_FIELDS}
        if genome:
            d["genome"] = self.genome.to_dict()
        else:
            del d["genome"]
        if readings:
            d["train"] = None if self.train is None else self.train.to_dict()
            d["inference"] = None if self.inference is None else self.inference.to_dict()
        else:
            del d["train"], d["inference"]
        d["extra"] = dict(self.extra)
        d["metrics"] = dict(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Evaluation:
        d = dict(d)
        d["genome"] = Genome.from_dict(d["genome"])
        d["train"] = None if d.get("train") is None else Reading.from_dict(d["train"])
        d["inference"] = None if d.get("inference") is None else Reading.from_dict(d["inference"])
        d["extra"] = dict(d.get("extra") or {})
        d["metrics"] = dict(d.get("metrics") or {})
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Evaluation:
        return cls.from_dict(json.loads(text))


_EVALUATION_FIELDS = tuple(f.name for f in fields(Evaluation))

# The metrics every evaluation has, by the names problem files use.
BUILTIN_METRICS = {
    "accuracy": lambda e: e.val_accuracy,
    "test_accuracy": lambda e: e.test_accuracy,
    "train_energy_j": lambda e: e.train_energy_j,
    "inference_energy_j_per_1k": lambda e: e.inference_energy_j_per_1k,
    "train_time_s": lambda e: e.train_time_s,
    "inference_time_s_per_1k": lambda e: e.inference_time_s_per_1k,
    "params": lambda e: e.params,
    "flops_per_sample": lambda e: e.flops_per_sample,
}


def objective_vector(source: Evaluation | Outcome, objectives: Mapping[str, str]) -> tuple[float, ...] | None:
    """Objectives as a minimisation vector (maximised ones negated); None if any is missing.

    ``source`` is anything with ``metric(name)``: one Evaluation, or an Outcome (medians).
    """
    out = []
    for name, direction in objectives.items():
        v = source.metric(name)
        if v is None:
            return None
        out.append(-v if direction == "max" else v)
    return tuple(out)


@dataclass(frozen=True)
class Outcome:
    """Every repeat of one genome, as the search sees it.

    Metrics are the median over repeats; ``spread`` is the interquartile range.
    ``cached`` is True when no repeat was trained in this call (all came from the store),
    so no energy was spent on it now.
    """

    genome: Genome
    evaluations: tuple[Evaluation, ...]
    cached: bool = False

    @property
    def key(self) -> str:
        return self.genome.key

    @property
    def ok(self) -> bool:
        ok = self.__dict__.get("_ok")
        if ok is None:  # the evaluations never change: worked out once (compare asks ~10x each)
            ok = bool(self.evaluations) and all(e.ok for e in self.evaluations)
            object.__setattr__(self, "_ok", ok)
        return ok

    @property
    def status(self) -> str:
        bad = [e for e in self.evaluations if not e.ok]
        return bad[0].status if bad else ("ok" if self.evaluations else "missing")

    @property
    def reason(self) -> str | None:
        bad = [e for e in self.evaluations if not e.ok]
        return bad[0].reason if bad else None

    def _values(self, name: str) -> list[float] | None:
        if not self.ok:
            return None
        vals = [e.metric(name) for e in self.evaluations]
        return None if any(v is None for v in vals) else vals

    def metric(self, name: str) -> float | None:
        cache = self.__dict__.get("_metrics")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_metrics", cache)
        if name not in cache:
            vals = self._values(name)
            cache[name] = None if vals is None else float(median(vals))
        return cache[name]

    def spread(self, name: str) -> float | None:
        """Interquartile range over repeats (0.0 for a single repeat)."""
        import numpy as np

        vals = self._values(name)
        if vals is None:
            return None
        q75, q25 = np.percentile(vals, [75, 25])
        return float(q75 - q25)

    def objectives(self, objectives: Mapping[str, str]) -> tuple[float, ...] | None:
        """Median objectives as a minimisation vector; None if not ok or any is missing."""
        return objective_vector(self, objectives)

    @property
    def energy_spent_j(self) -> float | None:
        """Joules the repeats cost when they were trained (None if any is unknown)."""
        parts = [e.energy_spent_j for e in self.evaluations]
        if not parts or any(p is None for p in parts):
            return None
        return float(sum(parts))

    def paid_evaluations(self, spent: Sequence[bool] | None = None) -> list[Evaluation]:
        """The evaluations whose energy a run paid for: ``spent`` says so per evaluation
        (a run's journal); without it, all of them unless the outcome was ``cached``."""
        if spent is None:
            spent = [not self.cached] * len(self.evaluations)
        return [e for e, s in zip(self.evaluations, spent) if s]

    def paid_energy(self, spent: Sequence[bool] | None = None) -> tuple[bool, float | None]:
        """(did the run pay for any evaluation, the joules of those it paid for: 0.0 when
        none, None when a reading is missing). ``spent`` as in :meth:`paid_evaluations`."""
        parts = [e.energy_spent_j for e in self.paid_evaluations(spent)]
        if not parts:
            return False, 0.0
        return True, None if any(p is None for p in parts) else float(sum(parts))

    @property
    def measured(self) -> bool:
        return bool(self.evaluations) and all(e.measured for e in self.evaluations)


def median(vals):
    """The median of a non-empty sequence of numbers: the middle value, or the mean of
    the two middle ones (the rule every per-outcome figure uses)."""
    if len(vals) == 1:
        return vals[0]
    s = sorted(vals)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def whole_or_float(value) -> int | float:
    """A count as given: an int where it is whole, else the float itself (a table's or a
    task's params in millions, 0.592, is never cut to 0)."""
    value = float(value)
    return int(value) if value.is_integer() else value
