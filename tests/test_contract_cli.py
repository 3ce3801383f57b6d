"""The command line against its documented contract: the README's "Commands" synopsis
names every command and option the CLI has, with the same placeholders `--help` shows,
and what the synopsis implies about paths holds (an empty one is bad input, a path too
long for the file system is bad input, --out and --resume do not go together)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gi_energy.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _synopsis() -> dict[str, list[str]]:
    """Each command's documented usage lines (the indented block under "## Commands")."""
    text = README.read_text(encoding="utf-8")
    block = text.split("## Commands", 1)[1].split("\n\n", 2)[1]
    usages: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("gi-energy "):
            current = line.split()[1]
            usages.setdefault(current, []).append(line)
        elif line and current:
            usages[current][-1] += " " + line
    return usages


SYNOPSIS = _synopsis()


def _documented_options(lines: list[str]) -> dict[str, str | None]:
    """--option -> its placeholder (None for a flag), over every usage line of a command."""
    found: dict[str, str | None] = {}
    for line in lines:
        for name, metavar in re.findall(r"(--[a-z][a-z-]*)(?: ([A-Z][A-Z_]*))?", line):
            found[name] = metavar or None
    return found


def _cli_options(command: click.Command) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in command.params:
        if isinstance(p, click.Option) and "--help" not in p.opts:
            out[p.opts[0]] = None if p.is_flag else p.metavar
    return out


def test_the_synopsis_lists_every_command():
    assert set(SYNOPSIS) == set(main.commands)


@pytest.mark.parametrize("name", sorted(SYNOPSIS))
def test_every_option_is_documented_with_the_placeholder_help_shows(name):
    """`--help` said `--out PATH`, `--resume PATH`, `--probe FLOAT RANGE`, `RUN_DIRS...`
    where the contract says `--out DIR`, `--resume RUN_DIR`, `--probe SECONDS`, `RUN_DIR...`."""
    command = main.commands[name]
    assert _cli_options(command) == _documented_options(SYNOPSIS[name])
    help_text = CliRunner().invoke(main, [name, "--help"]).output
    for option, metavar in _documented_options(SYNOPSIS[name]).items():
        assert (f"{option} {metavar}" if metavar else option) in help_text


@pytest.mark.parametrize("name", ["compare", "report"])
def test_the_run_directories_are_named_as_documented(name):
    usage = CliRunner().invoke(main, [name, "--help"], prog_name="gi-energy").output.splitlines()[0]
    assert usage == f"Usage: gi-energy {name} [OPTIONS] RUN_DIR..."
    assert f"gi-energy {name} RUN_DIR..." in SYNOPSIS[name][0]


@pytest.mark.parametrize("args", [
    ["evolve", "none.toml", "--out", ""],
    ["grid", "none.toml", "--out", " "],
    ["evolve", "none.toml", "--store", ""],
    ["evolve", "--resume", ""],
    ["compare", ""],
    ["report", "", "--reference", "x"],
    ["validate", ""],
])
def test_an_empty_path_is_bad_input_not_the_working_directory(args, tmp_path, monkeypatch):
    """`--out ""` (an unset shell variable) wrote the run into the working directory itself,
    and `compare ""` compared whatever run was there."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "an empty path" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_out_with_resume_is_refused_not_ignored(tmp_path):
    """evolve --resume RUN_DIR --out OTHER went on in RUN_DIR and silently ignored --out
    (grid refused the pair already)."""
    run = tmp_path / "run"
    run.mkdir()
    result = CliRunner().invoke(main, ["evolve", "--resume", str(run), "--out", str(tmp_path / "other")])
    assert result.exit_code == 2
    assert "--out or --resume, not both" in result.output
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("args", [
    ["validate", "x" * 300 + ".toml"],
    ["compare", "x" * 300],
    ["report", "x" * 300],
    ["evolve", "--resume", "x" * 300],
])
def test_a_path_too_long_for_the_file_system_is_bad_input(args, tmp_path, monkeypatch):
    """It was 'unexpected OSError: [Errno 36] File name too long: ...', exit status 1."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert len(out.splitlines()) == 1 and "Traceback" not in out and "unexpected" not in out
    assert out.startswith("gi-energy: error: path too long") and f"({len(args[-1])} characters)" in out


def test_a_problem_name_too_long_for_a_run_directory_is_refused_by_validate(tmp_path):
    """A 300-character [problem] name passed validate, then evolve failed with an
    unexpected OSError (exit 1) making runs/<name>-evolve-<time>."""
    problem = tmp_path / "long.toml"
    problem.write_text(f'[problem]\nname = "{"n" * 201}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(problem)])
    assert result.exit_code == 2
    assert "[problem.name] expected a name of at most 200 bytes" in result.output
    problem.write_text(f'[problem]\nname = "{"n" * 200}"\n', encoding="utf-8")
    assert CliRunner().invoke(main, ["validate", str(problem)]).exit_code == 0


@pytest.mark.parametrize("is_run", [False, True])
def test_a_directory_given_as_the_problem_is_named_so(tmp_path, is_run):
    """A folder (a run directory, say) given as PROBLEM was "no such problem file"."""
    folder = tmp_path / "runs.toml"
    folder.mkdir()
    if is_run:
        (folder / "run.json").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(folder)])
    assert result.exit_code == 2
    expected = "is a run directory, not a problem file" if is_run else "is a directory, not a problem file"
    assert expected in result.output
    assert (f"--resume {folder}" in result.output) == is_run


def test_a_refused_resume_of_a_table_run_does_not_blame_an_unedited_table(tmp_path):
    """Resuming with constraints added said "the table bench.csv changed": the file was
    never touched, what the problem reads from it was."""
    (tmp_path / "bench.csv").write_text("w,accuracy,energy_j\n1,0.5,1\n2,0.7,2\n3,0.6,3\n4,0.8,5\n")
    text = ('[problem]\nname = "t"\n[table]\npath = "bench.csv"\nconfiguration = ["w"]\n'
            '[objectives]\naccuracy = "max"\nenergy_j = "min"\n[search]\npopulation = 2\ngenerations = 1\n')
    (tmp_path / "p.toml").write_text(text)
    run = str(tmp_path / "run")
    assert CliRunner().invoke(main, ["evolve", str(tmp_path / "p.toml"), "--out", run]).exit_code == 0
    (tmp_path / "q.toml").write_text(text + "[constraints]\nenergy_j = { max = 4 }\n")
    result = CliRunner().invoke(main, ["evolve", str(tmp_path / "q.toml"), "--resume", run, "--generations", "2"])
    assert result.exit_code == 2
    assert f"how the table {tmp_path / 'bench.csv'} is read changed (its configuration, seed or measured column, " \
           "or the columns the objectives and constraints name)" in result.output
    assert f"the table {tmp_path / 'bench.csv'} changed" not in result.output
