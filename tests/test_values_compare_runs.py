"""compare_runs and its outputs on tiny hand-made run directories, every figure worked out
by hand: fast (no grid, no replay), so the mutation pass can run them once per mutant of
report/compare.py and report/figures.py (experiments/mutation.py).

The runs below, raw (accuracy, inference J per 1k) with 1 J of training each; minimisation
vectors (-accuracy, J), union bounds -0.9..-0.5 (span 0.4) and 2..12 (span 10):

    p  (0.9, 10) -> (0, 0.8)     (0.6, 2) -> (0.75, 0)
    q  (0.8, 4) -> (0.25, 0.2)   (0.5, 12) -> (1, 1)
    g  (grid) all four

The reference front (the grid's, or without one the union's) is (0, 0.8), (0.25, 0.2),
(0.75, 0): hypervolume to (1.1, 1.1) 0.25 x 0.3 + 0.5 x 0.9 + 0.35 x 1.1 = 0.91.
    p  0.75 x 0.3 + 0.35 x 1.1 = 0.61        q  0.85 x 0.9 = 0.765
On the reference front's own scale (ideal (-0.9, 2), nadir (-0.6, 10): spans 0.3 and 8)
the front is (0, 1), (1/3, 0.25), (1, 0): 1/3 x 0.1 + 2/3 x 0.85 + 0.1 x 1.1 = 0.71;
    p  (0, 1), (1, 0): 1 x 0.1 + 0.1 x 1.1 = 0.21
    q  (1/3, 0.25) and (4/3, 1.25), outside: (1.1 - 1/3) x 0.85 = 0.651666...
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.problem import Problem
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.report.compare import (
    SUMMARY_METRICS,
    _clean,
    check_out,
    cli_compare,
    compare,
    compare_runs,
    output_root,
    write_comparison,
)
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome

TWO = {"accuracy": "max", "inference_energy_j_per_1k": "min"}
P = [(0.9, 10.0), (0.6, 2.0)]
Q = [(0.8, 4.0), (0.5, 12.0)]


def _outcome(width: int, accuracy: float, inference_j: float, *, params: int = 100,
             status: str = "ok", measured: bool = True) -> Outcome:
    g = Genome(layers={"hidden": (width,)}, values={})
    if status != "ok":
        return Outcome(g, (Evaluation(genome=g, status=status, reason="boom"),))
    ev = Evaluation(genome=g, status="ok", val_accuracy=accuracy, test_accuracy=accuracy - 0.05,
                    train=Reading("rapl", "package", measured, 1.0, 1.0),
                    inference=Reading("rapl", "package", True, inference_j, 1.0),
                    inference_samples=1000, params=params)
    return Outcome(g, (ev,))


def _problem(**changes) -> Problem:
    base = load_problem("quickstart")
    return Problem(**{**base.__dict__, "objectives": TWO, **changes})


def _run(root, name, points, *, command="evolve", settings=None, outcomes=None, spent=None,
         problem=None, **info):
    rd = RunDirectory.create(root / name, problem or _problem(), command, settings or {})
    rd.update_run_json(status="complete", **info)
    outcomes = outcomes if outcomes is not None else [_outcome(8 + i, *p) for i, p in enumerate(points)]
    rd.write_results(outcomes, TWO, [], spent=spent)
    return root / name


def _by_name(cmp):
    return {r["path"].rsplit("/", 1)[-1]: r for r in cmp["runs"]}


# -- the reference, the scale and each run's figures -----------------------------------------

def test_without_a_reference_the_union_is_the_reference(tmp_path):
    p, q = _run(tmp_path, "p", P), _run(tmp_path, "q", Q)
    cmp = compare_runs([p, q], labels={str(p): "P", str(q): "Q"})
    ref = cmp["reference"]
    assert ref["source"] == "non-dominated union of every run's points (no --reference given)"
    assert ref["path"] is None and "evaluations" not in ref and "headline" not in ref
    assert ref["front_size"] == 3 and ref["hypervolume"] == pytest.approx(0.91)
    assert np.allclose(ref["front_normalised"], [[0, 0.8], [0.25, 0.2], [0.75, 0]])
    assert np.allclose(ref["front"], [[-0.9, 10.0], [-0.8, 4.0], [-0.6, 2.0]])
    scale = ref["front_scale"]
    assert scale["low"] == pytest.approx([-0.9, 2.0]) and scale["high"] == pytest.approx([-0.6, 10.0])
    assert scale["hypervolume"] == pytest.approx(0.71)
    assert scale["note"] == ("hv_ratio_front: normalised by the reference front's ideal and nadir points; "
                             "unbounded above (> 1: the run found points beyond the reference front)")
    assert cmp["normalisation"]["low"] == pytest.approx([-0.9, 2.0])
    assert cmp["normalisation"]["high"] == pytest.approx([-0.5, 12.0])
    assert cmp["normalisation"]["note"] == ("minimisation vectors (maximised objectives negated), bounds from "
                                            "the union of every run's ok points")
    assert cmp["reference_point"] == [1.1, 1.1]
    assert cmp["objectives"] == TWO and cmp["constraints"] == {}
    by = _by_name(cmp)
    assert [r["reference"] for r in cmp["runs"]] == [False, False]
    assert (by["p"]["label"], by["q"]["label"]) == ("P", "Q")
    assert by["p"]["hypervolume"] == pytest.approx(0.61)
    assert by["p"]["hv_ratio"] == pytest.approx(0.61 / 0.91)
    assert by["q"]["hv_ratio"] == pytest.approx(0.765 / 0.91)
    assert by["p"]["hv_ratio_front"] == pytest.approx(0.21 / 0.71)
    assert by["q"]["hv_ratio_front"] == pytest.approx((1.1 - 1 / 3) * 0.85 / 0.71)
    assert [g["label"] for g in cmp["groups"]] == ["P", "Q"]
    assert cmp["tests"] == []  # one run per method: nothing to test
    assert isinstance(cmp["created_at"], str) and cmp["created_at"][:2] == "20"


def test_against_a_grid_the_reference_carries_its_cost_and_headline(tmp_path):
    g = _run(tmp_path, "g", P + Q, command="grid")
    p = _run(tmp_path, "p", P)
    cmp = compare_runs([p, g, p], reference=g)  # the reference and a repeat are read once
    assert [r["path"].rsplit("/", 1)[-1] for r in cmp["runs"]] == ["g", "p"]
    assert [r["path"] for r in compare_runs([g, p], reference=g)["runs"]] == [str(g), str(p)]
    assert [r["reference"] for r in cmp["runs"]] == [True, False]
    ref = cmp["reference"]
    assert ref["source"] == f"front of the grid run {g}" and ref["path"] == str(g)
    # Each point cost 1 J of training and its inference joules: 11 + 3 + 5 + 13.
    assert (ref["evaluations"], ref["trained"], ref["energy_spent_j"], ref["measured"]) == (4, 4, 32.0, True)
    # The most accurate (0.9 at 10 J) has nothing within one point: no saving.
    assert ref["headline"]["saving"] == 0.0 and ref["headline"]["chosen"]["accuracy"] == 0.9
    assert ref["hypervolume"] == pytest.approx(0.91)
    assert _by_name(cmp)["p"]["hv_ratio"] == pytest.approx(0.61 / 0.91)
    # The grid alone is a comparison too (of the reference with itself).
    alone = compare_runs([], reference=g)
    assert [r["reference"] for r in alone["runs"]] == [True] and alone["groups"] == []


def test_methods_are_summarised_and_tested_on_both_scales(tmp_path):
    # Two methods of two runs each: a (p-like, q-like) and b (the same, swapped seeds).
    runs = [_run(tmp_path, f"{m}{i}", pts, label=m, seed=i)
            for m in ("a", "b") for i, pts in enumerate((P, Q))]
    cmp = compare_runs(runs)
    assert [t["metric"] for t in cmp["tests"]] == ["hv_ratio", "hv_ratio_front"]
    assert all((t["a"], t["b"], t["n_a"], t["n_b"]) == ("a", "b", 2, 2) for t in cmp["tests"])
    a = {g["label"]: g for g in cmp["groups"]}["a"]
    assert a["runs"] == 2
    assert a["hv_ratio"]["median"] == pytest.approx((0.61 + 0.765) / 2 / 0.91)
    assert a["hv_ratio_front"]["median"] == pytest.approx((0.21 + (1.1 - 1 / 3) * 0.85) / 2 / 0.71)
    assert a["evaluations"]["median"] == 2 and a["coverage"]["median"] == pytest.approx(0.5)
    # p: 11 + 3 J, q: 5 + 13 J.
    assert a["energy_spent_j"]["median"] == pytest.approx(16.0)
    # IGD+ (only the coordinates where the run's point is worse count): p to (0, 0.8) 0, to
    # (0.25, 0.2) min(0.6 from (0, 0.8), 0.5 from (0.75, 0)), to (0.75, 0) 0 -> 0.5 / 3;
    # q to (0, 0.8) 0.25, to (0.25, 0.2) 0, to (0.75, 0) 0.2 -> 0.45 / 3. Epsilon: p 0.5,
    # q max(0.25, 0, 0.2) = 0.25. Coverage: p 2/3, q 1/3.
    assert a["igd_plus"]["median"] == pytest.approx((0.5 / 3 + 0.45 / 3) / 2)
    assert a["epsilon_additive"]["median"] == pytest.approx((0.5 + 0.25) / 2)
    # 90 % of 0.91 is 0.819: p (0.61) and q (0.765) never reach it.
    assert a["evaluations_to_90"]["finite"] == 0 and a["energy_j_to_90"]["finite"] == 0
    for metric in SUMMARY_METRICS:
        assert a[metric]["n"] == 2, metric


# -- what compare refuses ---------------------------------------------------------------------

def test_nothing_to_compare(tmp_path):
    with pytest.raises(UsageError) as err:
        compare_runs([])
    assert str(err.value) == "no run directories to compare"
    failed = _run(tmp_path, "f", [], outcomes=[_outcome(8, 0, 0, status="failed")])
    with pytest.raises(UsageError) as err:
        compare_runs([failed])
    assert str(err.value) == "none of the runs has an ok evaluation with every objective; nothing to compare"
    heavy = _run(tmp_path, "h", P, settings={"constraints": {"params": 50}})
    with pytest.raises(UsageError) as err:
        compare_runs([heavy])
    assert str(err.value) == ("none of the runs has an ok evaluation with every objective that meets the "
                              "constraints; nothing to compare")


def test_a_reference_without_ok_evaluations_is_refused(tmp_path):
    g = _run(tmp_path, "g", [], command="grid", outcomes=[_outcome(8, 0, 0, status="failed")])
    p = _run(tmp_path, "p", P)
    with pytest.raises(UsageError) as err:
        compare_runs([p], reference=g)
    assert str(err.value) == f"{g}: the reference run has no ok evaluations"


def test_runs_on_other_objectives_or_another_problem_are_refused(tmp_path):
    p = _run(tmp_path, "p", P)
    other = _run(tmp_path, "o", Q, objectives={"accuracy": "max", "train_energy_j": "min"})
    with pytest.raises(UsageError) as err:
        compare_runs([p, other])
    assert str(err.value) == (f"{other}: objectives ['accuracy', 'train_energy_j'] differ from {p}'s "
                              "['accuracy', 'inference_energy_j_per_1k']; fronts on different objectives "
                              "cannot be compared")
    moved = _run(tmp_path, "m", Q, fingerprint="f00")
    fp = json.loads((p / "run.json").read_text())["fingerprint"]
    with pytest.raises(UsageError) as err:
        compare_runs([p, moved])
    assert str(err.value) == f"{moved}: a different problem setup (fingerprint f00, {p} has {fp})"
    # A run that recorded no fingerprint is not held to one (either way round).
    unknown = _run(tmp_path, "u", Q, fingerprint=None)
    assert len(compare_runs([p, unknown])["runs"]) == 2
    assert len(compare_runs([unknown, moved])["runs"]) == 2


def test_runs_held_to_different_constraints_are_refused(tmp_path):
    a = _run(tmp_path, "a", P, settings={"constraints": {"params": 500}})
    b = _run(tmp_path, "b", Q, settings={"constraints": {"params": 600}})
    c = _run(tmp_path, "c", Q, settings={"constraints": {"params": 500.0}})
    with pytest.raises(UsageError) as err:
        compare_runs([a, c, b])
    assert str(err.value) == (f"{b}: constraints {{'params': 600.0}} differ from {a}'s {{'params': 500.0}}; "
                              "fronts under different constraints cannot be compared")
    # One run that recorded its constraints holds the others to them.
    free = _run(tmp_path, "free", Q)
    cmp = compare_runs([free, a])
    assert cmp["constraints"] == {"params": 500.0}


# -- the outputs -----------------------------------------------------------------------------

def test_clean_writes_what_json_cannot_hold_as_null():
    data = {"a": math.inf, "b": [1.5, -math.inf, (math.nan, 2)], "c": {"d": np.float64(0.25), "e": np.int64(3)},
            "f": "text", "g": None}
    assert _clean(data) == {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": 0.25, "e": 3}, "f": "text",
                            "g": None}
    assert type(_clean(np.float32(0.5))) is float and _clean(np.float32(math.inf)) is None


def test_check_out_refuses_a_run_directory_and_an_earlier_comparison(tmp_path):
    check_out(tmp_path / "new", False)  # not there yet: fine
    run = _run(tmp_path, "p", P)
    with pytest.raises(UsageError) as err:
        check_out(run, False)
    assert str(err.value) == (f"{run} is a run directory; a comparison would write over its files: choose "
                              "another output directory (or pass force=True)")
    earlier = tmp_path / "cmp"
    earlier.mkdir()
    check_out(earlier, False)  # an empty folder is fine
    (earlier / "comparison.json").write_text("{}")
    with pytest.raises(UsageError) as err:
        check_out(earlier, False, "--force")
    assert str(err.value) == (f"{earlier} holds an earlier comparison: choose another output directory, or "
                              "pass --force to write over it")
    check_out(earlier, True)
    check_out(run, True)


def test_write_comparison_writes_the_report_and_the_json(tmp_path):
    p, q = _run(tmp_path, "p", P), _run(tmp_path, "q", Q)
    cmp = compare_runs([p, q])
    out = tmp_path / "out" / "deeper"
    written = write_comparison(cmp, out, html=False)
    assert [w.name for w in written] == ["fronts.png", "hv_history.png", "report.md", "comparison.json"]
    assert all(w.parent == out and w.stat().st_size > 0 for w in written)
    data = json.loads((out / "comparison.json").read_text())
    assert data == json.loads(json.dumps(_clean(cmp)))
    assert "hypervolume" in (out / "report.md").read_text()
    with pytest.raises(UsageError):
        write_comparison(cmp, out, html=False)  # an earlier comparison
    with pytest.raises(UsageError):
        write_comparison(cmp, p, html=False)  # a run directory
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError) as err:
        write_comparison(cmp, blocker / "x", html=False)
    assert str(err.value).startswith(f"cannot create {blocker / 'x'}: ")


@pytest.fixture
def no_plots(monkeypatch):
    """The plots are drawn by test_write_comparison_writes_the_report_and_the_json; here
    they would only cost seconds per test."""
    import gi_energy.report.compare as mod

    monkeypatch.setattr(mod, "plot_comparison", lambda cmp, out: [])


def test_compare_returns_the_comparison_and_writes_only_where_asked(tmp_path, no_plots):
    p, q = _run(tmp_path, "p", P), _run(tmp_path, "q", Q)
    cmp = compare([p, q])
    assert cmp.out is None and cmp["reference"]["hypervolume"] == pytest.approx(0.91)
    assert not list(tmp_path.glob("*/comparison.json"))
    cmp = compare([p, q], out=tmp_path / "c", labels={str(p): "P"}, html=False)
    assert cmp.out == tmp_path / "c" and (tmp_path / "c" / "comparison.json").is_file()
    assert not (tmp_path / "c" / "report.html").exists()
    assert _by_name(cmp)["p"]["label"] == "P"
    compare([p, q], out=tmp_path / "c", force=True, html=False)  # force: over the earlier one


def test_output_root_is_the_problems_output_directory(tmp_path):
    p = _run(tmp_path, "p", P)
    with open(p / "problem.toml", "a") as fh:
        fh.write(f'\n[output]\ndirectory = "{tmp_path / "mine"}"\n')
    assert output_root(p) == tmp_path / "mine"
    assert output_root(tmp_path / "not-a-run") == type(output_root(p))("runs")


def test_cli_compare_prints_json_or_the_report(tmp_path, capsys, monkeypatch, no_plots):
    import gi_energy.report.html as html

    monkeypatch.setattr(html, "plotly_available", lambda: False)
    p, q = _run(tmp_path, "p", P), _run(tmp_path, "q", Q)
    cmp = cli_compare([p, q], out=tmp_path / "j", as_json=True)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads(json.dumps(dict(cmp)))
    assert f"gi-energy compare: wrote {tmp_path / 'j'}/ (report.md, comparison.json)" in captured.err
    assert f"gi-energy: note: no report.html: {html.MISSING_PLOTLY}" in captured.err
    assert cmp.out == tmp_path / "j" and (tmp_path / "j" / "report.md").is_file()
    with pytest.raises(UsageError):
        cli_compare([p, q], out=tmp_path / "j")  # an earlier comparison, checked first
    monkeypatch.chdir(tmp_path)
    cmp = cli_compare([p, q], reference=None, force=False)
    captured = capsys.readouterr()
    assert cmp.out.resolve().parent == (tmp_path / "runs").resolve() and cmp.out.name.startswith("compare")
    assert (cmp.out / "comparison.json").is_file()
    assert f"gi-energy compare: wrote {cmp.out}/ (" in captured.out and "hypervolume" in captured.out


# -- a run directory as compare reads it (report/figures.py) -------------------------------------

def test_the_journal_says_which_joules_a_run_paid_for(tmp_path):
    """A run counts the evaluations its journal (the ``spent`` column) says it trained,
    cached or not; an outcome it did not pay for adds no joules."""
    a, b, c = _outcome(8, 0.9, 10.0), _outcome(9, 0.6, 2.0), _outcome(10, 0.8, 4.0)
    a = Outcome(a.genome, a.evaluations, cached=True)  # served from the store, yet its own (resumed)
    path = _run(tmp_path, "j", [], outcomes=[a, b, c], spent={(a.key, 0), (c.key, 0)})
    other = _run(tmp_path, "o", Q)
    by = _by_name(compare_runs([path, other]))
    row = by["j"]
    assert (row["evaluations"], row["trained"], row["energy_unknown"]) == (3, 2, 0)
    assert row["energy_spent_j"] == pytest.approx(11.0 + 5.0)
    assert row["trajectory"]["energy_j"] == pytest.approx([11.0, 11.0, 16.0])
    # Without a journal a cached outcome is not paid for.
    plain = _run(tmp_path, "n", [], outcomes=[a, b, c])
    row = _by_name(compare_runs([plain, other]))["n"]
    assert row["trained"] == 2 and row["energy_spent_j"] == pytest.approx(3.0 + 5.0)


def test_a_run_json_without_command_or_label_is_a_run(tmp_path):
    from gi_energy.report.figures import load_run

    path = _run(tmp_path, "r", P)
    info = json.loads((path / "run.json").read_text())
    del info["command"]
    (path / "run.json").write_text(json.dumps(info))
    assert load_run(path).label == "run"
    info["replayed"] = True
    (path / "run.json").write_text(json.dumps(info))
    assert load_run(path).label == "run (replay)"


def test_constraints_and_objectives_fall_back_to_problem_toml(tmp_path):
    from gi_energy.report.figures import load_run, objectives_of

    path = _run(tmp_path, "r", P)
    with open(path / "problem.toml", "a") as fh:
        fh.write("\n[constraints.params]\nmax = 150.0\n")
    info = json.loads((path / "run.json").read_text())
    del info["objectives"]
    (path / "run.json").write_text(json.dumps(info))
    run = load_run(path)
    assert run.constraints == {"params": 150.0}
    assert objectives_of(run) == TWO
    # No constraints in the problem either: nothing recorded.
    assert load_run(_run(tmp_path, "free", P)).constraints is None
    (path / "problem.toml").write_text("not toml [")
    run = load_run(path)
    assert run.constraints is None
    with pytest.raises(UsageError) as err:
        objectives_of(run)
    assert str(err.value).startswith(f"{path}: run.json names no objectives and problem.toml cannot be read: ")
    # settings.constraints wins over problem.toml, and an empty table is no constraint.
    empty = _run(tmp_path, "e", P, settings={"constraints": {}})
    with open(empty / "problem.toml", "a") as fh:
        fh.write("\n[constraints.params]\nmax = 1.0\n")
    assert load_run(empty).constraints == {}


def test_a_run_without_evaluations_scores_and_spends_nothing(tmp_path):
    empty, p = _run(tmp_path, "e", []), _run(tmp_path, "p", P)
    row = _by_name(compare_runs([empty, p]))["e"]
    assert (row["evaluations"], row["trained"], row["energy_spent_j"], row["energy_unknown"]) == (0, 0, 0.0, 0)
    assert row["trajectory"] == {"evaluations": [], "energy_j": [], "hypervolume": [], "hv_ratio": []}
    assert (row["front_size"], row["hypervolume"], row["coverage"], row["headline"]) == (0, 0.0, 0.0, None)
    assert (row["evaluations_to_90"], row["energy_j_to_90"], row["measured"]) == (None, None, False)


@pytest.fixture
def fake_html(monkeypatch):
    """report.html's writer, recorded (plotly's page costs seconds)."""
    import gi_energy.report.html as html

    calls = []

    def write(runs, path, cmp):
        calls.append((runs, path, cmp))
        path.write_text("<html/>")
        return path

    monkeypatch.setattr(html, "write_html_report", write)
    monkeypatch.setattr(html, "plotly_available", lambda: True)
    return calls


def test_report_html_is_written_by_default_with_the_runs_and_the_clean_comparison(tmp_path, no_plots, fake_html):
    p, q = _run(tmp_path, "p", P), _run(tmp_path, "q", Q)
    cmp = compare_runs([p, q])
    written = write_comparison(cmp, tmp_path / "w")
    assert [w.name for w in written] == ["report.md", "comparison.json", "report.html"]
    ((runs, path, data),) = fake_html
    assert [r.path.resolve() for r in runs] == [Path(p).resolve(), Path(q).resolve()]
    assert path == tmp_path / "w" / "report.html"
    assert data == _clean(cmp)
    compare([p, q], out=tmp_path / "c")  # compare() writes it too, by default
    assert fake_html[-1][1] == tmp_path / "c" / "report.html"


def test_the_reference_is_named_and_labelled_as_asked(tmp_path, no_plots, fake_html):
    g, p = _run(tmp_path, "g", P + Q, command="grid"), _run(tmp_path, "p", P)
    cmp = compare_runs([p], reference=g, labels={str(g): "the grid"})
    assert [(r["label"], r["reference"]) for r in cmp["runs"]] == [("the grid", True), ("evolve", False)]
    assert compare([p], reference=g)["reference"]["path"] == str(g)
    # Over an earlier comparison only with force.
    compare([p], reference=g, out=tmp_path / "c")
    with pytest.raises(UsageError):
        compare([p], reference=g, out=tmp_path / "c")
    compare([p], reference=g, out=tmp_path / "c", force=True)


def test_constraints_are_the_same_whatever_order_they_were_written_in(tmp_path):
    a = _run(tmp_path, "a", P, settings={"constraints": {"params": 500, "train_energy_j": 100}})
    b = _run(tmp_path, "b", Q, settings={"constraints": {"train_energy_j": 100, "params": 500}})
    assert compare_runs([a, b])["constraints"] == {"params": 500.0, "train_energy_j": 100.0}
    # The run named as differing is the first that differs from the first run.
    c = _run(tmp_path, "c", Q, settings={"constraints": {"params": 600}})
    with pytest.raises(UsageError) as err:
        compare_runs([a, c, b])
    assert str(err.value).startswith(f"{c}: constraints {{'params': 600.0}} differ from {a}'s ")


def test_cli_compare_with_a_reference_force_and_a_default_folder(tmp_path, capsys, monkeypatch, no_plots,
                                                                  fake_html):
    g, p = _run(tmp_path, "g", P + Q, command="grid"), _run(tmp_path, "p", P)
    cmp = cli_compare([p], reference=g, out=tmp_path / "j", as_json=True)
    out = capsys.readouterr().out
    assert out.startswith('{\n  "created_at": ') and cmp["reference"]["path"] == str(g)
    with pytest.raises(UsageError) as err:
        cli_compare([p], reference=g, out=tmp_path / "j")
    assert str(err.value) == (f"{tmp_path / 'j'} holds an earlier comparison: choose another output directory, "
                              "or pass --force to write over it")
    cli_compare([p], reference=g, out=tmp_path / "j", force=True)
    with open(p / "problem.toml", "a") as fh:
        fh.write(f'\n[output]\ndirectory = "{tmp_path / "mine"}"\n')
    cmp = cli_compare([p])  # one run, no reference: its problem's output folder
    assert cmp.out.parent == tmp_path / "mine" and cmp.out.name.startswith("compare-")
