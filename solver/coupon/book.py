"""The book's coupon data (bundled under ``solver/coupon/data``) and scored lists built from it.

Used by the templates, the benchmarks and the tests: one loader, so they all solve the same data.
"""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from dmplan.solver.coupon.model import CouponProblem, CustomerList, Mailing


def book_csv(name: str) -> list[dict[str, str]]:
    """Rows of a bundled CSV, ``customers.csv`` or ``visit_probability.csv``."""
    text = resources.files("dmplan.solver.coupon").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def book_problem(budget: float = 1_000_000) -> tuple[CouponProblem, CustomerList]:
    """The book's data (5,000 customers, 16 segments), coupon values 0 / 1,000 / 2,000, 10% minimum."""
    segments = book_csv("visit_probability.csv")
    customers = book_csv("customers.csv")
    index = {(r["age_cat"], r["freq_cat"]): i for i, r in enumerate(segments)}
    seg = np.array([index[(r["age_cat"], r["freq_cat"])] for r in customers])
    prob = np.array([[float(r[f"prob_dm{d}"]) for d in (1, 2, 3)] for r in segments])
    mailings = tuple(Mailing(f"dm{d + 1}", "", v, 0.0, 0.1) for d, v in enumerate((0, 1000, 2000)))
    ids = tuple(r["segment_id"] for r in segments)
    problem = CouponProblem(ids, np.bincount(seg, minlength=16), mailings, prob, budget)
    return problem, CustomerList(np.array([r["customer_id"] for r in customers]), seg)


def scored_customers(
    problem: CouponProblem, size: int, seed: int = 1, block: int = 1 << 24
) -> tuple[CouponProblem, CustomerList]:
    """``size`` customers with individual scores: segment probability times a customer effect
    (lognormal, sigma 0.3) and a customer-mailing effect (lognormal, sigma 0.1); the budget
    scales with the list (200 per customer, as the book's 1,000,000 for 5,000). Generated in
    blocks of ``block`` customers, so a list of 100,000,000 needs little more than its scores."""
    rng = np.random.default_rng(seed)
    seg = np.empty(size, dtype=np.int64)
    p = np.empty((size, problem.probability.shape[1]))
    for start in range(0, size, block):
        n = min(block, size - start)
        s = rng.integers(0, len(problem.segments), n)
        seg[start : start + n] = s
        q = problem.probability[s] * rng.lognormal(0, 0.3, (n, 1))
        q *= rng.lognormal(0, 0.1, (n, 3))
        p[start : start + n] = np.clip(q, 0.0, 1.0)
    counts = np.bincount(seg, minlength=len(problem.segments))
    scaled = CouponProblem(
        problem.segments, counts, problem.mailings, problem.probability, problem.budget * size / 5000
    )
    return scaled, CustomerList(np.arange(size), seg, p)
