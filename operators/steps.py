"""One random step of a single value inside its range: the numerics every mutation uses.

Each function returns a value inside the range that differs from ``value`` whenever the
range holds another value, so a mutation never silently spends an evaluation on its parent.
"""

from __future__ import annotations

import math

import numpy as np

from gi_energy.config.space import Choice, Fixed, IntRange, RealRange

# Step widths as fractions of the range: wide enough to leave a basin, narrow enough that
# a child stays near its parent (the usual 1/10 .. 1/4 of the span in evolution strategies).
LOG_SIGMA_FRACTION = 0.25
LINEAR_SIGMA_FRACTION = 0.15
# log-scale step for layer sizes: sigma 0.5 in ln units changes a width by ~x1.65 typically.
SIZE_LOG_SIGMA = 0.5


def step_real(value: float, bounds: RealRange, rng: np.random.Generator) -> float:
    """Log-normal step for a log range, Gaussian step otherwise; clipped into the range."""
    if bounds.low == bounds.high:
        return bounds.clip(bounds.low)
    if bounds.log:
        sigma = LOG_SIGMA_FRACTION * math.log(bounds.high / bounds.low)
        new = float(value) * math.exp(rng.normal(0.0, sigma))
    else:
        sigma = LINEAR_SIGMA_FRACTION * (bounds.high - bounds.low)
        new = float(value) + rng.normal(0.0, sigma)
    new = bounds.clip(new)
    if new == value:
        # A clipped step at a bound lands on the parent: step into the range instead.
        new = bounds.clip(rng.uniform(bounds.low, bounds.high))
    return new


def step_int(value: int, bounds: IntRange, rng: np.random.Generator, *, log: bool | None = None,
             log_sigma: float | None = None) -> int:
    """Bounded integer step (log-scale when the range is log or ``log`` is set); never 0."""
    if bounds.low == bounds.high:
        return bounds.low
    use_log = bounds.log if log is None else log
    value = bounds.clip(value)
    if use_log and bounds.low > 0:
        sigma = log_sigma if log_sigma is not None else LOG_SIGMA_FRACTION * math.log(
            (bounds.high + 1) / bounds.low)
        new = bounds.clip(value * math.exp(rng.normal(0.0, sigma)))
    else:
        sigma = max(1.0, LINEAR_SIGMA_FRACTION * (bounds.high - bounds.low))
        new = bounds.clip(value + rng.normal(0.0, sigma))
    if new == value:
        # Rounding ate the step (small values, or a bound): move one unit instead.
        direction = 1 if rng.random() < 0.5 else -1
        if not bounds.low <= value + direction <= bounds.high:
            direction = -direction
        new = value + direction
    return int(new)


def step_level(value, choice: Choice, rng: np.random.Generator):
    """Move to a neighbouring level of an ordered list of numeric levels."""
    levels = sorted(choice.options)
    if len(levels) == 1:
        return levels[0]
    value = choice.clip(value)
    i = levels.index(value)
    neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(levels)]
    return levels[neighbours[int(rng.integers(len(neighbours)))]]


def resample_choice(value, choice: Choice, rng: np.random.Generator):
    """Any other option, uniformly (categoricals have no order to step along)."""
    others = [o for o in choice.options if o != value]
    if not others:
        return value
    return others[int(rng.integers(len(others)))]


def step_param(value, param, rng: np.random.Generator):
    """One step of a hyperparameter by its type; Fixed values are returned untouched."""
    if isinstance(param, Fixed):
        return param.value
    if isinstance(param, RealRange):
        return step_real(value, param, rng)
    if isinstance(param, IntRange):
        return step_int(value, param, rng)
    if isinstance(param, Choice):
        return resample_choice(value, param, rng)
    raise TypeError(f"unknown parameter kind {type(param).__name__}")


def step_size(value: int, size, rng: np.random.Generator) -> int:
    """A layer size step: log-scale for ranges (widths are multiplicative), neighbour level
    for Choice levels."""
    if isinstance(size, Choice):
        return int(step_level(value, size, rng))
    return step_int(value, size, rng, log=size.low > 0, log_sigma=SIZE_LOG_SIGMA)


def mutable(param) -> bool:
    """True when the parameter has more than one value to move between."""
    if isinstance(param, Fixed):
        return False
    if isinstance(param, Choice):
        return len(param.options) > 1
    return param.low < param.high
