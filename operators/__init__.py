"""Variation operators (installed as gi_energy.operators).

Plain functions, one concept per module, each taking an ``np.random.Generator``:

* ``structure``: add_layer, remove_layer, resize_layer
* ``hyperparameters``: mutate_hyperparameter (by the parameter's type)
* ``crossover``: one-point on layer lists, uniform on hyperparameters
* ``steps``: the numeric step of one value inside its range
* ``mutate``: draw one applicable mutation; ``novelty``: re-mutate already-seen children
* ``registry``: the explicit ``MUTATIONS`` and ``CROSSOVERS`` dicts
"""

from .crossover import crossover
from .hyperparameters import mutate_hyperparameter
from .mutate import mutate, mutation_moves
from .novelty import make_novel
from .registry import CROSSOVERS, MUTATIONS, Mutation, get_crossover, get_mutation
from .structure import add_layer, remove_layer, resize_layer

__all__ = [
    "CROSSOVERS",
    "MUTATIONS",
    "Mutation",
    "add_layer",
    "crossover",
    "get_crossover",
    "get_mutation",
    "make_novel",
    "mutate",
    "mutate_hyperparameter",
    "mutation_moves",
    "remove_layer",
    "resize_layer",
]
