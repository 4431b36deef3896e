"""Brute-force oracle for small problems: enumerate every region choice and solve each convex QP exactly.

Only for testing (``n <= 8``: at most ``3^8 = 6561`` QPs). Choices with more than ``K`` changes are
skipped. An activity with zero minimum change has one merged region ``[min_spend - baseline,
max_spend - baseline]`` next to the explicit "keep" choice.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from dmplan.solver.common import Certificate, Status
from dmplan.solver.mix.model import MixProblem, MixResult, check_plan, regions, snap
from dmplan.solver.mix.qp import linear_rows, solve_box_qp

MAX_ACTIVITIES = 8


def brute_force(problem: MixProblem) -> MixResult:
    """Exact optimum of a small problem by enumeration.

    Parameters
    ----------
    problem:
        A problem with at most 8 activities.

    Returns
    -------
    MixResult
        OPTIMAL with the best plan (objective = bound), or INFEASIBLE.
    """
    if problem.n > MAX_ACTIVITIES:
        raise ValueError(f"brute force is limited to {MAX_ACTIVITIES} activities, got {problem.n}")
    start = time.perf_counter()
    reg = regions(problem)
    rows = linear_rows(problem)
    choices: list[list[tuple[float, float]]] = []
    for i in range(problem.n):
        options = [(0.0, 0.0)]
        if problem.min_change[i] == 0 and reg.movable[i]:
            options.append((float(reg.dec_lo[i]), float(reg.inc_hi[i])))
        else:
            if reg.has_dec[i]:
                options.append((float(reg.dec_lo[i]), float(reg.dec_hi[i])))
            if reg.has_inc[i]:
                options.append((float(reg.inc_lo[i]), float(reg.inc_hi[i])))
        choices.append(options)
    best: np.ndarray | None = None
    best_value = -math.inf
    count = 0
    for combo in itertools.product(*choices):
        changed = sum(1 for lo, hi in combo if (lo, hi) != (0.0, 0.0))
        if changed > problem.k:
            continue
        lower = np.array([lo for lo, _ in combo])
        upper = np.array([hi for _, hi in combo])
        count += 1
        change = solve_box_qp(problem, lower, upper, rows)
        if change is None:
            continue
        change = snap(problem, change)
        if np.count_nonzero(change) > problem.k or not check_plan(problem, change).ok:
            continue
        value = problem.revenue(change)
        if value > best_value:
            best, best_value = change, value
    seconds = time.perf_counter() - start
    if best is None:
        certificate = Certificate(Status.INFEASIBLE, None, None, seconds, "brute_force", count)
        return MixResult(problem, certificate, None, "enumeration")
    certificate = Certificate(
        Status.OPTIMAL, best_value, best_value, seconds, "brute_force", count, check_plan(problem, best)
    )
    return MixResult(problem, certificate, best, "enumeration")
