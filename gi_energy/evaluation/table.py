"""A tabular benchmark as an evaluator: configurations looked up in a ``[table]``, nothing
trained (see :mod:`gi_energy.config.table` for how the table is read and checked).

It has the interface of :class:`gi_energy.runs.replay.ReplayEvaluator`
(``evaluate(genomes, on_result) -> list[Outcome]`` in input order, ``restrict``,
``genomes``, ``outcomes``, ``measured``, ``meter_description``, ``replayed``, ``source``),
so ``gi-energy evolve`` and the peers of experiments/search_vs_grid run on it unchanged.

Energy is what the table says, labelled so: each reading's backend and scope are "table",
and it counts as measured only where the table's ``measured`` column says so. A
configuration the table does not hold comes back with status "missing" (no readings, so
its energy is unknown, never zero); the search treats it as a failed point. Outcomes are
built when first asked for, so a table of 100,000 rows costs its columns, not 100,000
objects.
"""

from __future__ import annotations

import math

from gi_energy.config.genome import Genome
from gi_energy.config.space import SearchSpace
from gi_energy.config.table import place, read_frame
from gi_energy.errors import UsageError
from gi_energy.meters.reading import Reading
from gi_energy.tasks.results import Evaluation, Outcome, whole_or_float

from .lookup import LookupEvaluator

# Metric names with a fixed place in an Evaluation (the rest go to ``metrics`` by name).
_FLOAT_FIELDS = {"accuracy": "val_accuracy", "test_accuracy": "test_accuracy", "train_time_s": "train_time_s"}
_INT_FIELDS = ("params", "flops_per_sample")


class TableEvaluator(LookupEvaluator):
    """Looks genomes up in the problem's ``[table]``. A configuration seen for the first
    time comes back ``cached=False`` (the search pays the table's energy for it, as it
    would have paid to train it); asked again, ``cached=True``, as the store would."""

    def __init__(self, problem):
        if problem.table is None:
            raise UsageError(f"{problem.source}: the problem has no [table] to look results up in")
        self.problem = problem
        cfg = self.config = problem.table
        self.source = cfg.path
        self.name = cfg.path.name
        frame = read_frame(cfg, problem.source)
        self.rows = len(frame)
        self.numbers = frame.index.to_numpy()  # each row's line (CSV) or row (Parquet), as messages name it
        self.columns = {c: frame[c].tolist() for c in cfg.configuration}
        self.metrics = {name: frame[column].to_numpy(dtype=float) for name, column in cfg.metrics}
        self.metric_columns = dict(cfg.metrics)
        self.wanted = [*problem.objectives, *problem.constraints]
        self.measured_rows = None if cfg.measured is None else frame[cfg.measured].to_numpy(dtype=bool)
        # Each configuration's first row, in the table's order, and the rows of those that
        # repeat (seeds), in the order of the table's rows.
        self.first_row, self.repeat_rows = _rows_by_key(_keys(self.columns))
        super().__init__()
        has_energy = any(name in self.metrics for name in ("train_energy_j", "inference_energy_j_per_1k"))
        self.measured = bool(has_energy and self.measured_rows is not None and self.measured_rows.all())
        if not has_energy:
            energy = "no energy columns (train_energy_j, inference_energy_j_per_1k)"
        elif self.measured_rows is None:
            energy = "energy as the table records it, not measured here (no [table] measured column)"
        else:
            energy = (f"energy as the table records it, measured in {int(self.measured_rows.sum())} of "
                      f"{self.rows} rows (column {cfg.measured})")
        self.meter_description = f"table {cfg.path} ({len(self.first_row)} configurations; {energy})"

    def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self.first_row)

    def restrict(self, space: SearchSpace | None = None) -> SearchSpace:
        """The table's levels (the space the problem was read with): every genome the
        search makes is then a combination of the table's values."""
        return self.problem.space

    def genomes(self) -> list[Genome]:
        """Every configuration of the table, in the order of its first row."""
        return [self._genome(i) for i in self.first_row.values()]

    def outcomes(self) -> list[Outcome]:
        return [self.lookup(g) for g in self.genomes()]

    def lookup(self, genome: Genome) -> Outcome:
        """The outcome of ``genome`` (cached=False), without counting it as asked; status
        "missing" when the table does not hold it."""
        key = genome.key
        o = self._fresh.get(key)
        if o is None:
            rows = self.repeat_rows.get(key) or ([self.first_row[key]] if key in self.first_row else None)
            if rows is None:
                evs = (Evaluation(genome=genome, status="missing", worker="table",
                                  reason=f"configuration not in the table {self.name}"),)
            else:
                evs = tuple(self._evaluation(genome, i, r) for r, i in enumerate(rows))
            o = self._fresh[key] = Outcome(genome=genome, evaluations=evs, cached=False)
            self._again[key] = Outcome(genome=genome, evaluations=evs, cached=True)
        return o

    # -- one row as an Evaluation

    def _genome(self, i: int) -> Genome:
        return Genome(values={c: values[i] for c, values in self.columns.items()})

    def _evaluation(self, genome: Genome, i: int, repeat: int) -> Evaluation:
        line = f"{self.name} {place(self.name, self.numbers[i])}"
        values = {name: float(arr[i]) for name, arr in self.metrics.items()}
        lacking = [name for name in self.wanted if not math.isfinite(values.get(name, math.nan))]
        measured = False if self.measured_rows is None else bool(self.measured_rows[i])
        kw: dict = {"genome": genome, "status": "ok", "repeat": repeat, "worker": "table", "device": "table"}
        if lacking:
            first = lacking[0]
            kw.update(status="failed", reason=_lacking(line, self.metric_columns[first], values[first]))
        metrics = {}
        for name, v in values.items():
            finite = math.isfinite(v)
            if name in _FLOAT_FIELDS:
                kw[_FLOAT_FIELDS[name]] = v if finite else None
            elif name in _INT_FIELDS:
                kw[name] = whole_or_float(v) if finite else None
            elif name == "train_energy_j":
                kw["train"] = _reading(v, measured, line, name)
            elif name == "inference_energy_j_per_1k":
                kw["inference"] = _reading(v, measured, line, name)
                kw["inference_samples"] = 1000  # the column is per 1000 samples already
            elif name == "inference_time_s_per_1k":
                kw["inference_time_s"] = v if finite else None
                kw["inference_samples"] = 1000
            elif finite:
                metrics[name] = v
        return Evaluation(**kw, metrics=metrics)


def _lacking(line: str, column: str, value: float) -> str:
    """Why a row without a finite objective or constraint failed: no value (an empty or NA
    cell), or one that is not finite (inf, -inf as the table holds it)."""
    if math.isnan(value):
        return f"{line} has no value for {column}"
    return f"{line} has {column} = {value}, not a finite number"


def _reading(energy_j: float, measured: bool, line: str, column: str) -> Reading:
    if not math.isfinite(energy_j):
        why = f"no {column}" if math.isnan(energy_j) else f"{column} = {energy_j}, not a finite number"
        return Reading.missing_reading("table", f"{line} has {why}")
    return Reading(backend="table", scope="table", measured=measured, energy_j=energy_j, duration_s=0.0)


def _rows_by_key(keys: list[str]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """(each key's first row, in the order of first rows; the rows of each key that has
    more than one). A table without repeats takes one C-speed ``dict(zip(...))``: a list
    per row of a 100,000-row table was most of its loading."""
    first = dict(zip(keys, range(len(keys))))
    if len(first) == len(keys):
        return first, {}
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return {k: r[0] for k, r in rows.items()}, {k: r for k, r in rows.items() if len(r) > 1}


def _keys(columns: dict[str, list]) -> list[str]:
    """Each row's genome key, built column by column (a Genome per row would cost seconds
    on a large table); the same string :attr:`Genome.key` gives, as the tests check."""
    parts = []
    for name in sorted(columns):
        values = columns[name]
        text = {v: Genome(values={name: v}).key for v in dict.fromkeys(values)}
        parts.append([text[v] for v in values])
    return ["|".join(t) for t in zip(*parts)] if parts else []
