"""Quality indicators of a front, all on minimisation vectors (moocore does the numerics).

Callers normalise first (``Normaliser``): indicators on raw joules and accuracies would
weight objectives by their units. Each function accepts an empty set of points and then
returns the value of "found nothing" (hypervolume 0, distances infinite).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import moocore
import numpy as np


def _points(points, n_obj: int | None = None) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.zeros((0, n_obj or (pts.shape[-1] if pts.ndim == 2 else 0)))
    if pts.ndim == 1:
        pts = pts.reshape(1, -1)
    return pts


def hypervolume(points_min, ref) -> float:
    """Volume dominated by ``points_min`` and bounded by the reference point ``ref``.

    Points that do not strictly dominate ``ref`` contribute nothing.
    """
    ref = np.asarray(ref, dtype=float)
    pts = _points(points_min, len(ref))
    if len(pts) == 0:
        return 0.0
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(moocore.hypervolume(pts, ref=ref))


def igd_plus(points, reference_front) -> float:
    """IGD+: mean over the reference front of the distance to the nearest point, counting
    only the objectives where the point is worse (0 when the reference is covered)."""
    ref = _points(reference_front)
    pts = _points(points, ref.shape[1])
    if len(ref) == 0:
        raise ValueError("igd_plus needs a non-empty reference front")
    if len(pts) == 0:
        return float("inf")
    return float(moocore.igd_plus(pts, ref=ref))


def epsilon_additive(points, reference_front) -> float:
    """Smallest amount every point must be improved by (in every objective) so that the
    set weakly dominates the reference front; <= 0 when it already does."""
    ref = _points(reference_front)
    pts = _points(points, ref.shape[1])
    if len(ref) == 0:
        raise ValueError("epsilon_additive needs a non-empty reference front")
    if len(pts) == 0:
        return float("inf")
    return float(moocore.epsilon_additive(pts, ref=ref))


def coverage(points, reference_front, tol: float = 1e-9) -> float:
    """Share of the reference front's points that some point matches or dominates
    (weakly, within ``tol`` per objective)."""
    ref = _points(reference_front)
    pts = _points(points, ref.shape[1])
    if len(ref) == 0:
        raise ValueError("coverage needs a non-empty reference front")
    if len(pts) == 0:
        return 0.0
    covered = np.any(np.all(pts[None, :, :] <= ref[:, None, :] + tol, axis=2), axis=1)
    return float(np.mean(covered))


@dataclass(frozen=True)
class Normaliser:
    """Maps minimisation vectors to [0, 1] per objective with fixed bounds, so every run
    in one comparison is measured on the same scale against the same reference point."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def from_points(cls, *point_sets) -> Normaliser:
        """Bounds from the union of the given point sets (each n x m, minimisation)."""
        sets = [np.asarray(p, dtype=float) for p in point_sets if np.asarray(p).size]
        if not sets:
            raise ValueError("no points to take normalisation bounds from")
        allp = np.vstack(sets)
        return cls(tuple(allp.min(axis=0).tolist()), tuple(allp.max(axis=0).tolist()))

    def __call__(self, points) -> np.ndarray:
        low = np.asarray(self.low)
        span = np.asarray(self.high) - low
        # An objective every run agrees on carries no information; give it unit span
        # rather than dividing by zero.
        span = np.where(span > 0, span, 1.0)
        pts = _points(points, len(low))
        return (pts - low) / span

    def to_dict(self) -> Mapping:
        return {"low": list(self.low), "high": list(self.high)}
