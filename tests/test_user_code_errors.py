"""User code named in a problem file, misbehaving: a loader or task module that raises or
calls sys.exit() on import, an entry workers cannot import, a prepare() that raises,
numpy scalars where numbers are due, a metric that is not finite. Each is one message that
names the problem file, the key and the code at fault; what the code did measure is kept.
Also: a task file imports helper modules beside it, in the parent and in every worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gi_energy.cli import main
from gi_energy.config.parse import parse_problem
from gi_energy.errors import GiEnergyError, ProblemError
from gi_energy.evaluation.worker import run_evaluation
from gi_energy.meters import EstimateMeter
from gi_energy.tasks.base import TaskError, sample_count
from gi_energy.tasks.loader import bind

TASKS = '''
import math
import numpy as np
import gi_energy

class Ridge(gi_energy.Task):
    metrics = ("mse", "weight_norm")

    def __init__(self, mode="ok"):
        self.mode = mode

    def build(self, trial):
        return {"alpha": trial.config["alpha"]}

    def train(self, model, trial):
        x, y = trial.data.x_train, trial.data.y_train.astype(float)
        model["w"] = np.linalg.solve(x.T @ x + model["alpha"] * np.eye(x.shape[1]), x.T @ y)

    def evaluate(self, model, trial):
        mse = float(np.mean((trial.data.x_val @ model["w"] - trial.data.y_val) ** 2))
        out = {"accuracy": 0.75, "mse": mse, "weight_norm": 2.0}
        if self.mode == "nan":
            out["mse"] = math.nan
        if self.mode == "np_bool":
            out["accuracy"] = np.bool_(True)
        if self.mode == "bool":
            out["accuracy"] = True
        return out

    def infer(self, model, trial):
        trial.data.x_test @ model["w"]
        return np.int64(len(trial.data.x_test)) if self.mode == "np_samples" else len(trial.data.x_test)


class PrepFails(Ridge):
    def prepare(self, dataset, device):
        raise KeyError("label")


class NotTask:
    pass
'''


def _doc(tmp_path: Path, entry: str = "tasks.py:Ridge", **sections) -> dict:
    (tmp_path / "tasks.py").write_text(TASKS)
    doc = {"problem": {"name": "own", "seed": 1},
           "dataset": {"source": "synthetic", "n_samples": 120, "n_features": 4},
           "task": {"entry": entry},
           "space": {"alpha": {"min": 1e-3, "max": 10.0, "log": True}},
           "objectives": {"mse": "min", "inference_energy_j_per_1k": "min"},
           "evaluation": {"min_inference_s": 0.0},
           "energy": {"meter": "estimate"}}
    doc.update(sections)
    return doc


def _parse(tmp_path: Path, entry: str = "tasks.py:Ridge", **sections):
    return parse_problem(_doc(tmp_path, entry, **sections), source=str(tmp_path / "p.toml"), base_dir=tmp_path)


def _toml(doc: dict) -> str:
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        return repr(v)
    return "".join(f"[{s}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in t.items()) for s, t in doc.items())


def _evaluate(problem):
    problem = bind(problem)
    return run_evaluation(problem, problem.space.sample(np.random.default_rng(0)), 0,
                          meter=EstimateMeter(cpu_watts_per_core=10.0))


# ---------------------------------------------------------------- dataset loaders

LOADERS = {
    "raises": ("def load():\n    raise FileNotFoundError('/data/not/here')\n",
               "dataset.loader", "raised FileNotFoundError: /data/not/here"),
    "badtype": ("def load():\n    return [1, 2]\n", "dataset.loader", "must return (x, y)"),
    "dictmiss": ("def load():\n    return {'x_train': [[0.0]]}\n", "dataset.loader", "expected arrays x and y"),
    "nan": ("import numpy as np\ndef load():\n    x = np.ones((30, 2)); x[3, 1] = np.nan\n"
            "    return x, np.arange(30) % 2\n", "dataset", "sample 3, feature 1"),
    "syntax": ("def load(:\n", "dataset.loader", "raised SyntaxError"),
    "exits": ("import sys\nsys.exit(3)\n", "dataset.loader", "raised SystemExit(3)"),
    "calls_exit": ("import sys\ndef load():\n    sys.exit('no data')\n", "dataset.loader",
                   "raised SystemExit('no data')"),
}


@pytest.mark.parametrize("case", sorted(LOADERS))
def test_a_loader_s_error_names_the_problem_file(tmp_path, case):
    from gi_energy.problems.datasets import check_dataset, load_dataset

    text, key, expected = LOADERS[case]
    (tmp_path / f"{case}.py").write_text(text)
    problem = _parse(tmp_path, dataset={"loader": f"{case}.py:load"})
    for load in (load_dataset, check_dataset):
        with pytest.raises(ProblemError) as info:
            load(problem.dataset, 0, problem.source)
        assert (info.value.source, info.value.key) == (problem.source, key)
        assert expected in str(info.value) and str(info.value).startswith(f"{problem.source}: [{key}] ")


def test_a_data_file_s_error_still_names_the_data_file(tmp_path):
    from gi_energy.problems.datasets import load_dataset

    (tmp_path / "d.npz").write_bytes(b"not an npz")
    problem = _parse(tmp_path, dataset={"source": "npz", "path": "d.npz"})
    with pytest.raises(ProblemError) as info:
        load_dataset(problem.dataset, 0, problem.source)
    assert info.value.source == str(tmp_path / "d.npz") and info.value.key == "dataset.path"


def test_a_worker_loading_a_bad_loader_names_the_problem_file(tmp_path):
    (tmp_path / "raises.py").write_text(LOADERS["raises"][0])
    ev = _evaluate(_parse(tmp_path, dataset={"loader": "raises.py:load"}))
    assert ev.status == "failed" and f"{tmp_path / 'p.toml'}: [dataset.loader]" in ev.reason


# ---------------------------------------------------------------- importing user code

def test_a_task_module_calling_sys_exit_on_import_is_exit_2_naming_file_and_key(tmp_path):
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "p.toml").write_text(_toml(_doc(tmp_path, "exits.py:Ridge")))
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "p.toml")])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'p.toml'}: [task.entry] importing {str(tmp_path / 'exits.py')!r} raised SystemExit(3)" \
        in result.output
    assert "exits" not in " ".join(m for m in sys.modules if m.startswith("gi_energy_task_"))


def test_a_package_module_exiting_on_import_or_construction_is_bad_input(tmp_path, monkeypatch):
    pkg = tmp_path / "lib"
    pkg.mkdir()
    (pkg / "exiting_task_mod.py").write_text("import sys\nsys.exit(4)\n")
    (pkg / "exiting_init_mod.py").write_text(TASKS.replace('self.mode = mode', 'raise SystemExit(5)'))
    monkeypatch.syspath_prepend(str(pkg))
    with pytest.raises(ProblemError, match=r"\[task.entry\] importing 'exiting_task_mod' raised SystemExit\(4\)"):
        bind(_parse(tmp_path, "exiting_task_mod:Ridge"))
    with pytest.raises(ProblemError, match=r"\[task.options\] exiting_init_mod:Ridge\(\) raised SystemExit\(5\)"):
        bind(_parse(tmp_path, "exiting_init_mod:Ridge"))


@pytest.mark.parametrize("section", ["task", "dataset"])
def test_an_entry_in_main_is_refused_with_a_hint(tmp_path, section):
    """A worker imports the entry by name, and its __main__ is not the parent's script:
    this failed only when the first worker started."""
    kw = {"task": {"entry": "__main__:MainTask"}} if section == "task" else {"dataset": {"loader": "__main__:load"}}
    with pytest.raises(ProblemError) as info:
        _parse(tmp_path, **kw)
    name = "MainTask" if section == "task" else "load"
    assert info.value.key == ("task.entry" if section == "task" else "dataset.loader")
    assert f'name it "file.py:{name}"' in str(info.value) and "__main__" in str(info.value)


def test_not_a_task_is_said_without_gi_energy_s_module_name(tmp_path):
    with pytest.raises(ProblemError) as info:
        bind(_parse(tmp_path, "tasks.py:NotTask"))
    assert "gi_energy_task_" not in str(info.value)
    assert "got class NotTask(object)" in str(info.value)


# ---------------------------------------------------------------- prepare() raising

def test_prepare_raising_names_the_task_prepare_and_the_exception(tmp_path):
    ev = _evaluate(_parse(tmp_path, "tasks.py:PrepFails"))
    assert ev.status == "failed"
    assert ev.reason.startswith("TaskError: PrepFails.prepare() raised KeyError: 'label' (at tasks.py:")


@pytest.mark.slow
def test_prepare_raising_in_a_worker_stops_the_run_saying_so(tmp_path):
    from gi_energy.evaluation.evaluator import Evaluator
    from gi_energy.evaluation.store import Store

    problem = bind(_parse(tmp_path, "tasks.py:PrepFails"))
    with Store(tmp_path / "s.sqlite") as store, pytest.raises(GiEnergyError) as info:
        with Evaluator(problem, store, workers=1) as ev:
            ev.evaluate([problem.space.sample(np.random.default_rng(0))])
    assert "a worker process failed to start: PrepFails.prepare() raised KeyError: 'label'" in str(info.value)


# ---------------------------------------------------------------- numbers from numpy

def test_a_sample_count_is_any_integer_never_a_bool():
    import torch

    assert sample_count(np.int64(40)) == 40 and sample_count(np.uint8(3)) == 3 and sample_count(7) == 7
    assert sample_count(torch.tensor(5)) == 5
    for bad in (True, np.True_, np.bool_(False), 0, -1, 2.0, np.float64(3.0), "4", None):
        with pytest.raises(TaskError, match="infer\\(\\) must return the number of samples"):
            sample_count(bad)


def test_an_infer_returning_np_int64_is_counted(tmp_path):
    ev = _evaluate(_parse(tmp_path, task={"entry": "tasks.py:Ridge", "options": {"mode": "np_samples"}}))
    assert ev.status == "ok", ev.reason
    assert ev.inference_samples == 24


@pytest.mark.parametrize("mode", ["bool", "np_bool"])
def test_a_bool_metric_is_refused_whatever_its_type(tmp_path, mode):
    ev = _evaluate(_parse(tmp_path, task={"entry": "tasks.py:Ridge", "options": {"mode": mode}}))
    assert ev.status == "failed" and "metric 'accuracy' must be a number, got bool" in ev.reason


# ---------------------------------------------------------------- status "nan"

def test_a_nan_evaluation_keeps_the_finite_metrics_and_the_readings(tmp_path):
    ev = _evaluate(_parse(tmp_path, task={"entry": "tasks.py:Ridge", "options": {"mode": "nan"}}))
    assert ev.status == "nan" and ev.reason == "metric mse is not finite"
    assert ev.val_accuracy == 0.75 and ev.metrics == {"weight_norm": 2.0}
    assert ev.train.energy_j is not None and ev.inference is not None and ev.inference.energy_j is not None
    assert ev.inference_samples == 24
    assert ev.co2_g is not None and ev.co2_g > 0


# ---------------------------------------------------------------- helpers beside the task file

HELPER_TASK = TASKS.replace("import gi_energy\n", "import gi_energy\nfrom ridge_helpers import WEIGHT_NORM\n") \
    .replace('"weight_norm": 2.0', '"weight_norm": WEIGHT_NORM')


def test_a_failed_import_leaves_no_folder_on_sys_path(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "helped.py").write_text(HELPER_TASK)  # its helper is not there
    doc = _doc(tmp_path, "sub/helped.py:Ridge")
    with pytest.raises(ProblemError, match="No module named 'ridge_helpers'"):
        bind(parse_problem(doc, source=str(tmp_path / "p.toml"), base_dir=tmp_path))
    assert str(sub) not in sys.path


@pytest.mark.slow
def test_a_task_file_imports_a_helper_beside_it_in_the_parent_and_two_workers(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "helped.py").write_text(HELPER_TASK)
    (sub / "ridge_helpers.py").write_text("WEIGHT_NORM = 3.5\n")
    doc = _doc(tmp_path, "sub/helped.py:Ridge", search={"population": 4, "generations": 1})
    (tmp_path / "p.toml").write_text(_toml(doc))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = Path(sys.executable).parent / "gi-energy"
    done = subprocess.run([str(cli), "evolve", "../p.toml", "--out", "run", "--store", "s.sqlite", "--workers", "2"],
                          cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = (elsewhere / "run" / "evaluations.csv").read_text().splitlines()
    header = rows[0].split(",")
    status, norm, worker = (header.index(c) for c in ("status", "weight_norm", "worker"))
    values = [r.split(",") for r in rows[1:]]
    assert values and all(v[status] == "ok" and float(v[norm]) == 3.5 for v in values)
    # Which worker evaluates what is the dispatch's business (a fast one may take every
    # evaluation), so only that each evaluation, wherever it ran, found the helper.
    assert {v[worker] for v in values}


def test_evolve_none_with_resume_goes_on_with_the_runs_own_problem(tmp_path):
    import gi_energy
    from gi_energy.errors import UsageError
    from gi_energy.runs.replay import SyntheticEvaluator

    problem = gi_energy.load_problem("quickstart").with_overrides(search={"max_evaluations": 8, "population": 4})
    gi_energy.evolve(problem, out=tmp_path / "run", evaluator=SyntheticEvaluator(problem), plot=False)
    res = gi_energy.evolve(None, resume=tmp_path / "run", evaluator=SyntheticEvaluator(problem), plot=False)
    assert len(res.evaluations) == 8
    with pytest.raises(UsageError, match=r"evolve\(None\)"):
        gi_energy.evolve(None)


def test_a_machine_fault_in_prepare_stays_a_crash_tried_again(tmp_path, monkeypatch):
    """CUDA out of memory (or a meter fault) raised in prepare() is the machine's, not the
    genome's: "crashed" (retried, the cache emptied), never a stored "failed"."""
    monkeypatch.setattr(sys.modules[__name__], "TASKS", TASKS + '''
import torch
class PrepOOM(Ridge):
    def prepare(self, dataset, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
''')
    ev = _evaluate(_parse(tmp_path, "tasks.py:PrepOOM"))
    assert ev.status == "crashed" and ev.reason.startswith("OutOfMemoryError: CUDA out of memory")


def test_an_edit_to_a_helper_beside_the_task_file_changes_the_fingerprint(tmp_path):
    """The helper's code decides the results as much as the task file's: an edit must not
    reuse the store's results of the old code (a task without helpers keeps its key)."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "fp_helped.py").write_text(HELPER_TASK.replace("ridge_helpers", "fp_helpers"))
    (sub / "fp_helpers.py").write_text("WEIGHT_NORM = 3.5\n")
    doc = _doc(tmp_path, "sub/fp_helped.py:Ridge")
    first = bind(parse_problem(doc, source=str(tmp_path / "p.toml"), base_dir=tmp_path))
    assert '"helpers": {"fp_helpers"' in first.task.declared
    (sub / "fp_helpers.py").write_text("WEIGHT_NORM = 4.0\n")
    second = bind(parse_problem(doc, source=str(tmp_path / "p.toml"), base_dir=tmp_path))
    assert second.fingerprint() != first.fingerprint()
    plain = bind(_parse(tmp_path))
    assert "helpers" not in plain.task.declared
