"""Run directory: create/open, run.json, and the results round trip."""

from __future__ import annotations

import json

import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import parse_problem
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.pareto import feasible_only, unique_outcomes
from gi_energy.report.plots import write_front_png
from gi_energy.runs.files import default_run_dir, write_json_atomic
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome

OBJ = {"accuracy": "max", "inference_energy_j_per_1k": "min"}


def _problem(objectives=None):
    return parse_problem({"problem": {"name": "tiny", "seed": 3},
                          "objectives": objectives or OBJ}, source="<test>")


def _reading(j, measured=True):
    return Reading(backend="rapl" if measured else "estimate", scope="package" if measured else "process-estimate",
                   measured=measured, energy_j=j, duration_s=0.5, domains_j={"package-0": j} if j else {})


def _outcome(width, acc, inf_j, repeat_accs=None, measured=True, status="ok"):
    g = Genome(layers={"hidden": (width, width)}, values={"learning_rate": 0.001, "activation": "relu"})
    accs = repeat_accs or [acc]
    evs = []
    for r, a in enumerate(accs):
        if status != "ok":
            evs.append(Evaluation(genome=g, status=status, repeat=r, reason="boom: it failed, badly",
                                  train=Reading.missing_reading("rapl", "counter unreadable")))
            continue
        evs.append(Evaluation(genome=g, status="ok", repeat=r, val_accuracy=a, test_accuracy=a - 0.01,
                              train=_reading(width * 0.1, measured), inference=_reading(inf_j, measured),
                              train_time_s=1.25, inference_time_s=0.1, inference_samples=500,
                              params=width * 100, flops_per_sample=width * 200, co2_g=1e-4, wall_time_s=1.5,
                              worker="w1", extra={"loss": 0.3}))
    return Outcome(genome=g, evaluations=tuple(evs))


def test_versions_are_the_installed_metadata_versions():
    import importlib.metadata

    from gi_energy.runs import rundir

    versions = rundir._versions()
    for dist in ("gi-energy", "torch", "numpy", "deap", "moocore"):
        assert versions[dist] == importlib.metadata.version(dist)


def test_installed_version_reads_the_header_not_the_description(tmp_path):
    import importlib.metadata

    from gi_energy.runs.rundir import _installed_version

    info = tmp_path / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.2.3rc1 \nSummary: s\n\n"
                                   "Version: 9.9 is not a header here\n")
    dist = importlib.metadata.PathDistribution(info)
    assert _installed_version(dist) == dist.version == "1.2.3rc1 "  # the e-mail parser keeps a trailing space
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\n\nVersion: 9.9\n")
    assert _installed_version(dist) is None  # no Version header: what the metadata itself says


def test_create_writes_run_json_and_problem(tmp_path):
    rd = RunDirectory.create(tmp_path / "r", _problem(), "grid", {"workers": 2})
    info = rd.read_run_json()
    assert info["problem"] == "tiny" and info["command"] == "grid" and info["status"] == "running"
    assert info["settings"] == {"workers": 2} and info["seed"] == 3
    assert set(info["versions"]) >= {"gi-energy", "python", "torch", "numpy", "deap"}
    assert info["machine"]["cores"] >= 1 and info["fingerprint"]
    assert (tmp_path / "r" / "problem.toml").read_text().startswith("# built in Python")
    rd.update_run_json(status="complete", evaluations=4)
    again = RunDirectory.open(tmp_path / "r").read_run_json()
    assert again["status"] == "complete" and again["evaluations"] == 4
    with pytest.raises(UsageError, match="already holds a run"):
        RunDirectory.create(tmp_path / "r", _problem(), "grid", {})


def test_open_rejects_non_run_dirs(tmp_path):
    with pytest.raises(UsageError, match="nope"):
        RunDirectory.open(tmp_path / "nope")
    with pytest.raises(UsageError, match="no run.json"):
        RunDirectory.open(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(UsageError, match="unreadable"):
        RunDirectory.open(tmp_path)


def test_results_round_trip(tmp_path):
    outcomes = [
        _outcome(8, 0.80, 0.01),
        _outcome(32, 0.90, 0.04, repeat_accs=[0.9, 0.92, 0.88]),
        _outcome(16, 0.70, 0.05),  # dominated
        _outcome(64, 0, 0, status="timeout"),
    ]
    rd = RunDirectory.create(tmp_path / "r", _problem(), "evolve", {})
    history = [{"generation": 0, "evaluations": 4, "energy_spent_j": 12.5, "hypervolume": 0.4}]
    front = rd.write_results(outcomes, OBJ, history)
    write_front_png(rd.path, outcomes, OBJ, front)
    evs = rd.read_evaluations()
    assert evs == [e for o in outcomes for e in o.evaluations]
    assert rd.read_outcomes() == outcomes
    front = rd.read_front()
    assert [r["widths"] for r in front] == ["32-32", "8-8"]  # most accurate first
    assert front[0]["accuracy"] == pytest.approx(0.9) and front[0]["repeats"] == 3
    assert rd.read_history() == history
    assert (tmp_path / "r" / "front.png").stat().st_size > 1000


def test_missing_energy_is_empty_not_zero(tmp_path):
    rd = RunDirectory.create(tmp_path / "r", _problem(), "grid", {})
    rd.write_results([_outcome(8, 0, 0, status="crashed")], OBJ, [])
    text = (tmp_path / "r" / "evaluations.csv").read_text()
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(text)))
    assert row["train_energy_j"] == "" and row["inference_energy_j"] == "" and row["val_accuracy"] == ""
    assert row["hidden_layers"] == "2" and row["widths"] == "8-8" and row["learning_rate"] == "0.001"
    ev = rd.read_evaluations()[0]
    assert ev.train.energy_j is None and ev.train.missing_reason == "counter unreadable"
    assert ev.train_energy_j is None and ev.reason == "boom: it failed, badly"


def test_three_objective_pair_plot(tmp_path):
    obj3 = {**OBJ, "train_energy_j": "min"}
    rd = RunDirectory.create(tmp_path / "r", _problem(obj3), "grid", {})
    outcomes = [_outcome(8, 0.8, 0.01, measured=False), _outcome(32, 0.9, 0.04, measured=False)]
    write_front_png(rd.path, outcomes, obj3, rd.write_results(outcomes, obj3, []))
    assert (tmp_path / "r" / "front.png").stat().st_size > 1000
    assert len(rd.read_front()) == 2


def test_default_run_dir_and_atomic_json(tmp_path):
    p = _problem()
    a = default_run_dir(p, "grid", tmp_path)
    assert a.parent == tmp_path and a.name.startswith("tiny-grid-")
    a.mkdir()
    b = default_run_dir(p, "grid", tmp_path)
    assert b != a
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_result_files_are_readable_by_others(tmp_path):
    import os
    import stat

    from gi_energy.runs.files import write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "x.json").stat().st_mode)
    assert mode == 0o644


def test_spent_column_and_its_fallback_for_older_files(tmp_path):
    import csv

    from gi_energy.runs.journal import TrainedJournal

    a, b = _outcome(8, 0.8, 0.01), _outcome(32, 0.9, 0.04, repeat_accs=[0.9, 0.92])
    b = Outcome(genome=b.genome, evaluations=b.evaluations, cached=True)  # a store hit...
    rd = RunDirectory.create(tmp_path / "r", _problem(), "evolve", {})
    journal = TrainedJournal(rd.path)
    journal.record(a.evaluations[0])
    journal.record(b.evaluations[1])  # ... one repeat of which this run had trained before a crash
    rd.write_results([a, b], OBJ, [], spent=journal.entries)
    assert rd.read_spent() == [(True,), (False, True)]
    assert rd.read_outcomes_and_spent() == (rd.read_outcomes(), [(True,), (False, True)])
    # an evaluations.csv written before the column existed: spent = not cached
    path = tmp_path / "r" / "evaluations.csv"
    rows = list(csv.DictReader(path.open()))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, [k for k in rows[0] if k != "spent"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    assert rd.read_spent() == [(True,), (False, False)]
    # the journal survives a torn last line (a kill mid-write) and a reopen
    journal.close()
    with open(tmp_path / "r" / "trained.jsonl", "a") as fh:
        fh.write('{"key": "half')
    again = TrainedJournal(rd.path)
    assert again.entries == {(a.key, 0), (b.key, 1)} and not again.record(a.evaluations[0])
    assert again.record(b.evaluations[0])  # appended after the torn line, not glued onto it
    again.close()
    assert TrainedJournal(rd.path).entries == {(a.key, 0), (b.key, 0), (b.key, 1)}


def test_unique_and_feasible_outcomes():
    a, b, a2 = _outcome(8, 0.8, 0.01), _outcome(32, 0.9, 0.04), _outcome(8, 0.7, 0.02)
    assert unique_outcomes([a, b, a2]) == [a, b]
    assert feasible_only([a, b], None) == [a, b] and feasible_only([a, b], {}) == [a, b]
    # params: 800 and 3200
    assert feasible_only([a, b, a2], {"params": 1000}) == [a, a2]


def test_write_json_atomic_compact_and_timestamped_dir(tmp_path):
    from gi_energy.runs.files import timestamped_dir

    write_json_atomic(tmp_path / "c.json", {"a": [1, 2]}, compact=True)
    assert (tmp_path / "c.json").read_text().strip() == '{"a":[1,2]}'
    a = timestamped_dir(tmp_path, "compare")
    assert a.parent == tmp_path and a.name.startswith("compare-")
    a.mkdir()
    assert timestamped_dir(tmp_path, "compare") != a


def test_write_results_returns_the_front_it_wrote(tmp_path):
    from gi_energy.pareto import front_outcomes

    rd = RunDirectory.create(tmp_path / "r", _problem(), "grid", {})
    outcomes = [_outcome(8, 0.8, 0.01), _outcome(32, 0.9, 0.04), _outcome(16, 0.7, 0.05)]
    front = rd.write_results(outcomes, OBJ, [])
    assert front == front_outcomes(outcomes, OBJ)
    assert [r["key"] for r in rd.read_front()] == [o.key for o in reversed(front)]
    # a front the caller already has is written as given
    assert rd.write_results(outcomes, OBJ, [], front=front[:1]) == front[:1]
    assert len(rd.read_front()) == 1
