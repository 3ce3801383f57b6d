"""What the results API shows for what is missing or is not what it looks like:
to_dataframe keeps the words "nan", "None", "NA", "null" as written (only an empty cell is
missing); energy that was not read is never shown as 0 J, in summary(), compare's tables
and report.md; the compare headline ranks by the problem's own quality objective, not by
validation accuracy, where accuracy is not an objective."""

from __future__ import annotations

import math

import pytest

import gi_energy
from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.problem import Problem
from gi_energy.meters.reading import Reading
from gi_energy.report.frames import read_table
from gi_energy.report.markdown import energy_text, render_report
from gi_energy.runs.replay import SyntheticEvaluator
from gi_energy.runs.rundir import RunDirectory
from gi_energy.search.grid import run_grid
from gi_energy.tasks.results import Evaluation, Outcome

# -- to_dataframe: only an empty cell is missing ----------------------------------------


def _ev(g: Genome, status: str = "ok", **metrics) -> Evaluation:
    if status != "ok":
        return Evaluation(genome=g, status=status, reason="loss diverged",
                          train=Reading("estimate", "process-estimate", False, 0.5, 1.0))
    return Evaluation(genome=g, status="ok", val_accuracy=0.8, test_accuracy=0.75,
                      train=Reading("estimate", "process-estimate", False, 1.0, 1.0),
                      inference=Reading("estimate", "process-estimate", False, 2.0, 1.0),
                      inference_samples=1000, params=100, metrics=metrics)


def _write_run(path, problem: Problem, outcomes, command: str = "evolve"):
    rd = RunDirectory.create(path, problem, command, {})
    rd.update_run_json(status="complete")
    rd.write_results(outcomes, dict(problem.objectives), [])
    return path


def test_to_dataframe_keeps_status_nan_and_words_like_none_as_written(tmp_path):
    problem = load_problem("quickstart")
    norms = ["None", "NA", "null", "nan", "layer"]
    outcomes = [Outcome(g, (_ev(g),)) for g in
                (Genome(layers={"hidden": (8 + i,)}, values={"lr": 0.01, "norm": n}) for i, n in enumerate(norms))]
    diverged = Genome(layers={"hidden": (32,)}, values={"lr": 0.01, "norm": "None"})
    outcomes.append(Outcome(diverged, (_ev(diverged, status="nan"),)))
    run = gi_energy.open_run(_write_run(tmp_path / "r", problem, outcomes))
    df = run.to_dataframe()
    assert df["status"].tolist() == ["ok"] * 5 + ["nan"]
    assert df["norm"].tolist() == [*norms, "None"]
    assert len(df.query("norm == 'None'")) == 2 and len(df.query("norm == 'NA'")) == 1
    # an empty cell is still missing, in text and number columns alike
    assert df["reason"].isna().tolist() == [True] * 5 + [False]
    assert math.isnan(df["val_accuracy"].iloc[-1]) and df["val_accuracy"].iloc[0] == 0.8
    assert df["inference_energy_j"].isna().tolist() == [False] * 5 + [True]
    assert df["train_measured"].dtype == bool and not df["train_measured"].any()
    assert df["index"].dtype == "int64" and df["lr"].dtype == "float64"
    front = run.to_dataframe("front")
    assert set(front["norm"]) <= set(norms) and not front["norm"].isna().any()


def test_read_table_reads_numbers_with_nan_for_non_finite_and_words_as_text(tmp_path):
    def col(*cells, text=False):
        path = tmp_path / "c.csv"
        path.write_text("c\n" + "".join(f"{c}\n" if c else '""\n' for c in cells))
        return read_table(path, ["c"], text={"c"} if text else ())["c"]

    floats = col("0.1", "nan", "", "inf", "-inf", "1e-05")
    assert floats.dtype == "float64" and floats.isna().tolist() == [False, True, True, True, True, False]
    assert floats[0] == 0.1 and floats[5] == 1e-05
    assert col("1", "2").dtype == "int64" and col("1", "").dtype == "float64"
    words = col("nan", "None", "NA", "null", "", "1")
    assert words.dtype == "string" and words.isna().tolist() == [False, False, False, False, True, False]
    assert words.tolist()[:4] == ["nan", "None", "NA", "null"]
    assert col("true", "false").dtype == bool
    assert col("64", "1", text=True).tolist() == ["64", "1"]


# -- energy that was not read is not 0 J ------------------------------------------------


class _NoTraining(SyntheticEvaluator):
    """The synthetic landscape with every training reading missing, or (``every``) the
    training reading of every ``every``-th genome."""

    def __init__(self, problem, every: int = 1):
        super().__init__(problem)
        self.every, self.seen = every, 0

    def evaluate(self, genomes, on_result=None):
        outs = []
        for o in super().evaluate(genomes):
            self.seen += 1
            if self.seen % self.every == 0:
                missing = Reading.missing_reading("rapl", "counter unreadable")
                o = Outcome(o.genome, tuple(Evaluation(**{**e.__dict__, "train": missing})
                                            for e in o.evaluations), o.cached)
            if on_result is not None:
                for e in o.evaluations:
                    on_result(e, o.cached)
            outs.append(o)
        return outs


@pytest.fixture(scope="module")
def unread(tmp_path_factory):
    """A quickstart grid with no training reading at all, and one with every third missing."""
    root = tmp_path_factory.mktemp("unread")
    problem = load_problem("quickstart")
    run_grid(problem, out=root / "none", evaluator=_NoTraining(problem))
    run_grid(problem, out=root / "some", evaluator=_NoTraining(problem, every=3))
    return root


def test_summary_says_unknown_energy_is_unknown(unread):
    s = gi_energy.open_run(unread / "none").summary()
    assert s["energy_spent_j"] is None and s["energy_unknown"] == 12 and s["energy_known_j"] == 0.0
    some = gi_energy.open_run(unread / "some").summary()
    assert some["energy_spent_j"] is None and some["energy_unknown"] == 4 and some["energy_known_j"] > 0


def test_compare_shows_unknown_energy_as_unknown_not_zero(unread, tmp_path):
    cmp = gi_energy.compare([unread / "none", unread / "some"], out=tmp_path / "c", html=False)
    by = {r["path"].rsplit("/", 1)[-1]: r for r in cmp["runs"]}
    assert by["none"]["energy_spent_j"] is None and by["none"]["energy_unknown"] == 12
    assert by["some"]["energy_spent_j"] is None and by["some"]["energy_known_j"] > 0
    for r in cmp["runs"]:  # joules to a threshold with readings missing before it: unknown too
        for t in (90, 95, 99):
            assert r[f"energy_j_to_{t}"] is None and r[f"energy_j_to_{t}_unknown"] > 0
    df = cmp.to_dataframe()
    assert df["energy_spent_j"].dtype == "float64" and df["energy_spent_j"].isna().all()
    assert df["energy_unknown"].tolist() == [12, 4] and df["energy_j_to_90"].isna().all()
    assert cmp["groups"][0]["energy_spent_j"]["unknown"] == 2
    md = (tmp_path / "c" / "report.md").read_text(encoding="utf-8")
    runs = md[md.index("## Runs"):].splitlines()
    none_row = next(line for line in runs if "`none`" in line)
    some_row = next(line for line in runs if "`some`" in line)
    assert "| – (12 unknown) |" in none_row and "0.0" not in none_row.split("|")[6]
    assert f"| {by['some']['energy_known_j']:.1f} + 4 unknown |" in some_row
    per_method = md[md.index("## Per method"):md.index("## Runs")]
    assert "– (2/2 unknown)" in per_method and "| 0.0 " not in per_method


def test_energy_text():
    assert energy_text(12.34, 0) == "12.3" and energy_text(None, 0) == "–"
    assert energy_text(12.34, 4) == "12.3 + 4 unknown" and energy_text(0.0, 4) == "– (4 unknown)"


# -- the headline's quality is the problem's own ----------------------------------------

F1 = {"f1": "max", "inference_energy_j_per_1k": "min"}


def _f1_outcome(width: int, accuracy: float, f1: float, inference_j: float) -> Outcome:
    g = Genome(layers={"hidden": (width,)}, values={})
    return Outcome(g, (Evaluation(genome=g, status="ok", val_accuracy=accuracy, test_accuracy=accuracy,
                                  train=Reading("rapl", "package", True, 1.0, 1.0),
                                  inference=Reading("rapl", "package", True, inference_j, 1.0),
                                  inference_samples=1000, params=100, metrics={"f1": f1}),))


def _quality_runs(tmp_path, objectives):
    problem = Problem(**{**load_problem("quickstart").__dict__, "objectives": objectives})
    # by accuracy the best is the 8-wide one (0.95, 10 J); by f1 it is the 9-wide (0.70, 4 J),
    # and the 10-wide (0.695 f1, 2 J) is within one point of it: a 50 % saving.
    outcomes = [_f1_outcome(8, 0.95, 0.40, 10.0), _f1_outcome(9, 0.60, 0.70, 4.0),
                _f1_outcome(10, 0.94, 0.695, 2.0)]
    return _write_run(tmp_path / "r", problem, outcomes)


def test_headline_ranks_by_the_one_quality_objective_when_accuracy_is_not_one(tmp_path):
    cmp = gi_energy.compare([_quality_runs(tmp_path, F1)], out=tmp_path / "c", html=False)
    h = cmp["runs"][0]["headline"]
    assert h["most_accurate"]["key"] == "hidden=9" and h["chosen"]["key"] == "hidden=10"
    assert h["metric"] == cmp["headline"]["metric"] == "f1"
    assert h["saving"] == pytest.approx(0.5) and h["f1_lost"] == pytest.approx(0.005)
    assert cmp.to_dataframe()["f1_lost"].tolist() == pytest.approx([0.005])
    md = (tmp_path / "c" / "report.md").read_text(encoding="utf-8")
    assert "one accuracy point" not in md and "## Headline: energy saved for at most one point (0.01) of f1 lost" in md
    assert "| best f1 |" in md and "| 0.7000 | 4 | 0.6950 | 2 | **50.0%** |" in md


def test_no_headline_with_several_quality_objectives_and_the_note_says_why(tmp_path):
    objectives = {"f1": "max", "recall": "max", "inference_energy_j_per_1k": "min"}
    problem = Problem(**{**load_problem("quickstart").__dict__, "objectives": objectives})
    g = Genome(layers={"hidden": (8,)}, values={})
    ev = Evaluation(genome=g, status="ok", val_accuracy=0.9, train=Reading("rapl", "package", True, 1.0, 1.0),
                    inference=Reading("rapl", "package", True, 1.0, 1.0), inference_samples=1000,
                    metrics={"f1": 0.5, "recall": 0.4})
    path = _write_run(tmp_path / "r", problem, [Outcome(g, (ev,))])
    cmp = gi_energy.compare([path], out=tmp_path / "c", html=False)
    assert cmp["runs"][0]["headline"] is None and cmp["headline"]["metric"] is None
    md = render_report(cmp)
    assert "one accuracy point" not in md and "best accuracy" not in md
    note = next(line for line in md.splitlines() if line.startswith("No headline: "))
    assert "several objectives are maximised (f1, recall)" in note


def test_headline_keeps_accuracy_where_it_is_an_objective(tmp_path):
    path = _quality_runs(tmp_path, {"accuracy": "max", "f1": "max", "inference_energy_j_per_1k": "min"})
    cmp = gi_energy.compare([path])
    h = cmp["runs"][0]["headline"]
    assert cmp["headline"]["metric"] == "accuracy" and h["most_accurate"]["key"] == "hidden=8"
    assert h["chosen"]["key"] == "hidden=10" and h["accuracy_lost"] == pytest.approx(0.01)
    assert "## Headline: energy saved for at most one accuracy point lost" in render_report(cmp)


def test_the_progress_line_never_says_0_j_for_energy_nobody_read():
    from gi_energy.report.progress import format_energy

    assert format_energy(0.0, 4) == "– (4 unknown)"
    assert format_energy(12.3, 4) == "12.3 J (+4 unknown)"
    assert format_energy(12.3) == "12.3 J"


@pytest.mark.parametrize("unknown", [1, 4, 120])
def test_no_joule_known_is_spelled_once_for_the_progress_line_and_the_tables(unknown):
    """progress.format_energy and markdown.energy_text each spelled "– (N unknown)"; both
    now write report.joules.none_known, and html's tables the same."""
    from gi_energy.report import html, markdown, progress
    from gi_energy.report.joules import none_known

    assert none_known(unknown) == f"– ({unknown} unknown)"
    assert progress.format_energy(0.0, unknown) == none_known(unknown)
    assert markdown.energy_text(0.0, unknown) == none_known(unknown)
    assert markdown.energy_text(None, unknown) == none_known(unknown)
    assert html.energy_text is markdown.energy_text
