"""Initial designs: the first generation of a search.

``random`` (``DESIGN``, the default): each genome sampled independently from the space
(``SearchSpace.sample``).

``spread`` (tried on the development tables with experiments/tune_default.py and not
kept: no consistent gain, see experiments/README.md): a Latin hypercube over the space's
factors. Each hyperparameter and each structure's layer count
is spread over the ``n`` genomes on its own: a choice's levels each taken ``n / k``
times (rounded, the remainder drawn at random), a range cut into ``n`` equal strata
(on the log scale where it is log) with one value drawn in each, each column shuffled
on its own. Layer sizes are spread the same way over the genomes' first layers, and the
further layers copy the first (a small, uniform network is as likely as a tapered one).
A first generation of ``n`` then takes every level of each factor of up to ``n`` levels,
where ``n`` independent draws may miss some.
"""

from __future__ import annotations

import math

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import Choice, Fixed, IntRange, RealRange, SearchSpace

# The first generation's design: "random", or "spread" (tried, not kept; set by
# experiments/tune_default.py's variants).
DESIGN = "random"


def spread_column(p, n: int, rng: np.random.Generator) -> list:
    """``n`` values of one factor ``p``, spread over its range (shuffled)."""
    if isinstance(p, Fixed):
        return [p.value] * n
    if isinstance(p, Choice):
        k = len(p.options)
        values = [p.options[i % k] for i in range(n - n % k)]
        values += [p.options[int(i)] for i in rng.choice(k, size=n % k, replace=False)]
        return [values[int(i)] for i in rng.permutation(n)]
    if isinstance(p, IntRange | RealRange):
        log = p.log and p.low > 0
        lo, hi = (math.log(p.low), math.log(p.high + (1 if isinstance(p, IntRange) else 0))) if log else \
            (float(p.low), float(p.high + (1 if isinstance(p, IntRange) else 0)))
        u = (rng.permutation(n) + rng.uniform(0.0, 1.0, n)) / n  # one draw in each of n strata
        xs = [math.exp(lo + x * (hi - lo)) if log else lo + x * (hi - lo) for x in u.tolist()]
        if isinstance(p, IntRange):
            return [p.clip(math.floor(x)) for x in xs]
        return [p.clip(x) for x in xs]
    return [p.sample(rng) for _ in range(n)]


def spread_genomes(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Genome]:
    """``n`` genomes of a Latin hypercube over ``space`` (repaired into it)."""
    if n <= 0:
        return []
    columns = {name: spread_column(p, n, rng) for name, p in space.params.items()}
    layer_columns = {}
    for name, ls in space.layers.items():
        counts = spread_column(ls.count, n, rng)
        sizes = spread_column(ls.size, n, rng)
        tracks = {t: spread_column(p, n, rng) for t, p in ls.tracks(name)}
        layer_columns[name] = (counts, sizes, tracks)
    out = []
    for i in range(n):
        layers = {}
        for name, (counts, sizes, tracks) in layer_columns.items():
            layers[name] = (sizes[i],) * counts[i]
            for t, col in tracks.items():
                layers[t] = (col[i],) * counts[i]
        out.append(space.repair(Genome(layers=layers, values={k: col[i] for k, col in columns.items()})))
    return out


def first_generation(space: SearchSpace, n: int, rng: np.random.Generator, max_tries: int) -> list[Genome]:
    """``n`` genomes of the ``DESIGN`` (sampled, or the spread design's), each re-sampled
    (at most ``max_tries`` times) while its key repeats one drawn before."""
    out: list[Genome] = []
    keys: set[str] = set()
    design = iter(spread_genomes(space, n, rng) if DESIGN == "spread" else ())
    for _ in range(n):
        g = next(design, None) or space.sample(rng)
        tries = 0
        while g.key in keys and tries < max_tries:
            g = space.sample(rng)
            tries += 1
        out.append(g)
        keys.add(g.key)
    return out
