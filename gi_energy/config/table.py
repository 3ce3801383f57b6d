"""``[table]``: a tabular benchmark, read from any CSV (or Parquet) table.

The configuration columns become the search space: a numeric column is ordinal (a Choice
of its sorted levels, which the operators step through in order), any other column a
choice of its values, a column with one value is held fixed. The metric columns are the
objectives and constraints the problem names, plus the energy columns by their built-in
names (``train_energy_j``, ``inference_energy_j_per_1k``) where the table has them, or
the column ``[table] energy`` names (each configuration's joules, read as its training
energy: what the search pays to evaluate it). Seed
columns, when named, tell repeats of one configuration apart.

Everything about the file is checked here, once, when the problem is read: a bad table is
bad input (exit status 2) whose message names the file, the column and, for a cell, its
line (the file's own line, blank lines counted; a Parquet table's 1-based row).
:mod:`gi_energy.evaluation.table` then looks configurations up in the same frame.
"""

from __future__ import annotations

import bz2
import csv
import functools
import gzip
import io
import lzma
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gi_energy.errors import ProblemError, did_you_mean, first_line

from .checks import Table, type_name
from .problem import TableConfig
from .space import Choice, Fixed, Genome, SearchSpace

# Metrics read from a column of their own name when the table has one, objective or not:
# so a table's energy is the search's cost (labelled "table", measured only by a column).
ENERGY_COLUMNS = ("train_energy_j", "inference_energy_j_per_1k")
# An objective "accuracy" reads this column when the table has no "accuracy" (gi-energy's
# own evaluations.csv calls validation accuracy so).
ALIASES = {"accuracy": ("accuracy", "val_accuracy")}
PARQUET_SUFFIXES = (".parquet", ".pq")
TRUE, FALSE = ("true", "1", "yes", "y", "t"), ("false", "0", "no", "n", "f")
# Metric cells read as missing, like an empty cell: R's write.csv and pandas' to_csv write
# these (spelled as in pandas' default NA list). Configuration and seed cells stay as written.
NA_CELLS = ("NA", "NaN", "nan", "N/A", "NULL", "null", "None")
# Compressed CSVs whose text the row check can read; pandas reads other compressions too
# (.zip, .zst, .tar), and those are read without it.
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_UNCHECKED = (".zip", ".zst", ".tar", ".tar.gz", ".tar.bz2", ".tar.xz")
_QUOTED = re.compile(rb'"[^"]*"')


def read_section(t: Table, base_dir: Path | None, metric_names: Sequence[str],
                 constraints: Sequence[str] = ()) -> TableConfig:
    """``[table] path``, ``configuration``, ``seed``, ``measured``, checked against the
    file's header; ``metric_names`` (objectives, then constraints) must be columns too.
    The last ``len(constraints)`` of them are the constraints: their messages name
    ``[constraints.NAME]``, the others ``[objectives.NAME]``."""
    raw = t.get("path", "path", required=True)
    path = Path(raw).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_dir():
        raise t.error("path", f"expected a CSV or Parquet table, {str(path)!r} is a directory "
                      "(a path is relative to the problem file)")
    if not path.is_file():
        raise t.error("path", f"expected an existing CSV or Parquet table, {str(path)!r} does not exist "
                      "(a path is relative to the problem file)")
    configuration = _names(t, "configuration", required=True)
    seed = _names(t, "seed", required=False)
    measured = t.get("measured", str, None)
    energy = t.get("energy", str, None)
    t.finish({"path", "configuration", "seed", "measured", "energy"})
    header = read_header(path, t.source)
    for key, names in (("configuration", configuration), ("seed", seed), ("measured", (measured,) if measured else ()),
                       ("energy", (energy,) if energy else ())):
        for name in names:
            if name not in header:
                raise t.error(key, f"no column {name!r} in {path.name}" + did_you_mean(name, header)
                              + f"; its columns: {_shown(header)}")
    both = set(configuration) & set(seed)
    if both:
        raise t.error("seed", f"column {sorted(both)[0]!r} is in configuration too: a seed column tells "
                      "repeats of one configuration apart")
    metrics = []
    first_constraint = len(metric_names) - len(constraints)
    for i, name in enumerate(metric_names):
        key = f"{'constraints' if i >= first_constraint else 'objectives'}.{name}"
        column = next((c for c in ALIASES.get(name, (name,)) if c in header), None)
        if column is None:
            raise ProblemError(t.source, key, f"no column {name!r} in {path.name}" + did_you_mean(name, header)
                               + f"; its columns: {_shown(header)}")
        if column in configuration or column in seed:
            raise ProblemError(t.source, key, f"column {column!r} is a configuration or seed column, not a metric")
        metrics.append((name, column))
    if energy is not None:
        if energy in configuration or energy in seed:
            raise t.error("energy", f"column {energy!r} is a configuration or seed column, not an energy")
        metrics.append(("train_energy_j", energy))
    metrics += [(name, name) for name in ENERGY_COLUMNS if name in header and name not in dict(metrics)]
    return TableConfig(path=path.resolve(), configuration=configuration, seed=seed, measured=measured,
                       metrics=tuple(metrics))


def _names(t: Table, key: str, *, required: bool) -> tuple[str, ...]:
    value = t.raw(key)
    if value is None:
        if required:
            raise t.error(key, 'is required: the list of columns that make a configuration, e.g. '
                          '["layers", "width", "optimizer"]')
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise t.error(key, f"expected a column name or a non-empty list of column names, got {type_name(value)} "
                      f"{value!r}")
    if len(set(value)) != len(value):
        raise t.error(key, f"expected distinct column names, got {value!r}")
    return tuple(value)


def _shown(header: Sequence[str]) -> str:
    return ", ".join(header[:16]) + (", ..." if len(header) > 16 else "")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def read_header(path: Path, source: str) -> list[str]:
    """The column names of a CSV or Parquet table (ProblemError naming [table] path, also
    for a CSV header that names one column twice)."""
    import pandas as pd

    try:
        if _is_parquet(path):
            return [str(c) for c in _read_parquet(path, source).columns]
        # The header as a row of cells: pandas' own header would rename a second "acc" "acc.1".
        first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(source, "table.path", f"{path.name} cannot be read as a table: {first_line(exc)}") \
            from None
    header = [str(c).strip() for c in first.iloc[0]] if len(first) else []
    seen: set[str] = set()
    for column in header:
        if column and column in seen:
            raise ProblemError(source, "table.path", f"{path.name} names column {column!r} twice in its header: "
                               "rename one, so each column says which it is")
        seen.add(column)
    return header


def _read_parquet(path: Path, source: str, columns=None):
    import pandas as pd

    try:
        return pd.read_parquet(path, columns=columns)
    except ImportError:
        raise ProblemError(source, "table.path", f"{path.name}: reading Parquet needs pyarrow "
                           "(pip install pyarrow)") from None


def read_frame(cfg: TableConfig, source: str):
    """The table's configuration, seed, measured and metric columns as a DataFrame whose
    configuration columns hold canonical values (Genome's), metric columns floats (NaN
    where a cell is empty or an NA spelling, ±inf as written), ``measured`` booleans; every
    cell checked. Its index is each row's number as :func:`place` names it: the CSV
    file's line, the Parquet table's 1-based row. Read once per file version: reading the
    problem and opening its evaluator share it (treat it as read-only)."""
    try:
        st = cfg.path.stat()
    except OSError as exc:
        raise ProblemError(source, "table.path", f"{cfg.path.name} cannot be read: {exc}") from None
    return _read_frame(cfg, source, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=2)
def _read_frame(cfg: TableConfig, source: str, mtime_ns: int, size: int):
    import pandas as pd

    wanted = list(dict.fromkeys([*cfg.configuration, *cfg.seed, *([cfg.measured] if cfg.measured else []),
                                 *(c for _, c in cfg.metrics)]))
    name = cfg.path.name
    try:
        if _is_parquet(cfg.path):
            frame = _read_parquet(cfg.path, source, wanted).astype(object)
            frame = frame.where(frame.notna(), "").astype(str)
            frame.index = np.arange(1, len(frame) + 1)
        else:
            # usecols keeps the read cheap on a wide table, but drops a row's extra fields
            # without a word: _csv_lines counts them (and the lines pandas skips as blank).
            frame = pd.read_csv(cfg.path, usecols=lambda c: str(c).strip() in wanted, dtype=str,
                                keep_default_na=False, skipinitialspace=True)
            frame.columns = [str(c).strip() for c in frame.columns]
            frame.index = _csv_lines(cfg.path, len(frame), source)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(source, "table.path", f"{name} cannot be read as a table: {first_line(exc)}") from None
    if frame.empty:
        raise ProblemError(source, "table.path", f"{name} has no rows: expected one row per configuration "
                           "(and seed)")
    out = pd.DataFrame(index=frame.index)
    for column in cfg.configuration:
        out[column] = _levels_column(frame[column].str.strip(), column, name, source, "table.configuration")
    for column in cfg.seed:
        out[column] = _levels_column(frame[column].str.strip(), column, name, source, "table.seed")
    if cfg.measured:
        out[cfg.measured] = _bool_column(frame[cfg.measured].str.strip(), cfg.measured, name, source)
    for metric, column in cfg.metrics:
        if column not in out:
            out[column] = _number_column(frame[column].str.strip(), column, name, source, metric)
    _check_unique(out, cfg, name, source)
    return out


def place(name: str | Path, number: int) -> str:
    """How a message names the row numbered ``number`` in :func:`read_frame`'s index:
    "line N" of a CSV file (N its line in the file), "row N" of a Parquet table."""
    return f"row {int(number)}" if _is_parquet(Path(name)) else f"line {int(number)}"


def _at(cells, i: int, name: str) -> str:
    return place(name, cells.index[i])


def _csv_lines(path: Path, rows: int, source: str) -> np.ndarray:
    """Each data row's line in the CSV file, from its text: pandas skips blank lines, so a
    row's position is not its line. A row with more fields than the header is refused
    (ProblemError naming the line). Where the text cannot be matched to pandas' rows (a
    compression this does not open), the lines are counted as if none were blank and the
    fields are not counted."""
    counted = None
    if not path.name.lower().endswith(_UNCHECKED):
        with _OPENERS.get(path.suffix.lower(), open)(path, "rb") as fh:
            data = fh.read()
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        plain = _QUOTED.sub(b"", data) if b'"' in data else data  # a quoted comma is no separator
        if plain is data or plain.count(b"\n") == data.count(b"\n"):
            counted = _records_fast(plain)
        if counted is None or len(counted[0]) != rows + 1:
            counted = _records_by_csv(data)  # a quoted cell spans lines: the csv module's own count
    if counted is None or len(counted[0]) != rows + 1:
        return np.arange(2, rows + 2)
    lines, fields = counted
    ragged = np.flatnonzero(fields[1:] > fields[0])
    if len(ragged):
        r = ragged[0] + 1
        raise ProblemError(source, "table.path", f"line {lines[r]} of {path.name} has {fields[r]} fields, its "
                           f"header {fields[0]}: quote a cell that holds a comma, or remove the extra fields")
    return lines[1:]


def _records_fast(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(line, number of fields) of each line that is not blank, the header first, from
    text whose separators are all real (no quoted commas or line breaks)."""
    a = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(a == 10)
    if not len(ends) or ends[-1] != len(a) - 1:
        ends = np.append(ends, len(a))
    commas = np.diff(np.searchsorted(np.flatnonzero(a == 44), ends), prepend=0)
    starts = np.concatenate(([0], ends[:-1] + 1))
    blank = np.zeros(len(ends), dtype=bool)
    for k in np.flatnonzero(commas == 0):  # a blank line has no comma: only these are looked at
        blank[k] = not data[starts[k]:ends[k]].strip()
    kept = np.flatnonzero(~blank)
    return kept + 1, commas[kept] + 1


def _records_by_csv(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_records_fast`, with the csv module's parse: each record's first line."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")), skipinitialspace=True)
    lines, fields, start = [], [], 1
    for row in reader:
        if len(row) > 1 or (row and row[0].strip()):
            lines.append(start)
            fields.append(len(row))
        start = reader.line_num + 1
    return np.array(lines, dtype=int), np.array(fields, dtype=int)


def _levels_column(cells, column: str, name: str, source: str, key: str):
    """Configuration (or seed) cells: numbers where every cell is one, else strings; each
    value canonical, as a Genome holds it."""
    import pandas as pd

    empty = np.flatnonzero((cells == "").to_numpy())
    if len(empty):
        raise ProblemError(source, key, f"column {column!r} of {name} is empty at {_at(cells, empty[0], name)}: "
                           "every configuration needs a value in each of its columns")
    numbers = pd.to_numeric(cells, errors="coerce")
    if numbers.notna().all() and np.isfinite(numbers.to_numpy(dtype=float)).all():
        uniques = pd.unique(numbers)
        canonical = {u: Genome(values={"v": u.item() if hasattr(u, "item") else u}).values["v"] for u in uniques}
        return numbers.map(canonical).astype(object)
    return cells.astype(object)


def _bool_column(cells, column: str, name: str, source: str):
    lower = cells.str.lower()
    bad = np.flatnonzero((~lower.isin(TRUE + FALSE)).to_numpy())
    if len(bad):
        raise ProblemError(source, "table.measured", f"column {column!r} of {name} at {_at(cells, bad[0], name)}: "
                           f"expected true or false, got {cells.iloc[bad[0]]!r}")
    return lower.isin(TRUE)


def _number_column(cells, column: str, name: str, source: str, metric: str):
    import pandas as pd

    missing = (cells == "") | cells.isin(NA_CELLS)
    numbers = pd.to_numeric(cells, errors="coerce")  # NaN for each NA spelling too
    bad = np.flatnonzero((numbers.isna() & ~missing).to_numpy())
    if len(bad):
        raise ProblemError(source, "table.path", f"column {column!r} of {name} (metric {metric}) at "
                           f"{_at(cells, bad[0], name)}: expected a number or an empty cell, got {cells.iloc[bad[0]]!r}")
    return numbers.astype(float)


def _check_unique(frame, cfg: TableConfig, name: str, source: str) -> None:
    keys = [*cfg.configuration, *cfg.seed]
    dup = frame.duplicated(subset=keys, keep=False).to_numpy()
    if not dup.any():
        return
    rows = np.flatnonzero(dup)
    first = frame.iloc[rows[0]][keys]
    twin = next(r for r in rows[1:] if frame.iloc[r][keys].equals(first))
    both = f"{'rows' if _is_parquet(Path(name)) else 'lines'} {frame.index[rows[0]]} and {frame.index[twin]}"
    if cfg.seed:
        raise ProblemError(source, "table.seed", f"{both} of {name} have the same configuration and seed "
                           f"({', '.join(keys)}): one row per configuration and seed")
    raise ProblemError(source, "table.configuration", f"{both} of {name} have the same configuration "
                       f"({', '.join(keys)}): name the column that tells their repeats apart in [table] seed, "
                       "or add the missing configuration column")


def table_space(frame, cfg: TableConfig) -> SearchSpace:
    """The search space of the table's levels: a numeric column ordinal (a Choice of its
    sorted levels), another a Choice in first-seen order, one level Fixed."""
    params = {}
    for column in cfg.configuration:
        levels = list(dict.fromkeys(frame[column].tolist()))
        if all(_numeric(v) for v in levels):
            levels.sort(key=float)
        params[column] = Fixed(levels[0]) if len(levels) == 1 else Choice(tuple(levels))
    return SearchSpace(layers={}, params=params)


def _numeric(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def metric_columns(cfg: TableConfig) -> Mapping[str, str]:
    """metric name -> column, as :func:`read_section` matched them."""
    return dict(cfg.metrics)
