"""A run's CSV file as a pandas DataFrame, each column typed by what its cells hold.

pandas' default reading takes the text ``nan``, ``None``, ``NA``, ``null`` (and more) for a
missing value. In these files a missing value is an empty cell and nothing else: the
status ``nan`` and a configuration choice ``"None"`` or ``"NA"`` are words, and reading
them as missing would merge them with the rows that have no value. So every cell is read
as written, and each column is typed afterwards:

- a text column (named in ``text``, or one whose cells are not all numbers) is a pandas
  ``string`` column, missing only where the cell is empty;
- true/false cells are booleans (object dtype with NaN where a cell is empty, as pandas has it);
- whole numbers with no empty cell are int64;
- other numbers are float64, read to the digit (the files write floats with repr), with
  NaN for an empty or non-finite cell (``nan``, ``inf``, ``-inf``: not a reading).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

# What the files write for a number: an int, or a float as repr writes it.
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|-inf"
_WHOLE = r"[+-]?\d+"
_BOOLEANS = ("true", "false")


def read_table(path: Path, usecols: Sequence[str], text: Collection[str] = ()):
    """The CSV file ``path`` (columns ``usecols``) as a DataFrame typed as the module says;
    columns named in ``text`` are text whatever their cells look like."""
    import pandas as pd

    raw = pd.read_csv(path, usecols=list(usecols), dtype=str, keep_default_na=False, na_values=[])
    return pd.DataFrame({c: typed_column(raw[c], c in text) for c in raw.columns}, index=raw.index)


def typed_column(cells, text: bool = False):
    """One column of cells as written (strings, "" for an empty cell), typed (see the
    module); ``text``: keep it text whatever the cells look like."""
    import pandas as pd

    empty = cells == ""
    filled = cells[~empty]
    if text or (len(filled) and not filled.str.fullmatch(_NUMBER).all()):
        if not text and filled.isin(_BOOLEANS).all():
            return cells.map({"true": True, "false": False, "": np.nan}).astype(bool if not empty.any() else object)
        return cells.astype("string").mask(empty, pd.NA)
    if not empty.any() and len(filled) and filled.str.fullmatch(_WHOLE).all():
        try:
            return cells.astype("int64")
        except (OverflowError, ValueError):  # beyond int64: read as a float
            pass
    values = np.full(len(cells), np.nan)
    values[~empty.to_numpy()] = filled.to_numpy(dtype=object).astype(float)
    values[~np.isfinite(values)] = np.nan
    return pd.Series(values, index=cells.index, name=cells.name)
