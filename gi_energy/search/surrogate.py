"""Surrogate-assisted pre-screening of offspring (``[search] surrogate = "forest"``).

The standard device of expensive multi-objective EAs: each generation the operators
breed ``surrogate_pool`` x the children needed (all novel), a cheap model fitted on every
ok evaluation so far predicts each candidate's objectives, and only the most promising
are evaluated. Most of them are picked one at a time by the hypervolume their predicted
point adds to the run's current front and the points picked before it, measured on
the front's own scale (``ACQUISITION = "hvi"``, :func:`hvi_order`); once no candidate
adds any (forest predictions are averages of observed values, so they rarely pass the
front), the rest follow the ranking by non-domination and crowding of the predicted
vectors sorted together with the front. With constraints, each constrained metric gets
a forest of its own, only candidates predicted feasible can be picked by gain, and one
predicted feasible ranks before any predicted infeasible. A share (``EXPLORE``) is drawn
at random from the rest of the pool, so a wrong model cannot trap the search. (Tried on
the suite's development half and left off: an optimistic bound, mean - k x the trees'
spread, ``OPTIMISM``; ParEGO's random scalarisations, ``ACQUISITION = "parego"``; see
experiments/tune_default.py.)

The model is one scikit-learn extremely randomised forest per objective on a
deterministic encoding of the genome (:class:`GenomeEncoder`). An objective whose
observed values are all positive (energies, sizes) is modelled in log: those span orders
of magnitude and the front lies at their low end, where a model of the raw values has no
resolution. Ranking happens in the model's space (log where it is log), which leaves
domination unchanged. Separate forests, not one multi-output forest: splits chosen for
accuracy are poor splits for energy. Both choices were measured (rank correlation of
predictions on held-out grid points, and the search-vs-grid experiment; see
experiments/README.md). The model is refit from scratch every generation from the run's
outcomes in evaluation order, with a ``random_state`` drawn from the search's generator,
so the same seed gives the same run and a resumed run (same outcomes, restored
generator) screens exactly as an unbroken one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import (
    Choice,
    Fixed,
    IntRange,
    LayerSpace,
    RealRange,
    SearchSpace,
)
from gi_energy.pareto import excess_over

from . import nsga2

SURROGATES = ("auto", "none", "forest")
# Share of each screened generation drawn at random from the pool (at least one child).
EXPLORE = 0.1
N_TREES = 48
# How the exploited share is picked: "hvi" (greedy predicted HV gain on the front's own
# scale, then as ranked), "parego" (a random augmented Tchebycheff scalarisation per pick;
# tried, not kept) or "rank" (non-domination, then crowding, of the predicted points
# among themselves and the front; the rule before issue 14).
ACQUISITION = "hvi"
# Screening ranks the optimistic bound mean - OPTIMISM x (spread of the trees) when > 0.
OPTIMISM = 0.0


def _numeric(options: Sequence) -> bool:
    return all(isinstance(o, int | float) and not isinstance(o, bool) for o in options)


def _log_scale(options: Sequence) -> bool:
    """Numeric levels spanning a decade or more, all positive: encoded in log."""
    return _numeric(options) and min(options) > 0 and max(options) / min(options) >= 10


def _size_log(ls: LayerSpace) -> bool:
    s = ls.size
    return s.log if isinstance(s, IntRange) else _log_scale(s.options)


def _max_count(ls: LayerSpace) -> int:
    c = ls.count
    return int(c.high) if isinstance(c, IntRange) else int(max(c.options))


class GenomeEncoder:
    """A fixed-length real vector per genome, built from the search space alone.

    Per structure: the layer count, the mean (log) size and one (log) size per layer slot
    (0 where the genome has no such layer). Per hyperparameter: integers and reals as
    they are or in log (``log = true``, or numeric levels spanning a decade), strings and
    booleans one-hot; fixed values are left out. ``decode`` inverts it (up to the 12
    significant digits genome keys keep) for genomes in the space.
    """

    def __init__(self, space: SearchSpace):
        self.space = space
        self.columns: list[str] = []
        self._layers: list[tuple[str, LayerSpace, bool, int]] = []
        for name, ls in space.layers.items():
            slots = _max_count(ls)
            log = _size_log(ls)
            self._layers.append((name, ls, log, slots))
            self.columns += [f"{name}.count", f"{name}.mean_size"] + [f"{name}.size{i}" for i in range(slots)]
        # Per-layer values, one column per layer slot: the value, or a choice's position + 1
        # (0 where the genome has no such layer; trees split on order, so ordinal is enough).
        self._tracks: list[tuple[str, tuple | None, int]] = []
        for name, ls in space.layers.items():
            for track, p in ls.tracks(name):
                opts = None if isinstance(p, IntRange) or _numeric(p.options) else tuple(p.options)
                self._tracks.append((track, opts, _max_count(ls)))
                self.columns += [f"{track}{i}" for i in range(_max_count(ls))]
        self._params: list[tuple[str, str, tuple]] = []  # (name, kind, options)
        for name, p in space.params.items():
            if isinstance(p, Fixed):
                continue
            if isinstance(p, IntRange | RealRange):
                self._params.append((name, "log" if p.log else "lin", ()))
                self.columns.append(name)
            elif isinstance(p, Choice) and _numeric(p.options):
                self._params.append((name, "log" if _log_scale(p.options) else "lin", ()))
                self.columns.append(name)
            else:
                opts = tuple(p.options)
                self._params.append((name, "onehot", opts))
                self.columns += [f"{name}={o}" for o in opts]

    @property
    def n_features(self) -> int:
        return len(self.columns)

    def encode(self, genome: Genome) -> np.ndarray:
        row: list[float] = []
        for name, _ls, log, slots in self._layers:
            sizes = list(genome.layers.get(name, ()))
            f = [math.log(s) if log else float(s) for s in sizes]
            row += [float(len(sizes)), float(np.mean(f)) if f else 0.0]
            row += [f[i] if i < len(f) else 0.0 for i in range(slots)]
        for track, opts, slots in self._tracks:
            vals = [float(opts.index(v) + 1) if opts else float(v) for v in genome.layers.get(track, ())]
            row += [vals[i] if i < len(vals) else 0.0 for i in range(slots)]
        for name, kind, opts in self._params:
            v = genome.values[name]
            if kind == "onehot":
                row += [1.0 if v == o else 0.0 for o in opts]
            else:
                row.append(math.log(float(v)) if kind == "log" else float(v))
        return np.asarray(row, dtype=float)

    def encode_many(self, genomes: Sequence[Genome]) -> np.ndarray:
        if not genomes:
            return np.zeros((0, self.n_features))
        return np.vstack([self.encode(g) for g in genomes])

    def decode(self, x: Sequence[float]) -> Genome:
        x = list(map(float, x))
        i = 0
        layers: dict[str, tuple[int, ...]] = {}
        for name, _ls, log, slots in self._layers:
            count = int(round(x[i]))
            raw = x[i + 2: i + 2 + slots][:count]
            layers[name] = tuple(int(round(math.exp(v) if log else v)) for v in raw)
            i += 2 + slots
        for track, opts, slots in self._tracks:
            n = len(layers[track.split(".", 1)[0]])
            raw = x[i: i + slots][:n]
            layers[track] = tuple(opts[max(0, min(len(opts), int(round(v))) - 1)] if opts else int(round(v))
                                  for v in raw)
            i += slots
        values: dict = {}
        for name, kind, opts in self._params:
            if kind == "onehot":
                values[name] = opts[int(np.argmax(x[i: i + len(opts)]))]
                i += len(opts)
            else:
                v = math.exp(x[i]) if kind == "log" else x[i]
                if isinstance(self.space.params[name], IntRange):
                    v = int(round(v))
                values[name] = v
                i += 1
        return self.space.repair(Genome(layers=layers, values=values))


class ForestSurrogate:
    """One extremely randomised forest per objective, on standardised targets that are
    logged where every observed value is positive (minimisation vectors)."""

    def __init__(self, encoder: GenomeEncoder, random_state: int):
        self.encoder = encoder
        self.random_state = int(random_state)
        self.models: list = []
        self.log: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def model_space(self, values: np.ndarray) -> np.ndarray:
        """Minimisation vectors in the space the model works in (log where it logs); a
        per-objective increasing map, so domination is the same in both spaces."""
        y = np.asarray(values, dtype=float).reshape(-1, len(self.log))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.log, np.log(np.where(self.log, y, 1.0)), y)

    def fit(self, genomes: Sequence[Genome], values: np.ndarray) -> ForestSurrogate:
        from sklearn.ensemble import ExtraTreesRegressor

        y = np.asarray(values, dtype=float)
        self.log = np.all(y > 0, axis=0)
        z = self.model_space(y)
        self.mean = z.mean(axis=0)
        scale = z.std(axis=0)
        self.scale = np.where(scale > 0, scale, 1.0)
        z = (z - self.mean) / self.scale
        x = self.encoder.encode_many(genomes)
        self.models = []
        for j in range(z.shape[1]):
            m = ExtraTreesRegressor(n_estimators=N_TREES, random_state=self.random_state, n_jobs=1)
            self.models.append(m.fit(x, z[:, j]))
        return self

    def predict_model_space(self, genomes: Sequence[Genome], optimism: float | None = None) -> np.ndarray:
        """Predicted objectives in :meth:`model_space`; with ``optimism`` k > 0 (default
        ``OPTIMISM``), the optimistic bound mean - k x the spread of the trees' predictions
        (a lower confidence bound: a candidate the forest knows little about ranks higher)."""
        x = self.encoder.encode_many(genomes)
        k = OPTIMISM if optimism is None else optimism
        if k > 0:
            cols = []
            for m in self.models:
                per_tree = np.stack([t.predict(x) for t in m.estimators_])
                cols.append(per_tree.mean(axis=0) - k * per_tree.std(axis=0))
            z = np.column_stack(cols).reshape(len(genomes), -1)
        else:
            z = np.column_stack([m.predict(x) for m in self.models]).reshape(len(genomes), -1)
        return z * self.scale + self.mean

    def predict(self, genomes: Sequence[Genome]) -> np.ndarray:
        """Predicted minimisation vectors, in the objectives' own units."""
        z = self.predict_model_space(genomes)
        return np.where(self.log, np.exp(np.where(self.log, z, 0.0)), z)


def min_points(encoder: GenomeEncoder, population: int) -> int:
    """Ok evaluations needed before screening: twice the features or the initial
    population, whichever comes first (but never fewer than 4)."""
    return max(4, min(2 * encoder.n_features, population))


def predicted_violation(predicted: np.ndarray, limits: Sequence[float]) -> np.ndarray:
    """Per pool member, the constraint violation survival would give the predicted
    metrics (columns in the order of ``limits``, upper limits): :func:`excess_over`."""
    pred = np.asarray(predicted, dtype=float).reshape(-1, len(limits))
    return np.asarray([excess_over(row, limits) for row in pred], dtype=float)


def hvi_order(predicted: np.ndarray, front: np.ndarray, candidates: Sequence[int], n: int) -> list[int]:
    """Up to ``n`` of ``candidates`` (indices into ``predicted``), picked one at a time by
    the hypervolume their predicted point adds to the front and the points already picked
    (the "believer" batch rule); stops when none adds any. Normalised per objective by
    the front's own ideal and nadir, reference point 10 % beyond its nadir."""
    from gi_energy.report.indicators import hypervolume

    pts, s = _front_scaled(predicted, front)
    ref = (s.max(axis=0) if len(s) else pts.max(axis=0)) + 0.1
    chosen: list[int] = []
    # a point the front already dominates (or one beyond the reference) adds nothing, now or later
    cand = np.asarray(list(candidates), dtype=int)
    if len(cand) and len(s):
        c = pts[cand]
        dominated = ((s[None, :, :] <= c[:, None, :]).all(axis=2) & (s[None, :, :] < c[:, None, :]).any(axis=2)).any(axis=1)
        cand = cand[~dominated & (c < ref).all(axis=1)]
    left = [int(i) for i in cand]
    hv_s = hypervolume(s, ref)
    while left and len(chosen) < n:
        gains = [hypervolume(np.vstack([s, pts[i]]), ref) - hv_s for i in left]
        j = int(np.argmax(gains))
        if gains[j] <= 1e-12:
            break
        i = left.pop(j)
        chosen.append(i)
        s = np.vstack([s, pts[i]])
        hv_s += gains[j]
    return chosen


def _front_scaled(predicted: np.ndarray, front: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The predicted points and the front, normalised per objective by the front's own
    ideal and nadir (the scale the front-scale HV ratio judges on); an objective the
    front does not spread on takes the span of the front and the pool together."""
    pred = np.asarray(predicted, dtype=float)
    base = np.asarray(front, dtype=float).reshape(-1, pred.shape[1])
    every = np.vstack([base, pred])
    own = base if len(base) else every
    low, high = own.min(axis=0), own.max(axis=0)
    wide = every.max(axis=0) - every.min(axis=0)
    span = np.where(high > low, high - low, np.where(wide > 0, wide, 1.0))
    return (pred - low) / span, (base - low) / span


def parego_order(predicted: np.ndarray, front: np.ndarray, candidates: Sequence[int], n: int,
                 rng: np.random.Generator, rho: float = 0.05) -> list[int]:
    """Up to ``n`` of ``candidates``, picked one at a time by ParEGO's augmented Tchebycheff
    scalarisation of their predicted points (on the front's own scale, from its ideal):
    ``max_j w_j f_j + rho * sum_j w_j f_j``, smallest first, under a weight vector ``w``
    drawn uniformly from the simplex for each pick (Knowles 2006). (Tried on the suite's
    development half, ``ACQUISITION = "parego"``; see experiments/README.md.)"""
    pts, _ = _front_scaled(predicted, front)
    left = [int(i) for i in candidates]
    chosen: list[int] = []
    while left and len(chosen) < n:
        w = rng.dirichlet(np.ones(pts.shape[1]))
        d = pts[left] * w
        j = int(np.argmin(d.max(axis=1) + rho * d.sum(axis=1)))
        chosen.append(left.pop(j))
    return chosen


def screen(predicted: np.ndarray, front: np.ndarray, n: int, rng: np.random.Generator,
           explore: float | None = None, violation: np.ndarray | None = None,
           acquisition: str | None = None) -> list[int]:
    """Indices (ascending) of the ``n`` pool members to evaluate.

    ``predicted`` holds one predicted minimisation vector per pool member, ``front`` the
    run's current front (observed). ``n - n_explore`` members are picked by predicted
    hypervolume gain (:func:`hvi_order`, ``acquisition`` "hvi", default ``ACQUISITION``;
    "parego": by :func:`parego_order`, which draws its weights from ``rng``),
    then as ranked by non-domination then crowding of the predicted vectors sorted
    together with the front (ties: pool order; ``acquisition`` "rank": by that ranking
    alone); ``n_explore = max(1, round(explore * n))`` (none when n is 1 or explore is 0) are drawn at
    random from the others with ``rng``. ``violation`` (one predicted constraint violation per
    pool member, see :func:`predicted_violation`) makes the ranking constrained domination,
    as survival's: a member predicted feasible ranks before any predicted infeasible one."""
    m = len(predicted)
    if n >= m:
        return list(range(m))
    explore = EXPLORE if explore is None else explore
    n_explore = 0 if n <= 1 or explore <= 0 else min(max(1, int(round(explore * n))), n - 1)
    n_exploit = n - n_explore
    viol = np.zeros(m) if violation is None else np.asarray(violation, dtype=float)
    points = [nsga2.Fitness(tuple(float(v) for v in row), float(viol[i])) for i, row in enumerate(predicted)]
    points += [nsga2.Fitness(tuple(float(v) for v in row)) for row in front]
    ranks, crowding = nsga2.rank_and_crowding(points)
    order = sorted(range(m), key=lambda i: (ranks[i], -crowding[i], i))
    acquisition = ACQUISITION if acquisition is None else acquisition
    if acquisition in ("hvi", "parego"):  # by predicted gain or scalarisation, then as ranked
        feasible = [i for i in order if viol[i] <= 0]
        picked = hvi_order(predicted, front, feasible, n_exploit) if acquisition == "hvi" else \
            parego_order(predicted, front, feasible, n_exploit, rng)
        taken = set(picked)
        order = picked + [i for i in order if i not in taken]
    chosen = order[:n_exploit]
    rest = sorted(order[n_exploit:])
    if n_explore:
        picked = rng.choice(len(rest), size=n_explore, replace=False)
        chosen += [rest[int(j)] for j in picked]
    return sorted(chosen)
