"""The suite's figures: per table and budget, each method's median hypervolume ratio
[IQR] on the two scales of ``gi-energy compare`` with its evaluated count, and the
default against each peer (Wilcoxon rank-sum p, and a verdict); then the whole suite,
per half.

Verdict of the default against a method, per scale: **ahead** when the rank-sum test
gives p < 0.05 and the default's ranks are the higher, **behind** when p < 0.05 and they
are the lower, **level** otherwise (no significant difference; the medians may still
differ). Budgets that floor at 20 evaluations are the same runs under several shares;
the suite's counts take each (table, budget) once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ALPHA = 0.05
SCALES = (("hv_ratio_front", "front scale (normalised by the exhaustive front's own ideal and nadir)"),
          ("hv_ratio", "spec scale (normalised by the bounds of every evaluated point, reference 1.1)"))


def _stats(values: list[float]) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"n": 0, "median": None, "q25": None, "q75": None}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"n": int(len(v)), "median": float(med), "q25": float(q25), "q75": float(q75)}


def _verdict(p: float | None, z: float | None) -> str:
    if p is None or z is None or p >= ALPHA:
        return "level"
    return "ahead" if z > 0 else "behind"


def cell(cmp: dict, default: str) -> dict:
    """label -> figures of one budget's comparison (compare_runs' output)."""
    by_label: dict[str, list[dict]] = {}
    for r in cmp["runs"]:
        if not r["reference"]:
            by_label.setdefault(r["label"], []).append(r)
    tests = {(t["metric"], t["a"], t["b"]): t for t in cmp["tests"] if "p_value" in t}
    out = {}
    for label, runs in by_label.items():
        evaluated = [int(r["evaluations"]) for r in runs]
        stops: dict[str, int] = {}
        for r in runs:
            info = json.loads((Path(r["path"]) / "run.json").read_text())
            stop = info.get("stop", "budget")
            stops[stop] = stops.get(stop, 0) + 1
        m = {"runs": len(runs), "evaluated": {"min": min(evaluated), "median": float(np.median(evaluated)),
                                               "max": max(evaluated)}, "stops": stops}
        for metric, _ in SCALES:
            m[metric] = _stats([r[metric] for r in runs])
            if label == default:
                continue
            t = tests.get((metric, default, label)) or tests.get((metric, label, default))
            if t is None:
                m[metric].update(p_vs_default=None, z_default=None, verdict=None)
                continue
            z = t["statistic"] if t["a"] == default else -t["statistic"]
            m[metric].update(p_vs_default=t["p_value"], z_default=z, verdict=_verdict(t["p_value"], z))
        out[label] = m
    return out


def _fmt(m: dict, metric: str, default: str, label: str) -> str:
    s = m[metric]
    if s["median"] is None:
        return "–"
    ev = m["evaluated"]
    n = f"{ev['median']:.0f}" if ev["min"] == ev["max"] else f"{ev['median']:.0f} ({ev['min']}-{ev['max']})"
    text = f"{s['median']:.4f} [{s['q25']:.4f}, {s['q75']:.4f}] n={n}"
    if label != default and s.get("p_vs_default") is not None:
        text += f" p={s['p_vs_default']:.2g} {s['verdict']}"
    return text


def render_table(s: dict) -> str:
    kind = "measured" if s.get("measured") else ("synthetic/table" if s["kind"] == "table" else "estimated")
    energy = f", {s['energy_j']:.0f} J ({kind})" if s.get("energy_j") is not None else f" (energy {kind})"
    lines = [f"# Suite table {s['table']} ({s['half']})", "",
             f"{s['configurations']} configurations ({s['kind']}{energy}); objectives "
             f"{', '.join(f'{k} {v}' for k, v in s['objectives'].items())}; constraints "
             f"{s['constraints'] or 'none'}. {len(s['seeds'])} seeds ({s['seeds'][0]}-{s['seeds'][-1]}) per method "
             f"and budget; budgets floor at {s['min_budget']} evaluations.", "",
             f"Median HV ratio [IQR] n=evaluated (median, min-max when they differ); p: Wilcoxon rank-sum of "
             f"{s['default']} against the method; verdict from the default's side (ahead / level / behind at "
             f"p < {ALPHA}).", ""]
    labels = list(dict.fromkeys(lab for b in s["budgets"] for lab in b["methods"]))
    for metric, title in SCALES:
        lines += [f"## {title}", "", "| budget | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for b in s["budgets"]:
            cells = [_fmt(b["methods"][lab], metric, s["default"], lab) if lab in b["methods"] else "–"
                     for lab in labels]
            lines.append(f"| {b['share'] * 100:g}% ({b['budget']}) | " + " | ".join(cells) + " |")
        lines.append("")
    early = [(b["budget"], lab, m["stops"]) for b in s["budgets"] for lab, m in b["methods"].items()
             if set(m["stops"]) - {"budget"}]
    if early:
        lines += ["Runs that stopped before the budget: " + "; ".join(
            f"b{bud} {lab}: {st}" for bud, lab, st in dict.fromkeys((b, la, json.dumps(st)) for b, la, st in early)), ""]
    return "\n".join(lines) + "\n"


def suite(summaries: list[dict], default: str) -> dict:
    """Per half: the tables' cells and, per method and scale, how many distinct
    (table, budget) cells the default is ahead / level / behind."""
    halves: dict[str, dict] = {}
    for s in summaries:
        h = halves.setdefault(s["half"], {"tables": [], "counts": {}})
        h["tables"].append({k: s[k] for k in ("table", "configurations", "kind", "objectives", "constraints",
                                               "budgets", "seeds", "wall_s", "method_wall_s")})
        seen = set()
        for b in s["budgets"]:
            if b["budget"] in seen:
                continue
            seen.add(b["budget"])
            for label, m in b["methods"].items():
                if label == default:
                    continue
                for metric, _ in SCALES:
                    v = m[metric].get("verdict")
                    if v is None:
                        continue
                    c = h["counts"].setdefault(label, {}).setdefault(metric, {"ahead": 0, "level": 0, "behind": 0})
                    c[v] += 1
    return {"default": default, "alpha": ALPHA, "halves": halves}


def render_suite(su: dict) -> str:
    default = su["default"]
    lines = ["# Benchmark suite", "",
             f"Default: {default}. Cells: median HV ratio [IQR] over the seeds, n = evaluations the method "
             f"got (median; min-max when they differ), p = Wilcoxon rank-sum of the default against that "
             f"method, verdict from the default's side: ahead / level / behind at p < {su['alpha']}.", ""]
    for half in ("development", "held-out", "other"):
        h = su["halves"].get(half)
        if not h:
            continue
        lines += [f"## {half} half", ""]
        for metric, title in SCALES:
            lines += [f"### {title}: the default against each method, (table, budget) cells", "",
                      "| method | ahead | level | behind |", "|---|---|---|---|"]
            for label, c in h["counts"].items():
                x = c.get(metric, {"ahead": 0, "level": 0, "behind": 0})
                lines.append(f"| {label} | {x['ahead']} | {x['level']} | {x['behind']} |")
            lines.append("")
        labels = list(dict.fromkeys(lab for t in h["tables"] for b in t["budgets"] for lab in b["methods"]))
        for metric, title in SCALES:
            lines += [f"### {title}", "", "| table | budget | " + " | ".join(labels) + " |",
                      "|---|---|" + "---|" * len(labels)]
            for t in h["tables"]:
                for b in t["budgets"]:
                    cells = [_fmt(b["methods"][lab], metric, default, lab) if lab in b["methods"] else "–"
                             for lab in labels]
                    lines.append(f"| {t['table']} ({t['configurations']}) | {b['share'] * 100:g}% ({b['budget']}) | "
                                 + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def render_compact(su: dict) -> str:
    """One table per half and scale: median [IQR] of the default, and for each other
    method its median, evaluated count where it differs from the budget, p and verdict."""
    default = su["default"]
    lines = []
    for half in ("development", "held-out", "other"):
        h = su["halves"].get(half)
        if not h:
            continue
        labels = [lab for lab in dict.fromkeys(lab for t in h["tables"] for b in t["budgets"] for lab in b["methods"])
                  if lab != default]
        for metric, title in SCALES:
            lines += [f"{half} half, {title}:", "",
                      "| table | budget | default | " + " | ".join(labels) + " |", "|---|---|---|" + "---|" * len(labels)]
            for t in h["tables"]:
                seen = set()
                for b in t["budgets"]:
                    if b["budget"] in seen:
                        continue  # the same runs as a smaller share (budgets floor at 20)
                    seen.add(b["budget"])
                    shares = "/".join(f"{x['share'] * 100:g}" for x in t["budgets"] if x["budget"] == b["budget"])
                    d = b["methods"].get(default)
                    row = [f"{t['table']}", f"{shares}% ({b['budget']})",
                           "–" if d is None or d[metric]["median"] is None else
                           f"{d[metric]['median']:.4f} [{d[metric]['q25']:.4f}, {d[metric]['q75']:.4f}]"]
                    for lab in labels:
                        m = b["methods"].get(lab)
                        if m is None or m[metric]["median"] is None:
                            row.append("not run")
                            continue
                        c = f"{m[metric]['median']:.4f}"
                        ev = m["evaluated"]
                        if ev["min"] != b["budget"] or ev["max"] != b["budget"]:
                            c += f" (n {ev['min']}-{ev['max']})"
                        if m[metric].get("p_vs_default") is not None:
                            c += f" p={m[metric]['p_vs_default']:.2g} {m[metric]['verdict']}"
                        row.append(c)
                    lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"
