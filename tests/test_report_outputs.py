"""Where compare and report write, against what the README says of it: compare writes a
folder (never into a run directory), report.html goes beside the run it reports on."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import gi_energy
from gi_energy.cli import main
from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.meters.reading import Reading
from gi_energy.report.markdown import render_report
from gi_energy.runs.rundir import RunDirectory
from gi_energy.tasks.results import Evaluation, Outcome


def _run(path, command: str = "evolve"):
    problem = load_problem("quickstart")
    rd = RunDirectory.create(path, problem, command, {})
    rd.update_run_json(status="complete")
    outcomes = []
    for width, accuracy, energy_j in ((8, 0.8, 1.0), (16, 0.9, 2.0)):
        g = Genome(layers={"hidden": (width,)}, values={"lr": 0.01})
        outcomes.append(Outcome(g, (Evaluation(
            genome=g, status="ok", val_accuracy=accuracy, test_accuracy=accuracy,
            train=Reading("estimate", "process-estimate", False, 1.0, 1.0),
            inference=Reading("estimate", "process-estimate", False, energy_j, 1.0),
            inference_samples=1000, params=width),)))
    rd.write_results(outcomes, dict(problem.objectives), [])
    return path


def test_compare_into_a_file_says_so_in_one_line(tmp_path):
    """It said "cannot create f: [Errno 17] File exists: 'f'", --force or not."""
    run = _run(tmp_path / "a")
    (tmp_path / "f").write_text("notes")
    for force in ([], ["--force"]):
        result = CliRunner().invoke(main, ["compare", str(run), "--out", str(tmp_path / "f"), *force])
        assert result.exit_code == 2
        assert result.output.strip() == (f"gi-energy: error: {tmp_path / 'f'} exists and is not a directory: a "
                                         "comparison is a folder of files; choose another output directory")
    assert (tmp_path / "f").read_text() == "notes"


def test_report_refuses_another_runs_directory(tmp_path):
    """report A --out B wrote A's page as B/report.html, where it read as B's report."""
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    for out in (b, b / "page.html"):
        result = CliRunner().invoke(main, ["report", str(a), "--out", str(out)])
        assert result.exit_code == 2
        assert f"{b} is another run's directory" in result.output
    assert not (b / "report.html").exists() and not (b / "page.html").exists()


def test_report_still_writes_into_a_run_it_reports_on(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    assert CliRunner().invoke(main, ["report", str(a)]).exit_code == 0
    assert (a / "report.html").is_file()
    assert CliRunner().invoke(main, ["report", str(a), str(b), "--out", str(b)]).exit_code == 0
    assert (b / "report.html").is_file()


@pytest.mark.parametrize("command, words", [("grid", "grid"), ("evolve", "evolve run")])
def test_the_reference_is_named_for_the_run_it_is(tmp_path, command, words):
    """An evolve run given as --reference was called "the grid run" in report.md."""
    ref = _run(tmp_path / "ref", command)
    cmp = gi_energy.compare([_run(tmp_path / "a")], reference=ref)
    assert cmp["reference"]["source"] == f"front of the {command} run {ref}"
    assert cmp["reference"]["command"] == command
    assert f"The reference {words} cost 2 evaluations" in render_report(cmp)


def test_runs_in_folders_of_one_name_are_told_apart(tmp_path):
    """Seeds kept as s1/run, s2/run: report.md named both rows `run`."""
    a, b = _run(tmp_path / "s1" / "run"), _run(tmp_path / "s2" / "run")
    other = _run(tmp_path / "solo")
    text = render_report(gi_energy.compare([a, b, other]))
    assert "| `s1/run` |" in text and "| `s2/run` |" in text and "| `solo` |" in text
    assert "| `run` |" not in text


def test_run_names_take_as_few_parts_as_tell_runs_apart(tmp_path):
    from gi_energy.report.markdown import run_names

    paths = [str(tmp_path / "x" / "a" / "run"), str(tmp_path / "y" / "a" / "run"), str(tmp_path / "b")]
    assert list(run_names(paths).values()) == ["x/a/run", "y/a/run", "b"]
    assert run_names(["only"]) == {"only": "only"}


def test_report_md_names_every_file_compare_writes(tmp_path):
    """Its "Files:" line left out report.html, which compare writes beside it."""
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", str(_run(tmp_path / "a")), "--out", str(out)])
    assert result.exit_code == 0, result.output
    files_line = next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("Files:"))
    written = sorted(p.name for p in out.iterdir())
    assert "report.html" in written
    assert [name for name in written if f"`{name}`" not in files_line] == ["report.md"]
