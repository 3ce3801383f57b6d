"""The CSV codec of a run directory: an Evaluation as a row of evaluations.csv and back,
an Outcome as a row of front.csv, and the cell rules they share (a missing value is an
empty cell, never 0; floats keep every digit)."""

from __future__ import annotations

import csv
import json
from collections.abc import Container, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import layer_columns
from gi_energy.meters.reading import Reading
from gi_energy.tasks.results import FILE_COLUMNS, METRIC_COLUMNS, Evaluation, Outcome

from .files import atomic_open

_INT_FIELDS = {"repeat": "repeat", "inference_samples": "inference_samples", "params": "params",
               "flops_per_sample": "flops_per_sample"}


# csv column -> Evaluation field
_FLOAT_FIELDS = {"val_accuracy": "val_accuracy", "test_accuracy": "test_accuracy", "train_time_s": "train_time_s",
                 "inference_time_s": "inference_time_s", "co2_g": "co2_g", "wall_time_s": "wall_time_s"}


# The cell of a value by its exact type (the common ones: no chain of tests); _cell
# handles the rest (float subclasses, numpy floats; bool cannot be subclassed).
_CELLS = {str: str, float: float.__repr__, int: int.__repr__, type(None): lambda v: "",
          bool: lambda v: "true" if v else "false"}


def _cell(value) -> str:
    """A CSV cell: None is empty (never 0), floats keep every digit (repr round-trips)."""
    convert = _CELLS.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _parse_float(text: str) -> float | None:
    return None if text == "" else float(text)


def _parse_int(text: str) -> int | float | None:
    """An integer cell; a count that is not whole (a table's params in millions, 0.592)
    was written as a float and reads back as one."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_scalar(text: str):
    """A cell of front.csv / history.csv back to a number where it is one."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def genome_columns(genome: Genome, taken: Container[str] = ()) -> dict[str, object]:
    """The genome as readable columns: ``hidden_layers``, ``widths`` ("64-32"), each
    hyperparameter by name. A name in ``taken`` (a column the file writes itself: a
    table's configuration column called ``device`` or ``index``) is ``config_`` + name,
    so the configuration's values are never written over, nor write over the file's."""
    cols = _genome_columns(genome)
    if not taken or not any(name in taken for name in cols):
        return cols
    out: dict[str, object] = {}
    for name, value in cols.items():
        column = name
        while column in taken or column in out or (column != name and column in cols):
            column = "config_" + column
        out[column] = value
    return out


def _genome_columns(genome: Genome) -> dict[str, object]:
    cols: dict[str, object] = {}
    for name, sizes in genome.layers.items():
        text = "-".join(map(str, sizes))
        if "." in name:  # a per-layer value's track: "blocks.kernel" -> blocks_kernels "3-5"
            (values_key,) = layer_columns(name)
            cols[values_key] = text
            continue
        count_key, sizes_key = layer_columns(name)
        cols[count_key] = len(sizes)
        cols[sizes_key] = text
    cols.update(genome.values)
    return cols


def union_keys(rows: Iterable[Mapping]) -> list[str]:
    """Every key of ``rows``, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))  # keeps the first position of a key seen before
    return list(seen)


def cells(row: Mapping, columns: Sequence[str]) -> list[str]:
    """``row``'s cells in ``columns`` order (:func:`_cell` of each value)."""
    get = _CELLS.get
    return [get(type(value), _cell)(value) for value in map(row.get, columns)]


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping], *, durable: bool = True) -> None:
    with atomic_open(path, newline="", durable=durable) as fh:
        w = csv.writer(fh)  # rows as lists: DictWriter's own conversion doubled the cost
        w.writerow(list(columns))
        w.writerows(cells(row, columns) for row in rows)


class _Echo:
    """A file whose write() hands back what it is given: csv.writer.writerow then returns
    the row's line, exactly as it would write it to a file."""

    @staticmethod
    def write(text: str) -> str:
        return text


class EvaluationLines:
    """evaluations.csv as last written: each row's evaluation, index, cached and spent
    flags and CSV line, and the union of the rows' keys. A rewrite renders only the rows
    after the longest prefix that is unchanged (the same Evaluation objects, flags and
    columns): a run's outcomes only grow, so a paced rewrite costs its new rows, not the
    whole run again. Anything else (a new column, a changed row) renders every row."""

    def __init__(self) -> None:
        self.entries: list[tuple] = []  # (evaluation, index, cached, spent) per row
        self.lines: list[str] = []
        self.keys: dict[str, None] = {}
        self.columns: list[str] | None = None

    def prefix(self, entries: Sequence[tuple]) -> int:
        """How many leading ``entries`` are the rows last written."""
        n = 0
        for (ev, *flags), (old, *old_flags) in zip(entries, self.entries):
            if ev is not old or flags != old_flags:
                break
            n += 1
        return n


# The JSON columns, always evaluations.csv's last five (see the rundir's columns_of).
_JSON_COLUMNS = METRIC_COLUMNS[-5:]


def row_line(columns: Sequence[str]):
    """A function from a row (a dict) to its CSV line in ``columns`` order: exactly what
    ``csv.writer`` (excel: minimal quoting, CRLF) writes of ``cells(row, columns)``.

    csv.writer quotes character by character, and most of a row's text is its JSON cells,
    which always need quoting (their quotes doubled): str.replace does that at once. The
    other cells, numbers and names, are joined as they are, after one check that none
    holds a comma, quote or line break (else csv.writer writes the whole row)."""
    writer = csv.writer(_Echo())
    if tuple(columns[-len(_JSON_COLUMNS):]) != _JSON_COLUMNS:
        return lambda row: writer.writerow(cells(row, columns))
    head = columns[:-len(_JSON_COLUMNS)]
    commas = len(head) - 1

    def line(row: Mapping) -> str:
        plain = cells(row, head)
        text = ",".join(plain)
        if text.count(",") != commas or '"' in text or "\n" in text or "\r" in text:
            return writer.writerow(plain + cells(row, _JSON_COLUMNS))
        return text + "," + ",".join(map(_quoted, cells(row, _JSON_COLUMNS))) + "\r\n"

    return line


def _quoted(cell: str) -> str:
    """One cell as csv.writer's minimal quoting writes it."""
    if '"' in cell or "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_evaluations(path: Path, entries: Sequence[tuple], columns_of, cache: EvaluationLines | None, *,
                      durable: bool = True) -> None:
    """evaluations.csv from ``entries`` ((evaluation, index, cached, spent) per row);
    ``columns_of(keys)`` gives the file's columns from the union of the rows' keys. With
    ``cache``, the rows it holds unchanged are not rendered again (:class:`EvaluationLines`)."""
    start = 0 if cache is None else cache.prefix(entries)
    if cache is not None and start < len(cache.entries):
        start = 0  # a row written before changed, or is gone: render all
    rows = [evaluation_row(*e) for e in entries[start:]]
    keys = dict(cache.keys) if start else {}
    keys.update(dict.fromkeys(union_keys(rows)))
    columns = columns_of(list(keys))
    if start and columns != cache.columns:
        start = 0
        rows = [evaluation_row(*e) for e in entries]
    writer = csv.writer(_Echo())
    line = row_line(columns)
    lines = (cache.lines[:start] if start else []) + [line(row) for row in rows]
    with atomic_open(path, newline="", durable=durable) as fh:
        fh.write(writer.writerow(list(columns)))
        fh.write("".join(lines))
    if cache is not None:
        cache.entries, cache.lines, cache.keys, cache.columns = list(entries), lines, keys, columns


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# json.dumps(x, sort_keys=True), with one encoder made once: dumps builds a new encoder per
# call whenever an argument is not the default, and evaluations.csv asks twice a row.
_sorted_json = json.JSONEncoder(sort_keys=True).encode


def evaluation_row(ev: Evaluation, index: int, cached: bool, spent: bool | None = None) -> dict[str, object]:
    """One evaluations.csv row (genome columns come first).

    ``cached``: the evaluator served it from the store in that call. ``spent``: its energy
    counts as spent by this run (it trained it now, or earlier in this run before a
    resume); default ``not cached``."""
    inf_j = None if ev.inference is None else ev.inference.energy_j
    row: dict[str, object] = {"index": index, "key": ev.key}
    row.update(genome_columns(ev.genome, FILE_COLUMNS))
    row.update({
        "repeat": ev.repeat, "status": ev.status, "reason": ev.reason,
        "val_accuracy": ev.val_accuracy, "test_accuracy": ev.test_accuracy,
        "train_energy_j": ev.train_energy_j, "inference_energy_j": inf_j,
        "inference_energy_j_per_1k": ev.inference_energy_j_per_1k, "energy_spent_j": ev.energy_spent_j,
        "train_time_s": ev.train_time_s, "inference_time_s": ev.inference_time_s,
        "inference_samples": ev.inference_samples, "wall_time_s": ev.wall_time_s,
        "params": ev.params, "flops_per_sample": ev.flops_per_sample, "co2_g": ev.co2_g,
        "device": ev.device, "worker": ev.worker, "cached": cached,
        "spent": (not cached) if spent is None else bool(spent),
        "genome_json": ev.genome.to_json(),
        "train_json": None if ev.train is None else ev.train.to_json(),
        "inference_json": None if ev.inference is None else ev.inference.to_json(),
        "extra_json": _sorted_json(dict(ev.extra)) if ev.extra else "{}",
        "metrics_json": _sorted_json(dict(ev.metrics)) if ev.metrics else None,
    })
    for name, value in ev.metrics.items():
        row.setdefault(name, value)  # readable; never over a genome or built-in column
    for window, reading in (("train", ev.train), ("inference", ev.inference)):
        if reading is not None:
            row[f"{window}_backend"] = reading.backend
            row[f"{window}_scope"] = reading.scope
            row[f"{window}_measured"] = reading.measured
    return row


def evaluation_from_row(row: Mapping[str, str]) -> Evaluation:
    """Rebuild the Evaluation an evaluations.csv row was written from."""
    kw: dict[str, object] = {"genome": Genome.from_json(row["genome_json"]), "status": row["status"]}
    kw["reason"] = row.get("reason") or None
    for col, fname in _INT_FIELDS.items():
        kw[fname] = _parse_int(row.get(col, ""))
    if kw["repeat"] is None:
        kw["repeat"] = 0
    for col, fname in _FLOAT_FIELDS.items():
        kw[fname] = _parse_float(row.get(col, ""))
    if "val_accuracy" not in row:  # written before the column was renamed
        kw["val_accuracy"] = _parse_float(row.get("accuracy", ""))
    for window in ("train", "inference"):
        text = row.get(f"{window}_json", "")
        kw[window] = Reading.from_json(text) if text else None
    kw["device"] = row.get("device", "cpu") or "cpu"
    kw["worker"] = row.get("worker", "")
    kw["extra"] = _json_table(row.get("extra_json"))
    kw["metrics"] = _json_table(row.get("metrics_json"))
    return Evaluation(**kw)


def _json_table(text: str | None) -> dict:
    """A ``*_json`` cell as a dict; the empty ones (most) without a JSON parse."""
    return {} if not text or text == "{}" else json.loads(text)


def task_metric_columns(rows: Iterable[Evaluation]) -> list[str]:
    """The task's own metric names over ``rows``, in first-seen order (their columns)."""
    seen: dict[str, None] = {}
    for ev in rows:
        for name in ev.metrics:
            seen.setdefault(name, None)
    return list(seen)


def front_row(outcome: Outcome, index: int, objectives: Mapping[str, str]) -> dict[str, object]:
    """One front.csv row: the genome, its median objectives and where its energy came from."""
    row: dict[str, object] = {"index": index, "key": outcome.key}
    row.update(genome_columns(outcome.genome, FILE_COLUMNS.union(objectives)))
    for name in objectives:
        row[name] = outcome.metric(name)
    for name in ("test_accuracy", "params", "flops_per_sample"):
        if name not in objectives:
            row[name] = outcome.metric(name)
    first = outcome.evaluations[0]
    for window, reading in (("train", first.train), ("inference", first.inference)):
        row[f"{window}_source"] = None if reading is None else reading.source
    row["measured"] = outcome.measured
    row["repeats"] = len(outcome.evaluations)
    return row
