"""``gurobi``: the MISOCP/MIQP through cvxpy with GUROBI, used only when gurobipy is importable and licensed.

Not exercised on this machine (no licence); :func:`check_available` makes the backend skip cleanly.
The bound is the solver's termination criterion as cvxpy exposes no dual bound.
"""

from __future__ import annotations

import numpy as np

from dmplan.solver.common import ProgressCallback
from dmplan.solver.mix.backends.base import BackendOutcome, BackendUnavailable
from dmplan.solver.mix.backends.cvx import solve_with_cvxpy
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem


def check_available() -> None:
    """Raise :class:`BackendUnavailable` unless gurobipy imports, holds a licence and cvxpy knows GUROBI."""
    try:
        import cvxpy as cp
        import gurobipy

        gurobipy.Env().dispose()  # raises without a valid licence
    except Exception as error:  # ImportError or a licence error of any kind
        raise BackendUnavailable(f"gurobi is not available: {error}") from error
    if "GUROBI" not in cp.installed_solvers():
        raise BackendUnavailable("cvxpy cannot call GUROBI")


def solve(
    problem: MixProblem,
    model: ConicModel,
    *,
    time_limit: float | None,
    gap: float,
    progress: ProgressCallback | None,
    warm_start: np.ndarray | None,
) -> BackendOutcome:
    """Solve the neutral ``model`` with GUROBI through cvxpy (time limit and gap passed on, no warm start).

    Parameters
    ----------
    problem, model:
        The problem and its formulation.
    time_limit, gap:
        Passed to GUROBI.
    progress:
        Called once at the end.
    warm_start:
        Ignored.

    Returns
    -------
    BackendOutcome
    """
    check_available()
    options: dict[str, object] = {"MIPGap": gap, "Threads": 2, **({"TimeLimit": time_limit} if time_limit else {})}
    return solve_with_cvxpy(
        problem, model, time_limit=time_limit, gap=gap, progress=progress, solver="GUROBI", options=options
    )
