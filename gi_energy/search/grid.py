"""``gi-energy grid``: the exhaustive baseline, every point of the problem's [grid].

It runs on the same evaluator, workers and store as evolve, so the two are compared on
equal terms and a configuration both visit is trained once. The grid is evaluated in
batches so that progress, history.csv and the run directory advance batch by batch; a
killed grid resumes from its run directory and the store, losing no finished evaluation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.identity import run_identity
from gi_energy.config.problem import Problem
from gi_energy.errors import ProblemError, RunInterrupted, UsageError
from gi_energy.evaluation.store import default_store_path, resume_store_path
from gi_energy.pareto import front_outcomes, nondominated, ok_points
from gi_energy.problems.arrays import with_arrays
from gi_energy.report.grid_lines import GridProgress, estimate_line, summary_text
from gi_energy.report.indicators import hypervolume
from gi_energy.report.plots import write_front_png
from gi_energy.report.progress import meter_line, progress_for, varying_columns
from gi_energy.report.run import RunResult
from gi_energy.runs.files import default_run_dir, now_iso
from gi_energy.runs.interrupts import InterruptGate
from gi_energy.runs.journal import JournaledWrites, TrainedJournal
from gi_energy.runs.lock import RunLock, claim_new, create_locked
from gi_energy.runs.pacing import Pacer
from gi_energy.runs.rundir import RunDirectory, check_identity, evaluator_settings, run_kind
from gi_energy.tasks.loader import bind
from gi_energy.tasks.results import Evaluation, Outcome

Echo = Callable[[str], None]


@dataclass(frozen=True)
class GridResult:
    """What a grid run leaves: every outcome in grid order, the front, the run directory.

    ``energy_spent_j`` sums the joules of the points trained by this run, before or after
    any interrupt (its journal, trained.jsonl, says which; points another run put in the
    store cost nothing); ``energy_unknown`` counts trained points whose energy could not
    be read.
    """

    run_dir: Path
    outcomes: list[Outcome]
    front: list[Outcome]
    history: list[dict] = field(default_factory=list)
    energy_spent_j: float = 0.0
    energy_unknown: int = 0
    trained: int = 0
    measured: bool = False

    @property
    def evaluations(self) -> int:
        return len(self.outcomes)

    @cached_property
    def run(self) -> RunResult:
        """The run directory read back: DataFrames, figures, the problem (see RunResult)."""
        return RunResult(self.run_dir)


def grid_genomes(problem) -> list[Genome]:
    """Every grid point, in the grid's stable order; ProblemError naming [grid] if none."""
    if getattr(problem, "table", None) is not None:
        raise ProblemError(problem.source, "table", "a [table] problem is its own exhaustive baseline: there is "
                           "nothing to train; gi-energy grid writes the table as a grid run "
                           "(gi_energy.search.table_grid.table_reference)")
    if problem.grid is None:
        raise ProblemError(problem.source, "grid", "the problem has no [grid] section: list the levels to "
                           "try, e.g. hidden_layers = [1, 2] and width = [16, 64]")
    return list(problem.grid.enumerate(problem.space))


def batches(n: int, workers: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch: one round of the workers first, so the time and energy
    estimate comes early, then four rounds a batch so progress stays frequent."""
    first = min(n, max(workers, 1))
    out = [(0, first)] if first else []
    step = 4 * max(workers, 1)
    for start in range(first, n, step):
        out.append((start, min(n, start + step)))
    return out


def history_reference(points_min: np.ndarray) -> list[float]:
    """A reference point fixed after the first batch, so the hypervolume in history.csv
    is comparable from batch to batch: 10% beyond the worst value seen per objective."""
    worst = points_min.max(axis=0)
    best = points_min.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    return (worst + 0.1 * span).tolist()


def run_grid(problem, *, out=None, store=None, workers: int | None = None, resume=None, evaluator=None,
             progress: bool = False, echo: Echo | None = None, warn: Echo | None = None,
             dataset=None) -> GridResult:
    """Evaluate every grid point of ``problem`` (a Problem, a TOML path or a bundled name),
    resuming ``resume`` if given, and write the run directory.

    ``evaluator`` replaces the real Evaluator and Store (a replay or synthetic evaluator in
    tests); the caller then owns it. Silent by default; ``progress=True`` prints a line per
    evaluation and the front to stdout, and the warning that energies are estimated to
    stderr (silent, that warning is a Python warning). ``echo`` and ``warn`` take those
    lines instead, where given. ``dataset``: numpy arrays of your own, as for
    :func:`gi_energy.evolve`.
    """
    if not isinstance(problem, Problem):  # a TOML path or a bundled name, as evolve() takes
        from gi_energy.config.parse import load_problem

        problem = load_problem(problem)
    shown = progress_for(progress)
    echo = echo or (print if progress else (lambda s: None))
    warn = warn or shown.warn
    if workers is not None:
        problem = problem.with_overrides(evaluation={"workers": workers})
    if dataset is not None:
        problem = with_arrays(problem, dataset, Path(problem.output.directory) / "datasets")
    problem = bind(problem)  # a task of the user's own: loaded and checked before any work
    genomes = grid_genomes(problem)
    objectives = dict(problem.objectives)
    n_workers = problem.evaluation.workers
    # The store a resumed run recorded (absolute), wherever it is resumed from.
    store_path = None if evaluator is not None else default_store_path(problem, store) if resume is None \
        else resume_store_path(problem, store, RunDirectory.open(resume).read_run_json(), resume)

    with contextlib.ExitStack() as stack:
        # The run directory's lock before the store: a run refused because another process
        # works in the folder (or it holds a run already) creates and changes nothing.
        if resume is not None:
            rd, lock, info = _reopen(problem, resume, stack)
            finished = _complete_as_is(rd, info, genomes, problem, echo)
            if finished is not None:
                return finished
            lock.acquire()  # names this process in the lock file, now that it goes on
        else:
            path = Path(out) if out is not None else default_run_dir(problem, "grid", problem.output.directory)
            early = claim_new(path)
            stack.callback(early.release)
        store_obj = None
        if evaluator is None:
            from gi_energy.evaluation.runners import check_data
            from gi_energy.evaluation.store import Store

            # Bad data or a bad --store path fail before a run directory exists (or changes).
            check_data(problem)
            store_obj = stack.enter_context(Store(store_path))
        if resume is not None:
            done, history, ref = _resumed(rd, info, genomes)
        else:
            settings = {"workers": n_workers, "store": None if evaluator is not None else str(store_path),
                        "grid_points": len(genomes),
                        "levels": {k: list(v) for k, v in problem.grid.levels.items()},
                        "constraints": dict(problem.constraints)}
            rd, _ = create_locked(path, problem, "grid", settings, lock=early)
            rd.update_run_json(identity=run_identity(problem, "grid"))
            done, history, ref = [], [], None

        echo(f"grid: {len(genomes)} points of {problem.name} ({n_workers} worker{'s' * (n_workers != 1)}); "
             f"run directory {rd.path}")
        if done:
            echo(f"resuming: {len(done)} of {len(genomes)} points already in the run directory")
        if evaluator is None:
            from gi_energy.evaluation.evaluator import (
                Evaluator,  # the real one imports torch; tests never pay for it
            )

            evaluator = stack.enter_context(Evaluator(problem, store_obj, workers=n_workers))
            rd.update_run_json(store=str(store_path))
        return _run(problem, rd, genomes, done, history, ref, evaluator, objectives, echo, warn, store_obj)


def _reopen(problem, resume, stack: contextlib.ExitStack) -> tuple[RunDirectory, RunLock, dict]:
    """The grid run ``resume``, checked against ``problem`` and locked (the lock held by
    ``stack``, not yet naming this process in its file), and its run.json as it is once
    locked; nothing written yet."""
    rd = RunDirectory.open(resume)
    info = rd.read_run_json()
    if info.get("command") != "grid":
        raise UsageError(f"{resume}: {run_kind(info.get('command'))}, not a grid run; resume it with its own command")
    if info.get("fingerprint") not in (None, problem.fingerprint()):
        change = problem.fingerprint_change(info.get("fingerprint_parts"))
        raise UsageError(f"{resume}: recorded for another problem setup (fingerprint {info.get('fingerprint')}, "
                         f"this problem {problem.fingerprint()}{': ' + change if change else ''})")
    check_identity(rd.path, info, run_identity(problem, "grid"))
    # Before the first write: a second resume of the folder stops here, touching nothing.
    lock = RunLock(rd.path)
    stack.callback(lock.release)
    if not lock.acquire_existing():  # a run from before lock files: one is made
        lock.acquire()
    return rd, lock, rd.read_run_json()


def _complete_as_is(rd: RunDirectory, info: dict, genomes: Sequence[Genome], problem,
                    echo: Echo) -> GridResult | None:
    """A grid run that says it is complete and holds every point: its result as it
    stands, said so, with nothing run, opened or written (a resume would only rewrite
    run.json's times and redraw front.png). None where a point is missing: it goes on."""
    if info.get("status") != "complete" or not rd.has_results():
        return None
    outcomes = rd.read_outcomes()
    if {g.key for g in genomes} - {o.key for o in outcomes}:
        return None
    front = front_outcomes(outcomes, problem.objectives, problem.constraints)
    trained, spent_j = int(info.get("trained") or 0), float(info.get("energy_spent_j") or 0.0)
    echo(f"{rd.path} is already complete: all {len(genomes)} points are in it; nothing was run or changed")
    echo(summary_text(front, problem.objectives, len(outcomes), trained, spent_j, bool(info.get("measured")),
                      varying_columns(outcomes)))
    return GridResult(run_dir=rd.path, outcomes=outcomes, front=front, history=rd.read_history(),
                      energy_spent_j=spent_j, energy_unknown=int(info.get("energy_unknown") or 0),
                      trained=trained, measured=bool(info.get("measured")))


def _resumed(rd: RunDirectory, info: dict, genomes):
    """(the points done, the history, the history's reference point) of the locked run
    ``rd`` (``info``: its run.json), now marked running again."""
    wanted = {g.key for g in genomes}
    done = [o for o in rd.read_outcomes() if o.key in wanted] if rd.has_results() else []
    if not TrainedJournal(rd.path).exists():
        # A run written before the journal existed: what it recorded as trained is its own.
        journal = TrainedJournal(rd.path)
        journal.seed(done)
        journal.close()
    history = rd.read_history() if rd.has_results() else []
    rd.update_run_json(status="running", resumed_at=now_iso())
    return done, history, info.get("history_reference_point")


def _run(problem, rd: RunDirectory, genomes: Sequence[Genome], done: list[Outcome], history: list[dict], ref,
         evaluator, objectives, echo: Echo, warn: Echo, store=None) -> GridResult:
    journal = TrainedJournal(rd.path, durable=not getattr(evaluator, "replayed", False))
    try:
        return _run_batches(problem, rd, genomes, done, history, ref, evaluator, objectives, echo, warn, journal,
                            store)
    finally:
        journal.close()


def _spending(outcomes: Sequence[Outcome], journal: TrainedJournal) -> tuple[int, float, int]:
    """(points trained by this run, their joules, how many of them lack a reading), from
    the journal: a store hit this run itself trained before an interrupt still counts."""
    trained, spent_j, unknown = 0, 0.0, 0
    for o in outcomes:
        paid, joules = o.paid_energy(journal.spent_repeats(o))
        if not paid:
            continue
        trained += 1
        if joules is None:
            unknown += 1
        else:
            spent_j += joules
    return trained, spent_j, unknown


def _front_points(points_min: np.ndarray) -> np.ndarray:
    """The non-dominated rows: the hypervolume of all points is theirs."""
    return points_min[nondominated(points_min)] if len(points_min) else points_min


def _finished(pending: dict[str, list[Evaluation]], cached: dict[str, bool], repeats: int) -> list[Outcome]:
    """The points of an interrupted batch whose every repeat had finished."""
    return [Outcome(genome=evs[0].genome, evaluations=tuple(sorted(evs, key=lambda e: e.repeat)), cached=cached[k])
            for k, evs in pending.items() if len(evs) >= repeats]


def _run_batches(problem, rd: RunDirectory, genomes: Sequence[Genome], done: list[Outcome], history: list[dict],
                 ref, evaluator, objectives, echo: Echo, warn: Echo, journal: TrainedJournal,
                 store=None) -> GridResult:
    have = {o.key for o in done}
    todo = [g for g in genomes if g.key not in have]
    outcomes = list(done)
    trained, spent_j, unknown = _spending(outcomes, journal)
    # Kept up batch by batch, not recomputed over the whole run after each one (that made a
    # grid quadratic in its size): the front, the ok points' front (for the hypervolume), the
    # failures; the result files are rewritten when due (runs.pacing), and at the end.
    front = front_outcomes(outcomes, objectives, problem.constraints)
    hv_points = _front_points(ok_points(outcomes, objectives)[1])
    failures = sum(1 for o in outcomes if not o.ok)
    pacer = Pacer()
    n_total = len(genomes)
    sentence, is_warning = meter_line(getattr(evaluator, "measured", None),
                                      getattr(evaluator, "meter_description", None))
    (warn if is_warning else echo)(sentence)
    rd.update_run_json(**evaluator_settings(evaluator))
    estimated = False
    t_run = time.perf_counter()
    status = "failed"
    pending: dict[str, list[Evaluation]] = {}
    pending_cached: dict[str, bool] = {}
    gate = InterruptGate().open()
    if store is not None:  # each evaluation journaled inside its store write, as evolve's (runs.journal)
        evaluator = JournaledWrites(evaluator, store, journal, gate)
    try:
        for start, stop in batches(len(todo), problem.evaluation.workers):
            batch = todo[start:stop]
            t0 = time.perf_counter()
            progress = GridProgress(echo, len(outcomes), n_total)
            pending.clear()
            pending_cached.clear()

            def on_result(ev: Evaluation, cached: bool, progress=progress) -> None:
                with gate:  # journaled and in pending, or neither (a signal waits for the end)
                    if not cached:
                        journal.record(ev)  # at once: a kill -9 later loses nothing this run paid for
                    pending.setdefault(ev.key, []).append(ev)
                    pending_cached[ev.key] = pending_cached.get(ev.key, True) and cached
                progress(ev, cached)

            results = evaluator.evaluate(batch, on_result=on_result)
            wall_s = time.perf_counter() - t0
            for o in results:
                if not o.cached and not any((e.key, e.repeat) in journal for e in o.evaluations):
                    journal.seed([o])  # an evaluator that did not report through on_result
            outcomes.extend(results)
            pending.clear()  # only now: until the batch is in outcomes, an interrupt writes it from here
            new = [o for o in results if any(journal.spent_repeats(o))]
            b_trained, b_spent_j, b_unknown = _spending(results, journal)
            trained, spent_j, unknown = trained + b_trained, spent_j + b_spent_j, unknown + b_unknown
            failures += sum(1 for o in results if not o.ok)
            _, pts = ok_points(results, objectives)
            if ref is None and len(pts):
                ref = history_reference(ok_points(outcomes, objectives)[1])
                rd.update_run_json(history_reference_point=ref)
            hv_points = _front_points(np.vstack([hv_points.reshape(-1, pts.shape[1]), pts]))
            front = front_outcomes(front + list(results), objectives, problem.constraints)
            history.append({
                "batch": len(history), "evaluations": len(outcomes), "trained": trained,
                "failures": failures, "energy_spent_j": spent_j,
                "energy_unknown": unknown, "wall_s": round(time.perf_counter() - t_run, 3),
                "hypervolume": hypervolume(hv_points, ref) if ref is not None and len(hv_points) else 0.0,
                "front_size": len(front),
            })
            pacer.maybe(lambda front=front: rd.write_results(outcomes, objectives, history,
                                                             constraints=problem.constraints,
                                                             spent=journal.entries, front=front))
            rd.update_run_json(evaluations=len(outcomes), trained=trained, energy_spent_j=spent_j,
                               energy_unknown=unknown)
            left = n_total - len(outcomes)
            if not estimated and new and left:
                estimated = True
                echo(estimate_line(new, wall_s, left, problem.evaluation.workers, evaluator.measured))
            echo(f"batch {len(history) - 1}: {len(outcomes)}/{n_total} done, {len(new)} trained in {wall_s:.1f} s, "
                 f"{spent_j:.1f} J spent so far, front {len(front)}")
        status = "complete"
    except (KeyboardInterrupt, RunInterrupted):  # Ctrl-C, SIGTERM, a lost Dask scheduler
        status = "interrupted"
        raise
    finally:
        gate.close()  # the clean-up below runs with the signals' own handlers again
        if pending:
            # Interrupted mid-batch: keep the points that finished (a resume skips them),
            # unless the batch was already kept (an interrupt just before pending.clear()).
            kept = {o.key for o in outcomes}
            outcomes.extend(o for o in _finished(pending, pending_cached, problem.evaluation.repeats)
                            if o.key not in kept)
            pending.clear()
        trained, spent_j, unknown = _spending(outcomes, journal)
        front = rd.write_results(outcomes, objectives, history, constraints=problem.constraints,
                                 spent=journal.entries) if outcomes else []
        if outcomes:
            write_front_png(rd.path, outcomes, objectives, front, label=f"{problem.name} grid")
        rd.update_run_json(status=status, evaluations=len(outcomes), trained=trained, energy_spent_j=spent_j,
                           energy_unknown=unknown, finished_at=now_iso())
    echo(summary_text(front, objectives, len(outcomes), trained, spent_j, evaluator.measured,
                  varying_columns(outcomes)))
    return GridResult(run_dir=rd.path, outcomes=outcomes, front=front, history=history, energy_spent_j=spent_j,
                      energy_unknown=unknown, trained=trained, measured=bool(evaluator.measured))


def cli_grid(problem, out=None, store=None, workers=None, resume=None) -> GridResult:
    """The ``gi-energy grid`` command: load the problem, run the grid, print progress."""
    import click

    from gi_energy.config.parse import load_problem

    from .evolve import resumed_problem

    p = load_problem(problem) if problem is not None else resumed_problem(resume, "grid")
    if p.table is not None:  # the table is its own grid: written whole, nothing trained
        from .table_grid import cli_table

        return cli_table(p, out, resume, click.echo)
    if out is not None and resume is not None:
        raise UsageError("give --out or --resume, not both (--resume continues in RUN_DIR itself)")
    if out is not None and (Path(out) / "run.json").exists():
        raise UsageError(f"{out} already holds a run; use --resume {out} to continue it, or choose another --out")
    return run_grid(p, out=out, store=store, workers=workers, resume=resume, progress=True, echo=click.echo,
                    warn=lambda s: click.echo(s, err=True))


__all__ = ["GridResult", "run_grid", "cli_grid", "grid_genomes", "batches"]
