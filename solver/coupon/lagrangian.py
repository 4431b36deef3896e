"""Scored customer lists of any size: a dual method over the few coupling rows, exact and certified.

The plan sends each customer one mailing; the customers are linked only by S*D minimum counts and
one budget row. Given their prices (mu >= 0 per minimum count, lam >= 0 for the budget) every
customer's best mailing is the argmax of its reduced value gain + mu[s] - lam cost, and

    UB(mu, lam) = sum_i max_d (gain[i,d] + mu[s_i,d] - lam cost[i,d]) - sum L mu + lam B

bounds the optimum from above for any prices. The method finds the LP's prices by screening:

1. prices from the LP of a small random sample, refined on samples ten times larger in turn;
2. on each sample and then on all customers: a pass fixes every customer whose best mailing leads
   the second by more than a margin per segment (twice the last change of the prices' effect on
   that segment's reduced values) and returns the others; the LP over those, with the fixed
   customers' counts and spend taken off the right-hand sides, gives new prices. The next pass
   checks the fixed customers against them: when none prefers another mailing, the restricted
   LP's optimum is the whole LP's (complementary slackness); else it screens again around them.
   An infeasible restricted LP (the fixed customers overspend or miss a count) widens the margin.
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
from dmplan.solver.common import Certificate, FeasibilityCheck, Progress, ProgressCallback, Status, ViolationLog
from dmplan.solver.coupon import chunks as ch
from dmplan.solver.coupon.checks import customer_minimums
from dmplan.solver.coupon.customers import RESTRICTED_LP, WARM_LP, Classes, _program, add_columns
from dmplan.solver.coupon.model import CouponProblem
from dmplan.solver.linear import INF

BASE_SAMPLE = 2_000  #: customers in the first sample, whose LP is solved whole
LEVEL_FACTOR = 10  #: each refining sample is this many times larger than the last
KAPPA = 1.0  #: window = KAPPA * the estimated error of the prices
SLACK_PRICE = 1e3  #: per customer short of a count: far above any customer's gain (at most 1)
MIN_ADD = 5_000  #: customers a sifting round may add even to a small LP
LAM_ERROR = 0.3  #: relative error of the budget's price from a sample of n customers: about LAM_ERROR / sqrt(n)
GROWTH = 2.0  #: the window at most doubles from one round to the next
ROUND_NEIGHBOURS = 64  #: free customers nearest a tie that join the fractional ones in the first rounding MIP
SEED = 20210108


@dataclass
class LevelSolution:
    """A restricted LP that is optimal for its whole level: fixed by ``(center, delta)``, the rest ``x``."""

    center: ch.Duals
    window: ch.Window
    fixed: ch.Totals
    free: ch.Rows
    x: np.ndarray  # (n_free, D)
    duals: ch.Duals
    proven: bool  #: no settled customer prefers another mailing at ``duals``


@dataclass
class ScoredPlan:
    """The result of :func:`solve_scored`: the plan as a rule (screen + overrides), certified."""

    certificate: Certificate
    duals: ch.Duals | None = None  #: the screen that fixes most customers
    window: ch.Window | None = None
    overrides: ch.Overrides | None = None  #: mailings of the customers the screen leaves free
    lp_bound: float | None = None
    details: dict[str, float] = field(default_factory=dict)


def solve_scored(
    problem: CouponProblem,
    store: ch.Store,
    *,
    time_limit: float | None = None,
    gap: float = 1e-6,
    progress: ProgressCallback | None = None,
) -> ScoredPlan:
    """The customer-level plan for the scored customers in ``store`` (see the module docstring)."""
    start = time.perf_counter()
    deadline = None if time_limit is None else start + time_limit
    S, D, econ = store.S, store.D, store.economics
    passes = 0

    def report(message: str, objective: float | None = None, bound: float | None = None) -> None:
        if progress is not None:
            progress(Progress(time.perf_counter() - start, objective, bound, message=message))

    def remaining() -> float | None:
        return None if deadline is None else max(0.01, deadline - time.perf_counter())

    def expired() -> bool:
        return deadline is not None and time.perf_counter() > deadline

    sizes = np.sum(store.map(ch.segment_counts, S), axis=0)
    M = int(sizes.sum())
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
    cheapest = float(sum(store.map(ch.cheapest_spend, econ)))
    if cheapest > problem.budget * (1 + 1e-12):
        message = (
            f"the budget {problem.budget:,.2f} is below {cheapest:,.2f}, what every customer costs at "
            "their cheapest mailing (from the scores)"
        )
        cert = Certificate(Status.INFEASIBLE, None, None, time.perf_counter() - start, "lagrangian", message=message)
        return ScoredPlan(cert)

    # samples of BASE_SAMPLE * LEVEL_FACTOR**l customers (each a subsample of the next), then everyone
    level_sizes: list[int] = []
    while BASE_SAMPLE * LEVEL_FACTOR ** len(level_sizes) * 5 <= M:
        level_sizes.append(BASE_SAMPLE * LEVEL_FACTOR ** len(level_sizes))
    samples: list[ch.Rows] = []
    if level_sizes:
        largest = ch.Rows.concat(store.map(ch.sample, level_sizes[-1] / M, SEED), D)
        samples = [_subsample(largest, 2 * n if n == BASE_SAMPLE else n, SEED + n) for n in level_sizes[:-1]]
        samples.append(largest)
    center: ch.Duals | None = None
    window = ch.Window.everything(S, D)
    solution: LevelSolution | None = None
    while samples and center is None and not expired():
        # two disjoint halves of the smallest sample: their prices' difference measures the sampling
        # error (a half whose scaled budget misses by chance: the next sample's halves)
        pair, samples = samples[0], samples[1:]
        halves = [ch.Rows(pair.index[i::2], pair.segment[i::2], pair.probability[i::2]) for i in (0, 1)]
        base = [_solve_sample(problem, h, M, None, window, remaining, expired) for h in halves]
        if base[0] is not None and base[1] is not None:
            center = ch.Duals((base[0].duals.mu + base[1].duals.mu) / 2, (base[0].duals.lam + base[1].duals.lam) / 2)
            window = ch.Window.between(base[0].duals, base[1].duals, KAPPA / 2)
    level: ch.Rows | None
    full = False  #: the solution is the whole list's
    for level in [*samples, None]:
        if expired():
            break
        if level is None:
            solution, used = _solve_level(store, minimum, problem.budget, center, window, remaining, expired)
            full = solution is not None
        else:
            solution, used = _solve_sample(problem, level, M, center, window, remaining, expired), 0
        passes += used
        if solution is None:
            if level is not None and not expired():
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
        status = Status.TIME_LIMIT if expired() else Status.INFEASIBLE
        message = "" if status == Status.TIME_LIMIT else "no plan meets the minimum counts within the budget"
        return ScoredPlan(Certificate(status, None, None, seconds, "lagrangian", passes, message=message))

    # the proven bound: UB at the LP's prices over every customer, float64
    lp_bound = _bound(store, solution.duals, minimum, problem.budget)
    passes += 1
    report("LP optimum; rounding", solution.fixed.gain + _free_gain(solution, econ), lp_bound)
    mailings, mip_nodes = _round(solution, minimum, problem.budget, econ, S, lp_bound, gap, remaining)
    if mailings is None:
        cert = Certificate(Status.TIME_LIMIT, None, lp_bound, time.perf_counter() - start, "lagrangian", passes)
        return ScoredPlan(cert, lp_bound=lp_bound)
    overrides = ch.Overrides(solution.free.index, mailings)
    totals = ch.Totals.sum([t for _, t in store.map(_totals_only, solution.center, solution.window, overrides, econ)])
    passes += 1
    feasibility = check_totals(problem, minimum, totals)
    seconds = time.perf_counter() - start
    objective = totals.gain
    closed = _gap(objective, lp_bound) <= gap + 1e-12 and solution.proven
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
    remaining: Callable[[], float | None],
    expired: Callable[[], bool],
) -> tuple[LevelSolution | None, int]:
    """Screen around ``center``, then sift: the LP over the unsettled customers, the settled ones
    its prices beat added to it (warm start), until none is beaten. An infeasible restricted LP
    (the settled customers overspend or miss a count) widens the window and starts again."""
    S, D, econ = store.S, store.D, store.economics
    if center is None:
        center = ch.Duals.zero(S, D)
    passes = 0
    while True:
        parts = store.map(ch.screen, center, window, econ)
        passes += 1
        fixed = ch.Totals.sum([p.fixed for p in parts])
        free = ch.Rows.concat([p.free for p in parts], D)
        lp = _RestrictedLP(S, D, econ)
        lp.add(free)
        rounds = 0
        while True:
            status, x, duals, short = lp.solve(
                minimum - fixed.counts, budget - fixed.settled_spend, remaining(), warm=rounds > 0
            )
            rounds += 1
            if status != Status.OPTIMAL or x is None or duals is None or expired():
                break
            beaten = lp.new(ch.Rows.concat(store.map(ch.priced_out, center, window, duals), D))
            passes += 1
            solution = LevelSolution(center, window, fixed, lp.rows, x, duals, len(beaten) == 0)
            if len(beaten) == 0:
                return solution, passes
            # the most beaten join the LP (at most as many as it holds: its size at most doubles a
            # round, so a poor window costs rounds rather than one huge LP); they leave the settled totals
            beaten = _most_beaten(beaten, center, duals, econ, max(MIN_ADD, len(lp.rows)))
            fixed = fixed.minus(ch.Totals.of(beaten.segment, _best(beaten, center, econ), beaten.probability, econ, S))
            lp.add(beaten)
        if status == Status.INFEASIBLE and not window.is_everything:
            # the settled customers leave these rows out of reach: widen the window where they bind
            window = ch.Window.everything(S, D) if window.floor > 1e-2 else window.widened_at(*short, GROWTH, center)
            continue
        return None, passes


class _RestrictedLP:
    """The LP over some customers (rows in order of addition) with the settled ones' totals off
    the right-hand sides; one HiGHS instance, so added customers warm-start from the last basis.

    Every coupling row has an elastic slack at a prohibitive price, so the LP always solves and,
    when the settled customers leave a count or the budget out of reach, says which rows.
    Rows: S*D minimum counts, the budget, then one per customer; columns: the S*D + 1 slacks,
    then D per customer.
    """

    def __init__(self, S: int, D: int, econ: ch.Economics) -> None:
        self.S, self.D, self.econ = S, D, econ
        self.rows = ch.Rows.concat([], D)
        self.h = new_highs()
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        k = S * D + 1
        self.h.addRows(k, np.full(k, -INF), np.full(k, INF), 0, np.zeros(k, np.int32), [], [])
        # a count short by one costs more than any customer can gain; a unit of budget over, more than it buys
        price = np.concatenate(
            [np.full(S * D, SLACK_PRICE), [SLACK_PRICE / max(1.0, float(np.max(econ.coupon + econ.piece)))]]
        )
        sign = np.concatenate([np.ones(S * D), [-1.0]])
        self.h.addCols(
            k, -price, np.zeros(k), np.full(k, INF), k, np.arange(k, dtype=np.int32), np.arange(k, dtype=np.int32), sign
        )

    def new(self, rows: ch.Rows) -> ch.Rows:
        """Those of ``rows`` not in the LP yet (settled customers it already took over stay beaten)."""
        keep = ~np.isin(rows.index, self.rows.index)
        return ch.Rows(rows.index[keep], rows.segment[keep], rows.probability[keep])

    def add(self, rows: ch.Rows) -> None:
        S, D, n = self.S, self.D, len(rows)
        if n == 0:
            return
        first = add_columns(self.h, _free_classes(rows, self.econ), np.arange(n), S, D)
        starts = np.arange(0, n * D, D, dtype=np.int32)
        columns = (first + np.arange(n * D)).astype(np.int32)
        self.h.addRows(n, np.ones(n), np.ones(n), n * D, starts, columns, np.ones(n * D))
        self.rows = ch.Rows.concat([self.rows, rows], D)

    def solve(
        self, minimum: np.ndarray, budget: float, time_limit: float | None, warm: bool
    ) -> tuple[Status, np.ndarray | None, ch.Duals | None, tuple[np.ndarray, bool]]:
        """Status, the customers' x (n, D), the coupling rows' prices, and which rows needed their
        slack: the counts (S, D) and the budget (none: the restricted LP is feasible)."""
        S, D = self.S, self.D
        for row, low in enumerate(minimum.ravel()):
            self.h.changeRowBounds(row, float(low), INF)
        self.h.changeRowBounds(S * D, -INF, float(budget))
        for key, value in (WARM_LP if warm else RESTRICTED_LP).items():
            self.h.setOptionValue(key, value)
        set_time_limit(self.h, time_limit)
        self.h.run()
        none = (np.zeros((S, D), bool), False)
        status = termination(self.h.getModelStatus(), has_solution=False)
        if status != Status.OPTIMAL:
            return status, None, None, none
        solution = self.h.getSolution()
        col = np.array(solution.col_value)
        k = S * D + 1
        slack = col[:k] > 1e-6
        if slack.any():
            return Status.INFEASIBLE, None, None, (slack[: S * D].reshape(S, D), bool(slack[S * D]))
        duals = ch.Duals.of_rows(np.array(solution.row_dual[:k]), S, D)
        return Status.OPTIMAL, col[k:].reshape(-1, D), duals, none


def _most_beaten(rows: ch.Rows, center: ch.Duals, prices: ch.Duals, econ: ch.Economics, limit: int) -> ch.Rows:
    """The ``limit`` customers of ``rows`` whose centre mailing trails the best by most at ``prices``."""
    if len(rows) <= limit:
        return rows
    r = prices.reduced(rows.segment, econ.gain(rows.probability), econ.cost(rows.probability))
    behind = r.max(axis=1) - r[np.arange(len(rows)), _best(rows, center, econ)]
    keep = np.sort(np.argpartition(-behind, limit)[:limit])
    return ch.Rows(rows.index[keep], rows.segment[keep], rows.probability[keep])


def _best(rows: ch.Rows, duals: ch.Duals, econ: ch.Economics) -> np.ndarray:
    """Best mailing of ``rows`` under ``duals``, as the float32 passes see it."""
    r = duals.reduced(
        rows.segment, econ.gain(rows.probability).astype(np.float32), econ.cost(rows.probability).astype(np.float32)
    )
    return r.argmax(axis=1)


def _solve_sample(
    problem: CouponProblem,
    rows: ch.Rows,
    M: int,
    center: ch.Duals | None,
    window: ch.Window,
    remaining: Callable[[], float | None],
    expired: Callable[[], bool],
) -> LevelSolution | None:
    """The plan's LP on a sample of ``rows`` out of ``M`` customers: counts and budget scaled to it."""
    S = len(problem.segments)
    level = ch.ChunkStore.of_rows(rows, S, ch.Economics.of(problem))
    minimum = customer_minimums(problem, np.bincount(rows.segment, minlength=S))
    return _solve_level(level, minimum, problem.budget * len(rows) / M, center, window, remaining, expired)[0]


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
    remaining: Callable[[], float | None],
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
        # the MIP's share of the gap is absolute: its own objective is a sliver of the plan's
        sol = solve_highs(
            mip, time_limit=remaining(), gap=gap, options={"mip_abs_gap": gap * max(1.0, abs(bound)) / 10}
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
