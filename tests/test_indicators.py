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
