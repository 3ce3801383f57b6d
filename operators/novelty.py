"""Re-mutate a child whose key was already evaluated, so the budget buys new information."""

from __future__ import annotations

from collections.abc import Callable, Container

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import SearchSpace

from .mutate import mutate


def make_novel(child: Genome, seen: Container[str], space: SearchSpace, rng: np.random.Generator,
               max_tries: int, mutate_fn: Callable[..., Genome] = mutate) -> Genome:
    """Mutate ``child`` again (each try builds on the last) until its key is not in ``seen``
    or ``max_tries`` is spent; then it is returned as is (a small space may be exhausted)."""
    tries = 0
    while child.key in seen and tries < max_tries:
        child = mutate_fn(child, space, rng)
        tries += 1
    return child
