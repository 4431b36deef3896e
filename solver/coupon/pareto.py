"""Budget sweep of the segment plan: extra conversions as the budget grows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmplan.solver.coupon.model import CouponProblem
from dmplan.solver.coupon.segment import solve


@dataclass(frozen=True)
class BudgetPoint:
    """One point of the budget sweep."""

    budget: float
    extra_conversions: float
    budget_used: float
    cost_per_extra_conversion: float | None
    marginal_conversions: float  #: extra conversions per extra unit of budget (shadow price)


def saturation_budget(problem: CouponProblem) -> float:
    """The budget beyond which more money buys no extra conversions."""
    unlimited = solve(problem.with_budget(float(np.sum(problem.customers[:, None] * problem.unit_cost)) + 1.0))
    return float(unlimited.budget_used or 0.0)


def budget_sweep(
    problem: CouponProblem, points: int = 20, budget_from: float | None = None, budget_to: float | None = None
) -> list[BudgetPoint]:
    """Solve the segment LP at ``points`` budgets, from the smallest feasible budget (default)
    up to the saturation budget (default)."""
    low = problem.min_feasible_budget if budget_from is None else max(budget_from, problem.min_feasible_budget)
    high = saturation_budget(problem) if budget_to is None else budget_to
    high = max(high, low)
    out = []
    for budget in np.linspace(low, high, max(2, points)):
        result = solve(problem.with_budget(float(budget)))
        out.append(
            BudgetPoint(
                float(budget),
                float(result.objective or 0.0),
                float(result.budget_used or 0.0),
                result.cost_per_extra_conversion,
                float(result.shadow_price or 0.0),
            )
        )
    return out
