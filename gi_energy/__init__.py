"""gi-energy: genetic improvement of neural networks for the accuracy-energy trade-off.

Library entry points for research code::

    import gi_energy
    problem = gi_energy.load_problem("quickstart")
    result = gi_energy.evolve(problem, out="runs/my-run")    # NSGA-II search
    grid = gi_energy.run_grid(problem)                       # exhaustive baseline
    report = gi_energy.compare([result.run_dir], reference=grid.run_dir)
    with gi_energy.meter() as m:                             # energy of any code
        work()
    m.reading                                                # Reading: energy_j, backend, measured...
"""

from gi_energy.config.parse import load_problem, parse_problem
from gi_energy.config.problem import Problem
from gi_energy.config.space import Genome, Grid, SearchSpace
from gi_energy.meters.public import Meter, meter
from gi_energy.meters.reading import Reading
from gi_energy.report.compare import compare
from gi_energy.search.evolve import EvolveResult, evolve
from gi_energy.search.grid import run_grid
from gi_energy.tasks.results import Evaluation, Outcome

from .errors import GiEnergyError, ProblemError

__version__ = "0.1.0"

__all__ = [
    "Evaluation",
    "EvolveResult",
    "GiEnergyError",
    "Genome",
    "Grid",
    "Meter",
    "Outcome",
    "Problem",
    "ProblemError",
    "Reading",
    "SearchSpace",
    "compare",
    "evolve",
    "load_problem",
    "meter",
    "parse_problem",
    "run_grid",
]
