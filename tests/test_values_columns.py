"""report/columns.py: a run's evaluations column-wise, checked by hand and against the
Outcome objects the same file reads back into (the rules the columns must follow)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.report.columns import RunColumns
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome

TWO = {"accuracy": "max", "inference_energy_j_per_1k": "min"}
NAN = math.nan


def _ev(g, repeat=0, acc=0.8, train_j=1.0, inf_j=2.0, *, status="ok", params=100, samples=1000,
        time_s=0.5, measured=True, metrics=None):
    if status != "ok":
        return Evaluation(genome=g, status=status, repeat=repeat, reason="boom")
    train = Reading.missing_reading("rapl", "gone") if train_j is None else Reading("rapl", "package", measured,
                                                                                    train_j, 1.0)
    return Evaluation(genome=g, status="ok", repeat=repeat, val_accuracy=acc, test_accuracy=acc - 0.1,
                      train=train, inference=Reading("rapl", "package", True, inf_j, 1.0),
                      inference_samples=samples, inference_time_s=time_s, params=params,
                      metrics=metrics or {})


def _g(i):
    return Genome(layers={"hidden": (8 + i,)}, values={})


def _outcomes():
    """Five outcomes, one genome met twice:

        0  three repeats, accuracy 0.8, 0.9, 0.7 (median 0.8), joules 3, 4, 5
        1  two repeats, 0.8 and 0.9 (median 0.85); the second's training reading missing
        2  two repeats, the second failed: not ok, no metric
        3  one repeat, an estimate (not measured), 0 inference samples, latency inf
        4  genome 0 again (a second outcome of it)
    """
    g = [_g(i) for i in range(4)]
    return [
        Outcome(g[0], (_ev(g[0], 0, 0.8, 1.0, 2.0, metrics={"latency": 3.0}),
                       _ev(g[0], 1, 0.9, 2.0, 2.0, metrics={"latency": 5.0}),
                       _ev(g[0], 2, 0.7, 3.0, 2.0, metrics={"latency": 4.0}))),
        Outcome(g[1], (_ev(g[1], 0, 0.8, 1.0, 3.0, params=300), _ev(g[1], 1, 0.9, None, 5.0, params=100))),
        Outcome(g[2], (_ev(g[2], 0, 0.6), _ev(g[2], 1, status="failed"))),
        Outcome(g[3], (_ev(g[3], 0, 0.95, 1.0, 1.0, samples=0, measured=False, metrics={"latency": math.inf}),),
                cached=True),
        Outcome(g[0], (_ev(g[0], 0, 0.5, 1.0, 9.0),)),
    ]


def _write(tmp_path, outcomes, spent=None):
    rd = RunDirectory.create(tmp_path / "run", load_problem("quickstart"), "evolve", {})
    rd.write_results(outcomes, TWO, [], spent=spent)
    return tmp_path / "run"


@pytest.fixture
def both(tmp_path):
    """The same run, read from its evaluations.csv and built from the Outcomes."""
    outcomes = _outcomes()
    path = _write(tmp_path, outcomes)
    return RunColumns.read(path), RunColumns.from_outcomes(*RunDirectory.open(path).read_outcomes_and_spent())


def _same(a, b):
    assert np.array_equal(a, b, equal_nan=True), (a, b)


def test_medians_over_repeats_and_what_is_missing(both):
    for c in both:
        assert len(c) == 5 and c.sizes.tolist() == [3, 2, 2, 1, 1]
        _same(c.metric("accuracy"), [0.8, (0.8 + 0.9) / 2, NAN, 0.95, 0.5])
        _same(c.metric("test_accuracy"), [0.8 - 0.1, ((0.8 - 0.1) + (0.9 - 0.1)) / 2, NAN, 0.95 - 0.1, 0.5 - 0.1])
        _same(c.metric("train_energy_j"), [2.0, NAN, NAN, 1.0, 1.0])  # 1 missing repeat: missing
        _same(c.metric("inference_energy_j_per_1k"), [2.0, 4.0, NAN, NAN, 9.0])  # 0 samples: none
        _same(c.metric("params"), [100.0, 200.0, NAN, 100.0, 100.0])
        _same(c.metric("inference_time_s_per_1k"), [0.5, 0.5, NAN, NAN, 0.5])
        _same(c.metric("latency"), [4.0, NAN, NAN, NAN, NAN])  # a task's own metric; inf is missing
        assert c.ok.tolist() == [True, True, False, True, True]
        assert c.measured.tolist() == [True, False, False, False, True]  # a missing reading is not measured
        assert c.first.tolist() == [True, True, True, True, False]
        assert c.row_ok.tolist() == [True] * 6 + [False] + [True] * 2


def test_the_columns_agree_with_the_outcomes(both):
    read, built = both
    for name in ("accuracy", "test_accuracy", "train_energy_j", "inference_energy_j_per_1k", "params",
                 "flops_per_sample", "train_time_s", "inference_time_s_per_1k", "latency"):
        _same(read.metric(name), built.metric(name))
    for a, b in zip(read.paid(), built.paid()):
        _same(a, b)
    assert read.keys.tolist() == built.keys.tolist()
    _same(read.row_joules, built.row_joules)


def test_paid_joules_follow_the_journal(tmp_path):
    outcomes = _outcomes()
    c = RunColumns.read(_write(tmp_path, outcomes))
    paid, joules = c.paid()
    # Without a journal: every repeat of an outcome that was not cached. Joules per repeat
    # are training + inference: 3 + 4 + 5; 4 + unknown; 3 + (failed: unknown).
    assert paid.tolist() == [True, True, True, False, True]
    _same(joules, [12.0, NAN, NAN, 0.0, 10.0])
    spent = {(outcomes[0].key, 1), (outcomes[1].key, 0), (outcomes[3].key, 0)}
    c = RunColumns.read(_write(tmp_path / "j", outcomes, spent))
    paid, joules = c.paid()
    # The journal: repeat 1 of genome 0 (not repeat 0, so not its second outcome), repeat 0
    # of genome 1 (the known one), the cached genome 3.
    assert paid.tolist() == [True, True, False, True, False]
    _same(joules, [4.0, 4.0, 0.0, 2.0, 0.0])
    assert c.row_spent.tolist() == [False, True, False, True, False, False, False, True, False]


def test_feasibility_sums_the_relative_excess(both):
    for c in both:
        assert c.feasible(None).tolist() == [True] * 5
        assert c.feasible({}).tolist() == [True] * 5
        # params 100, 200, -, 100, 100 against 150: outcome 1 exceeds, 2 has no value.
        assert c.feasible({"params": 150.0}).tolist() == [True, False, False, True, True]
        # Two limits: an outcome within both is feasible; one missing metric is enough to fail.
        assert c.feasible({"params": 150.0, "accuracy": 0.9}).tolist() == [True, False, False, False, True]
        assert c.feasible({"latency": 10.0}).tolist() == [True, False, False, False, False]
        # At the limit is within it.
        assert c.feasible({"params": 100.0}).tolist() == [True, False, False, True, True]
        # A negative limit: the relative excess of a value above it is negative, never 0.
        assert c.feasible({"params": -1.0}).tolist() == [False] * 5


def test_objective_vectors_negate_what_is_maximised(both):
    for c in both:
        has, pts = c.objectives(TWO)
        assert has.tolist() == [True, True, False, False, True]
        assert pts.tolist() == [[-0.8, 2.0], [-(0.8 + 0.9) / 2, 4.0], [-0.5, 9.0]]
        has, pts = c.objectives({"params": "min", "accuracy": "min"})
        assert pts.tolist() == [[100.0, 0.8], [200.0, (0.8 + 0.9) / 2], [100.0, 0.95], [100.0, 0.5]]


def test_a_file_without_the_columns_is_read_through_the_objects(tmp_path):
    """An evaluations.csv of an older version (no energy_spent_j column, accuracy under
    its old name) gives the same columns."""
    import csv

    outcomes = _outcomes()
    path = _write(tmp_path, outcomes)
    new = RunColumns.read(path)
    csv_path = path / "evaluations.csv"
    rows = list(csv.DictReader(open(csv_path, newline="")))
    def rewrite():
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    for r in rows:
        r["accuracy"] = r.pop("val_accuracy")
    rewrite()
    renamed = RunColumns.read(path)
    _same(renamed.metric("accuracy"), new.metric("accuracy"))
    assert renamed.task_metrics is not None and len(renamed.task_metrics) == 9
    for r in rows:
        del r["energy_spent_j"], r["spent"]
    rewrite()
    old = RunColumns.read(path)
    _same(old.metric("accuracy"), new.metric("accuracy"))
    for a, b in zip(old.paid(), new.paid()):
        _same(a, b)


def test_an_unreadable_file_names_itself(tmp_path):
    path = _write(tmp_path, _outcomes()[:1])
    csv_path = path / "evaluations.csv"
    text = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([text[0], "x" + text[1]]) + "\n")
    with pytest.raises(UsageError) as err:
        RunColumns.read(path)
    assert str(err.value).startswith(f"{csv_path}: unreadable: the index column: ")
    # A float column that is not a number.
    cols = text[0].split(",")
    cells = text[1].split(",")
    cells[cols.index("params")] = "many"
    csv_path.write_text("\n".join([text[0], ",".join(cells)]) + "\n")
    with pytest.raises(UsageError) as err:
        RunColumns.read(path)
    assert str(err.value).startswith(f"{csv_path}: unreadable: ")


def test_an_empty_run_has_no_outcomes(tmp_path):
    c = RunColumns.read(_write(tmp_path, []))
    assert len(c) == 0 and c.paid()[0].tolist() == [] and c.objectives(TWO)[1].shape == (0, 2)


def test_non_finite_cells_are_missing(tmp_path):
    g = [_g(i) for i in range(3)]
    outcomes = [Outcome(g[0], (Evaluation(**{**_ev(g[0]).__dict__, "val_accuracy": math.nan, "train_time_s": 2.0}),)),
                Outcome(g[1], (Evaluation(**{**_ev(g[1]).__dict__, "train_time_s": math.inf}),)),
                Outcome(g[2], (Evaluation(**{**_ev(g[2]).__dict__, "test_accuracy": -math.inf, "train_time_s": 2.0}),))]
    path = _write(tmp_path, outcomes)
    assert "nan" in (path / "evaluations.csv").read_text()  # written as repr has it
    for c in (RunColumns.read(path), RunColumns.from_outcomes(outcomes)):
        _same(c.metric("accuracy"), [NAN, 0.8, 0.8])
        _same(c.metric("train_time_s"), [2.0, NAN, 2.0])
        _same(c.metric("test_accuracy"), [0.8 - 0.1, 0.8 - 0.1, NAN])


def test_without_a_spent_column_an_evaluation_is_spent_unless_cached(tmp_path):
    import csv

    outcomes = _outcomes()
    path = _write(tmp_path, outcomes)
    csv_path = path / "evaluations.csv"
    rows = list(csv.DictReader(open(csv_path, newline="")))
    for r in rows:
        del r["spent"]
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    paid, _ = RunColumns.read(path).paid()
    assert paid.tolist() == [True, True, True, False, True]
    # Outcomes in memory without flags: the same rule.
    assert RunColumns.from_outcomes(outcomes).paid()[0].tolist() == [True, True, True, False, True]


def test_a_built_in_metric_the_columns_do_not_know_is_an_error(monkeypatch):
    from gi_energy.tasks import results

    monkeypatch.setitem(results.BUILTIN_METRICS, "new_metric", lambda e: 1.0)
    with pytest.raises(KeyError, match="new_metric"):
        RunColumns.from_outcomes(_outcomes()).row_metric("new_metric")


def test_five_repeats_and_a_missing_first_reading(tmp_path):
    g = _g(0)
    evs = tuple(_ev(g, r, acc, train) for r, (acc, train) in enumerate(
        [(0.9, None), (0.7, 1.0), (0.6, 2.0), (0.8, 3.0), (0.5, 4.0)]))
    outcomes = [Outcome(g, evs)]
    for c in (RunColumns.read(_write(tmp_path, outcomes)), RunColumns.from_outcomes(outcomes)):
        _same(c.metric("accuracy"), [0.7])  # the middle of 0.5, 0.6, 0.7, 0.8, 0.9
        _same(c.metric("train_energy_j"), [NAN])  # the first repeat's is missing
        _same(c.paid()[1], [NAN])


def test_feasibility_is_the_searchs_own_test():
    """pareto.constraint_violation(o) == 0 for every outcome, whatever the limits: a
    negative limit's excess is negative, and two excesses can cancel (2.0 - 2.0 below)."""
    from gi_energy.pareto import constraint_violation

    outcomes = _outcomes()
    g = _g(9)
    outcomes.append(Outcome(g, (_ev(g, 0, 0.5, params=150),)))
    c = RunColumns.from_outcomes(outcomes)
    for limits in ({"params": 150.0}, {"latency": 10.0, "params": 150.0}, {"params": 50.0, "accuracy": -0.5},
                   {"accuracy": 0.85, "train_energy_j": 1.5}, {"params": -1.0}):
        expected = [constraint_violation(o, limits) == 0.0 for o in outcomes]
        assert c.feasible(limits).tolist() == expected, limits
    assert c.feasible({"params": 50.0, "accuracy": -0.5}).tolist()[-1] is True


def test_no_outcomes(tmp_path):
    c = RunColumns.from_outcomes([])
    assert len(c) == 0 and c.paid()[0].tolist() == [] and c.measured.tolist() == [] and c.ok.tolist() == []
    assert c.metric("accuracy").tolist() == [] and c.feasible({"params": 1.0}).tolist() == []


def _rewrite(csv_path, change):
    import csv

    rows = list(csv.DictReader(open(csv_path, newline="")))
    for r in rows:
        change(r)
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_which_files_are_read_column_wise(tmp_path, monkeypatch):
    """Every file of this version, and one with accuracy under its old name, is read
    column-wise; only a file without a needed column goes through the objects."""
    outcomes = _outcomes()
    path = _write(tmp_path, outcomes)
    expected = RunColumns.read(path).metric("accuracy")

    def no_objects(self):
        raise AssertionError("read through the objects")

    monkeypatch.setattr(RunDirectory, "read_outcomes_and_spent", no_objects)
    _rewrite(path / "evaluations.csv", lambda r: r.update(accuracy=r.pop("val_accuracy")))
    _same(RunColumns.read(path).metric("accuracy"), expected)
    _rewrite(path / "evaluations.csv", lambda r: r.pop("metrics_json"))  # the task's metrics: optional
    c = RunColumns.read(path)
    _same(c.metric("latency"), [NAN] * 5)
    _same(c.metric("accuracy"), expected)
    monkeypatch.undo()
    _rewrite(path / "evaluations.csv", lambda r: r.pop("accuracy"))  # no accuracy at all: the objects
    _same(RunColumns.read(path).metric("accuracy"), [NAN] * 5)


def test_an_empty_file_has_no_outcomes(tmp_path):
    path = _write(tmp_path, _outcomes()[:1])
    (path / "evaluations.csv").write_text("")
    assert len(RunColumns.read(path)) == 0


def test_inference_time_per_thousand_samples():
    outcomes = [Outcome(_g(i), (_ev(_g(i), samples=s, time_s=t),)) for i, (s, t) in
                enumerate([(1, 0.5), (1000, 0.5), (0, 0.5), (4, None), (2, 0.0)])]
    _same(RunColumns.from_outcomes(outcomes).metric("inference_time_s_per_1k"), [500.0, 0.5, NAN, NAN, 0.0])


def test_floats_are_parsed_exactly_on_each_pandas(monkeypatch):
    """pandas 3's default parser reads repr's digits back exactly; pandas 2's needs its
    round-trip one."""
    import pandas as pd

    from gi_energy.report.columns import exact_floats

    monkeypatch.setattr(pd, "__version__", "2.2.3")
    assert exact_floats() == {"float_precision": "round_trip"}
    monkeypatch.setattr(pd, "__version__", "3.0.0")
    assert exact_floats() == {}


def test_the_energy_kind_is_the_evaluations_one(tmp_path):
    """RunColumns.reading_flags weigh what plots.energy_kind weighs over the same
    evaluations: the readings with joules of the ok evaluations, measured or not."""
    from gi_energy.report.plots import energy_kind, kind_of

    g = [_g(i) for i in range(3)]
    estimate = Reading("estimate", "process-estimate", False, 1.0, 1.0)
    cases = {
        "all measured": [Outcome(g[0], (_ev(g[0]),))],
        "one window estimated": _outcomes(),  # outcome 3 trains on an estimate
        "estimated only": [Outcome(g[0], (Evaluation(genome=g[0], status="ok", val_accuracy=0.5, train=estimate,
                                                     inference=estimate, inference_samples=10),))],
        "the estimate is missing": [Outcome(g[0], (_ev(g[0]), Evaluation(
            genome=g[0], status="ok", repeat=1, val_accuracy=0.5, inference_samples=10,
            train=Reading.missing_reading("estimate", "no counter"), inference=None)))],
        "the estimate failed": [Outcome(g[0], (_ev(g[0]),)), Outcome(g[1], (Evaluation(
            genome=g[1], status="failed", reason="boom", train=estimate),))],
        "no reading": [Outcome(g[2], (_ev(g[2], status="failed"),))],
    }
    for i, (name, outcomes) in enumerate(cases.items()):
        path = _write(tmp_path / str(i), outcomes)
        expected = energy_kind([e for o in outcomes for e in o.evaluations])[0]
        assert kind_of(RunColumns.read(path).reading_flags()) == expected, name
        assert kind_of(RunColumns.from_outcomes(outcomes).reading_flags()) == expected, name
        for metric, windows in (("train_energy_j", ("train",)), ("inference_energy_j_per_1k", ("inference",)),
                                ("energy_spent_j", ("train", "inference"))):
            # each energy metric's word and sources, as its axis label gives them
            expected = energy_kind([e for o in outcomes for e in o.evaluations], metric)
            assert RunColumns.read(path).energy_kind(windows) == expected, (name, metric)
            assert RunColumns.from_outcomes(outcomes).energy_kind(windows) == expected, (name, metric)
    assert [energy_kind([e for o in c for e in o.evaluations])[0] for c in cases.values()] == \
        ["measured", "partly estimated", "estimated", "measured", "measured", None]


def test_a_run_read_in_part_answers_as_the_run_read_whole(tmp_path):
    """RunResult's counts, front, ok positions, energy kind and outcomes at positions,
    read column-wise (repeats, a failed repeat, an estimate, a genome met twice), are
    those of the same run read whole."""
    from gi_energy.report.run import RunResult

    path = _write(tmp_path, _outcomes())
    whole = RunResult(path)
    assert len(whole.outcomes) == 5
    part = RunResult(path)
    assert part.outcome_count == 5 and not part._whole
    assert part.outcome_keys() == [o.key for o in whole.outcomes]
    assert part.ok_positions() == whole.ok_positions() == [0, 1, 3, 4]
    assert part.ok_positions(exclude={_g(0).key}) == [1, 3]
    assert part.front_positions() == whole.front_positions()
    assert part.front == whole.front and part.energy_kind == whole.energy_kind == "partly estimated"
    assert part.outcomes_at([4, 2, 0]) == [whole.outcomes[p] for p in (4, 2, 0)]
    assert part.outcomes_at([0])[0] is part.outcomes_at([0])[0]  # built once
    assert part.summary() == whole.summary() and not part._whole


def test_a_run_of_an_older_file_read_in_part_goes_through_the_objects(tmp_path):
    """A file without the columns the part read needs (here inference_energy_j) still
    answers, the same, through the objects."""
    from gi_energy.report.run import RunResult

    path = _write(tmp_path, _outcomes())
    whole = RunResult(path)
    expected = ([o.key for o in whole.front], whole.energy_kind, whole.outcome_count, whole.summary())
    _rewrite(path / "evaluations.csv", lambda r: r.pop("inference_energy_j"))
    part = RunResult(path)
    assert part.columns.indexes is None  # read through the objects
    assert ([o.key for o in part.front], part.energy_kind, part.outcome_count, part.summary()) == expected
    assert [o.key for o in part.outcomes_at([3, 0])] == [whole.outcomes[3].key, whole.outcomes[0].key]


def _drawn(fig):
    """What a front figure shows: per panel, the cloud's points, the front's line, the
    axis labels and scales; and the title."""
    panels = []
    for ax in fig.axes:
        if not ax.axison:
            panels.append([t.get_text() for t in ax.texts])
            continue
        cloud = [c.get_offsets().tolist() for c in ax.collections]
        lines = [(line.get_xdata().tolist(), line.get_ydata().tolist()) for line in ax.get_lines()]
        panels.append([cloud, lines, ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale(), ax.get_yscale()])
    return panels, fig._suptitle.get_text()


def test_the_front_figure_from_the_columns_is_the_one_from_the_outcomes(tmp_path):
    """RunResult.plot_front of a run not read whole draws from its columns: the same
    points, front, labels (the readings' word and sources) and title as the figure of the
    outcomes; two and three objectives, repeats, a failed repeat, an estimate, a genome
    met twice, an older file without the readings' sources."""
    from gi_energy.report.plots import columns_front_figure, front_figure
    from gi_energy.report.run import RunResult

    outcomes = _outcomes()
    path = _write(tmp_path, outcomes)
    whole = RunResult(path)
    expected = _drawn(front_figure(whole.outcomes, whole.objectives, whole.front,
                                   title=f"{whole.label}: 2 on the front of 5 evaluated"))
    part = RunResult(path)
    assert len(part.front) == 2
    assert _drawn(part.plot_front()) == expected and not part._whole
    three = {"accuracy": "max", "train_energy_j": "min", "params": "min"}
    columns = RunColumns.read(path)
    keys = {outcomes[0].key, outcomes[3].key}
    front = [o for o in whole.outcomes if o.key in keys]
    assert _drawn(columns_front_figure(columns, three, keys, "t")) == _drawn(front_figure(whole.outcomes, three,
                                                                                         front, "t"))
    _rewrite(path / "evaluations.csv", lambda r: r.pop("train_backend"))
    assert columns_front_figure(RunColumns.read(path), three, keys, "t") is None  # the sources are unknown
    assert _drawn(RunResult(path).plot_front()) == expected  # through the objects
