"""A researcher's table read back as it was written: configuration columns named like the
files' own columns, fractional counts, a table with one energy column measured, and a
resume from another folder (the run's copy of the problem finds its table)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import gi_energy
from gi_energy.cli import main
from gi_energy.config.parse import load_problem
from gi_energy.search.evolve import evolve

ROWS = [(dev, p, acc, e) for dev, base in (("cpu", 0.6), ("gpu", 0.7)) for p, acc, e in
        ((0.296, base, 1.0), (0.592, base + 0.1, 2.0), (1.184, base + 0.15, 4.0))]


def _problem(tmp_path: Path, *, measured: bool = False, objectives: str = 'acc = "max"\nenergy_j = "min"') -> Path:
    """A table whose configuration columns are called ``device`` and ``index`` (names
    evaluations.csv writes itself) and whose ``params`` metric is in millions."""
    lines = ["device,index,acc,energy_j,params,measured"]
    for i, (dev, p, acc, e) in enumerate(ROWS):
        lines.append(f"{dev},{i % 3},{acc},{e},{p},{'true' if measured else 'false'}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    extra = 'measured = "measured"\n' if measured else ""
    path = tmp_path / "p.toml"
    path.write_text(f'[problem]\nname = "cols"\n[table]\npath = "t.csv"\nconfiguration = ["device", "index"]\n'
                    f'energy = "energy_j"\n{extra}[objectives]\n{objectives}\n'
                    '[search]\npopulation = 4\ngenerations = 3\nsurrogate = "none"\n')
    return path


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_configuration_columns_named_like_the_files_own_are_kept_under_config_names(tmp_path):
    res = evolve(load_problem(_problem(tmp_path)), out=tmp_path / "run", plot=False)
    rows = _rows(tmp_path / "run" / "evaluations.csv")
    assert len(rows) == len(res.evaluations) == 6
    for i, row in enumerate(rows):
        assert row["index"] == str(i)  # the file's own index, not the configuration's
        assert row["key"] == f"device={row['config_device']}|index={row['config_index']}"
        assert row["device"] == "table"  # where the evaluation ran
    front = _rows(tmp_path / "run" / "front.csv")
    assert front and all(r["key"] == f"device={r['config_device']}|index={r['config_index']}" for r in front)
    # Read back, the run is the run that was written: every outcome, the same front.
    run = gi_energy.open_run(tmp_path / "run")
    assert run.outcome_count == 6
    assert sorted(o.key for o in run.front) == sorted(o.key for o in res.front)
    df = run.to_dataframe()
    assert set(df["config_device"]) == {"cpu", "gpu"}


def test_a_fractional_params_metric_is_not_cut_to_an_integer(tmp_path):
    res = evolve(load_problem(_problem(tmp_path, objectives='acc = "max"\nparams = "min"')),
                 out=tmp_path / "run", plot=False)
    assert sorted(o.metric("params") for o in res.evaluations) == sorted(p for _, p, _, _ in ROWS)
    # the true front: the smallest model of the better device beats every cpu one but none of gpu's
    assert len(res.front) == 3
    run = gi_energy.open_run(tmp_path / "run")
    assert sorted(o.metric("params") for o in run.front) == [0.296, 0.592, 1.184]
    assert sorted(float(r["params"]) for r in _rows(tmp_path / "run" / "front.csv")) == [0.296, 0.592, 1.184]


def test_a_table_measured_on_every_row_with_one_energy_column_says_measured_everywhere(tmp_path):
    evolve(load_problem(_problem(tmp_path, measured=True)), out=tmp_path / "run", plot=False)
    front = _rows(tmp_path / "run" / "front.csv")
    assert front and all(r["measured"] == "true" for r in front)
    run = gi_energy.open_run(tmp_path / "run")
    assert run.energy_kind == "measured"
    assert bool(run.to_dataframe("front")["measured"].all())


def test_a_table_not_measured_is_estimated_everywhere(tmp_path):
    evolve(load_problem(_problem(tmp_path)), out=tmp_path / "run", plot=False)
    assert all(r["measured"] == "false" for r in _rows(tmp_path / "run" / "front.csv"))
    assert gi_energy.open_run(tmp_path / "run").energy_kind == "estimated"


@pytest.mark.parametrize("how", ["elsewhere", "renamed"])
def test_resume_of_a_table_run_from_another_folder_or_after_the_file_is_renamed(tmp_path, how, monkeypatch):
    problem = _problem(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["evolve", "p.toml", "--out", "run", "--max-evaluations", "4"])
    assert first.exit_code == 0, first.output
    if how == "renamed":
        problem.rename(tmp_path / "renamed.toml")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    res = runner.invoke(main, ["evolve", "--resume", str(tmp_path / "run"), "--max-evaluations", "6"])
    assert res.exit_code == 0, res.output
    assert len(_rows(tmp_path / "run" / "evaluations.csv")) == 6
    assert gi_energy.open_run(tmp_path / "run").problem.table.path == tmp_path / "t.csv"


def test_resume_after_the_table_changed_is_refused_naming_the_table(tmp_path, monkeypatch):
    _problem(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["evolve", "p.toml", "--out", "run", "--max-evaluations", "4"]).exit_code == 0
    with open(tmp_path / "t.csv", "a") as fh:
        fh.write("tpu,0,0.9,9.0,1.0,false\n")
    os.chdir(tmp_path.parent)
    res = runner.invoke(main, ["evolve", "--resume", str(tmp_path / "run"), "--max-evaluations", "6"])
    assert res.exit_code == 2
    assert f"the table {tmp_path / 't.csv'} changed" in res.output
    assert "Traceback" not in res.output


def test_gi_energy_grid_writes_a_table_as_its_grid_run_for_compare_and_replay(tmp_path, monkeypatch):
    """A researcher with their own table makes the exhaustive reference from the command
    line (before: exit 2 pointing at a script of the repository's experiments/)."""
    _problem(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["grid", "p.toml", "--out", "ref"])
    assert res.exit_code == 0, res.output
    assert "6 configurations are written as the grid run ref (nothing trained)" in res.output
    ref = gi_energy.open_run(tmp_path / "ref")
    assert ref.status == "complete" and ref.command == "grid" and ref.outcome_count == 6
    assert runner.invoke(main, ["evolve", "p.toml", "--out", "run", "--max-evaluations", "4"]).exit_code == 0
    cmp = runner.invoke(main, ["compare", "run", "--reference", "ref", "--out", "cmp"])
    assert cmp.exit_code == 0, cmp.output
    again = runner.invoke(main, ["grid", "p.toml", "--out", "ref"])
    assert again.exit_code == 2 and "already holds a run" in again.output


def test_a_table_run_resumed_with_another_problem_says_so(tmp_path, monkeypatch):
    _problem(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["evolve", "p.toml", "--out", "run", "--max-evaluations", "4"]).exit_code == 0
    res = runner.invoke(main, ["evolve", "quickstart", "--resume", "run"])
    assert res.exit_code == 2
    assert f"run searched the table {tmp_path / 't.csv'}" in res.output and "not a run directory" not in res.output


def test_validate_of_a_table_says_its_rows_are_the_repeats_not_a_meter(tmp_path):
    """A table trains nothing: validate said "workers 2, device cpu, repeats 1" and named a
    meter, even for a table whose seed column gives three rows a configuration."""
    rows = ["width,seed,acc,energy_j"] + [f"{w},{s},{0.5 + w / 100 + s / 1000},{w * 1.5}" for w in (8, 16)
                                          for s in range(3)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "p.toml").write_text('[problem]\nname = "s"\n[table]\npath = "t.csv"\nconfiguration = ["width"]\n'
                                     'seed = "seed"\nenergy = "energy_j"\n[objectives]\nacc = "max"\nenergy_j = "min"\n')
    res = CliRunner().invoke(main, ["validate", str(tmp_path / "p.toml")])
    assert res.exit_code == 0, res.output
    assert "evaluation looked up in t.csv, nothing trained; repeats every row of a configuration (seed column seed)" \
        in res.output
    assert "repeats 1" not in res.output and "meter" not in res.output
