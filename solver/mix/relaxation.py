"""Continuous-relaxation (root) bounds of the MIQP and MISOCP formulations, solved as SOCPs.

The relaxation lets every binary range over [0, 1]. For the MIQP the quadratic stays ``t >= y^2`` and
a fractional ``z`` does not tighten it; the MISOCP's perspective ``t z >= y^2`` is the convex hull of
each piece, so its bound is never weaker. Solved with cvxpy (CLARABEL when installed, else ECOS).
"""

from __future__ import annotations

from dmplan.solver.mix.api import formulate
from dmplan.solver.mix.backends.cvx import build_problem
from dmplan.solver.mix.model import MixProblem


def root_bound(problem: MixProblem, formulation: str) -> float | None:
    """Optimal value of the continuous relaxation of ``formulation`` (``"misocp"`` or ``"miqp"``).

    Parameters
    ----------
    problem:
        The problem.
    formulation:
        Which formulation to relax.

    Returns
    -------
    float or None
        The bound, or None when the relaxation is infeasible or the conic solver fails.
    """
    import cvxpy as cp

    model = formulate(problem, formulation)
    relaxed, _ = build_problem(model, relax=True)
    solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "ECOS"
    try:
        relaxed.solve(solver=solver)
    except cp.error.SolverError:
        return None
    if relaxed.status not in ("optimal", "optimal_inaccurate"):
        return None
    return float(relaxed.value)
