"""The customer-level coupon plan: one mailing per customer, binary, solved exactly at scale.

Customers with identical data form a *class* (every customer of a segment when only segment
probabilities are known; each customer on its own when it carries response-model scores).
The model decides integer counts n[k, d] of class k sent mailing d:

    maximise   sum gain[k,d] n[k,d]
    subject to sum_d n[k,d] = size_k,  sum_{k in s} n[k,d] >= L[s,d] = ceil(f_d N_s),
               sum cost[k,d] n[k,d] <= B,  n integer.

Method (*reduced-cost sifting*, exact): the LP relaxation is solved on a small set of *free*
classes while every other class is fixed at its best mailing under the current duals
(mu[s,d] >= 0 for the minimum counts, lam >= 0 for the budget). After each LP the fixed
classes are priced out; those whose fixed mailing is no longer best become free, until none
is: the LP optimum of the whole problem is then proven by complementary slackness. Its
Lagrangian value over *all* classes,

    UB(mu, lam) = sum_k size_k max_d (gain[k,d] + mu[s(k),d] - lam cost[k,d]) - sum L mu + lam B,

is an upper bound for any mu, lam >= 0 and is what the result reports as its proven bound.
An LP vertex has at most S*D + 1 fractional classes (the rows linking classes); a small MIP
over those (HiGHS) makes the plan integral, and HiGHS on all free classes is the fallback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from dmplan.solver.backends.highs import HighsOptions, new_highs, set_time_limit, termination
from dmplan.solver.backends.highs import solve as solve_highs
from dmplan.solver.common import Certificate, Progress, ProgressCallback, Status, seconds_until
from dmplan.solver.coupon.checks import check_assignment, customer_minimums
from dmplan.solver.coupon.chunks import Duals
from dmplan.solver.coupon.model import CouponProblem, CustomerList, CustomerResult
from dmplan.solver.linear import INF, LinearProgram

DIRECT_LIMIT = 30_000  #: classes solved as one LP without sifting
SAMPLE_SIZE = 10_000  #: classes in the sample LP that gives the first duals
FREE_SIZE = 20_000  #: classes left free (smallest margins) after the sample LP
SAMPLE_LP: HighsOptions = {"solver": "ipm", "run_crossover": "off"}  #: only duals are needed from it
RESTRICTED_LP: HighsOptions = {
    "solver": "ipm",
    "run_crossover": "on",
}  #: rounding needs a vertex (few fractional classes)
WARM_LP: HighsOptions = {"solver": "simplex"}  #: later pricing rounds restart from the last basis
SHUFFLE_SEED = 20210108  #: fixed seed: which customers of a class get which mailing


@dataclass
class Classes:
    """Customers grouped into classes of identical data."""

    segment: np.ndarray  # (K,)
    size: np.ndarray  # (K,)
    gain: np.ndarray  # (K, D) extra conversion probability per customer
    cost: np.ndarray  # (K, D) expected cost per customer
    member: np.ndarray  # (M,) class of each customer


def _classes(problem: CouponProblem, customers: CustomerList) -> Classes:
    S = len(problem.segments)
    if customers.probability is None:
        size = np.bincount(customers.segment, minlength=S).astype(float)
        return Classes(np.arange(S), size, problem.unit_gain, problem.unit_cost, customers.segment)
    representative, member = _group_identical(customers.segment, customers.probability)
    p = customers.probability[representative]
    gain = p - p[:, [problem.baseline_index]]
    cost = p * problem.coupon_values[None, :] + problem.piece_costs[None, :]
    size = np.bincount(member, minlength=len(representative)).astype(float)
    return Classes(customers.segment[representative], size, gain, cost, member)


def _group_identical(segment: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group customers whose segment and scores are identical (exactly, not approximately).

    Rows are hashed by a random projection, grouped by hash, and every row is then compared
    with its group's first row; on any hash collision no grouping is done.
    Returns the first customer of each group and each customer's group.
    """
    M = len(segment)
    weights = np.random.default_rng(7).random(probability.shape[1]) + 1.0
    key = probability @ weights + segment * 16.0
    _, first, member = np.unique(key, return_index=True, return_inverse=True)
    same = (segment == segment[first][member]) & np.all(probability == probability[first][member], axis=1)
    if not same.all():
        return np.arange(M), np.arange(M)
    return first, member.astype(np.int64)


def lagrangian_bound(classes: Classes, duals: Duals, minimum: np.ndarray, budget: float) -> float:
    """UB(mu, lam): a proven upper bound on the customer-level optimum for any mu, lam >= 0."""
    best = duals.reduced(classes.segment, classes.gain, classes.cost).max(axis=1)
    return float(classes.size @ best - np.sum(minimum * duals.mu) + duals.lam * budget)


def _columns(classes: Classes, idx: np.ndarray, S: int, D: int) -> tuple[np.ndarray, np.ndarray, sp.csc_matrix]:
    """The columns n[k, d] of the classes ``idx`` (class-major): objective (gain), upper bound
    (class size) and their entries in the coupling rows (S*D minimum counts, then the budget)."""
    n = len(idx)
    min_rows = (classes.segment[idx][:, None] * D + np.arange(D)[None, :]).ravel()
    indices = np.column_stack([min_rows, np.full(n * D, S * D)]).ravel()
    values = np.column_stack([np.ones(n * D), classes.cost[idx].ravel()]).ravel()
    coupling = sp.csc_matrix((values, indices, np.arange(0, 2 * n * D + 1, 2)), shape=(S * D + 1, n * D))
    return classes.gain[idx].ravel(), np.repeat(classes.size[idx], D), coupling


def add_columns(h: highspy.Highs, classes: Classes, idx: np.ndarray, S: int, D: int, first_row: int = 0) -> int:
    """Append the columns n[k, d] of the classes ``idx`` to ``h``, their coupling entries in rows
    ``first_row`` ... ``first_row + S*D``; returns the first new column."""
    first_col = h.getNumCol()
    gain, upper, coupling = _columns(classes, idx, S, D)
    h.addCols(
        len(gain),
        gain,
        np.zeros(len(gain)),
        upper,
        coupling.nnz,
        coupling.indptr[:-1].astype(np.int32),
        (coupling.indices + first_row).astype(np.int32),
        coupling.data,
    )
    return first_col


def _class_rows(n: int, D: int) -> sp.csr_matrix:
    """One row per class: its D columns add up to the class size."""
    return sp.csr_matrix((np.ones(n * D), np.arange(n * D), np.arange(0, n * D + 1, D)), shape=(n, n * D))


def _program(classes: Classes, free: np.ndarray, minimum: np.ndarray, budget: float, integer: bool) -> LinearProgram:
    """The class-count model over the classes ``free`` with right-hand sides already reduced
    (the same columns as :class:`RestrictedLP`; rows: classes, then the coupling rows)."""
    K, D = len(free), classes.gain.shape[1]
    S = minimum.shape[0]
    gain, upper, coupling = _columns(classes, free, S, D)
    matrix = sp.vstack([_class_rows(K, D), coupling], format="csr")
    size = classes.size[free]
    row_lower = np.concatenate([size, minimum.ravel().astype(float), [-INF]])
    row_upper = np.concatenate([size, np.full(S * D, INF), [budget]])
    return LinearProgram(
        cost=gain,
        matrix=matrix,
        row_lower=row_lower,
        row_upper=row_upper,
        col_lower=np.zeros(K * D),
        col_upper=upper,
        maximize=True,
        integer=np.full(K * D, integer),
    )


class RestrictedLP:
    """The class-count LP over the free classes, in one HiGHS instance that grows by pricing.

    Rows: S*D minimum-count rows, the budget row, then one row per free class. New free
    classes are appended as columns and rows, so the next solve warm-starts from the last basis.
    """

    def __init__(self, classes: Classes, S: int, D: int) -> None:
        self.classes, self.S, self.D = classes, S, D
        self.h = new_highs()
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        rows = S * D + 1
        self.h.addRows(rows, np.full(rows, -INF), np.full(rows, INF), 0, np.zeros(rows, np.int32), [], [])
        self.free = np.empty(0, dtype=np.int64)

    def add(self, new: np.ndarray) -> None:
        S, D, n = self.S, self.D, len(new)
        if n == 0:
            return
        first_col = add_columns(self.h, self.classes, new, S, D)
        rows = _class_rows(n, D)
        size = self.classes.size[new]
        columns = (first_col + rows.indices).astype(np.int32)
        self.h.addRows(n, size, size, rows.nnz, rows.indptr[:-1].astype(np.int32), columns, rows.data)
        self.free = np.concatenate([self.free, new])

    def set_limits(self, minimum: np.ndarray, budget: float) -> None:
        S, D = self.S, self.D
        for row, low in enumerate(minimum.ravel()):
            self.h.changeRowBounds(row, float(low), INF)
        self.h.changeRowBounds(S * D, -INF, float(budget))

    def solve(self, options: HighsOptions, time_limit: float | None) -> tuple[Status, np.ndarray | None, Duals | None]:
        for key, value in options.items():
            self.h.setOptionValue(key, value)
        set_time_limit(self.h, time_limit)
        self.h.run()
        status = termination(self.h.getModelStatus(), has_solution=False)  # one status table for HiGHS
        if status != Status.OPTIMAL:
            return status, None, None
        solution = self.h.getSolution()
        S, D = self.S, self.D
        x = np.array(solution.col_value).reshape(-1, D)
        duals = Duals.of_rows(np.array(solution.row_dual[: S * D + 1]), S, D)
        return Status.OPTIMAL, x, duals


def _repair_candidates(
    classes: Classes,
    reduced: np.ndarray,
    choice: np.ndarray,
    fixed: np.ndarray,
    minimum: np.ndarray,
    budget: float,
    factor: float,
) -> np.ndarray:
    """Fixed classes whose release can cover the fixed plan's shortfalls, ``factor`` times over.

    For each (segment, mailing) below its minimum: the classes of that segment cheapest to
    switch to that mailing (smallest drop in reduced value). For a budget overrun: the classes
    with the smallest drop in reduced value per unit of cost saved.
    """
    S, D = minimum.shape
    idx = np.flatnonzero(fixed)
    counts, cost, _ = _fixed_totals(classes, idx, choice, S, D)
    current = reduced[idx, choice[idx]]
    picks: list[np.ndarray] = []
    for s_, d in np.argwhere(counts < minimum):
        deficit = float(minimum[s_, d] - counts[s_, d])
        cand = idx[(classes.segment[idx] == s_) & (choice[idx] != d)]
        loss = current[np.searchsorted(idx, cand)] - reduced[cand, d]
        take = np.argsort(loss, kind="stable")
        covered = np.searchsorted(np.cumsum(classes.size[cand][take]), factor * deficit) + 1
        picks.append(cand[take[:covered]])
    free_cheapest = float(classes.size[~fixed] @ classes.cost[~fixed].min(axis=1))
    excess = cost + free_cheapest - budget
    if excess > 0:
        saving = classes.cost[idx, choice[idx]][:, None] - classes.cost[idx]
        loss = current[:, None] - reduced[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(saving > 0, loss / saving, np.inf).min(axis=1)
        take = np.argsort(ratio, kind="stable")
        best_saving = saving.max(axis=1)[take] * classes.size[idx][take]
        covered = np.searchsorted(np.cumsum(best_saving), factor * excess) + 1
        picks.append(idx[take[:covered]])
    return np.unique(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)


def _fixed_totals(
    classes: Classes, fixed: np.ndarray, choice: np.ndarray, S: int, D: int
) -> tuple[np.ndarray, float, float]:
    """Counts per (segment, mailing), cost and gain of the fixed classes at ``choice``."""
    size = classes.size[fixed]
    pick = choice[fixed]
    counts = np.bincount(classes.segment[fixed] * D + pick, weights=size, minlength=S * D).reshape(S, D)
    cost = float(size @ classes.cost[fixed, pick])
    gain = float(size @ classes.gain[fixed, pick])
    return counts, cost, gain


def solve_classes(
    problem: CouponProblem,
    customers: CustomerList,
    *,
    time_limit: float | None = None,
    gap: float = 1e-4,
    progress: ProgressCallback | None = None,
) -> CustomerResult:
    """One mailing per customer by reduced-cost sifting over the class model (see the module docstring).

    Parameters
    ----------
    problem : segments, mailings, budget; its probabilities are used unless ``customers``
        carries its own.
    customers : the customer list (segment index per customer, optional scores).
    time_limit : seconds for the whole solve.
    gap : relative gap at which the rounding MIP may stop.
    progress : called after each phase.

    Returns
    -------
    CustomerResult with the assignment, the Lagrangian bound as proven bound, and a
    feasibility re-check of the assignment against the original constraints.
    """
    start = time.perf_counter()
    deadline = None if time_limit is None else start + time_limit
    S, D = problem.probability.shape
    classes = _classes(problem, customers)
    K = len(classes.size)
    sizes = np.bincount(customers.segment, minlength=S)
    minimum = customer_minimums(problem, sizes)

    def remaining() -> float | None:
        return seconds_until(deadline)

    def report(message: str, objective: float | None = None, bound: float | None = None) -> None:
        if progress is not None:
            progress(Progress(time.perf_counter() - start, objective, bound, message=message))

    # first duals: the LP of a random sample of classes, right-hand sides scaled to it;
    # then the classes whose best mailing is least certain (smallest margin) start free
    order = np.arange(K)
    if K > DIRECT_LIMIT:
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(K, SAMPLE_SIZE, replace=False))
        share = SAMPLE_SIZE / K
        sample_lp = RestrictedLP(classes, S, D)
        sample_lp.add(sample)
        sample_lp.set_limits(np.floor(minimum * share), problem.budget * share)
        _, _, sample_duals = sample_lp.solve(SAMPLE_LP, remaining())
        reduced = (sample_duals or Duals.zero(S, D)).reduced(classes.segment, classes.gain, classes.cost)
        top2 = np.sort(reduced, axis=1)[:, -2:] if D > 1 else np.zeros((K, 2))
        order = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")
        choice = reduced.argmax(axis=1)
        repair = _repair_candidates(classes, reduced, choice, np.ones(K, dtype=bool), minimum, problem.budget, 1.5)
        order = np.concatenate([repair, order])
        report(f"sample LP of {SAMPLE_SIZE:,} customers solved")
    else:
        reduced = Duals.zero(S, D).reduced(classes.segment, classes.gain, classes.cost)
    choice = reduced.argmax(axis=1)

    restricted = RestrictedLP(classes, S, D)
    is_free = np.zeros(K, dtype=bool)
    target = min(K, FREE_SIZE if K > DIRECT_LIMIT else K)
    if K > DIRECT_LIMIT:
        target = min(K, target + len(repair))
    rounds = 0
    status: Status = Status.ERROR
    x: np.ndarray | None = None
    lp_duals: Duals | None = None
    while True:
        rounds += 1
        head = order[:target]
        new = np.unique(head[~is_free[head]])  # order may list a class twice (repair candidates first)
        restricted.add(new)
        is_free[new] = True
        fixed = np.flatnonzero(~is_free)
        fixed_counts, fixed_cost, fixed_gain = _fixed_totals(classes, fixed, choice, S, D)
        restricted.set_limits(minimum - fixed_counts, problem.budget - fixed_cost)
        status, x, lp_duals = restricted.solve(RESTRICTED_LP if rounds == 1 else WARM_LP, remaining())
        if status == Status.INFEASIBLE and len(fixed):
            # the fixed classes leave a minimum count unmet or overspend: free those that can repair it
            repair = _repair_candidates(classes, reduced, choice, ~is_free, minimum, problem.budget, 2.0**rounds)
            order = np.concatenate([repair, order])
            target = int(is_free.sum()) + len(repair) if len(repair) else min(K, 2 * target)
            report(f"restricted LP infeasible; {target:,} customers free")
            continue
        if status != Status.OPTIMAL or lp_duals is None or x is None:
            break
        reduced = lp_duals.reduced(classes.segment, classes.gain, classes.cost)
        best = reduced.max(axis=1)
        tolerance = 1e-9 * max(1.0, float(np.abs(reduced).max()))
        priced_out = fixed[best[fixed] > reduced[fixed, choice[fixed]] + tolerance]
        report(
            f"LP round {rounds}: {int(is_free.sum()):,} free customers, {len(priced_out):,} priced out",
            fixed_gain + _gain(classes, restricted.free, x),
        )
        if len(priced_out) == 0:
            break
        choice[priced_out] = reduced[priced_out].argmax(axis=1)
        order = np.concatenate([priced_out, order])
        target = int(is_free.sum()) + len(priced_out)

    if status != Status.OPTIMAL or x is None or lp_duals is None:
        message = {
            Status.INFEASIBLE: "no plan satisfies the minimum counts within the budget",
            Status.ERROR: "HiGHS stopped without a solution on the restricted LP",
        }.get(status, "")
        cert = Certificate(status, None, None, time.perf_counter() - start, "highs sifting", rounds, message=message)
        return CustomerResult(problem, customers, cert, None, method="sifting")
    free = restricted.free
    lp_counts = np.maximum(x, 0.0)

    lp_bound = lagrangian_bound(classes, lp_duals, minimum, problem.budget)
    report("LP optimum proven; rounding", fixed_gain + _gain(classes, free, lp_counts), lp_bound)

    free_budget = problem.budget - fixed_cost
    free_minimum = minimum - fixed_counts
    counts, mip_nodes = _round_fractional(classes, free, lp_counts, free_minimum, free_budget, gap, remaining)
    bound = lp_bound
    if counts is None or _gap(fixed_gain + _gain(classes, free, counts), bound) > gap:
        # degenerate LPs (many identical customers) round poorly: a MIP over every free class
        report("rounding did not close the gap; MIP over the free customers", None, bound)
        mip = _program(classes, free, free_minimum, free_budget, integer=True)
        start_point = None if counts is None else counts.ravel()
        sol = solve_highs(mip, time_limit=remaining(), gap=gap / 10, warm_start=start_point)
        mip_nodes += sol.iterations
        if sol.x is not None and (counts is None or (sol.objective or 0.0) > _gain(classes, free, counts)):
            counts = np.round(sol.x.reshape(-1, D))
        if len(fixed) == 0 and sol.bound is not None:
            bound = min(bound, sol.bound)  # nothing was fixed: the MIP's bound is the problem's
    if counts is None:
        cert = Certificate(Status.TIME_LIMIT, None, lp_bound, time.perf_counter() - start, "highs sifting", rounds)
        return CustomerResult(problem, customers, cert, None, lp_bound, "sifting")

    class_counts = np.zeros((K, D))
    class_counts[fixed, choice[fixed]] = classes.size[fixed]
    class_counts[free] = counts
    assignment = _assign(classes, class_counts)
    chosen_cost = classes.cost[classes.member, assignment]
    feasibility = check_assignment(problem, customers.segment, chosen_cost, assignment)
    objective = float(classes.gain[classes.member, assignment].sum())
    seconds = time.perf_counter() - start
    status = Status.OPTIMAL if _gap(objective, bound) <= gap + 1e-12 else Status.FEASIBLE
    cert = Certificate(
        status,
        objective,
        bound,
        seconds,
        "highs sifting",
        rounds,
        feasibility,
        extra={"free_customers": float(len(free)), "mip_nodes": float(mip_nodes)},
    )
    report("done", objective, bound)
    return CustomerResult(
        problem,
        customers,
        cert,
        assignment,
        lp_bound,
        "sifting",
        {"free_classes": float(len(free)), "classes": float(K), "lp_rounds": float(rounds)},
    )


def _gain(classes: Classes, free: np.ndarray, counts: np.ndarray) -> float:
    return float(np.sum(classes.gain[free] * counts))


def _gap(objective: float, bound: float) -> float:
    return max(0.0, bound - objective) / max(1.0, abs(bound))


def _round_fractional(
    classes: Classes,
    free: np.ndarray,
    lp_counts: np.ndarray,
    minimum: np.ndarray,
    budget: float,
    gap: float,
    remaining: Callable[[], float | None],
) -> tuple[np.ndarray | None, int]:
    """Integral counts for the free classes: keep the LP's integral classes, MIP over the fractional ones."""
    fractional = np.abs(lp_counts - np.round(lp_counts)).max(axis=1) > 1e-7
    whole = np.round(lp_counts)
    if not fractional.any():
        return whole, 0
    S, D = minimum.shape
    settled = free[~fractional]
    done = np.zeros((S, D))
    np.add.at(done, classes.segment[settled], whole[~fractional])
    spent = float(np.sum(classes.cost[settled] * whole[~fractional]))
    mip = _program(classes, free[fractional], minimum - done, budget - spent, integer=True)
    sol = solve_highs(mip, time_limit=remaining(), gap=gap / 10)
    if sol.x is None:
        return None, sol.iterations
    whole[fractional] = np.round(sol.x.reshape(-1, D))
    return whole, sol.iterations


def _assign(classes: Classes, class_counts: np.ndarray) -> np.ndarray:
    """Mailing per customer from counts per class; customers of a class are taken in a seeded random order."""
    if np.all(classes.size == 1):
        return class_counts.argmax(axis=1)[classes.member]
    M = len(classes.member)
    shuffled = np.random.default_rng(SHUFFLE_SEED).permutation(M)
    order = shuffled[np.argsort(classes.member[shuffled], kind="stable")]  # by class, random within
    starts = np.concatenate([[0], np.cumsum(classes.size.astype(np.int64))[:-1]])
    rank = np.empty(M, dtype=np.int64)
    rank[order] = np.arange(M) - starts[classes.member[order]]  # position of a customer within its class
    cumulative = np.cumsum(np.round(class_counts).astype(np.int64), axis=1)[classes.member]
    return (rank[:, None] >= cumulative).sum(axis=1)
