"""The trained-energy journal of a run directory (``trained.jsonl``), and the evaluator
wrapper that keeps it ahead of the evaluation store."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gi_energy.tasks.results import Evaluation, Outcome

from .files import compact_json

if TYPE_CHECKING:
    from gi_energy.evaluation.store import Store

    from .interrupts import InterruptGate

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


class JournaledWrites:
    """``evaluator`` as a run (evolve; grid could the same way) sees it when it trains
    into ``store``: every evaluation the store writes is journaled inside that write,
    before it commits (:meth:`Store.notifying`). Written one after the other, a kill -9
    between the two left a stored evaluation the run did not know it had trained, which a
    resume then took from the store as another run's, its energy lost from the run's
    totals. From the journal line until the run has the evaluation in its records (its
    ``on_result``), ``gate`` holds SIGINT and SIGTERM, as the run's own journaling does
    (:mod:`.interrupts`): an interrupted run's files show every evaluation it journaled.
    Every other attribute is ``evaluator``'s.

    A write retried after its journal line (the commit found the store busy) that then
    finds another process's result for the key keeps the line: this run did train the
    configuration, and its spent energy is then read from the stored row, the other
    process's measurement of the same training."""

    def __init__(self, evaluator, store: Store, journal: TrainedJournal, gate: InterruptGate):
        self.inner, self.store, self.journal, self.gate = evaluator, store, journal, gate
        self.held: set[tuple[str, int]] = set()  # journaled, not yet reported to the search

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def stored(self, ev: Evaluation) -> None:
        """The store's callback, inside its write: hold the gate, journal ``ev``."""
        item = (ev.key, int(ev.repeat))
        if item not in self.held:  # a write retried whole (a locked store) holds once
            self.gate.__enter__()
            self.held.add(item)
        self.journal.record(ev)

    def evaluate(self, genomes, on_result=None):
        def reported(ev: Evaluation, cached: bool) -> None:
            try:
                if on_result is not None:
                    on_result(ev, cached)
            finally:
                self._release((ev.key, int(ev.repeat)))

        try:
            with self.store.notifying(self.stored):
                return self.inner.evaluate(genomes, reported)
        finally:
            # A write that failed after its journal line, or an evaluator that stopped
            # before reporting: let the gate go (only the last release can deliver a signal).
            for item in list(self.held):
                self._release(item)

    def _release(self, item: tuple[str, int]) -> None:
        if item in self.held:
            self.held.discard(item)
            self.gate.__exit__(None, None, None)
