"""Scored customer lists of any size: a dual method over the few coupling rows, exact and certified.

The plan sends each customer one mailing; the customers are linked only by S*D minimum counts and
one budget row. Given their prices (mu >= 0 per minimum count, lam >= 0 for the budget) every
customer's best mailing is the argmax of its reduced value gain + mu[s] - lam cost, and

    UB(mu, lam) = sum_i max_d (gain[i,d] + mu[s_i,d] - lam cost[i,d]) - sum L mu + lam B

bounds the optimum from above for any prices. The method finds the LP's prices by screening:

1. prices from the LP of a small random sample, refined on samples ten times larger in turn;
2. on each sample and then on all customers: a pass fixes every customer whose best mailing leads
   the others by more than the window (how far the prices may still move: KAPPA times the last
   change between levels) could change, and returns the others; the LP over those, with the
   fixed customers' counts and spend taken off the right-hand sides, gives new prices. The next
   pass checks the fixed customers against them: when none prefers another mailing, the
   restricted LP's optimum is the whole LP's (complementary slackness); else the most beaten join
   the LP (sifting). The restricted LP has one row per coupling constraint whatever its size (see
   :class:`_RestrictedLP`), and its dual simplex starts at the centre prices. When the fixed
   customers leave a count or the budget out of reach, the LP's elastic slacks price that row so
   high that the customers nearest to helping it are the most beaten: sifting repairs it too.
3. an LP vertex has at most S*D + 1 fractional customers; a small MIP over them and the free
   customers nearest a tie makes the plan integral;
4. a last pass in float64 over every customer gives UB at the final prices (the proven bound) and
   the plan's objective, counts and spend (the re-check).

Each pass is a map over chunks and a reduce of a few aggregates (:mod:`.chunks`), so the same code
runs in-process or on Dask workers. Memory: the scores, float32 gain and cost, and one chunk's
temporaries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import highspy
import numpy as np

from dmplan.solver.backends.highs import new_highs, set_time_limit, termination
from dmplan.solver.backends.highs import solve as solve_highs
from dmplan.solver.common import (
    Certificate,
    FeasibilityCheck,
    Progress,
    ProgressCallback,
    Status,
    ViolationLog,
    seconds_until,
)
from dmplan.solver.coupon import chunks as ch
from dmplan.solver.coupon.checks import customer_minimums
from dmplan.solver.coupon.customers import Classes, _program
from dmplan.solver.coupon.model import CouponProblem
from dmplan.solver.linear import INF

BASE_SAMPLE = 2_000  #: customers in the first sample, whose LP is solved whole
LEVEL_FACTOR = 10  #: each refining sample is this many times larger than the last
KAPPA = 2.0  #: window = KAPPA * the estimated error of the prices
SLACK_PRICE = 1e3  #: per customer short of a count: far above any customer's gain (at most 1)
MIN_ADD = 5_000  #: customers a sifting round may add even to a small LP
SPEND_SAMPLE = 20_000  #: customers whose cheapest plan prices the proof that no plan fits the budget
MAX_FREE_SHARE = 0.05  #: a window leaving more of a level than this near a tie is narrowed
NARROWINGS = 3  #: at most this many times, by a factor 4 each
LAM_ERROR = 0.3  #: relative error of the budget's price from a sample of n customers: about LAM_ERROR / sqrt(n)
ROUND_GAP = 1e-6  #: the loosest gap the rounding MIP is solved to, relative to the plan's bound
ROUND_NEIGHBOURS = 64  #: free customers nearest a tie that join the fractional ones in the first rounding MIP
SEED = 20210108
LP_OPTIONS = {"solver": "simplex", "presolve": "off"}  #: dual simplex from the centre prices or the last basis


@dataclass
class LevelSolution:
    """A restricted LP that is optimal for its whole level (no settled customer prefers another
    mailing at ``duals``): fixed by ``(center, window)``, the rest ``x``."""

    center: ch.Duals
    window: ch.Window
    fixed: ch.Totals
    free: ch.Rows
    x: np.ndarray  # (n_free, D)
    duals: ch.Duals


@dataclass
class ScoredPlan:
    """The result of :func:`solve_scored`: the plan as a rule (screen + overrides), certified."""

    certificate: Certificate
    duals: ch.Duals | None = None  #: the screen that fixes most customers
    window: ch.Window | None = None
    overrides: ch.Overrides | None = None  #: mailings of the customers the screen leaves free
    lp_bound: float | None = None
    details: dict[str, float] = field(default_factory=dict)
    mailings: np.ndarray | None = None  #: int8 per customer, when asked for


def solve_scored(
    problem: CouponProblem,
    store: ch.Store,
    *,
    time_limit: float | None = None,
    gap: float = 1e-6,
    progress: ProgressCallback | None = None,
    keep_mailings: bool = False,
) -> ScoredPlan:
    """The customer-level plan for the scored customers in ``store`` (see the module docstring);
    with ``keep_mailings`` the plan's mailing per customer too, from the same pass as its totals."""
    start = time.perf_counter()
    deadline = None if time_limit is None else start + time_limit
    S, D, econ = store.S, store.D, store.economics
    passes = 0

    def report(message: str, objective: float | None = None, bound: float | None = None) -> None:
        if progress is not None:
            progress(Progress(time.perf_counter() - start, objective, bound, message=message))

    try:  # the passes before the first level: each stops at the deadline too
        sizes = np.sum(store.map(ch.segment_counts, S, until=deadline), axis=0)
        cheapest = float(sum(store.map(ch.cheapest_spend, until=deadline)))
        M = int(sizes.sum())
        level_sizes: list[int] = []  # samples of BASE_SAMPLE * LEVEL_FACTOR**l customers, then everyone
        while BASE_SAMPLE * LEVEL_FACTOR ** len(level_sizes) * 5 <= M:
            level_sizes.append(BASE_SAMPLE * LEVEL_FACTOR ** len(level_sizes))
        largest = (
            ch.Rows.concat(store.map(ch.sample, level_sizes[-1] / M, SEED, until=deadline), D) if level_sizes else None
        )
    except ch.OutOfTime:
        return ScoredPlan(Certificate(Status.TIME_LIMIT, None, None, time.perf_counter() - start, "lagrangian"))
    minimum = customer_minimums(problem, sizes)
    short = np.flatnonzero(minimum.sum(axis=1) > sizes)
    if short.size:
        s = int(short[0])
        message = (
            f"segment {problem.segments[s]} has {int(sizes[s])} customers, fewer than its minimum counts "
            f"({int(minimum[s].sum())}: every mailing's minimum share, rounded up to whole customers)"
        )
        cert = Certificate(Status.INFEASIBLE, None, None, time.perf_counter() - start, "lagrangian", message=message)
        return ScoredPlan(cert)
    if cheapest * (1 - 1e-7) > problem.budget:
        message = (
            f"the budget {problem.budget:,.2f} is below {cheapest:,.2f}, what every customer costs at "
            "their cheapest mailing (from the scores)"
        )
        cert = Certificate(Status.INFEASIBLE, None, None, time.perf_counter() - start, "lagrangian", message=message)
        return ScoredPlan(cert)

    samples: list[ch.Rows] = []  # each a subsample of the next
    if largest is not None:
        samples = [_subsample(largest, 2 * n if n == BASE_SAMPLE else n, SEED + n) for n in level_sizes[:-1]]
        samples.append(largest)
    center: ch.Duals | None = None
    window = ch.Window.everything(S, D)
    solution: LevelSolution | None = None
    floor_tried = False

    def beyond_budget() -> ScoredPlan | None:
        """The refusal, when the minimum counts provably cost more than the budget (tried once)."""
        nonlocal passes, floor_tried
        if floor_tried or largest is None:
            return None
        floor_tried = True
        floor = _spend_floor(problem, store, minimum, _subsample(largest, SPEND_SAMPLE, SEED), deadline)
        passes += 1
        if floor is None or floor <= problem.budget * (1 + 1e-9):
            return None
        message = (
            f"the minimum counts cost at least {floor:,.2f} with these scores, above the budget "
            f"{problem.budget:,.2f}: raise the budget or lower the minimum shares"
        )
        seconds = time.perf_counter() - start
        return ScoredPlan(Certificate(Status.INFEASIBLE, None, None, seconds, "lagrangian", passes, message=message))

    while samples and center is None and not _past(deadline):
        # two disjoint halves of the smallest sample: their prices' difference measures the sampling
        # error (a half whose scaled budget misses by chance: the next sample's halves)
        pair, samples = samples[0], samples[1:]
        halves = [ch.Rows(pair.index[i::2], pair.segment[i::2], pair.probability[i::2]) for i in (0, 1)]
        base = [_solve_sample(problem, h, M, None, window, deadline) for h in halves]
        if base[0] is not None and base[1] is not None:
            center = ch.Duals((base[0].duals.mu + base[1].duals.mu) / 2, (base[0].duals.lam + base[1].duals.lam) / 2)
            window = ch.Window.between(base[0].duals, base[1].duals, KAPPA / 2)
        elif (refusal := beyond_budget()) is not None:
            return refusal  # a sample with no plan may mean a list with none: ruled out before larger samples
    level: ch.Rows | None
    full = False  #: the solution is the whole list's
    need_floor = center is None  #: the largest sample solved had no plan
    for level in [*samples, None]:
        if _past(deadline):
            break
        if level is None and need_floor and (refusal := beyond_budget()) is not None:
            return refusal  # the largest sample had no plan: tried before an LP over much of the list
        if level is None:
            solution, used = _solve_level(store, minimum, problem.budget, center, window, deadline, report)
            full = solution is not None
        else:
            solution, used = _solve_sample(problem, level, M, center, window, deadline), 0
            need_floor = solution is None
        passes += used
        if solution is None:
            if level is not None and not _past(deadline):
                continue  # a sample's scaled budget can miss by chance: the next level starts from the same prices
            break
        report(f"prices from {M if level is None else len(level):,} customers: {len(solution.free):,} near a tie")
        if center is not None and level is not None:
            # the finer level's prices differ from these by about their change / sqrt(factor), and
            # by no less than a sample of this size can tell the budget's price (LAM_ERROR / sqrt(n))
            window = ch.Window.between(solution.duals, center, KAPPA / np.sqrt(LEVEL_FACTOR))
            mu = np.maximum(window.mu, window.mu.max(axis=1, keepdims=True))  # a segment's rows move together
            window = ch.Window(mu, max(window.lam, LAM_ERROR * solution.duals.lam / np.sqrt(len(level))))
        center = solution.duals

    seconds = time.perf_counter() - start
    if solution is None or not full:
        status = Status.TIME_LIMIT if _past(deadline) else Status.INFEASIBLE
        message = "" if status == Status.TIME_LIMIT else "no plan meets the minimum counts within the budget"
        return ScoredPlan(Certificate(status, None, None, seconds, "lagrangian", passes, message=message))

    # the proven bound: UB at the LP's prices over every customer, float64
    lp_bound = _bound(store, solution.duals, minimum, problem.budget)
    passes += 1
    report("LP optimum; rounding", solution.fixed.gain + _free_gain(solution, econ), lp_bound)
    mailings, mip_nodes = _round(solution, minimum, problem.budget, econ, S, lp_bound, gap, deadline)
    if mailings is None:
        cert = Certificate(Status.TIME_LIMIT, None, lp_bound, time.perf_counter() - start, "lagrangian", passes)
        return ScoredPlan(cert, lp_bound=lp_bound)
    overrides = ch.Overrides(solution.free.index, mailings)
    # the plan's totals (and, when asked, its mailings: a cluster keeps them on its workers)
    parts = store.map(ch.assign if keep_mailings else _totals_only, solution.center, solution.window, overrides, econ)
    totals = ch.Totals.sum([t for _, t in parts])
    plan_mailings = np.concatenate([m for m, _ in parts]) if keep_mailings else None
    passes += 1
    feasibility = check_totals(problem, minimum, totals)
    seconds = time.perf_counter() - start
    objective = totals.gain
    closed = _gap(objective, lp_bound) <= gap + 1e-12
    cert = Certificate(
        Status.OPTIMAL if closed else Status.FEASIBLE,
        objective,
        lp_bound,
        seconds,
        "lagrangian",
        passes,
        feasibility,
        extra={"free_customers": float(len(solution.free)), "mip_nodes": float(mip_nodes)},
    )
    report("done", objective, lp_bound)
    return ScoredPlan(
        cert,
        solution.center,
        solution.window,
        overrides,
        lp_bound,
        {"free_classes": float(len(solution.free)), "classes": float(M), "lp_rounds": float(passes)},
        plan_mailings,
    )


def _totals_only(
    chunk: ch.Chunk, duals: ch.Duals, window: ch.Window, overrides: ch.Overrides, econ: ch.Economics
) -> tuple[None, ch.Totals]:
    """:func:`chunks.assign` without shipping the mailings back (the re-check needs only totals)."""
    return None, ch.assign(chunk, duals, window, overrides, econ)[1]


def _solve_level(
    store: ch.Store,
    minimum: np.ndarray,
    budget: float,
    center: ch.Duals | None,
    window: ch.Window,
    until: float | None,
    note: Callable[[str], None] | None = None,
) -> tuple[LevelSolution | None, int]:
    """Screen around ``center``, then sift: the LP over the unsettled customers, the settled ones
    its prices beat added to it (warm start), until none is beaten. While the settled customers
    leave a count or the budget out of reach, the LP's elastic slacks price that row prohibitively,
    so the customers nearest to helping it are the most beaten and join first; when none is beaten
    and a slack is still needed, no plan over the whole level meets the row."""
    passes = 0
    try:  # every pass stops at ``until``
        S, D, econ = store.S, store.D, store.economics
        if center is None:
            center = ch.Duals.zero(S, D)
        parts = store.map(ch.screen, center, window, econ, until=until)
        passes = 1
        for _ in range(NARROWINGS):
            if sum(len(p.free) for p in parts) <= MAX_FREE_SHARE * store.size + MIN_ADD or window.is_everything:
                break
            # prices this uncertain would put much of the list into the LP: a narrower window, and
            # sifting brings in whom it misses (rounds that each at most double a small LP); exact
            # ties stay near a tie in any window, hence the cap on narrowings
            window = window.scaled(0.25)
            parts = store.map(ch.screen, center, window, econ, until=until)
            passes += 1
        fixed = ch.Totals.sum([p.fixed for p in parts])
        lp = _RestrictedLP(S, D, econ, center)
        lp.add(ch.Rows.concat([p.free for p in parts], D), center, window)
        short_rounds = 0
        while True:
            status, x, duals, feasible = lp.solve(
                minimum - fixed.counts, budget - fixed.settled_spend, seconds_until(until)
            )
            if status != Status.OPTIMAL or x is None or duals is None or _past(until):
                return None, passes
            # the most beaten join the LP: at most as many as it holds (its size at most doubles a
            # round, so a poor window costs rounds rather than one huge LP); while a row is out of
            # reach, a few at a time, twice as many each round it stays so (a list no plan fits is
            # then proven so in a few dozen passes)
            short_rounds = 0 if feasible else short_rounds + 1
            limit = max(MIN_ADD, len(lp.rows)) if feasible else MIN_ADD << (short_rounds - 1)
            held = np.sort(lp.rows.index)
            beaten = ch.Rows.concat(store.map(ch.priced_out, center, held, duals, limit, until=until), D)
            passes += 1
            added = lp.missing(duals)
            if len(beaten) == 0 and added == 0:
                return (LevelSolution(center, window, fixed, lp.rows, x, duals) if feasible else None), passes
            if note is not None:
                note(f"{store.size:,} customers: LP over {len(lp.rows):,}, {len(beaten):,} more priced in")
            beaten = ch.most_beaten(beaten, center, duals, econ, limit)  # they leave the settled totals
            fixed = fixed.minus(
                ch.Totals.of(beaten.segment, ch.best_mailing(beaten, center, econ), beaten.probability, econ, S)
            )
            lp.add(beaten, center, window, duals)
    except ch.OutOfTime:
        return None, passes  # the passes that completed


class _RestrictedLP:
    """The LP over some customers (in order of addition) with the settled ones' totals off the
    right-hand sides; one HiGHS instance, so each solve warm-starts from the last basis.

    Each customer's mailing is written as its *reference* mailing (its best at the centre prices)
    moved by y[i, d] >= 0 to its other candidates: x[i, ref] = 1 - sum_d y[i, d]. The reference
    columns' counts, spend and gain become constants, so a customer with one other candidate is a
    single column in [0, 1] and needs no row of its own (more candidates: one row sum y <= 1). The
    LP then has about S*D + 1 rows however many customers it holds, which the dual simplex solves
    far faster than one convexity row per customer. Candidates are the mailings the window leaves
    near the best; :meth:`missing` prices the others, and those that beat a customer's candidates
    join, so the optimum is the LP's over every mailing.

    The coupling rows are equalities with explicit surplus columns, and every column's objective is
    its value reduced at the centre prices (which changes the objective by a constant on the
    feasible set). The slack basis then stands at the centre prices, so the first dual simplex
    solve starts near the optimum instead of at zero prices; its row duals are the change from the
    centre.

    Every coupling row has an elastic slack at a prohibitive price, so the LP always solves and,
    when the settled customers leave a count or the budget out of reach, says which rows.
    Rows: S*D minimum counts, the budget, then one per customer with three or more candidates;
    columns: the S*D + 1 elastic slacks, the S*D + 1 surplus columns, then the y columns.
    """

    def __init__(self, S: int, D: int, econ: ch.Economics, center: ch.Duals) -> None:
        self.S, self.D, self.econ, self.center = S, D, econ, center
        self.rows = ch.Rows.concat([], D)
        self.gain, self.cost = np.empty((0, D)), np.empty((0, D))
        self.ref = np.empty(0, np.int64)
        self.candidate = np.empty((0, D), bool)
        self.own_row = np.empty(0, np.int64)  #: the customer's row sum y <= 1, or -1
        self.col_customer, self.col_mailing = np.empty(0, np.int64), np.empty(0, np.int64)
        self.base_counts, self.base_spend = np.zeros((S, D)), 0.0
        self.h = new_highs()
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        k = self.k = S * D + 1
        self.first_y = 2 * k
        self.n_rows = k
        self.h.addRows(k, np.zeros(k), np.zeros(k), 0, np.zeros(k, np.int32), [], [])
        # HiGHS's row duals at the centre: a ">= L" row of a maximisation prices at -mu, the budget at lam
        self.center_row_dual = np.concatenate([-center.mu.ravel(), [center.lam]])
        # a count short by one costs more than any customer can gain; a unit of budget over, more than it buys
        scale = SLACK_PRICE * econ.value_scale
        price = np.concatenate([np.full(S * D, scale), [scale / max(1.0, float(np.max(econ.coupon + econ.piece)))]])
        sign = np.concatenate([np.ones(S * D), [-1.0]])  # elastic: a count's missing customers, the budget's excess
        rows = np.arange(k, dtype=np.int32)
        for objective, coefficient in ((-price, sign), (np.zeros(k), -sign)):  # elastic, then surplus
            self.h.addCols(
                k,
                objective - coefficient * self.center_row_dual,
                np.zeros(k),
                np.full(k, INF),
                k,
                rows,
                rows,
                coefficient,
            )

    def add(self, rows: ch.Rows, center: ch.Duals, window: ch.Window, prices: ch.Duals | None = None) -> None:
        """Customers join with their best mailing at ``center`` as reference and, as candidates, the
        mailings near it in ``window`` and their best at ``prices``."""
        n, D = len(rows), self.D
        if n == 0:
            return
        ref, candidate = ch.candidates(rows, center, window, self.econ)
        gain, cost = self.econ.gain(rows.probability), self.econ.cost(rows.probability)
        if prices is not None:
            candidate[np.arange(n), prices.reduced(rows.segment, gain, cost).argmax(axis=1)] = True
        first = len(self.rows)
        self.rows = ch.Rows.concat([self.rows, rows], D)
        self.gain, self.cost = np.concatenate([self.gain, gain]), np.concatenate([self.cost, cost])
        self.ref = np.concatenate([self.ref, ref])
        self.candidate = np.concatenate([self.candidate, np.zeros((n, D), bool)])
        self.candidate[first + np.arange(n), ref] = True
        self.own_row = np.concatenate([self.own_row, np.full(n, -1, np.int64)])
        np.add.at(self.base_counts, (rows.segment, ref), 1.0)
        self.base_spend += float(cost[np.arange(n), ref].sum())
        customer, mailing = np.nonzero(candidate & ~np.eye(D, dtype=bool)[ref])
        self._add_columns(first + customer, mailing)

    def _add_columns(self, customer: np.ndarray, mailing: np.ndarray) -> None:
        """y columns for (customer, mailing) pairs, and a row sum y <= 1 for each customer that
        now has two or more."""
        m = len(customer)
        if m == 0:
            return
        self.candidate[customer, mailing] = True
        ref, segment = self.ref[customer], self.rows.segment[customer].astype(np.int64)
        own = self.own_row[customer]
        entries = np.where(own >= 0, 4, 3)
        starts = np.concatenate([[0], np.cumsum(entries)[:-1]]).astype(np.int32)
        index = np.full((m, 4), -1, np.int64)
        value = np.zeros((m, 4))
        # moving a customer from its reference to this mailing: one more here, one fewer there
        index[:, 0], value[:, 0] = segment * self.D + mailing, 1.0
        index[:, 1], value[:, 1] = segment * self.D + ref, -1.0
        index[:, 2], value[:, 2] = self.k - 1, self.cost[customer, mailing] - self.cost[customer, ref]
        index[:, 3], value[:, 3] = own, 1.0
        keep = index >= 0
        r = self.center.reduced(self.rows.segment[customer], self.gain[customer], self.cost[customer])
        objective = r[np.arange(m), mailing] - r[np.arange(m), ref]
        self.h.addCols(
            m,
            objective,
            np.zeros(m),
            np.ones(m),
            int(keep.sum()),
            starts,
            index[keep].astype(np.int32),
            value[keep],
        )
        self.col_customer = np.concatenate([self.col_customer, customer])
        self.col_mailing = np.concatenate([self.col_mailing, mailing])
        columns = np.bincount(self.col_customer, minlength=len(self.rows))
        needs = np.unique(customer[(own < 0) & (columns[customer] >= 2)])
        if len(needs) == 0:
            return
        mine = np.flatnonzero(np.isin(self.col_customer, needs))
        order = mine[np.argsort(self.col_customer[mine], kind="stable")]
        counts = columns[needs]
        row_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        new_rows = len(needs)
        self.h.addRows(
            new_rows,
            np.full(new_rows, -INF),
            np.ones(new_rows),
            len(order),
            row_starts,
            (self.first_y + order).astype(np.int32),
            np.ones(len(order)),
        )
        self.own_row[needs] = self.n_rows + np.arange(new_rows)
        self.n_rows += new_rows

    def missing(self, prices: ch.Duals) -> int:
        """Adds the mailings that beat a customer's candidates at ``prices``; how many were added
        (none: the LP over the candidates is the LP over every mailing)."""
        if len(self.rows) == 0:
            return 0
        r = prices.reduced(self.rows.segment, self.gain, self.cost)
        best_candidate = np.where(self.candidate, r, -np.inf).max(axis=1)
        tolerance = 1e-9 * (np.abs(r).max(axis=1) + 1.0)
        customer, mailing = np.nonzero(~self.candidate & (r > (best_candidate + tolerance)[:, None]))
        self._add_columns(customer, mailing)
        return len(customer)

    def solve(
        self, minimum: np.ndarray, budget: float, time_limit: float | None
    ) -> tuple[Status, np.ndarray | None, ch.Duals | None, bool]:
        """Status, the customers' x (n, D), the coupling rows' prices, and whether no row needed
        its elastic slack (else the prices include the slacks' prohibitive ones)."""
        S, D, k = self.S, self.D, self.k
        low = (minimum - self.base_counts).ravel()
        for row in range(S * D):
            self.h.changeRowBounds(row, float(low[row]), float(low[row]))
        self.h.changeRowBounds(S * D, float(budget - self.base_spend), float(budget - self.base_spend))
        for key, value in LP_OPTIONS.items():
            self.h.setOptionValue(key, value)
        set_time_limit(self.h, time_limit)
        self.h.run()
        status = termination(self.h.getModelStatus(), has_solution=False)
        if status != Status.OPTIMAL:
            return status, None, None, False
        solution = self.h.getSolution()
        col = np.array(solution.col_value)
        n = len(self.rows)
        x = np.zeros((n, D))
        np.add.at(x, (self.col_customer, self.col_mailing), col[self.first_y :])
        x[np.arange(n), self.ref] = 1.0 - x.sum(axis=1)
        row_dual = np.array(solution.row_dual[:k]) + self.center_row_dual
        return Status.OPTIMAL, x, ch.Duals.of_rows(row_dual, S, D), not bool((col[:k] > 1e-6).any())


def _solve_sample(
    problem: CouponProblem,
    rows: ch.Rows,
    M: int,
    center: ch.Duals | None,
    window: ch.Window,
    until: float | None,
) -> LevelSolution | None:
    """The plan's LP on a sample of ``rows`` out of ``M`` customers: counts and budget scaled to it."""
    S = len(problem.segments)
    level = ch.ChunkStore.of_rows(rows, S, ch.Economics.of(problem))
    minimum = customer_minimums(problem, np.bincount(rows.segment, minlength=S))
    budget = problem.budget * len(rows) / M
    return _solve_level(level, minimum, budget, center, window, until)[0]


class _SpendEconomics(ch.Economics):
    """The economics of the cheapest plan: each mailing's value is minus its cost. Only the screens
    and the restricted LP read it (through ``gain``); the plan's totals and bound, which compute
    the gain from the scores, are never taken on it."""

    def gain(self, probability: np.ndarray) -> np.ndarray:
        return -self.cost(probability)

    @property
    def value_scale(self) -> float:
        return max(1.0, float(np.max(self.coupon + self.piece)))


def _spend_floor(
    problem: CouponProblem,
    store: ch.Store,
    minimum: np.ndarray,
    sample: ch.Rows,
    until: float | None = None,
) -> float | None:
    """A proven lower bound on what any plan meeting the minimum counts spends: the prices mu of
    the cheapest such plan on ``sample`` give, by weak duality over every customer,
    spend >= sum L mu - sum_i max_d (mu[s_i, d] - cost[i, d]). None when the sample LP fails."""
    S, D, econ = store.S, store.D, store.economics
    spend = _SpendEconomics(econ.coupon, econ.piece, econ.baseline)
    level = ch.ChunkStore.of_rows(sample, S, spend)
    counts = customer_minimums(problem, np.bincount(sample.segment, minlength=S))
    unlimited = 2.0 * float(spend.cost(sample.probability).max(axis=1).sum()) + 1.0
    solution, _ = _solve_level(level, counts, unlimited, None, ch.Window.everything(S, D), until)
    if solution is None:
        return None
    mu = solution.duals.mu
    try:
        return float(np.sum(minimum * mu) - sum(store.map(ch.spend_sum, mu, econ, until=until)))
    except ch.OutOfTime:
        return None


def _past(until: float | None) -> bool:
    return until is not None and time.perf_counter() > until


def _subsample(rows: ch.Rows, n: int, seed: int) -> ch.Rows:
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False))
    return ch.Rows(rows.index[pick], rows.segment[pick], rows.probability[pick])


def _free_classes(free: ch.Rows, econ: ch.Economics) -> Classes:
    n = len(free)
    return Classes(
        free.segment.astype(np.int64),
        np.ones(n),
        econ.gain(free.probability),
        econ.cost(free.probability),
        np.arange(n),
    )


def _free_gain(solution: LevelSolution, econ: ch.Economics) -> float:
    return float(np.sum(econ.gain(solution.free.probability) * solution.x))


def _bound(store: ch.Store, duals: ch.Duals, minimum: np.ndarray, budget: float) -> float:
    total = sum(store.map(ch.lagrangian_sum, duals, store.economics))
    return float(total - np.sum(minimum * duals.mu) + duals.lam * budget)


def _round(
    solution: LevelSolution,
    minimum: np.ndarray,
    budget: float,
    econ: ch.Economics,
    S: int,
    bound: float,
    gap: float,
    until: float | None,
) -> tuple[np.ndarray | None, int]:
    """Integral mailings for the free customers: the LP's integral ones kept, a MIP over the
    fractional ones and the free customers nearest a tie (more of them while the gap stays open)."""
    free, x = solution.free, np.maximum(solution.x, 0.0)
    n, D = x.shape
    mailing = x.argmax(axis=1)
    fractional = np.abs(x - np.round(x)).max(axis=1) > 1e-7 if n else np.zeros(0, bool)
    if not fractional.any():
        return mailing, 0
    classes = _free_classes(free, econ)
    r = solution.duals.reduced(classes.segment, classes.gain, classes.cost)
    top = np.sort(r, axis=1)
    closeness = top[:, -1] - top[:, -2] if D > 1 else np.zeros(n)
    closeness[fractional] = -np.inf
    order = np.argsort(closeness, kind="stable")
    size = int(fractional.sum()) + ROUND_NEIGHBOURS
    nodes = 0
    best: np.ndarray | None = None
    while True:
        chosen = np.sort(order[:size])
        rest = np.setdiff1d(np.arange(n), chosen)
        rest_totals = ch.Totals.of(free.segment[rest], mailing[rest], free.probability[rest], econ, S)
        fixed = solution.fixed
        mip = _program(
            classes,
            chosen,
            minimum - fixed.counts - rest_totals.counts,
            budget - fixed.settled_spend - rest_totals.settled_spend,
            integer=True,
        )
        # the MIP's objective is a sliver of the plan's: its gap is absolute, a tenth of the plan's
        # (no looser than 1e-6 of the bound: what rounding costs stays out of sight at any gap asked)
        target = min(gap, ROUND_GAP)
        sol = solve_highs(
            mip,
            time_limit=seconds_until(until),
            gap=target,
            options={"mip_abs_gap": target * max(1.0, abs(bound)) / 10},
        )
        nodes += sol.iterations
        if sol.x is not None:
            candidate = mailing.copy()
            candidate[chosen] = np.round(sol.x.reshape(-1, D)).argmax(axis=1)
            best = candidate
            objective = fixed.gain + rest_totals.gain + float(sol.objective or 0.0)
            if _gap(objective, bound) <= gap or size >= n:
                return best, nodes
        elif size >= n:
            return best, nodes
        size = min(n, size * 4)


def _gap(objective: float, bound: float) -> float:
    return max(0.0, bound - objective) / max(1.0, abs(bound))


def check_totals(
    problem: CouponProblem, minimum: np.ndarray, totals: ch.Totals, tolerance: float = 1e-6
) -> FeasibilityCheck:
    """The plan's counts per (segment, mailing) against the minimums, and its spend against the budget."""
    log = ViolationLog(tolerance)
    for s, d in np.argwhere(totals.counts < minimum):
        log.check(
            f"segment {problem.segments[s]}, {problem.mailings[d].id}: minimum customers",
            float(minimum[s, d] - totals.counts[s, d]),
        )
    log.check("budget", (totals.spend - problem.budget) / max(1.0, problem.budget))
    return log.result()
