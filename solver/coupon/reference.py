"""The reference for the customer-level plan: HiGHS's MIP on the whole class model, no sifting.

Benchmarks time it beside :func:`dmplan.solver.coupon.solve_customers`; tests use it as an
independent answer.
"""

from __future__ import annotations

import time

import numpy as np

from dmplan.solver.backends.highs import solve as solve_highs
from dmplan.solver.coupon.checks import customer_minimums
from dmplan.solver.coupon.customers import _classes, _program
from dmplan.solver.coupon.model import CouponProblem, CustomerList


def reference_binary(
    problem: CouponProblem, customers: CustomerList, time_limit: float, gap: float = 1e-4
) -> tuple[float, float, float]:
    """HiGHS's MIP on the whole class model, no sifting: (objective, bound, seconds)."""
    classes = _classes(problem, customers)
    minimum = customer_minimums(problem, np.bincount(customers.segment, minlength=len(problem.segments)))
    program = _program(classes, np.arange(len(classes.size)), minimum, problem.budget, integer=True)
    start = time.perf_counter()
    sol = solve_highs(program, time_limit=time_limit, gap=gap)
    return float(sol.objective or np.nan), float(sol.bound or np.nan), time.perf_counter() - start
