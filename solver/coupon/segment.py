"""Solve the segment-level coupon LP and certify the answer."""

from __future__ import annotations

import time

import numpy as np

from dmplan.solver.backends import solve_linear
from dmplan.solver.common import Certificate, Status
from dmplan.solver.coupon.checks import check_shares
from dmplan.solver.coupon.formulation import BUDGET_ROW, segment_lp
from dmplan.solver.coupon.model import CouponProblem, CouponResult


def solve(problem: CouponProblem, *, solver: str = "highs", time_limit: float | None = None) -> CouponResult:
    """Optimal shares of each segment per mailing.

    Parameters
    ----------
    problem : the validated segment problem.
    solver : ``highs`` (default, in-process) or ``pulp`` (PuLP's CBC, a cross-check).
    time_limit : seconds; an LP of this size solves in milliseconds.

    Returns
    -------
    CouponResult whose certificate's bound is the dual objective recomputed from the
    solver's duals (weak duality), and whose feasibility re-checks the shares.
    """
    start = time.perf_counter()
    program = segment_lp(problem)
    solution = solve_linear(program, solver, time_limit=time_limit)
    S, D = problem.probability.shape
    share = None
    feasibility = None
    shadow_price = None
    if solution.x is not None and solution.status.has_plan:
        share = np.clip(solution.x.reshape(S, D), 0.0, 1.0)
        feasibility = check_shares(problem, share)
        if solution.row_duals is not None:
            # a maximisation's budget dual is >= 0: extra conversions per extra unit of budget
            shadow_price = abs(float(solution.row_duals[BUDGET_ROW]))
    objective = None if share is None else float(np.sum(problem.customers[:, None] * problem.unit_gain * share))
    certificate = Certificate(
        status=solution.status,
        objective=objective,
        bound=solution.bound,
        seconds=time.perf_counter() - start,
        solver=solution.solver or solver,
        iterations=solution.iterations,
        feasibility=feasibility,
    )
    if certificate.status == Status.OPTIMAL and feasibility is not None and not feasibility.ok:
        certificate = Certificate(
            Status.ERROR,
            objective,
            solution.bound,
            certificate.seconds,
            certificate.solver,
            certificate.iterations,
            feasibility,
            message="the solver's plan failed the feasibility re-check",
        )
    return CouponResult(problem, certificate, share, shadow_price)
