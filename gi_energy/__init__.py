"""gi-energy: genetic improvement of neural networks for the accuracy-energy trade-off."""

from .errors import GiEnergyError, NotBuiltError, ProblemError
from .problem import Problem, load_problem, parse_problem
from .results import Evaluation
from .space import Genome, Grid, SearchSpace

__version__ = "0.1.0"

__all__ = [
    "Evaluation",
    "GiEnergyError",
    "Genome",
    "Grid",
    "NotBuiltError",
    "Problem",
    "ProblemError",
    "SearchSpace",
    "load_problem",
    "parse_problem",
]
