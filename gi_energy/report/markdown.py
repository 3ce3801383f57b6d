"""report.md: a comparison rendered as Markdown tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .figures import ENERGY_METRIC
from .joules import energy_text
from .stats import finite


def run_names(paths: Sequence) -> dict[str, str]:
    """Each run's name in a table: its directory's name, or as many of its last path parts
    as tell it from the others (``s1/run`` and ``s2/run``, where both were "run")."""
    parts = {str(p): Path(p).resolve().parts for p in paths}
    names = {}
    for p, mine in parts.items():
        others = [q for o, q in parts.items() if o != p]
        k = 1
        while k < len(mine) and any(q[-k:] == mine[-k:] for q in others):
            k += 1
        names[p] = "/".join(mine[-k:])
    return names


def _f(x, spec=".3f") -> str:
    return "–" if x is None else format(x, spec)


def _mi(s: Mapping, spec=".3f") -> str:
    """'median [q25, q75]', 'not reached (k/n)' or, for a figure some runs do not know,
    '– (k/n unknown)'."""
    if not s or s.get("n", 0) == 0:
        return "–"
    if s.get("unknown"):
        return f"– ({s['unknown']}/{s['n']} unknown)"
    if s["median"] is None:
        return f"not reached ({s['finite']}/{s['n']})"
    text = _f(s["median"], spec)
    if s["n"] > 1:
        text += f" [{_f(s['q25'], spec)}, {_f(s['q75'], spec)}]"
    if s["finite"] < s["n"]:
        text += f" ({s['finite']}/{s['n']} reached)"
    return text


def _headline_row(name: str, h: Mapping | None, metric: str) -> str:
    if not h:
        return f"| {name} | – | – | – | – | – |"
    m, c = h["most_accurate"], h["chosen"]
    return (f"| {name} | {m[metric]:.4f} | {m[ENERGY_METRIC]:.4g} | {c[metric]:.4f} | "
            f"{c[ENERGY_METRIC]:.4g} | **{100 * h['saving']:.1f}%** |")


def _headline(cmp: Mapping, names: Mapping[str, str]) -> list[str]:
    """The headline section: the saving for at most one point of the headline's metric
    (accuracy, else the problem's one maximised quality objective), or the one line that
    says why there is none; ``names``: :func:`run_names` of the runs."""
    about = cmp.get("headline") or {"metric": "accuracy"}  # written before the key: accuracy
    metric = about["metric"]
    if metric is None:
        return ["", "## Headline", "", f"No headline: {about.get('note', 'no one quality objective.')}"]
    point = "one accuracy point" if metric == "accuracy" else f"one point ({about.get('tolerance', 0.01):g}) of {metric}"
    best = "most accurate model" if metric == "accuracy" else f"model with the best {metric}"
    lines = ["", f"## Headline: energy saved for at most {point} lost", "",
             f"Relative to the {best} found; inference energy in J per 1,000 samples.", "",
             f"| run | best {metric} | its energy | chosen {metric} | chosen energy | saving |",
             "|---|---|---|---|---|---|"]
    ref, runs = cmp["reference"], cmp["runs"]
    if ref.get("headline"):
        lines.append(_headline_row("reference (grid)", ref["headline"], metric))
    for g in cmp["groups"]:
        if g["saving"].get("n"):
            lines.append(f"| {g['label']} (median of {g['runs']}) | | | | | {_mi(g['saving'], '.1%')} |")
    if len(runs) <= 12:
        for r in runs:
            if not r["reference"]:
                lines.append(_headline_row(f"{r['label']} `{names[r['path']]}`", r["headline"], metric))
    return lines


def _spent(r: Mapping) -> str:
    """A run's (or the reference's) joules spent; files written before energy_known_j
    held the known part in energy_spent_j."""
    return energy_text(r.get("energy_known_j", r.get("energy_spent_j")), r.get("energy_unknown", 0))


def _unfinished(r: Mapping) -> bool:
    """A run that did not finish (interrupted, failed, still running); comparisons
    written before runs carried a status say nothing."""
    return r.get("status", "complete") != "complete"


def render_report(cmp: Mapping) -> str:
    obj = cmp["objectives"]
    ref = cmp["reference"]
    runs = cmp["runs"]
    names = run_names([r["path"] for r in runs])
    any_replayed = any(r["replayed"] for r in runs)
    all_measured = all(r["measured"] for r in runs)
    lines = ["# Front comparison", ""]
    lines.append(f"Objectives: {', '.join(f'{k} ({v})' for k, v in obj.items())}. Reference front: "
                 f"{ref['source']} ({ref['front_size']} points, hypervolume {ref['hypervolume']:.4f}).")
    lines.append(f"Normalised once for all runs (bounds from the union of their ok points); reference point "
                 f"{cmp['reference_point'][0]} in every objective.")
    if cmp.get("constraints"):
        lines.append("Only points meeting the constraints count ("
                     + ", ".join(f"{k} ≤ {v:g}" for k, v in cmp["constraints"].items())
                     + "), as in each run's front.csv.")
    if "evaluations" in ref:
        kind = "measured" if ref.get("measured") else "estimated"
        command = ref.get("command") or "grid"  # comparison.json written before it: a grid
        what = "grid" if command == "grid" else f"{command} run"
        lines.append(f"The reference {what} cost {ref['evaluations']} evaluations and {_spent(ref)} J "
                     f"({kind}).")
    notes = []
    if any_replayed:
        notes.append("Runs marked *replayed* looked their results up in the grid run instead of training: their "
                     "energy is the grid's recorded energy for the same configurations, counted as spent.")
    if not all_measured:
        notes.append("Some energies are **estimated**, not measured (see each run's meter in run.json).")
    unfinished = [r for r in runs if _unfinished(r)]
    if unfinished:
        notes.append("Not every run finished: " + ", ".join(f"`{names[r['path']]}` ({r['status']})"
                                                            for r in unfinished)
                     + "; each is compared on what it had evaluated when it stopped (`--resume` continues an "
                       "interrupted run).")
    lines += [""] + notes if notes else []

    lines += _headline(cmp, names)

    lines += ["", "## Per method: median [interquartile range]", "",
              "| method | runs | HV ratio | HV ratio (front scale) | IGD+ | additive ε | ref. front covered | evaluations | energy spent (J) |"
              " evals to 90% / 95% / 99% HV | joules to 90% / 95% / 99% HV |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in cmp["groups"]:
        to_e = " / ".join(_mi(g[f"evaluations_to_{t}"], ".0f") for t in (90, 95, 99))
        to_j = " / ".join(_mi(g[f"energy_j_to_{t}"], ".1f") for t in (90, 95, 99))
        name = g["label"] + (" *(replayed)*" if g["replayed"] else "")
        lines.append(f"| {name} | {g['runs']} | {_mi(g['hv_ratio'], '.4f')} | {_mi(g['hv_ratio_front'], '.4f')} | "
                     f"{_mi(g['igd_plus'], '.4f')} | "
                     f"{_mi(g['epsilon_additive'], '.4f')} | {_mi(g['coverage'], '.0%')} | "
                     f"{_mi(g['evaluations'], '.0f')} | {_mi(g['energy_spent_j'], '.1f')} | {to_e} | {to_j} |")

    if cmp["tests"]:
        lines += ["", "## Wilcoxon rank-sum tests", "",
                  "| metric | A | B | n | median A | median B | statistic | p |", "|---|---|---|---|---|---|---|---|"]
        for t in cmp["tests"]:
            if "note" in t:
                lines.append(f"| {t['metric']} | {t['note']} | | | | | | |")
                continue
            lines.append(f"| {t['metric']} | {t['a']} | {t['b']} | {t['n_a']} / {t['n_b']} | {t['median_a']:.4f} | "
                         f"{t['median_b']:.4f} | {t['statistic']:.3f} | {t['p_value']:.3g} |")

    lines += ["", "## Runs", "", "| run | method | seed | evaluations | trained | energy (J) | front | HV ratio | "
              "IGD+ | ε+ | covered | evals to 90/95/99% |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        to = " / ".join(_f(r[f"evaluations_to_{t}"], "d") if r[f"evaluations_to_{t}"] is not None else "–"
                        for t in (90, 95, 99))
        name = names[r["path"]] + (" (reference)" if r["reference"] else "") \
            + (f" ({r['status']})" if _unfinished(r) else "")
        lines.append(f"| `{name}` | {r['label']} | {r['seed'] if r['seed'] is not None else '–'} | {r['evaluations']} | "
                     f"{r['trained']} | {_spent(r)} | {r['front_size']} | {_f(r['hv_ratio'], '.4f')} | "
                     f"{_f(finite(r['igd_plus']), '.4f')} | {_f(finite(r['epsilon_additive']), '.4f')} | "
                     f"{r['coverage']:.0%} | {to} |")
    lines += ["", "HV ratio: hypervolume over the reference front's, both normalised by the bounds of every "
              "evaluated point. HV ratio (front scale): the same, normalised by the reference front's own ideal "
              "and nadir points, so only the trade-off region counts. It is unbounded above: a value over 1 "
              "means the run found points beyond the reference front (better than its best in some objective), "
              "which only a non-exhaustive reference allows.", "",
              "Energy spent: the joules each run counted as its own (evaluations it trained, before or after "
              "a resume; evaluations another run had put in the store cost nothing). Where some readings are "
              "missing the total is unknown: the known joules are shown with the count of unknown readings "
              "(\"12.3 + 4 unknown\"), never as 0.", "",
              "Files: `comparison.json` (every figure), `fronts.png` (fronts over the reference), "
              "`hv_history.png` (hypervolume ratio against evaluations and joules spent), `report.html` (the "
              "fronts, hypervolume and front tables, interactive; with plotly installed).", ""]
    return "\n".join(lines)
