"""The trained-energy journal of a run directory (``trained.jsonl``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from gi_energy.tasks.results import Evaluation, Outcome

from .files import compact_json

TRAINED_JOURNAL = "trained.jsonl"


class TrainedJournal:
    """``trained.jsonl``: the (genome key, repeat) pairs this run trained, one JSON line
    each, appended and flushed the moment an evaluation finishes.

    The store outlives a crash, so after a ``kill -9`` a resumed run gets the evaluations
    it had finished back as store hits; the journal is how it knows it paid for them
    itself and must count their energy (once). A run that trains into a store writes the
    line inside the store's write, before it commits (``Store.notifying``), so no kill
    leaves a stored evaluation the journal lacks. A torn last line (a kill mid-write) is
    ignored. ``durable`` adds an fsync per line (power loss); a flush alone already
    survives the process being killed.
    """

    def __init__(self, run_dir, *, durable: bool = True):
        self.path = Path(run_dir) / TRAINED_JOURNAL
        self.durable = durable
        self.entries: set[tuple[str, int]] = set()
        self._fh = None
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        d = json.loads(line)
                        self.entries.add((str(d["key"]), int(d.get("repeat", 0))))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a kill

    def __contains__(self, item) -> bool:
        return item in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def exists(self) -> bool:
        return self.path.is_file()

    def record(self, ev: Evaluation) -> bool:
        """Journal ``ev`` as trained by this run; False if it already was."""
        item = (ev.key, int(ev.repeat))
        if item in self.entries:
            return False
        if self._fh is None:
            torn = self.path.is_file() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")
            self._fh = open(self.path, "a", encoding="utf-8")
            if torn:
                self._fh.write("\n")  # end a line cut short by a kill, or the next entry joins it
        self._fh.write(compact_json({"key": item[0], "repeat": item[1], "energy_j": ev.energy_spent_j}) + "\n")
        self._fh.flush()
        if self.durable:
            os.fsync(self._fh.fileno())
        self.entries.add(item)
        return True

    def seed(self, outcomes: Iterable[Outcome]) -> None:
        """Journal the non-cached evaluations of ``outcomes`` (a run written before the
        journal existed is resumed with what it had recorded as trained)."""
        for o in outcomes:
            if not o.cached:
                for ev in o.evaluations:
                    self.record(ev)

    def spent_repeats(self, outcome: Outcome) -> list[bool]:
        """Per evaluation of ``outcome``: journaled (its energy is this run's)?"""
        return [(ev.key, int(ev.repeat)) in self.entries for ev in outcome.evaluations]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
