"""The lines ``gi-energy grid`` prints: one per finished evaluation, the estimate after
the first batch (time and energy of the points left), and the summary with the front."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gi_energy.tasks.results import Evaluation, Outcome

from .progress import format_value, front_table

Echo = Callable[[str], None]


class GridProgress:
    """One line per finished evaluation: [done/total] status, objectives, genome."""

    def __init__(self, echo: Echo, done: int, total: int):
        self.echo, self.done, self.total = echo, done, total
        self.width = len(str(total))

    def __call__(self, ev: Evaluation, cached: bool) -> None:
        if ev.repeat == 0:
            self.done += 1
        where = "stored" if cached else f"{ev.wall_time_s:.1f} s" if ev.wall_time_s is not None else ""
        if ev.ok:
            e = ev.inference_energy_j_per_1k
            what = (f"acc {ev.val_accuracy:.4f}  inference {format_value(e)} J/1k  "
                    f"train {format_value(ev.train_energy_j)} J")
        else:
            what = f"{ev.status}: {ev.reason or ''}"
            if len(what) > 100:  # said, not silently cut: the whole reason is in evaluations.csv
                what = what[:100] + "... (whole reason in evaluations.csv)"
        rep = f" r{ev.repeat}" if ev.repeat else ""
        self.echo(f"[{self.done:>{self.width}}/{self.total}]{rep} {what}  ({where})  {ev.genome.key}")


def estimate_line(new: Sequence[Outcome], wall_s: float, left: int, workers: int, measured: bool) -> str:
    # From the evaluations' own wall times where known: the first batch's wall time also
    # holds the workers' start-up, which the remaining batches do not pay again.
    walls = [sum(e.wall_time_s or 0.0 for e in o.evaluations) for o in new]
    per_s = sum(walls) / len(new) / max(workers, 1) if all(walls) else wall_s / len(new)
    energies = [o.energy_spent_j for o in new if o.energy_spent_j is not None]
    kind = "measured" if measured else "estimated"
    text = f"estimate for the remaining {left} points: ~{_duration(per_s * left)}"
    if energies:
        text += f" and ~{np.mean(energies) * left:.0f} J ({kind} energy, from the first batch)"
    return text + "; stored points take no time"


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def summary_text(front: Sequence[Outcome], objectives, n: int, trained: int, spent_j: float, measured: bool,
             keys: Sequence[str]) -> str:
    kind = "measured" if measured else "estimated"
    lines = [f"grid done: {n} points ({trained} trained now), {spent_j:.1f} J {kind}; front of {len(front)}:"]
    lines += ["  " + line for line in front_table(front, objectives, keys=keys).splitlines()]
    return "\n".join(lines)
