"""A run's running totals: evaluations, failures, store hits, the joules the run paid
for (and how many evaluations lack a reading: missing is never zero), and the time its
evaluations took. Carried across resumes through the checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gi_energy.tasks.results import Outcome


@dataclass
class Totals:
    """Running totals of one run (carried across resumes through the checkpoint)."""

    evaluations: int = 0
    failures: int = 0
    cached: int = 0
    energy_spent_j: float = 0.0
    energy_unknown: int = 0
    evaluation_wall_s: float = 0.0
    wall_s: float = 0.0

    def add(self, outcome: Outcome, spent: Sequence[bool] | None = None) -> None:
        """Count ``outcome`` once. ``spent`` says per evaluation whether its energy is this
        run's (the run's journal: trained by this run, now or before a resume); without
        it, every evaluation of an outcome that was not cached is. An outcome none of
        whose evaluations is this run's counts as ``cached`` and costs nothing."""
        self.evaluations += 1
        self.failures += 0 if outcome.ok else 1
        paid, joules = outcome.paid_energy(spent)
        if not paid:
            self.cached += 1
            return
        if joules is None:
            self.energy_unknown += 1
        else:
            self.energy_spent_j += joules
        self.evaluation_wall_s += sum(e.wall_time_s or 0.0 for e in outcome.paid_evaluations(spent))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Totals:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
