"""``gi-energy compare``: fronts of several runs side by side, against a reference front.

All runs are normalised once, with bounds from the union of every run's ok points and the
reference, and measured against one fixed reference point (1.1 in normalised space), so
the indicators of different runs are on one scale. Runs of one method (several seeds) are
summarised as median and interquartile range, with a Wilcoxon rank-sum test between
methods (:mod:`.stats`). The headline follows the seed papers: the largest inference-energy saving
available for at most one accuracy point lost relative to the most accurate model; where
accuracy is not an objective, one point of the problem's one maximised quality objective
(none or several: no headline, and comparison.json's ``headline`` says why).

A run's energy spent is unknown (None) while a reading it sums is missing; its known part
(``energy_known_j``) and the count of missing readings (``energy_unknown``) are beside it.

Only feasible points count: the runs' [constraints] (run.json settings.constraints) are
applied with the search's own test (``pareto.constraint_violation == 0``) before anything
is computed, as in front.csv and the search. Energy is what each run counted as spent by
itself (evaluations.csv's ``spent`` column, from its journal; older files: not cached).

Runs are read column-wise (:mod:`.columns`: one array per figure, not one object per
evaluation), so 100,000 evaluations per run take seconds. A run's hypervolume trajectory
is reported at up to 1,000 evaluations (:func:`.figures.checkpoints`; every one for a
shorter run); the evaluations and joules to reach each threshold are exact.

The per-run figures are :mod:`.figures`; report.md is :mod:`.markdown`; fronts.png and
hv_history.png are :func:`.plots.plot_comparison`; report.html is :mod:`.html`; the result
is a :class:`.comparison.Comparison` (a dict, as comparison.json, with tables and figures).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gi_energy.errors import GiEnergyError, UsageError
from gi_energy.pareto import nondominated
from gi_energy.runs.files import atomic_open, now_iso, timestamped_dir, write_json_atomic

from .columns import RunColumns
from .comparison import Comparison
from .figures import (
    ACCURACY_TOLERANCE,
    REFERENCE_POINT,
    THRESHOLDS,
    Run,
    feasible_points,
    headline_metric,
    load_run,
    normalised_span,
    objectives_of,
    run_figures,
)
from .indicators import Normaliser, hypervolume
from .markdown import render_report
from .plots import plot_comparison
from .stats import rank_sum_tests, summarise_groups

# The per-run figures each method is summarised on (median and IQR over its runs).
SUMMARY_METRICS = ("hv_ratio", "hv_ratio_front", "igd_plus", "epsilon_additive", "coverage", "evaluations", "energy_spent_j",
                   *(f"evaluations_to_{round(q * 100)}" for q in THRESHOLDS),
                   *(f"energy_j_to_{round(q * 100)}" for q in THRESHOLDS))


# ---------------------------------------------------------------- the comparison


def _common_constraints(runs: Sequence[Run]) -> dict[str, float]:
    """The constraints every run was held to; UsageError if two runs recorded different ones."""
    found = [(r, r.constraints) for r in runs if r.constraints is not None]
    distinct = {json.dumps(c, sort_keys=True) for _, c in found}
    if len(distinct) > 1:
        a, b = found[0], next(f for f in found if f[1] != found[0][1])
        raise UsageError(f"{b[0].path}: constraints {b[1]} differ from {a[0].path}'s {a[1]}; fronts under "
                         "different constraints cannot be compared")
    return dict(found[0][1]) if found else {}


def compare_runs(run_dirs: Sequence, reference=None, labels: Mapping[str, str] | None = None) -> dict:
    """Compare runs against a reference front; returns what comparison.json holds.

    ``reference`` is a grid run whose front is the reference; without one the reference
    front is the non-dominated union of every run's points. ``labels`` maps a run path
    to a method name (default: run.json ``label``, else the command).
    """
    return compare_loaded(run_dirs, reference, labels)[0]


def compare_loaded(run_dirs: Sequence, reference=None,
                   labels: Mapping[str, str] | None = None) -> tuple[dict, dict[Path, RunColumns]]:
    """:func:`compare_runs`, and each run's columns as it read them (by resolved path), so
    that what is written next (report.html) need not read the runs again."""
    labels = {str(Path(k)): v for k, v in (labels or {}).items()}
    runs: list[Run] = []
    seen_paths = set()
    ref_run = None
    if reference is not None:
        ref_run = load_run(reference, labels.get(str(Path(reference))))
        ref_run.is_reference = True
        seen_paths.add(Path(reference).resolve())
    for p in run_dirs:
        if Path(p).resolve() in seen_paths:
            continue
        seen_paths.add(Path(p).resolve())
        runs.append(load_run(p, labels.get(str(Path(p)))))
    if not runs and ref_run is None:
        raise UsageError("no run directories to compare")
    everything = ([ref_run] if ref_run else []) + runs
    objectives = objectives_of(everything[0])
    fingerprint = everything[0].info.get("fingerprint")
    for r in everything[1:]:
        if objectives_of(r) != objectives:
            raise UsageError(f"{r.path}: objectives {list(objectives_of(r))} differ from {everything[0].path}'s "
                             f"{list(objectives)}; fronts on different objectives cannot be compared")
        if fingerprint and r.info.get("fingerprint") and r.info["fingerprint"] != fingerprint:
            raise UsageError(f"{r.path}: a different problem setup (fingerprint {r.info['fingerprint']}, "
                             f"{everything[0].path} has {fingerprint})")

    constraints = _common_constraints(everything)
    point_sets = [feasible_points(r, objectives, constraints) for r in everything]
    if not any(len(p) for p in point_sets):
        raise UsageError("none of the runs has an ok evaluation with every objective"
                         + (" that meets the constraints" if constraints else "") + "; nothing to compare")
    norm = Normaliser.from_points(*point_sets)
    ref_point = [REFERENCE_POINT] * len(objectives)
    if ref_run is not None:
        base = norm(point_sets[0]) if len(point_sets[0]) else None
        if base is None:
            raise UsageError(f"{ref_run.path}: the reference run has no ok evaluations")
        # Any run can be the reference (a long evolve where no grid was run): say which it is.
        ref_source = f"front of the {ref_run.info.get('command', 'grid')} run {ref_run.path}"
    else:
        base = norm(np.vstack([p for p in point_sets if len(p)]))
        ref_source = "non-dominated union of every run's points (no --reference given)"
    ref_front_n = base[nondominated(base)]
    ref_front_n = np.unique(ref_front_n, axis=0)
    hv_ref = hypervolume(ref_front_n, ref_point)
    # A second scale: the reference front's own ideal and nadir points. With the union's
    # bounds, a front that hugs one corner of the evaluated cloud makes almost any decent
    # point score near 1; against the front's own extent only the trade-off region counts.
    # Reported beside the union figure as hv_ratio_front. It is unbounded above: a point
    # beyond the reference front's ideal gets negative normalised coordinates and adds
    # volume the reference front does not have, so > 1 means the run found points beyond
    # the reference front (possible when the reference is not exhaustive).
    ref_front_raw = ref_front_n * normalised_span(norm) + np.asarray(norm.low)
    front_norm = Normaliser(tuple(ref_front_raw.min(axis=0).tolist()), tuple(ref_front_raw.max(axis=0).tolist()))
    hv_ref_front = hypervolume(front_norm(ref_front_raw), ref_point)

    results = []
    for r, pts in zip(everything, point_sets):
        r.result = run_figures(r, pts, objectives, norm, ref_point, ref_front_n, hv_ref, (front_norm, hv_ref_front),
                                constraints)
        results.append(r.result)
    searched = [res for res in results if not res["reference"]]
    reference_info = {
        "source": ref_source, "path": None if ref_run is None else str(ref_run.path),
        "front_size": int(len(ref_front_n)), "hypervolume": hv_ref,
        "front_normalised": ref_front_n.tolist(),
        "front": ref_front_raw.tolist(),
        "front_scale": {**front_norm.to_dict(), "hypervolume": hv_ref_front,
                        "note": "hv_ratio_front: normalised by the reference front's ideal and nadir points; "
                                "unbounded above (> 1: the run found points beyond the reference front)"},
    }
    if ref_run is not None:
        reference_info.update({k: ref_run.result[k] for k in ("command", "evaluations", "trained", "energy_spent_j",
                                                              "energy_known_j", "energy_unknown",
                                                              "measured", "headline")})
    metric, why = headline_metric(objectives)
    cmp = {
        "created_at": now_iso(),
        "objectives": objectives,
        "constraints": constraints,
        "normalisation": {**norm.to_dict(), "note": "minimisation vectors (maximised objectives negated), "
                          "bounds from the union of every run's ok points"},
        "reference_point": ref_point,
        "reference": reference_info,
        # what the headline trades for energy; None (and why) where there is no one quality
        "headline": {"metric": metric, "tolerance": ACCURACY_TOLERANCE, **({"note": why} if why else {})},
        "runs": results,
        "groups": summarise_groups(searched, SUMMARY_METRICS),
        "tests": rank_sum_tests(searched) + rank_sum_tests(searched, "hv_ratio_front"),
    }
    return cmp, {r.path.resolve(): r.columns for r in everything}


# ---------------------------------------------------------------- outputs


def _clean(obj):
    """JSON has no infinity: an unreachable value is written as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def check_out(out: Path, force: bool, force_hint: str = "force=True") -> None:
    """Refuse (UsageError) to write a comparison into a run directory or over an earlier
    comparison unless ``force``; ``force_hint`` names the switch (the CLI says --force)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory: a comparison is a folder of files; choose "
                         "another output directory")
    if force or not out.exists():
        return
    if (out / "run.json").is_file():
        raise UsageError(f"{out} is a run directory; a comparison would write over its files: choose another "
                         f"output directory (or pass {force_hint})")
    if (out / "comparison.json").is_file():
        raise UsageError(f"{out} holds an earlier comparison: choose another output directory, or pass "
                         f"{force_hint} to write over it")


def write_comparison(cmp: dict, out: Path, *, force: bool = False, html: bool = True,
                     columns: Mapping[Path, RunColumns] | None = None) -> list[Path]:
    """report.md, comparison.json, fronts.png and hv_history.png under ``out`` (and
    report.html where ``html`` and plotly is installed); returns the files written.
    ``columns``: the runs' columns :func:`compare_loaded` read, by resolved path."""
    out = Path(out)
    check_out(out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc}") from None
    written = plot_comparison(cmp, out)
    with atomic_open(out / "report.md") as fh:  # a kill leaves the old file or the new one
        fh.write(render_report(cmp))
    write_json_atomic(out / "comparison.json", _clean(cmp))
    written += [out / "report.md", out / "comparison.json"]
    if html:
        from .html import REPORT_HTML, plotly_available, write_html_report

        if plotly_available():
            from .run import RunResult

            runs = [RunResult(r["path"], columns=(columns or {}).get(Path(r["path"]).resolve()))
                    for r in cmp["runs"]]
            written.append(write_html_report(runs, out / REPORT_HTML, _clean(cmp)))
    return written


def compare(run_dirs: Sequence, reference=None, out=None, labels: Mapping[str, str] | None = None, *,
            force: bool = False, html: bool = True) -> Comparison:
    """Library entry point: compare, write the outputs under ``out`` (if given: never into
    a run directory or over an earlier comparison unless ``force``), return the
    :class:`Comparison` (a dict of what comparison.json holds, with tables and figures)."""
    cmp, columns = compare_loaded(run_dirs, reference, labels)
    if out is not None:
        write_comparison(cmp, Path(out), force=force, html=html, columns=columns)
    return Comparison(_clean(cmp), out=out)


def output_root(run_dir) -> Path:
    """Where a comparison of ``run_dir`` goes by default: its problem's [output] directory."""
    from .run import RunResult

    try:
        return Path(RunResult(run_dir).problem.output.directory)
    except GiEnergyError:
        return Path("runs")


def cli_compare(run_dirs, reference=None, out=None, as_json=False, force=False) -> dict:
    """The ``gi-energy compare`` command."""
    import click

    from .html import MISSING_PLOTLY, plotly_available

    if out is not None:
        check_out(Path(out), force, "--force")
    cmp, columns = compare_loaded(run_dirs, reference)
    out = Path(out) if out is not None else timestamped_dir(output_root(reference or run_dirs[0]), "compare")
    written = write_comparison(cmp, out, force=True, columns=columns)
    cmp = Comparison(_clean(cmp), out=out)
    if as_json:
        click.echo(json.dumps(cmp, indent=2))
    else:
        click.echo(render_report(cmp))
    names = ", ".join(p.name for p in written)
    click.echo(f"gi-energy compare: wrote {out}/ ({names})", err=as_json)
    if not plotly_available():
        click.echo(f"gi-energy: note: no report.html: {MISSING_PLOTLY}", err=True)
    return cmp
