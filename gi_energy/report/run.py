"""A run directory read back as an object: ``gi_energy.open_run(path)``.

The files stay the interchange format (run.json, problem.toml, evaluations.csv, front.csv,
history.csv); a :class:`RunResult` reads them once each, when first asked, and gives the
problem, the settings, every evaluation, the front as :class:`Outcome` objects, the history,
pandas DataFrames of the tables and matplotlib Figures of the front and the history::

    run = gi_energy.open_run("runs/my-run")
    run.front                      # [Outcome], best first objective first
    run.to_dataframe()             # evaluations.csv, one row per evaluation (every repeat)
    run.to_dataframe("front")      # front.csv
    run.plot_front().savefig("front.pdf")
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gi_energy.config.space import STRUCTURES, layer_columns
from gi_energy.errors import UsageError
from gi_energy.pareto import front_outcomes
from gi_energy.runs.rundir import (
    EVALUATIONS_CSV,
    FRONT_CSV,
    HISTORY_CSV,
    PROBLEM_TOML,
    RunDirectory,
)
from gi_energy.tasks.results import Evaluation, Outcome

from .columns import RunColumns, kind_of
from .figures import run_status
from .frames import read_table
from .plots import columns_front_figure, energy_kind, front_figure, front_title, history_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from gi_energy.config.problem import Problem

TABLES = {"evaluations": EVALUATIONS_CSV, "front": FRONT_CSV, "history": HISTORY_CSV}

# Columns that read as text whatever their cells look like ("64" is a one-layer structure).
_TEXT_COLUMNS = ("key", "status", "reason", "device", "worker", "train_backend", "train_scope",
                 "inference_backend", "inference_scope", "train_source", "inference_source",
                 *(size + "s" for _, size in STRUCTURES.values()))


def text_columns_of(identity: Mapping) -> set[str]:
    """The configuration columns of run.json's ``identity`` that hold text whatever their
    cells look like: a structure's sizes and per-layer values ("64" is one layer), and a
    choice with a text option ("1" beside "relu" is the word, not the number)."""
    text = set()
    for key, spec in identity.items():
        if not key.startswith("space.") or not isinstance(spec, Mapping):
            continue
        name = key[len("space."):]
        if "count" in spec and "size" in spec:
            text.add(layer_columns(name)[1])  # its sizes ("64-32"); the count is a number
            text.update(layer_columns(f"{name}.{attr}")[0] for attr, _ in spec.get("per_layer") or ())
        elif any(isinstance(o, str) for o in spec.get("options") or ()):
            text.add(name)
    return text


class RunResult:
    """One run directory (evolve or grid, finished or interrupted), read back.

    ``outcomes`` are every genome evaluated, in evaluation order (each an :class:`Outcome`
    over its repeats); ``evaluations`` every repeat; ``front`` the feasible non-dominated
    outcomes as front.csv lists them; ``history`` one dict per generation (evolve) or
    batch (grid). A path that is not a run directory is a UsageError naming it.
    """

    def __init__(self, path: str | Path, *, columns: RunColumns | None = None):
        self.directory = RunDirectory.open(path)
        self.path = self.directory.path
        self.info: dict = self.directory.read_run_json()
        if columns is not None:  # read already (a comparison), not read again
            self.__dict__["columns"] = columns

    def __repr__(self) -> str:
        return (f"RunResult({str(self.path)!r}: {self.command} of {self.info.get('problem')}, "
                f"{self.status}, {self.outcome_count} evaluated, {len(self.front)} on the front)")

    # -- what ran
    @property
    def command(self) -> str:
        return str(self.info.get("command", "run"))

    @property
    def status(self) -> str:
        """run.json's status; "interrupted" for a run that says "running" while the
        process that held its lock is gone (killed before it could write its status)."""
        return run_status(self.path, self.info)

    @property
    def seed(self) -> int | None:
        return self.info.get("seed")

    @property
    def label(self) -> str:
        """run.json ``label`` where an experiment set one, else "<problem> <command>"."""
        return str(self.info.get("label") or f"{self.info.get('problem', self.path.name)} {self.command}")

    @property
    def settings(self) -> dict:
        """What run.json recorded of the run's settings (budgets, workers, evaluator, meter)."""
        return dict(self.info.get("settings") or {})

    @cached_property
    def problem(self) -> Problem:
        """The problem that ran: the file it was loaded from (run.json ``problem_source``)
        while that file still says word for word what the run's copy (problem.toml) says and
        gives the recorded fingerprint, so paths relative to it hold; else the copy."""
        from gi_energy.config.parse import load_problem
        from gi_energy.errors import GiEnergyError
        from gi_energy.tasks.loader import bind

        source = self.info.get("problem_source")
        copy = self.path / PROBLEM_TOML
        if source:
            try:
                problem = load_problem(source)
                # The fingerprint run.json holds was taken with the task bound (its
                # declared version and metrics are in it).
                same = (copy.is_file() and problem.to_toml() == copy.read_text(encoding="utf-8")
                        and bind(problem).fingerprint() == self.info.get("fingerprint"))
            except GiEnergyError:
                same = False
            if same:
                return problem
        if not copy.is_file():
            raise UsageError(f"{self.path}: no {PROBLEM_TOML} in the run directory")
        # The copy's relative paths (a [table], a dataset file, a task's .py) start where
        # the original file was; a run recorded before problem_source was absolute has
        # only the working directory to go by.
        base = Path(source).parent if source and Path(source).is_absolute() else None
        if base is not None and not base.is_dir():
            base = None
        return load_problem(copy, base_dir=base)

    @property
    def objectives(self) -> dict[str, str]:
        return dict(self.info.get("objectives") or self.problem.objectives)

    @property
    def constraints(self) -> dict[str, float]:
        if "constraints" in self.settings:
            return {str(k): float(v) for k, v in (self.settings["constraints"] or {}).items()}
        return dict(self.problem.constraints)

    @property
    def meter(self) -> str | None:
        """The meter's description as the run recorded it."""
        return self.info.get("meter") or self.settings.get("meter")

    # -- results
    @cached_property
    def _outcomes_and_spent(self) -> tuple[list[Outcome], list[tuple[bool, ...]]]:
        if not self.directory.has_results():
            return [], []
        return self.directory.read_outcomes_and_spent()

    @property
    def outcomes(self) -> list[Outcome]:
        return self._outcomes_and_spent[0]

    @property
    def spent(self) -> list[tuple[bool, ...]]:
        """Per outcome, per evaluation: does its energy count as spent by this run?"""
        return self._outcomes_and_spent[1]

    @property
    def evaluations(self) -> list[Evaluation]:
        return [e for o in self.outcomes for e in o.evaluations]

    # A large run read in part (a report: counts, energy kind, the front and a sample of
    # points): evaluations.csv column-wise, and objects built only for the outcomes asked.
    @cached_property
    def columns(self) -> RunColumns | None:
        """evaluations.csv column-wise (:class:`~gi_energy.report.columns.RunColumns`); None
        before the run wrote results."""
        return RunColumns.read(self.path) if self.directory.has_results() else None

    @property
    def outcome_count(self) -> int:
        """``len(outcomes)``, without building them."""
        if self._whole:
            return len(self.outcomes)
        return 0 if self.columns is None else len(self.columns)

    def outcome_keys(self) -> list[str]:
        """``[o.key for o in outcomes]``, without building them."""
        if self._whole or self.columns is None:
            return [o.key for o in self.outcomes]
        return self.columns.keys.tolist()

    def ok_positions(self, exclude: Container[str] = ()) -> list[int]:
        """Positions in :attr:`outcomes` of the ok outcomes whose key is not in ``exclude``."""
        if self._whole:
            return [p for p, o in enumerate(self.outcomes) if o.ok and o.key not in exclude]
        if self.columns is None:
            return []
        return [p for p, (key, ok) in enumerate(zip(self.columns.keys.tolist(), self.columns.ok.tolist()))
                if ok and key not in exclude]

    def outcomes_at(self, positions: Sequence[int]) -> list[Outcome]:
        """``[outcomes[p] for p in positions]``, building only those outcomes while the run
        has not been read whole (the same objects when asked again)."""
        indexes = None if self.columns is None else self.columns.indexes
        if self._whole or not positions or indexes is None:  # None: a file read through the objects
            return [self.outcomes[p] for p in positions]
        built = self.__dict__.setdefault("_built", {})
        missing = {int(indexes[p]) for p in positions} - set(built)
        if missing:
            built.update(self.directory.read_outcomes_at(missing))
        return [built[int(indexes[p])] for p in positions]

    @property
    def _whole(self) -> bool:
        """Have the outcomes been read whole already (then they answer)?"""
        return "_outcomes_and_spent" in self.__dict__

    @cached_property
    def front(self) -> list[Outcome]:
        """front.csv's outcomes, in its order; recomputed where the file is missing."""
        if not (self.path / FRONT_CSV).is_file():
            return front_outcomes(self.outcomes, self.objectives, self.constraints)
        return self.outcomes_at(self.front_positions())

    def front_positions(self) -> list[int]:
        """Positions in :attr:`outcomes` of front.csv's outcomes (each key's first), in its
        order ([] without the file)."""
        if not (self.path / FRONT_CSV).is_file():
            return []
        first: dict[str, int] = {}
        for p, key in enumerate(self.outcome_keys()):
            first.setdefault(key, p)
        return [first[r["key"]] for r in self.directory.read_front() if r.get("key") in first]

    @cached_property
    def history(self) -> list[dict]:
        return self.directory.read_history() if (self.path / HISTORY_CSV).is_file() else []

    @property
    def energy_kind(self) -> str | None:
        """"measured", "estimated", "partly estimated", or None with no reading."""
        if self._whole or self.columns is None:
            return energy_kind(self.evaluations)[0]
        return kind_of(self.columns.reading_flags())

    @property
    def measured(self) -> bool:
        """True when every ok evaluation's energy was measured (never for an estimate)."""
        return self.energy_kind == "measured"

    # -- tables and figures
    def to_dataframe(self, table: str = "evaluations") -> pd.DataFrame:
        """``table`` ("evaluations", "front" or "history") as a pandas DataFrame, read from
        its CSV: missing readings are NaN (never 0), true/false cells are booleans, text is
        as written (only an empty cell is missing: the status ``nan`` and a choice "None"
        stay words; :mod:`.frames`), and the ``*_json`` columns (the exact records, for
        :attr:`evaluations`) are left out."""
        if table not in TABLES:
            raise ValueError(f"table={table!r}: expected one of {', '.join(TABLES)}")
        path = self.path / TABLES[table]
        if not path.is_file():
            raise UsageError(f"{self.path}: no {TABLES[table]} (the run wrote no results yet)")
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
        return read_table(path, [c for c in header if not c.endswith("_json")],
                          text={*_TEXT_COLUMNS, *text_columns_of(self.info.get("identity") or {})})

    def plot_front(self, title: str | None = None) -> Figure:
        """The front over every evaluated point (as front.png), a matplotlib Figure. A run
        not read whole is drawn from its columns (the same figure, with objects built only
        for the front)."""
        title = title or front_title(self.label, len(self.front), self.outcome_count)
        if not self._whole and self.columns is not None:
            fig = columns_front_figure(self.columns, self.objectives, {o.key for o in self.front}, title)
            if fig is not None:
                return fig
        return front_figure(self.outcomes, self.objectives, self.front, title=title)

    def plot_history(self, title: str | None = None) -> Figure:
        """Hypervolume (the run's own reference point, relative to its first generation or
        batch) against evaluations and against energy spent, a matplotlib Figure."""
        return history_figure(self.history, self.energy_kind, title=title or f"{self.label}: hypervolume history")

    def summary(self) -> Mapping[str, object]:
        """A few figures in one dict: command, status, evaluations, front size, energy.

        ``energy_spent_j`` is the joules the run spent (run.json's totals), None while any
        reading it sums is missing (or before the run counted any): then
        ``energy_known_j`` is the part that was read and ``energy_unknown`` how many
        evaluations' energy is missing. ``energy`` says "measured", "estimated" or
        "partly estimated"."""
        known, unknown = self._energy_totals()
        return {"path": str(self.path), "label": self.label, "command": self.command, "status": self.status,
                "seed": self.seed, "evaluations": self.outcome_count, "front_size": len(self.front),
                "energy_spent_j": known if not unknown else None, "energy_known_j": known,
                "energy_unknown": unknown, "energy": self.energy_kind, "meter": self.meter}

    def _energy_totals(self) -> tuple[float | None, int]:
        """(known joules spent, evaluations whose energy is missing) as run.json counted
        them (an evolve's ``totals``, a grid's top level); a file that does not count the
        missing ones is counted from evaluations.csv."""
        totals = self.info.get("totals") or self.info
        known = totals.get("energy_spent_j")
        unknown = totals.get("energy_unknown")
        if unknown is None and self.columns is not None:
            paid, joules = self.columns.paid()
            unknown = int(np.isnan(joules[paid]).sum())
        return (None if known is None else float(known)), int(unknown or 0)


def open_run(path: str | Path) -> RunResult:
    """A run directory read back (see :class:`RunResult`)."""
    return RunResult(path)
