"""Direct-mail coupon plan: the segment LP, the customer-level binary plan and the budget sweep."""

from dmplan.solver.coupon.customer_plan import solve_customers
from dmplan.solver.coupon.model import CouponProblem, CouponResult, CustomerList, CustomerResult, Mailing
from dmplan.solver.coupon.pareto import BudgetPoint, budget_sweep
from dmplan.solver.coupon.segment import solve

__all__ = [
    "BudgetPoint",
    "CouponProblem",
    "CouponResult",
    "CustomerList",
    "CustomerResult",
    "Mailing",
    "budget_sweep",
    "solve",
    "solve_customers",
]
