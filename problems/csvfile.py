"""Reading a CSV dataset (``[dataset] source = "csv"``): numeric feature columns and one
target column of class labels, checked cell by cell.

Every fault is a :class:`ProblemError` naming the file, the row (the file's line number,
the header being row 1) and the column, and what was expected: an empty file, a header
without rows, a row with more or fewer cells than the header, an empty, non-numeric or
non-finite feature cell, an empty label. A file that reads but is unfit to learn from
(one class, too few rows to split) is refused by ``datasets.check_splittable``.
"""

from __future__ import annotations

import csv
import math

import numpy as np

from gi_energy.config.problem import DatasetConfig
from gi_energy.errors import ProblemError

KEY = "dataset.path"


def read_csv(cfg: DatasetConfig) -> tuple[np.ndarray, list[str]]:
    """(features as float64 rows, label strings) of ``cfg.path``; ProblemError on a fault."""
    source = str(cfg.path)

    def fault(text: str) -> ProblemError:
        return ProblemError(source, KEY, text)

    try:
        with open(cfg.path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise fault("the file is empty; expected a header row and rows of data")
            header = [h.strip() for h in header]
            if cfg.target not in header:
                raise ProblemError(source, "dataset.target", f"expected a column of the header, got {cfg.target!r}")
            t = header.index(cfg.target)
            features, labels = [], []
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue  # blank lines carry no sample
                line = reader.line_num
                if len(row) != len(header):
                    raise fault(f"row {line}: {len(row)} cells, expected {len(header)} as in the header")
                label = row[t].strip()
                if not label:
                    raise fault(f"row {line}, column {cfg.target!r}: empty label; expected a class label")
                features.append([_number(v, line, header[i], fault) for i, v in enumerate(row) if i != t])
                labels.append(label)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fault(f"expected a readable CSV file: {exc}") from None
    if not labels:
        raise fault("no rows below the header; expected rows of data")
    if len(header) < 2:
        raise fault(f"only the target column {cfg.target!r}; expected at least one feature column")
    return np.asarray(features, dtype=np.float64), labels


def _number(text: str, line: int, column: str, fault) -> float:
    cell = text.strip()
    if not cell:
        raise fault(f"row {line}, column {column!r}: empty cell; expected a number")
    try:
        value = float(cell)
    except ValueError:
        raise fault(f"row {line}, column {column!r}: expected a number, got {cell[:40]!r}") from None
    if not math.isfinite(value):
        raise fault(f"row {line}, column {column!r}: expected a finite number, got {cell!r}")
    return value
