"""The explicit registries of variation operators, keyed by the names users would write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import SearchSpace

from .crossover import crossover
from .hyperparameters import hyperparameter_targets, mutate_hyperparameter
from .structure import (
    add_layer,
    add_layer_targets,
    remove_layer,
    remove_layer_targets,
    resize_layer,
    resize_layer_targets,
    revalue_layer,
    revalue_layer_targets,
)


@dataclass(frozen=True)
class Mutation:
    """A mutation and the parts of a genome it can change.

    ``apply(genome, space, rng, target)`` returns a repaired genome; ``targets(genome,
    space)`` lists the structures or hyperparameters where applying it changes something.
    ``by_counts``: the targets depend on nothing but the space and each structure's
    number of layers (so :func:`~.mutate.mutation_moves` may remember them).
    """

    apply: Callable[[Genome, SearchSpace, np.random.Generator, str], Genome]
    targets: Callable[[Genome, SearchSpace], list[str]]
    by_counts: bool = False


MUTATIONS: dict[str, Mutation] = {
    "add_layer": Mutation(add_layer, add_layer_targets, by_counts=True),
    "remove_layer": Mutation(remove_layer, remove_layer_targets, by_counts=True),
    "resize_layer": Mutation(resize_layer, resize_layer_targets, by_counts=True),
    "hyperparameter": Mutation(mutate_hyperparameter, hyperparameter_targets, by_counts=True),
    "revalue_layer": Mutation(revalue_layer, revalue_layer_targets, by_counts=True),
}

Crossover = Callable[[Genome, Genome, SearchSpace, np.random.Generator], tuple[Genome, Genome]]

CROSSOVERS: dict[str, Crossover] = {
    "one_point_uniform": crossover,
}


def get_mutation(name: str) -> Mutation:
    try:
        return MUTATIONS[name]
    except KeyError:
        raise KeyError(f"unknown mutation {name!r}; valid: {', '.join(MUTATIONS)}") from None


def get_crossover(name: str) -> Crossover:
    try:
        return CROSSOVERS[name]
    except KeyError:
        raise KeyError(f"unknown crossover {name!r}; valid: {', '.join(CROSSOVERS)}") from None
