"""Reading a [table]'s file: the lines messages name (blank lines counted, a Parquet
table's rows), rows and headers that are refused (extra fields, a column named twice),
missing-value spellings in metric cells, and the one-line messages of bad paths."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.config import table
from gi_energy.config.checks import Table
from gi_energy.config.parse import load_problem
from gi_energy.config.space import Choice
from gi_energy.errors import ProblemError

HEADER = "width,opt,acc,energy_j,note\n"
ROWS = ["8,adam,0.80,1.0,a", "16,adam,0.85,2.0,b", "32,sgd,0.90,4.0,c", "4,sgd,0.60,0.5,d"]


def _problem(tmp_path: Path, text: str, name: str = "t.csv", extra: str = "", constraints: str = "") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_bytes(text.encode())
    problem = tmp_path / "p.toml"
    problem.write_text(f'[problem]\nname = "r"\n[table]\npath = "{name}"\nconfiguration = ["width", "opt"]\n{extra}'
                       f'[objectives]\nacc = "max"\nenergy_j = "min"\n{constraints}')
    return problem


def _refused(problem: Path) -> str:
    result = CliRunner().invoke(main, ["validate", str(problem)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    return result.output


# -- lines: the file's own, blank lines counted


@pytest.mark.parametrize("blank", ["\n", "   \n", "\t\n"])
def test_a_cell_after_blank_lines_is_named_by_its_line_in_the_file(tmp_path, blank):
    text = HEADER + ROWS[0] + "\n" + blank + blank + ",sgd,0.7,1.0,x\n"  # file lines: 1 header, 2 row, 3-4 blank
    assert "column 'width' of t.csv is empty at line 5" in _refused(_problem(tmp_path, text))


def test_a_row_of_empty_cells_is_a_row_not_a_blank_line(tmp_path):
    text = HEADER + ROWS[0] + "\n\n,,,,\n"
    assert "column 'width' of t.csv is empty at line 4" in _refused(_problem(tmp_path, text))


def test_a_metric_cell_after_a_blank_line_and_crlf_line_ends(tmp_path):
    text = (HEADER + ROWS[0] + "\n\n" + "16,sgd,high,2.0,x\n").replace("\n", "\r\n")
    assert "column 'acc' of t.csv (metric acc) at line 4: expected a number" in _refused(_problem(tmp_path, text))


def test_duplicate_rows_are_named_by_their_lines_in_the_file(tmp_path):
    text = HEADER + "\n" + ROWS[0] + "\n\n" + ROWS[0] + "\n"
    assert "lines 3 and 5 of t.csv have the same configuration" in _refused(_problem(tmp_path, text))


def test_the_frame_index_is_each_rows_line(tmp_path):
    text = "\n" + HEADER + ROWS[0] + "\n\n" + '16,adam,0.85,2.0,"two\nlines"\n' + ROWS[2] + "\n  \n" + ROWS[3] + "\n"
    p = load_problem(_problem(tmp_path, text))
    # line 1 blank, header line 2, rows at 3, 5 (a quoted cell over lines 5-6), 7 and 9
    assert table.read_frame(p.table, "p.toml").index.tolist() == [3, 5, 7, 9]


def test_lines_of_a_gzipped_csv(tmp_path):
    text = HEADER + ROWS[0] + "\n\n" + ROWS[1] + "\n"
    p = load_problem(_problem(tmp_path, text, name="t.csv.gz"))
    assert table.read_frame(p.table, "p.toml").index.tolist() == [2, 4]


# -- Parquet: "row N", the table's 1-based data row (read through a fake pandas.read_parquet)


def _fake_parquet(monkeypatch, frame: pd.DataFrame) -> None:
    monkeypatch.setattr(pd, "read_parquet", lambda path, columns=None: frame if columns is None else frame[columns])


def test_a_parquet_cell_is_named_by_its_row(tmp_path, monkeypatch):
    _fake_parquet(monkeypatch, pd.DataFrame({"width": [8, 16, None], "opt": ["adam", "adam", "sgd"],
                                             "acc": [0.8, 0.85, 0.9], "energy_j": [1.0, 2.0, 4.0]}))
    out = _refused(_problem(tmp_path, "PAR1", name="t.parquet"))
    assert "column 'width' of t.parquet is empty at row 3:" in out and "line" not in out


def test_parquet_duplicate_rows_are_named_by_their_rows(tmp_path, monkeypatch):
    _fake_parquet(monkeypatch, pd.DataFrame({"width": [8, 16, 8], "opt": ["adam"] * 3,
                                             "acc": [0.8, 0.85, 0.9], "energy_j": [1.0, 2.0, 4.0]}))
    assert "rows 1 and 3 of t.parquet have the same configuration" in _refused(_problem(tmp_path, "", "t.parquet"))


def test_place_names_a_csv_line_and_a_parquet_row():
    assert table.place("t.csv", 7) == "line 7" and table.place("t.csv.gz", 7) == "line 7"
    assert table.place("t.parquet", 7) == "row 7" and table.place(Path("x/t.PQ"), 1) == "row 1"


# -- rows with extra fields, a column named twice


def test_a_row_with_more_fields_than_the_header_is_refused_naming_its_line(tmp_path):
    text = HEADER + ROWS[0] + "\n\n" + "16,adam,0.85,2.0,b,extra,fields\n"
    out = _refused(_problem(tmp_path, text))
    assert "[table.path] line 4 of t.csv has 7 fields, its header 5" in out


def test_a_quoted_comma_is_not_an_extra_field(tmp_path):
    text = HEADER + '8,adam,0.80,1.0,"a, b"\n"16","adam",0.85,2.0,"c"\n'
    p = load_problem(_problem(tmp_path, text))
    assert table.read_frame(p.table, "p.toml").index.tolist() == [2, 3]


def test_extra_fields_after_a_cell_over_two_lines_are_named_by_their_line(tmp_path):
    text = HEADER + '8,adam,0.80,1.0,"a\nb"\n' + "16,adam,0.85,2.0,b,extra\n"
    assert "line 4 of t.csv has 6 fields, its header 5" in _refused(_problem(tmp_path, text))


@pytest.mark.parametrize("header", ["width,opt,acc,energy_j,acc\n", "width,opt,acc,energy_j,note, note\n"])
def test_a_header_naming_a_column_twice_is_refused_naming_it(tmp_path, header):
    name = "acc" if header.endswith("acc\n") else "note"
    out = _refused(_problem(tmp_path, header + "\n".join(ROWS) + "\n"))
    assert f"[table.path] t.csv names column {name!r} twice in its header" in out


def test_columns_without_a_name_are_not_a_column_named_twice(tmp_path):
    text = "width,opt,acc,energy_j,,\n" + "\n".join(f"{r.rsplit(',', 1)[0]},," for r in ROWS) + "\n"
    assert len(table.read_frame(load_problem(_problem(tmp_path, text)).table, "p.toml")) == 4


# -- missing values in metric cells


@pytest.mark.parametrize("spelling", ["NA", "NaN", "nan", "N/A", "NULL", "null", "None"])
def test_na_spellings_in_a_metric_cell_are_missing_values(tmp_path, spelling):
    text = HEADER + ROWS[0] + "\n" + f"16,adam,{spelling},2.0,b\n"
    frame = table.read_frame(load_problem(_problem(tmp_path, text)).table, "p.toml")
    assert frame["acc"].tolist()[0] == 0.8 and math.isnan(frame["acc"].tolist()[1])


def test_na_in_a_configuration_column_is_a_level_not_a_missing_value(tmp_path):
    text = HEADER + ROWS[0] + "\n" + "16,NA,0.85,2.0,b\n"
    assert load_problem(_problem(tmp_path, text)).space.params["opt"] == Choice(("adam", "NA"))


def test_an_infinite_metric_cell_is_read_as_written(tmp_path):
    text = HEADER + ROWS[0] + "\n" + "16,adam,inf,-inf,b\n"
    frame = table.read_frame(load_problem(_problem(tmp_path, text)).table, "p.toml")
    assert frame["acc"].tolist()[1] == math.inf and frame["energy_j"].tolist()[1] == -math.inf


# -- paths, engines, constraints


def test_a_directory_as_the_path_is_said_to_be_a_directory(tmp_path):
    problem = _problem(tmp_path, HEADER, name="t.csv")
    problem.write_text(problem.read_text().replace('"t.csv"', '"d.csv"'))
    (tmp_path / "d.csv").mkdir()
    out = _refused(problem)
    assert "[table.path] expected a CSV or Parquet table" in out and "d.csv' is a directory" in out
    assert "does not exist" not in out


def test_parquet_without_pyarrow_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch):
    def no_engine(path, columns=None):
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'.\n"
                          "A suitable version of pyarrow or fastparquet is required for parquet support.\n"
                          "Trying to import the above resulted in these errors:\n - Missing optional dependency")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    out = _refused(_problem(tmp_path, "PAR1", name="t.parquet"))
    assert out.rstrip().endswith("[table.path] t.parquet: reading Parquet needs pyarrow (pip install pyarrow)")


def _section(tmp_path: Path, metrics: list[str], constraints: list[str]):
    (tmp_path / "t.csv").write_text(HEADER + "\n".join(ROWS) + "\n")
    t = Table({"path": "t.csv", "configuration": ["width", "opt"]}, "p.toml", "table")
    return table.read_section(t, tmp_path, metrics, constraints)


@pytest.mark.parametrize(("constraint", "words"), [
    ("latency", "[constraints.latency] no column 'latency' in t.csv"),
    ("width", "[constraints.width] column 'width' is a configuration or seed column"),
])
def test_a_constraint_is_named_as_a_constraint(tmp_path, constraint, words):
    with pytest.raises(ProblemError) as err:
        _section(tmp_path, ["acc", "energy_j", constraint], [constraint])
    assert words in str(err.value)


def test_a_metric_both_objective_and_constraint_is_named_as_the_objective(tmp_path):
    with pytest.raises(ProblemError, match=r"\[objectives.latency\]"):
        _section(tmp_path, ["acc", "latency", "latency"], ["latency"])
    assert dict(_section(tmp_path, ["acc", "energy_j", "energy_j"], ["energy_j"]).metrics) == {
        "acc": "acc", "energy_j": "energy_j"}


def _outcome(problem: Path, width, opt):
    from gi_energy.config.genome import Genome
    from gi_energy.evaluation.table import TableEvaluator

    return TableEvaluator(load_problem(problem)).lookup(Genome(values={"width": width, "opt": opt}))


@pytest.mark.parametrize("spelling", ["NA", "nan", "NULL"])
def test_an_na_objective_fails_its_row_as_having_no_value(tmp_path, spelling):
    o = _outcome(_problem(tmp_path, HEADER + ROWS[0] + "\n" + f"16,adam,0.85,{spelling},b\n"), 16, "adam")
    assert o.status == "failed" and o.reason == "t.csv line 3 has no value for energy_j"


# -- failed rows' reasons name the row as messages do, and say when a value is not finite


def test_a_failed_rows_reason_names_its_line_in_the_file(tmp_path):
    text = HEADER + ROWS[0] + "\n\n\n" + "16,adam,,2.0,b\n"
    o = _outcome(_problem(tmp_path, text), 16, "adam")
    assert o.status == "failed" and o.reason == "t.csv line 5 has no value for acc"


def test_a_failed_parquet_rows_reason_names_its_row(tmp_path, monkeypatch):
    _fake_parquet(monkeypatch, pd.DataFrame({"width": [8, 16], "opt": ["adam", "adam"], "acc": [0.8, None],
                                             "energy_j": [1.0, 2.0]}))
    o = _outcome(_problem(tmp_path, "PAR1", name="t.parquet"), 16, "adam")
    assert o.reason == "t.parquet row 2 has no value for acc"


@pytest.mark.parametrize(("cell", "words"), [("inf", "acc = inf"), ("-inf", "acc = -inf")])
def test_an_infinite_objective_fails_its_row_as_not_finite(tmp_path, cell, words):
    o = _outcome(_problem(tmp_path, HEADER + ROWS[0] + "\n" + f"16,adam,{cell},2.0,b\n"), 16, "adam")
    assert o.status == "failed" and o.reason == f"t.csv line 3 has {words}, not a finite number"


def test_an_infinite_energy_is_a_missing_reading_saying_so(tmp_path):
    text = "width,opt,acc,energy_j,train_energy_j\n8,adam,0.8,1.0,inf\n16,adam,0.85,2.0,3.0\n"
    e = _outcome(_problem(tmp_path, text), 8, "adam").evaluations[0]
    assert e.train.energy_j is None
    assert "t.csv line 2 has train_energy_j = inf, not a finite number" in e.train.missing_reason


def test_a_constraint_in_a_problem_file_is_named_as_a_constraint(tmp_path):
    problem = _problem(tmp_path, HEADER + "\n".join(ROWS) + "\n", constraints="[constraints]\nlatency = {max = 5}\n")
    assert "[constraints.latency] no column 'latency' in t.csv" in _refused(problem)
