"""``gi-energy grid`` of a ``[table]`` problem: the table is its own exhaustive grid, so
nothing is trained; every configuration in it is written as a complete grid run, the
reference that ``gi-energy compare --reference`` and ``--replay`` read."""

from __future__ import annotations

from pathlib import Path

from gi_energy.config.problem import Problem
from gi_energy.errors import UsageError
from gi_energy.evaluation.table import TableEvaluator
from gi_energy.runs.files import default_run_dir
from gi_energy.runs.lock import create_locked

from .grid import GridResult


def table_reference(problem: Problem, out: str | Path | None = None) -> GridResult:
    """Every configuration of ``problem``'s [table] as a grid run in ``out`` (default
    ``<[output] directory>/<name>-grid-<time>``); its energy is the table's, counted as
    replayed, never as spent by this command."""
    if problem.table is None:
        raise UsageError(f"{problem.source}: not a [table] problem; gi-energy grid trains its [grid]")
    table = TableEvaluator(problem)
    path = Path(out) if out is not None else default_run_dir(problem, "grid", Path(problem.output.directory))
    outcomes = table.outcomes()
    rd, lock = create_locked(path, problem, "grid", {"table": str(problem.table.path), "grid_points": len(outcomes),
                                                     "replayed": True}, durable=True)
    try:  # the lock create_locked took, held until the run is whole
        # The results first, then "complete": a kill in between leaves a run that says it
        # is unfinished, never one that says complete without its evaluations.csv.
        front = rd.write_results(outcomes, problem.objectives, [], constraints=problem.constraints)
        rd.update_run_json(label="table", replayed=True, status="complete", evaluations=len(outcomes),
                           measured=table.measured, meter=table.meter_description, front_size=len(front))
    finally:
        lock.release()
    return GridResult(run_dir=rd.path, outcomes=outcomes, front=list(front))
