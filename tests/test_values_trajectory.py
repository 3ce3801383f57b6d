"""The hypervolume trajectory of report/figures.py against plain one-at-a-time oracles:
the front kept chunk by chunk, the checkpoints, and the first evaluation to reach a
target found between two checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading
from gi_energy.pareto import nondominated
from gi_energy.report.columns import RunColumns
from gi_energy.report.figures import (
    _first_reaching,
    _Front,
    _weakly_dominated,
    checkpoints,
    hv_trajectory,
    trajectory,
)
from gi_energy.report.indicators import Normaliser, hypervolume
from gi_energy.tasks.results import Evaluation, Outcome

TWO = {"accuracy": "max", "inference_energy_j_per_1k": "min"}
REF = [1.1, 1.1]


def _sequential_front(points: np.ndarray) -> np.ndarray:
    """The front as the search keeps it, one point at a time (the oracle)."""
    front = points[:0]
    for p in points:
        if not len(front) or not np.any(np.all(front <= p, axis=1)):
            front = np.vstack([front, p])
            front = front[nondominated(front)]
    return front


def _ties(rng, n, m):
    """Points on a coarse grid: many ties and duplicates."""
    return rng.integers(0, 4, size=(n, m)).astype(float)


def test_weakly_dominated_is_every_objective_no_worse():
    rng = np.random.default_rng(1)
    for m in (2, 3):
        pts, by = _ties(rng, 9, m), _ties(rng, 7, m)
        expected = np.array([[bool(np.all(b <= p)) for b in by] for p in pts])
        assert np.array_equal(_weakly_dominated(pts, by), expected)
    # Objective by objective: (3, 1, 1) is weakly dominated by (2, 1, 1), not by (1, 2, 1).
    assert _weakly_dominated(np.array([[3.0, 1, 1]]), np.array([[2.0, 1, 1], [1.0, 2, 1]])).tolist() == [
        [True, False]]


@pytest.mark.parametrize("chunk", [1, 2, 7, 256])
@pytest.mark.parametrize("m", [2, 3])
def test_the_front_kept_chunk_by_chunk_is_the_one_kept_point_by_point(monkeypatch, chunk, m):
    monkeypatch.setattr(_Front, "CHUNK", chunk)
    rng = np.random.default_rng(m)
    pts = _ties(rng, 40, m)
    oracle = _sequential_front(pts)
    whole = _Front(pts[:0])
    whole.add(pts)
    assert np.array_equal(whole.points, oracle)  # the same rows, in the same order
    parts = _Front(pts[:0])
    for s in range(0, 40, 6):  # and in pieces, as between checkpoints
        parts.add(pts[s:s + 6])
    assert np.array_equal(parts.points, oracle)


def test_adding_says_whether_the_front_changed():
    f = _Front(np.zeros((0, 2)))
    assert f.add(np.zeros((0, 2))) is False
    # Two equal points in one chunk: the second is weakly dominated by the first.
    assert f.add(np.array([[1.0, 1.0], [1.0, 1.0]])) is True and f.points.tolist() == [[1.0, 1.0]]
    assert f.add(np.array([[1.0, 2.0], [1.0, 1.0]])) is False
    assert f.add(np.array([[2.0, 0.0], [1.5, 0.8], [2.0, 0.0]])) is True  # the repeat is dropped
    assert f.points.tolist() == [[1.0, 1.0], [2.0, 0.0], [1.5, 0.8]]
    assert f.add(np.array([[0.0, 0.0]])) is True and f.points.tolist() == [[0.0, 0.0]]


def test_checkpoints():
    assert checkpoints(0).tolist() == [] and checkpoints(3).tolist() == [1, 2, 3]
    # 12 evaluations at 4 points: linspace 1, 4.67, 8.33, 12, rounded.
    marks = checkpoints(12, 4)
    assert marks.tolist() == [1, 5, 8, 12] and marks.dtype.kind == "i"
    assert checkpoints(5, 4).tolist() == [1, 2, 4, 5]
    big = checkpoints(100_000)
    assert (len(big), big[0], big[-1]) == (1000, 1, 100_000) and np.all(np.diff(big) > 0)
    assert checkpoints(1000).tolist() == list(range(1, 1001))


def _outcome(i, accuracy, joules, ok=True, params=100):
    g = Genome(layers={"hidden": (8 + i,)}, values={})
    if not ok:
        return Outcome(g, (Evaluation(genome=g, status="failed"),))
    ev = Evaluation(genome=g, status="ok", val_accuracy=accuracy,
                    train=Reading("rapl", "package", True, 1.0, 1.0),
                    inference=Reading("rapl", "package", True, joules, 1.0), inference_samples=1000, params=params)
    return Outcome(g, (ev,))


def _run(n=40, seed=0):
    """``n`` evaluations: mostly ok, some failed, some over a params limit of 150."""
    rng = np.random.default_rng(seed)
    return [_outcome(i, float(rng.uniform(0.5, 0.9)), float(rng.uniform(1, 10)), ok=bool(rng.uniform() > 0.1),
                     params=int(rng.choice([100, 200], p=[0.8, 0.2]))) for i in range(n)]


def _oracle(outcomes, norm, constraints):
    """Per evaluation: the hypervolume of every feasible point so far, and the joules."""
    hvs, joules, pts, spent = [], [], [], 0.0
    for o in outcomes:
        spent += o.paid_energy()[1] or 0.0
        v = o.objectives(TWO)
        if v is not None and o.metric("params") <= constraints["params"]:
            pts.append(v)
        hvs.append(hypervolume(norm(np.array(pts)), REF) if pts else 0.0)
        joules.append(spent)
    return np.array(hvs), joules


def test_a_sampled_trajectory_and_its_exact_thresholds():
    outcomes = _run()
    norm = Normaliser((-0.9, 1.0), (-0.5, 10.0))
    limits = {"params": 150.0}
    hvs, joules = _oracle(outcomes, norm, limits)
    levels = np.unique(hvs)
    # Targets between two levels the run reaches (so no rounding can decide), one it never
    # reaches, and one of 0 (reached at the first evaluation, found or not).
    targets = [(levels[k] + levels[k + 1]) / 2 for k in (1, len(levels) // 2, len(levels) - 2)]
    targets += [hvs[-1] + 0.01, 0.0]
    columns = RunColumns.from_outcomes(outcomes)
    traj, hits = trajectory(columns, TWO, norm, REF, limits, targets, points=5)
    marks = [1, 11, 20, 30, 40]
    assert traj["evaluations"] == marks
    assert traj["hypervolume"] == pytest.approx([hvs[e - 1] for e in marks])
    assert traj["energy_j"] == pytest.approx([joules[e - 1] for e in marks])
    expected = [int(np.argmax(hvs >= t)) + 1 for t in targets[:3]] + [None, 1]
    assert hits == expected
    # Some of those fall strictly between two checkpoints, so the interval was replayed.
    assert any(h not in marks for h in expected[:3])
    # Every evaluation: the same thresholds, and every value.
    full, hits_full = trajectory(columns, TWO, norm, REF, limits, targets, points=40)
    assert hits_full == expected and full["evaluations"] == list(range(1, 41))
    assert full["hypervolume"] == pytest.approx(hvs.tolist())
    assert [full["hypervolume"][e - 1] for e in marks] == traj["hypervolume"]  # the very same floats
    # A target equal to a level the run reaches is reached there: at a checkpoint or between two.
    levels = sorted(set(full["hypervolume"]))
    for level in levels[1:]:
        first = full["hypervolume"].index(level) + 1
        assert trajectory(columns, TWO, norm, REF, limits, [level], points=5)[1] == [first]
    assert any(full["hypervolume"].index(level) + 1 not in marks for level in levels[1:])
    # Nothing evaluated: nothing reached, not even 0.
    assert trajectory(RunColumns.from_outcomes([]), TWO, norm, REF, limits, [0.0, 0.5]) == (
        {"evaluations": [], "energy_j": [], "hypervolume": []}, [None, None])


def test_the_first_point_reaching_a_target_between_checkpoints():
    # From (0.5, 0.5) (hypervolume 0.36): (0.6, 0.6) adds nothing, (0.4, 0.6) adds
    # 0.1 x 0.5 -> 0.41, (0.1, 0.9) adds 0.3 x 0.2 -> 0.47.
    front = np.array([[0.5, 0.5]])
    pts = np.array([[0.6, 0.6], [0.4, 0.6], [0.1, 0.9]])
    at = np.array([10, 11, 12])
    assert _first_reaching(0.40, front, pts, at, REF) == 12
    assert _first_reaching(0.45, front, pts, at, REF) == 13
    assert _first_reaching(0.37, front, pts[1:], at[1:], REF) == 12


def test_hv_trajectory_reports_every_evaluation_however_many():
    outcomes = _run(1001, seed=3)
    norm = Normaliser((-0.9, 1.0), (-0.5, 10.0))
    t = hv_trajectory(outcomes, TWO, norm, REF)
    assert t["evaluations"] == list(range(1, 1002)) and len(t["hypervolume"]) == 1001
