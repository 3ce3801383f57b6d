"""The search's exact behaviour pinned: a seed gives the same evaluated genomes in the same
order, so a speed-up of the engine (operators, genome building, checkpoint pacing) that
changes what a run evaluates fails here rather than passing unnoticed.

Three short runs: a replay of a small grid that the search saturates (most children are
re-mutated before one is new), a [table] run, and a real (non-replay) run on continuous
ranges. Each pins the number of evaluations, a digest of the evaluated keys in order, the
first and last key, and the generator's state at the end (every draw the run made). A
deliberate change of the search's behaviour updates these values, and says why.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from gi_energy.config.parse import load_problem, parse_problem
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
from gi_energy.search.evolve import evolve
from gi_energy.search.grid import run_grid

SPACE = {"hidden_layers": {"min": 1, "max": 3}, "width": {"min": 4, "max": 256, "log": True},
         "learning_rate": {"min": 1e-4, "max": 1e-1, "log": True}, "epochs": {"min": 1, "max": 20},
         "activation": ["relu", "tanh"]}


def _problem(**search):
    return parse_problem({
        "problem": {"name": "pin", "seed": 5}, "space": SPACE,
        "grid": {"hidden_layers": [1, 2, 3], "width": [8, 32, 128], "learning_rate": [1e-3, 1e-2],
                 "epochs": [5, 10], "activation": ["relu", "tanh"]},
        # surrogate = "none": these pin plain NSGA-II (the default, "auto", may screen)
        "search": {"population": 8, "generations": 1000, "surrogate": "none", **search},
    }, source="<pin>")


def _signature(result, run_dir: Path) -> dict:
    keys = [o.key for o in result.evaluations]
    state = json.loads((run_dir / "checkpoint.json").read_text())["rng_state"]["state"]
    return {"n": len(keys), "distinct": len(set(keys)), "first": keys[0], "last": keys[-1],
            "digest": hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16],
            "rng": state["state"] % 10**12, "generations": len(result.history)}


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "energy is estimated": these are synthetic
        return fn(*args, **kw)


def test_replay_of_a_saturated_grid_evaluates_the_pinned_sequence(tmp_path):
    p = _problem(max_evaluations=60)  # the grid has 72 points: the search runs out of new ones
    _quiet(run_grid, p, out=tmp_path / "grid", evaluator=SyntheticEvaluator(p), echo=lambda s: None,
           warn=lambda s: None)
    res = _quiet(evolve, p, out=tmp_path / "e", evaluator=ReplayEvaluator(p, tmp_path / "grid"), plot=False)
    assert _signature(res, tmp_path / "e") == {
        "n": 60, "distinct": 60, "generations": 9,
        "first": "hidden=128-128-128|activation=relu|batch_size=64|dropout=0|epochs=10|learning_rate=0.001|"
                 "momentum=0.9|optimizer=adam|weight_decay=0",
        "last": "hidden=8-8|activation=relu|batch_size=64|dropout=0|epochs=5|learning_rate=0.001|"
                "momentum=0.9|optimizer=adam|weight_decay=0",
        "digest": "10e4b1e2f75960ad", "rng": 430439246794,
    }


TABLE_PROBLEM = """[problem]
name = "pin-table"
seed = 7
[table]
path = "t.csv"
configuration = ["width", "opt", "lr"]
[objectives]
acc = "max"
energy_j = "min"
[search]
population = 6
generations = 1000
max_evaluations = 40
surrogate = "none"
"""


def test_table_run_evaluates_the_pinned_sequence(tmp_path):
    rows = ["width,opt,lr,acc,energy_j"]
    for i, width in enumerate((4, 8, 16, 32, 64)):
        for j, opt in enumerate(("adam", "sgd", "rms")):
            for k, lr in enumerate((0.001, 0.003, 0.01, 0.03)):
                rows.append(f"{width},{opt},{lr},{0.5 + 0.08 * i - 0.03 * abs(k - 2) - 0.02 * j:.4f},"
                            f"{width * (1 + k) * (1.5 if opt == 'sgd' else 1.0):.3f}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "p.toml").write_text(TABLE_PROBLEM)
    res = _quiet(evolve, load_problem(tmp_path / "p.toml"), out=tmp_path / "e", plot=False)
    assert _signature(res, tmp_path / "e") == {
        "n": 40, "distinct": 40, "generations": 7, "first": "lr=0.01|opt=sgd|width=64",
        "last": "lr=0.001|opt=rms|width=16", "digest": "7589324b292812fb", "rng": 424853226644,
    }


def test_real_run_on_continuous_ranges_evaluates_the_pinned_sequence(tmp_path):
    p = _problem(max_evaluations=40)
    res = _quiet(evolve, p, out=tmp_path / "e", evaluator=SyntheticEvaluator(p), plot=False)
    assert _signature(res, tmp_path / "e") == {
        "n": 40, "distinct": 40, "generations": 5,
        "first": "hidden=115-34-13|activation=tanh|batch_size=64|dropout=0|epochs=20|"
                 "learning_rate=0.00141288444019|momentum=0.9|optimizer=adam|weight_decay=0",
        "last": "hidden=230|activation=tanh|batch_size=64|dropout=0|epochs=20|learning_rate=0.0025984417851|"
                "momentum=0.9|optimizer=adam|weight_decay=0",
        "digest": "73bf33a9c8e19013", "rng": 312051754202,
    }

