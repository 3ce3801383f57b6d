"""The result of evaluating one genome: accuracy, energy readings, times and sizes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from .meters.reading import Reading
from .space import Genome

STATUSES = ("ok", "failed", "nan", "timeout", "crashed")


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
    params: int | None = None
    flops_per_sample: int | None = None
    co2_g: float | None = None
    wall_time_s: float | None = None
    device: str = "cpu"
    worker: str = ""
    extra: Mapping[str, float] = field(default_factory=dict)

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
        return all(r is not None and r.measured for r in (self.train, self.inference))

    def metric(self, name: str) -> float | None:
        """A metric by the name used in [objectives] / [constraints]; None if missing."""
        value = {
            "accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "train_energy_j": self.train_energy_j,
            "inference_energy_j_per_1k": self.inference_energy_j_per_1k,
            "train_time_s": self.train_time_s,
            "inference_time_s_per_1k": self.inference_time_s_per_1k,
            "params": self.params,
            "flops_per_sample": self.flops_per_sample,
        }[name]
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return None
        return float(value)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["genome"] = self.genome.to_dict()
        d["train"] = None if self.train is None else self.train.to_dict()
        d["inference"] = None if self.inference is None else self.inference.to_dict()
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Evaluation:
        d = dict(d)
        d["genome"] = Genome.from_dict(d["genome"])
        d["train"] = None if d.get("train") is None else Reading.from_dict(d["train"])
        d["inference"] = None if d.get("inference") is None else Reading.from_dict(d["inference"])
        d["extra"] = dict(d.get("extra") or {})
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Evaluation:
        return cls.from_dict(json.loads(text))


def objective_vector(ev: Evaluation, objectives: Mapping[str, str]) -> tuple[float, ...] | None:
    """Objectives as a minimisation vector (maximised ones negated); None if any is missing."""
    out = []
    for name, direction in objectives.items():
        v = ev.metric(name)
        if v is None:
            return None
        out.append(-v if direction == "max" else v)
    return tuple(out)
