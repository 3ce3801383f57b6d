"""Draw and apply one mutation: every (operator, target) that can change the genome is
equally likely, so a space with many hyperparameters still mutates structure, and an
operator at its edge (no layer left to remove) is never drawn."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import SearchSpace

from .registry import MUTATIONS, Mutation


def mutation_moves(genome: Genome, space: SearchSpace,
                   operators: Mapping[str, Mutation] = MUTATIONS) -> list[tuple[str, str]]:
    """Every (operator name, target) that applies to ``genome``, in a stable order."""
    return list(_moves(genome, space, operators))


def _moves(genome: Genome, space: SearchSpace, operators: Mapping[str, Mutation]) -> tuple[tuple[str, str], ...]:
    # Remembered per space, operator table and layer counts: a search asks thousands of
    # times for the same few answers (the space is frozen; the memo is not one of its
    # fields). The table is checked entry by entry (by identity), so a table changed in
    # place is never answered from the memo of the old one. A table with an operator
    # whose moves depend on more than the layer counts is asked every time (memo None).
    table = (tuple(operators), tuple(operators.values()))
    memo = space.__dict__.get("_mutation_moves")
    if memo is None or memo[0] != table:
        memo = (table, {} if all(op.by_counts for op in operators.values()) else None)
        space.__dict__["_mutation_moves"] = memo
    if memo[1] is None:
        return _listed(genome, space, operators)
    layers = genome.layers
    counts = tuple([len(layers.get(s, ())) for s in space.layers])
    moves = memo[1].get(counts)
    if moves is None:
        moves = memo[1][counts] = _listed(genome, space, operators)
    return moves


def _listed(genome: Genome, space: SearchSpace, operators: Mapping[str, Mutation]) -> tuple[tuple[str, str], ...]:
    """Every (operator name, target) asked of the operators themselves."""
    return tuple((name, target) for name, op in operators.items() for target in op.targets(genome, space))


def mutate(genome: Genome, space: SearchSpace, rng: np.random.Generator,
           operators: Mapping[str, Mutation] = MUTATIONS) -> Genome:
    """One mutation drawn uniformly from the applicable moves; the genome repaired if none."""
    moves = _moves(genome, space, operators)
    if not moves:
        return space.repair(genome)
    name, target = moves[int(rng.integers(len(moves)))]
    return operators[name].apply(genome, space, rng, target)
