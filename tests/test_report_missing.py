"""What the results API shows for what is missing or is not what it looks like:
to_dataframe keeps the words "nan", "None", "NA", "null" as written (only an empty cell is
missing)."""

from __future__ import annotations

import math

import pandas as pd

import gi_energy
from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.problem import Problem
from gi_energy.meters.reading import Reading
from gi_energy.report.frames import typed_column
from gi_energy.runs.rundir import RunDirectory
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


def test_typed_column_reads_numbers_with_nan_for_non_finite_and_words_as_text():
    def col(*cells):
        return typed_column(pd.Series(list(cells), dtype=object))

    floats = col("0.1", "nan", "", "inf", "-inf", "1e-05")
    assert floats.dtype == "float64" and floats.isna().tolist() == [False, True, True, True, True, False]
    assert floats[0] == 0.1 and floats[5] == 1e-05
    assert col("1", "2").dtype == "int64" and col("1", "").dtype == "float64"
    words = col("nan", "None", "NA", "null", "", "1")
    assert words.dtype == "string" and words.isna().tolist() == [False, False, False, False, True, False]
    assert words.tolist()[:4] == ["nan", "None", "NA", "null"]
    assert col("true", "false").dtype == bool
    assert typed_column(pd.Series(["64", "1"], dtype=object), text=True).tolist() == ["64", "1"]
