"""A run's evaluations as columns: what compare needs of evaluations.csv, one numpy array
per figure, instead of one Evaluation, two Readings and a Genome per row.

At 100,000 evaluations per run, rebuilding the objects (``RunDirectory.read_outcomes``)
was most of compare's time and memory. The columns give the same numbers: each metric is
the cell evaluations.csv wrote from the same Evaluation property (floats keep every digit,
so ``float(cell)`` is that property's value), and per outcome (one genome's repeats, by the
``index`` column) the rules of :class:`~gi_energy.tasks.results.Outcome` are applied to
the arrays: ok when every repeat is, a metric is the median over repeats and missing when
any repeat's is (or when not ok), a non-finite value is missing, the joules a run paid for
are the sum over the repeats its journal says it trained. A file without the columns this
needs (written by an older version) is read through the objects instead, with the same
result.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gi_energy.errors import UsageError
from gi_energy.runs.rundir import EVALUATIONS_CSV, RunDirectory
from gi_energy.tasks.results import BUILTIN_METRICS, Outcome, median

# Built-in metric -> the evaluations.csv column that holds it (see runs/tables.py).
METRIC_CELLS = {"accuracy": "val_accuracy", "test_accuracy": "test_accuracy", "train_energy_j": "train_energy_j",
                "inference_energy_j_per_1k": "inference_energy_j_per_1k", "train_time_s": "train_time_s",
                "params": "params", "flops_per_sample": "flops_per_sample"}
_DERIVED = ("inference_time_s", "inference_samples")  # inference_time_s_per_1k
_FLAGS = ("index", "key", "status", "cached", "spent", "energy_spent_j", "train_measured", "inference_measured")
# Each metered window and the cell of its joules: empty exactly when the window has no
# reading or its reading is missing (evaluations.csv writes None as an empty cell).
WINDOWS = (("train", "train_energy_j"), ("inference", "inference_energy_j"))
NEEDED = frozenset(_FLAGS) - {"spent"} | {*METRIC_CELLS.values(), *_DERIVED, "inference_energy_j"}  # spent: older files lack it


_NUMERIC = frozenset({"energy_spent_j", "accuracy", *METRIC_CELLS.values(), *_DERIVED})
# Read as text (whether a window has a reading is whether its cell is empty) and made
# floats afterwards.
_JOULES = frozenset(cell for _, cell in WINDOWS)
# A missing value is an empty cell; a non-finite one (as repr writes it) is missing too,
# as Evaluation.metric has it.
NOT_FINITE_CELLS = ["", "nan", "inf", "-inf"]


# Read where the file has them: older files lack "spent" and call validation accuracy
# "accuracy"; the readings' backend and scope name their sources on an axis.
_OPTIONAL = ("spent", "accuracy", "metrics_json",
             *(f"{w}_{part}" for w, _ in WINDOWS for part in ("backend", "scope")))


def _sources(col: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Per row and window, "backend:scope" of the reading (None: the file lacks the columns)."""
    names = [(f"{w}_backend", f"{w}_scope") for w, _ in WINDOWS]
    if not all(b in col and s in col for b, s in names):
        return None
    return np.column_stack([col[b].astype(object) + ":" + col[s].astype(object) for b, s in names])


def _row_measured(train: np.ndarray, inference: np.ndarray) -> np.ndarray:
    """Evaluation.measured from the cells: every window with a reading (its measured cell
    is written only then) says true, and one has a reading."""
    return ((train != "") | (inference != "")) & np.isin(train, ("", "true")) & np.isin(inference, ("", "true"))


def kind_of(measured: Sequence[bool]) -> str | None:
    """Measured flags to the word a label carries."""
    if not measured:
        return None
    if all(measured):
        return "measured"
    return "estimated" if not any(measured) else "partly estimated"


def _floats(cells: np.ndarray, path, column: str) -> np.ndarray:
    """Text cells as floats (every digit, as Python reads them); empty and non-finite
    cells are NaN, as the numeric columns read."""
    try:
        values = np.array([math.nan if c in NOT_FINITE_CELLS else float(c) for c in cells.tolist()], dtype=float)
    except ValueError as exc:
        raise UsageError(f"{path}: unreadable: the {column} column: {exc}") from None
    return np.where(np.isfinite(values), values, np.nan)


def exact_floats() -> dict:
    """Read every float back to the digit: pandas 3's parser is exact; before it, only its
    round-trip one (slower) is."""
    import pandas as pd

    return {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


@dataclass
class RunColumns:
    """Per evaluation (one row of evaluations.csv, in file order): the outcome it belongs
    to (``group``), status, spent flag, joules and measured flag; its metrics by name
    (``cells``, the task's own in ``task_metrics``). :meth:`metric` and the rest give
    the per-outcome figures, outcomes in the order of their ``index``."""

    group: np.ndarray  # row -> outcome position
    keys: np.ndarray  # per outcome: the genome's key
    row_ok: np.ndarray
    row_spent: np.ndarray
    row_joules: np.ndarray  # energy_spent_j, NaN when unknown
    row_measured: np.ndarray
    cells: Mapping[str, np.ndarray]  # column -> per-row floats
    task_metrics: Sequence[Mapping] = ()  # per row: the task's own metrics
    # per row and window (WINDOWS): a reading with its joules, and whether it was measured
    row_read: np.ndarray | None = None
    row_read_measured: np.ndarray | None = None
    row_sources: np.ndarray | None = None  # per row and window: "backend:scope" of its reading
    indexes: np.ndarray | None = None  # per outcome: its index in evaluations.csv (None: its position)
    _metrics: dict = field(default_factory=dict, repr=False)
    first: np.ndarray = field(init=False, repr=False)  # per outcome: its genome's first (unique_outcomes)

    def __post_init__(self):
        import pandas as pd

        self.first = ~pd.Series(self.keys, dtype=object).duplicated().to_numpy(dtype=bool)

    def __len__(self) -> int:
        return len(self.keys)

    # -- reading

    @classmethod
    def read(cls, path) -> RunColumns:
        """evaluations.csv of the run directory ``path``, column-wise."""
        import pandas as pd

        csv_path = Path(path) / EVALUATIONS_CSV
        try:
            with open(csv_path, newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
            have = set(header) | ({"val_accuracy"} if "accuracy" in header else set())
            if not NEEDED <= have:
                return cls.from_outcomes(*RunDirectory.open(path).read_outcomes_and_spent())
            usecols = [c for c in header if c in NEEDED or c in _OPTIONAL]
            numeric = [c for c in usecols if c in _NUMERIC and c not in _JOULES]
            table = pd.read_csv(csv_path, usecols=usecols, keep_default_na=False,
                                dtype={c: float if c in numeric else str for c in usecols},
                                na_values={c: NOT_FINITE_CELLS for c in numeric}, **exact_floats())
        except (OSError, csv.Error, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{csv_path}: unreadable: {exc}") from None
        if "val_accuracy" not in table:  # written before the column was renamed
            table["val_accuracy"] = table["accuracy"].astype(float)
        try:
            index = table["index"].to_numpy().astype(int)
        except ValueError as exc:
            raise UsageError(f"{csv_path}: unreadable: the index column: {exc}") from None
        # Outcomes in the order of their index; a repeat's rows in file order.
        order, group = np.unique(index, return_inverse=True)
        first = np.full(len(order), len(index))
        np.minimum.at(first, group, np.arange(len(index)))
        col = {c: table[c].to_numpy() for c in table.columns}
        read = np.column_stack([col[cell] != "" for _, cell in WINDOWS])
        for cell in _JOULES:
            col[cell] = _floats(col[cell], csv_path, cell)
        cached = col["cached"] == "true"
        spent = col["spent"] if "spent" in col else np.full(len(index), "")
        task = [json.loads(t) if t not in ("", "{}") else {} for t in col.get("metrics_json", ())]
        return cls(group=group, keys=col["key"][first],
                   row_ok=col["status"] == "ok",
                   row_spent=np.where(spent == "", ~cached, spent == "true"),
                   row_joules=col["energy_spent_j"],
                   row_measured=_row_measured(col["train_measured"], col["inference_measured"]),
                   cells={c: col[c] for c in (*METRIC_CELLS.values(), *_DERIVED)}, task_metrics=task,
                   row_read=read,
                   row_read_measured=np.column_stack([col[f"{w}_measured"] == "true" for w, _ in WINDOWS]),
                   row_sources=_sources(col), indexes=order)

    @classmethod
    def from_outcomes(cls, outcomes: Sequence[Outcome], spent: Sequence[Sequence[bool]] | None = None) -> RunColumns:
        """The same columns from Outcomes in memory; ``spent`` per outcome and evaluation
        (default: every evaluation of an outcome that was not ``cached``)."""
        evs = [(i, e) for i, o in enumerate(outcomes) for e in o.evaluations]
        flags = [s for i, o in enumerate(outcomes)
                 for s in (spent[i] if spent is not None else [not o.cached] * len(o.evaluations))]

        def col(values) -> np.ndarray:  # None is NaN
            out = np.array(list(values), dtype=float)
            return np.where(np.isfinite(out), out, np.nan)

        cells = {c: col(e.metric(name) for _, e in evs) for name, c in METRIC_CELLS.items()}
        cells["inference_time_s"] = col(e.inference_time_s for _, e in evs)
        cells["inference_samples"] = col(e.inference_samples for _, e in evs)
        return cls(group=np.array([i for i, _ in evs], dtype=int), keys=np.array([o.key for o in outcomes]),
                   row_ok=np.array([e.ok for _, e in evs], dtype=bool), row_spent=np.array(flags, dtype=bool),
                   row_joules=col(e.energy_spent_j for _, e in evs),
                   row_measured=np.array([e.measured for _, e in evs], dtype=bool),
                   cells=cells, task_metrics=[dict(e.metrics) for _, e in evs],
                   row_read=np.array([[r is not None and not r.missing for r in (e.train, e.inference)]
                                      for _, e in evs], dtype=bool).reshape(len(evs), len(WINDOWS)),
                   row_read_measured=np.array([[r is not None and r.measured for r in (e.train, e.inference)]
                                               for _, e in evs], dtype=bool).reshape(len(evs), len(WINDOWS)),
                   row_sources=np.array([["" if r is None else f"{r.backend}:{r.scope}" for r in (e.train, e.inference)]
                                         for _, e in evs], dtype=object).reshape(len(evs), len(WINDOWS)))

    def energy_kind(self, windows: Sequence[str] = ("train", "inference")) -> tuple[str | None, list[str]] | None:
        """:func:`gi_energy.report.plots.energy_kind` of the ok evaluations' readings in
        ``windows``: (the word, the sources); None where the file gave no sources."""
        if self.row_read is None or self.row_sources is None:
            return None
        at, taken = self._readings(windows)
        flags = self.row_read_measured[:, at][taken].tolist()
        return kind_of(flags), sorted(set(self.row_sources[:, at][taken].tolist()))

    def reading_flags(self, windows: Sequence[str] = ("train", "inference")) -> list[bool]:
        """The measured flag of each reading (with its joules) of the ok evaluations'
        ``windows``, in row order: what :func:`gi_energy.report.plots.energy_kind` weighs."""
        if self.row_read is None:
            return []
        at, taken = self._readings(windows)
        return self.row_read_measured[:, at][taken].tolist()

    def _readings(self, windows: Sequence[str]) -> tuple[list[int], np.ndarray]:
        """The columns of ``windows`` (WINDOWS order) and, per row and window, whether the
        row is ok and its window has a reading with its joules."""
        at = [i for i, (w, _) in enumerate(WINDOWS) if w in windows]
        return at, self.row_read[:, at] & self.row_ok[:, None]

    # -- per evaluation

    def row_metric(self, name: str) -> np.ndarray:
        """One metric per evaluation (NaN: missing), by its [objectives] name."""
        if name in METRIC_CELLS:
            return self.cells[METRIC_CELLS[name]]
        if name == "inference_time_s_per_1k":
            samples = self.cells["inference_samples"]
            values = self.cells["inference_time_s"] * 1000.0 / np.where(samples == 0, np.nan, samples)
            return np.where(np.isfinite(values), values, np.nan)  # no samples or no time: missing
        if name in BUILTIN_METRICS:  # a built-in metric this reader does not know is a bug here
            raise KeyError(name)
        values = np.full(len(self.group), np.nan)
        for i, m in enumerate(self.task_metrics):
            v = m.get(name)
            if v is not None and not (isinstance(v, float) and not math.isfinite(v)):
                values[i] = float(v)
        return values

    # -- per outcome

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.group, minlength=len(self.keys))

    @property
    def ok(self) -> np.ndarray:
        """Outcome.ok: every repeat ok."""
        return self._all(self.row_ok)

    @property
    def measured(self) -> np.ndarray:
        """Outcome.measured: every repeat's readings measured."""
        return self._all(self.row_measured)

    def _all(self, flags: np.ndarray) -> np.ndarray:
        return np.bincount(self.group, weights=~flags, minlength=len(self.keys)) == 0

    def metric(self, name: str) -> np.ndarray:
        """Outcome.metric per outcome: the median over repeats, NaN when the outcome is
        not ok or a repeat's value is missing."""
        if name not in self._metrics:
            rows = self.row_metric(name)
            sizes = self.sizes
            out = np.full(len(self.keys), np.nan)
            single = sizes[self.group] == 1
            out[self.group[single]] = rows[single]
            for g in np.flatnonzero(sizes > 1):
                vals = rows[self.group == g]
                if not np.any(np.isnan(vals)):
                    out[g] = median(vals.tolist())
            self._metrics[name] = np.where(self.ok, out, np.nan)
        return self._metrics[name]

    def paid(self) -> tuple[np.ndarray, np.ndarray]:
        """Outcome.paid_energy per outcome: did the run pay for any repeat, and the joules
        of those it paid for (0.0 when none, NaN when a reading is missing)."""
        spent = self.row_spent
        paid = np.bincount(self.group[spent], minlength=len(self.keys)) > 0
        joules = np.zeros(len(self.keys))
        sizes = self.sizes
        single = spent & (sizes[self.group] == 1)
        joules[self.group[single]] = self.row_joules[single]
        for g in np.flatnonzero(sizes > 1):  # summed in order, as Outcome does
            parts = self.row_joules[(self.group == g) & spent].tolist()
            joules[g] = float(sum(parts))  # NaN when a reading is missing
        return paid, joules

    def feasible(self, constraints: Mapping[str, float] | None) -> np.ndarray:
        """pareto.constraint_violation(o, constraints) == 0.0 per outcome: every
        constrained metric present and the summed relative excess (in the order of
        ``constraints``, as there) zero."""
        ok = np.ones(len(self.keys), dtype=bool)
        excess = np.zeros(len(self.keys))
        for name, lim in (constraints or {}).items():
            v = self.metric(name)
            ok &= ~np.isnan(v)
            excess = excess + np.where(v > lim, (v - lim) / lim, 0.0)
        return ok & (excess == 0.0)

    def objectives(self, objectives: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """Outcome.objectives per outcome: the mask of those with every objective, and
        their minimisation vectors (maximised objectives negated), one row each."""
        cols = [-self.metric(n) if d == "max" else self.metric(n) for n, d in objectives.items()]
        pts = np.column_stack(cols)
        has = ~np.any(np.isnan(pts), axis=1)
        return has, pts[has]

