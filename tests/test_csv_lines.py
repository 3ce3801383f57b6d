"""evaluations.csv lines joined by hand (row_line) must be csv.writer's very lines, for
any cell text: commas, quotes, line breaks, empty cells, the JSON columns last or not."""

from __future__ import annotations

import csv
import io
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from gi_energy.runs.tables import METRIC_COLUMNS, cells, row_line

PROPERTY = settings(max_examples=int(os.environ.get("GI_HYPOTHESIS_EXAMPLES", "60")) * 3, deadline=None)

value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                  st.text(alphabet=st.sampled_from(list('ab ,"\r\n{}:ß')), max_size=6))
plain = st.one_of(st.none(), st.integers(), st.floats(), st.text(alphabet=st.sampled_from(list("ab -|=.ß")),
                                                                  max_size=6))


def _written(row, columns) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerow(cells(row, columns))
    return buf.getvalue()


@PROPERTY
@given(st.one_of(st.lists(value, min_size=1, max_size=6), st.lists(plain, min_size=1, max_size=6)),
       st.lists(value, min_size=5, max_size=5), st.booleans())
def test_a_hand_joined_line_is_csv_writer_s(head, tail, json_columns):
    columns = [f"c{i}" for i in range(len(head))] + (list(METRIC_COLUMNS[-5:]) if json_columns else
                                                     [f"t{i}" for i in range(5)])
    row = dict(zip(columns, head + tail))
    line = row_line(columns)(row)
    assert line == _written(row, columns)
    assert next(csv.reader(io.StringIO(line, newline=""))) == cells(row, columns)


def test_a_plain_row_takes_the_joined_path_and_a_quoted_one_falls_back():
    columns = ["index", "name", *METRIC_COLUMNS[-5:]]
    for name in ("plain", "a,b", 'q"', "x\ny", None):
        for tail in ('{"a":1}', "x,y", "x\ry", "", "{}", None):
            row = {"index": 3, "name": name, "genome_json": tail, "extra_json": "{}", "metrics_json": tail}
            assert row_line(columns)(row) == _written(row, columns)
