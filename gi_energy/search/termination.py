"""Budgets that stop a search: generations, evaluations, wall seconds, joules.

Each budget is a small object that reports progress in [0, 1] from a :class:`SearchState`;
:class:`AnyOf` stops when any of its budgets is spent. Budgets are checked between
generations: a generation that has started finishes (its evaluations are already paid for
in part), except that the number of offspring is capped by :func:`evaluations_left`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gi_energy.config.problem import SearchConfig


@dataclass(frozen=True)
class SearchState:
    """Where a search stands after a generation.

    ``generation`` counts completed generations after the initial population (0 once the
    initial population is evaluated). ``energy_spent_j`` sums the known energy of the
    evaluations trained by this run; ``energy_unknown`` counts those whose energy is unknown.
    """

    generation: int
    evaluations: int
    wall_s: float
    energy_spent_j: float
    energy_unknown: int = 0


class Termination:
    """A budget. Subclasses give ``progress``; ``name`` says which budget stopped a run."""

    name = "budget"

    def progress(self, state: SearchState) -> float:
        raise NotImplementedError

    def done(self, state: SearchState) -> bool:
        return self.progress(state) >= 1.0

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class MaxGenerations(Termination):
    generations: int
    name = "generations"

    def progress(self, state: SearchState) -> float:
        return 1.0 if self.generations <= 0 else min(1.0, state.generation / self.generations)

    def describe(self) -> str:
        return f"{self.generations} generations"


@dataclass(frozen=True)
class MaxEvaluations(Termination):
    evaluations: int
    name = "max_evaluations"

    def progress(self, state: SearchState) -> float:
        return min(1.0, state.evaluations / self.evaluations)

    def describe(self) -> str:
        return f"{self.evaluations} evaluations"


@dataclass(frozen=True)
class MaxWallTime(Termination):
    wall_s: float
    name = "max_wall_s"

    def progress(self, state: SearchState) -> float:
        return min(1.0, state.wall_s / self.wall_s)

    def describe(self) -> str:
        return f"{self.wall_s:g} s wall time"


@dataclass(frozen=True)
class EnergyBudget(Termination):
    """Joules spent by the search itself. Evaluations of unknown energy cannot be counted;
    the run records how many there were instead of counting them as zero."""

    energy_j: float
    name = "energy_budget_j"

    def progress(self, state: SearchState) -> float:
        return min(1.0, state.energy_spent_j / self.energy_j)

    def describe(self) -> str:
        return f"{self.energy_j:g} J spent"


@dataclass(frozen=True)
class AnyOf(Termination):
    budgets: Sequence[Termination]
    name = "any"

    def progress(self, state: SearchState) -> float:
        return max((b.progress(state) for b in self.budgets), default=0.0)

    def reason(self, state: SearchState) -> str | None:
        """The name of the first budget that is spent, or None."""
        return next((b.name for b in self.budgets if b.done(state)), None)

    def describe(self) -> str:
        return ", ".join(b.describe() for b in self.budgets)

    def evaluations_left(self, state: SearchState) -> int | None:
        return evaluations_left(self, state)


def evaluations_left(budget: Termination, state: SearchState) -> int | None:
    """How many more evaluations the evaluation budget allows (None: unlimited)."""
    if isinstance(budget, MaxEvaluations):
        return max(0, budget.evaluations - state.evaluations)
    if isinstance(budget, AnyOf):
        lefts = [n for b in budget.budgets if (n := evaluations_left(b, state)) is not None]
        return min(lefts) if lefts else None
    return None


def from_config(search: SearchConfig) -> AnyOf:
    """Every budget the search section sets (generations always)."""
    budgets: list[Termination] = [MaxGenerations(search.generations)]
    if search.max_evaluations is not None:
        budgets.append(MaxEvaluations(search.max_evaluations))
    if search.max_wall_s is not None:
        budgets.append(MaxWallTime(search.max_wall_s))
    if search.energy_budget_j is not None:
        budgets.append(EnergyBudget(search.energy_budget_j))
    return AnyOf(tuple(budgets))
