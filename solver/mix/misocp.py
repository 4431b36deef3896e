"""MISOCP formulation (the paper's model 3.9): the perspective reformulation of each region's quadratic.

As in the MIQP, each activity has one change variable and one binary per feasible region; the quadratic
of a piece is replaced by its perspective ``t z >= y^2`` (a rotated second-order cone, ``t, z >= 0``) and
the objective is linear in ``t``. At ``z = 0`` the cone forces ``y = 0``; at ``z = 1`` it is the
original quadratic; for fractional ``z`` it is the convex hull of the piece, so the continuous relaxation
is much tighter than the MIQP's.
"""

from __future__ import annotations

from dmplan.solver.mix.formulation import ConicModel, build
from dmplan.solver.mix.model import MixProblem


def formulate(problem: MixProblem) -> ConicModel:
    """The MISOCP model of ``problem``.

    Parameters
    ----------
    problem:
        A validated problem.

    Returns
    -------
    ConicModel
        Cones ``t z >= y^2`` (``z`` omitted for pieces without a binary).
    """
    return build(problem, perspective=True)
