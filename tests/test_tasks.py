"""The task interface: built-in and user tasks through one contract, bad entries as bad
input, user metrics and spaces, and a store that never serves one task's result to another."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from gi_energy.operators import crossover, mutate
from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy.cli import main
from gi_energy.config.parse import load_problem, parse_problem
from gi_energy.errors import ProblemError
from gi_energy.evaluation.evaluator import Evaluator
from gi_energy.evaluation.store import Store
from gi_energy.evaluation.worker import run_evaluation
from gi_energy.meters import EstimateMeter
from gi_energy.tasks.loader import bind

# A user task in the high-level form: a linear least-squares model, a metric of its own.
USER_TASK = '''
import numpy as np
import gi_energy

class Ridge(gi_energy.Task):
    metrics = ("mse", "weight_norm")
    version = "1"

    def __init__(self, scale=1.0):
        self.scale = scale

    def build(self, trial):
        trial.metrics["params"] = trial.data.x_train.shape[1]
        return {"alpha": trial.config["alpha"] * self.scale}

    def train(self, model, trial):
        x, y = trial.data.x_train, trial.data.y_train.astype(float)
        a = x.T @ x + model["alpha"] * np.eye(x.shape[1])
        model["w"] = np.linalg.solve(a, x.T @ y)
        trial.extra["solved"] = 1.0

    def evaluate(self, model, trial):
        pred = trial.data.x_val @ model["w"]
        mse = float(np.mean((pred - trial.data.y_val) ** 2))
        acc = float(np.mean((pred > 0.5) == (trial.data.y_val > 0.5)))
        return {"accuracy": acc, "mse": mse, "weight_norm": float(np.linalg.norm(model["w"]))}

    def infer(self, model, trial):
        trial.data.x_test @ model["w"]
        return len(trial.data.x_test)


class LowLevel(gi_energy.Task):
    metrics = ("mse",)

    def run(self, trial):
        with trial.training():
            w = np.zeros(trial.data.x_train.shape[1])
        with trial.inference_window() as window:
            trial.data.x_test @ w
            window.samples = len(trial.data.x_test)
        return {"mse": 1.0, "accuracy": 0.5}


class NoWindows(gi_energy.Task):
    metrics = ("mse",)

    def run(self, trial):
        return {"mse": 1.0}


class Undeclared(Ridge):
    def evaluate(self, model, trial):
        return {"surprise": 1.0}


class Explodes(Ridge):
    def train(self, model, trial):
        raise RuntimeError("boom in user code")


class Diverges(Ridge):
    def train(self, model, trial):
        raise gi_energy.Diverged("loss went to inf")


NOT_A_TASK = 3
'''

SPACE = {"alpha": {"min": 1e-3, "max": 10.0, "log": True}, "solver": ["cholesky", "lstsq"],
         "depth": {"layers": {"min": 1, "max": 3}, "size": {"min": 4, "max": 64, "log": True},
                   "kind": ["conv", "sep", "dilated"], "kernel": {"min": 1, "max": 7}}}


def _problem(tmp_path: Path, entry: str = "tasks.py:Ridge", **sections) -> dict:
    (tmp_path / "tasks.py").write_text(USER_TASK)
    doc = {"problem": {"name": "own", "seed": 1},
           "dataset": {"source": "synthetic", "n_samples": 120, "n_features": 5},
           "task": {"entry": entry},
           "space": SPACE,
           "objectives": {"mse": "min", "inference_energy_j_per_1k": "min"},
           "evaluation": {"min_inference_s": 0.0},
           "energy": {"meter": "estimate"}}
    doc.update(sections)
    return doc


def _parse(tmp_path, entry="tasks.py:Ridge", **sections):
    return parse_problem(_problem(tmp_path, entry, **sections), source=str(tmp_path / "p.toml"),
                         base_dir=tmp_path)


def test_builtin_and_user_tasks_meet_one_contract(tmp_path):
    builtin = load_problem("quickstart").with_overrides(evaluation={"min_inference_s": 0.0})
    user = bind(_parse(tmp_path))
    for problem, metric in ((builtin, "accuracy"), (user, "mse")):
        genome = problem.space.sample(np.random.default_rng(0))
        meter = EstimateMeter(cpu_watts_per_core=10.0)
        ev = run_evaluation(problem, genome, 0, meter=meter)
        assert ev.status == "ok", ev.reason
        for reading in (ev.train, ev.inference):
            assert reading.backend == "estimate" and reading.measured is False and reading.energy_j is not None
        assert ev.inference_samples > 0 and ev.metric(metric) is not None
        assert ev.metric("train_energy_j") == ev.train.energy_j
    ev = run_evaluation(user, user.space.sample(np.random.default_rng(1)), 0, meter=EstimateMeter())
    assert set(ev.metrics) == {"mse", "weight_norm"} and ev.params == 5 and ev.extra["solved"] == 1.0


def test_the_user_task_sees_its_config_and_structures(tmp_path):
    user = bind(_parse(tmp_path))
    genome = user.space.sample(np.random.default_rng(3))
    assert set(genome.values) == {"alpha", "solver"}
    assert set(genome.layers) == {"depth", "depth.kind", "depth.kernel"}
    assert user.space.contains(genome)
    from gi_energy.tasks.base import Trial

    trial = Trial(genome=genome, seed=0, device="cpu", data=None, meter=None, min_inference_s=0.0)
    layers = trial.layers("depth")
    assert [row["size"] for row in layers] == list(genome.layers["depth"])
    assert all(row["kind"] in ("conv", "sep", "dilated") and 1 <= row["kernel"] <= 7 for row in layers)
    assert trial.config["depth.kind"] == genome.layers["depth.kind"]
    from gi_energy.runs.tables import genome_columns

    cols = genome_columns(genome)
    assert cols["depth_layers"] == len(layers) and cols["depth_kinds"] == "-".join(r["kind"] for r in layers)


@pytest.mark.parametrize(("entry", "expected"), [
    ("tasks.py:Nope", "has no 'Nope'"),
    ("tasks.py:NOT_A_TASK", "is not a task"),
    ("missing.py:Ridge", "no such file"),
    ("no_such_module_xyz:Task", "no module 'no_such_module_xyz'"),
    ("not an entry", 'expected "package.module:Name"'),
    ("raising.py:Task", "raised ZeroDivisionError"),
])
def test_a_bad_entry_is_bad_input_naming_the_key(tmp_path, entry, expected):
    (tmp_path / "raising.py").write_text("1 / 0\n")
    with pytest.raises(ProblemError, match="task.entry") as info:
        bind(_parse(tmp_path, entry))
    assert expected in str(info.value)


def test_bad_options_and_undeclared_objectives_name_their_keys(tmp_path):
    with pytest.raises(ProblemError, match=r"task\.options.*unexpected keyword"):
        bind(_parse(tmp_path, task={"entry": "tasks.py:Ridge", "options": {"nope": 1}}))
    with pytest.raises(ProblemError, match=r"objectives\.f1.*returns no metric 'f1'"):
        bind(_parse(tmp_path, objectives={"f1": "max", "mse": "min"}))
    with pytest.raises(ProblemError, match=r"model.*remove \[model\]"):
        _parse(tmp_path, model={"family": "mlp"})


@pytest.mark.parametrize(("space", "key"), [
    ({"alpha": {"min": 2.0, "max": 1.0}}, "space.alpha.min"),
    ({"alpha": {"min": 0.0, "max": 1.0, "log": True}}, "space.alpha.min"),
    ({"alpha": []}, "space.alpha"),
    ({"depth": {"layers": {"min": 1, "max": 2}}}, "space.depth.size"),
    ({"depth": {"layers": 2, "size": 8, "kind": ["a", 1]}}, "space.depth.kind"),
    ({"depth": {"layers": 2, "size": 8, "kind": ["a-b"]}}, "space.depth.kind"),
    ({"depth": {"layers": 2, "size": 8, "kernel": {"min": 3}}}, "space.depth.kernel.max"),
    ({"learning_rate": {"min": 1e-3, "max": 99.0}}, "space.learning_rate.max"),
    ({}, "space"),
])
def test_bad_user_spaces_exit_2_with_the_key(tmp_path, space, key):
    doc = _problem(tmp_path, space=space)
    path = tmp_path / "p.toml"
    path.write_text(_toml(doc))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert key in result.output and "Traceback" not in result.output


def test_a_layer_structure_named_with_a_dot_is_refused(tmp_path):
    """Per-layer values are tracks "<structure>.<value>": a structure "a.b" (a quoted
    TOML key) would make names the operators cannot take apart, so it is exit 2."""
    doc = _problem(tmp_path, space={"alpha": [0.1, 1.0]})
    text = _toml(doc) + '\n[space."a.b"]\nlayers = 2\nsize = 8\n'
    (tmp_path / "p.toml").write_text(text)
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "p.toml")])
    assert result.exit_code == 2, result.output
    assert "space.a.b" in result.output and "layer structure name of letters, digits and underscores" in result.output


def _toml(doc: dict) -> str:
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        return repr(v)
    lines = []
    for section, table in doc.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def test_user_code_failures_are_that_evaluation_s_status(tmp_path):
    for entry, status, reason in (("tasks.py:Explodes", "failed", "RuntimeError: boom in user code"),
                                  ("tasks.py:Diverges", "nan", "loss went to inf"),
                                  ("tasks.py:Undeclared", "failed", "not declared")):
        p = bind(_parse(tmp_path, entry))
        ev = run_evaluation(p, p.space.sample(np.random.default_rng(0)), 0, meter=EstimateMeter())
        assert ev.status == status and reason in ev.reason
        if status == "nan":
            assert ev.train is not None and ev.train.energy_j is not None  # the energy was spent


def test_low_level_windows_and_a_window_never_opened(tmp_path):
    p = bind(_parse(tmp_path, "tasks.py:LowLevel", objectives={"mse": "min", "accuracy": "max"}))
    ev = run_evaluation(p, p.space.sample(np.random.default_rng(0)), 0, meter=EstimateMeter())
    assert ev.status == "ok" and ev.inference_samples == 24 and ev.inference.energy_j is not None
    p = bind(_parse(tmp_path, "tasks.py:NoWindows", objectives={"mse": "min", "train_energy_j": "min"}))
    ev = run_evaluation(p, p.space.sample(np.random.default_rng(0)), 0, meter=EstimateMeter())
    assert ev.train.missing and ev.train_energy_j is None  # missing, never zero
    assert "no training window" in ev.train.missing_reason and ev.inference.missing


def test_the_store_never_serves_one_task_s_result_to_another(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    a = bind(_parse(tmp_path))
    (tmp_path / "other.py").write_text(USER_TASK.replace('version = "1"', 'version = "2"'))
    b = bind(_parse(tmp_path, "other.py:Ridge"))
    c = bind(_parse(tmp_path, task={"entry": "tasks.py:Ridge", "options": {"scale": 2.0}}))
    builtin = load_problem("quickstart")
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint(), builtin.fingerprint()}) == 4
    genome = a.space.sample(np.random.default_rng(0))
    with Evaluator(a, store, workers=1) as ev:
        first = ev.evaluate([genome])[0]
    assert not first.cached
    with Evaluator(b, store, workers=1) as ev:
        assert not ev.evaluate([genome])[0].cached  # another task's code: trained anew
    with Evaluator(a, store, workers=1) as ev:
        again = ev.evaluate([genome])[0]
    assert again.cached and again.metric("mse") == first.metric("mse")
    # Editing the task's file changes its identity too, for the next run (a bound problem
    # keeps the key of the versions its run pinned).
    before = a.fingerprint()
    (tmp_path / "tasks.py").write_text(USER_TASK + "\n# edited\n")
    assert a.fingerprint() == before and bind(a).fingerprint() != before


def _user_space():
    return parse_problem({"problem": {"name": "x"}, "dataset": {"source": "synthetic"},
                          "task": {"entry": "gi_energy.tasks.builtin:MLPTask"}, "space": SPACE,
                          "objectives": {"accuracy": "max", "params": "min"}}).space


def _rows(genome, structure="depth"):
    keys = [structure] + sorted(k for k in genome.layers if k.startswith(structure + "."))
    return list(zip(*(genome.layers[k] for k in keys)))


def _is_subsequence(short, long) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_operators_keep_user_space_genomes_valid(seed):
    from gi_energy.operators import add_layer, remove_layer

    space = _user_space()
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    for child in (*crossover(a, b, space, rng), mutate(a, space, rng)):
        assert space.contains(child), child
    # Structure-aware: a layer keeps its own per-layer values when layers come and go.
    grown, shrunk = add_layer(a, space, rng, "depth"), remove_layer(a, space, rng, "depth")
    assert space.contains(grown) and space.contains(shrunk)
    if len(grown.layers["depth"]) > len(a.layers["depth"]):
        assert _is_subsequence(_rows(a), _rows(grown))
    if len(shrunk.layers["depth"]) < len(a.layers["depth"]):
        assert _is_subsequence(_rows(shrunk), _rows(a))
    # Every child layer is some parent's layer, whole (or, where a splice left no layer,
    # the default layer that repair puts in).
    default = set(_rows(space.repair(space.default().replace(layers={"depth": ()}))))
    for child in crossover(a, b, space, rng):
        assert set(_rows(child)) <= set(_rows(a)) | set(_rows(b)) | default


def test_a_per_layer_value_is_mutated_and_levelled_by_the_grid():
    from gi_energy.operators import mutation_moves

    space = _user_space()
    g = space.sample(np.random.default_rng(2))
    assert ("revalue_layer", "depth.kind") in mutation_moves(g, space)
    problem = parse_problem({"problem": {"name": "x"}, "dataset": {"source": "synthetic"},
                             "task": {"entry": "gi_energy.tasks.builtin:MLPTask"}, "space": SPACE,
                             "grid": {"depth_layers": [1, 2], "depth_kind": ["conv", "sep"], "alpha": [0.1]},
                             "objectives": {"accuracy": "max", "params": "min"}})
    points = list(problem.grid.enumerate(problem.space))
    assert len(points) == 4 and all(problem.space.contains(p) for p in points)
    assert {(len(p.layers["depth"]), p.layers["depth.kind"][0]) for p in points} == \
        {(1, "conv"), (1, "sep"), (2, "conv"), (2, "sep")}
    assert all(len(set(p.layers["depth.kind"])) == 1 for p in points)


def test_npz_and_loader_data(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(90, 2, 3, 3)), np.repeat([0, 1, 2], 30)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    (tmp_path / "load.py").write_text(textwrap.dedent('''
        import numpy as np
        def load(seed):
            rng = np.random.default_rng(seed)
            return {"x_train": rng.normal(size=(40, 4)), "y_train": np.arange(40) % 2,
                    "x_val": rng.normal(size=(10, 4)), "y_val": np.arange(10) % 2,
                    "x_test": rng.normal(size=(10, 4)), "y_test": np.arange(10) % 2}
    '''))
    from gi_energy.problems.datasets import load_dataset

    npz = _parse(tmp_path, dataset={"source": "npz", "path": "d.npz"}).dataset
    ds = load_dataset(npz, 0)
    assert ds.image_shape == (2, 3, 3) and ds.n_features == 18 and ds.n_classes == 3 and ds.n_samples == 90
    own = _parse(tmp_path, dataset={"loader": "load.py:load"}).dataset
    ds = load_dataset(own, 4)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (40, 10, 10) and ds.n_classes == 2
    values = _parse(tmp_path, dataset={"source": "npz", "path": "d.npz", "labels": "values"}).dataset
    assert load_dataset(values, 0).y_train.dtype == np.float32
    with pytest.raises(ProblemError, match="dataset.path"):
        _parse(tmp_path, dataset={"source": "npz", "path": "none.npz"})


def test_a_user_file_that_raises_on_import_is_one_error_naming_its_key(tmp_path):
    """Loader and task files share one importer: the error names the file and the key,
    and the failed module is not left registered (a fixed file imports next time)."""
    import sys

    from gi_energy.problems.datasets import load_dataset

    (tmp_path / "bad.py").write_text("raise RuntimeError('no data here')\n")
    bad = _parse(tmp_path, dataset={"loader": "bad.py:load"}).dataset
    with pytest.raises(ProblemError) as info:
        load_dataset(bad, 0)
    assert info.value.key == "dataset.loader"
    assert f"importing {str(tmp_path / 'bad.py')!r} raised RuntimeError: no data here" in str(info.value)
    assert not [m for m in sys.modules if m.startswith("gi_energy_loader_")
                and getattr(sys.modules[m], "__file__", None) == str(tmp_path / "bad.py")]
    (tmp_path / "bad.py").write_text("def load(seed):\n    return {'x': [[0.0], [1.0]] * 20, 'y': [0, 1] * 20}\n")
    assert load_dataset(bad, 0).n_classes == 2
    (tmp_path / "broken.py").write_text("raise ValueError('broken task')\n")
    with pytest.raises(ProblemError) as info:
        bind(_parse(tmp_path, entry="broken.py:Ridge"))
    assert info.value.key == "task.entry" and "raised ValueError: broken task" in str(info.value)


def test_evolve_grid_compare_on_a_user_task_from_the_cli(tmp_path, monkeypatch):
    doc = _problem(tmp_path)
    doc["space"] = {"alpha": {"min": 1e-3, "max": 10.0, "log": True}, "solver": ["cholesky", "lstsq"]}
    doc["grid"] = {"alpha": [0.001, 0.1, 10.0], "solver": ["cholesky", "lstsq"]}
    doc["search"] = {"population": 4, "generations": 2}
    (tmp_path / "p.toml").write_text(_toml(doc))
    monkeypatch.chdir(tmp_path)
    run = CliRunner()
    grid = run.invoke(main, ["grid", "p.toml", "--out", "g"])
    assert grid.exit_code == 0, grid.output
    header = (tmp_path / "g" / "evaluations.csv").read_text().splitlines()[0].split(",")
    assert "mse" in header and "weight_norm" in header and "val_accuracy" in header
    front = (tmp_path / "g" / "front.csv").read_text().splitlines()[0].split(",")
    assert "mse" in front
    evo = run.invoke(main, ["evolve", "p.toml", "--out", "e", "--replay", "g"])
    assert evo.exit_code == 0, evo.output
    cmp = run.invoke(main, ["compare", "e", "--reference", "g", "--out", "c"])
    assert cmp.exit_code == 0, cmp.output
    assert (tmp_path / "c" / "report.md").read_text().count("mse") >= 1


def test_evolve_takes_numpy_arrays_of_research_code(tmp_path, monkeypatch):
    import gi_energy

    monkeypatch.chdir(tmp_path)
    doc = _problem(tmp_path, search={"population": 4, "generations": 1})
    doc["space"] = {"alpha": {"min": 1e-3, "max": 10.0, "log": True}}
    problem = parse_problem(doc, source="<test>", base_dir=tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = (x[:, 0] > 0).astype(int)
    result = gi_energy.evolve(problem, dataset=(x, y), out=tmp_path / "run", store=tmp_path / "s.sqlite",
                              plot=False)
    assert result.front and all(o.metric("mse") is not None for o in result.front)
    assert result.problem.dataset.source == "npz" and result.problem.dataset.path.is_file()
    again = gi_energy.evolve(problem, dataset=(x, y), out=tmp_path / "again", store=tmp_path / "s.sqlite",
                             plot=False)
    assert all(o.cached for o in again.evaluations)  # same arrays, same store key


def test_a_user_task_from_a_file_runs_on_dask_workers_by_import(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        problem = bind(_parse(tmp_path, evaluation={"backend": "dask", "scheduler": cluster.scheduler_address,
                                                    "min_inference_s": 0.0, "timeout_s": 60.0}))
        genomes = [problem.space.sample(np.random.default_rng(i)) for i in range(2)]
        with Store(tmp_path / "s.sqlite") as store, Evaluator(problem, store) as ev:
            outcomes = ev.evaluate(genomes)
        assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
        assert all(o.metric("mse") is not None and o.evaluations[0].train.backend == "estimate" for o in outcomes)


def test_the_surrogate_encoder_takes_a_user_space():
    from gi_energy.search.surrogate import GenomeEncoder

    space = parse_problem({"problem": {"name": "x"}, "dataset": {"source": "synthetic"},
                           "task": {"entry": "gi_energy.tasks.builtin:MLPTask"},
                           "space": {**SPACE, "flag": [True, False], "kept": 3},
                           "objectives": {"accuracy": "max", "params": "min"}}).space
    enc = GenomeEncoder(space)
    assert "depth.count" in enc.columns and "flag=True" in enc.columns and "kept" not in enc.columns
    assert "depth.kind0" in enc.columns and "depth.kernel2" in enc.columns
    rng = np.random.default_rng(5)
    for g in (space.sample(rng) for _ in range(20)):
        assert enc.decode(enc.encode(g)) == g


def test_validate_summarises_a_user_space_with_per_layer_values(tmp_path):
    (tmp_path / "p.toml").write_text(_toml(_problem(tmp_path)))
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "p.toml")])
    assert result.exit_code == 0, result.output
    assert "task      tasks.py:Ridge" in result.output
    assert "depth_kind" in result.output and "one of conv, sep, dilated" in result.output


@pytest.mark.parametrize(("name", "what"), [
    ("key", "a column the run's files write"), ("status", "a column the run's files write"),
    ("energy_spent_j", "a column the run's files write"), ("measured", "a column the run's files write"),
    ("alpha", "a setting of the search space"), ("depth_layers", "a setting of the search space"),
    ("depth_kinds", "a setting of the search space"),  # a per-layer value's column
])
def test_a_metric_named_like_a_column_or_a_setting_is_refused(tmp_path, name, what):
    """Its column would stand for two things: evaluations.csv's ``key`` twice made the
    run read back with an empty front; a metric ``lr`` hid the hyperparameter."""
    (tmp_path / "named.py").write_text(USER_TASK.replace('metrics = ("mse", "weight_norm")', f'metrics = ("{name}",)'))
    with pytest.raises(ProblemError, match="task.entry") as info:
        bind(_parse(tmp_path, entry="named.py:Ridge", objectives={"mse": "min", "train_energy_j": "min"}))
    assert f"{name!r} is {what}" in str(info.value)


def test_an_objective_the_task_does_not_return_fails_that_evaluation_saying_so(tmp_path):
    """A misspelt key in evaluate()'s dict was an "ok" evaluation off every front, a
    clean-looking run with an empty front; the energies it took are kept."""
    (tmp_path / "forgets.py").write_text(USER_TASK.replace('"mse": mse, ', ""))
    problem = bind(_parse(tmp_path, entry="forgets.py:Ridge"))
    genome = problem.space.sample(np.random.default_rng(0))
    ev = run_evaluation(problem, genome, 0, meter=EstimateMeter(cpu_watts_per_core=10.0))
    assert ev.status == "failed"
    assert ev.reason == "Ridge.run() returned no 'mse', which the problem's objectives or constraints name"
    assert ev.train is not None and ev.train.energy_j is not None


def test_a_task_that_raises_after_training_keeps_the_energy_it_spent(tmp_path):
    """Its training window closed before evaluate() raised: the failed evaluation keeps
    that reading (the energy was spent), rather than counting it as unknown."""
    (tmp_path / "raises.py").write_text(USER_TASK.replace(
        "        pred = trial.data.x_val @ model[\"w\"]\n", "        raise RuntimeError(\"evaluate broke\")\n"))
    problem = bind(_parse(tmp_path, entry="raises.py:Ridge"))
    genome = problem.space.sample(np.random.default_rng(0))
    ev = run_evaluation(problem, genome, 0, meter=EstimateMeter(cpu_watts_per_core=10.0))
    assert ev.status == "failed" and ev.reason.startswith("RuntimeError: evaluate broke")
    assert ev.train is not None and ev.train.energy_j is not None and not ev.train.measured
    assert ev.train_time_s is not None and ev.inference is None
