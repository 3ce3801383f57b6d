"""``gi-energy report RUN_DIR... [--reference GRID_RUN] [--out FILE]``: report.html.

One run without a reference: its front, its own hypervolume history and its front table,
written into the run directory. Several runs, or a reference: the same for each, with the
comparison's hypervolume ratios (as ``gi-energy compare`` computes them, nothing else
written), under the first run's ``[output] directory``.
"""

from __future__ import annotations

from pathlib import Path

from gi_energy.errors import GiEnergyError, UsageError
from gi_energy.runs.files import timestamped_dir

from .compare import _clean, compare_loaded, output_root
from .html import MISSING_PLOTLY, REPORT_HTML, plotly_available, write_html_report
from .run import RunResult


def default_report_path(run_dirs, reference=None) -> Path:
    """RUN_DIR/report.html for one run alone; else ``<[output] directory>/report-<time>.html``."""
    if reference is None and len(run_dirs) == 1:
        return Path(run_dirs[0]) / REPORT_HTML
    folder = timestamped_dir(output_root(reference or run_dirs[0]), "report")
    return folder.with_name(folder.name + ".html")


def write_report(run_dirs, reference=None, out=None) -> Path:
    """Write report.html for ``run_dirs`` (compared against ``reference`` when given, or
    with each other when there are several) and return its path."""
    if not plotly_available():
        raise GiEnergyError(MISSING_PLOTLY)
    run_dirs = [Path(p) for p in run_dirs]
    if not run_dirs:
        raise UsageError("no run directories to report on")
    paths = ([Path(reference)] if reference is not None else []) + \
        [p for p in run_dirs if reference is None or p.resolve() != Path(reference).resolve()]
    comparison, columns = None, {}
    if reference is not None or len(run_dirs) > 1:
        cmp, columns = compare_loaded(run_dirs, reference)
        comparison = _clean(cmp)
    runs = [RunResult(p, columns=columns.get(p.resolve())) for p in paths]
    path = Path(out) if out is not None else default_report_path(run_dirs, reference)
    if path.is_dir():
        path = path / REPORT_HTML
    _check_not_another_run(path, paths)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {path.parent}: {exc}") from None
    return write_html_report(runs, path, comparison)


def _check_not_another_run(path: Path, reported) -> None:
    """Refuse (UsageError) to put the page into a run directory it does not report on: it
    would read as that run's report.html."""
    folder = path.parent
    if (folder / "run.json").is_file() and folder.resolve() not in {Path(p).resolve() for p in reported}:
        raise UsageError(f"{folder} is another run's directory; a report.html there would read as its report: "
                         "choose another --out")


def cli_report(run_dirs, reference=None, out=None) -> Path:
    """The ``gi-energy report`` command: write the page, say where."""
    import click

    path = write_report(run_dirs, reference, out)
    click.echo(f"gi-energy report: wrote {path} (self-contained: open it in any browser, offline)")
    return path
