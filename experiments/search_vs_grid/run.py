"""Search versus grid: does NSGA-II find the exhaustive front for a fraction of the grid's
evaluations and energy, and does it beat the peers on the same table?

    .venv/bin/python experiments/search_vs_grid/run.py [--seeds 21] [--budgets 0.05,0.1,0.2]

1. Runs the grid of ``problem.toml`` once with real training (resumed if it exists; the
   store means nothing is trained twice): the reference front.
2. For each budget (a share of the grid's evaluations) and each seed, runs gi-energy's
   NSGA-II in replay (``ReplayEvaluator``: the grid's recorded results and energy, nothing
   trained) and the peers on the same table: random search, Optuna NSGAIISampler and
   multi-objective TPE, pymoo NSGA-II (a peer that cannot be imported is skipped, with
   the reason printed).
3. Compares every budget's runs against the grid (``gi_energy.compare``) and writes
   ``summary.md`` / ``summary.json``: the median hypervolume ratio against the
   exhaustive front, per method and budget, with Wilcoxon rank-sum p-values of ours
   against each peer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # peers.py sits next to this script

from peers import available_peers, open_replay  # noqa: E402

from gi_energy.config.parse import load_problem  # noqa: E402
from gi_energy.report.compare import compare  # noqa: E402
from gi_energy.runs.files import write_json_atomic  # noqa: E402
from gi_energy.runs.rundir import RunDirectory  # noqa: E402
from gi_energy.search.grid import run_grid  # noqa: E402

OURS = "gi-energy NSGA-II"
OURS_SURROGATE = "gi-energy NSGA-II + surrogate"
TPE = "Optuna TPE (multi-objective)"
OURS_TRAINED = "gi-energy NSGA-II, real training"


def _joules(value) -> str:
    """A median of joules, or "unknown J" where a run's readings were missing (None)."""
    return "unknown J" if value is None else f"{value:.0f} J"


def ensure_grid(problem, out: Path, workers: int | None, grid_dir: Path | None = None) -> Path:
    grid_dir = grid_dir or out / "grid"
    store = grid_dir.parent / "store.sqlite"
    if (grid_dir / "run.json").exists():
        if RunDirectory.open(grid_dir).read_run_json().get("status") == "complete":
            print(f"grid: reusing the complete grid run {grid_dir}")
            return grid_dir
        run_grid(problem, resume=grid_dir, store=store, workers=workers)
    else:
        run_grid(problem, out=grid_dir, store=store, workers=workers)
    return grid_dir


def run_ours(problem, grid_dir: Path, budget: int, seed: int, out: Path, surrogate: str | None = "none", *,
             label: str | None = None, generations: int | None = None) -> Path:
    """Ours in replay on the grid run (or the problem's [table]) for ``budget`` new
    evaluations. ``surrogate`` None leaves [search] surrogate as the problem (or the
    default) has it: what ``gi-energy evolve`` does with no search flags. ``generations``
    raises the generation limit so that the budget is what stops the search."""
    from gi_energy.search.evolve import evolve

    label = label or (OURS if surrogate == "none" else OURS_SURROGATE)
    search = {"max_evaluations": budget}
    if surrogate is not None:
        search["surrogate"] = surrogate
    if generations is not None:
        search["generations"] = generations
    p = problem.with_overrides(search=search)
    res = evolve(p, out=out, seed=seed, evaluator=open_replay(problem, grid_dir), plot=False,
                 settings={"label": label, "replay": str(grid_dir)})
    RunDirectory(res.run_dir).update_run_json(label=label, replayed=True)
    return res.run_dir


def run_ours_surrogate(problem, grid_dir: Path, budget: int, seed: int, out: Path) -> Path:
    """Ours with surrogate pre-screening of offspring ([search] surrogate = "forest")."""
    return run_ours(problem, grid_dir, budget, seed, out, surrogate="forest")


def run_ours_trained(problem, budget: int, seed: int, out: Path, workers: int | None) -> Path:
    """Ours with real training in the full space (not the grid's levels). Each seed gets
    its own fresh store so every joule it reports was spent by that search, not served by
    the grid's store."""
    from gi_energy.search.evolve import evolve

    p = problem.with_overrides(search={"max_evaluations": budget})
    res = evolve(p, out=out, seed=seed, workers=workers, store=out.parent / f"store-{out.name}.sqlite",
                 settings={"label": OURS_TRAINED})
    RunDirectory(res.run_dir).update_run_json(label=OURS_TRAINED)
    return res.run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default=str(HERE / "problem.toml"))
    ap.add_argument("--out", default="runs/search_vs_grid", help="experiment folder (grid, runs, reports)")
    ap.add_argument("--seeds", type=int, default=21)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds are FIRST_SEED .. FIRST_SEED + SEEDS - 1 (other seeds: a held-out check)")
    ap.add_argument("--grid", default=None,
                    help="a finished grid run to reuse (default OUT/grid, run if missing)")
    ap.add_argument("--budgets", default="0.05,0.1,0.2", help="shares of the grid's evaluations")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--trained-seeds", type=int, default=3,
                    help="seeds of ours with real training (full space) at the --trained-budget share")
    ap.add_argument("--trained-budget", type=float, default=0.1)
    ap.add_argument("--methods", default="ours,ours-surrogate,random,optuna-nsga2,optuna-tpe,pymoo-nsga2",
                    help="ours-surrogate: ours with [search] surrogate = \"forest\"")
    ap.add_argument("--surrogate", action="store_true", help="shorthand: add ours-surrogate to --methods")
    args = ap.parse_args()

    problem = load_problem(args.problem)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid_dir = ensure_grid(problem, out, args.workers, Path(args.grid) if args.grid else None)
    grid_info = RunDirectory.open(grid_dir).read_run_json()
    n_grid = int(grid_info["evaluations"])

    peers, missing = available_peers()
    wanted = args.methods.split(",")
    if args.surrogate and "ours-surrogate" not in wanted:
        wanted.append("ours-surrogate")
    for name in wanted:
        if name in missing:
            print(f"peer {name}: skipped: {missing[name]}")
    methods = {name: fn for name, fn in peers.items() if name in wanted}
    if "ours-surrogate" in wanted:
        methods = {"ours-surrogate": run_ours_surrogate, **methods}
    if "ours" in wanted:
        methods = {"ours": run_ours, **methods}

    summary = {"problem": problem.name, "grid_points": n_grid, "grid_energy_j": grid_info.get("energy_spent_j"),
               "grid_measured": grid_info.get("measured"), "seeds": args.seeds, "first_seed": args.first_seed, "skipped": missing, "budgets": []}
    trained_paths: list[Path] = []
    for share in (float(s) for s in args.budgets.split(",")):
        budget = max(1, round(share * n_grid))
        tag = f"b{round(share * 100):02d}"
        paths = []
        for name, fn in methods.items():
            t0 = time.perf_counter()
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                run_dir = out / tag / f"{name}-s{seed:02d}"
                if (run_dir / "run.json").exists() and (run_dir / "evaluations.csv").exists():
                    paths.append(run_dir)  # already run: the experiment resumes where it stopped
                    continue
                if run_dir.exists():
                    import shutil

                    shutil.rmtree(run_dir)  # a half-written run from an interrupted experiment
                paths.append(Path(fn(problem, grid_dir, budget, seed, run_dir)))
            print(f"{tag}: {name}: {args.seeds} seeds x {budget} evaluations in {time.perf_counter() - t0:.1f} s")
        if share == args.trained_budget and args.trained_seeds:
            t0 = time.perf_counter()
            for seed in range(args.trained_seeds):
                run_dir = out / tag / f"trained-s{seed:02d}"
                if not (run_dir / "run.json").exists() or \
                        RunDirectory.open(run_dir).read_run_json().get("status") != "complete":
                    if run_dir.exists():
                        import shutil

                        shutil.rmtree(run_dir)
                        (out / tag / f"store-{run_dir.name}.sqlite").unlink(missing_ok=True)
                    run_ours_trained(problem, budget, seed, run_dir, args.workers)
                trained_paths.append(run_dir)
            print(f"{tag}: ours with real training: {args.trained_seeds} seeds x {budget} evaluations in "
                  f"{time.perf_counter() - t0:.1f} s")
        # force: the experiment rewrites its own comparisons on every rerun
        cmp = compare(paths, reference=grid_dir, out=out / f"compare-{tag}", force=True)
        groups = {g["label"]: g for g in cmp["groups"]}
        tests = {(t["metric"], t["a"], t["b"]): t for t in cmp["tests"] if "p_value" in t}
        row = {"share": share, "budget": budget, "methods": {}}
        for label, g in groups.items():
            m = row["methods"][label] = {
                "coverage_median": g["coverage"]["median"], "igd_plus_median": g["igd_plus"]["median"],
                "energy_spent_j_median": g["energy_spent_j"]["median"]}
            for metric in ("hv_ratio", "hv_ratio_front"):
                p = tests.get((metric, OURS, label)) or tests.get((metric, label, OURS))
                q = tests.get((metric, TPE, label)) or tests.get((metric, label, TPE))
                r = tests.get((metric, OURS_SURROGATE, label)) or tests.get((metric, label, OURS_SURROGATE))
                m[f"{metric}_p_vs_surrogate"] = None if r is None else r["p_value"]
                # rank-sum statistic oriented as ours + surrogate minus this method (> 0: ranks ahead)
                m[f"{metric}_z_vs_surrogate"] = None if r is None else \
                    (r["statistic"] if r["a"] == OURS_SURROGATE else -r["statistic"])
                m.update({f"{metric}_median": g[metric]["median"], f"{metric}_q25": g[metric]["q25"],
                          f"{metric}_q75": g[metric]["q75"], f"{metric}_p_vs_ours": None if p is None else p["p_value"],
                          f"{metric}_p_vs_tpe": None if q is None else q["p_value"]})
        summary["budgets"].append(row)
        print(f"{tag}: report in {out / f'compare-{tag}' / 'report.md'}")

    summary["reference_headline"] = cmp["reference"].get("headline")
    if trained_paths:
        # Its own comparison: runs in the full space can extend the normalisation bounds,
        # which must not shift the replayed runs' figures above.
        tc = compare(trained_paths, reference=grid_dir, out=out / "compare-trained", force=True)
        g = tc["groups"][0]
        summary["trained"] = {"runs": g["runs"], "budget": int(g["evaluations"]["median"]),
                              "hv_ratio_median": g["hv_ratio"]["median"], "hv_ratio_q25": g["hv_ratio"]["q25"],
                              "hv_ratio_q75": g["hv_ratio"]["q75"],
                              "hv_ratio_front_median": g["hv_ratio_front"]["median"],
                              "energy_spent_j_median": g["energy_spent_j"]["median"],
                              "headline_savings": [r["headline"]["saving"] for r in tc["runs"]
                                                   if not r["reference"] and r["headline"]]}
    write_json_atomic(out / "summary.json", summary)
    text = render_summary(summary)
    (out / "summary.md").write_text(text)
    print(text)


def render_summary(s: dict) -> str:
    kind = "measured" if s["grid_measured"] else "estimated"
    lines = [f"# Search vs grid: {s['problem']}", "",
             f"Grid: {s['grid_points']} points, {s['grid_energy_j']:.0f} J ({kind}). "
             f"{s['seeds']} seeds per method and budget; searches replay the grid's recorded results.", "",
             "Median hypervolume ratio against the exhaustive front [IQR]; p: Wilcoxon rank-sum against "
             f"{OURS}; p(TPE): against {TPE} (for ours, with and without the surrogate).", ""]
    labels = list(dict.fromkeys(lab for b in s["budgets"] for lab in b["methods"]))
    for metric, title in (("hv_ratio", "normalised by the bounds of every evaluated point (the spec's scale)"),
                          ("hv_ratio_front", "normalised by the exhaustive front's own ideal and nadir "
                                             "(stricter: only the trade-off region counts)")):
        lines += [f"### HV ratio, {title}", ""]
        lines.append("| budget | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---|" * len(labels))
        for b in s["budgets"]:
            cells = []
            for lab in labels:
                m = b["methods"].get(lab)
                if m is None:
                    cells.append("–")
                    continue
                c = f"{m[metric + '_median']:.4f} [{m[metric + '_q25']:.4f}, {m[metric + '_q75']:.4f}]"
                if m[metric + "_p_vs_ours"] is not None:
                    c += f" p={m[metric + '_p_vs_ours']:.2g}"
                if lab in (OURS, OURS_SURROGATE) and m.get(metric + "_p_vs_tpe") is not None:
                    c += f" p(TPE)={m[metric + '_p_vs_tpe']:.2g}"
                cells.append(c)
            lines.append(f"| {round(b['share'] * 100)}% ({b['budget']} evals) | " + " | ".join(cells) + " |")
        lines.append("")
    if any(OURS_SURROGATE in b["methods"] for b in s["budgets"]):
        lines += [f"### {OURS_SURROGATE} against each other method", "",
                  "Ahead / level / behind by median HV ratio (spec scale; front scale), with the Wilcoxon "
                  "rank-sum p; where the medians are equal, the side the ranks favour.", ""]
        for b in s["budgets"]:
            ours = b["methods"].get(OURS_SURROGATE)
            if ours is None:
                continue
            cells = []
            for lab, m in b["methods"].items():
                if lab == OURS_SURROGATE:
                    continue
                parts = []
                for metric in ("hv_ratio", "hv_ratio_front"):
                    d = ours[metric + "_median"] - m[metric + "_median"]
                    pv, z = m.get(metric + "_p_vs_surrogate"), m.get(metric + "_z_vs_surrogate")
                    word = ("ahead" if d > 0 else "behind") if abs(d) >= 1e-12 else \
                        "level" + ("" if not z else f", ranks {'ahead' if z > 0 else 'behind'}")
                    parts.append(word + ("" if pv is None else f" (p={pv:.2g})"))
                cells.append(f"{lab}: {'; '.join(parts)}")
            lines.append(f"- {round(b['share'] * 100)}% ({b['budget']} evals): " + " | ".join(cells))
        lines.append("")
    t = s.get("trained")
    if t:
        lines += ["", f"Ours with real training in the full space ({t['runs']} seeds, {t['budget']} evaluations, "
                  f"fresh store each): HV ratio {t['hv_ratio_median']:.4f} [{t['hv_ratio_q25']:.4f}, "
                  f"{t['hv_ratio_q75']:.4f}] (front scale {t['hv_ratio_front_median']:.4f}) against the grid front, for a median {_joules(t['energy_spent_j_median'])} "
                  f"({kind}) against the grid's {s['grid_energy_j']:.0f} J."]
    if s["skipped"]:
        lines += ["", "Skipped peers: " + "; ".join(f"{k}: {v}" for k, v in s["skipped"].items())]
    h = s.get("reference_headline")
    if h:
        lines += ["", f"Grid headline: {100 * h['saving']:.1f}% less inference energy for "
                  f"{100 * h['accuracy_lost']:.2f} accuracy points ({h['most_accurate']['accuracy']:.4f} -> "
                  f"{h['chosen']['accuracy']:.4f})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
