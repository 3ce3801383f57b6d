"""Bad data is bad input: each faulty CSV is refused by ``gi-energy validate`` (and before
any run starts) with exit status 2 and one line naming the file, the row and column where
they apply, and what was expected. The project's exceptions survive pickling, so one
raised in a worker process reaches the parent as itself."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.errors import GiEnergyError, MeterError, ProblemError, Terminated, UsageError

pytestmark = pytest.mark.reliability

GOOD_ROWS = "".join(f"{i % 5},{(i * 7) % 3},{'ab'[i % 2]}\n" for i in range(30))
PROBLEM = """
[problem]
name = "csv-case"

[dataset]
source = "csv"
path = "data.csv"
target = "label"

[space]
hidden_layers = 1
width = 4
epochs = 1

[search]
population = 2
generations = 1

[evaluation]
workers = 2

[energy]
meter = "estimate"
"""

# name -> (file contents, fragments the one-line message must hold besides the file name)
CASES = {
    "empty-cell": ("a,b,label\n1,2,x\n3,,y\n" + GOOD_ROWS, ["row 3", "column 'b'", "empty cell", "expected a number"]),
    "nan-cell": ("a,b,label\n1,2,x\n3,nan,y\n" + GOOD_ROWS, ["row 3", "column 'b'", "expected a finite number"]),
    "inf-cell": ("a,b,label\n" + GOOD_ROWS + "-inf,1,x\n", ["row 32", "column 'a'", "expected a finite number"]),
    "text-cell": ("a,b,label\n1,2,x\n4,5,y\nseven,1,x\n" + GOOD_ROWS, ["row 4", "column 'a'", "expected a number",
                                                                       "'seven'"]),
    "short-row": ("a,b,label\n1,2,x\n3,y\n" + GOOD_ROWS, ["row 3", "2 cells", "expected 3"]),
    "long-row": ("a,b,label\n1,2,x\n3,4,y,9\n" + GOOD_ROWS, ["row 3", "4 cells", "expected 3"]),
    "empty-label": ("a,b,label\n1,2,\n" + GOOD_ROWS, ["row 2", "column 'label'", "empty label"]),
    "header-only": ("a,b,label\n", ["no rows below the header"]),
    "empty-file": ("", ["no header row"]),
    "one-class": ("a,b,label\n" + "".join(f"{i},{i % 3},x\n" for i in range(30)),
                  ["[dataset.target]", "column 'label'", "at least 2 classes, found 1", "'x'"]),
    "too-small": ("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n", ["[dataset.target]", "too few rows to split",
                                                             "4 rows, 2 classes"]),
    "target-only": ("label\nx\ny\n" * 1, ["at least one feature column"]),
}


def write_case(folder, contents: str):
    (folder / "data.csv").write_text(contents)
    path = folder / "problem.toml"
    path.write_text(PROBLEM)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_refuses_bad_csv(tmp_path, case):
    contents, fragments = CASES[case]
    problem = write_case(tmp_path, contents)
    result = CliRunner().invoke(main, ["validate", str(problem)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("gi-energy: error: ")
    assert str(tmp_path / "data.csv") in line
    for fragment in fragments:
        assert fragment in line, line


def test_good_csv_validates(tmp_path):
    problem = write_case(tmp_path, "a,b,label\n" + GOOD_ROWS)
    result = CliRunner().invoke(main, ["validate", str(problem)])
    assert result.exit_code == 0, result.output
    assert "2 classes" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("command", ["validate", "evolve", "grid"])
def test_bad_csv_is_refused_before_any_run_by_a_real_process(tmp_path, command):
    """A real process: exit 2, one line, and for evolve/grid no run directory, no store,
    no worker (the check runs in the main process first)."""
    contents, fragments = CASES["nan-cell"]
    problem = write_case(tmp_path, contents)
    if command == "grid":
        problem.write_text(PROBLEM + "\n[grid]\nwidth = [4]\n")
    proc = subprocess.run([sys.executable, "-m", "gi_energy.cli", command, str(problem)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 3, column 'b'" in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists()


def test_problem_name_is_not_a_path(tmp_path):
    path = tmp_path / "p.toml"
    for name in ("../../x", "a/b", "..", "a\\\\b"):
        path.write_text(f'[problem]\nname = "{name}"\n')
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 2
        assert "[problem.name] expected a plain name" in result.stderr, result.stderr


ERRORS = [
    ProblemError("data.csv", "dataset.path", "row 3, column 'b': empty cell; expected a number"),
    ProblemError("", "", "no key"),
    UsageError("runs/x: not a run directory"),
    MeterError("cannot read /sys/class/powercap/intel-rapl:0/energy_uj"),
    GiEnergyError("a worker process failed to start"),
    Terminated(),
]


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_exceptions_survive_pickling(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert getattr(back, "exit_code", None) == getattr(exc, "exit_code", None)
    if isinstance(exc, ProblemError):
        assert (back.source, back.key, back.expected) == (exc.source, exc.key, exc.expected)


def _raise_problem_error():
    raise ProblemError("data.csv", "dataset.path", "row 3, column 'b': empty cell; expected a number")


@pytest.mark.slow
def test_problem_error_from_a_worker_process_arrives_as_itself():
    from joblib.externals.loky import ProcessPoolExecutor

    executor = ProcessPoolExecutor(max_workers=1)
    try:
        with pytest.raises(ProblemError, match=r"data.csv: \[dataset.path\] row 3, column 'b'"):
            executor.submit(_raise_problem_error).result(timeout=60)
    finally:
        executor.shutdown(wait=True)


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.jsonl", "link.jsonl"])
def test_checkpoint_reads_only_files_inside_its_run_directory(tmp_path, name):
    import json

    from gi_energy.search.checkpoint import CHECKPOINT_NAME, FORMAT_VERSION, load_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "outside.jsonl").write_text("{}\n")
    (run / "link.jsonl").symlink_to(tmp_path / "outside.jsonl")
    (run / CHECKPOINT_NAME).write_text(json.dumps({"format_version": FORMAT_VERSION, "outcomes_count": 1,
                                                   "outcomes_file": name}))
    with pytest.raises(UsageError, match=r"outcomes_file .* is outside the run directory"):
        load_checkpoint(run)
