"""Evaluators that train nothing: a finished grid run replayed as a lookup table, and a
deterministic synthetic landscape for tests.

Both have the real Evaluator's interface (``evaluate(genomes, on_result) -> list[Outcome]``
in input order, context manager, ``measured``, ``meter_description``), so the search and
the grid run on them unchanged. Replay makes 20+ seeds of a search against the exhaustive
front cost nothing, the way tabular NAS benchmarks compare optimisers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, MutableMapping
from pathlib import Path

from gi_energy.config.genome import Genome
from gi_energy.config.space import Choice, Fixed, LayerSpace, SearchSpace, structure_keys
from gi_energy.errors import GiEnergyError, UsageError
from gi_energy.evaluation.lookup import LookupEvaluator, OnResult
from gi_energy.meters.reading import Reading
from gi_energy.tasks.loader import bound
from gi_energy.tasks.results import Evaluation, Outcome

from .rundir import RunDirectory, run_kind


class ReplayMissError(GiEnergyError):
    """A genome the grid run never evaluated was asked for; the search left the grid."""


class ReplayEvaluator(LookupEvaluator):
    """Looks genomes up in a grid run's evaluations.csv instead of training them.

    The recorded energy counts as spent: an outcome seen for the first time by this
    evaluator comes back with ``cached=False`` (the search pays for it, as it would have
    paid to train it); asking again for the same genome gives ``cached=True``, as the real
    store would. ``replayed`` is True so reports can say the energy was replayed.
    """

    def __init__(self, problem, grid_run_dir):
        problem = bound(problem)  # a user's task: its declared identity is in the fingerprint
        self.problem = problem
        self.run = RunDirectory.open(grid_run_dir)
        info = self.run.read_run_json()
        self.source = Path(grid_run_dir)
        if info.get("command") != "grid":
            raise UsageError(f"{grid_run_dir}: {run_kind(info.get('command'))}, not a grid run; replay needs a "
                             "finished grid run (gi-energy grid), whose evaluations.csv covers the whole grid")
        if info.get("fingerprint") and info["fingerprint"] != problem.fingerprint():
            raise UsageError(f"{grid_run_dir}: recorded for another problem setup (fingerprint "
                             f"{info['fingerprint']}, this problem {problem.fingerprint()}): its results "
                             "would not be what training this problem gives")
        outcomes = self.run.read_outcomes()
        if not outcomes:
            raise UsageError(f"{grid_run_dir}: evaluations.csv holds no evaluations to replay")
        # Both variants built once: a lookup is then one dict access, so the search, not
        # the table, sets the pace (>= 5,000 evaluations/s).
        super().__init__()
        for o in outcomes:
            if o.key not in self._fresh:
                self._fresh[o.key] = Outcome(genome=o.genome, evaluations=o.evaluations, cached=False)
                self._again[o.key] = Outcome(genome=o.genome, evaluations=o.evaluations, cached=True)
        evs = [e for o in self._fresh.values() for e in o.evaluations if e.ok]
        self.measured = bool(evs) and all(e.measured for e in evs)
        sources = sorted({r.source for e in evs for r in (e.train, e.inference) if r is not None})
        self.meter_description = f"replay of {grid_run_dir} (recorded: {', '.join(sources) or 'no readings'})"

    def __len__(self) -> int:
        return len(self._fresh)

    def genomes(self) -> list[Genome]:
        """Every genome in the table, in the grid's order."""
        return [o.genome for o in self._fresh.values()]

    def outcomes(self) -> list[Outcome]:
        return list(self._fresh.values())

    def lookup(self, genome: Genome) -> Outcome:
        """The recorded outcome of ``genome`` (cached=False), without counting it as asked."""
        try:
            return self._fresh[genome.key]
        except KeyError:
            raise ReplayMissError(
                f"genome {genome.key} is not in the grid run {self.source}: replay only answers for "
                "grid points; restrict the search space with ReplayEvaluator.restrict(space)") from None

    def restrict(self, space: SearchSpace) -> SearchSpace:
        """``space`` narrowed to the grid's levels, so every genome the search can make is
        in the table: hyperparameters the grid varies become Choice of its levels, the
        others Fixed at the grid's value; layer counts and sizes become Choice of the
        grid's levels with one size for all layers (as grid points are built)."""
        genomes = self.genomes()
        params = {}
        for name in space.params:
            levels = {g.values.get(name) for g in genomes}
            if None in levels:
                raise UsageError(f"{self.source}: the grid run has no values for {name!r}")
            levels = sorted(levels, key=_sort_key)
            params[name] = Fixed(levels[0]) if len(levels) == 1 else Choice(tuple(levels))
        layers = {}
        for name in space.layers:
            structures = [g.layers.get(name) for g in genomes]
            if any(s is None for s in structures):
                raise UsageError(f"{self.source}: the grid run has no {structure_keys(name)[0]} structure")
            counts = sorted({len(s) for s in structures})
            sizes = sorted({x for s in structures for x in s})
            # Each value's name from the space, never parsed out of its track: a structure
            # name may itself hold a dot ("a.b" gives the track "a.b.kind").
            ls = space.layers[name]
            per_layer = tuple((attr, Choice(tuple(sorted(
                {x for g in genomes for x in g.layers.get(track, ())}, key=_sort_key)) or (p.center(),)))
                for (attr, p), (track, _) in zip(ls.per_layer, ls.tracks(name)))
            layers[name] = LayerSpace(count=Choice(tuple(counts)), size=Choice(tuple(sizes) or (1,)), uniform=True,
                                      per_layer=per_layer)
        restricted = SearchSpace(layers=layers, params=params)
        n = _product_size(restricted)
        if n != len(genomes):
            raise UsageError(f"{self.source}: the grid run covers {len(genomes)} genomes but its levels "
                             f"span {n}; replay needs a complete grid run (finish it with --resume)")
        return restricted


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, int | float) and not isinstance(v, bool) else (1, 0.0, str(v))


def _product_size(space: SearchSpace) -> int:
    n = 1
    for ls in space.layers.values():
        counts = ls.count.options
        values = len(ls.size.options) * math.prod(len(p.options) for _, p in ls.per_layer)
        n *= sum(values if c > 0 else 1 for c in counts)
    for p in space.params.values():
        n *= len(p.options) if isinstance(p, Choice) else 1
    return n


# ---------------------------------------------------------------- synthetic landscape


class SyntheticEvaluator:
    """A deterministic stand-in for training: accuracy rises and energy grows with the
    network's size, with a little genome-keyed noise. Energies are estimates (never
    presented as measured). ``memory`` plays the store: a genome in it is not "trained"
    again and comes back ``cached=True``; share one dict between evaluators to model a
    store that outlives a run. ``trained`` lists the keys trained by this instance.
    """

    replayed = False
    measured = False
    meter_description = "synthetic landscape (estimated energy)"

    def __init__(self, problem, *, memory: MutableMapping[str, Outcome] | None = None,
                 fail_keys: Iterable[str] = (), n_inputs: int = 64, n_classes: int = 10):
        self.problem = problem
        self.memory = {} if memory is None else memory
        self.fail_keys = set(fail_keys)
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        self.trained: list[str] = []

    def __enter__(self) -> SyntheticEvaluator:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def evaluate(self, genomes: Iterable[Genome], on_result: OnResult | None = None) -> list[Outcome]:
        out = []
        for g in genomes:
            if g.key in self.memory:
                o = Outcome(genome=g, evaluations=self.memory[g.key].evaluations, cached=True)
            else:
                o = Outcome(genome=g, evaluations=(self.synthesise(g),), cached=False)
                self.memory[g.key] = o
                self.trained.append(g.key)
            if on_result is not None:
                for ev in o.evaluations:
                    on_result(ev, o.cached)
            out.append(o)
        return out

    def synthesise(self, g: Genome) -> Evaluation:
        if g.key in self.fail_keys:
            return Evaluation(genome=g, status="failed", reason="synthetic failure",
                              train=Reading.missing_reading("estimate", "not run"))
        widths = [self.n_inputs, *g.layers.get("hidden", ()), self.n_classes]
        params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
        epochs = float(g.values.get("epochs", 20))
        lr = float(g.values.get("learning_rate", 1e-3))
        noise = int(hashlib.sha256(g.key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        # Capacity saturates; a learning rate far from 1e-2 and few epochs cost accuracy.
        acc = 0.97 - 0.6 * math.exp(-params / 3000.0) - 0.03 * abs(math.log10(lr) + 2.0) \
            - 0.5 / (epochs + 5) + 0.01 * noise
        acc = round(min(max(acc, 0.05), 1.0), 6)
        train_j = params * epochs * 2e-5 + 0.2
        inf_j = params * 2e-5 + 0.01
        return Evaluation(
            genome=g, status="ok", val_accuracy=acc, test_accuracy=round(acc - 0.005, 6),
            train=Reading("estimate", "process-estimate", False, train_j, train_j / 10.0),
            inference=Reading("estimate", "process-estimate", False, inf_j, inf_j / 10.0),
            train_time_s=train_j / 10.0, inference_time_s=inf_j / 10.0, inference_samples=1000,
            params=params, flops_per_sample=2 * params, wall_time_s=train_j / 10.0, worker="synthetic")
