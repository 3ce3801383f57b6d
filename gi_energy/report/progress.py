"""What a search prints: one progress bar per generation and the front as a table.

The bar redraws in place on a terminal and prints one line per generation otherwise (logs,
CI). The library API stays silent unless given a :class:`Progress`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from gi_energy.config.space import Fixed, Genome, SearchSpace
from gi_energy.tasks.results import Evaluation, Outcome

BAR_WIDTH = 24


def energy_source(outcome: Outcome) -> str:
    """Where an outcome's energy came from, e.g. 'rapl:package (measured)'."""
    labels: list[str] = []
    for ev in outcome.evaluations:
        for reading in (ev.train, ev.inference):
            if reading is not None and reading.source not in labels:
                labels.append(reading.source)
    return " + ".join(labels) if labels else "no reading"


def readable_genome(genome: Genome, space: SearchSpace | None = None) -> str:
    """The genome in one line; values the space holds Fixed are left out (they are the same
    for every row and front.csv has the full key)."""
    if space is None:
        return genome.key
    fixed = {n for n, p in space.params.items() if isinstance(p, Fixed)}
    return Genome(layers=genome.layers, values={k: v for k, v in genome.values.items()
                                                if k not in fixed}).key


def format_energy(energy_j: float, unknown: int = 0) -> str:
    text = f"{energy_j:.4g} J"
    return text + (f" (+{unknown} unknown)" if unknown else "")


def format_value(value) -> str:
    """A metric for a table: 4 significant digits, "-" when missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def front_table(front: Sequence[Outcome], objectives: Mapping[str, str],
                space: SearchSpace | None = None) -> str:
    """The front as aligned text: objectives (as measured, not negated), the genome (searched
    values only when ``space`` is given), energy source; best first objective first."""
    names = list(objectives)
    rows = [[format_value(o.metric(n)) for n in names] + [readable_genome(o.genome, space), energy_source(o)]
            for o in sorted(front, key=lambda o: o.objectives(objectives) or ())]
    header = [*names, "genome", "energy source"]
    widths = [max(len(header[c]), *(len(r[c]) for r in rows)) if rows else len(header[c])
              for c in range(len(header))]
    # The last column is free text: no padding to carry to the end of the line.
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


class Progress:
    """Progress of a search on ``stream`` (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.generation = 0
        self.generations: int | None = None
        self.expected = 0
        self.done = 0
        self.failed = 0
        self.energy_j = 0.0
        self.energy_unknown = 0
        self.front_size = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def start(self, lines: Sequence[str], generations: int | None) -> None:
        self.generations = generations
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
            self._write("\r" + self._line())

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
            self._write("\r" + self._line())

    def generation_end(self, row: Mapping) -> None:
        self.done = self.expected
        self.failed = int(row.get("failures", self.failed))
        self.energy_j = float(row.get("energy_spent_j") or 0.0)
        self.energy_unknown = int(row.get("energy_unknown", 0))
        self.front_size = int(row.get("front_size", 0))
        hv = row.get("hypervolume")
        tail = f" | hv {hv:.4g}" if isinstance(hv, float) else ""
        self._write(("\r" if self.live else "") + self._line() + tail + "\n")

    def _line(self) -> str:
        filled = BAR_WIDTH if not self.expected else int(BAR_WIDTH * self.done / self.expected)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
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
    """The library default: prints nothing, so callers need no None checks."""

    def __init__(self):
        super().__init__(stream=sys.stdout, live=False)

    def _write(self, text: str) -> None:
        pass
