"""What every evaluator that looks results up shares (a finished grid run, a benchmark
table): the first ask for a genome is charged as if it were trained (``cached=False``),
asking again is served as the store would serve it (``cached=True``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gi_energy.config.genome import Genome
from gi_energy.tasks.results import Evaluation, Outcome

OnResult = Callable[[Evaluation, bool], None]


class LookupEvaluator:
    """Base of the lookup evaluators. A subclass fills ``_fresh`` / ``_again`` (the
    outcome of each key with ``cached`` False / True), up front or in :meth:`lookup`."""

    replayed = True

    def __init__(self) -> None:
        self._fresh: dict[str, Outcome] = {}
        self._again: dict[str, Outcome] = {}
        self._seen: set[str] = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def lookup(self, genome: Genome) -> Outcome:
        """The outcome of ``genome`` (cached=False), without counting it as asked."""
        raise NotImplementedError

    def evaluate(self, genomes: Iterable[Genome], on_result: OnResult | None = None) -> list[Outcome]:
        out = []
        for g in genomes:
            key = g.key
            if key in self._seen:
                o = self._again[key]
            else:
                o = self.lookup(g)
                self._seen.add(key)
            if on_result is not None:
                for ev in o.evaluations:
                    on_result(ev, o.cached)
            out.append(o)
        return out
