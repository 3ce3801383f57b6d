"""The grid keeps its front, hypervolume and totals up batch by batch: each history row
must equal what recomputing over every outcome so far gives."""

from __future__ import annotations

import json

import pytest

from gi_energy.config.parse import parse_problem
from gi_energy.pareto import front_outcomes, ok_points
from gi_energy.report.indicators import hypervolume
from gi_energy.runs.replay import SyntheticEvaluator
from gi_energy.search.grid import batches, run_grid


def test_every_batch_row_equals_a_recomputation(tmp_path):
    problem = parse_problem({
        "problem": {"name": "inc"},
        "space": {"hidden_layers": {"min": 1, "max": 3}, "learning_rate": {"min": 1e-4, "max": 1e-1}},
        "grid": {"hidden_layers": [1, 2, 3], "width": [8, 16, 32, 64], "learning_rate": [1e-3, 1e-2, 3e-2]},
        "objectives": {"accuracy": "max", "inference_energy_j_per_1k": "min", "train_energy_j": "min"},
        "constraints": {"params": {"max": 3000}},
    })
    first = next(iter(problem.grid.enumerate(problem.space)))
    evaluator = SyntheticEvaluator(problem, fail_keys={first.key})  # a failure in the first batch
    result = run_grid(problem, out=tmp_path / "grid", evaluator=evaluator)
    ref = json.loads((tmp_path / "grid" / "run.json").read_text())["history_reference_point"]
    stops = [stop for _, stop in batches(len(result.outcomes), problem.evaluation.workers)]
    assert len(result.history) == len(stops)
    objectives = dict(problem.objectives)
    for row, stop in zip(result.history, stops):
        so_far = result.outcomes[:stop]
        _, pts = ok_points(so_far, objectives)
        assert row["evaluations"] == stop
        assert row["failures"] == sum(1 for o in so_far if not o.ok)
        assert row["front_size"] == len(front_outcomes(so_far, objectives, problem.constraints))
        assert row["hypervolume"] == pytest.approx(hypervolume(pts, ref), rel=1e-12)
    assert [o.key for o in result.front] == [o.key for o in front_outcomes(result.outcomes, objectives,
                                                                            problem.constraints)]
