"""The run directory against the README's list of what it holds: every file named there
exists after evolve and grid, with the columns and run.json fields it names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.config.parse import load_problem
from gi_energy.runs.replay import SyntheticEvaluator
from gi_energy.search.evolve import evolve
from gi_energy.search.grid import run_grid

README = Path(__file__).resolve().parents[1] / "README.md"

EVALUATIONS = ["index", "key", "repeat", "status", "reason", "val_accuracy", "test_accuracy", "train_energy_j",
               "inference_energy_j", "inference_energy_j_per_1k", "energy_spent_j", "train_backend", "train_scope",
               "train_measured", "inference_backend", "inference_scope", "inference_measured", "train_time_s",
               "inference_time_s", "params", "flops_per_sample", "co2_g", "cached", "spent"]
FRONT = ["index", "key", "test_accuracy", "params", "flops_per_sample", "train_source", "inference_source",
         "measured", "repeats"]
HISTORY = {"evolve": ["generation", "evaluations", "failures", "energy_spent_j", "energy_unknown", "hypervolume",
                      "front_size", "wall_s"],
           "grid": ["batch", "evaluations", "trained", "failures", "energy_spent_j", "energy_unknown", "wall_s",
                    "hypervolume", "front_size"]}
RUN_JSON = ["command", "status", "fingerprint", "seed", "objectives", "settings", "versions", "machine"]
SPENT = {"evolve": ("totals", ["evaluations", "failures", "cached", "energy_spent_j", "energy_unknown"]),
         "grid": (None, ["evaluations", "trained", "energy_spent_j", "energy_unknown"])}
FILES = ["run.json", "problem.toml", "evaluations.csv", "front.csv", "history.csv", "front.png", "trained.jsonl"]


def _block() -> str:
    text = README.read_text(encoding="utf-8")
    return " ".join(text.split("What a run directory holds", 1)[1].split("From research code:", 1)[0].split())


def test_the_readme_names_what_this_test_checks():
    block = _block()
    for name in [*FILES, *EVALUATIONS, *FRONT, *HISTORY["evolve"], *HISTORY["grid"], *RUN_JSON,
                 *SPENT["evolve"][1], *SPENT["grid"][1], "totals", "checkpoint.json", "run.lock"]:
        assert name in block, name


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def _check(run: Path, command: str, objectives) -> None:
    for name in FILES:
        assert (run / name).is_file(), name
    header = _header(run / "evaluations.csv")
    assert set(EVALUATIONS) <= set(header), set(EVALUATIONS) - set(header)
    front = _header(run / "front.csv")
    assert set(FRONT) | set(objectives) <= set(front), (set(FRONT) | set(objectives)) - set(front)
    assert _header(run / "history.csv") == HISTORY[command]
    info = json.loads((run / "run.json").read_text())
    assert set(RUN_JSON) <= set(info) and info["command"] == command and info["status"] == "complete"
    where, fields = SPENT[command]
    spent = info[where] if where else info
    assert set(fields) <= set(spent), set(fields) - set(spent)


@pytest.mark.parametrize("command", ["evolve", "grid"])
def test_a_run_directory_holds_what_the_readme_lists(tmp_path, command):
    problem = load_problem("quickstart").with_overrides(search={"population": 4, "generations": 1})
    evaluator = SyntheticEvaluator(problem)
    if command == "evolve":
        evolve(problem, out=tmp_path / "run", evaluator=evaluator)
    else:
        run_grid(problem, out=tmp_path / "run", evaluator=evaluator)
    _check(tmp_path / "run", command, problem.objectives)


def test_a_table_grid_run_is_as_the_readme_says(tmp_path):
    """Written whole from the table: its evaluations the table's, its front.csv and
    front.png as any run's, nothing trained by the command (and no batches: history.csv
    has no rows), as the README says."""
    (tmp_path / "bench.csv").write_text("w,accuracy,energy_j\n1,0.5,1\n2,0.7,2\n3,0.6,3\n")
    (tmp_path / "p.toml").write_text('[problem]\nname = "t"\n[table]\npath = "bench.csv"\nconfiguration = ["w"]\n'
                                     '[objectives]\naccuracy = "max"\nenergy_j = "min"\n')
    result = CliRunner().invoke(main, ["grid", str(tmp_path / "p.toml"), "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    run = tmp_path / "g"
    info = json.loads((run / "run.json").read_text())
    assert info["evaluations"] == 3 and info["status"] == "complete"
    assert (info["trained"], info["energy_spent_j"], info["energy_unknown"]) == (0, 0.0, 0)
    assert set(FRONT) <= set(_header(run / "front.csv"))
    assert (run / "front.png").read_bytes().startswith(b"\x89PNG")
