"""Feasibility re-checks of coupon plans against the original constraints."""

from __future__ import annotations

import numpy as np

from dmplan.solver.common import FeasibilityCheck, ViolationLog
from dmplan.solver.coupon.model import CouponProblem


def check_shares(problem: CouponProblem, share: np.ndarray, tolerance: float = 1e-6) -> FeasibilityCheck:
    """Shares in [0, 1] adding up to 1 per segment, at least the minimum shares, within budget."""
    log = ViolationLog(tolerance)
    for s, segment in enumerate(problem.segments):
        log.check(f"segment {segment}: shares sum to 1", abs(float(share[s].sum()) - 1.0))
        for d, mailing in enumerate(problem.mailings):
            log.check(f"segment {segment}, {mailing.id}: minimum share", mailing.min_share - float(share[s, d]))
            log.check(f"segment {segment}, {mailing.id}: share <= 1", float(share[s, d]) - 1.0)
    used = float(np.sum(problem.customers[:, None] * problem.unit_cost * share))
    log.check("budget", (used - problem.budget) / max(1.0, problem.budget))
    return log.result()


def customer_minimums(problem: CouponProblem, segment_sizes: np.ndarray) -> np.ndarray:
    """Customers of each segment that must get each mailing: ceil(f_d * N_s), shape (S, D)."""
    return np.ceil(segment_sizes[:, None] * problem.min_shares[None, :] - 1e-9).astype(np.int64)


def check_assignment(
    problem: CouponProblem,
    segment: np.ndarray,
    chosen_cost: np.ndarray,
    assignment: np.ndarray,
    tolerance: float = 1e-6,
) -> FeasibilityCheck:
    """One valid mailing per customer, per-segment minimum counts, and the budget.

    ``chosen_cost`` is each customer's expected cost at its mailing, shape (M,).
    """
    log = ViolationLog(tolerance)
    S, D = problem.probability.shape
    valid = (assignment >= 0) & (assignment < D)
    log.check("every customer gets exactly one mailing", float(np.count_nonzero(~valid)))
    assignment = np.where(valid, assignment, 0)
    sizes = np.bincount(segment, minlength=S)
    counts = np.bincount(segment * D + assignment, minlength=S * D).reshape(S, D)
    minimum = customer_minimums(problem, sizes)
    for s, d in np.argwhere(counts < minimum):
        log.check(
            f"segment {problem.segments[s]}, {problem.mailings[d].id}: minimum customers",
            float(minimum[s, d] - counts[s, d]),
        )
    used = float(chosen_cost.sum())
    log.check("budget", (used - problem.budget) / max(1.0, problem.budget))
    return log.result()
