"""The ``gi-energy`` command line (click).

Exit status: 0 success, 2 bad input, 1 failure at run time, 130 interrupted (SIGINT,
Ctrl-C), 143 terminated (SIGTERM); both after the checkpoint is saved.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import signal
import sys
import threading
import traceback

import click

from .errors import GiEnergyError, Terminated


class _PathArg(click.Path):
    """A path on the command line: never empty (an unset shell variable in ``--out $DIR``
    would otherwise put a run, or a comparison, in the working directory itself)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path (is a shell variable unset?)", param, ctx)
        return super().convert(value, param, ctx)


PATH = _PathArg()


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
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
                # Only a path given on the command line or in a problem file (or a problem
                # name, which names run directories) can be too long: bad input.
                click.echo(f"gi-energy: error: {_too_long(exc)}", err=True)
                ctx.exit(2)
            hint = "" if debug else " (run `gi-energy --debug ...` for the traceback)"
            click.echo(f"gi-energy: error: unexpected {type(exc).__name__}: {exc}{hint}", err=True)
            ctx.exit(1)

    return wrapper


def _too_long(exc: OSError) -> str:
    """The one line for a path the file system refuses as too long, the path shortened."""
    name = str(exc.filename) if exc.filename is not None else ""
    if len(name) > 120:
        name = f"{name[:60]}...{name[-40:]} ({len(name)} characters)"
    return (f"path too long for the file system: {name} (a name of a folder or file may have at most "
            "255 bytes, a whole path 4096): choose a shorter --out, --store or problem name")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="gi-energy")
def main(debug: bool) -> None:
    """Genetic improvement of neural networks for the accuracy-energy trade-off.

    PROBLEM is a path to a TOML problem file or the short name of a bundled problem
    (see `gi-energy validate --list`).
    """


@main.command()
@click.argument("problem", required=False, type=PATH)
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
@click.argument("problem", required=False, type=PATH)
@click.option("--out", type=PATH, metavar="DIR",
              help="The run directory (default <[output] directory>/<problem>-evolve-<time>; runs/ unless the "
                   "problem file sets it).")
@click.option("--store", type=PATH, metavar="PATH",
              help="Evaluation store (default [output] store, else runs/gi-energy.sqlite).")
@click.option("--seed", type=click.IntRange(min=0), metavar="N", help="Search seed (overrides [problem] seed).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N", help="Worker processes.")
@click.option("--population", type=click.IntRange(min=2), metavar="N", help="Population size.")
@click.option("--generations", type=click.IntRange(min=0), metavar="N",
              help="Generations after the initial population.")
@click.option("--max-evaluations", type=click.IntRange(min=1), metavar="N",
              help="Stop after this many new evaluations.")
@click.option("--resume", type=PATH, metavar="RUN_DIR", help="Continue the evolve run in RUN_DIR, in place.")
@click.option("--replay", type=PATH, metavar="GRID_RUN_DIR",
              help="Look results up in a finished grid run instead of training.")
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
@click.argument("problem", required=False, type=PATH)
@click.option("--out", type=PATH, metavar="DIR",
              help="The run directory (default <[output] directory>/<problem>-grid-<time>; runs/ unless the "
                   "problem file sets it).")
@click.option("--store", type=PATH, metavar="PATH",
              help="Evaluation store (default [output] store, else runs/gi-energy.sqlite).")
@click.option("--workers", type=click.IntRange(min=1), metavar="N", help="Worker processes.")
@click.option("--resume", type=PATH, metavar="RUN_DIR", help="Continue the grid run in RUN_DIR, in place.")
@_guard
def grid(problem, out, store, workers, resume):
    """Evaluate every point of the problem's [grid] (the exhaustive baseline).

    With --resume RUN_DIR, PROBLEM may be left out: the run's own problem is used."""
    from gi_energy.search.grid import cli_grid

    if problem is None and resume is None:
        raise click.UsageError("missing PROBLEM (or --resume RUN_DIR, which takes the run's own problem)")

    cli_grid(problem=problem, out=out, store=store, workers=workers, resume=resume)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=PATH, metavar="RUN_DIR...")
@click.option("--reference", type=PATH, metavar="GRID_RUN_DIR", help="Grid run whose front is the reference.")
@click.option("--out", type=PATH, metavar="DIR",
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
@click.argument("run_dirs", nargs=-1, required=True, type=PATH, metavar="RUN_DIR...")
@click.option("--reference", type=PATH, metavar="GRID_RUN_DIR", help="Grid run whose front is the reference.")
@click.option("--out", type=PATH, metavar="FILE",
              help="The HTML file (default RUN_DIR/report.html for one run, else "
                   "<[output] directory>/report-<time>.html).")
@_guard
def report(run_dirs, reference, out):
    """Write one self-contained report.html: interactive fronts, hypervolume, the front table."""
    from gi_energy.report.report_command import cli_report

    cli_report(run_dirs=list(run_dirs), reference=reference, out=out)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the backends as JSON.")
@click.option("--probe", type=click.FloatRange(min=0.0, min_open=True), metavar="SECONDS",
              help='Meter a busy loop of SECONDS with the auto meter. With --json the output becomes '
                   '{"backends": [...], "probe": {...}}.')
@_guard
def meters(as_json, probe):
    """List the energy meters, available or not, and why."""
    from gi_energy.meters.report import cli_meters

    cli_meters(as_json=as_json, probe_s=probe)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
