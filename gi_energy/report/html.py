"""report.html: one self-contained page of one or more runs (and their comparison), for
any browser, offline.

The fronts and the hypervolume histories are plotly figures (plotly.js is embedded inline:
the page loads nothing from the network); hovering a point shows its configuration, its
metrics and where its energy came from. The front is also a table that sorts by any
column when its header is clicked. Every estimated energy is labelled "estimated" (axes,
table headers, cells), and the page's data is embedded as JSON
(``<script id="gi-energy-data">``) for anyone who wants the numbers back.

plotly is the optional extra ``report`` (``pip install 'gi-energy[report]'``).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from gi_energy.errors import GiEnergyError
from gi_energy.runs.files import atomic_open, now_iso
from gi_energy.runs.tables import genome_columns

from .figures import THRESHOLDS
from .joules import energy_text
from .markdown import run_names
from .plots import AXIS_NAMES, is_energy, metric_label
from .progress import energy_source
from .run import RunResult

REPORT_HTML = "report.html"
MISSING_PLOTLY = ("report.html needs plotly, which is not installed: pip install 'gi-energy[report]' "
                  "(or pip install plotly)")

# Shown for every front point beside its objectives, when the run has them.
EXTRA_METRICS = ("test_accuracy", "train_energy_j", "inference_energy_j_per_1k", "params")
# Evaluated points drawn per run beside its front (the front is always drawn whole): a run
# of 100,000 evaluations made a page of over 100 MB that no browser opens.
MAX_CLOUD_POINTS = 5_000


def thinned(points: Sequence, limit: int | None = None) -> tuple[list, int]:
    """(at most ``limit`` (default MAX_CLOUD_POINTS) of ``points``: every stride-th, from
    the first, in their order; the stride, 1 when all are kept)."""
    limit = MAX_CLOUD_POINTS if limit is None else limit
    n = len(points)
    if n <= limit:
        return list(points), 1
    stride = math.ceil(n / limit)
    return list(points[::stride]), stride


def plotly_available() -> bool:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True


def _go():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise GiEnergyError(MISSING_PLOTLY) from None
    return go, make_subplots


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _kind(runs: Sequence[RunResult]) -> str | None:
    kinds = [r.energy_kind for r in runs if r.energy_kind is not None]
    if not kinds:
        return None
    return kinds[0] if len(set(kinds)) == 1 else "partly estimated"


def _metrics(run: RunResult) -> list[str]:
    names = list(run.objectives)
    return names + [m for m in EXTRA_METRICS if m not in names]


def display_names(runs: Sequence[RunResult]) -> dict[Path, str]:
    """Each run's label, with its name (:func:`run_names`) where several runs share a label."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    names = run_names([str(r.path) for r in runs])
    return {r.path: r.label if counts[r.label] == 1 else f"{r.label} · {names[str(r.path)]}" for r in runs}


def _hover(run: RunResult, o, name: str) -> str:
    lines = [f"<b>{html.escape(name)}</b>", html.escape(o.key)]
    for name in _metrics(run):
        v = o.metric(name)
        est = " (estimated)" if is_energy(name) and v is not None and not o.measured else ""
        lines.append(f"{html.escape(AXIS_NAMES.get(name, name))}: {_fmt(v)}{est}")
    lines.append(f"energy source: {html.escape(energy_source(o))}")
    return "<br>".join(lines)


def _wide(values) -> bool:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return bool(v) and min(v) > 0 and max(v) / min(v) > 100


def cloud_of(run: RunResult) -> tuple[list, int]:
    """The run's evaluated points drawn beside its front (the ok outcomes off the front,
    :func:`thinned`) and the stride; only these and the front's outcomes are built, in
    one read of evaluations.csv (a run of 100,000 evaluations is read column-wise)."""
    front_at = run.front_positions()
    keys = run.outcome_keys()
    positions, stride = thinned(run.ok_positions(exclude={keys[p] for p in front_at} if front_at else
                                                 {o.key for o in run.front}))
    return run.outcomes_at(front_at + positions)[len(front_at):], stride


def fronts_plot(runs: Sequence[RunResult], kind: str | None, clouds: Mapping[Path, tuple[list, int]] | None = None):
    """The first objective against each other one: every run's front (and its evaluated
    points, shown at once for a single run, one legend click away for several);
    ``clouds``: each run's :func:`cloud_of`, where the caller has them."""
    go, make_subplots = _go()
    names = list(runs[0].objectives)
    pairs = [(names[0], n) for n in names[1:]]
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    shown = display_names(runs)
    drawn = []
    for i, run in enumerate(runs):
        label = shown[run.path]
        colour = "#000000" if run.command == "grid" and len(runs) > 1 else palette[i % len(palette)]
        # Only the outcomes drawn are built: a run of 100,000 evaluations is read column-wise.
        rest, stride = clouds[run.path] if clouds is not None else cloud_of(run)
        drawn += rest + run.front
        cloud = f"{label}: evaluated" if stride == 1 else f"{label}: evaluated (every {stride:,}th shown)"
        hover = {id(o): _hover(run, o, label) for o in rest + run.front}  # once per point, not per panel
        for col, (yn, xn) in enumerate(pairs, start=1):
            legend = col == 1
            fig.add_trace(go.Scatter(
                x=[o.metric(xn) for o in rest], y=[o.metric(yn) for o in rest], mode="markers",
                name=cloud, legendgroup=f"{i}-ev", showlegend=legend,
                visible=True if len(runs) == 1 else "legendonly",
                marker={"size": 5, "color": colour, "opacity": 0.25},
                hovertext=[hover[id(o)] for o in rest], hoverinfo="text"), row=1, col=col)
            front = sorted(run.front, key=lambda o: o.metric(xn) or 0.0)
            fig.add_trace(go.Scatter(
                x=[o.metric(xn) for o in front], y=[o.metric(yn) for o in front],
                mode="lines+markers" if len(names) == 2 else "markers",
                name=f"{label}: front ({len(front)})", legendgroup=f"{i}-front", showlegend=legend,
                marker={"size": 8, "color": colour, "symbol": "square" if run.command == "grid" else "circle"},
                line={"width": 1}, hovertext=[hover[id(o)] for o in front], hoverinfo="text"), row=1, col=col)
    for col, (yn, xn) in enumerate(pairs, start=1):
        xs = [o.metric(xn) for o in drawn]  # the axis fits what is drawn
        fig.update_xaxes(title_text=metric_label(xn, kind), type="log" if _wide(xs) else "linear", row=1, col=col)
        fig.update_yaxes(title_text=metric_label(yn, kind), row=1, col=col)
    fig.update_layout(title="Fronts (hover a point for its configuration, metrics and energy source)",
                      height=520, legend={"orientation": "h", "y": -0.25}, margin={"t": 60})
    return fig


def hv_plot(runs: Sequence[RunResult], comparison: Mapping | None, kind: str | None):
    """With a comparison: each run's HV ratio (over the reference front's) after every
    evaluation, against evaluations and joules; without: each run's own history.csv
    hypervolume relative to its first generation or batch."""
    go, make_subplots = _go()
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("against evaluations", "against energy spent"))
    if comparison is not None:
        y_title = "hypervolume / reference front's"
        names = run_names([r["path"] for r in comparison["runs"]])
        for r in comparison["runs"]:
            t = r["trajectory"]
            name = ("reference (grid order)" if r["reference"] else r["label"]) + f" · {names[r['path']]}"
            style = {"color": "black", "width": 2} if r["reference"] else {"width": 1}
            fig.add_trace(go.Scatter(x=t["evaluations"], y=t["hv_ratio"], mode="lines", name=name, line=style,
                                     legendgroup=name), row=1, col=1)
            fig.add_trace(go.Scatter(x=[j if j and j > 0 else None for j in t["energy_j"]], y=t["hv_ratio"],
                                     mode="lines", name=name, line=style, legendgroup=name, showlegend=False),
                          row=1, col=2)
        for q in THRESHOLDS:
            for col in (1, 2):
                fig.add_hline(y=q, line={"dash": "dot", "color": "grey", "width": 1}, row=1, col=col,
                              annotation_text=f"{q:.0%}", annotation_position="bottom right",
                              annotation_font_size=9)
        fig.update_xaxes(type="log", row=1, col=2)
    else:
        y_title = "hypervolume / its first generation's or batch's (each run's own reference point)"
        shown = display_names(runs)
        for run in runs:
            rows = [h for h in run.history if h.get("hypervolume")]
            base = next((float(h["hypervolume"]) for h in rows if float(h["hypervolume"]) > 0), None)
            if base is None:
                continue
            ratio = [float(h["hypervolume"]) / base for h in rows]
            fig.add_trace(go.Scatter(x=[h.get("evaluations") for h in rows], y=ratio, mode="lines+markers",
                                     name=shown[run.path], legendgroup=str(run.path)), row=1, col=1)
            fig.add_trace(go.Scatter(x=[h.get("energy_spent_j") for h in rows], y=ratio, mode="lines+markers",
                                     name=shown[run.path], legendgroup=str(run.path), showlegend=False),
                          row=1, col=2)
    fig.update_xaxes(title_text="evaluations", row=1, col=1)
    fig.update_xaxes(title_text=metric_label("energy_spent_j", kind), row=1, col=2)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_layout(title="Hypervolume over the search", height=460, legend={"orientation": "h", "y": -0.3})
    return fig


def front_rows(runs: Sequence[RunResult]) -> tuple[list[str], list[dict]]:
    """(columns, rows) of every run's front: run, metrics, configuration, energy source."""
    metrics = list(dict.fromkeys(m for r in runs for m in _metrics(r)))
    config: dict[str, None] = {}
    rows = []
    shown = display_names(runs)
    for run in runs:
        for o in run.front:
            cols = genome_columns(o.genome)
            config.update(dict.fromkeys(cols))
            rows.append({"run": shown[run.path], "run_dir": run.path.name, **{m: o.metric(m) for m in metrics},
                         **cols, "energy source": energy_source(o), "measured": o.measured, "key": o.key})
    return ["run", "run_dir", *metrics, *config, "energy source", "measured"], rows


def _table(columns: Sequence[str], rows: Sequence[Mapping], headers: Mapping[str, str], table_id: str) -> str:
    head = "".join(f'<th onclick="sortTable(\'{table_id}\', {i})" title="click to sort">'
                   f"{html.escape(headers.get(c, c))}</th>" for i, c in enumerate(columns))
    body = []
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            text = html.escape(_fmt(v))
            if is_energy(c) and v is not None and row.get("measured") is False:
                text += ' <span class="est">estimated</span>'
            sort = "" if not isinstance(v, int | float) or isinstance(v, bool) else f' data-v="{v!r}"'
            cells.append(f"<td{sort}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _energy_cell(spent, known, unknown):
    """The spent joules as a number (the table sorts by it), or in words where readings
    are missing: never the known part alone as if it were the total."""
    return spent if not unknown else energy_text(known, unknown, ".4g")


def _runs_table(runs: Sequence[RunResult]) -> str:
    cols = ["run", "command", "status", "evaluations", "front", "energy spent [J]", "energy", "meter", "directory"]
    rows = []
    for r in runs:
        s = r.summary()
        rows.append({"run": r.label, "command": r.command, "status": r.status, "evaluations": s["evaluations"],
                     "front": s["front_size"],
                     "energy spent [J]": _energy_cell(s["energy_spent_j"], s["energy_known_j"], s["energy_unknown"]),
                     "energy": s["energy"] or "no reading", "meter": s["meter"] or "–", "directory": str(r.path)})
    return _table(cols, rows, {}, "runs")


def _comparison_table(cmp: Mapping, kind: str | None) -> str:
    cols = ["run", "method", "evaluations", "energy", "front", "hv_ratio", "hv_ratio_front", "igd_plus",
            "epsilon_additive", "coverage", "evaluations_to_95"]
    headers = {"energy": f"energy spent [J] ({kind or 'no reading'})", "hv_ratio": "HV ratio",
               "hv_ratio_front": "HV ratio (front scale)", "igd_plus": "IGD+", "epsilon_additive": "additive ε",
               "coverage": "ref. front covered", "evaluations_to_95": "evaluations to 95 % HV"}
    names = run_names([r["path"] for r in cmp["runs"]])
    rows = [{"run": names[r["path"]] + (" (reference)" if r["reference"] else ""), "method": r["label"],
             "evaluations": r["evaluations"], "front": r["front_size"],
             "energy": _energy_cell(r["energy_spent_j"], r.get("energy_known_j"), r.get("energy_unknown")),
             "hv_ratio": r["hv_ratio"], "hv_ratio_front": r["hv_ratio_front"], "igd_plus": r["igd_plus"],
             "epsilon_additive": r["epsilon_additive"], "coverage": r["coverage"],
             "evaluations_to_95": r["evaluations_to_95"]} for r in cmp["runs"]]
    return _table(cols, rows, headers, "comparison")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th:hover { background: #e0e8f0; }
.est { color: #a35200; font-size: 0.8em; font-weight: 600; }
.banner { border: 2px solid #d08000; background: #fff6e5; padding: 0.6em 1em; margin: 1em 0; }
.scroll { overflow-x: auto; }
.note { color: #555; font-size: 0.9em; }
"""

_SORT_JS = """
function sortTable(id, col) {
  const table = document.getElementById(id), body = table.tBodies[0];
  const asc = table.dataset.col == col ? table.dataset.dir != "asc" : true;
  table.dataset.col = col; table.dataset.dir = asc ? "asc" : "desc";
  const key = td => td.dataset.v !== undefined ? parseFloat(td.dataset.v) : td.textContent;
  Array.from(body.rows).sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    const c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
    return asc ? c : -c;
  }).forEach(r => body.appendChild(r));
}
"""


def _json_script(data) -> str:
    text = json.dumps(data, default=str, allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="gi-energy-data">{text}</script>'


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def render_html(runs: Sequence[RunResult], comparison: Mapping | None = None) -> str:
    """The page as a string (see the module docstring)."""
    from plotly.offline import get_plotlyjs

    if not runs:
        raise GiEnergyError("report.html: no runs to report on")
    kind = _kind(runs)
    clouds = {run.path: cloud_of(run) for run in runs}  # first: the front's outcomes come with them
    columns, rows = front_rows(runs)
    headers = {m: metric_label(m, kind) if is_energy(m) else AXIS_NAMES.get(m, m) for m in columns}
    config = {"displaylogo": False, "responsive": True}
    figs = [f.to_html(full_html=False, include_plotlyjs=False, config=config)
            for f in (fronts_plot(runs, kind, clouds), hv_plot(runs, comparison, kind))]
    meters = sorted({r.meter for r in runs if r.meter})
    banner = ""
    if kind != "measured":
        banner = (f'<div class="banner"><b>Energies here are {kind or "not available"}</b>'
                  f"{', not measured' if kind else ''}: "
                  f"{html.escape('; '.join(meters) or 'no hardware meter recorded')}. Every estimated "
                  "figure is labelled <span class=\"est\">estimated</span>.</div>")
    title = "gi-energy report: " + ", ".join(dict.fromkeys(r.label for r in runs))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>",
        f"<script>{get_plotlyjs()}</script><script>{_SORT_JS}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Written {now_iso()} from {len(runs)} run director{"y" if len(runs) == 1 else "ies"}; '
        "objectives " + html.escape(", ".join(f"{k} ({v})" for k, v in runs[0].objectives.items())) + ".</p>",
        banner, "<h2>Runs</h2>", '<div class="scroll">', _runs_table(runs), "</div>",
        "<h2>Fronts</h2>", figs[0], "<h2>Hypervolume</h2>", figs[1],
    ]
    if comparison is not None:
        parts += ["<h2>Comparison</h2>",
                  f'<p class="note">Reference front: {html.escape(comparison["reference"]["source"])}. '
                  "HV ratio: hypervolume over the reference front's, both normalised by the bounds of every "
                  "evaluated point; above 1 means a run found points beyond a non-exhaustive reference.</p>",
                  '<div class="scroll">', _comparison_table(comparison, kind), "</div>"]
    parts += ["<h2>The front, point by point</h2>",
              '<p class="note">Click a column header to sort by it.</p>',
              '<div class="scroll">', _table(columns, rows, headers, "front"), "</div>",
              _json_script(_finite({"energy": kind, "runs": [dict(r.summary()) for r in runs], "front": rows,
                                    "comparison": None if comparison is None else dict(comparison)})),
              "</body></html>"]
    return "\n".join(parts)


def write_html_report(runs: Sequence[RunResult | str | Path], path: Path, comparison: Mapping | None = None) -> Path:
    """Write report.html to ``path`` (atomically) and return it; GiEnergyError naming the
    extra to install when plotly is missing."""
    _go()
    runs = [r if isinstance(r, RunResult) else RunResult(r) for r in runs]
    text = render_html(runs, comparison)
    path = Path(path)
    with atomic_open(path) as fh:
        fh.write(text)
    return path
