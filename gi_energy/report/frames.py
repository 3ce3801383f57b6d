"""A run's CSV file as a pandas DataFrame, each column typed by what its cells hold.

pandas' default reading takes the text ``nan``, ``None``, ``NA``, ``null`` (and more) for a
missing value. In these files a missing value is an empty cell and nothing else: the
status ``nan`` and a configuration choice ``"None"`` or ``"NA"`` are words, and reading
them as missing would merge them with the rows that have no value. So each column is told
what is missing in it, and typed by what its cells hold:

- a text column (named in ``text``, or one whose cells are not all numbers) is a pandas
  ``string`` column, missing only where the cell is empty;
- true/false cells are booleans (object dtype with NaN where a cell is empty, as pandas has it);
- whole numbers with no empty cell are int64;
- other numbers are float64, read to the digit (the files write floats with repr), with
  NaN for an empty or non-finite cell (``nan``, ``inf``, ``-inf``: not a reading, as
  :class:`.columns.RunColumns` reads them).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from .columns import NOT_FINITE_CELLS, exact_floats


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
    na = {c: [""] for c in words} | {c: NOT_FINITE_CELLS for c in usecols if c not in text}
    df = pd.read_csv(path, usecols=usecols, dtype=dict.fromkeys(words, "string"), keep_default_na=False,
                     na_values=na, true_values=["true"], false_values=["false"], **exact_floats())
    loose = [c for c in usecols if c not in text and not pd.api.types.is_numeric_dtype(df[c])
             and not _booleans(df[c])]
    if loose:
        raw = pd.read_csv(path, usecols=loose, dtype=str, keep_default_na=False, na_values=[])
        for c in loose:
            df[c] = raw[c].astype("string").mask(raw[c] == "", pd.NA)
    return df


def _booleans(column) -> bool:
    """True/false cells (with NaN where empty): what pandas reads them as, kept."""
    filled = column.dropna()
    return len(filled) > 0 and all(isinstance(v, bool) for v in filled.tolist())
