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
line. :mod:`gi_energy.evaluation.table` then looks configurations up in the same frame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gi_energy.errors import ProblemError, did_you_mean

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


def read_section(t: Table, base_dir: Path | None, metric_names: Sequence[str]) -> TableConfig:
    """``[table] path``, ``configuration``, ``seed``, ``measured``, checked against the
    file's header; ``metric_names`` (objectives, then constraints) must be columns too."""
    raw = t.get("path", "path", required=True)
    path = Path(raw).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
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
    for name in metric_names:
        column = next((c for c in ALIASES.get(name, (name,)) if c in header), None)
        if column is None:
            raise ProblemError(t.source, f"objectives.{name}", f"no column {name!r} in {path.name}"
                               + did_you_mean(name, header) + f"; its columns: {_shown(header)}")
        if column in configuration or column in seed:
            raise ProblemError(t.source, f"objectives.{name}", f"column {column!r} is a configuration or seed "
                               "column, not a metric")
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
    """The column names of a CSV or Parquet table (ProblemError naming [table] path)."""
    import pandas as pd

    try:
        if _is_parquet(path):
            return [str(c) for c in _read_parquet(path, source).columns]
        return [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(source, "table.path", f"{path.name} cannot be read as a table: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _read_parquet(path: Path, source: str, columns=None):
    import pandas as pd

    try:
        return pd.read_parquet(path, columns=columns)
    except ImportError as exc:
        raise ProblemError(source, "table.path", f"{path.name}: reading Parquet needs pyarrow "
                           f"(pip install pyarrow): {exc}") from None


def read_frame(cfg: TableConfig, source: str):
    """The table's configuration, seed, measured and metric columns as a DataFrame whose
    configuration columns hold canonical values (Genome's), metric columns floats (NaN
    where a cell is empty), ``measured`` booleans; every cell checked. Read once per file
    version: reading the problem and opening its evaluator share it (treat it as read-only)."""
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
        else:
            frame = pd.read_csv(cfg.path, usecols=lambda c: str(c).strip() in wanted, dtype=str,
                                keep_default_na=False, skipinitialspace=True)
            frame.columns = [str(c).strip() for c in frame.columns]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(source, "table.path", f"{name} cannot be read as a table: {exc}") from None
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


def _line(i: int) -> int:
    return int(i) + 2  # the header is line 1


def _levels_column(cells, column: str, name: str, source: str, key: str):
    """Configuration (or seed) cells: numbers where every cell is one, else strings; each
    value canonical, as a Genome holds it."""
    import pandas as pd

    empty = np.flatnonzero((cells == "").to_numpy())
    if len(empty):
        raise ProblemError(source, key, f"column {column!r} of {name} is empty at line {_line(empty[0])}: "
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
        raise ProblemError(source, "table.measured", f"column {column!r} of {name} at line {_line(bad[0])}: "
                           f"expected true or false, got {cells.iloc[bad[0]]!r}")
    return lower.isin(TRUE)


def _number_column(cells, column: str, name: str, source: str, metric: str):
    import pandas as pd

    numbers = pd.to_numeric(cells, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & (cells != "")).to_numpy())
    if len(bad):
        raise ProblemError(source, "table.path", f"column {column!r} of {name} (metric {metric}) at line "
                           f"{_line(bad[0])}: expected a number or an empty cell, got {cells.iloc[bad[0]]!r}")
    return numbers.astype(float)


def _check_unique(frame, cfg: TableConfig, name: str, source: str) -> None:
    keys = [*cfg.configuration, *cfg.seed]
    dup = frame.duplicated(subset=keys, keep=False).to_numpy()
    if not dup.any():
        return
    rows = np.flatnonzero(dup)
    first = frame.iloc[rows[0]][keys]
    twin = next(r for r in rows[1:] if frame.iloc[r][keys].equals(first))
    if cfg.seed:
        raise ProblemError(source, "table.seed", f"lines {_line(rows[0])} and {_line(twin)} of {name} have the "
                           f"same configuration and seed ({', '.join(keys)}): one row per configuration and seed")
    raise ProblemError(source, "table.configuration", f"lines {_line(rows[0])} and {_line(twin)} of {name} have "
                       f"the same configuration ({', '.join(keys)}): name the column that tells their repeats "
                       "apart in [table] seed, or add the missing configuration column")


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
