"""The ``gi-energy`` command line (click).

Exit status: 0 success, 2 bad input, 1 failure at run time, 130 interrupted (SIGINT,
Ctrl-C), 143 terminated (SIGTERM); both after the checkpoint is saved.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
import traceback

import click

from .errors import GiEnergyError, Terminated


@contextlib.contextmanager
def _sigterm_interrupts():
    """While a command runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in
    the main thread, so it saves and marks the run as Ctrl-C does. Further SIGTERMs during
    that cleanup are ignored (kill -9 still stops it); the previous handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(signum, frame):
        pass

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, ignore)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _guard(fn):
    """Turn gi-energy's own errors into one stderr line and the right exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            with _sigterm_interrupts():
                return fn(*args, **kwargs)
        except GiEnergyError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"gi-energy: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Terminated:
            click.echo("gi-energy: terminated (SIGTERM)", err=True)
            ctx.exit(Terminated.exit_code)
        except KeyboardInterrupt:
            click.echo("gi-energy: interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
            if debug:
                traceback.print_exc()
            hint = "" if debug else " (run `gi-energy --debug ...` for the traceback)"
            click.echo(f"gi-energy: error: unexpected {type(exc).__name__}: {exc}{hint}", err=True)
            ctx.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="gi-energy")
def main(debug: bool) -> None:
    """Genetic improvement of neural networks for the accuracy-energy trade-off.

    PROBLEM is a path to a TOML problem file or the short name of a bundled problem
    (see `gi-energy validate --list`).
    """


@main.command()
@click.argument("problem", required=False)
@click.option("--list", "list_bundled", is_flag=True, help="List the bundled problems.")
@_guard
def validate(problem: str | None, list_bundled: bool) -> None:
    """Check a problem file and print a summary (dataset, space, grid, objectives)."""
    from gi_energy.config.parse import bundled_problems, load_problem

    if list_bundled or problem is None:
        if problem is None and not list_bundled:
            raise click.UsageError("missing PROBLEM (or --list)")
        for name, path in bundled_problems().items():
            click.echo(f"{name:16s} {path}")
        return
    from gi_energy.tasks.loader import bind

    p = bind(load_problem(problem))  # a task of the user's own is imported and checked too
    from gi_energy.report.summary import describe_problem

    click.echo(describe_problem(p))


@main.command()
@click.argument("problem", required=False)
@click.option("--out", type=click.Path(), help="Run directory (default runs/<problem>-evolve-<time>).")
@click.option("--store", type=click.Path(), help="Evaluation store (default runs/gi-energy.sqlite).")
@click.option("--seed", type=click.IntRange(min=0), help="Search seed (overrides [problem] seed).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.")
@click.option("--population", type=click.IntRange(min=2), help="Population size.")
@click.option("--generations", type=click.IntRange(min=0), help="Generations.")
@click.option("--max-evaluations", type=click.IntRange(min=1), help="Stop after this many evaluations.")
@click.option("--resume", type=click.Path(), help="Continue the run in RUN_DIR.")
@click.option("--replay", type=click.Path(), help="Look results up in a finished grid run instead of training.")
@_guard
def evolve(problem, out, store, seed, workers, population, generations, max_evaluations, resume, replay):
    """Run NSGA-II over the problem's search space.

    With --resume RUN_DIR, PROBLEM may be left out: the run's own problem is used."""
    from gi_energy.search.evolve import cli_evolve

    if problem is None and resume is None:
        raise click.UsageError("missing PROBLEM (or --resume RUN_DIR, which takes the run's own problem)")

    cli_evolve(problem=problem, out=out, store=store, seed=seed, workers=workers, population=population,
               generations=generations, max_evaluations=max_evaluations, resume=resume, replay=replay)


@main.command()
@click.argument("problem", required=False)
@click.option("--out", type=click.Path(), help="Run directory (default runs/<problem>-grid-<time>).")
@click.option("--store", type=click.Path(), help="Evaluation store (default runs/gi-energy.sqlite).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes.")
@click.option("--resume", type=click.Path(), help="Continue the grid run in RUN_DIR.")
@_guard
def grid(problem, out, store, workers, resume):
    """Evaluate every point of the problem's [grid] (the exhaustive baseline).

    With --resume RUN_DIR, PROBLEM may be left out: the run's own problem is used."""
    from gi_energy.search.grid import cli_grid

    if problem is None and resume is None:
        raise click.UsageError("missing PROBLEM (or --resume RUN_DIR, which takes the run's own problem)")

    cli_grid(problem=problem, out=out, store=store, workers=workers, resume=resume)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--reference", type=click.Path(), help="Grid run whose front is the reference.")
@click.option("--out", type=click.Path(),
              help="Directory for report.md, report.html, comparison.json and plots "
                   "(default <[output] directory>/compare-<time>).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--force", is_flag=True, help="Write over an earlier comparison (or a run directory) in --out.")
@_guard
def compare(run_dirs, reference, out, as_json, force):
    """Compare the fronts of several runs (hypervolume, IGD+, epsilon, cost)."""
    from gi_energy.report.compare import cli_compare

    cli_compare(run_dirs=list(run_dirs), reference=reference, out=out, as_json=as_json, force=force)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--reference", type=click.Path(), help="Grid run whose front is the reference.")
@click.option("--out", type=click.Path(),
              help="The HTML file (default RUN_DIR/report.html for one run, else "
                   "<[output] directory>/report-<time>.html).")
@_guard
def report(run_dirs, reference, out):
    """Write one self-contained report.html: interactive fronts, hypervolume, the front table."""
    from gi_energy.report.report_command import cli_report

    cli_report(run_dirs=list(run_dirs), reference=reference, out=out)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the backends as JSON.")
@click.option("--probe", type=click.FloatRange(min=0.0, min_open=True),
              help='Meter a busy loop of SECONDS with the auto meter. With --json the output becomes '
                   '{"backends": [...], "probe": {...}}.')
@_guard
def meters(as_json, probe):
    """List the energy meters, available or not, and why."""
    from gi_energy.meters.report import cli_meters

    cli_meters(as_json=as_json, probe_s=probe)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
