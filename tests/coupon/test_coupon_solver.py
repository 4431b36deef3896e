"""The coupon models against independent answers: the book's optimum, SciPy's LP solver,
PuLP/CBC, brute force over assignments, and the full binary MIP."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from dmplan.solver.common import InputError, Status
from dmplan.solver.coupon import (
    CouponProblem,
    CustomerList,
    Mailing,
    budget_sweep,
    chunks,
    lagrangian,
    solve,
    solve_customers,
)
from dmplan.solver.coupon import customers as sifting
from dmplan.solver.coupon.book import book_problem, scored_customers
from dmplan.solver.coupon.checks import customer_minimums
from dmplan.solver.coupon.reference import reference_binary


@pytest.fixture(scope="module")
def book() -> tuple[CouponProblem, CustomerList]:
    return book_problem()


def test_book_reference_326_1(book):
    problem, _ = book
    result = solve(problem)
    assert result.certificate.status == Status.OPTIMAL
    assert round(result.objective, 1) == 326.1
    assert result.objective == pytest.approx(326.0951, abs=1e-4)
    assert result.certificate.bound == pytest.approx(result.objective, abs=1e-6)
    assert result.certificate.feasibility.ok
    assert result.budget_used == pytest.approx(1_000_000, rel=1e-9)
    assert problem.min_feasible_budget == pytest.approx(761_850)
    # every mailing reaches at least 10% of every segment, and shares add up to 1
    assert (result.share >= 0.1 - 1e-9).all()
    np.testing.assert_allclose(result.share.sum(axis=1), 1.0)


def test_dollar_version_gives_the_same_plan(book):
    problem, _ = book
    dollars = CouponProblem(
        problem.segments,
        problem.customers,
        tuple(Mailing(m.id, m.label, m.coupon_value / 100, 0.0, 0.1) for m in problem.mailings),
        problem.probability,
        10_000,
    )
    a, b = solve(problem), solve(dollars)
    assert b.objective == pytest.approx(a.objective, abs=1e-6)
    np.testing.assert_allclose(b.share, a.share, atol=1e-7)
    assert b.shadow_price == pytest.approx(100 * a.shadow_price, rel=1e-6)


def test_scipy_and_pulp_agree_with_highs(book):
    problem, _ = book
    S, D = problem.probability.shape
    N = problem.customers
    c = -(N[:, None] * problem.unit_gain).ravel()
    a_eq = np.kron(np.eye(S), np.ones(D))
    a_ub = (N[:, None] * problem.unit_cost).ravel()[None, :]
    bounds = [(0.1, 1.0)] * (S * D)
    scipy_result = linprog(c, A_ub=a_ub, b_ub=[problem.budget], A_eq=a_eq, b_eq=np.ones(S), bounds=bounds)
    assert -scipy_result.fun == pytest.approx(solve(problem).objective, abs=1e-6)
    assert solve(problem, solver="pulp").objective == pytest.approx(-scipy_result.fun, abs=1e-5)


def test_shadow_price_is_the_marginal_value_of_budget(book):
    problem, _ = book
    base = solve(problem)
    step = 1_000.0
    more = solve(problem.with_budget(problem.budget + step))
    assert (more.objective - base.objective) / step == pytest.approx(base.shadow_price, rel=1e-6)
    assert base.cost_per_extra_conversion == pytest.approx(1_000_000 / base.objective)


def test_budget_sweep_is_increasing_and_saturates(book):
    problem, _ = book
    sweep = budget_sweep(problem, points=8)
    values = [p.extra_conversions for p in sweep]
    assert sweep[0].budget == pytest.approx(problem.min_feasible_budget)
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))
    beyond = solve(problem.with_budget(sweep[-1].budget * 1.2)).objective
    assert beyond == pytest.approx(values[-1], abs=1e-7)  # saturated: more money buys nothing more
    assert values[0] == pytest.approx(solve(problem.with_budget(sweep[0].budget)).objective)


def test_whole_counts_add_up_to_segment_sizes(book):
    problem, _ = book
    counts = solve(problem).counts
    np.testing.assert_array_equal(counts.sum(axis=1), problem.customers.astype(int))


def test_customer_level_book(book):
    problem, customers = book
    result = solve_customers(problem, customers)
    cert = result.certificate
    assert cert.status == Status.OPTIMAL
    assert round(cert.objective, 1) == 326.1  # the book: customer and segment models agree
    assert cert.objective == pytest.approx(326.09, abs=1e-6)
    assert cert.objective <= solve(problem).objective + 1e-9  # the LP is a relaxation
    assert cert.feasibility.ok
    counts = result.counts()
    assert (counts >= customer_minimums(problem, problem.customers.astype(int))).all()


def _brute_force(problem: CouponProblem, p: np.ndarray, seg: np.ndarray) -> float:
    gain = p - p[:, [problem.baseline_index]]
    cost = p * problem.coupon_values + problem.piece_costs
    minimum = customer_minimums(problem, np.bincount(seg, minlength=len(problem.segments)))
    best = -np.inf
    M, D = p.shape
    for choice in itertools.product(range(D), repeat=M):
        a = np.array(choice)
        if cost[np.arange(M), a].sum() > problem.budget + 1e-9:
            continue
        counts = np.zeros_like(minimum)
        np.add.at(counts, (seg, a), 1)
        if (counts < minimum).any():
            continue
        best = max(best, gain[np.arange(M), a].sum())
    return best


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(3, 7),
    budget_share=st.floats(0.0, 1.0),
    min_share=st.sampled_from([0.0, 0.2, 0.34]),
)
# HiGHS's MIP presolve solved the rounding MIP outright and highspy handed back the warm start as its plan
@example(seed=389, customers=5, budget_share=0.25, min_share=0.2)
def test_customer_level_matches_brute_force(seed, customers, budget_share, min_share):
    rng = np.random.default_rng(seed)
    mailings = (Mailing("a", "", 0, 0.0, min_share), Mailing("b", "", 5, 0.5, min_share), Mailing("c", "", 9, 0, 0.0))
    seg = rng.integers(0, 2, customers)
    p = np.sort(rng.random((customers, 3)), axis=1)
    seg_prob = np.array([p[seg == s].mean(axis=0) if (seg == s).any() else [0.1, 0.2, 0.3] for s in range(2)])
    base = CouponProblem(("s1", "s2"), np.bincount(seg, minlength=2), mailings, seg_prob, 1e9)
    cost = p * base.coupon_values + base.piece_costs
    minimum = customer_minimums(base, np.bincount(seg, minlength=2))
    low = float(minimum.sum() * cost.max())  # safely feasible when minimums can be met at all
    budget = cost.min(axis=1).sum() + budget_share * max(low, cost.max(axis=1).sum())
    problem = base.with_budget(max(budget, base.min_feasible_budget))
    expected = _brute_force(problem, p, seg)
    for method in ("sifting", "lagrangian"):
        result = solve_customers(problem, CustomerList(np.arange(customers), seg, p), method=method)
        if not np.isfinite(expected):
            assert result.certificate.status == Status.INFEASIBLE, method
            continue
        assert result.certificate.objective == pytest.approx(expected, abs=1e-9), method
        assert result.certificate.bound >= expected - 1e-7, method
        assert result.certificate.feasibility.ok, method


def test_sifting_path_matches_the_full_binary_mip(book, monkeypatch):
    """Force the sample/price-out path on 6,000 scored customers and compare with HiGHS on
    the whole binary model (no sifting)."""
    monkeypatch.setattr(sifting, "DIRECT_LIMIT", 1_000)
    monkeypatch.setattr(sifting, "SAMPLE_SIZE", 600)
    monkeypatch.setattr(sifting, "FREE_SIZE", 800)
    problem, customers = scored_customers(book[0], 6_000, seed=3)
    result = solve_customers(problem, customers, gap=1e-6, method="sifting")
    assert result.details["lp_rounds"] >= 1 and result.details["free_classes"] < 6_000
    ref_objective, ref_bound, _ = reference_binary(problem, customers, time_limit=300, gap=1e-5)
    cert = result.certificate
    assert cert.feasibility.ok
    assert cert.bound >= ref_objective - 1e-6  # the Lagrangian bound is a true upper bound
    assert cert.objective <= ref_bound + 1e-6  # our plan is no better than HiGHS's proven bound
    assert cert.objective >= ref_objective - 1e-6  # and at least as good as HiGHS's plan
    assert cert.gap <= 1e-4


def test_lagrangian_levels_match_the_full_binary_mip(book, monkeypatch):
    """The dual method with its sample levels, screening and sifting forced on 12,000 scored
    customers (base samples of 300) against HiGHS on the whole binary model."""
    monkeypatch.setattr(lagrangian, "BASE_SAMPLE", 300)
    monkeypatch.setattr(lagrangian, "MIN_ADD", 200)
    problem, customers = scored_customers(book[0], 12_000, seed=5)
    result = solve_customers(problem, customers, gap=1e-7, method="lagrangian")
    assert result.details["free_classes"] < 12_000  # the screen settled customers: the levels ran
    ref_objective, ref_bound, _ = reference_binary(problem, customers, time_limit=300, gap=1e-7)
    cert = result.certificate
    assert cert.status == Status.OPTIMAL and cert.feasibility.ok
    assert cert.bound >= ref_objective - 1e-6  # the Lagrangian bound is a true upper bound
    assert cert.objective <= ref_bound + 1e-6
    assert cert.objective >= ref_objective - 1e-6 * abs(ref_objective)
    assert cert.gap <= 1e-7


def test_lagrangian_chunks_give_the_plan_of_one_chunk(book):
    """The plan does not depend on how the customers are cut into chunks (the Dask partitions)."""
    problem, customers = scored_customers(book[0], 40_000, seed=8)
    one = lagrangian.solve_scored(problem, chunks.ChunkStore.of(problem, customers))
    many = lagrangian.solve_scored(problem, chunks.ChunkStore.of(problem, customers, chunk_size=7_001))
    assert one.certificate.objective == pytest.approx(many.certificate.objective, rel=1e-12)
    assert one.certificate.bound == pytest.approx(many.certificate.bound, rel=1e-12)


def test_tight_budget_scored_list_agrees_with_the_class_model(book):
    """Scores well above the segment probabilities and a budget 2% above the segment-level floor:
    the scaled budgets of the small samples miss by chance, the method still proves the plan, and
    the class model's sifting agrees (each bound above the other's plan)."""
    problem, customers = scored_customers(book[0], 40_000, seed=2)
    customers = CustomerList(customers.customer_id, customers.segment, np.clip(customers.probability * 1.6, 0, 1))
    problem = problem.with_budget(problem.min_feasible_budget * 1.02)
    dual = solve_customers(problem, customers, method="lagrangian").certificate
    classes = solve_customers(problem, customers, method="sifting", gap=1e-5).certificate
    assert dual.status == Status.OPTIMAL and dual.feasibility.ok and classes.feasibility.ok
    assert dual.bound >= classes.objective - 1e-9 and classes.bound >= dual.objective - 1e-9
    assert dual.gap <= 1e-6


def test_segment_too_small_for_its_minimums_is_named_at_once(book):
    """A scored list where one segment has 2 customers and three mailings need one each: the plan
    is infeasible by counting alone; the dual method says so, naming the segment, before any LP."""
    problem, customers = scored_customers(book[0], 50_000, seed=6)
    segment = customers.segment.copy()
    segment[segment == 3] = 4
    segment[:2] = 3
    problem = CouponProblem(
        problem.segments, np.bincount(segment, minlength=16), problem.mailings, problem.probability, problem.budget
    )
    result = solve_customers(problem, CustomerList(customers.customer_id, segment, customers.probability))
    assert result.certificate.status == Status.INFEASIBLE and result.assignment is None
    assert "segment 4 has 2 customers" in result.certificate.message
    assert result.certificate.iterations == 0  # decided before any screening pass or LP


def test_budget_below_every_customers_cheapest_mailing_is_named_at_once(book):
    """Scores well above the segment probabilities: the budget passes the segment-level floor but
    is below what the customers cost at their cheapest mailings; refused before any LP."""
    problem, customers = scored_customers(book[0], 50_000, seed=6)
    mailings = (
        Mailing("dm1", "", 100, 10.0, 0.0),
        Mailing("dm2", "", 50, 10.0, 0.0),
        Mailing("dm3", "", 2000, 10.0, 0.0),
    )
    problem = CouponProblem(problem.segments, problem.customers, mailings, problem.probability, 1e12, "dm1")
    problem = problem.with_budget(problem.min_feasible_budget * 1.001)
    scored = CustomerList(customers.customer_id, customers.segment, np.clip(customers.probability * 1.5, 0, 1))
    result = solve_customers(problem, scored)
    cost = scored.probability * problem.coupon_values + problem.piece_costs
    assert cost.min(axis=1).sum() > problem.budget  # the independent reason
    assert result.certificate.status == Status.INFEASIBLE and result.assignment is None
    assert "cheapest mailing" in result.certificate.message and result.certificate.iterations == 0


def _unaffordable(book, n: int) -> tuple[CouponProblem, CustomerList]:
    """Scores twice the segment probabilities: every coupon costs twice what the segment-level
    floor assumes, so a budget at that floor cannot pay for the minimum shares."""
    problem, customers = scored_customers(book[0], n, seed=3)
    scored = CustomerList(customers.customer_id, customers.segment, np.clip(customers.probability * 2.0, 0, 1))
    return problem.with_budget(problem.min_feasible_budget * 1.0001), scored


def test_minimum_counts_beyond_the_budget_are_proven_so_with_what_they_cost(book):
    """A list whose minimum shares cost more than the budget: refused with a proven lower bound on
    their cost (not after an LP over every customer), and the class model agrees there is no plan."""
    problem, scored = _unaffordable(book, 30_000)
    result = solve_customers(problem, scored, method="lagrangian")
    assert result.certificate.status == Status.INFEASIBLE and result.assignment is None
    message = result.certificate.message
    assert "the minimum counts cost at least" in message and "raise the budget or lower the minimum shares" in message
    floor = float(message.split("at least ")[1].split(" with")[0].replace(",", ""))
    assert floor > problem.budget
    assert result.certificate.iterations <= 3  # the screening passes a proof needs, not a sifting run
    assert solve_customers(problem, scored, method="sifting").certificate.status == Status.INFEASIBLE


def test_spend_floor_never_exceeds_the_cheapest_plan(book):
    """The proven floor on what the minimum counts cost, against HiGHS's LP of the cheapest plan
    (an independent answer): never above it, and close with prices from a large sample."""
    problem, scored = _unaffordable(book, 6_000)
    S, D = problem.probability.shape
    store = chunks.ChunkStore.of(problem, scored)
    minimum = customer_minimums(problem, np.bincount(scored.segment, minlength=S))
    cost = scored.probability * problem.coupon_values + problem.piece_costs
    n = len(scored)
    # min sum cost x  s.t.  each customer one mailing, counts per (segment, mailing) >= minimum
    rows = np.zeros((S * D, n * D))
    rows[scored.segment[:, None] * D + np.arange(D), np.arange(n * D).reshape(n, D)] = 1.0
    one = np.zeros((n, n * D))
    one[np.repeat(np.arange(n), D), np.arange(n * D)] = 1.0
    cheapest = linprog(
        cost.ravel(), A_ub=-rows, b_ub=-minimum.ravel(), A_eq=one, b_eq=np.ones(n), bounds=(0, 1), method="highs"
    )
    assert cheapest.status == 0
    everyone = chunks.Rows(np.arange(n), scored.segment, scored.probability)
    for sample in (lagrangian._subsample(everyone, 1_000, 1), everyone):
        floor = lagrangian._spend_floor(problem, store, minimum, sample)
        assert floor is not None and floor <= cheapest.fun * (1 + 1e-9)
    assert floor == pytest.approx(cheapest.fun, rel=1e-7)  # the whole list's own prices: the LP's optimum


def test_identical_scored_customers_are_grouped(book):
    problem, customers = book
    scored = CustomerList(customers.customer_id, customers.segment, problem.probability[customers.segment])
    result = solve_customers(problem, scored)
    assert result.details["classes"] == 16
    assert result.certificate.objective == pytest.approx(326.09, abs=1e-6)


def test_budget_below_minimum_names_the_smallest_budget(book):
    problem, _ = book
    with pytest.raises(InputError, match=r"761,850\.00") as info:
        problem.with_budget(700_000)
    assert info.value.table == "Settings" and info.value.key == "budget"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(probability=lambda p: np.where(p == p.max(), 1.5, p)), "outside"),
        (dict(customers=lambda n: n * -1), "not a valid count"),
        (dict(mailings=lambda ms: (*ms[:2], Mailing("dm3", "", 2000, 0, 0.9))), "add up to"),
        (dict(mailings=lambda ms: (*ms[:2], Mailing("dm2", "", 2000, 0, 0.1))), "duplicate"),
        (dict(mailings=lambda ms: (ms[0], ms[1], Mailing("dm3", "", -5, 0, 0.1))), "negative"),
    ],
)
def test_invalid_problems_are_refused(book, change, match):
    problem, _ = book
    fields = dict(
        segments=problem.segments,
        customers=problem.customers,
        mailings=problem.mailings,
        probability=problem.probability,
        budget=problem.budget,
    )
    for key, fn in change.items():
        fields[key] = fn(fields[key])
    with pytest.raises(InputError, match=match):
        CouponProblem(**fields)


class _SlowStore(chunks.ChunkStore):
    """Chunks that each take 40 ms a pass (as chunks of a very long list do): a pass is seconds."""

    def map(self, fn, *args, until=None):
        def slow(chunk, *a):
            time.sleep(0.04)
            return fn(chunk, *a)

        return super().map(slow, *args, until=until)


def test_a_time_limit_stops_a_pass_between_chunks(book):
    """A pass over a list whose chunks are slow stops at the time limit, between chunks: the run
    ends within one chunk and one small LP of the limit (a whole pass here is 2 s), with no plan
    claimed; the deadline check itself raises before any chunk once it has passed."""
    problem, customers = scored_customers(book[0], 50_000, seed=4)
    store = _SlowStore.of(problem, customers, chunk_size=1_000)
    with pytest.raises(chunks.OutOfTime):
        store.map(chunks.segment_counts, 16, until=time.perf_counter() - 1)
    start = time.perf_counter()
    plan = lagrangian.solve_scored(problem, store, time_limit=3.0)
    elapsed = time.perf_counter() - start
    assert plan.certificate.status == Status.TIME_LIMIT and plan.overrides is None
    assert elapsed < 3.0 + 1.0  # three full passes happen before the first level: 3 x 2 s would end past 6 s
