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

_BOOLEANS = ("true", "false")


def read_table(path: Path, usecols: Sequence[str], text: Collection[str] = ()):
    """The CSV file ``path`` (columns ``usecols``) as a DataFrame typed as the module says;
    columns named in ``text`` are text whatever their cells look like.

    pandas' C parser reads it once, told per column what is missing: in a text column an
    empty cell only, in the others also a non-finite number as repr writes it. A column
    the parser finds not to be numbers after all is text: it is read again as written
    (the words ``nan``, ``None`` would otherwise have gone missing in it)."""
    import pandas as pd

    usecols = list(usecols)
    words = [c for c in usecols if c in text]
    na = {c: [""] for c in words} | {c: ["", *_NOT_FINITE] for c in usecols if c not in text}
    df = pd.read_csv(path, usecols=usecols, dtype=dict.fromkeys(words, "string"), keep_default_na=False,
                     na_values=na, true_values=["true"], false_values=["false"])
    loose = [c for c in usecols if c not in text and not pd.api.types.is_numeric_dtype(df[c])
             and not _booleans(df[c])]
    if loose:
        raw = pd.read_csv(path, usecols=loose, dtype=str, keep_default_na=False, na_values=[])
        for c in loose:
            df[c] = typed_column(raw[c], text=True)
    return df


# How repr spells a float that is no reading: missing in a numeric column.
_NOT_FINITE = ("nan", "-nan", "inf", "-inf")


def _booleans(column) -> bool:
    """True/false cells (with NaN where empty): what pandas reads them as, kept."""
    filled = column.dropna()
    return len(filled) > 0 and all(isinstance(v, bool) for v in filled.tolist())


def typed_column(cells, text: bool = False):
    """One column of cells as written (strings, "" for an empty cell), typed (see the
    module); ``text``: keep it text whatever the cells look like."""
    import pandas as pd

    empty = cells == ""
    filled = cells[~empty]
    if not text and len(filled) and filled.isin(_BOOLEANS).all():
        return cells.map({"true": True, "false": False, "": np.nan}).astype(bool if not empty.any() else object)
    numbers = None if text else _floats(filled)
    if numbers is None:
        return cells.astype("string").mask(empty, pd.NA)
    if not empty.any() and len(filled):
        try:  # whole numbers as written ("3", never "3.0"): int64
            return cells.astype("int64")
        except (OverflowError, ValueError):
            pass
    values = np.full(len(cells), np.nan)
    values[~empty.to_numpy()] = numbers
    values[~np.isfinite(values)] = np.nan
    return pd.Series(values, index=cells.index, name=cells.name)


def _floats(filled) -> np.ndarray | None:
    """The cells as floats (numpy's C conversion: every digit, nan and inf as written), or
    None where one is not a number (a text column)."""
    try:
        return filled.to_numpy(dtype=str).astype(float)
    except ValueError:
        return None
