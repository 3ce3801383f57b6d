"""What a search prints: one progress bar per generation and the front as a table.

The bar redraws in place on a terminal and prints one line per generation otherwise (logs,
CI). The library API stays silent unless asked (``progress=True`` or a :class:`Progress`);
silent, the one warning that energies are estimated is a Python warning instead.

The hypervolume shown is relative to the initial population's front (``HV 1.130× init``),
both against the run's fixed reference point: 1 at the first generation, it never falls.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from gi_energy.config.space import Fixed, SearchSpace
from gi_energy.runs.tables import genome_columns
from gi_energy.tasks.results import Evaluation, Outcome

from .joules import format_energy  # the progress line's joules (search.session prints them too)

BAR_WIDTH = 24


def meter_line(measured: bool | None, description: str | None) -> tuple[str, bool]:
    """The one sentence evolve and grid print about the meter: (text, is it a warning)."""
    what = description or "no meter described"
    if measured:
        return f"energy: measured ({what})", False
    return f"gi-energy: warning: energy is estimated, not measured ({what})", True


def hv_text(hv, first) -> str:
    """" | HV 1.130× init": hypervolume relative to the initial population's front."""
    if not isinstance(hv, int | float) or not isinstance(first, int | float) or first <= 0:
        return ""
    return f" | HV {hv / first:.3f}× init"


def energy_source(outcome: Outcome) -> str:
    """Where an outcome's energy came from, e.g. 'rapl:package (measured)'."""
    labels: list[str] = []
    for ev in outcome.evaluations:
        for reading in (ev.train, ev.inference):
            if reading is not None and reading.source not in labels:
                labels.append(reading.source)
    return " + ".join(labels) if labels else "no reading"


def format_value(value) -> str:
    """A metric for a table: 4 significant digits, "-" when missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def varying_columns(outcomes: Iterable[Outcome]) -> list[str]:
    """The configuration columns (as evaluations.csv names them) whose value differs
    between at least two of ``outcomes``, in column order."""
    values: dict[str, set] = {}
    for o in outcomes:
        for k, v in genome_columns(o.genome).items():
            values.setdefault(k, set()).add(repr(v))
    return [k for k, vs in values.items() if len(vs) > 1]


def _searched_columns(front: Sequence[Outcome], space: SearchSpace) -> list[str]:
    fixed = {n for n, p in space.params.items() if isinstance(p, Fixed)}
    cols: dict[str, None] = {}
    for o in front:
        cols.update(dict.fromkeys(k for k in genome_columns(o.genome) if k not in fixed))
    return list(cols)


def front_table(front: Sequence[Outcome], objectives: Mapping[str, str], space: SearchSpace | None = None,
                *, keys: Sequence[str] | None = None, width: int | None = None) -> str:
    """The front as aligned text, best first objective first: the objectives (as measured,
    not negated), every configuration key in ``keys`` (default: the keys ``space``
    searches, else those that vary along the front) and the energy source (one line under
    the table when every row shares it). Wider than ``width`` (default: the terminal's),
    each row's configuration moves to a line of its own below the row, wrapped, never cut."""
    names = list(objectives)
    front = sorted(front, key=lambda o: o.objectives(objectives) or ())
    if keys is None:
        keys = _searched_columns(front, space) if space is not None else varying_columns(front)
    width = width or shutil.get_terminal_size((100, 24)).columns
    sources = [energy_source(o) for o in front]
    shared = len(set(sources)) == 1
    configs = [genome_columns(o.genome) for o in front]
    config_cells = [[format_value(c.get(k)) for k in keys] for c in configs]
    rows = [[format_value(o.metric(n)) for n in names] for o in front]
    header = list(names)
    wide = [*header, *keys] + ([] if shared else ["energy source"])
    wide_rows = [r + c + ([] if shared else [s]) for r, c, s in zip(rows, config_cells, sources)]
    lines = _aligned(wide, wide_rows)
    if max(map(len, lines)) > width and keys:
        # Too wide for one line: the configuration (and source) below each row, in full.
        lines = _aligned(header, rows)[:2]
        for r, c, s in zip(_aligned(header, rows)[2:], configs, sources):
            lines.append(r)
            detail = " ".join(f"{k}={format_value(c.get(k))}" for k in keys) + ("" if shared else f"; energy: {s}")
            lines += textwrap.wrap(detail, width=max(width - 4, 40), initial_indent="    ",
                                   subsequent_indent="      ", break_on_hyphens=False)
    if shared and sources:
        lines.append(f"energy source of every row: {sources[0]}")
    return "\n".join(lines)


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(header[c]), *(len(r[c]) for r in rows)) if rows else len(header[c])
              for c in range(len(header))]
    # The last column is free text: no padding to carry to the end of the line.
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return lines


class Progress:
    """Progress of a search on ``stream`` (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, width: int | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.width = width  # None: the terminal's, asked at each redraw (it may be resized)
        self._drawn = 0  # characters of the bar now on the terminal's line
        self.generation = 0
        self.generations: int | None = None
        self.expected = 0
        self.done = 0
        self.failed = 0
        self.energy_j = 0.0
        self.energy_unknown = 0
        self.front_size = 0
        self.first_hv: float | None = None

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _redraw(self, line: str, end: str = "") -> None:
        """The bar again over the one on the terminal's line: "\r" only returns to the
        start of the last row, so a line wider than the terminal (it wrapped) would leave
        a new row at every redraw; it is cut to the width, and spaces cover what a longer
        one before it left. With ``end`` (the generation's last line) it is written whole."""
        pad = max(self._drawn - len(line), 0)
        if not end:
            width = self.width or shutil.get_terminal_size((100, 24)).columns
            if len(line) >= width:  # the figures matter more than the picture of them
                line = line.replace(f"[{self._bar()}] ", "", 1)
            line = line[:max(width - 1, 1)]
            # the spaces stay on the row too (a terminal narrowed since the last redraw)
            pad = min(max(self._drawn - len(line), 0), max(width - 1 - len(line), 0))
        self._write("\r" + line + " " * pad + end)
        self._drawn = 0 if end else len(line)

    def warn(self, text: str) -> None:
        """A warning line on stderr (the terminal's, whatever ``stream`` is)."""
        print(text, file=sys.stderr, flush=True)

    def start(self, lines: Sequence[str], generations: int | None, first_hv: float | None = None) -> None:
        """The header ``lines``; ``first_hv`` the initial front's hypervolume on a resume."""
        self.generations = generations
        self.first_hv = first_hv
        for line in lines:
            self._write(line + "\n")

    def generation_start(self, generation: int, n_evaluations: int, totals: Mapping) -> None:
        self.generation = generation
        self.expected = n_evaluations
        self.done = 0
        self.failed = int(totals.get("failures", 0))
        self.energy_j = float(totals.get("energy_spent_j", 0.0))
        self.energy_unknown = int(totals.get("energy_unknown", 0))
        if self.live:
            self._redraw(self._line())

    def result(self, evaluation: Evaluation, cached: bool) -> None:
        self.done += 1
        if not evaluation.ok:
            self.failed += 1
        if not cached:
            e = evaluation.energy_spent_j
            if e is None:
                self.energy_unknown += 1
            else:
                self.energy_j += e
        if self.live:
            self._redraw(self._line())

    def generation_end(self, row: Mapping) -> None:
        self.done = self.expected
        self.failed = int(row.get("failures", self.failed))
        self.energy_j = float(row.get("energy_spent_j") or 0.0)
        self.energy_unknown = int(row.get("energy_unknown", 0))
        self.front_size = int(row.get("front_size", 0))
        hv = row.get("hypervolume")
        if self.first_hv is None and isinstance(hv, int | float) and hv > 0:
            self.first_hv = float(hv)
        tail = hv_text(hv, self.first_hv)
        if self.live:
            self._redraw(self._line() + tail, end="\n")
        else:
            self._write(self._line() + tail + "\n")

    def _bar(self) -> str:
        filled = BAR_WIDTH if not self.expected else int(BAR_WIDTH * self.done / self.expected)
        return "#" * filled + "." * (BAR_WIDTH - filled)

    def _line(self) -> str:
        bar = self._bar()
        total = f"/{self.generations}" if self.generations is not None else ""
        label = "init" if self.generation == 0 else f"gen {self.generation}{total}"
        return (f"{label:>9} [{bar}] {self.done}/{self.expected} evals | {self.failed} failed | "
                f"{format_energy(self.energy_j, self.energy_unknown)} | front {self.front_size}")

    def finish(self, front: Sequence[Outcome], objectives: Mapping[str, str], summary: Sequence[str],
               space: SearchSpace | None = None) -> None:
        self._write("\n" + front_table(front, objectives, space) + "\n\n")
        for line in summary:
            self._write(line + "\n")


class SilentProgress(Progress):
    """The library default: prints nothing, so callers need no None checks; a warning
    becomes a Python warning (shown once, and filterable)."""

    def __init__(self):
        super().__init__(stream=sys.stdout, live=False)

    def _write(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        warnings.warn(text.removeprefix("gi-energy: warning: "), UserWarning, stacklevel=5)


def progress_for(progress: Progress | bool | None) -> Progress:
    """``progress=`` of the library calls: True prints to stdout, False or None is silent,
    a Progress is used as it is."""
    if isinstance(progress, Progress):
        return progress
    return Progress() if progress else SilentProgress()
