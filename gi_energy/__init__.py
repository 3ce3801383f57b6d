"""gi-energy: genetic improvement of neural networks for the accuracy-energy trade-off.

Library entry points for research code::

    import gi_energy
    problem = gi_energy.load_problem("quickstart")
    result = gi_energy.evolve(problem, out="runs/my-run")    # NSGA-II search
    grid = gi_energy.run_grid(problem)                       # exhaustive baseline
    report = gi_energy.compare([result.run_dir], reference=grid.run_dir)
    run = gi_energy.open_run(result.run_dir)                 # a finished run, read back
    run.to_dataframe(); run.plot_front()                     # pandas DataFrame, matplotlib Figure
    with gi_energy.meter() as m:                             # energy of any code
        work()
    m.reading                                                # Reading: energy_j, backend, measured...
"""

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem, parse_problem
from gi_energy.config.problem import Problem
from gi_energy.config.space import Grid, SearchSpace
from gi_energy.meters.public import Meter, meter
from gi_energy.meters.reading import Reading
from gi_energy.report.compare import compare
from gi_energy.report.comparison import Comparison
from gi_energy.report.run import RunResult, open_run
from gi_energy.search.evolve import EvolveResult, evolve
from gi_energy.search.grid import run_grid
from gi_energy.tasks.base import Diverged, Task, Trial
from gi_energy.tasks.results import Evaluation, Outcome

from .errors import GiEnergyError, ProblemError

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Diverged",
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
    "RunResult",
    "SearchSpace",
    "Task",
    "Trial",
    "compare",
    "evolve",
    "load_problem",
    "meter",
    "open_run",
    "parse_problem",
    "run_grid",
]
