"""Marketing-mix adjustment (Huang, Xu & Lim, arXiv 2101.03663): model, formulations and solver backends.

Pure Python: nothing here imports an Excel library.
"""

from dmplan.solver.mix.api import available_solvers, formulate, solve
from dmplan.solver.mix.model import MixProblem, MixResult, Regions, Rule, check_plan, regions
from dmplan.solver.mix.oracle import brute_force

__all__ = [
    "MixProblem",
    "MixResult",
    "Regions",
    "Rule",
    "available_solvers",
    "brute_force",
    "check_plan",
    "formulate",
    "regions",
    "solve",
]
