"""Results a researcher can open: open_run on evolve, grid and replay runs, DataFrames and
Figures, compare()'s typed result, quiet library calls, --resume without PROBLEM, and the
refusal to write a comparison over a run or an earlier comparison."""

from __future__ import annotations

import json
import math
import warnings

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

import gi_energy
from gi_energy.cli import main
from gi_energy.config.parse import load_problem
from gi_energy.errors import UsageError
from gi_energy.report.progress import front_table
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
from gi_energy.search.grid import run_grid


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A synthetic grid of quickstart (12 points) and two evolve runs replaying it."""
    root = tmp_path_factory.mktemp("api")
    problem = load_problem("quickstart")
    grid = run_grid(problem, out=root / "grid", evaluator=SyntheticEvaluator(problem))
    evolved = []
    for seed in (1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evolved.append(gi_energy.evolve(problem, out=root / f"evo{seed}", seed=seed,
                                            evaluator=ReplayEvaluator(problem, root / "grid"),
                                            overrides={"population": 4, "generations": 2}))
    return problem, root, grid, evolved


def test_open_run_on_a_grid(runs):
    problem, root, grid, _ = runs
    run = gi_energy.open_run(root / "grid")
    assert run.command == "grid" and run.status == "complete" and run.objectives == dict(problem.objectives)
    assert [o.key for o in run.outcomes] == [o.key for o in grid.outcomes]
    assert [o.key for o in run.front] == [o.key for o in sorted(grid.front, key=lambda o: -o.metric("accuracy"))]
    assert run.problem.fingerprint() == problem.fingerprint() and run.energy_kind == "estimated"
    assert not run.measured and len(run.history) == len(grid.history)
    # what run_grid returns offers the same object
    assert grid.run.path == run.path and len(grid.run.front) == len(run.front)


def test_dataframes_of_evaluations_front_history(runs):
    _, root, grid, _ = runs
    run = gi_energy.open_run(root / "grid")
    ev = run.to_dataframe()
    assert isinstance(ev, pd.DataFrame) and len(ev) == 12
    acc = "val_accuracy" if "val_accuracy" in ev.columns else "accuracy"  # the column's name before issue 12
    assert {"key", acc, "inference_energy_j_per_1k", "train_measured", "widths"} <= set(ev.columns)
    assert not any(c.endswith("_json") for c in ev.columns)
    assert ev["train_measured"].dtype == bool and not ev["train_measured"].any()
    assert ev[acc].tolist() == pytest.approx([o.metric("accuracy") for o in grid.outcomes])
    front = run.to_dataframe("front")
    assert front["key"].tolist() == [o.key for o in run.front]
    assert len(run.to_dataframe("history")) == len(grid.history)
    with pytest.raises(ValueError, match="expected one of evaluations, front, history"):
        run.to_dataframe("trials")


def test_missing_energy_is_nan_not_zero(tmp_path):
    problem = load_problem("quickstart")
    bad = next(iter(problem.grid.enumerate(problem.space))).key
    run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem, fail_keys=[bad]))
    df = gi_energy.open_run(tmp_path / "g").to_dataframe()
    row = df[df["key"] == bad].iloc[0]
    acc = "val_accuracy" if "val_accuracy" in df.columns else "accuracy"
    assert row["status"] != "ok" and math.isnan(row["train_energy_j"]) and math.isnan(row[acc])


def test_evolve_and_replay_runs(runs):
    _, root, _, evolved = runs
    result = evolved[0]
    run = result.run
    assert run.command == "evolve" and run.settings["replay"] and run.seed == 1
    assert [o.key for o in run.outcomes] == [o.key for o in result.evaluations]
    assert {o.key for o in run.front} == {o.key for o in result.front}
    assert result.front and result.run_dir == run.path  # the README's fields still work
    assert run.history[-1]["generation"] == 2
    for fig in (run.plot_front(), run.plot_history()):
        assert isinstance(fig, Figure)
    labels = [ax.get_xlabel() for ax in run.plot_history().axes]
    assert "evaluations" in labels and any("energy spent [J] (estimated" in x for x in labels)
    front_axes = run.plot_front().axes[0]
    assert "estimated" in front_axes.get_xlabel() and "[J]" in front_axes.get_xlabel()


def test_compare_returns_a_typed_result_that_is_still_the_dict(runs, tmp_path):
    _, root, _, evolved = runs
    cmp = gi_energy.compare([e.run_dir for e in evolved], reference=root / "grid", out=tmp_path / "c")
    assert isinstance(cmp, gi_energy.Comparison) and isinstance(cmp, dict)
    assert json.loads((tmp_path / "c" / "comparison.json").read_text()) == cmp.data == cmp
    assert cmp.out == tmp_path / "c" and cmp.energy_kind == "estimated"
    df = cmp.to_dataframe()
    assert len(df) == 3 and {"hv_ratio", "igd_plus", "energy_spent_j", "saving"} <= set(df.columns)
    assert df["reference"].tolist() == [True, False, False]
    groups = cmp.to_dataframe("groups")
    assert "hv_ratio_median" in groups.columns and groups["runs"].tolist() == [2]
    assert isinstance(cmp.plot_fronts(), Figure) and isinstance(cmp.plot_history(), Figure)
    assert [r.path for r in cmp.open_runs()][0] == root / "grid"
    hv_axes = cmp.plot_history().axes
    assert hv_axes[0].get_ylim()[1] >= 1.05 and "estimated" in hv_axes[1].get_xlabel()
    assert [t.get_text() for t in hv_axes[0].texts] == ["90%", "95%", "99%"]


def test_compare_refuses_a_run_directory_and_an_earlier_comparison(runs, tmp_path):
    _, root, _, evolved = runs
    paths = [str(e.run_dir) for e in evolved]
    before = (evolved[0].run_dir / "front.csv").read_text()
    with pytest.raises(UsageError, match="is a run directory.*force=True"):
        gi_energy.compare(paths, out=evolved[0].run_dir)
    assert (evolved[0].run_dir / "front.csv").read_text() == before
    assert not (evolved[0].run_dir / "comparison.json").exists()
    gi_energy.compare(paths, out=tmp_path / "c")
    with pytest.raises(UsageError, match="earlier comparison"):
        gi_energy.compare(paths, out=tmp_path / "c")
    gi_energy.compare(paths, out=tmp_path / "c", force=True)
    # the command line: one line, exit 2, naming --force
    result = CliRunner().invoke(main, ["compare", *paths, "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "--force" in result.output and len(result.output.splitlines()) == 1
    result = CliRunner().invoke(main, ["compare", *paths, "--out", str(root / "grid")])
    assert result.exit_code == 2 and "is a run directory" in result.output
    result = CliRunner().invoke(main, ["compare", *paths, "--out", str(tmp_path / "c"), "--force"])
    assert result.exit_code == 0 and f"wrote {tmp_path / 'c'}/" in result.output


def test_compare_default_directory_follows_output_directory(runs, tmp_path):
    _, root, _, evolved = runs
    problem_file = tmp_path / "p.toml"
    text = load_problem("quickstart").to_toml() + '\n[output]\ndirectory = "elsewhere"\n'
    problem_file.write_text(text)
    problem = load_problem(problem_file)
    run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem))
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    written = list((tmp_path / "elsewhere").glob("compare-*"))
    assert len(written) == 1 and (written[0] / "report.md").is_file()
    assert f"wrote {written[0]}/" in result.output


def test_library_calls_are_quiet_and_warn_once(capsys, tmp_path):
    problem = load_problem("quickstart")
    with pytest.warns(UserWarning, match="energy is estimated, not measured"):
        run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem))
    assert capsys.readouterr() == ("", "")
    with pytest.warns(UserWarning, match="energy is estimated"):
        gi_energy.evolve(problem, out=tmp_path / "e", evaluator=SyntheticEvaluator(problem),
                         overrides={"population": 4, "generations": 1})
    assert capsys.readouterr() == ("", "")
    # progress=True prints, as the command line does; the meter sentence is the same line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_grid(problem, out=tmp_path / "g2", evaluator=SyntheticEvaluator(problem), progress=True)
        gi_energy.evolve(problem, out=tmp_path / "e2", evaluator=SyntheticEvaluator(problem), progress=True,
                         overrides={"population": 4, "generations": 1})
    out, err = capsys.readouterr()
    assert "grid done" in out and "gen 1/1" in out and "HV 1.000× init" in out
    sentence = "gi-energy: warning: energy is estimated, not measured (synthetic landscape (estimated energy))"
    assert err.splitlines() == [sentence, sentence]


def test_python_errors_name_python_arguments(tmp_path):
    problem = load_problem("quickstart")
    kw = {"evaluator": SyntheticEvaluator(problem), "overrides": {"population": 4, "generations": 1}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gi_energy.evolve(problem, out=tmp_path / "e", **kw)
        with pytest.raises(UsageError, match=r"resume='.*e'") as err:
            gi_energy.evolve(problem, out=tmp_path / "e", **kw)
        assert "--" not in str(err.value)
        with pytest.raises(UsageError, match="drop population=6") as err:
            gi_energy.evolve(problem, resume=tmp_path / "e", evaluator=SyntheticEvaluator(problem),
                             overrides={"population": 6})
        assert "--" not in str(err.value)
        run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem))
        with pytest.raises(UsageError, match=r"resume='.*g'"):
            run_grid(problem, out=tmp_path / "g", evaluator=SyntheticEvaluator(problem))


def test_resume_without_problem(tmp_path, monkeypatch):
    """`gi-energy evolve --resume RUN_DIR` takes the problem the run holds (a replay run,
    so nothing trains); a grid run is refused by evolve and a missing PROBLEM without
    --resume is a usage error."""
    monkeypatch.chdir(tmp_path)
    problem = load_problem("quickstart")
    run_grid(problem, out=tmp_path / "grid", evaluator=SyntheticEvaluator(problem))
    cli = CliRunner()
    first = cli.invoke(main, ["evolve", "quickstart", "--replay", str(tmp_path / "grid"), "--out", "evo",
                              "--population", "4", "--generations", "1"])
    assert first.exit_code == 0, first.output
    again = cli.invoke(main, ["evolve", "--resume", "evo", "--generations", "2"])
    assert again.exit_code == 0, again.output
    assert gi_energy.open_run(tmp_path / "evo").history[-1]["generation"] == 2
    wrong = cli.invoke(main, ["evolve", "--resume", str(tmp_path / "grid")])
    assert wrong.exit_code == 2 and "a grid run, not an evolve run" in wrong.output
    missing = cli.invoke(main, ["evolve"])
    assert missing.exit_code == 2 and "--resume" in missing.output
    assert cli.invoke(main, ["grid"]).exit_code == 2


def test_front_table_shows_every_varying_key_without_cutting():
    from gi_energy.pareto import front_outcomes
    from gi_energy.report.progress import varying_columns
    from gi_energy.runs.tables import genome_columns

    problem = load_problem("digits")
    outcomes = SyntheticEvaluator(problem).evaluate(list(problem.grid.enumerate(problem.space)))
    front = front_outcomes(outcomes, problem.objectives)
    keys = varying_columns(outcomes)
    assert set(keys) == {"hidden_layers", "widths", "learning_rate", "batch_size", "epochs"}
    narrow = front_table(front, problem.objectives, keys=keys, width=60)
    details = [line for line in narrow.splitlines() if line.startswith("    ")]
    assert details and all(len(line) <= 60 for line in details)
    text = " ".join(narrow.split())
    for o in front:  # every key's value is there, whole
        detail = " ".join(f"{k}={v}" for k, v in genome_columns(o.genome).items() if k in keys)
        assert detail in text
    wide = front_table(front, problem.objectives, keys=keys, width=400)
    assert wide.splitlines()[0].split()[-len(keys):] == keys
    assert len(wide.splitlines()) == len(front) + 3  # header, rule, rows, the shared energy source


def test_hv_axis_shows_ratios_above_one(runs, tmp_path):
    """A run beyond a non-exhaustive reference has an HV ratio over 1 (1.384 was seen):
    the axis must show it, not clip at 1.05."""
    _, root, _, evolved = runs
    cmp = gi_energy.compare([evolved[0].run_dir], reference=root / "grid")
    beyond = json.loads(json.dumps(cmp))
    beyond["runs"][1]["trajectory"]["hv_ratio"][-1] = 1.384
    axes = gi_energy.Comparison(beyond).plot_history().axes
    assert all(ax.get_ylim()[1] >= 1.384 for ax in axes)


USER_TASK = '''
import numpy as np
import gi_energy

class Ridge(gi_energy.Task):
    metrics = ("mse",)
    version = "1"

    def build(self, trial):
        return {"alpha": trial.config["alpha"]}

    def train(self, model, trial):
        x, y = trial.data.x_train, trial.data.y_train.astype(float)
        model["w"] = np.linalg.solve(x.T @ x + model["alpha"] * np.eye(x.shape[1]), x.T @ y)

    def evaluate(self, model, trial):
        pred = trial.data.x_val @ model["w"]
        return {"accuracy": float(np.mean((pred > 0.5) == (trial.data.y_val > 0.5))),
                "mse": float(np.mean((pred - trial.data.y_val) ** 2))}

    def infer(self, model, trial):
        trial.data.x_test @ model["w"]
        return len(trial.data.x_test)
'''

USER_PROBLEM = '''
[problem]
name = "own"

[dataset]
source = "synthetic"
n_samples = 120
n_features = 5

[task]
entry = "tasks.py:Ridge"

[space]
alpha = { min = 1e-3, max = 10.0, log = true }

[grid]
alpha = [0.001, 0.1, 10.0]

[objectives]
mse = "min"
inference_energy_j_per_1k = "min"

[evaluation]
workers = 1
min_inference_s = 0.0

[energy]
meter = "estimate"
'''


class InProcess:
    """The evaluate() contract, each genome run here by the worker's own function (no
    worker pool to start: the test stays fast)."""

    measured = False
    replayed = False
    meter_description = "estimate (in this process, tests)"

    def __init__(self, problem):
        self.problem = problem

    def evaluate(self, genomes, on_result=None):
        from gi_energy.evaluation.worker import run_evaluation
        from gi_energy.meters import EstimateMeter
        from gi_energy.tasks.results import Outcome

        out = []
        for g in genomes:
            ev = run_evaluation(self.problem, g, 0, meter=EstimateMeter())
            if on_result is not None:
                on_result(ev, False)
            out.append(Outcome(g, (ev,), False))
        return out


def test_a_task_s_own_metric_by_its_name(tmp_path):
    """A user task's metric ("mse") is a column of the DataFrames, an axis of the figures
    (labelled by its name) and a column and hover line of report.html."""
    from gi_energy.report.report_command import write_report
    from gi_energy.tasks.loader import bind

    (tmp_path / "tasks.py").write_text(USER_TASK)
    (tmp_path / "p.toml").write_text(USER_PROBLEM)
    problem = bind(load_problem(tmp_path / "p.toml"))
    result = run_grid(problem, out=tmp_path / "g", evaluator=InProcess(problem))
    run = result.run
    assert set(run.objectives) == {"mse", "inference_energy_j_per_1k"}
    assert "mse" in run.to_dataframe().columns and "mse" in run.to_dataframe("front").columns
    assert [o.metric("mse") for o in run.front] == pytest.approx(run.to_dataframe("front")["mse"].tolist())
    ax = run.plot_front().axes[0]
    assert ax.get_ylabel() == "mse" and "estimated" in ax.get_xlabel()
    page = write_report([tmp_path / "g"]).read_text(encoding="utf-8")
    assert "mse: " in page and "<th" in page and ">mse</th>" in page
