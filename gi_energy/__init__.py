"""gi-energy: genetic improvement of neural networks for the accuracy-energy trade-off.

Library entry points for research code::

    import gi_energy
    problem = gi_energy.load_problem("quickstart")
    result = gi_energy.evolve(problem, out="runs/my-run")    # NSGA-II search
    grid = gi_energy.run_grid(problem)                       # exhaustive baseline
    report = gi_energy.compare([result.run_dir], reference=grid.run_dir)
"""

from .compare import compare
from .errors import GiEnergyError, ProblemError
from .grid import run_grid
from .problem import Problem, load_problem, parse_problem
from .results import Evaluation, Outcome
from .search import EvolveResult, evolve
from .space import Genome, Grid, SearchSpace

__version__ = "0.1.0"

__all__ = [
    "Evaluation",
    "EvolveResult",
    "GiEnergyError",
    "Genome",
    "Grid",
    "Outcome",
    "Problem",
    "ProblemError",
    "SearchSpace",
    "compare",
    "evolve",
    "load_problem",
    "parse_problem",
    "run_grid",
]
