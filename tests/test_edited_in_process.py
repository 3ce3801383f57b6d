"""A task file, a helper beside it or a data file edited while one process goes on (a
notebook that edits and runs again; a worker kept between runs): the next evaluation runs
the code and reads the data on disk, which is what the problem's fingerprint names. And a
helper whose name this process gives to another file is refused, naming both files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from gi_energy.config.parse import parse_problem
from gi_energy.errors import ProblemError
from gi_energy.evaluation.worker import run_evaluation
from gi_energy.meters import EstimateMeter
from gi_energy.tasks.loader import bind

TASK = '''
import gi_energy
from {helper} import SCALE

class Scaled(gi_energy.Task):
    metrics = ("score", "n_train")

    def build(self, trial):
        return {{}}

    def train(self, model, trial):
        pass

    def evaluate(self, model, trial):
        return {{"accuracy": 0.5, "score": SCALE * {factor}, "n_train": float(len(trial.data.x_train))}}

    def infer(self, model, trial):
        return len(trial.data.x_test)
'''


def _write(path: Path, text: str) -> None:
    """Write ``text`` and move the file's mtime on, as a later edit would (two writes in
    one test can fall in one tick of the file system's clock)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, max(st.st_mtime_ns, before + 10_000_000)))


def _task(folder: Path, helper: str, factor: float = 1.0) -> None:
    """task.py of TASK, scoring ``factor`` x SCALE from ``helper``.py beside it (SCALE 1.0)."""
    (folder / f"{helper}.py").write_text("SCALE = 1.0\n")
    _write(folder / "task.py", TASK.format(helper=helper, factor=factor))


def _problem(tmp_path: Path, entry: str, dataset: dict | None = None):
    doc = {"problem": {"name": "edited", "seed": 1},
           "dataset": dataset or {"source": "synthetic", "n_samples": 120, "n_features": 4},
           "task": {"entry": entry},
           "space": {"alpha": {"min": 1e-3, "max": 10.0, "log": True}},
           "objectives": {"score": "min", "inference_energy_j_per_1k": "min"},
           "evaluation": {"min_inference_s": 0.0},
           "energy": {"meter": "estimate"}}
    return bind(parse_problem(doc, source=str(tmp_path / "p.toml"), base_dir=tmp_path))


def _metrics(problem) -> dict:
    ev = run_evaluation(problem, problem.space.sample(np.random.default_rng(0)), 0,
                        meter=EstimateMeter(cpu_watts_per_core=10.0))
    assert ev.status == "ok", ev.reason
    return ev.metrics


@pytest.fixture
def folder(tmp_path):
    """A task folder whose helper module name is this test's own (sys.modules is shared
    by the whole test session)."""
    yield tmp_path
    for name in [n for n, m in sys.modules.items() if str(getattr(m, "__file__", "") or "").startswith(str(tmp_path))]:
        del sys.modules[name]
    for entry in [p for p in sys.path if p.startswith(str(tmp_path))]:
        sys.path.remove(entry)


def test_an_edited_task_file_runs_its_new_code_in_the_same_process(folder):
    _task(folder, "edit_helper_a", factor=2.0)
    first = _problem(folder, "task.py:Scaled")
    key = first.fingerprint()
    assert _metrics(first)["score"] == 2.0
    _write(folder / "task.py", TASK.format(helper="edit_helper_a", factor=3.0))
    second = _problem(folder, "task.py:Scaled")
    assert second.fingerprint() != key
    assert _metrics(second)["score"] == 3.0  # the code the new key names, not the old module


def test_an_edited_helper_runs_its_new_code_and_changes_the_store_key(folder):
    _task(folder, "edit_helper_b")
    first = _problem(folder, "task.py:Scaled")
    key = first.fingerprint()
    assert _metrics(first)["score"] == 1.0
    _write(folder / "edit_helper_b.py", "SCALE = 5.0\n")
    second = _problem(folder, "task.py:Scaled")
    assert second.fingerprint() != key
    assert _metrics(second)["score"] == 5.0  # the code the new key names, not the old module


def test_a_helper_named_like_another_task_s_helper_is_refused_naming_both(folder):
    for sub, scale in (("one", 1.0), ("two", 2.0)):
        (folder / sub).mkdir()
        (folder / sub / "edit_helper_c.py").write_text(f"SCALE = {scale}\n")
        _write(folder / sub / f"task_{sub}.py", TASK.format(helper="edit_helper_c", factor=1.0))
    assert _metrics(_problem(folder, "one/task_one.py:Scaled"))["score"] == 1.0
    with pytest.raises(ProblemError) as info:
        _problem(folder, "two/task_two.py:Scaled")
    text = str(info.value)
    assert info.value.key == "task.entry"
    assert str(folder / "one" / "edit_helper_c.py") in text and "edit_helper_c.py beside it" in text
    assert str(folder / "two") not in sys.path  # nothing of the refused import left behind
    # The first task still runs its own helper.
    assert _metrics(_problem(folder, "one/task_one.py:Scaled"))["score"] == 1.0


def test_a_helper_named_like_an_installed_module_is_refused(folder):
    _task(folder, "click")  # click is installed (gi-energy's CLI)
    with pytest.raises(ProblemError, match=r"imports click, and this process would give it .*site-packages"):
        _problem(folder, "task.py:Scaled")


def test_a_rewritten_csv_is_read_again_in_the_same_process(folder):
    _task(folder, "edit_helper_d")
    rows = ["x1,x2,label"] + [f"{i % 7},{i % 5},{i % 2}" for i in range(60)]
    _write(folder / "data.csv", "\n".join(rows) + "\n")
    dataset = {"source": "csv", "path": "data.csv", "target": "label"}
    first = _problem(folder, "task.py:Scaled", dataset)
    key = first.fingerprint()
    before = _metrics(first)["n_train"]
    _write(folder / "data.csv", "\n".join(rows + rows[1:]) + "\n")
    second = _problem(folder, "task.py:Scaled", dataset)
    assert second.fingerprint() != key
    assert _metrics(second)["n_train"] > before  # twice the rows


# ---------------------------------------------------------------- a run's pinned sources

def _in_a_new_process(problem, tmp_path: Path) -> tuple[str, str | None, dict]:
    """(status, reason, metrics) of one evaluation of ``problem`` in a process of its own:
    a worker that starts after the run did (the problem pickled, as a worker receives it)."""
    import pickle
    import subprocess

    (tmp_path / "problem.pkl").write_bytes(pickle.dumps(problem))
    code = ("import pickle, sys, numpy as np; from gi_energy.evaluation.worker import run_evaluation; "
            "from gi_energy.meters import EstimateMeter; "
            f"p = pickle.loads(open({str(tmp_path / 'problem.pkl')!r}, 'rb').read()); "
            "ev = run_evaluation(p, p.space.sample(np.random.default_rng(0)), 0, meter=EstimateMeter(cpu_watts_per_core=10.0)); "
            "print(repr((ev.status, ev.reason, dict(ev.metrics))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import ast

    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_a_run_goes_on_with_the_code_it_started_with_when_the_file_is_edited(folder):
    _task(folder, "edit_helper_e", factor=2.0)
    run = _problem(folder, "task.py:Scaled")  # the run starts: bind pins task.py and its helper
    key = run.fingerprint()
    assert _metrics(run)["score"] == 2.0
    _write(folder / "task.py", TASK.format(helper="edit_helper_e", factor=3.0))  # edited mid-run
    assert _metrics(run)["score"] == 2.0  # this process has the run's code: it goes on with it
    # A worker that starts now has not: it refuses rather than run the edit under the old key.
    status, reason, _ = _in_a_new_process(run, folder)
    assert status == "crashed" and "SourceChanged" in reason and "changed since the run started" in reason
    assert str(folder / "task.py") in reason
    # The next run is of the edit, and a new key; the old run, asked again here, still refuses
    # to run the edit (this process now holds the new code, not the run's).
    new = _problem(folder, "task.py:Scaled")
    assert new.fingerprint() != key and _metrics(new)["score"] == 3.0
    ev = run_evaluation(run, run.space.sample(np.random.default_rng(0)), 0, meter=EstimateMeter(cpu_watts_per_core=10.0))
    assert ev.status == "crashed" and "SourceChanged" in ev.reason
    # Put back as it was (the bytes the run pinned, whatever the mtime): the run's code again.
    _write(folder / "task.py", TASK.format(helper="edit_helper_e", factor=2.0))
    assert _metrics(run)["score"] == 2.0


def test_a_run_goes_on_with_the_data_it_started_with_when_the_file_is_rewritten(folder):
    _task(folder, "edit_helper_f")
    rows = ["x1,x2,label"] + [f"{i % 7},{i % 5},{i % 2}" for i in range(60)]
    _write(folder / "data.csv", "\n".join(rows) + "\n")
    dataset = {"source": "csv", "path": "data.csv", "target": "label"}
    run = _problem(folder, "task.py:Scaled", dataset)
    n = _metrics(run)["n_train"]
    _write(folder / "data.csv", "\n".join(rows + rows[1:]) + "\n")
    assert _metrics(run)["n_train"] == n  # the data this process loaded for the run
    status, reason, _ = _in_a_new_process(run, folder)
    assert status == "crashed" and "the dataset's file" in reason and str(folder / "data.csv") in reason
    assert _metrics(_problem(folder, "task.py:Scaled", dataset))["n_train"] > n  # a new run reads the new data


# ---------------------------------------------------------------- one version kept per key

def test_a_versioned_cache_drops_the_old_version_before_making_the_new():
    import gc
    import weakref

    from gi_energy.config.versioned import VersionedCache

    class Data:
        pass

    cache = VersionedCache(2)
    first = cache.get("a", 1, Data)
    assert cache.get("a", 1, Data) is first  # kept
    gone = weakref.ref(first)
    del first

    def make_second():
        gc.collect()
        assert gone() is None  # the first version is no longer held while the second is made
        return Data()

    second = cache.get("a", 2, make_second)
    assert cache.get("a", 2, Data) is second and len(cache) == 1
    with pytest.raises(ValueError):
        cache.get("b", 1, lambda: (_ for _ in ()).throw(ValueError("no")))
    assert len(cache) == 1  # a make that raised keeps nothing
    cache.get("b", 1, Data)
    cache.get("c", 1, Data)
    assert len(cache) == 2 and cache.get("a", 2, Data) is not second  # "a", least recently used, went first


def test_an_edited_task_s_prepared_data_is_not_kept_beside_the_new(folder):
    import gc
    import weakref

    from gi_energy.evaluation.worker import task_data

    (folder / "edit_helper_g.py").write_text("SCALE = 1.0\n")
    text = TASK.format(helper="edit_helper_g", factor=1.0) + '''
    def prepare(self, dataset, device):
        return Prepared(dataset)

class Prepared:
    def __init__(self, dataset):
        self.__dict__.update(vars(dataset))
'''
    _write(folder / "task.py", text)
    first = _problem(folder, "task.py:Scaled")
    args = (first.task, first.model.family, first.source, first.dataset, first.evaluation.seed, "cpu")
    old = weakref.ref(task_data(*args, first.pinned))
    assert task_data(*args, first.pinned) is old()  # kept while the code is the same
    _write(folder / "task.py", text.replace("SCALE * 1.0", "SCALE * 2.0"))
    second = _problem(folder, "task.py:Scaled")
    new = task_data(second.task, *args[1:], second.pinned)
    gc.collect()
    assert new is not None and old() is None


@pytest.mark.slow
def test_a_driver_script_beside_the_task_runs_it_on_two_workers(folder):
    """The common layout: proj/{task.py, helper.py, notes.py, run.py}, run as ``python
    run.py``. The run pins the task file and the helpers it imports, not every module of
    the folder the driver happens to have imported (its own ``__main__``, ``notes``):
    two fresh loky workers find the same sources and evaluate (they refused to start when
    the pins held whatever the parent had imported from the folder)."""
    import subprocess

    (folder / "edit_helper_h.py").write_text("SCALE = 1.0\n")
    (folder / "notes.py").write_text("WHO = 'me'\n")
    _write(folder / "task.py", TASK.format(helper="edit_helper_h", factor=4.0))
    (folder / "run.py").write_text(f'''
import numpy as np
import notes
from gi_energy.config.parse import parse_problem
from gi_energy.evaluation.evaluator import Evaluator
from gi_energy.tasks.loader import bind

if __name__ == "__main__":
    doc = {{"problem": {{"name": "d", "seed": 1}},
           "dataset": {{"source": "synthetic", "n_samples": 120, "n_features": 4}},
           "task": {{"entry": "task.py:Scaled"}},
           "space": {{"alpha": {{"min": 1e-3, "max": 10.0, "log": True}}}},
           "objectives": {{"score": "min", "inference_energy_j_per_1k": "min"}},
           "evaluation": {{"min_inference_s": 0.0, "workers": 2}}, "energy": {{"meter": "estimate"}}}}
    p = bind(parse_problem(doc, source={str(folder / "p.toml")!r}, base_dir={str(folder)!r}))
    print(sorted(s[0].rsplit("/", 1)[-1] for s in p.pinned.task), p.task.declared)
    rng = np.random.default_rng(0)
    with Evaluator(p, None, workers=2) as ev:
        outs = ev.evaluate([p.space.sample(rng) for _ in range(4)])
    print([(o.evaluations[0].status, o.evaluations[0].metrics.get("score")) for o in outs])
''')
    done = subprocess.run([sys.executable, "run.py"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    pins, results = done.stdout.strip().splitlines()[-2:]
    assert pins.startswith("['edit_helper_h.py', 'task.py']") and '"helpers": {"edit_helper_h"' in pins
    assert results == str([("ok", 4.0)] * 4)


# ---------------------------------------------------------------- helpers of every kind

def test_an_edited_helper_package_runs_its_new_code_and_changes_the_store_key(folder):
    """A helper may be a package beside the task (``from edit_pkg_i.consts import SCALE``):
    its files are the task's sources too."""
    (folder / "edit_pkg_i").mkdir()
    (folder / "edit_pkg_i" / "__init__.py").write_text("")
    _write(folder / "edit_pkg_i" / "consts.py", "SCALE = 1.0\n")
    _write(folder / "task.py", TASK.format(helper="edit_pkg_i.consts", factor=1.0))
    first = _problem(folder, "task.py:Scaled")
    key = first.fingerprint()
    assert '"edit_pkg_i.consts"' in first.task.declared and _metrics(first)["score"] == 1.0
    _write(folder / "edit_pkg_i" / "consts.py", "SCALE = 6.0\n")
    second = _problem(folder, "task.py:Scaled")
    assert second.fingerprint() != key and _metrics(second)["score"] == 6.0


def test_an_edited_helper_of_a_dataset_loader_is_read_again_and_changes_the_store_key(folder):
    _task(folder, "edit_helper_j")
    (folder / "loader_rows.py").write_text("ROWS = 60\n")
    _write(folder / "myload.py", "import numpy as np\nfrom loader_rows import ROWS\n\n\ndef load():\n"
           "    x = np.arange(ROWS * 2, dtype=float).reshape(ROWS, 2)\n    return x, np.arange(ROWS) % 2\n")
    dataset = {"loader": "myload.py:load"}
    first = _problem(folder, "task.py:Scaled", dataset)
    key = first.fingerprint()
    n = _metrics(first)["n_train"]
    _write(folder / "loader_rows.py", "ROWS = 120\n")
    second = _problem(folder, "task.py:Scaled", dataset)
    assert second.fingerprint() != key and _metrics(second)["n_train"] > n
    # a loader without helpers keeps the key it had (no loader_helpers entry at all)
    _write(folder / "plain_load.py", "import numpy as np\n\n\ndef load():\n    return np.ones((60, 2)), np.arange(60) % 2\n")
    plain = _problem(folder, "task.py:Scaled", {"loader": "plain_load.py:load"})
    assert "loader_helpers" not in str(plain._fingerprint_payload())


def test_a_bound_problem_keeps_the_key_and_code_of_its_pins_when_the_file_is_edited(folder):
    """An edit between a run's start (bind) and its evaluator (made seconds later, once
    torch is imported) gave results of the edit under the edit's key while run.json kept
    the first key: the evaluator now keeps the pins, and the fingerprint is theirs."""
    from gi_energy.evaluation.evaluator import Evaluator

    _task(folder, "edit_helper_k", factor=2.0)
    run = _problem(folder, "task.py:Scaled")
    key = run.fingerprint()
    _write(folder / "edit_helper_k.py", "SCALE = 9.0\n")
    assert run.fingerprint() == key  # the pinned versions' key, whatever the disk says now
    evaluator = Evaluator(run, None, workers=1)
    assert evaluator.fingerprint == key and evaluator.problem.pinned == run.pinned
    assert _metrics(evaluator.problem)["score"] == 2.0  # this process has the run's code loaded


def test_run_grid_takes_a_problem_name_or_path_as_evolve_does(tmp_path):
    import gi_energy
    from gi_energy.config.parse import resolve_problem_path
    from gi_energy.runs.replay import SyntheticEvaluator

    problem = gi_energy.load_problem("quickstart")
    for i, given in enumerate(("quickstart", resolve_problem_path("quickstart"))):
        res = gi_energy.run_grid(given, out=tmp_path / f"g{i}", evaluator=SyntheticEvaluator(problem))
        assert len(res.outcomes) == 12


@pytest.mark.parametrize(("dataset", "said"), [
    (np.zeros((5, 5)), "expected (x, y) or a dict of x_train, y_train, x_val, y_val, x_test, y_test; got ndarray of "
                       "shape (5, 5)"),
    ((np.zeros((100, 2)), None), "y is None; expected an array"),
])
def test_arrays_that_are_no_dataset_are_said_so(tmp_path, dataset, said):
    import gi_energy

    problem = gi_energy.load_problem("quickstart")
    with pytest.raises(ProblemError) as info:
        gi_energy.evolve(problem, dataset=dataset, out=tmp_path / "e", plot=False)
    assert said in str(info.value) and info.value.key == "dataset"
    assert not (tmp_path / "e").exists()
