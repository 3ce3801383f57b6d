"""One evolve run driven in its run directory: the generations of a
:class:`~gi_energy.search.loop.SearchLoop`, a checkpoint after each, the results written
as the run goes (so a killed run can still be compared), the terminal lines, and what an
interrupt (Ctrl-C, SIGTERM, a lost Dask scheduler) or a failure leaves behind.

:mod:`gi_energy.search.evolve` sets a run up (new or resumed) and hands it here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from gi_energy.config.problem import Problem
from gi_energy.errors import RunInterrupted
from gi_energy.evaluation.store import Store
from gi_energy.report.plots import write_front_png
from gi_energy.report.progress import Progress, format_energy, meter_line
from gi_energy.report.run import RunResult
from gi_energy.runs.interrupts import InterruptGate
from gi_energy.runs.journal import JournaledWrites, TrainedJournal
from gi_energy.runs.pacing import Pacer
from gi_energy.runs.tables import EvaluationLines
from gi_energy.tasks.results import Outcome

from .checkpoint import Checkpoint, CheckpointWriter
from .loop import EvaluatorLike, SearchLoop
from .termination import AnyOf
from .totals import Totals

# A replay writes no checkpoint or result files in its first second (runs.pacing): a
# thousands-of-evaluations-a-second replay would otherwise spend a large part of a short
# run on files a kill -9 costs nothing to recompute.
REPLAY_FIRST_WRITE_S = 1.0


@dataclass(frozen=True)
class EvolveResult:
    """What a search leaves: ``front`` (feasible non-dominated outcomes of every evaluation
    of the run), ``evaluations`` (every outcome, in evaluation order), ``run_dir``,
    ``history`` (one row per generation) and the ``totals``."""

    front: list[Outcome]
    evaluations: list[Outcome]
    run_dir: Path
    history: list[dict]
    totals: dict
    status: str
    stop_reason: str | None
    problem: Problem
    reference_point: list[float] | None = None

    @cached_property
    def run(self) -> RunResult:
        """The run directory read back: DataFrames, figures, the problem (see RunResult)."""
        return RunResult(self.run_dir)


def run_in(problem: Problem, evaluator: EvaluatorLike, termination: AnyOf, rd, checkpoint: Checkpoint | None,
           progress: Progress, plot: bool, store: Store | None = None) -> EvolveResult:
    """Run (or go on with, from ``checkpoint``) the search in run directory ``rd``;
    ``store``: the evaluation store ``evaluator`` writes what it trains to (None: none, or
    not known), whose writes are then journaled before they commit."""
    # A replay's journal is flushed, not fsynced: a flush survives kill -9, and an fsync
    # per line would cap replay far below its thousands of evaluations a second.
    journal = TrainedJournal(rd.path, durable=not getattr(evaluator, "replayed", False))
    rd.durable = journal.durable  # nor are run.json and the checkpoint fsynced in a replay
    rd.lines = EvaluationLines()  # each rewrite of evaluations.csv renders only its new rows
    if checkpoint is not None and not journal.exists():
        journal.seed(checkpoint.outcomes)  # a run checkpointed before journals existed
    gate = InterruptGate().open()  # a finished evaluation's records are made whole (runs.interrupts)
    if store is not None:
        evaluator = JournaledWrites(evaluator, store, journal, gate)
    try:
        return _run_search(problem, evaluator, termination, rd, checkpoint, progress, plot, journal, gate)
    finally:
        gate.close()
        journal.close()


def _run_search(problem: Problem, evaluator: EvaluatorLike, termination: AnyOf, rd, checkpoint: Checkpoint | None,
                progress: Progress, plot: bool, journal: TrainedJournal, gate: InterruptGate) -> EvolveResult:
    search = SearchLoop(problem=problem, evaluator=evaluator, termination=termination,
                        rng=np.random.default_rng(problem.seed), progress=progress, journal=journal, gate=gate)
    if checkpoint is not None:
        search.restore(checkpoint)
    last: list[Checkpoint] = [checkpoint] if checkpoint is not None else []
    writer = CheckpointWriter(rd.path, durable=journal.durable)
    # A replay's first write waits a second: a short replay writes its files once, at the end.
    pacer = Pacer(first_after_s=0.0 if journal.durable else REPLAY_FIRST_WRITE_S)

    def write_results(front=None):
        return rd.write_results(search.outcomes, problem.objectives, search.history,
                                constraints=problem.constraints, spent=_spent_set(search), front=front)

    def update_run_json(**fields) -> None:
        rd.update_run_json(generation=search.generation, totals=_totals_json(search),
                           hypervolume_reference=_reference_json(search, problem),
                           **_surrogate_json(search), **fields)

    def after_generation() -> None:
        ckpt = search.checkpoint(problem.seed)
        last[:] = [ckpt]
        if journal.durable:
            writer.save(ckpt)  # every generation: a run that trains never redoes one it finished
            # Results so far, so a run killed later (even kill -9) can still be compared.
            pacer.maybe(write_results)
            update_run_json()
            return
        # A replay redoes its work free: its checkpoint and run.json keep the result
        # files' pace (at most 1/20 of the run's time, none in its first second), and the
        # last generation's checkpoint is saved when the run ends, however it ends
        # (_save_last, _interrupted); only a kill -9 can leave an older one, which a
        # resume then replays forward from, free.
        pacer.maybe(lambda: (writer.save(ckpt), write_results(), update_run_json()))

    search.after_generation = after_generation
    sentence, is_warning = meter_line(getattr(evaluator, "measured", None),
                                      getattr(evaluator, "meter_description", None))
    if is_warning:
        progress.warn(sentence)
    first_hv = next((h.get("hypervolume") for h in search.history if h.get("hypervolume")), None)
    progress.start(_header(problem, rd, termination, None if is_warning else sentence, checkpoint),
                   problem.search.generations, first_hv=first_hv)

    try:
        stop_reason = search.run()
        # The final write-out is whole or not begun: a signal now waits for its end, and
        # then stops the run as anywhere else (the interrupted run's files are complete).
        with gate:
            _save_last(writer, last)
            front = search.front()  # the feasible front of every outcome, as front_outcomes gives it
            written = write_results(front)
            if plot:
                write_front_png(rd.path, search.outcomes, problem.objectives, written,
                                label=f"{problem.name} evolve")
            update_run_json(status="complete", stop_reason=stop_reason, front_size=len(front))
    except (KeyboardInterrupt, RunInterrupted):  # Ctrl-C, SIGTERM, a lost Dask scheduler
        with gate.shielded():  # a second Ctrl-C does not cut the saving short
            _interrupted(search, rd, last, writer, problem, plot)
        raise
    except BaseException as exc:
        with gate.shielded():
            with contextlib.suppress(Exception):  # the error that stopped the run is the one to raise
                _save_last(writer, last)
            with contextlib.suppress(Exception):  # what finished is in the run's files too
                write_results()
            rd.update_run_json(status="failed", error=f"{type(exc).__name__}: {exc}",
                               totals=_totals_json(search), generation=search.generation)
        raise
    progress.finish(front, problem.objectives, _summary(search, rd, stop_reason, front), problem.space)
    return EvolveResult(front=front, evaluations=list(search.outcomes), run_dir=rd.path,
                        history=list(search.history), totals=_totals_json(search), status="complete",
                        stop_reason=stop_reason, problem=problem, reference_point=search.reference_point)


def already_complete(problem: Problem, termination: AnyOf, rd, checkpoint: Checkpoint | None, progress: Progress,
                     hint: str) -> EvolveResult | None:
    """A run whose run.json says complete, resumed with budgets it has spent already: its
    result as it stands, said so, with nothing run and nothing written (a resume would
    only rewrite run.json's flags and times). None where a budget leaves room (one was
    raised): the run goes on. ``hint`` says how to raise one."""
    info = rd.read_run_json()  # as it is now the lock is held (evolve read it before)
    if info.get("status") != "complete" or checkpoint is None:
        return None
    search = SearchLoop(problem=problem, evaluator=None, termination=termination,
                        rng=np.random.default_rng(problem.seed), progress=progress)
    search.restore(checkpoint)
    state = search.state()
    reason = termination.reason(state)
    if reason is None and search.population and termination.evaluations_left(state) != 0:
        return None
    reason = reason or "max_evaluations"  # as SearchLoop.run says when no evaluation is left
    front = search.front()
    totals = dict(info.get("totals") or _totals_json(search))
    progress.start([f"{rd.path} is already complete: stopped by {reason} after generation {checkpoint.generation} "
                    f"({len(checkpoint.outcomes)} evaluations), within the budgets asked for "
                    f"({termination.describe()}); nothing was run or changed. To go on, {hint}"], None)
    progress.finish(front, problem.objectives, [f"{len(front)} on the front; results in {rd.path}"], problem.space)
    return EvolveResult(front=front, evaluations=list(search.outcomes), run_dir=rd.path,
                        history=list(search.history), totals=totals, status="complete",
                        stop_reason=info.get("stop_reason") or reason, problem=problem,
                        reference_point=search.reference_point)


def _interrupted(search: SearchLoop, rd, last: list[Checkpoint], writer: CheckpointWriter, problem: Problem,
                 plot: bool) -> None:
    """Ctrl-C: keep the last generation's checkpoint (its generator state is where a resume
    must restart), report the energy the unfinished generation spent in run.json, mark it.

    The checkpoint's totals stay those of its own outcomes: the unfinished generation is
    replayed on resume and its evaluations (in the journal) are counted then, once."""
    partial = search.pending_outcomes()
    spent = Totals()
    for o in partial:
        spent.add(o, search.spent(o))
    if last:
        ckpt = last[0]
        ckpt.totals["wall_s"] = search.wall_s()
        writer.save(ckpt)
    totals = _totals_json(search)
    totals["energy_spent_j"] += spent.energy_spent_j
    totals["energy_unknown"] += spent.energy_unknown
    totals["unfinished_generation_evaluations"] = len(partial)
    rd.update_run_json(status="interrupted", generation=search.generation, totals=totals,
                       resume_hint=f"gi-energy evolve --resume {rd.path}")
    if search.outcomes or partial:
        everything = search.outcomes + partial
        front = rd.write_results(everything, problem.objectives, search.history,
                                 constraints=problem.constraints, spent=_spent_set(search))
        if plot:
            write_front_png(rd.path, everything, problem.objectives, front, label=f"{problem.name} evolve")


def _save_last(writer: CheckpointWriter, last: list[Checkpoint]) -> None:
    """Save the last finished generation's checkpoint unless it is on disk already (a
    replay paces its checkpoints; a run that trains saved it after the generation)."""
    if last and writer.saved is not last[0]:
        writer.save(last[0])


def _spent_set(search: SearchLoop):
    return None if search.journal is None else search.journal.entries


def _surrogate_json(search: SearchLoop) -> dict:
    """``surrogate = "auto"``: its latest decision (screen or not, and why) for run.json."""
    decision = None if search.auto is None else search.auto.decision
    return {} if decision is None else {"surrogate_decision": decision}


def _totals_json(search: SearchLoop) -> dict:
    t = search.totals.to_dict()
    t["wall_s"] = round(search.wall_s(), 3)
    # A missing reading is never a zero: say how many evaluations the energy total lacks.
    t["energy_complete"] = t["energy_unknown"] == 0
    return t


def _reference_json(search: SearchLoop, problem: Problem) -> dict | None:
    if search.reference_point is None:
        return None
    return dict(zip(problem.objectives, search.reference_point))


def _header(problem: Problem, rd, termination: AnyOf, meter: str | None, checkpoint) -> list[str]:
    lines = [f"gi-energy evolve {problem.name}: seed {problem.seed}, population {problem.search.population}, "
             f"budgets {termination.describe()}",
             f"run directory {rd.path}"]
    if meter:
        lines.append(meter)
    if checkpoint is not None:
        lines.append(f"resuming after generation {checkpoint.generation} "
                     f"({len(checkpoint.outcomes)} evaluations so far)")
    return lines


def _summary(search: SearchLoop, rd, stop_reason, front) -> list[str]:
    t = search.totals
    energy = format_energy(t.energy_spent_j, t.energy_unknown)
    return [f"stopped by {stop_reason} after generation {search.generation}: {t.evaluations} evaluations "
            f"({t.failures} failed, {t.cached} from the store), {energy} spent by the search, "
            f"{search.wall_s():.1f} s",
            f"{len(front)} on the front; results in {rd.path}"]
