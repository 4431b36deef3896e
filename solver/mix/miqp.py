"""MIQP formulation (the paper's model 3.8): region binaries, split change variables, quadratic objective.

Each activity's change is split into one variable per feasible region with an on/off binary, and the
concave revenue ``a y^2`` of each piece is kept as a plain quadratic (written as the epigraph
``t >= y^2`` so that every backend sees the same linear objective). Its continuous relaxation lets
``z`` be fractional without tightening the quadratic, so the root bound is weak.
"""

from __future__ import annotations

from dmplan.solver.mix.formulation import ConicModel, build
from dmplan.solver.mix.model import MixProblem


def formulate(problem: MixProblem) -> ConicModel:
    """The MIQP model of ``problem``.

    Parameters
    ----------
    problem:
        A validated problem.

    Returns
    -------
    ConicModel
        Cones ``t >= y^2`` (no ``z``).
    """
    return build(problem, perspective=False)
