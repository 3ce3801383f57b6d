"""Draw and apply one mutation: every (operator, target) that can change the genome is
equally likely, so a space with many hyperparameters still mutates structure, and an
operator at its edge (no layer left to remove) is never drawn."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gi_energy.config.space import Genome, SearchSpace

from .registry import MUTATIONS, Mutation


def mutation_moves(genome: Genome, space: SearchSpace,
                   operators: Mapping[str, Mutation] = MUTATIONS) -> list[tuple[str, str]]:
    """Every (operator name, target) that applies to ``genome``, in a stable order."""
    return [(name, target) for name, op in operators.items() for target in op.targets(genome, space)]


def mutate(genome: Genome, space: SearchSpace, rng: np.random.Generator,
           operators: Mapping[str, Mutation] = MUTATIONS) -> Genome:
    """One mutation drawn uniformly from the applicable moves; the genome repaired if none."""
    moves = mutation_moves(genome, space, operators)
    if not moves:
        return space.repair(genome)
    name, target = moves[int(rng.integers(len(moves)))]
    return operators[name].apply(genome, space, rng, target)
