"""Hyperparameter mutation: one value stepped by its type.

``mutate_hyperparameter(genome, space, rng, name)`` steps ``name`` (log-normal for log
reals, Gaussian for linear reals, bounded step for integers, resample for categoricals;
Fixed values are never targets) and returns a genome repaired into ``space``.
"""

from __future__ import annotations

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import SearchSpace

from .steps import mutable, step_param


def mutate_hyperparameter(genome: Genome, space: SearchSpace, rng: np.random.Generator,
                          name: str) -> Genome:
    param = space.params[name]
    current = genome.values.get(name, param.center())
    return space.with_value(genome, name, step_param(current, param, rng))


def hyperparameter_targets(genome: Genome, space: SearchSpace) -> list[str]:
    return [name for name, p in space.params.items() if mutable(p)]
