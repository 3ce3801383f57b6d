"""compare by value: hypervolume ratio, IGD+, epsilon and coverage of runs that are NOT
the reference, and the rank-sum p-values between methods, all worked out by hand.

The runs are written by hand (no training, no replay), so every point is known. The
normalisation is the union of every run's points; the reference point is 1.1 per
objective in that normalised space (the worst point seen plus 10%).
"""

from __future__ import annotations

import math
import os

import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.problem import Problem
from gi_energy.meters.reading import Reading
from gi_energy.report.compare import compare_runs
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome

TWO = {"accuracy": "max", "inference_energy_j_per_1k": "min"}


def per_test_under_mutation(fixture_name, config) -> str:
    """Module scope, except in a mutation pass (experiments/mutation.py): there each test
    builds its runs itself, so the figures it checks count as covered by it (a cached
    fixture would credit them to the first test only, and mutmut would run no other)."""
    return "function" if os.environ.get("GI_ENERGY_MUTATION") else "module"

THREE = {**TWO, "train_energy_j": "min"}


def _outcome(width: int, accuracy: float, inference_j: float, train_j: float = 1.0) -> Outcome:
    g = Genome(layers={"hidden": (width,)}, values={})
    ev = Evaluation(genome=g, status="ok", val_accuracy=accuracy,
                    train=Reading("rapl", "package", True, train_j, 1.0),
                    inference=Reading("rapl", "package", True, inference_j, 1.0),
                    inference_samples=1000, params=100)
    return Outcome(g, (ev,))


def _run(root, name, objectives, command, label, seed, points):
    base = load_problem("quickstart")
    problem = Problem(**{**base.__dict__, "objectives": objectives})
    rd = RunDirectory.create(root / name, problem, command, {})
    rd.update_run_json(label=label, seed=seed, status="complete", objectives=objectives)
    # Distinct widths keep the genomes distinct; each point is one genome.
    outcomes = [_outcome(8 + i, *p) for i, p in enumerate(points)]
    rd.write_results(outcomes, objectives, [])
    return root / name


@pytest.fixture(scope=per_test_under_mutation)
def two_objectives(tmp_path_factory):
    """Raw (accuracy, inference J per 1k). Minimisation vectors (-accuracy, J); the union's
    bounds are -0.9..-0.5 (span 0.4) and 2..12 (span 10), so normalised:

        grid  (0.9, 10) -> (0, 0.8)   (0.8, 4) -> (0.25, 0.2)   (0.6, 2) -> (0.75, 0)
              (0.5, 12) -> (1, 1), dominated
        a/0   (0.8, 6) -> (0.25, 0.4) and (0.6, 2) -> (0.75, 0)
        a/1   (0.9, 10) -> (0, 0.8) and (0.5, 12), dominated
        b/0   (0.8, 4) -> (0.25, 0.2)
        b/1   (0.6, 2) -> (0.75, 0)

    Hypervolumes to (1.1, 1.1), as staircases of rectangles:
        grid  0.25 x 0.3 + 0.5 x 0.9 + 0.35 x 1.1 = 0.91
        a/0   0.5 x 0.7 + 0.35 x 1.1 = 0.735      a/1  1.1 x 0.3 = 0.33
        b/0   0.85 x 0.9 = 0.765                   b/1  0.35 x 1.1 = 0.385
    """
    root = tmp_path_factory.mktemp("values2")
    grid = _run(root, "grid", TWO, "grid", "grid", 0,
                [(0.9, 10.0), (0.8, 4.0), (0.6, 2.0), (0.5, 12.0)])
    runs = [_run(root, "a0", TWO, "evolve", "a", 0, [(0.8, 6.0), (0.6, 2.0)]),
            _run(root, "a1", TWO, "evolve", "a", 1, [(0.9, 10.0), (0.5, 12.0)]),
            _run(root, "b0", TWO, "evolve", "b", 0, [(0.8, 4.0)]),
            _run(root, "b1", TWO, "evolve", "b", 1, [(0.6, 2.0)])]
    return compare_runs(runs, reference=grid)


def _by_path(cmp):
    return {r["path"].rsplit("/", 1)[-1]: r for r in cmp["runs"]}


def test_the_scale_is_the_union_and_the_reference_point_is_1_1(two_objectives):
    cmp = two_objectives
    assert cmp["normalisation"]["low"] == pytest.approx([-0.9, 2.0])
    assert cmp["normalisation"]["high"] == pytest.approx([-0.5, 12.0])
    assert cmp["reference_point"] == [1.1, 1.1]
    assert cmp["reference"]["front_size"] == 3
    assert cmp["reference"]["hypervolume"] == pytest.approx(0.91)


@pytest.mark.parametrize(("run", "hv", "igd_plus", "epsilon", "coverage"), [
    # IGD+ = mean over the grid front of the distance to the nearest run point, counting
    # only the coordinates where the run point is worse; epsilon = the largest, over the
    # grid front, of the smallest worst-coordinate excess of a run point.
    #   a/0: to (0, 0.8) 0.25; to (0.25, 0.2) 0.2; to (0.75, 0) 0.     eps max(0.25, 0.2, 0)
    ("a0", 0.735, (0.25 + 0.2 + 0.0) / 3, 0.25, 1 / 3),
    #   a/1: to (0, 0.8) 0; to (0.25, 0.2) 0.6; to (0.75, 0) 0.8.      eps max(0, 0.6, 0.8)
    ("a1", 0.33, (0.0 + 0.6 + 0.8) / 3, 0.8, 1 / 3),
    #   b/0: to (0, 0.8) 0.25; (0.25, 0.2) 0; to (0.75, 0) 0.2.         eps max(0.25, 0, 0.2)
    ("b0", 0.765, (0.25 + 0.0 + 0.2) / 3, 0.25, 1 / 3),
    #   b/1: to (0, 0.8) 0.75; to (0.25, 0.2) 0.5; (0.75, 0) 0.         eps max(0.75, 0.5, 0)
    ("b1", 0.385, (0.75 + 0.5 + 0.0) / 3, 0.75, 1 / 3),
])
def test_figures_of_runs_that_are_not_the_reference(two_objectives, run, hv, igd_plus, epsilon,
                                                     coverage):
    r = _by_path(two_objectives)[run]
    assert r["reference"] is False
    assert r["hypervolume"] == pytest.approx(hv)
    assert r["hv_ratio"] == pytest.approx(hv / 0.91)
    assert r["igd_plus"] == pytest.approx(igd_plus)
    assert r["epsilon_additive"] == pytest.approx(epsilon)
    assert r["coverage"] == pytest.approx(coverage)


def test_the_reference_run_scores_itself_one(two_objectives):
    ref = [r for r in two_objectives["runs"] if r["reference"]]
    assert len(ref) == 1
    assert (ref[0]["hv_ratio"], ref[0]["igd_plus"], ref[0]["epsilon_additive"],
            ref[0]["coverage"]) == (pytest.approx(1.0), 0.0, 0.0, 1.0)


def test_group_medians(two_objectives):
    groups = {g["label"]: g for g in two_objectives["groups"]}
    assert groups["a"]["hv_ratio"]["median"] == pytest.approx((0.735 + 0.33) / 2 / 0.91)
    assert groups["b"]["hv_ratio"]["median"] == pytest.approx((0.765 + 0.385) / 2 / 0.91)
    assert groups["a"]["igd_plus"]["median"] == pytest.approx((0.45 / 3 + 1.4 / 3) / 2)


def _ranksum_by_hand(ranks_a: list[float], n_b: int) -> tuple[float, float]:
    """Wilcoxon rank-sum, normal approximation (as scipy.stats.ranksums, no tie term):
    z = (R_a - n_a (n + 1) / 2) / sqrt(n_a n_b (n + 1) / 12), p = erfc(|z| / sqrt 2)."""
    n_a = len(ranks_a)
    n = n_a + n_b
    z = (sum(ranks_a) - n_a * (n + 1) / 2) / math.sqrt(n_a * n_b * (n + 1) / 12)
    return z, math.erfc(abs(z) / math.sqrt(2))


def test_rank_sum_between_the_methods(two_objectives):
    # hv_ratio, ascending: a/1 0.363 (rank 1), b/1 0.423 (2), a/0 0.808 (3), b/0 0.841 (4).
    # R_a = 1 + 3 = 4: z = (4 - 5) / sqrt(20 / 12) = -0.7746, p = 0.4386.
    (test,) = [t for t in two_objectives["tests"] if t["metric"] == "hv_ratio"]
    z, p = _ranksum_by_hand([1, 3], 2)
    assert (test["a"], test["b"], test["n_a"], test["n_b"]) == ("a", "b", 2, 2)
    assert test["statistic"] == pytest.approx(z) == pytest.approx(-0.7745967)
    assert test["p_value"] == pytest.approx(p) == pytest.approx(0.4385780)
    assert test["median_a"] == pytest.approx((0.735 + 0.33) / 2 / 0.91)
    assert test["median_b"] == pytest.approx((0.765 + 0.385) / 2 / 0.91)


@pytest.fixture(scope=per_test_under_mutation)
def three_objectives(tmp_path_factory):
    """Raw (accuracy, inference J per 1k, train J); bounds -0.9..-0.5, 2..10, 2..6, so

        grid  (0.9, 10, 2) -> (0, 1, 0)   (0.5, 2, 6) -> (1, 0, 1)   (0.7, 6, 4) -> (0.5)^3
        x     (0.7, 6, 4) -> (0.5, 0.5, 0.5)
        y     (0.9, 10, 2) -> (0, 1, 0) and (0.6, 8, 5) -> (0.75, 0.75, 0.75)

    Hypervolume to (1.1, 1.1, 1.1) by inclusion-exclusion of the boxes [p, 1.1]:
        grid  0.121 + 0.011 + 0.216 - 0.001 - 0.036 - 0.006 + 0.001 = 0.306
        x     0.6^3 = 0.216
        y     0.121 + 0.35^3 - 0.35 x 0.1 x 0.35 = 0.151625
    """
    root = tmp_path_factory.mktemp("values3")
    grid = _run(root, "grid", THREE, "grid", "grid", 0,
                [(0.9, 10.0, 2.0), (0.5, 2.0, 6.0), (0.7, 6.0, 4.0)])
    runs = [_run(root, "x", THREE, "evolve", "x", 0, [(0.7, 6.0, 4.0)]),
            _run(root, "y", THREE, "evolve", "y", 0, [(0.9, 10.0, 2.0), (0.6, 8.0, 5.0)])]
    return compare_runs(runs, reference=grid)


@pytest.mark.parametrize(("run", "hv", "igd_plus", "epsilon", "coverage"), [
    # x: to (0,1,0) sqrt(0.5^2 + 0.5^2); to (1,0,1) 0.5; to itself 0.   eps 0.5
    ("x", 0.216, (math.sqrt(0.5) + 0.5 + 0.0) / 3, 0.5, 1 / 3),
    # y: to (0,1,0) 0; to (1,0,1) min(1 from (0,1,0), 0.75 from (0.75)^3) = 0.75; to
    # (0.5)^3 min(0.5 from (0,1,0), sqrt(3) x 0.25 = 0.433 from (0.75)^3).
    # eps: max(0, min(1, 0.75), min(0.5, 0.25)) = 0.75
    ("y", 0.151625, (0.0 + 0.75 + math.sqrt(3) * 0.25) / 3, 0.75, 1 / 3),
])
def test_three_objective_figures(three_objectives, run, hv, igd_plus, epsilon, coverage):
    cmp = three_objectives
    assert cmp["reference_point"] == [1.1, 1.1, 1.1]
    assert cmp["reference"]["hypervolume"] == pytest.approx(0.306)
    r = _by_path(cmp)[run]
    assert r["hypervolume"] == pytest.approx(hv)
    assert r["hv_ratio"] == pytest.approx(hv / 0.306)
    assert r["igd_plus"] == pytest.approx(igd_plus)
    assert r["epsilon_additive"] == pytest.approx(epsilon)
    assert r["coverage"] == pytest.approx(coverage)


# -- the group statistics alone --------------------------------------------------------

def _row(label, value, metric="hv_ratio"):
    return {"label": label, metric: value}


def test_rank_sum_p_value_against_the_formula():
    # a = 1..5, b = 6..10: R_a = 15, z = (15 - 27.5) / sqrt(25 x 11 / 12) = -2.6112,
    # p = 0.0090 (scipy.stats.mannwhitneyu(..., method="asymptotic", use_continuity=False)
    # gives the same p).
    from gi_energy.report.stats import rank_sum_tests

    rows = [_row("a", v) for v in (1, 2, 3, 4, 5)] + [_row("b", v) for v in (6, 7, 8, 9, 10)]
    rows += [_row("c", 3.0)]            # one run only: no test with it
    rows += [_row("a", None)]           # a run without the figure is left out
    (test,) = rank_sum_tests(rows)
    z, p = _ranksum_by_hand([1, 2, 3, 4, 5], 5)
    assert test == {"metric": "hv_ratio", "a": "a", "b": "b", "n_a": 5, "n_b": 5,
                    "median_a": 3.0, "median_b": 8.0, "statistic": pytest.approx(z),
                    "p_value": pytest.approx(p)}
    assert z == pytest.approx(-2.6111648) and p == pytest.approx(0.0090234, rel=1e-4)


def test_rank_sum_pairs_identical_samples_and_other_metrics():
    from gi_energy.report.stats import rank_sum_tests

    rows = [_row("a", 0.5, "igd"), _row("a", 0.5, "igd"), _row("b", 0.5, "igd"),
            _row("b", 0.5, "igd"), _row("c", 0.1, "igd"), _row("c", 0.2, "igd")]
    tests = rank_sum_tests(rows, "igd")
    assert [(t["a"], t["b"]) for t in tests] == [("a", "b"), ("a", "c"), ("b", "c")]
    # identical samples: no evidence of a difference, p = 1 (scipy would divide by zero)
    assert (tests[0]["statistic"], tests[0]["p_value"]) == (0.0, 1.0)
    z, p = _ranksum_by_hand([3.5, 3.5], 2)  # ranks of 0.5, 0.5 among 0.1, 0.2, 0.5, 0.5
    assert tests[1]["statistic"] == pytest.approx(z) and tests[1]["p_value"] == pytest.approx(p)
    assert tests[1]["metric"] == "igd"
    assert rank_sum_tests(rows[:4] + [_row("c", 0.1, "igd")], "igd")[0]["b"] == "b"
    assert rank_sum_tests([_row("a", 1.0), _row("a", 2.0)]) == []


def test_median_and_quartiles():
    from gi_energy.report.stats import median_iqr

    assert median_iqr([4, 1, 3, 2]) == {"n": 4, "finite": 4, "median": 2.5, "q25": 1.75,
                                        "q75": 3.25, "iqr": 1.5}
    # Runs that never reached a threshold count as infinitely late ("lower" percentiles).
    assert median_iqr([1, None, 3, None, None]) == {"n": 5, "finite": 2, "median": None,
                                                    "q25": 3.0, "q75": None, "iqr": None}
    # sorted 1, 2, inf: the lower 75th percentile is at position 1.5 -> 2
    assert median_iqr([2, None, 1]) == {"n": 3, "finite": 2, "median": 2.0, "q25": 1.0,
                                        "q75": 2.0, "iqr": None}
    assert median_iqr([]) == {"n": 0}


def test_groups_summarise_each_label():
    from gi_energy.report.stats import summarise_groups

    rows = [{"label": "a", "replayed": False, "hv_ratio": 0.5, "headline": {"saving": 0.2}},
            {"label": "a", "replayed": True, "hv_ratio": 0.7, "headline": None},
            {"label": "b", "replayed": False, "hv_ratio": 0.9, "headline": {"saving": 0.4}}]
    a, b = summarise_groups(rows, ["hv_ratio"])
    assert (a["label"], a["runs"], a["replayed"]) == ("a", 2, True)
    assert a["hv_ratio"]["median"] == pytest.approx(0.6)
    assert a["saving"] == {"n": 1, "finite": 1, "median": 0.2, "q25": 0.2, "q75": 0.2,
                           "iqr": 0.0}
    assert (b["label"], b["runs"], b["replayed"], b["hv_ratio"]["median"]) == ("b", 1, False,
                                                                               0.9)


def test_lower_quartiles_of_a_hundred_and_one_runs():
    # 0..99 and one run that never got there: the "lower" percentile p is the value p.
    from gi_energy.report.stats import median_iqr

    got = median_iqr([*range(100), None])
    assert (got["q25"], got["median"], got["q75"], got["finite"]) == (25.0, 50.0, 75.0, 100)


def test_a_spread_of_exactly_one_is_tested():
    from gi_energy.report.stats import rank_sum_tests

    rows = [_row("a", 0.0), _row("a", 0.5), _row("b", 1.0), _row("b", 1.0)]
    (test,) = rank_sum_tests(rows)
    z, p = _ranksum_by_hand([1, 2], 2)
    assert test["statistic"] == pytest.approx(z) and test["p_value"] == pytest.approx(p)
    assert p == pytest.approx(0.1213, abs=1e-4)


def test_without_scipy_the_tests_say_so(monkeypatch):
    import sys

    from gi_energy.report.stats import rank_sum_tests

    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    rows = [_row("a", 0.0), _row("a", 0.5), _row("b", 1.0), _row("b", 2.0)]
    assert rank_sum_tests(rows, "hv_ratio") == [
        {"metric": "hv_ratio", "note": "scipy is not installed (pip install gi-energy[experiments])"}]


# -- trajectories, thresholds, spent energy and the headline, by hand --------------------

def test_the_hypervolume_trajectory_and_the_thresholds(two_objectives):
    by = _by_path(two_objectives)
    grid = [r for r in two_objectives["runs"] if r["reference"]][0]
    # The grid's points in order: (0, 0.8) -> 1.1 x 0.3 = 0.33; + (0.25, 0.2) ->
    # 0.25 x 0.3 + 0.85 x 0.9 = 0.84; + (0.75, 0) -> 0.91; + a dominated point -> 0.91.
    assert grid["trajectory"]["hypervolume"] == pytest.approx([0.33, 0.84, 0.91, 0.91])
    assert grid["trajectory"]["hv_ratio"] == pytest.approx([0.33 / 0.91, 0.84 / 0.91, 1, 1])
    assert grid["trajectory"]["evaluations"] == [1, 2, 3, 4]
    # Each point cost its training (1 J) and inference (its J per 1k, 1,000 samples).
    assert grid["trajectory"]["energy_j"] == pytest.approx([11.0, 16.0, 19.0, 32.0])
    assert (grid["evaluations"], grid["trained"], grid["failures"]) == (4, 4, 0)
    assert grid["energy_spent_j"] == pytest.approx(32.0) and grid["energy_unknown"] == 0
    # 90 % of 0.91 is 0.819: reached at the second evaluation; 95 % and 99 % at the third.
    assert (grid["evaluations_to_90"], grid["evaluations_to_95"], grid["evaluations_to_99"]) \
        == (2, 3, 3)
    assert (grid["energy_j_to_90"], grid["energy_j_to_95"], grid["energy_j_to_99"]) \
        == pytest.approx((16.0, 19.0, 19.0))
    # a/0: (0.25, 0.4) -> 0.85 x 0.7 = 0.595, then 0.735; never 90 % of 0.91.
    a0 = by["a0"]
    assert a0["trajectory"]["hypervolume"] == pytest.approx([0.595, 0.735])
    assert a0["evaluations_to_90"] is None and a0["energy_j_to_90"] is None
    assert a0["front_size"] == 2 and by["a1"]["front_size"] == 1
    assert sorted(map(tuple, a0["front_points"])) == [(-0.8, 6.0), (-0.6, 2.0)]


def test_the_headline_saving_by_hand():
    from gi_energy.report.figures import energy_saving

    rows = [(8, 0.90, 10.0), (9, 0.90, 8.0), (10, 0.895, 4.0), (11, 0.885, 1.0)]
    outcomes = [_outcome(w, acc, e) for w, acc, e in rows]
    h = energy_saving(outcomes)
    # The most accurate at 0.90: the cheaper of the two (8 J); within one point (>= 0.89):
    # 0.895 at 4 J -> saving 1 - 4/8 = 0.5, 0.005 accuracy lost.
    assert h["most_accurate"]["inference_energy_j_per_1k"] == 8.0
    assert h["chosen"]["accuracy"] == 0.895 and h["chosen"]["inference_energy_j_per_1k"] == 4.0
    assert h["saving"] == pytest.approx(0.5) and h["accuracy_lost"] == pytest.approx(0.005)
    assert h["tolerance"] == 0.01
    wide = energy_saving(outcomes, tolerance=0.015)   # 0.885 is in: 1 - 1/8
    assert wide["saving"] == pytest.approx(0.875)
    assert energy_saving([]) is None
    assert energy_saving(outcomes, constraints={"params": 50.0}) is None  # params are 100


# -- a run directory as compare reads it ---------------------------------------------------

def _dir(root, name, points, command="evolve", settings=None, measured=True, **info):
    base = load_problem("quickstart")
    problem = Problem(**{**base.__dict__, "objectives": TWO})
    rd = RunDirectory.create(root / name, problem, command, settings or {})
    rd.update_run_json(status="complete", objectives=TWO, **info)
    outcomes = [_outcome(8 + i, *p) for i, p in enumerate(points)]
    if not measured:
        g = outcomes[-1].genome
        est = Reading("estimate", "process-estimate", False, 1.0, 1.0)
        outcomes[-1] = Outcome(g, (Evaluation(genome=g, status="ok", val_accuracy=0.5, train=est,
                                              inference=est, inference_samples=1000,
                                              params=100),))
    rd.write_results(outcomes, TWO, [])
    return root / name


@pytest.mark.parametrize(("kw", "label", "replayed"), [
    ({}, "evolve", False),
    ({"info": {"label": "mine"}}, "mine", False),
    ({"settings": {"label": "from settings"}}, "from settings", False),
    ({"info": {"replayed": True}}, "evolve (replay)", True),
    ({"settings": {"replay": "runs/grid"}}, "evolve (replay)", True),
    ({"settings": {"replayed": True}}, "evolve (replay)", True),
    ({"settings": {"evaluator": "ReplayEvaluator"}}, "evolve (replay)", True),
    ({"settings": {"evaluator": "Evaluator"}}, "evolve", False),
    ({"command": "grid", "info": {"replayed": True}}, "grid", True),
])
def test_a_runs_label_and_whether_it_was_replayed(tmp_path, kw, label, replayed):
    from gi_energy.report.figures import load_run

    path = _dir(tmp_path, "r", [(0.9, 1.0)], command=kw.get("command", "evolve"),
                settings=kw.get("settings"), **kw.get("info", {}))
    run = load_run(path)
    assert (run.label, run.replayed) == (label, replayed)
    assert load_run(path, "given").label == "given"


def test_a_run_is_measured_only_when_every_ok_evaluation_is(tmp_path):
    from gi_energy.report.figures import load_run

    assert load_run(_dir(tmp_path, "m", [(0.9, 1.0), (0.8, 0.5)])).measured is True
    assert load_run(_dir(tmp_path, "e", [(0.9, 1.0), (0.8, 0.5)], measured=False)).measured \
        is False


def test_a_runs_constraints_come_from_its_settings(tmp_path):
    from gi_energy.report.figures import load_run

    run = load_run(_dir(tmp_path, "c", [(0.9, 1.0)], settings={"constraints": {"params": 50}}))
    assert run.constraints == {"params": 50.0}
    assert load_run(_dir(tmp_path, "n", [(0.9, 1.0)])).constraints is None


def test_a_run_without_evaluations_is_refused(tmp_path):
    from gi_energy.errors import UsageError
    from gi_energy.report.figures import load_run

    base = load_problem("quickstart")
    RunDirectory.create(tmp_path / "empty", base, "evolve", {})
    with pytest.raises(UsageError) as err:
        load_run(tmp_path / "empty")
    assert str(err.value) == f"{tmp_path / 'empty'}: the run has no evaluations.csv yet"


def test_the_trajectory_counts_paid_joules_and_only_feasible_points():
    from gi_energy.report.figures import hv_trajectory
    from gi_energy.report.indicators import Normaliser

    # Normalised by (-1..0, 0..10): (0.9, 2) -> (0.1, 0.2), (0.8, 1) -> (0.2, 0.1).
    a = _outcome(8, 0.9, 2.0)
    b = _outcome(9, 0.8, 1.0)
    big = Outcome(b.genome, tuple(Evaluation(**{**e.__dict__, "params": 500})
                                  for e in b.evaluations))
    norm = Normaliser((-1.0, 0.0), (0.0, 10.0))
    ref = [1.1, 1.1]
    t = hv_trajectory([a, big], TWO, norm, ref, spent_flags=[(True,), (False,)],
                      constraints={"params": 200.0})
    # a costs 1 + 2 J and is paid; b is not paid (cached) and infeasible (500 params).
    assert t["energy_j"] == pytest.approx([3.0, 3.0])
    assert t["hypervolume"] == pytest.approx([1.0 * 0.9, 1.0 * 0.9])
    t = hv_trajectory([a, b], TWO, norm, ref)
    # Both feasible, as a staircase: 0.1 x (1.1 - 0.2) + (1.1 - 0.2) x (1.1 - 0.1) = 0.99.
    assert t["hypervolume"] == pytest.approx([0.9, 0.1 * 0.9 + 0.9 * 1.0])
    assert t["energy_j"] == pytest.approx([3.0, 5.0])
    # A point dominated by the front so far adds nothing (and is not recomputed).
    t = hv_trajectory([b, a, _outcome(10, 0.7, 3.0)], TWO, norm, ref)
    assert t["hypervolume"][-1] == pytest.approx(t["hypervolume"][1])


def test_the_headline_picks_by_energy_then_accuracy_and_says_which(tmp_path):
    from gi_energy.report.figures import energy_saving

    # Within one point of 0.90: 0.895 at 4 J and 0.898 at 4 J (the more accurate wins the
    # tie), 0.893 at 6 J; the base is the cheaper of the two at 0.90 (8 J, tie on energy
    # with nothing).
    rows = [(8, 0.90, 8.0), (9, 0.895, 4.0), (10, 0.898, 4.0), (11, 0.893, 6.0)]
    outcomes = [_outcome(w, acc, e) for w, acc, e in rows]
    h = energy_saving(outcomes)
    assert h["chosen"] == {"key": outcomes[2].key, "accuracy": 0.898,
                           "inference_energy_j_per_1k": 4.0, "test_accuracy": None,
                           "measured": True}
    assert h["most_accurate"]["key"] == outcomes[0].key
    assert h["saving"] == pytest.approx(0.5)
    # Two equally accurate, equally cheap models: either is the base, no comparison fails.
    same = [_outcome(8, 0.9, 8.0), _outcome(9, 0.9, 8.0)]
    assert energy_saving(same)["saving"] == 0.0
    # A model without an inference figure takes no part.
    g = _outcome(12, 0.99, 1.0).genome
    no_energy = Outcome(g, (Evaluation(genome=g, status="ok", val_accuracy=0.99,
                                       train=Reading("rapl", "package", True, 1.0, 1.0),
                                       inference=None, params=100),))
    assert energy_saving([*outcomes, no_energy])["most_accurate"]["accuracy"] == 0.90
    # A base under 1 J is divided by; a base of 0 J saves nothing.
    assert energy_saving([_outcome(8, 0.9, 0.5), _outcome(9, 0.895, 0.25)])["saving"] \
        == pytest.approx(0.5)
    assert energy_saving([_outcome(8, 0.9, 0.0), _outcome(9, 0.895, 0.0)])["saving"] == 0.0


def test_a_runs_row_names_its_command_seed_failures_and_unknown_energy(tmp_path):
    from gi_energy.report.compare import compare_runs

    root = tmp_path
    grid = _run(root, "grid", TWO, "grid", "grid", 0, [(0.9, 10.0), (0.6, 2.0)])
    path = _run(root, "x", TWO, "evolve", "x", 5, [(0.8, 4.0)])
    rd = RunDirectory.open(path)
    g_fail = _outcome(20, 0.5, 1.0).genome
    failed = Outcome(g_fail, (Evaluation(genome=g_fail, status="failed", reason="boom"),))
    g_unk = _outcome(21, 0.5, 1.0).genome
    unknown = Outcome(g_unk, (Evaluation(genome=g_unk, status="ok", val_accuracy=0.5,
                                         train=Reading.missing_reading("rapl", "gone"),
                                         inference=Reading("rapl", "package", True, 3.0, 1.0),
                                         inference_samples=1000, params=100),))
    rd.write_results([_outcome(8, 0.8, 4.0), failed, unknown], TWO, [])
    cmp = compare_runs([path], reference=grid)
    (row,) = [r for r in cmp["runs"] if not r["reference"]]
    # Unknown energy: the evaluation whose training reading is missing, and the failed one,
    # which has no readings at all (a missing reading is never a zero).
    assert (row["command"], row["seed"], row["failures"], row["energy_unknown"]) == (
        "evolve", 5, 1, 2)
    assert row["evaluations"] == 3


def test_a_run_with_no_feasible_point_scores_nothing(tmp_path):
    from gi_energy.report.compare import compare_runs

    grid = _run(tmp_path, "grid", TWO, "grid", "grid", 0, [(0.9, 10.0), (0.6, 2.0)])
    bad = _run(tmp_path, "bad", TWO, "evolve", "bad", 0, [(0.95, 1.0)])
    g = _outcome(8, 0.95, 1.0).genome
    heavy = Outcome(g, (Evaluation(genome=g, status="ok", val_accuracy=0.95,
                                   train=Reading("rapl", "package", True, 1.0, 1.0),
                                   inference=Reading("rapl", "package", True, 1.0, 1.0),
                                   inference_samples=1000, params=500),))
    RunDirectory.open(bad).write_results([heavy], TWO, [])
    for p in (grid, bad):
        RunDirectory.open(p).update_run_json(settings={"constraints": {"params": 200.0}})
    (row,) = [r for r in compare_runs([bad], reference=grid)["runs"] if not r["reference"]]
    assert (row["front_size"], row["hypervolume"], row["hv_ratio"], row["hv_ratio_front"]) == (
        0, 0.0, 0.0, 0.0)
    assert row["front_points"] == [] and row["headline"] is None
    assert row["coverage"] == 0.0
    # The infeasible point adds no hypervolume along the way either; it still cost 2 J.
    assert row["trajectory"]["hypervolume"] == [0.0]
    assert row["trajectory"]["energy_j"] == pytest.approx([2.0])


def test_hv_ratio_on_the_reference_fronts_own_scale(two_objectives):
    # The grid front's own ideal (-0.9, 2) and nadir (-0.6, 10): spans 0.3 and 8.
    #   grid front -> (0, 1), (1/3, 0.25), (1, 0): 1/3 x 0.1 + 2/3 x 0.85 + 0.1 x 1.1 = 0.71
    #   a/0 -> (1/3, 0.5), (1, 0): 2/3 x 0.6 + 0.1 x 1.1 = 0.51
    a0 = _by_path(two_objectives)["a0"]
    assert two_objectives["reference"]["front_scale"]["hypervolume"] == pytest.approx(0.71)
    assert a0["hv_ratio_front"] == pytest.approx(0.51 / 0.71)


def test_the_chosen_models_test_accuracy_and_a_flat_objectives_span():
    from gi_energy.report.figures import energy_saving, normalised_span
    from gi_energy.report.indicators import Normaliser

    g = _outcome(8, 0.9, 2.0).genome
    ev = Evaluation(genome=g, status="ok", val_accuracy=0.9, test_accuracy=0.88,
                    train=Reading("rapl", "package", True, 1.0, 1.0),
                    inference=Reading("rapl", "package", True, 2.0, 1.0),
                    inference_samples=1000, params=100)
    h = energy_saving([Outcome(g, (ev,))])
    assert h["chosen"]["test_accuracy"] == 0.88 and h["most_accurate"]["test_accuracy"] == 0.88
    span = normalised_span(Normaliser((0.0, 5.0), (4.0, 5.0)))
    assert span.tolist() == [4.0, 1.0] and span.dtype == float
