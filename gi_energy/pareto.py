"""Pareto arithmetic shared by the search, the run directory and the reports:
non-domination (moocore underneath), feasibility and constraint violation.

Objectives arrive as minimisation vectors (maximised metrics negated, as
:meth:`Outcome.objectives` gives them). A constraint is an upper limit on a metric; its
violation is the summed relative excess over the limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import moocore
import numpy as np

from gi_energy.tasks.results import Outcome

FAILED = float("inf")  # the violation of an outcome whose constrained metric is missing


def nondominated(points_min: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``points_min`` (minimisation) that no other row dominates.

    Duplicated points are all kept: two genomes with equal objectives are both on the front.
    moocore's ``is_nondominated`` does the work in O(n log n) for 2-3 objectives, so a
    front of tens of thousands of points costs milliseconds, not an n x n x m array.
    """
    pts = np.asarray(points_min, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"expected a 2-D array of points, got shape {pts.shape}")
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(pts, keep_weakly=True), dtype=bool)


def ok_points(outcomes: Sequence[Outcome], objectives: Mapping[str, str]) -> tuple[list[Outcome], np.ndarray]:
    """The ok outcomes with every objective present, and their minimisation vectors."""
    kept, vecs = [], []
    for o in outcomes:
        v = o.objectives(objectives)
        if v is not None:
            kept.append(o)
            vecs.append(v)
    return kept, np.asarray(vecs, dtype=float).reshape(len(vecs), len(objectives))


def unique_outcomes(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The first outcome of each genome, in order."""
    unique: dict[str, Outcome] = {}
    for o in outcomes:
        unique.setdefault(o.key, o)
    return list(unique.values())


def constraint_violation(outcome: Outcome, constraints: Mapping[str, float]) -> float:
    """Summed relative excess over upper limits: 0.0 feasible, inf if a metric is missing.

    Relative (excess / limit) so that joules and parameter counts add up sensibly.
    """
    values = [outcome.metric(name) for name in constraints]
    if any(v is None for v in values):
        return FAILED
    return excess_over(values, constraints.values())


def excess_over(values: Iterable[float], limits: Iterable[float]) -> float:
    """Summed relative excess of ``values`` over their upper ``limits`` (0.0 within all):
    the violation of a constraint vector, observed or predicted."""
    return float(sum((v - lim) / lim for v, lim in zip(values, limits) if v > lim))


def feasible_only(outcomes: Sequence[Outcome], constraints: Mapping[str, float] | None) -> list[Outcome]:
    """The outcomes that meet ``constraints`` (all of them when there are none): the
    search's own test, ``constraint_violation == 0``."""
    if not constraints:
        return list(outcomes)
    return [o for o in outcomes if constraint_violation(o, constraints) == 0.0]


def front_outcomes(outcomes: Sequence[Outcome], objectives: Mapping[str, str],
                   constraints: Mapping[str, float] | None = None) -> list[Outcome]:
    """The non-dominated ok outcomes that meet ``constraints``, first occurrence of each
    genome only (the same feasible front the search reports)."""
    kept, pts = ok_points(unique_outcomes(feasible_only(outcomes, constraints)), objectives)
    if not kept:
        return []
    mask = nondominated(pts)
    return [o for o, m in zip(kept, mask) if m]
