"""``[search] surrogate = "auto"`` (the default): the forest screens when a generation's
recorded evaluation time is long against the estimated screening time, plain NSGA-II
breeds otherwise; the decision follows the outcomes' recorded times (never the wall
clock), is the same for the same seed, and is written to run.json."""

from __future__ import annotations

import dataclasses
import json
import tomllib

import pytest
from test_evolve import FakeEvaluator, SimulatedKill, make_problem

from gi_energy import parse_problem
from gi_energy.config.genome import Genome
from gi_energy.search import autoscreen
from gi_energy.search.evolve import evolve
from gi_energy.tasks.results import Evaluation, Outcome


class TimedEvaluator(FakeEvaluator):
    """The synthetic problem of test_evolve, each evaluation recording ``seconds`` of
    wall time (None: no time at all, as a table without time columns gives)."""

    def __init__(self, seconds: float | None, store: dict | None = None, kill_after: int | None = None):
        super().__init__(store, kill_after=kill_after)
        self.seconds = seconds

    def synthesise(self, genome):
        t = self.seconds
        return dataclasses.replace(super().synthesise(genome), wall_time_s=t, train_time_s=t,
                                   inference_time_s=None if t is None else 0.0)


def _run(tmp_path, name, surrogate, seconds, **kw):
    problem = make_problem(generations=3, surrogate=surrogate)
    ev = kw.pop("evaluator", None) or TimedEvaluator(seconds)
    return evolve(problem, out=tmp_path / name, plot=False, evaluator=ev, **kw)


def _keys(result):
    return [o.key for o in result.evaluations]


def _decision(tmp_path, name):
    return json.loads((tmp_path / name / "run.json").read_text())["surrogate_decision"]


def test_auto_is_the_default_and_a_choice():
    base = '[problem]\nname = "t"\n\n[search]\n'
    assert parse_problem(tomllib.loads(base)).search.surrogate == "auto"
    for choice in ("auto", "none", "forest"):
        assert parse_problem(tomllib.loads(base + f'surrogate = "{choice}"\n')).search.surrogate == choice


def test_long_evaluations_screen_with_the_forest_and_say_so(tmp_path):
    auto = _run(tmp_path, "auto", "auto", 5.0)
    forest = _run(tmp_path, "forest", "forest", 5.0)
    plain = _run(tmp_path, "plain", "none", 5.0)
    assert _keys(auto) == _keys(forest) != _keys(plain)  # exactly the forest's run
    d = _decision(tmp_path, "auto")
    assert d["chose"] == "forest" and d["surrogate"] == "auto" and d["generation"] == 3
    assert (d["generations_screened"], d["generations_plain"]) == (3, 0)
    assert d["evaluation_s"] == 5.0 and d["generation_evaluation_s"] == 8 * 5.0
    assert d["generation_evaluation_s"] >= d["screen_when_evaluation_over"] * d["screening_s_estimate"]
    settings = json.loads((tmp_path / "auto" / "run.json").read_text())["settings"]
    assert settings["surrogate"] == "auto"


def test_short_evaluations_run_plain_nsga2_and_say_so(tmp_path):
    auto = _run(tmp_path, "auto", "auto", 1e-3)
    plain = _run(tmp_path, "plain", "none", 1e-3)
    assert _keys(auto) == _keys(plain)  # exactly plain NSGA-II's run: no draw spent on screening
    d = _decision(tmp_path, "auto")
    assert d["chose"] == "none" and d["evaluation_s"] == 1e-3
    assert d["generation_evaluation_s"] < d["screen_when_evaluation_over"] * d["screening_s_estimate"]
    assert "less than" in d["why"]
    assert (d["generations_screened"], d["generations_plain"]) == (0, 3)
    assert "surrogate_decision" not in json.loads((tmp_path / "plain" / "run.json").read_text())


def test_no_recorded_time_is_unknown_not_zero_so_the_forest_screens(tmp_path):
    auto = _run(tmp_path, "auto", "auto", None)
    forest = _run(tmp_path, "forest", "forest", None)
    assert _keys(auto) == _keys(forest)
    d = _decision(tmp_path, "auto")
    assert d["chose"] == "forest" and d["evaluation_s"] is None and "unknown" in d["why"]


def test_same_seed_same_run_and_decision(tmp_path):
    a = _run(tmp_path, "a", "auto", 0.3)
    b = _run(tmp_path, "b", "auto", 0.3)
    assert _keys(a) == _keys(b)
    assert _decision(tmp_path, "a") == _decision(tmp_path, "b")


def test_a_resumed_run_decides_as_an_unbroken_one(tmp_path):
    whole = _run(tmp_path, "whole", "auto", 5.0)
    store: dict = {}
    with pytest.raises(SimulatedKill):
        _run(tmp_path, "killed", "auto", 5.0, evaluator=TimedEvaluator(5.0, store, kill_after=14))
    resumed = evolve(make_problem(generations=3, surrogate="auto"), resume=tmp_path / "killed", plot=False,
                     evaluator=TimedEvaluator(5.0, store))
    assert sorted(_keys(resumed)) == sorted(_keys(whole))
    assert _decision(tmp_path, "killed") == _decision(tmp_path, "whole")


def test_too_few_evaluations_breed_plainly_and_say_why(tmp_path):
    problem = make_problem(generations=1, surrogate="auto")
    problem = dataclasses.replace(problem, search=dataclasses.replace(problem.search, population=2))
    evolve(problem, out=tmp_path / "tiny", plot=False, evaluator=TimedEvaluator(5.0))
    d = _decision(tmp_path, "tiny")
    assert d["chose"] == "none" and "fewer than the 4" in d["why"]


def _outcome(*evs) -> Outcome:
    return Outcome(Genome(values={"x": 1}), tuple(evs))


def test_outcome_seconds_prefers_wall_time_sums_repeats_and_knows_unknown():
    g = Genome(values={"x": 1})
    ev = Evaluation(genome=g, status="ok", train_time_s=2.0, inference_time_s=0.5)
    assert autoscreen.outcome_seconds(_outcome(ev)) == 2.5
    assert autoscreen.outcome_seconds(_outcome(dataclasses.replace(ev, wall_time_s=3.0))) == 3.0
    assert autoscreen.outcome_seconds(_outcome(ev, dataclasses.replace(ev, repeat=1, wall_time_s=1.0))) == 3.5
    assert autoscreen.outcome_seconds(_outcome(Evaluation(genome=g, status="failed"))) is None


def test_screening_estimate_grows_with_points_features_and_forests():
    s = autoscreen.screening_seconds
    assert s(24, 10, 2) == pytest.approx(2 * (autoscreen.FOREST_FIXED_S + 1e-6 * 24 * 4.5849625 * 10))
    assert s(24, 10, 2) < s(2400, 10, 2) < s(2400, 20, 2) < s(2400, 20, 3)


def test_decide_threshold_and_workers():
    screen = autoscreen.screening_seconds(100, 10, 2)
    over = autoscreen.SCREEN_WHEN_EVALUATION_OVER
    at = over * screen / 10  # the evaluation time at which 10 children reach the threshold
    assert autoscreen.decide(at * 1.01, 100, 10, 2, 10, 1, 3)["chose"] == "forest"
    assert autoscreen.decide(at * 0.99, 100, 10, 2, 10, 1, 3)["chose"] == "none"
    assert autoscreen.decide(at * 1.01, 100, 10, 2, 10, 2, 3)["chose"] == "none"  # two workers halve it


def test_auto_sizes_the_population_to_a_small_budget():
    from gi_energy.config.problem import SearchConfig

    sized = autoscreen.sized_population
    target, least = autoscreen.GENERATIONS_TARGET, autoscreen.MIN_POPULATION
    assert sized(SearchConfig(population=24)) == 24  # no evaluation budget: as asked
    assert sized(SearchConfig(population=24, max_evaluations=24 * target * 2)) == 24
    assert sized(SearchConfig(population=24, max_evaluations=12 * target)) == 12
    assert sized(SearchConfig(population=24, max_evaluations=20)) == least


def test_a_small_budget_runs_generations_and_records_the_population(tmp_path):
    problem = make_problem(generations=100, surrogate="auto", max_evaluations=32)
    res = evolve(problem, out=tmp_path / "small", plot=False, evaluator=TimedEvaluator(5.0))
    n = autoscreen.sized_population(problem.search)
    assert n < problem.search.population  # 32 evaluations: smaller generations than 8
    assert len(res.evaluations) == 32 and len(res.history) == -(-32 // n)  # ceil: the last one is short
    assert _decision(tmp_path, "small")["population"] == n
    # the same budget with an explicit choice keeps the population asked for
    res = evolve(make_problem(generations=100, surrogate="forest", max_evaluations=32), out=tmp_path / "forest",
                 plot=False, evaluator=TimedEvaluator(5.0))
    assert len(res.history) == 32 // 8
