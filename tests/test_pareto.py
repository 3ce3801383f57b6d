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


# -- feasibility, violation and the feasible front, by value ----------------------------

def _outcome(width: int, accuracy: float | None, energy_j: float, params: int | None = 100,
             status: str = "ok"):
    from gi_energy.config.genome import Genome
    from gi_energy.meters.reading import Reading
    from gi_energy.tasks.results import Evaluation, Outcome

    g = Genome(layers={"hidden": (width,)}, values={})
    r = Reading("rapl", "package", True, energy_j, 1.0)
    ev = Evaluation(genome=g, status=status, val_accuracy=accuracy, train=r, inference=r,
                    inference_samples=1000, params=params)
    return Outcome(g, (ev,))


OBJ = {"accuracy": "max", "inference_energy_j_per_1k": "min"}


def test_constraint_violation_is_the_summed_relative_excess():
    from gi_energy.pareto import FAILED, constraint_violation, excess_over

    o = _outcome(8, 0.9, 2.0, params=1500)   # 2 J per 1,000 samples of inference
    assert constraint_violation(o, {"params": 1000.0}) == pytest.approx(0.5)
    assert constraint_violation(o, {"params": 1500.0}) == 0.0          # at the limit: feasible
    assert constraint_violation(o, {"params": 1000.0, "inference_energy_j_per_1k": 0.5}) \
        == pytest.approx(0.5 + 3.0)
    assert constraint_violation(o, {"params": 2000.0, "inference_energy_j_per_1k": 0.5}) \
        == pytest.approx(3.0)                                          # only the excess counts
    assert constraint_violation(o, {}) == 0.0
    assert constraint_violation(_outcome(8, 0.9, 2.0, params=None), {"params": 1.0}) == FAILED
    assert FAILED == float("inf")
    assert excess_over([3.0, 1.0, 4.0], [2.0, 2.0, 2.0]) == pytest.approx(0.5 + 1.0)
    assert isinstance(excess_over([1.0], [2.0]), float)


def test_feasible_only_and_ok_points():
    from gi_energy.pareto import feasible_only, ok_points

    a, b = _outcome(8, 0.9, 1.0, params=100), _outcome(9, 0.8, 0.5, params=300)
    failed = _outcome(10, None, 1.0, status="failed")
    assert feasible_only([a, b], {"params": 200.0}) == [a]
    assert feasible_only([a, b], None) == [a, b] and feasible_only([a, b], {}) == [a, b]
    kept, pts = ok_points([a, failed, b], OBJ)
    assert kept == [a, b]
    assert pts.tolist() == [[-0.9, 1.0], [-0.8, 0.5]]
    kept, pts = ok_points([failed], OBJ)
    assert kept == [] and pts.shape == (0, 2)


def test_unique_outcomes_keep_the_first_of_each_genome():
    from gi_energy.pareto import unique_outcomes

    a, a2, b = _outcome(8, 0.9, 1.0), _outcome(8, 0.1, 9.0), _outcome(9, 0.8, 0.5)
    assert unique_outcomes([a, b, a2]) == [a, b]


def test_front_outcomes_is_the_feasible_first_seen_front():
    from gi_energy.pareto import front_outcomes

    a = _outcome(8, 0.9, 1.0, params=100)      # on the front
    b = _outcome(9, 0.8, 0.5, params=100)      # on the front
    c = _outcome(10, 0.7, 0.8, params=100)     # dominated by b
    d = _outcome(11, 0.95, 0.1, params=500)    # dominates all, but infeasible
    a_again = _outcome(8, 0.99, 0.01, params=100)  # a later repeat of a's genome: ignored
    assert front_outcomes([a, b, c, d, a_again], OBJ, {"params": 200.0}) == [a, b]
    assert front_outcomes([a, b, c, d], OBJ) == [d]
    assert front_outcomes([d], OBJ, {"params": 200.0}) == []


def test_the_mask_of_nothing_is_a_boolean_mask():
    # An empty mask still has to index an empty array (a float one cannot).
    mask = nondominated(np.zeros((0, 2)))
    assert mask.dtype == bool
    assert np.zeros((0, 2))[mask].shape == (0, 2)
