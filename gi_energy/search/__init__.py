"""The searches: the NSGA-II loop (evolve.py) with its survival, surrogate, budgets and
checkpoints, and the exhaustive grid baseline (grid.py).

This package deliberately re-exports nothing: ``gi_energy.evolve`` is the function, and a
name here would be shadowed by the module ``gi_energy.search.evolve``."""
