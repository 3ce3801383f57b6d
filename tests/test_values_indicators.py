"""Indicator values test_indicators.py leaves open (mutation survivors of indicators.py)."""

from __future__ import annotations

import json

from gi_energy.report.indicators import Normaliser


def test_bounds_of_integer_points_are_floats():
    # compare writes the bounds into its JSON report: integer objectives (params, a
    # count) still give float bounds there, as the fields are typed
    n = Normaliser.from_points([[0, 10], [4, 2]], [[1, 5]])
    assert json.dumps(n.to_dict()) == '{"low": [0.0, 2.0], "high": [4.0, 10.0]}'
    assert all(type(v) is float for v in (*n.low, *n.high))
