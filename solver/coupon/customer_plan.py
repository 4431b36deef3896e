"""The customer-level plan's entry point: which method solves which list.

- Customers without scores form one class per segment (identical data): the class model is tiny
  and :func:`customers.solve_classes` solves it directly; so do scored lists whose customers
  mostly share their scores (the class model groups them).
- Other scored lists go to the dual method of :mod:`.lagrangian`, over chunks in this process
  (here) or over a Dask cluster's partitions (:mod:`.distributed`).

``method`` forces one ("sifting": the class model's reduced-cost sifting, kept as the benchmark's
reference; "lagrangian").
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from dmplan.solver.common import Certificate, ProgressCallback
from dmplan.solver.coupon import chunks as ch
from dmplan.solver.coupon.checks import check_assignment
from dmplan.solver.coupon.customers import SAMPLE_SIZE, solve_classes
from dmplan.solver.coupon.lagrangian import solve_scored
from dmplan.solver.coupon.model import CouponProblem, CustomerList, CustomerResult

Method = Literal["auto", "sifting", "lagrangian"]
DEFAULT_GAP = 1e-4  #: the relative gap a plan is proven to by default, in-process or on a cluster


def solve_customers(
    problem: CouponProblem,
    customers: CustomerList,
    *,
    time_limit: float | None = None,
    gap: float = DEFAULT_GAP,
    progress: ProgressCallback | None = None,
    method: Method = "auto",
) -> CustomerResult:
    """One mailing per customer, maximising expected extra conversions within the budget and the
    minimum counts; the result carries the proven bound and a re-check of the assignment."""
    scored = customers.probability is not None
    if method == "sifting" or (method == "auto" and (not scored or _mostly_identical(customers))):
        return solve_classes(problem, customers, time_limit=time_limit, gap=gap, progress=progress)
    if not scored:
        customers = CustomerList(customers.customer_id, customers.segment, problem.probability[customers.segment])
    start = time.perf_counter()
    store = ch.ChunkStore.of(problem, customers)
    left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))
    plan = solve_scored(problem, store, time_limit=left, gap=gap, progress=progress, keep_mailings=True)
    cert = plan.certificate
    if plan.mailings is None:
        return CustomerResult(problem, customers, cert, None, plan.lp_bound, "lagrangian", plan.details)
    assignment = plan.mailings.astype(np.int64)
    # the re-check: from the scores and the assignment alone, not from the method's totals
    assert customers.probability is not None
    econ = store.economics
    rows = np.arange(len(assignment))
    chosen = customers.probability[rows, assignment]
    feasibility = check_assignment(
        problem, customers.segment, chosen * econ.coupon[assignment] + econ.piece[assignment], assignment
    )
    objective = float((chosen - customers.probability[:, econ.baseline]).sum())
    checked = Certificate(
        cert.status,
        objective,
        cert.bound,
        cert.seconds,
        cert.solver,
        cert.iterations,
        feasibility,
        cert.message,
        cert.extra,
    )
    return CustomerResult(problem, customers, checked, assignment, plan.lp_bound, "lagrangian", plan.details)


def _mostly_identical(customers: CustomerList) -> bool:
    """Do most customers share their scores with others (segment probabilities pasted as scores,
    coarsely rounded scores)? Then the class model, which groups identical customers, is the one to
    use: the dual method would find them all tied. Judged on a sample."""
    assert customers.probability is not None
    rng = np.random.default_rng(0)
    pick = rng.choice(len(customers), min(SAMPLE_SIZE, len(customers)), replace=False)
    rows = np.column_stack([customers.segment[pick], customers.probability[pick]])
    return len(np.unique(rows, axis=0)) < 0.5 * len(pick)
