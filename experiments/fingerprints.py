"""Print the store keys (fingerprints) of a few fixed problems, to check that a change
leaves the keys of existing stores alone: run it on two trees and compare the output.

    .venv/bin/python experiments/fingerprints.py
    PYTHONPATH=<shadow of an older tree> .venv/bin/python experiments/fingerprints.py

(bench_scale.py's ``_importable`` makes such a shadow folder.) The problems: two bundled
ones, a CSV dataset and a task of the user's own with a helper module beside it, each
written afresh in a temporary folder from the fixed texts below, so every tree and
machine hashes the same bytes (the fingerprint names file digests, not paths)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

TASK = '''import gi_energy
from fp_helper import SCALE


class Scaled(gi_energy.Task):
    metrics = ("score",)
    version = "1"

    def build(self, trial):
        return {}

    def train(self, model, trial):
        pass

    def evaluate(self, model, trial):
        return {"accuracy": 0.5, "score": SCALE}

    def infer(self, model, trial):
        return len(trial.data.x_test)
'''

CSV = "a,b,label\n" + "".join(f"{i % 7 / 7:.4f},{i % 5 / 5:.4f},{i % 2}\n" for i in range(90))


def fingerprints(folder: Path) -> dict[str, str]:
    from gi_energy.config.parse import load_problem, parse_problem
    from gi_energy.tasks.loader import bind

    (folder / "data.csv").write_text(CSV)
    (folder / "fp_task.py").write_text(TASK)
    (folder / "fp_helper.py").write_text("SCALE = 3.0\n")
    common = {"space": {"width": {"min": 4, "max": 16}}, "energy": {"meter": "estimate"}}
    csv = {"problem": {"name": "csvp", "seed": 1}, "dataset": {"source": "csv", "path": "data.csv", "target": "label"},
           "objectives": {"accuracy": "max", "inference_energy_j_per_1k": "min"}, **common}
    task = {"problem": {"name": "own", "seed": 1},
            "dataset": {"source": "synthetic", "n_samples": 120, "n_features": 4},
            "task": {"entry": "fp_task.py:Scaled"}, "space": {"alpha": {"min": 1e-3, "max": 10.0, "log": True}},
            "objectives": {"score": "min", "inference_energy_j_per_1k": "min"},
            "evaluation": {"min_inference_s": 0.0}, "energy": {"meter": "estimate"}}
    out = {name: bind(load_problem(name)).fingerprint() for name in ("digits", "wine")}
    for name, doc in (("csv", csv), ("own task with a helper", task)):
        out[name] = bind(parse_problem(doc, source=str(folder / f"{name}.toml"), base_dir=folder)).fingerprint()
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        json.dump(fingerprints(Path(tmp)), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
