"""The benchmark suite's runner (experiments/suite/run.py) on a tiny [table]: budgets floor
at 20 evaluations, every method's evaluated count is reported beside its figures, and the
per-table and suite summaries have the structure the report reads."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1] / "experiments" / "suite"


def _runner():
    spec = importlib.util.spec_from_file_location("suite_run", SUITE / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tiny_table(tmp_path: Path) -> Path:
    rows = ["width,depth,opt,acc,inference_energy_j_per_1k"]
    for i, (w, d, o) in enumerate(itertools.product([4, 8, 16, 32], [1, 2, 3], ["adam", "sgd", "rmsprop"])):
        acc = 0.5 + 0.1 * (w.bit_length() - 2) / 3 + 0.05 * d - 0.02 * (o == "sgd") + 0.001 * (i % 7)
        rows.append(f"{w},{d},{o},{acc:.4f},{w * d * (1.5 if o == 'sgd' else 1.0) * 0.01:.4f}")
    (tmp_path / "tiny.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "tiny.toml"
    path.write_text('[problem]\nname = "tiny"\n[table]\npath = "tiny.csv"\nconfiguration = ["width", "depth", "opt"]\n'
                    '[objectives]\nacc = "max"\ninference_energy_j_per_1k = "min"\n')
    return path


def test_runner_floors_budgets_reports_evaluated_counts_and_writes_summaries(tmp_path):
    run = _runner()
    assert run.budget_for(0.01, 240) == 20 and run.budget_for(0.1, 10080) == 1008 and run.budget_for(0.05, 12) == 12
    out = tmp_path / "suite"
    suite = run.main(["--tables", str(_tiny_table(tmp_path)), "--seeds", "2", "--budgets", "0.01",
                      "--methods", "ours,random", "--jobs", "1", "--out", str(out)])
    s = json.loads((out / "tiny" / "summary.json").read_text())
    assert s["configurations"] == 36 and s["half"] == "other" and s["seeds"] == [0, 1]
    (b,) = s["budgets"]
    assert b["share"] == 0.01 and b["budget"] == 20  # 1 % of 36 floors at 20
    assert set(b["methods"]) == {run.OURS_DEFAULT, "random search"}
    for m in b["methods"].values():
        assert m["runs"] == 2
        assert m["evaluated"] == {"min": 20, "median": 20.0, "max": 20}
        assert m["stops"] == {"budget": 2}
        for metric in ("hv_ratio", "hv_ratio_front"):
            assert m[metric]["n"] == 2 and m[metric]["q25"] <= m[metric]["median"] <= m[metric]["q75"]
    peer = b["methods"]["random search"]["hv_ratio_front"]
    assert 0.0 <= peer["p_vs_default"] <= 1.0 and peer["verdict"] in ("ahead", "level", "behind")
    md = (out / "tiny" / "summary.md").read_text()
    assert "n=20" in md and "front scale" in md and "spec scale" in md
    counts = suite["halves"]["other"]["counts"]["random search"]["hv_ratio_front"]
    assert sum(counts.values()) == 1  # one (table, budget) cell
    assert (out / "summary.md").exists() and (out / "tiny" / "b20" / "comparison.json").exists()
    # A rerun resumes: the finished run directories are kept, not run again.
    before = (out / "tiny" / "b20" / "random-s00" / "run.json").stat().st_mtime_ns
    run.main(["--tables", str(_tiny_table(tmp_path)), "--seeds", "2", "--budgets", "0.01",
              "--methods", "ours,random", "--jobs", "1", "--out", str(out)])
    assert (out / "tiny" / "b20" / "random-s00" / "run.json").stat().st_mtime_ns == before
