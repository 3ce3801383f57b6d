"""The command line: every subcommand has --help; bad usage exits 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gi_energy.cli import main

SUBCOMMANDS = ["validate", "meters", "evolve", "grid", "compare", "report"]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_group_help_lists_subcommands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in result.output


def test_unknown_option_is_usage_error():
    result = CliRunner().invoke(main, ["evolve", "quickstart", "--populaton", "3"])
    assert result.exit_code == 2


def test_missing_problem_file_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "none.toml")])
    assert result.exit_code == 2
    assert "no such problem file" in result.output


def test_validate_list():
    result = CliRunner().invoke(main, ["validate", "--list"])
    assert result.exit_code == 0
    assert "quickstart" in result.output and "digits_cnn" in result.output


def test_unexpected_error_is_one_line_exit_1(monkeypatch, tmp_path):
    import gi_energy.meters.report as report

    def boom(**kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/proc/x/y.sqlite")

    monkeypatch.setattr(report, "cli_meters", boom)
    result = CliRunner().invoke(main, ["meters"])
    assert result.exit_code == 1
    out = result.output.strip()
    assert len(out.splitlines()) == 1 and "Traceback" not in out
    assert "FileNotFoundError" in out and "/proc/x/y.sqlite" in out


def test_a_negative_seed_is_bad_usage_before_any_run_directory(tmp_path):
    """numpy refuses a negative seed: it was an unexpected ValueError (exit 1) after the
    run directory was made, left "running"."""
    result = CliRunner().invoke(main, ["evolve", "quickstart", "--seed", "-1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--seed" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
