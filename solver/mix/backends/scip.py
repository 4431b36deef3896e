"""``scip``: the neutral model solved by SCIP through PySCIPOpt (both formulations; a benchmark reference).

Cones become SCIP nonlinear constraints ``t z >= y^2`` (SCIP detects the rotated second-order cone) or
``t >= y^2``. SCIP runs single-threaded with its default settings, the time limit and the relative gap.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import tempfile

import numpy as np

from dmplan.solver.common import Progress, ProgressCallback, Status
from dmplan.solver.mix.backends.base import BackendOutcome, BackendUnavailable
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.local import bounds_of
from dmplan.solver.mix.model import MixProblem, check_plan, region_of, regions
from dmplan.solver.mix.qp import solve_box_qp

#: Ipopt options for SCIP's NLP heuristics: MUMPS orders with AMD instead of METIS, whose overflow crashes
#: the whole process with "free(): invalid size" (scipopt/scip#211; here the retailer case, twice, after
#: 30 to 300 s of SCIP)
IPOPT_OPTIONS = "mumps_pivot_order 0\n"
#: SCIP plans failing the re-check that are repaired (best first) before the best repaired one is taken
REPAIRS = 5


@functools.cache
def ipopt_options_file() -> str:
    """A file with :data:`IPOPT_OPTIONS` for SCIP's ``nlpi/ipopt/optfile``, written once per process."""
    handle, path = tempfile.mkstemp(prefix="dmplan-ipopt-", suffix=".opt")
    with os.fdopen(handle, "w") as file:
        file.write(IPOPT_OPTIONS)
    atexit.register(_remove_quietly, path)
    return path


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def check_available() -> None:
    """Raise :class:`BackendUnavailable` when PySCIPOpt is missing."""
    try:
        import pyscipopt  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise BackendUnavailable(
            "PySCIPOpt is not installed: SCIP is the benchmarks' reference solver, an extra of DMPlan. "
            "Install it with: pip install 'dmplan[bench]' (or choose solver oa)"
        ) from error


def solve(
    problem: MixProblem,
    model: ConicModel,
    *,
    time_limit: float | None,
    gap: float,
    progress: ProgressCallback | None,
    warm_start: np.ndarray | None,
) -> BackendOutcome:
    """Solve the neutral ``model`` of ``problem`` with SCIP.

    Parameters
    ----------
    problem, model:
        The problem and its formulation.
    time_limit, gap:
        SCIP's ``limits/time`` and ``limits/gap``.
    progress:
        Called once at the end (SCIP runs in one call).
    warm_start:
        A feasible change vector handed to SCIP as a start solution.

    Returns
    -------
    BackendOutcome
    """
    import pyscipopt

    scip = pyscipopt.Model()
    scip.hideOutput()
    scip.setParam("nlpi/ipopt/optfile", ipopt_options_file())
    scip.setParam("limits/gap", gap)
    if time_limit is not None:
        scip.setParam("limits/time", max(0.1, time_limit))
    variables = []
    for j in range(model.num_vars):
        vtype = (
            "B"
            if model.integer[j] and model.lower[j] >= 0 and model.upper[j] <= 1
            else ("I" if model.integer[j] else "C")
        )
        variables.append(scip.addVar(f"v{j}", vtype=vtype, lb=model.lower[j], ub=model.upper[j], obj=model.cost[j]))
    scip.addObjoffset(model.offset)
    scip.setMaximize()
    matrix = model.matrix.tocsr()
    for r in range(model.num_rows):
        cols = matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]]
        coefs = matrix.data[matrix.indptr[r] : matrix.indptr[r + 1]]
        expr = pyscipopt.quicksum(float(c) * variables[int(j)] for j, c in zip(cols, coefs, strict=True))
        lo, hi = model.row_lower[r], model.row_upper[r]
        lhs = None if not math.isfinite(lo) else float(lo)
        rhs = None if not math.isfinite(hi) else float(hi)
        if lhs is not None and rhs is not None:
            scip.addCons(expr == lhs if lhs == rhs else lhs <= (expr <= rhs), name=f"r{r}")
        elif lhs is not None:
            scip.addCons(expr >= lhs, name=f"r{r}")
        elif rhs is not None:
            scip.addCons(expr <= rhs, name=f"r{r}")
    for t, y, z in zip(model.cone_t.tolist(), model.cone_x.tolist(), model.cone_z.tolist(), strict=True):
        if z >= 0:
            scip.addCons(variables[t] * variables[z] >= variables[y] * variables[y])
        else:
            scip.addCons(variables[t] >= variables[y] * variables[y])
    if warm_start is not None:
        start = model.encode(warm_start, problem)
        sol = scip.createSol()
        for j, value in enumerate(start):
            scip.setSolVal(sol, variables[j], float(value))
        scip.addSol(sol, free=True)
    scip.optimize()
    status_name = scip.getStatus()
    nodes = int(scip.getNNodes())
    if status_name == "infeasible":
        return BackendOutcome(Status.INFEASIBLE, nodes=nodes, iterations=nodes, message="SCIP: infeasible")
    bound = scip.getDualbound()
    bound_value = float(bound) if bound is not None and math.isfinite(bound) and abs(bound) < 1e19 else None
    change = None
    best = None
    failed = 0
    for sol in scip.getSols():
        values = np.array([scip.getSolVal(sol, v) for v in variables])
        candidate = model.decode(values, problem)
        if not check_plan(problem, candidate).ok:
            # within SCIP's tolerances but not ours: keep its region choice and re-solve the changes exactly
            # (a QP over those regions), rather than falling back to a worse solution or the baseline
            failed += 1
            repaired = repair(problem, candidate)
            if repaired is None:
                continue
            candidate = repaired
        value = problem.revenue(candidate)
        if best is None or value > best:
            change, best = candidate, value
        if failed == 0:
            break  # solutions come best first: the first that passes the re-check as it is wins
        if failed >= REPAIRS:
            break
    if progress is not None:
        progress(Progress(float(scip.getSolvingTime()), best, bound_value, 1.0, f"scip {status_name}"))
    if change is None:
        return BackendOutcome(
            Status.TIME_LIMIT if status_name == "timelimit" else Status.ERROR,
            bound=bound_value,
            iterations=nodes,
            nodes=nodes,
            message=f"SCIP: {status_name}, no plan",
        )
    message = f"SCIP: {status_name}"
    if failed:
        message += f" ({failed} of SCIP's plans failed the re-check and were re-solved over their regions)"
    return BackendOutcome(
        Status.FEASIBLE, change=change, bound=bound_value, iterations=nodes, nodes=nodes, message=message
    )


def repair(problem: MixProblem, change: np.ndarray) -> np.ndarray | None:
    """The best plan with the regions of ``change`` (the exact convex QP over them), or None when that QP is
    infeasible or its plan still fails the re-check."""
    lower, upper = bounds_of(problem, regions(problem), region_of(problem, change))
    plan = solve_box_qp(problem, lower, upper)
    return plan if plan is not None and check_plan(problem, plan).ok else None
