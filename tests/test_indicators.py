"""Indicators against hand-computed 2- and 3-objective fronts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gi_energy.pareto import nondominated
from gi_energy.report.indicators import (
    Normaliser,
    coverage,
    epsilon_additive,
    hypervolume,
    igd_plus,
)


def test_hypervolume_2d_staircase():
    # Rectangles from ref (4,4): [1,4]x[3,4]=3, [2,4]x[2,3]=2, [3,4]x[1,2]=1 -> 6
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == pytest.approx(6.0)
    # A dominated point and one outside the reference box change nothing.
    assert hypervolume([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]], [4, 4]) == pytest.approx(6.0)
    assert hypervolume(np.zeros((0, 2)), [4, 4]) == 0.0


def test_hypervolume_3d_by_hand():
    # Two boxes to ref (2,2,2): from (0,0,1): 2*2*1 = 4; from (1,1,0): 1*1*2 = 2; overlap
    # [1,2]x[1,2]x[1,2] = 1 -> 4 + 2 - 1 = 5.
    assert hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]) == pytest.approx(5.0)


def test_igd_plus_and_epsilon_by_hand():
    ref = [[1, 3], [3, 1]]
    # (1,3) matches the first; to the second it is worse by 2 in x only -> mean(0, 2) = 1
    assert igd_plus([[1, 3]], ref) == pytest.approx(1.0)
    # (2,2): d+ to (1,3) = 1, to (3,1) = 1 -> 1
    assert igd_plus([[2, 2]], ref) == pytest.approx(1.0)
    assert igd_plus(ref, ref) == pytest.approx(0.0)
    # epsilon: (1,3) must move by 2 to cover (3,1)... (3,1)-(1,3) needs x<=3,y<=1 -> 2
    assert epsilon_additive([[1, 3]], ref) == pytest.approx(2.0)
    assert epsilon_additive(ref, ref) == pytest.approx(0.0)
    assert math.isinf(igd_plus([], ref)) and math.isinf(epsilon_additive([], ref))


def test_three_objective_igd_and_epsilon():
    ref = [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    pts = [[0, 0, 1], [1, 0, 0]]
    # the third reference point (0,1,0) is nearest (d+) at distance 1 from either point
    assert igd_plus(pts, ref) == pytest.approx(1 / 3)
    assert epsilon_additive(pts, ref) == pytest.approx(1.0)
    assert coverage(pts, ref) == pytest.approx(2 / 3)


def test_nondominated_masks():
    pts = np.array([[1, 3], [2, 2], [3, 3], [1, 3], [0.5, 5]])
    assert nondominated(pts).tolist() == [True, True, False, True, True]
    assert nondominated(np.zeros((0, 2))).tolist() == []
    pts3 = np.array([[1, 1, 1], [0, 2, 2], [2, 2, 2], [1, 1, 2]])
    assert nondominated(pts3).tolist() == [True, True, False, False]


def test_normaliser_maps_union_to_unit_box():
    n = Normaliser.from_points([[0, 10], [2, 30]], [[1, 20]])
    assert n([[0, 10], [2, 30]]).tolist() == [[0, 0], [1, 1]]
    same = Normaliser.from_points([[1, 5], [1, 6]])
    assert same([[1, 5]]).tolist() == [[0, 0]]


# -- edges, by value ---------------------------------------------------------------------

def test_one_point_as_a_flat_vector_and_points_outside_the_box():
    assert hypervolume([1, 3], [4, 4]) == pytest.approx(3.0)       # (4-1) x (4-3)
    assert hypervolume([[5, 1], [1, 5]], [4, 4]) == 0.0             # neither dominates ref
    assert hypervolume([[4, 1]], [4, 4]) == 0.0                     # on the box's edge
    assert igd_plus([1, 3], [[1, 3], [3, 1]]) == pytest.approx(1.0)
    assert epsilon_additive([2, 2], [[1, 3], [3, 1]]) == pytest.approx(1.0)
    assert coverage([1, 3], [[1, 3], [3, 1]]) == pytest.approx(0.5)


@pytest.mark.parametrize(("fn", "name"), [(igd_plus, "igd_plus"),
                                          (epsilon_additive, "epsilon_additive"),
                                          (coverage, "coverage")])
def test_an_empty_reference_front_is_refused(fn, name):
    with pytest.raises(ValueError) as err:
        fn([[1, 2]], np.zeros((0, 2)))
    assert str(err.value) == f"{name} needs a non-empty reference front"


def test_coverage_counts_weak_domination_within_a_tolerance():
    ref = [[1.0, 2.0], [2.0, 1.0], [0.5, 0.5]]
    # (1, 2) is matched within 1e-9; (2, 1) is dominated by (1.5, 1); (0.5, 0.5) is not.
    pts = [[1.0 + 5e-10, 2.0], [1.5, 1.0]]
    assert coverage(pts, ref) == pytest.approx(2 / 3)
    assert coverage(pts, ref, tol=0.0) == pytest.approx(1 / 3)
    assert coverage(pts, ref, tol=1.0) == pytest.approx(1.0)     # (1.5, 1) <= (1.5, 1.5)
    assert coverage(np.zeros((0, 2)), ref) == 0.0


def test_normaliser_bounds_and_unit_span_for_a_flat_objective():
    n = Normaliser.from_points(np.zeros((0, 2)), [[0, 10], [4, 10]], [[2, 10]])
    assert (n.low, n.high) == ((0.0, 10.0), (4.0, 10.0))
    assert n.to_dict() == {"low": [0.0, 10.0], "high": [4.0, 10.0]}
    # The flat second objective gets unit span: 12 -> (12 - 10) / 1.
    assert n([[1, 12], [4, 10]]).tolist() == [[0.25, 2.0], [1.0, 0.0]]
    assert n([2, 11]).tolist() == [[0.5, 1.0]]
    with pytest.raises(ValueError) as err:
        Normaliser.from_points(np.zeros((0, 2)))
    assert str(err.value) == "no points to take normalisation bounds from"


def test_normaliser_divides_by_a_span_under_one_and_keeps_the_shape_of_nothing():
    n = Normaliser((0.0, 10.0), (0.5, 30.0))
    assert n([[0.25, 15.0]]).tolist() == [[0.5, 0.25]]
    assert n(np.zeros((0, 2))).shape == (0, 2) and n([]).shape == (0, 2)
