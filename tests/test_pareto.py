"""pareto.nondominated (moocore) against the plain definition, on fronts with ties."""

from __future__ import annotations

import numpy as np
import pytest

from gi_energy.pareto import nondominated


def _by_definition(pts: np.ndarray) -> np.ndarray:
    """Row i is kept unless some row is <= in every objective and < in one."""
    le = np.all(pts[None, :, :] <= pts[:, None, :], axis=2)
    lt = np.any(pts[None, :, :] < pts[:, None, :], axis=2)
    return ~np.any(le & lt, axis=1)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_the_definition_on_ties_and_duplicates(m, seed):
    rng = np.random.default_rng(seed)
    # Few levels per objective: many ties in single objectives and whole duplicated rows.
    pts = rng.integers(0, 5, size=(int(rng.integers(1, 80)), m)).astype(float)
    pts = np.vstack([pts, pts[: len(pts) // 3]])
    assert nondominated(pts).tolist() == _by_definition(pts).tolist()


def test_duplicates_on_the_front_are_all_kept():
    pts = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [1.0, 3.0], [3.0, 3.0]])
    assert nondominated(pts).tolist() == [True, True, True, False, False]


def test_shape_is_checked_and_empty_is_empty():
    assert nondominated(np.zeros((0, 3))).tolist() == []
    with pytest.raises(ValueError, match="2-D"):
        nondominated(np.zeros(3))
