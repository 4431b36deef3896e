"""Direct-mail coupon plan: the input and result types, and input validation.

Segments s hold N_s customers; mailings d carry a coupon value c_d (paid when a mailed
customer converts), a cost per piece k_d and a minimum share f_d. p[s, d] is the conversion
probability. The plan sends mailing d to a share x[s, d] of segment s:

    maximise   sum_{s,d} N_s (p[s,d] - p[s,baseline]) x[s,d]        (expected extra conversions)
    subject to sum_d x[s,d] = 1,  x[s,d] >= f_d,
               sum_{s,d} N_s (c_d p[s,d] + k_d) x[s,d] <= B          (expected budget)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dmplan.solver.common import Certificate, InputError


@dataclass(frozen=True)
class Mailing:
    """One mailing type: its id, label, coupon value, cost per piece and minimum share."""

    id: str
    label: str = ""
    coupon_value: float = 0.0
    cost_per_piece: float = 0.0
    min_share: float = 0.0


@dataclass(frozen=True)
class CouponProblem:
    """The segment-level coupon plan.

    Parameters
    ----------
    segments : segment ids, length S.
    customers : customers per segment N_s, shape (S,).
    mailings : the mailing types, length D.
    probability : conversion probability p[s, d], shape (S, D).
    budget : budget B on the expected cost.
    baseline : id of the mailing extra conversions are counted against; default: the
        first mailing whose coupon value is zero.
    """

    segments: tuple[str, ...]
    customers: np.ndarray
    mailings: tuple[Mailing, ...]
    probability: np.ndarray
    budget: float
    baseline: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "customers", np.asarray(self.customers, dtype=float))
        object.__setattr__(self, "probability", np.asarray(self.probability, dtype=float))
        validate(self)

    @property
    def mailing_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.mailings)

    @property
    def baseline_index(self) -> int:
        if self.baseline is not None:
            return self.mailing_ids.index(self.baseline)
        return next(d for d, m in enumerate(self.mailings) if m.coupon_value == 0)

    @property
    def coupon_values(self) -> np.ndarray:
        return np.array([m.coupon_value for m in self.mailings], dtype=float)

    @property
    def piece_costs(self) -> np.ndarray:
        return np.array([m.cost_per_piece for m in self.mailings], dtype=float)

    @property
    def min_shares(self) -> np.ndarray:
        return np.array([m.min_share for m in self.mailings], dtype=float)

    @property
    def unit_cost(self) -> np.ndarray:
        """Expected cost of mailing one customer of segment s with d: c_d p[s,d] + k_d, shape (S, D)."""
        return cost_matrix(self.probability, self.coupon_values, self.piece_costs)

    @property
    def unit_gain(self) -> np.ndarray:
        """Extra conversion probability against the baseline mailing, shape (S, D)."""
        return self.probability - self.probability[:, [self.baseline_index]]

    @property
    def min_feasible_budget(self) -> float:
        """The expected cost of the cheapest plan that respects the minimum shares."""
        return float(min_budget(self.customers, self.unit_cost, self.min_shares))

    def with_budget(self, budget: float) -> CouponProblem:
        return CouponProblem(self.segments, self.customers, self.mailings, self.probability, budget, self.baseline)


def cost_matrix(probability: np.ndarray, coupon_values: np.ndarray, piece_costs: np.ndarray) -> np.ndarray:
    return probability * coupon_values[None, :] + piece_costs[None, :]


def min_budget(customers: np.ndarray, unit_cost: np.ndarray, min_shares: np.ndarray) -> float:
    """Cost of sending each segment its minimum shares and the rest the cheapest mailing."""
    free = 1.0 - float(min_shares.sum())
    per_segment = unit_cost @ min_shares + free * unit_cost.min(axis=1)
    return float(customers @ per_segment)


def validate(problem: CouponProblem) -> None:
    """Check a problem once at the boundary; raise InputError saying what to fix."""
    S, D = len(problem.segments), len(problem.mailings)
    if S == 0:
        raise InputError("there are no segments.", table="Segments", fix="Add at least one segment.")
    if D == 0:
        raise InputError("there are no mailings.", table="Mailings", fix="Add at least one mailing.")
    _unique(problem.segments, "Segments", "segment")
    _unique(problem.mailing_ids, "Mailings", "mailing")
    if problem.customers.shape != (S,):
        raise InputError(f"customers has shape {problem.customers.shape}, expected ({S},).", table="Segments")
    if problem.probability.shape != (S, D):
        raise InputError(f"probability has shape {problem.probability.shape}, expected ({S}, {D}).", table="Segments")
    for s, n in enumerate(problem.customers):
        if not np.isfinite(n) or n < 0:
            raise InputError(
                f"{n:g} customers is not a valid count.",
                table="Segments",
                key=problem.segments[s],
                column="customers",
                fix="Enter a count of 0 or more.",
            )
    bad = np.argwhere(~np.isfinite(problem.probability) | (problem.probability < 0) | (problem.probability > 1))
    if bad.size:
        s, d = bad[0]
        raise InputError(
            f"probability {problem.probability[s, d]:g} is outside [0, 1].",
            table="Segments",
            key=problem.segments[s],
            column=f"prob_{problem.mailings[d].id}",
            fix="Enter a probability between 0 and 1 (e.g. 0.12 for 12%).",
        )
    for m in problem.mailings:
        for name, value in (("coupon_value", m.coupon_value), ("cost_per_piece", m.cost_per_piece)):
            if not np.isfinite(value) or value < 0:
                raise InputError(
                    f"{name} {value:g} is negative.", table="Mailings", key=m.id, column=name, fix="Enter 0 or more."
                )
        if not 0 <= m.min_share <= 1:
            raise InputError(
                f"min_share {m.min_share:g} is outside [0, 1].",
                table="Mailings",
                key=m.id,
                column="min_share",
                fix="Enter a share between 0 and 1 (e.g. 0.1 for 10%).",
            )
    total = float(problem.min_shares.sum())
    if total > 1 + 1e-9:
        raise InputError(
            f"the minimum shares add up to {total:.4g}, more than 1: no plan can send every mailing its minimum.",
            table="Mailings",
            column="min_share",
            fix="Lower the minimum shares so they sum to 1 (100%) or less.",
        )
    if problem.baseline is not None and problem.baseline not in problem.mailing_ids:
        raise InputError(
            f"baseline_mailing {problem.baseline!r} is not a mailing id.",
            table="Settings",
            key="baseline_mailing",
            column="value",
            fix=f"Use one of: {', '.join(problem.mailing_ids)}.",
        )
    if problem.baseline is None and not any(m.coupon_value == 0 for m in problem.mailings):
        raise InputError(
            "no mailing has coupon value 0, so there is no default baseline.",
            table="Settings",
            key="baseline_mailing",
            column="value",
            fix="Set baseline_mailing to the mailing extra conversions are counted against.",
        )
    if not np.isfinite(problem.budget) or problem.budget < 0:
        raise InputError(
            f"budget {problem.budget:g} is negative.",
            table="Settings",
            key="budget",
            column="value",
            fix="Enter a budget of 0 or more.",
        )
    floor = problem.min_feasible_budget
    if problem.budget < floor * (1 - 1e-9) - 1e-9:
        raise InputError(
            f"budget {problem.budget:,.2f} is below the smallest feasible budget {floor:,.2f} "
            "(what the minimum shares alone cost).",
            table="Settings",
            key="budget",
            column="value",
            fix=f"Raise the budget to at least {floor:,.2f} or lower the minimum shares.",
        )


def _unique(ids: tuple[str, ...], table: str, column: str) -> None:
    seen: set[str] = set()
    for value in ids:
        key = str(value).strip().lower()
        if key in seen:
            raise InputError(f"duplicate id {value!r}.", table=table, key=value, column=column, fix="Make ids unique.")
        seen.add(key)


@dataclass(frozen=True)
class CouponResult:
    """The optimal segment plan with its certificate.

    ``share[s, d]`` is the share of segment s sent mailing d; ``counts`` the same as whole
    customers adding up to N_s (largest-remainder rounding). ``shadow_price`` is the extra
    conversions one more unit of budget buys (the budget constraint's dual value).
    """

    problem: CouponProblem
    certificate: Certificate
    share: np.ndarray | None
    shadow_price: float | None = None

    @property
    def status(self) -> str:
        return self.certificate.status.value

    @property
    def objective(self) -> float | None:
        return self.certificate.objective

    @property
    def budget_used(self) -> float | None:
        if self.share is None:
            return None
        return float(np.sum(self.problem.customers[:, None] * self.problem.unit_cost * self.share))

    @property
    def expected_conversions(self) -> float | None:
        if self.share is None:
            return None
        return float(np.sum(self.problem.customers[:, None] * self.problem.probability * self.share))

    @property
    def cost_per_extra_conversion(self) -> float | None:
        used, extra = self.budget_used, self.objective
        if used is None or not extra:
            return None
        return used / extra

    @property
    def counts(self) -> np.ndarray | None:
        if self.share is None:
            return None
        return whole_counts(self.share, self.problem.customers)


def whole_counts(share: np.ndarray, customers: np.ndarray) -> np.ndarray:
    """Round shares to whole customers per segment so each row adds up to N_s (largest remainder)."""
    exact = share * np.round(customers)[:, None]
    counts = np.floor(exact + 1e-9)
    for s in range(share.shape[0]):
        missing = int(np.rint(customers[s] - counts[s].sum()))
        if missing > 0:
            order = np.argsort(-(exact[s] - counts[s]), kind="stable")[:missing]
            counts[s, order] += 1
    return counts.astype(int)


@dataclass(frozen=True)
class CustomerList:
    """Customers of a segment problem for the customer-level (one mailing each) plan.

    Parameters
    ----------
    customer_id : ids, length M.
    segment : index into ``CouponProblem.segments`` per customer, shape (M,).
    probability : optional individual probabilities p[i, d] (response-model scores), shape
        (M, D); when given they override the segment's.
    """

    customer_id: np.ndarray
    segment: np.ndarray
    probability: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "segment", np.asarray(self.segment, dtype=np.int64))
        if self.probability is not None:
            object.__setattr__(self, "probability", np.asarray(self.probability, dtype=float))

    def __len__(self) -> int:
        return int(self.segment.shape[0])


@dataclass(frozen=True)
class CustomerResult:
    """The customer-level plan: one mailing per customer, with its certificate.

    ``certificate.bound`` is a proven upper bound (the LP relaxation's Lagrangian dual value
    over all customers), so ``certificate.gap`` is the proven distance to optimality.
    """

    problem: CouponProblem
    customers: CustomerList | None  #: None when the list stayed on a cluster's workers
    certificate: Certificate
    assignment: np.ndarray | None  #: mailing index per customer (None: no plan, or it stayed on the workers)
    lp_bound: float | None = None
    method: str = ""
    details: dict[str, float] = field(default_factory=dict)
    size: int | None = None  #: customers in the list when ``customers`` is None

    @property
    def customer_count(self) -> int:
        return len(self.customers) if self.customers is not None else int(self.size or 0)

    @property
    def objective(self) -> float | None:
        return self.certificate.objective

    def counts(self) -> np.ndarray:
        """Customers per (segment, mailing)."""
        assert self.assignment is not None and self.customers is not None
        S, D = self.problem.probability.shape
        flat = self.customers.segment * D + self.assignment
        return np.bincount(flat, minlength=S * D).reshape(S, D)
