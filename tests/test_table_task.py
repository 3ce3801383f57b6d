"""A tabular benchmark from any table ([table]): levels, lookups, repeats, missing
configurations, energy labels, bad tables as exit 2 naming the column, and evolve on it."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.space import Choice, Fixed
from gi_energy.errors import ProblemError
from gi_energy.evaluation.table import TableEvaluator

TABLE = """width,opt,lr,seed,acc,energy_j,measured,train_energy_j
8,adam,0.001,0,0.80,1.0,true,10
8,adam,0.001,1,0.84,1.2,true,12
8,adam,0.001,2,0.82,1.1,true,11
16,adam,1e-3,0,0.85,2.0,false,20
16,sgd,0.01,0,0.70,1.5,true,
32,sgd,0.001,0,0.90,4.0,true,40
32,adam,0.01,0,0.91,,true,45
4,adam,0.01,0,0.60,0.5,true,5
"""

PROBLEM = """[problem]
name = "tab"
[table]
path = "t.csv"
configuration = ["width", "opt", "lr"]
{extra}
[objectives]
acc = "max"
energy_j = "min"
[search]
population = 4
generations = 2
"""


def _write(tmp_path: Path, table: str = TABLE, extra: str = 'seed = "seed"\nmeasured = "measured"') -> Path:
    (tmp_path / "t.csv").write_text(table)
    path = tmp_path / "p.toml"
    path.write_text(PROBLEM.format(extra=extra))
    return path


def _g(width, opt, lr) -> Genome:
    return Genome(values={"width": width, "opt": opt, "lr": lr})


def test_numeric_columns_are_sorted_ordinal_levels_others_choices(tmp_path):
    p = load_problem(_write(tmp_path))
    assert p.space.params["width"] == Choice((4, 8, 16, 32))  # sorted, not first-seen
    assert p.space.params["lr"] == Choice((0.001, 0.01))  # 1e-3 and 0.001 are one level
    assert p.space.params["opt"] == Choice(("adam", "sgd"))
    assert dict(p.table.metrics) == {"acc": "acc", "energy_j": "energy_j", "train_energy_j": "train_energy_j"}


def test_a_column_of_one_value_is_fixed(tmp_path):
    table = "a,b,m,n\n1,x,0.5,1\n2,x,0.6,2\n"
    (tmp_path / "t.csv").write_text(table)
    (tmp_path / "p.toml").write_text('[problem]\nname = "f"\n[table]\npath = "t.csv"\nconfiguration = ["a", "b"]\n'
                                     '[objectives]\nm = "max"\nn = "min"\n')
    p = load_problem(tmp_path / "p.toml")
    assert p.space.params == {"a": Choice((1, 2)), "b": Fixed("x")}


def test_seed_rows_are_the_repeats_of_one_configuration(tmp_path):
    ev = TableEvaluator(load_problem(_write(tmp_path)))
    o = ev.evaluate([_g(8, "adam", 0.001)])[0]
    assert [e.repeat for e in o.evaluations] == [0, 1, 2]
    assert o.ok and o.metric("acc") == pytest.approx(0.82)  # the median over the three seeds
    assert o.spread("acc") == pytest.approx(0.02)
    assert len(ev) == 6  # configurations, not rows


def test_without_a_seed_column_repeated_configurations_are_refused_naming_the_columns(tmp_path):
    with pytest.raises(ProblemError) as err:
        load_problem(_write(tmp_path, extra=""))
    assert "[table.configuration]" in str(err.value)
    assert "lines 2 and 3 of t.csv" in str(err.value) and "width, opt, lr" in str(err.value)
    assert "[table] seed" in str(err.value)


def test_a_configuration_not_in_the_table_is_missing_not_a_crash(tmp_path):
    ev = TableEvaluator(load_problem(_write(tmp_path)))
    seen = []
    o = ev.evaluate([_g(4, "sgd", 0.001)], on_result=lambda e, c: seen.append((e.status, c)))[0]
    assert o.status == "missing" and not o.ok and o.objectives({"acc": "max", "energy_j": "min"}) is None
    assert "not in the table t.csv" in o.reason
    assert o.energy_spent_j is None  # unknown, never zero
    assert seen == [("missing", False)]
    assert ev.evaluate([_g(4, "sgd", 0.001)])[0].cached  # asked again: free, as the store would


def test_an_empty_objective_cell_fails_that_evaluation_naming_the_line(tmp_path):
    ev = TableEvaluator(load_problem(_write(tmp_path)))
    o = ev.evaluate([_g(32, "adam", 0.01)])[0]
    assert o.status == "failed" and o.reason == "t.csv line 8 has no value for energy_j"


def test_energy_is_labelled_table_and_measured_only_where_the_column_says(tmp_path):
    ev = TableEvaluator(load_problem(_write(tmp_path)))
    measured = ev.evaluate([_g(8, "adam", 0.001)])[0].evaluations[0]
    assert measured.train.backend == "table" and measured.train.measured and measured.train_energy_j == 10.0
    assert measured.train.source == "table:table (measured)"
    estimated = ev.evaluate([_g(16, "adam", 0.001)])[0].evaluations[0]
    assert not estimated.train.measured and estimated.train.source == "table:table (estimated)"
    empty = ev.evaluate([_g(16, "sgd", 0.01)])[0].evaluations[0]
    assert empty.train.energy_j is None and "t.csv line 6 has no train_energy_j" in empty.train.missing_reason
    assert not ev.measured and "measured in 7 of 8 rows" in ev.meter_description


def test_without_a_measured_column_no_energy_is_measured(tmp_path):
    ev = TableEvaluator(load_problem(_write(tmp_path, extra='seed = "seed"')))
    o = ev.evaluate([_g(8, "adam", 0.001)])[0]
    assert not o.measured and not ev.measured and "not measured" in ev.meter_description


def test_table_energy_key_names_the_column_the_search_pays(tmp_path):
    path = _write(tmp_path, extra='seed = "seed"\nenergy = "energy_j"')
    ev = TableEvaluator(load_problem(path))
    o = ev.evaluate([_g(4, "adam", 0.01)])[0]
    assert o.energy_spent_j == 0.5 and o.metric("energy_j") == 0.5


def test_keys_built_per_column_are_genome_keys(tmp_path):
    ev = TableEvaluator(load_problem(_write(tmp_path)))
    assert set(ev.first_row) == {g.key for g in ev.genomes()}
    assert all(ev.lookup(g).ok or ev.lookup(g).status == "failed" for g in ev.genomes())


@pytest.mark.parametrize(("extra", "table", "words"), [
    ('seed = "seeds"', None, ["[table.seed]", "no column 'seeds' in t.csv", 'did you mean "seed"']),
    ('measured = "width"\nseed = "seed"', None, ["[table.measured]", "column 'width'", "line 2",
                                                "expected true or false, got '8'"]),
    ('seed = "seed"', TABLE.replace("0.70", "n/a"), ["[table.path]", "column 'acc'", "line 6",
                                                     "expected a number or an empty cell, got 'n/a'"]),
    ('seed = "seed"', TABLE.replace("16,sgd", ",sgd"), ["[table.configuration]", "column 'width'",
                                                         "empty at line 6"]),
    ('seed = "seed"', "width,opt,lr,seed,acc,energy_j\n", ["[table.path]", "t.csv has no rows"]),
    ('seed = "width"', None, ["[table.seed]", "column 'width' is in configuration too"]),
    ('seed = ["seed", 3]', None, ["[table.seed]", "expected a column name or a non-empty list"]),
    ('seed = "seed"\nbogus = 1', None, ["[table.bogus]", "unknown key"]),
])
def test_bad_tables_exit_2_naming_the_column(tmp_path, extra, table, words):
    path = _write(tmp_path, table=table or TABLE, extra=extra)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for w in words:
        assert w in result.output


def test_an_objective_that_is_no_column_is_refused_naming_it(tmp_path):
    path = _write(tmp_path)
    path.write_text(path.read_text().replace('energy_j = "min"', 'energy = "min"'))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "[objectives.energy] no column 'energy' in t.csv" in result.output


def test_validate_describes_the_table_not_a_dataset(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(_write(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "configuration width, opt, lr; seed seed; energy measured per column measured" in result.output
    assert "dataset" not in result.output and "model" not in result.output
    assert "width                one of 4, 8, 16, 32" in result.output


def test_a_table_problem_takes_no_space_or_model(tmp_path):
    path = _write(tmp_path)
    path.write_text(path.read_text() + '[space]\nwidth = [8, 16]\n')
    with pytest.raises(ProblemError, match=r"\[space\] a problem with \[table\]"):
        load_problem(path)


def test_a_missing_table_file_is_named(tmp_path):
    path = _write(tmp_path)
    path.write_text(path.read_text().replace('"t.csv"', '"nope.csv"'))
    with pytest.raises(ProblemError, match=r"\[table.path\] expected an existing CSV or Parquet table"):
        load_problem(path)


def test_evolve_on_a_table_from_the_command_line(tmp_path):
    path = _write(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["evolve", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert info["settings"]["replayed"] is True and info["settings"]["evaluator"] == "TableEvaluator"
    assert info["settings"]["measured"] is False and "t.csv" in info["settings"]["meter"]
    rows = (out / "evaluations.csv").read_text().splitlines()
    assert any(",missing," in r for r in rows) or len(rows) > 1
    assert "table" in (out / "evaluations.csv").read_text()
    # and resumes, looking the same table up again
    again = CliRunner().invoke(main, ["evolve", str(path), "--resume", str(out), "--generations", "3"])
    assert again.exit_code == 0, again.output


def test_a_grid_runs_evaluations_csv_is_a_table(tmp_path):
    """gi-energy's own evaluations.csv read through [table] (replay's file, any reader)."""
    from gi_energy.config.parse import parse_problem
    from gi_energy.runs.replay import SyntheticEvaluator
    from gi_energy.search.grid import run_grid

    grid = parse_problem({"problem": {"name": "g"}, "space": {"hidden_layers": {"min": 1, "max": 2},
                                                               "learning_rate": {"min": 1e-4, "max": 1e-1}},
                          "grid": {"hidden_layers": [1, 2], "width": [8, 32], "learning_rate": [1e-3, 1e-2]}})
    run_grid(grid, out=tmp_path / "grid", evaluator=SyntheticEvaluator(grid))
    (tmp_path / "p.toml").write_text(
        '[problem]\nname = "t"\n[table]\npath = "grid/evaluations.csv"\n'
        'configuration = ["hidden_layers", "widths", "learning_rate"]\nseed = "repeat"\n'
        'measured = "train_measured"\n[objectives]\naccuracy = "max"\ninference_energy_j_per_1k = "min"\n')
    p = load_problem(tmp_path / "p.toml")
    assert dict(p.table.metrics)["accuracy"] == "val_accuracy"
    ev = TableEvaluator(p)
    assert len(ev) == 8
    o = ev.outcomes()[0]
    assert o.ok and math.isfinite(o.metric("accuracy")) and o.evaluations[0].inference.backend == "table"


def test_peers_run_on_a_table_through_the_same_interface(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "search_vs_grid"))
    try:
        import peers
    finally:
        sys.path.pop(0)
    p = load_problem(_write(tmp_path))
    run = peers.random_search(p, p.table.path, 4, seed=1, out=tmp_path / "random")
    info = json.loads((run / "run.json").read_text())
    assert info["evaluations"] == 4 and info["replayed"] is True
    ref = peers.table_reference(p, tmp_path / "reference")
    assert json.loads((ref / "run.json").read_text())["command"] == "grid"


def test_parquet_without_an_engine_says_what_to_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        pytest.skip("a Parquet engine is installed here")
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    (tmp_path / "p.toml").write_text('[problem]\nname = "pq"\n[table]\npath = "t.parquet"\nconfiguration = ["a"]\n'
                                     '[objectives]\nm = "max"\nn = "min"\n')
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "p.toml")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "[table.path] t.parquet: reading Parquet needs pyarrow (pip install pyarrow)" in result.output


def test_grid_on_a_table_problem_says_the_table_is_the_baseline(tmp_path):
    from gi_energy.search.grid import grid_genomes

    problem = load_problem(_write(tmp_path))
    with pytest.raises(ProblemError, match=r"\[table\] problem is its own exhaustive baseline"):
        grid_genomes(problem)


def test_rows_by_key_keeps_first_rows_in_table_order_and_repeats_in_row_order():
    from gi_energy.evaluation.table import _rows_by_key

    assert _rows_by_key(["b", "a", "c"]) == ({"b": 0, "a": 1, "c": 2}, {})
    assert _rows_by_key(["b", "a", "b", "c", "a", "b"]) == ({"b": 0, "a": 1, "c": 3}, {"b": [0, 2, 5], "a": [1, 4]})
    assert _rows_by_key([]) == ({}, {})
