"""The default against every peer, per table x budget, from the suite runner's summaries:

    python3 experiments/default_verdicts.py held-out|development [hv_ratio_front|hv_ratio] [OUT]

The default's median [IQR]; each peer's median, the Wilcoxon rank-sum p against the default
and the verdict from the default's side (p < 0.05). Shares of one table that floor to the
same budget (20 evaluations) are one cell, counted once. OUT: the runner's --out
(default runs/suite_h6).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

OURS = "gi-energy default (evolve, no search flags)"
SHORT = {"gi-energy + surrogate (forest)": "forest24", "random search": "random",
         "Optuna NSGAIISampler": "optuna-nsga2", "Optuna TPE (multi-objective)": "TPE", "pymoo NSGA-II": "pymoo"}


def main(half: str, metric: str = "hv_ratio_front", out: str = "runs/suite_h6") -> None:
    split = tomllib.loads(Path("experiments/suite/split.toml").read_text())
    tally = {"behind": 0, "cells": 0, "tpe_ahead": 0, "tpe_cells": 0}
    print(f"| table | budget | default {metric} median [IQR] | " + " | ".join(SHORT.values()) + " |")
    print("|---|---|---|" + "---|" * len(SHORT))
    for t in split[half]["tables"]:
        f = Path(out) / t / "summary.json"
        if not f.exists():
            print(f"| {t} | (not run) |")
            continue
        s = json.loads(f.read_text())
        seen = set()
        for b in s["budgets"]:
            if b["budget"] in seen:
                continue
            seen.add(b["budget"])
            ours = b["methods"][OURS][metric]
            cells = []
            for label, short in SHORT.items():
                x = b["methods"].get(label)
                if x is None:
                    cells.append("–")
                    continue
                x = x[metric]
                verdict, p = x.get("verdict"), x.get("p_vs_default")
                cells.append(f"{x['median']:.4f}" + ("" if p is None else f" p={p:.2g} {verdict}"))
                tally["cells"] += 1
                tally["behind"] += verdict == "behind"
                if short == "TPE":
                    tally["tpe_cells"] += 1
                    tally["tpe_ahead"] += ours["median"] > x["median"]
            shares = "/".join(f"{round(bb['share'] * 100)}%" for bb in s["budgets"] if bb["budget"] == b["budget"])
            print(f"| {t} | {shares} ({b['budget']}) | {ours['median']:.4f} [{ours['q25']:.4f}, {ours['q75']:.4f}] | "
                  + " | ".join(cells) + " |")
    print()
    print(f"default significantly behind (p<0.05) in {tally['behind']} of {tally['cells']} peer comparisons; "
          f"median ahead of TPE in {tally['tpe_ahead']} of {tally['tpe_cells']} distinct cells")


if __name__ == "__main__":
    main(*sys.argv[1:])
