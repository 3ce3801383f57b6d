"""``gi-energy grid`` of a ``[table]`` problem: the table is its own exhaustive grid, so
nothing is trained; every configuration in it is written as a complete grid run, the
reference that ``gi-energy compare --reference`` and ``--replay`` read."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from gi_energy.config.problem import Problem
from gi_energy.errors import UsageError
from gi_energy.evaluation.table import TableEvaluator
from gi_energy.report.plots import write_front_png
from gi_energy.runs.files import default_run_dir
from gi_energy.runs.lock import create_locked
from gi_energy.tasks.results import Outcome


class TableReference(NamedTuple):
    run_dir: Path
    outcomes: list[Outcome]
    front: list[Outcome]


def table_reference(problem: Problem, out: str | Path | None = None) -> TableReference:
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
        write_front_png(rd.path, outcomes, problem.objectives, front, label=f"{problem.name} table")
        # A grid's own figures: nothing was trained by this command, so it spent nothing
        # (the table's energy is in its rows, replayed, as a replayed grid's is).
        rd.update_run_json(label="table", replayed=True, status="complete", evaluations=len(outcomes),
                           trained=0, energy_spent_j=0.0, energy_unknown=0,
                           measured=table.measured, meter=table.meter_description, front_size=len(front))
    finally:
        lock.release()
    return TableReference(rd.path, outcomes, list(front))


def cli_table(problem: Problem, out, resume, echo) -> TableReference:
    """``gi-energy grid`` of a [table] problem."""
    if resume is not None:
        raise UsageError(f"{resume}: a [table] problem's grid run is written whole at once, never left to "
                         "resume; run gi-energy grid again with another --out")
    if out is not None and (Path(out) / "run.json").exists():
        raise UsageError(f"{out} already holds a run; choose another --out")
    res = table_reference(problem, out)
    echo(f"{problem.name}: the table {problem.table.path} is its own grid; its {len(res.outcomes)} configurations "
         f"are written as the grid run {res.run_dir} (nothing trained), {len(res.front)} on the front")
    return res
