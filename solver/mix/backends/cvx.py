"""Shared cvxpy translation of the neutral model for the conic backends (ECOS_BB, and MOSEK/Gurobi when licensed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dmplan.solver.common import Progress, ProgressCallback, Status
from dmplan.solver.mix.backends.base import BackendOutcome, Clock
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem, check_plan

ABS_EPS = 1e-6


def build_problem(model: ConicModel, *, relax: bool) -> tuple[Any, Any]:
    """The cvxpy problem of the neutral model and the expression of its columns.

    Cones ``t z >= y^2`` become the vectorised second-order cones ``||(2y, t - z)|| <= t + z``.

    Parameters
    ----------
    model:
        The neutral model.
    relax:
        Make binaries continuous in [0, 1] (the continuous relaxation).

    Returns
    -------
    tuple
        ``(cvxpy.Problem, column_expression)``.
    """
    import cvxpy as cp

    integer = np.flatnonzero(model.integer)
    continuous = np.flatnonzero(~model.integer) if not relax else np.arange(model.num_vars)
    if relax:
        integer = np.zeros(0, dtype=np.int64)
    v = cp.Variable(continuous.size)
    zb = cp.Variable(integer.size, boolean=True) if integer.size else None
    position = np.empty(model.num_vars, dtype=np.int64)
    position[continuous] = np.arange(continuous.size)
    position[integer] = continuous.size + np.arange(integer.size)
    stacked = cp.hstack([v, zb]) if zb is not None else v
    column = stacked[position]
    lower = model.lower[continuous]
    upper = model.upper[continuous]
    constraints = []
    finite_lo = np.isfinite(lower)
    finite_hi = np.isfinite(upper)
    if finite_lo.any():
        constraints.append(v[np.flatnonzero(finite_lo)] >= lower[finite_lo])
    if finite_hi.any():
        constraints.append(v[np.flatnonzero(finite_hi)] <= upper[finite_hi])
    activity = model.matrix @ column
    finite = np.isfinite(model.row_lower)
    if finite.any():
        constraints.append(activity[np.flatnonzero(finite)] >= model.row_lower[finite])
    finite = np.isfinite(model.row_upper)
    if finite.any():
        constraints.append(activity[np.flatnonzero(finite)] <= model.row_upper[finite])
    if model.cone_t.size:
        t = column[model.cone_t]
        y = column[model.cone_x]
        has_z = model.cone_z >= 0
        z: Any
        if has_z.all():
            z = column[model.cone_z]
        elif not has_z.any():
            z = np.ones(model.cone_t.size)
        else:
            selector = np.zeros((model.cone_t.size, model.num_vars))
            selector[np.flatnonzero(has_z), model.cone_z[has_z]] = 1.0
            z = selector @ column + (~has_z).astype(float)
        constraints.append(cp.SOC(t + z, cp.vstack([2 * y, t - z]), axis=0))
    objective = cp.Maximize(model.cost @ column + model.offset)
    return cp.Problem(objective, constraints), column


def solve_with_cvxpy(
    problem: MixProblem,
    model: ConicModel,
    *,
    time_limit: float | None,
    gap: float,
    progress: ProgressCallback | None,
    solver: str,
    options: dict[str, object],
) -> BackendOutcome:
    """Solve the neutral ``model`` of ``problem`` with a mixed-integer conic solver through cvxpy.

    Parameters
    ----------
    problem, model:
        The problem and its formulation.
    time_limit:
        Only used for the progress report (solver options carry the limit).
    gap:
        Relative gap the solver was asked for; the reported bound is ``objective + gap * |objective|``
        when the solver says optimal (cvxpy exposes no dual bound).
    progress:
        Called once at the end.
    solver, options:
        cvxpy solver name and its options.

    Returns
    -------
    BackendOutcome
    """
    import cvxpy as cp

    clock = Clock(time_limit)
    cvx, column = build_problem(model, relax=False)
    try:
        cvx.solve(solver=solver, **options)
    except cp.error.SolverError as error:
        return BackendOutcome(Status.ERROR, message=f"{solver} failed: {error}")
    if cvx.status in ("infeasible", "infeasible_inaccurate"):
        return BackendOutcome(Status.INFEASIBLE, message=f"{solver}: infeasible")
    if column.value is None:
        return BackendOutcome(Status.ERROR, message=f"{solver}: {cvx.status}")
    values = np.asarray(column.value, dtype=float).ravel()
    change = model.decode(values, problem)
    if not check_plan(problem, change).ok:
        return BackendOutcome(Status.ERROR, message=f"{solver}: {cvx.status}, plan fails the re-check")
    value = float(cvx.value)
    bound = value + max(ABS_EPS, gap * abs(value)) if cvx.status == "optimal" else math.inf
    if progress is not None:
        progress(Progress(clock.elapsed(), problem.revenue(change), bound, 1.0, f"{solver.lower()} {cvx.status}"))
    return BackendOutcome(
        Status.FEASIBLE,
        change=change,
        bound=bound if math.isfinite(bound) else None,
        message=f"{solver}: {cvx.status}; bound = the solver's termination criterion",
    )
