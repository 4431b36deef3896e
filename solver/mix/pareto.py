"""Pareto sweep over the cap on changes K: the best revenue found for each K, with its own proven bound.

The sweep, within ONE time budget given by the caller (the workbook's time limit minus what its main solve
used):

1. **Smallest feasible K.** The rules and the budget may force change (the retailer case: its budget is
   90% of the baseline spend). The LP relaxation of "minimise the number of changes"
   (:func:`changes_lower_bound`) proves every K below ``ceil(LP)`` infeasible in about a second and names
   the rows that force change (those with a non-zero dual). A plan with few changes
   (:func:`fewest_changes_plan`, the same MILP restricted to the binaries that LP switches on) is feasible
   for every larger K, so the grid starts at its number of changes and every point has a plan; the K
   between the proven floor and it are reported as unresolved (retailer case: floor 213, plan 329).
2. **One live model for all K** (the ``oa`` backend): the K are solved largest first on one
   outer-approximation model whose count row is moved (:meth:`OuterApproximation.set_max_changes`). Its
   tangent cuts are valid for every K and its LP basis stays warm, so a point costs a fraction of a cold
   solve (the retailer case's first LP alone takes 3.5 s). Each point has its own root bound and rounding
   heuristic and starts from the best plan in hand that fits it. On a small model each point runs the
   whole loop, warm from the larger K's plan cut down to K greedily (:func:`cut_down`); on a large one
   (:func:`_solve_point`) the root and its rounding, then for a point short of the gap the secant MILP
   (:mod:`dmplan.solver.mix.secant`) and MILP rounds. Other backends solve each point separately.
3. **The smallest K in the background.** Near the fewest changes the root rounding breaks the rules and only the
   secant MILP finds good plans, after 10-20 s. On a large model with a time limit the smallest K's root runs
   first (:func:`_smallest_first`, a model of its own), then the secant MILPs of the two smallest K run in a
   worker process (:class:`~dmplan.solver.mix.secant.BackgroundSecant`) while the live model solves the larger
   K; their plans are collected when the sweep comes to the next smallest K (retailer case, 60 s: K = 329 from
   3.4% to 0.21%, K = 470 from 4.3% to 0.09%).
4. **Flat stretches.** On a large model a point goes without a solve of its own where the bound fell by less than
   FLAT_BELOW of the gap per grid step between the last two points solved (:func:`_flat`): it takes the next
   smaller K's plan and the tangent bounds in the clean-up, and its 1-2 s of root go to the smaller K.
5. **Plans everywhere they exist.** Afterwards a point without a plan, or with a worse one, takes the best
   plan of any smaller K, or of the next larger K cut down to K.

Every point keeps its own proven bound; a point says whether it has a plan (:attr:`ParetoPoint.has_plan`)
and whether its K is proven infeasible, so a chart never draws a point without a plan. The knee is the
point farthest above the straight line from the first to the last charted point (both axes scaled to 0..1).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np

from dmplan.solver.backends.highs import MilpArrays, new_highs, set_time_limit, stop_when
from dmplan.solver.common import Progress, ProgressCallback, Status, seconds_until
from dmplan.solver.mix.api import DEFAULT_SOLVER, finish, formulate, solve
from dmplan.solver.mix.backends.base import BackendOutcome
from dmplan.solver.mix.model import MixProblem, MixResult, check_plan, regions
from dmplan.solver.mix.qp import linear_rows, polish_regions
from dmplan.solver.mix.secant import BackgroundSecant, secant_plan

if TYPE_CHECKING:  # the backend loads when a sweep runs on it
    from dmplan.solver.mix.backends.oa import OAOptions, OuterApproximation

INF = highspy.kHighsInf
#: share of the sweep's time the smallest-K LP may use at most (it takes about 1 s on the retailer case)
FLOOR_SHARE = 0.15
#: a point the live model left unproven is re-solved fresh only with at least this many seconds of its share left
MIN_RETRY = 0.5
#: share of the sweep's time (after the smallest-K LP) for the search of a plan with few changes
FEWEST_SHARE = 0.05
#: share of a point's time kept for the secant MILP (:mod:`dmplan.solver.mix.secant`) when the live model
#: leaves the point short of the gap
SECANT_SHARE = 0.75
#: a large-model point whose root rounding is within this gap of its bound dives (:meth:`OuterApproximation.dive`,
#: DIVE_SHARE of its time left) instead of running the secant MILP. Retailer case: at K = 610 (rounding 0.112%)
#: the dive reaches 0.065% where the secant MILP's plan was below the rounding's; at K = 329-470 the rounding
#: breaks the rules (3.6-4.3%) and the secant MILP lifts K = 470 to 0.7%
DIVE_BELOW = 0.01
DIVE_SHARE = 0.95
#: a point farther from its bound dives first when it has at least this many seconds (see ``_solve_point``)
DIVE_SECONDS = 10.0
#: share of the later points' time a dive may borrow: it takes 4-5 s at the retailer case's K = 610, about what
#: that point has left after its root, and ran out of time there on a loaded machine (the borrowed time is only
#: used until the dive ends)
DIVE_BORROW = 0.25
#: share of the sweep's time for the smallest K's root before the sweep (``_smallest_first``)
FIRST_SHARE = 0.2
#: seconds a sweep needs at least for that: the smallest K's cold root takes 2.5-6 s on the retailer cases and its
#: secant MILP 10-20 s; a shorter sweep (the workbook's, after a 10 s solve) keeps its time for the points
FIRST_MIN = 30.0
#: share of the time left after it for the smallest K's secant MILP in the background; the next smallest K's
#: follows until the sweep comes to it
BACKGROUND_FIRST = 0.4
#: a large model's point goes without its own solve where the bound fell by less than this share of the gap per
#: grid step between the last two points solved (see ``_flat``)
FLAT_BELOW = 0.4
FLAT_MESSAGE = "not solved: the revenue curve is flat here; plan of the next smaller K, bound from a larger K's LP"
#: share of the sweep's time kept from the points for the clean-up (its plans' re-checks and cut-downs took
#: 0.7 s of a 60 s sweep on the retailer case), and at least WRAP_UP_CHECKS plan re-checks per point (timed on
#: the sweep's first plans): a 3 s sweep's clean-up took 0.27 s, 20 re-checks of 13 ms, where 1.5% was 0.05 s
WRAP_UP = 0.015
WRAP_UP_CHECKS = 1.5
OUT_OF_TIME_MESSAGE = "not solved: the sweep's time ran out; the best plan in hand, bound from a larger K's LP"
#: the smallest K is solved again on the live model at the end only with this many seconds left: its root again
#: (2-3 s), then the secant MILP, or a dive when DIVE_SECONDS are left. Retailer seed 0's 60 s sweep came to
#: K = 330 with 10.4 s left and, at DIVE_SECONDS + 3, ended there 10 s early at 0.227%; the second solve lifts the
#: plan from 2,243,765.8 to 2,244,051.8 (0.215%)
SMALLEST_AGAIN = 6.0


@dataclass(frozen=True)
class ParetoPoint:
    """One point of the sweep.

    ``result`` is this K's own result: its plan (the best found for this K, possibly the plan of a smaller
    K or a cut-down plan of a larger one), the true revenue of that plan, this K's own proven bound and gap.
    Chart a point only when :attr:`has_plan`; ``revenue_share`` and ``improvement_share`` are None without
    a plan.
    """

    k: int
    k_share: float  #: K as a share of n (0..1)
    result: MixResult
    revenue_share: float | None  #: objective / best objective of the sweep, in percent
    improvement_share: float | None  #: (objective - first charted objective) / (best - first), in percent
    knee: bool = False
    source: str = "solve"  #: where the plan comes from: "solve", "smaller K", "cut down", "none"

    @property
    def has_plan(self) -> bool:
        """True when this point has a plan that passed the re-check (only such points are charted)."""
        return self.result.change is not None and self.result.objective is not None

    @property
    def proven_infeasible(self) -> bool:
        """True when no plan can exist at this K (proven, not just not found)."""
        return self.result.status == Status.INFEASIBLE

    @property
    def objective(self) -> float | None:
        return self.result.objective

    @property
    def bound(self) -> float | None:
        return self.result.bound

    @property
    def gap(self) -> float | None:
        return self.result.gap

    @property
    def status(self) -> Status:
        return self.result.status


class ParetoSweep(list[ParetoPoint]):
    """The sweep's points (a list, in increasing K) and what it proved about small K.

    Attributes
    ----------
    infeasible_below:
        Every K below it is proven infeasible (0 when the baseline itself is feasible).
    forcing_rows:
        The budget or rules that force change there, most binding first (empty when nothing is forced).
    seconds:
        Wall time of the whole sweep.
    message:
        One line for the user on the infeasible range ("" when there is none).
    """

    def __init__(
        self,
        points: Iterable[ParetoPoint] = (),
        *,
        infeasible_below: int = 0,
        forcing_rows: tuple[str, ...] = (),
        seconds: float = 0.0,
        message: str = "",
    ) -> None:
        super().__init__(points)
        self.infeasible_below = infeasible_below
        self.forcing_rows = forcing_rows
        self.seconds = seconds
        self.message = message

    @property
    def charted(self) -> list[ParetoPoint]:
        """The points with a plan: the only ones a chart may draw."""
        return [p for p in self if p.has_plan]


@dataclass(frozen=True)
class ChangesFloor:
    """What the LP of "minimise the number of changes" proves: no plan has fewer than ``k`` changes."""

    k: int
    lp_value: float | None  #: the LP optimum (None when infeasible)
    forcing_rows: tuple[str, ...]
    infeasible: bool = False  #: the rows cannot hold even with every activity free (no K works)
    #: the LP's value of every column of the formulation built with a binding cap (``formulate(problem with
    #: max_changes = movable - 1, "misocp")``; None when the LP was not solved): the plans with few changes are
    #: searched where its region binaries are positive
    columns: np.ndarray | None = None


def k_values(n: int, points: int, start: int = 0) -> list[int]:
    """``points`` caps from ``start`` to ``n`` (evenly spaced, rounded, duplicates dropped)."""
    points = max(2, points)
    start = min(max(0, start), n)
    return sorted({start + round(j * (n - start) / (points - 1)) for j in range(points)})


def _changes_model(problem: MixProblem) -> tuple[int, Any, np.ndarray]:
    """The movable activities, the MISOCP formulation with a cap that never binds, and its rows
    without the count row (the models that count changes put the count in the objective)."""
    movable = int(regions(problem).movable.sum())
    model = formulate(problem.with_max_changes(max(0, movable - 1)), "misocp")
    keep = np.ones(model.num_rows, dtype=bool)
    if model.count_row is not None:
        keep[model.count_row] = False
    return movable, model, keep


def _count_changes(
    model: Any, keep: np.ndarray, cost: np.ndarray, col_upper: np.ndarray, integer: np.ndarray
) -> MilpArrays:
    """Minimise ``cost`` (one per region binary) over the formulation's rows ``keep``."""
    return MilpArrays.from_matrix(
        model.matrix[keep],
        cost=cost,
        col_lower=model.lower,
        col_upper=col_upper,
        row_lower=np.where(np.isfinite(model.row_lower[keep]), model.row_lower[keep], -INF),
        row_upper=np.where(np.isfinite(model.row_upper[keep]), model.row_upper[keep], INF),
        integer=integer,
        offset=0.0,
        maximize=False,
    )


def changes_lower_bound(problem: MixProblem, time_limit: float | None = None) -> ChangesFloor:
    """A proven lower bound on the number of changes of any plan, from an LP.

    The LP relaxation of the formulation's region rows with every binary continuous and the objective
    ``min sum z`` (no cap, no revenue): any plan gives a feasible LP point with ``sum z`` = its changes, so
    no plan changes fewer than ``ceil(LP optimum)`` activities. Its rows with a non-zero dual are those that
    force change (budget, rules).

    Parameters
    ----------
    problem:
        The problem (its cap is ignored).
    time_limit:
        Seconds for the LP (None: no limit). On time-out the bound is 0 (nothing proven).

    Returns
    -------
    ChangesFloor
    """
    if check_plan(problem, np.zeros(problem.n)).ok:
        return ChangesFloor(0, 0.0, ())
    movable, model, keep = _changes_model(problem)
    cost = np.zeros(model.num_vars)
    cost[model.integer] = 1.0
    # pieces without a binary (minimum change 0 and no binding cap) cannot occur: the model is built with a
    # binding cap, so every piece has its binary
    arrays = _count_changes(model, keep, cost, model.upper, np.zeros(0))
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    set_time_limit(highs, time_limit)
    arrays.to_highs(highs)
    highs.run()
    status = highs.getModelStatus()
    names = [name for name, kept in zip(model.row_names, keep, strict=True) if kept]
    if status == highspy.HighsModelStatus.kInfeasible:
        return ChangesFloor(movable + 1, None, (), infeasible=True)
    if status != highspy.HighsModelStatus.kOptimal:
        return ChangesFloor(0, None, ())
    value = float(highs.getInfo().objective_function_value)
    duals = np.abs(np.asarray(highs.getSolution().row_dual))
    rule_names = set(linear_rows(problem).names)
    order = np.argsort(-duals, kind="stable")
    forcing = tuple(names[r] for r in order if duals[r] > 1e-9 and names[r] in rule_names)
    columns = np.asarray(highs.getSolution().col_value, dtype=float)
    # the LP's value carries HiGHS's tolerances: round up only what is clearly above an integer
    return ChangesFloor(max(0, math.ceil(value - 1e-6 * max(1.0, value))), value, forcing, columns=columns)


def fewest_changes_plan(problem: MixProblem, floor: ChangesFloor, time_limit: float | None = None) -> np.ndarray | None:
    """A plan with few changes (not proven fewest), polished for revenue; None when none was found in time.

    The MILP "minimise the number of changes" over the region rows, restricted to the region binaries the
    floor's LP switches on (every other activity keeps its spend). Restricted, HiGHS finds plans at once
    (retailer case: 380 binaries, a plan with 329 changes after 0.4 s, 311 after 11 s), where on all 6,000
    binaries its first plan after 40 s changed 811 activities. The plan's regions are then kept and the
    convex QP over them gives the best revenue with those changes (:func:`polish_regions`).

    Parameters
    ----------
    problem:
        The problem (its cap is ignored).
    floor:
        :func:`changes_lower_bound`'s result (its LP values choose the binaries searched).
    time_limit:
        Seconds for the MILP and the QP together (None: until HiGHS proves the restricted MILP within 1%).
    """
    if floor.columns is None or floor.infeasible:
        return None
    began = time.perf_counter()
    _, model, keep = _changes_model(problem)
    integer = np.flatnonzero(model.integer)
    cost = np.zeros(model.num_vars)
    cost[integer] = 1.0
    col_upper = model.upper.copy()
    col_upper[integer[floor.columns[integer] <= 1e-6]] = 0.0  # activities the LP leaves unchanged stay unchanged
    arrays = _count_changes(model, keep, cost, col_upper, integer)
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("mip_rel_gap", 0.01)
    deadline = math.inf if time_limit is None else began + time_limit
    stop_when(highs, lambda: time.perf_counter() >= deadline)
    set_time_limit(highs, None if time_limit is None else deadline - time.perf_counter())
    arrays.to_highs(highs)
    highs.run()
    if highs.getInfo().primal_solution_status != 2:
        return None
    plan = model.decode(np.asarray(highs.getSolution().col_value, dtype=float), problem)
    unlimited = problem.with_max_changes(None)
    if not check_plan(unlimited, plan).ok:
        return None
    rest = seconds_until(None if time_limit is None else began + time_limit)
    polished = polish_regions(unlimited, plan, rest)
    return polished if polished is not None and problem.revenue(polished) > problem.revenue(plan) else plan


def cut_down(problem: MixProblem, change: np.ndarray, time_limit: float | None = None) -> np.ndarray | None:
    """A plan with at most ``problem.k`` changes made from a plan with more: keep the K changes with the
    largest revenue gain (then, if that fails, the K largest changes relative to their range) and solve the
    convex QP over their regions. Returns the re-checked plan or None."""
    k = problem.k
    changed = np.flatnonzero(change != 0)
    if changed.size <= k:
        return change if check_plan(problem, change).ok else None
    reg = regions(problem)
    x = change[changed]
    gain = problem.a[changed] * x * x + problem.b[changed] * x
    span = np.where(x < 0, -reg.dec_lo[changed], reg.inc_hi[changed])
    for key in (-gain, -np.abs(x) / np.maximum(span, 1e-300)):
        keep = changed[np.argsort(key, kind="stable")[:k]]
        kept = np.zeros(problem.n)
        kept[keep] = change[keep]
        plan = polish_regions(problem, kept, time_limit)
        if plan is not None:
            return plan
    return None


def pareto_over_changes(
    problem: MixProblem,
    points: int = 20,
    *,
    solver: str = "auto",
    time_limit: float | None = None,
    gap: float = 1e-4,
    progress: ProgressCallback | None = None,
    plan: np.ndarray | None = None,
) -> ParetoSweep:
    """Solve the problem for K from the smallest feasible K to n; see the module docstring.

    Parameters
    ----------
    problem:
        The problem (its own ``max_changes`` is ignored).
    points:
        Number of K values.
    solver:
        Backend; ``"auto"``/``"oa"`` solve all points on one live model, others point by point.
    time_limit:
        Seconds for the WHOLE sweep (smallest-K LP, every point and the clean-up), shared among the points
        still to solve. A caller with one overall limit passes what its main solve left.
    gap:
        Relative gap per point.
    progress:
        Called after every point.
    plan:
        A plan the caller already has (e.g. the main solve's): a warm start for every K it fits, and the
        source of cut-down plans below.

    Returns
    -------
    ParetoSweep
        In increasing K; exactly one point has ``knee=True`` when at least three points have a plan.
    """
    start = time.perf_counter()

    def left() -> float | None:
        return None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))

    remaining = left()
    floor = changes_lower_bound(problem, None if remaining is None else FLOOR_SHARE * remaining)
    if floor.infeasible:
        message = "no K is feasible: the budget and rules cannot hold even with every activity free"
        return ParetoSweep(
            (),
            infeasible_below=problem.n + 1,
            forcing_rows=floor.forcing_rows,
            seconds=time.perf_counter() - start,
            message=message,
        )
    unlimited = problem.with_max_changes(problem.n)
    starts = [] if plan is None else [np.asarray(plan, dtype=float)]  # plans feasible for every K they fit
    if floor.k > 0:
        remaining = left()
        fewest = fewest_changes_plan(problem, floor, None if remaining is None else FEWEST_SHARE * remaining)
        starts += [] if fewest is None else [fewest]
    starts.append(np.zeros(problem.n))  # the baseline, a plan for every K when the budget and rules allow it
    checking = time.perf_counter()
    checked = len(starts)
    starts = [p for p in starts if check_plan(unlimited, p).ok]
    check_seconds = (time.perf_counter() - checking) / checked
    # the grid starts at the fewest changes of a plan in hand: every point then has a plan, and the K between
    # the proven floor and that plan are reported as unresolved, not charted without a plan
    fewest_known = min((int(np.count_nonzero(p)) for p in starts), default=None)
    first_k = floor.k if fewest_known is None else max(floor.k, fewest_known)
    ks = k_values(problem.n, points, first_k)
    wrap_up = 0.0 if time_limit is None else max(WRAP_UP * time_limit, WRAP_UP_CHECKS * len(ks) * check_seconds)
    results: dict[int, MixResult] = {}
    sources: dict[int, str] = {}
    name = DEFAULT_SOLVER if solver == "auto" else solver
    movable = int(regions(problem).movable.sum())
    live = None
    if name == "oa" and ks[0] < movable:
        from dmplan.solver.mix.backends.oa import OAOptions, OuterApproximation

        first = problem.with_max_changes(max(1, ks[0]))  # a binding cap: the model gets its count row
        # root rounds stop once the bound moves by less than a hundredth of the gap asked (at 0.1%: 1e-5, half
        # the retailer case's warm root time of the default 1e-7 for a bound 0.0004% higher)
        tolerance = min(max(gap / 100, OAOptions.lp_tolerance), 1e-5)
        # no dive inside the solve: at the middle K the root rounding closes the gap, and at the smallest K it took
        # the secant MILP's time (retailer K = 470: 1.14% instead of 0.68%); _solve_point dives where the rounding
        # is near the bound (DIVE_BELOW) or the point has DIVE_SECONDS
        # the c-MIR rounds only where the root rounding leaves the gap open: at most K it closes it (retailer
        # K >= 610), and the rounds cost a second per point there
        options = OAOptions(max_cuts_per_cone=400, lp_tolerance=tolerance, dive_step=0.0, mir_first=False)
        live = OuterApproximation(first, formulate(first, "misocp"), options)
    # largest K first: its root is the slow cold one and gets a quarter of the time; on a small model every
    # smaller K then starts warm from the larger K's plan cut down to K (a plan feasible for K also holds for
    # larger K, which the clean-up below carries upwards)
    larger: np.ndarray | None = None
    tangents: dict[int, float] = {}
    smallest: MixResult | None = None
    background: BackgroundSecant | None = None
    solved: list[tuple[int, float]] = []  # (position in ks, proven bound) of the points solved, in sweep order
    skipped: set[int] = set()  # positions left to the next smaller K's plan (see _flat)
    # a large model: an exact QP over every activity is not cheap (the retailer case), so its points run the root
    # and the heuristics of _solve_point, and the steps below that pay only there
    large = live is not None and not live.polish_cheap(problem.n)
    remaining = left()
    if live is not None and large and remaining is not None and remaining >= FIRST_MIN and len(ks) >= 3:
        smallest, background = _smallest_first(live.options, problem, floor, starts, ks[:2], remaining, gap, name)
        tangents[ks[0]] = smallest.bound if smallest.bound is not None else math.inf
        if progress is not None:
            message = f"K = {ks[0]}: root solved first" + (", secant MILPs in the background" if background else "")
            progress(Progress(time.perf_counter() - start, smallest.objective, smallest.bound, 0.0, message))
    try:
        for index, k in enumerate(reversed(ks)):
            remaining = left()
            if remaining is not None and time_limit is not None:
                remaining = max(0.0, remaining - wrap_up)  # the clean-up's re-checks and cut-downs
            # the points still to solve and the clean-up; with the smallest K solved before the sweep, neither it nor
            # the clean-up (every point then has a plan) needs a share
            count = len(ks) - index + (-1 if smallest is not None else 1)
            share = None if remaining is None else remaining / max(1, count)
            if share is not None and remaining is not None and index == 0:
                share = max(share, remaining / 4)
            sub = problem.with_max_changes(k)
            began = time.perf_counter()  # the cut-down and the background's polish count against the share
            if background is not None and k == ks[1]:
                # the background's plans fit every K from theirs up: warm starts here and at the smallest K
                starts += background.plans(share)
                background = None
            # cutting the larger K's plan down costs an exact QP over its changes: seconds on the retailer case,
            # where the live model's own root rounding (about 1 s there) gives a better plan, so only where cheap
            cheap = live is None or live.polish_cheap(k)
            warm = None if larger is None or not cheap else cut_down(sub, larger, share)
            warm = _best_fitting(problem, [*([] if warm is None else [warm]), *starts], k)
            rest = None if share is None else max(0.0, share - (time.perf_counter() - began))
            position = len(ks) - 1 - index
            if large and _flat(ks, position, solved, skipped, gap):
                # the next smaller K's plan and the earlier K's tangents will hold this K within the gap
                flat = BackendOutcome(Status.TIME_LIMIT, bound=tangents.get(k), message=FLAT_MESSAGE)
                result = finish(sub, flat, "misocp", name, gap, 0.0)
                skipped.add(position)
            elif smallest is not None and k == ks[0] and (rest is None or rest < SMALLEST_AGAIN):
                # its root ran before the sweep and its plans came from the background; another root and a dive
                # here pay only with DIVE_SECONDS for the dive
                found = BackendOutcome(Status.FEASIBLE, change=warm, bound=smallest.bound, message="best plan in hand")
                result = (
                    smallest
                    if warm is None
                    else _better(sub, smallest, finish(sub, found, "misocp", name, gap, 0.0), gap)
                )
            elif rest is not None and rest <= 0:
                # setting the live model to this K and its solve's set-up cost 0.05-0.1 s for nothing (a 3 s sweep
                # ran on for 0.5 s): the plan in hand, and the clean-up gives it a smaller K's when that is better
                found = BackendOutcome(
                    Status.FEASIBLE if warm is not None else Status.TIME_LIMIT,
                    change=warm,
                    bound=tangents.get(k),
                    message=OUT_OF_TIME_MESSAGE,
                )
                result = finish(sub, found, "misocp", name, gap, 0.0)
            elif live is not None and k >= 1:
                if large:
                    # the earlier K's cuts slowed every later K's first LP; a small model's sweep needs them
                    # (paper-style n = 1,000: 1.6 s -> 2.0 s with them dropped)
                    live.drop_slack_cuts()
                live.set_max_changes(k)
                # what a dive may borrow from the later points (their shares, less this one's)
                lend = None if remaining is None or share is None else DIVE_BORROW * max(0.0, remaining - share)
                result = _solve_point(live, sub, floor, warm, rest, gap, name, not large, lend)
                _add_tangents(tangents, live, ks)
                if smallest is not None and k == ks[0]:
                    result = _better(sub, result, smallest, gap)
                spare = None if share is None else share - (time.perf_counter() - began)
                if result.status == Status.FEASIBLE and not large and (spare is None or spare > MIN_RETRY):
                    # the live model stopped short of the gap with time to spare (its MILP rounds stall on some K
                    # of small models): a fresh solve of this K from the best plan so far (not on a large model,
                    # whose cold root alone takes seconds)
                    fresh = solve(sub, solver=solver, time_limit=spare, gap=gap, warm_start=result.change)
                    result = _better(sub, result, fresh, gap)
            else:
                result = solve(sub, solver=solver, time_limit=rest, gap=gap, warm_start=warm)
            results[k] = result
            if position not in skipped and result.bound is not None:
                solved.append((position, result.bound))
            sources[k] = "solve" if result.change is not None else "none"
            if result.change is not None:
                larger = result.change
            if progress is not None:
                progress(
                    Progress(
                        time.perf_counter() - start,
                        result.objective,
                        result.bound,
                        (index + 1) / len(ks),
                        f"K = {k}: {result.status.value}",
                    )
                )
    finally:
        if background is not None:
            background.close()
    ordered = _fill_plans(problem, ks, [results[k] for k in ks], [sources[k] for k in ks], tangents, gap, left)
    sweep = _points(problem.n, ks, ordered)
    parts = []
    if floor.k > 0:
        rows = ", ".join(floor.forcing_rows[:5]) + (" ..." if len(floor.forcing_rows) > 5 else "")
        parts.append(f"K < {floor.k} is infeasible (proven): {rows} force at least {floor.k} changes")
    if first_k > floor.k:
        parts.append(
            f"the sweep starts at K = {first_k}, the fewest changes of a plan found "
            f"(K = {floor.k} to {first_k - 1}: no plan found, not proven infeasible)"
        )
    message = "; ".join(parts)
    return ParetoSweep(
        sweep,
        infeasible_below=floor.k,
        forcing_rows=floor.forcing_rows,
        seconds=time.perf_counter() - start,
        message=message,
    )


def _flat(ks: list[int], position: int, solved: list[tuple[int, float]], skipped: set[int], gap: float) -> bool:
    """Whether the point ``ks[position]`` of a large model may go without a solve of its own, taking the next
    smaller K's plan and the earlier K's tangent bounds in the clean-up.

    Where the revenue curve is flat the plan of the next smaller K is within the gap at this K too: the bound
    fell by less than FLAT_BELOW of the gap per grid step between the last two points solved (it falls faster
    as K shrinks, by about a third per step on the retailer cases, hence the margin). Never two points in a row,
    nor the largest K, nor the two smallest (the background's). Each solve there takes 1-2 s of root (retailer
    cases, with the slack cuts dropped before each K), which the smaller K need more.
    """
    if position >= len(ks) - 1 or position <= 1 or position + 1 in skipped or len(solved) < 2:
        return False
    (above, upper), (below, lower) = solved[-2], solved[-1]
    steps = max(1, above - below)
    return (upper - lower) / steps <= FLAT_BELOW * gap * max(1.0, abs(lower))


def _best_fitting(problem: MixProblem, plans: list[np.ndarray], k: int) -> np.ndarray | None:
    """The plan of most revenue among ``plans`` with at most ``k`` changes (the first of equals), or None."""
    fitting = [p for p in plans if np.count_nonzero(p) <= k]
    return max(fitting, key=problem.revenue, default=None)


def _add_tangents(tangents: dict[int, float], live: OuterApproximation, ks: list[int]) -> None:
    """Keep the smallest bound at each K of ``ks``: the live model's last root duals bound every K (a tangent of
    the concave LP value)."""
    for other, tangent in zip(ks, live.bounds_at(ks), strict=True):
        if tangent is not None:
            tangents[other] = min(tangents.get(other, math.inf), tangent)


def _smallest_first(
    options: OAOptions,
    problem: MixProblem,
    floor: ChangesFloor,
    starts: list[np.ndarray],
    ks: list[int],
    seconds: float,
    gap: float,
    name: str,
) -> tuple[MixResult, BackgroundSecant | None]:
    """The root of the smallest K ``ks[0]`` (FIRST_SHARE of ``seconds``, on a model of its own) before the sweep
    and, when it leaves the gap open, the secant MILPs of ``ks`` started in the background near its root LP
    (:class:`BackgroundSecant`; the first gets BACKGROUND_FIRST of the time left, the second runs until the sweep
    comes to its K).

    Near the fewest changes the root rounding breaks the rules and only the secant MILP finds good plans, after
    10-20 s (retailer K = 329: 2.9% below the bound after 4 s, 0.2% after 16 s); the sweep cannot give one point
    that much, so they run on the second core while the larger K are solved. The live model is not used: moving
    its cap from the smallest K to the largest re-solved its LP for 9.4 s, where a cold root there takes 1.5 s.
    """
    from dmplan.solver.mix.backends.oa import OuterApproximation

    began = time.perf_counter()
    sub = problem.with_max_changes(ks[0])
    model = formulate(sub, "misocp")
    first = OuterApproximation(sub, model, dataclasses.replace(options, max_rounds=0, mir_first=True))
    outcome = first.solve(time_limit=FIRST_SHARE * seconds, gap=gap, warm_start=_best_fitting(problem, starts, ks[0]))
    result = finish(sub, outcome, "misocp", name, gap, time.perf_counter() - began)
    if result.status == Status.INFEASIBLE or (result.gap is not None and result.gap <= gap):
        return result, None
    spare = max(0.0, seconds - (time.perf_counter() - began))
    jobs: list[tuple[MixProblem, float | None]] = [
        (sub, BACKGROUND_FIRST * spare),
        (problem.with_max_changes(ks[1]), spare),
    ]
    background = BackgroundSecant(model, _near(first, floor, result.change), jobs, start=result.change)
    return result, background


def _solve_point(
    live: OuterApproximation,
    problem: MixProblem,
    floor: ChangesFloor,
    warm: np.ndarray | None,
    seconds: float | None,
    gap: float,
    name: str,
    small: bool,
    lend: float | None = 0.0,
) -> MixResult:
    """One K on the live model (already set to ``problem.k``) within ``seconds`` (a dive may run ``lend``
    seconds longer).

    On a small model (``small``: an exact QP over every activity is cheap) the whole loop runs: root,
    rounding, MILP rounds. On a large model the MILP rounds barely move (the retailer case's K = 506: no
    better plan in 40 s), so the root and its rounding run first. A point left short of the gap then dives
    (DIVE_SHARE of its time left) when the rounding is within DIVE_BELOW of the bound, and otherwise gives
    SECANT_SHARE of its time left to the secant MILP near the floor LP, this K's root and the plan in hand;
    the rest goes to MILP rounds.
    """
    began = time.perf_counter()

    def spare() -> float | None:
        return None if seconds is None else seconds - (time.perf_counter() - began)

    if small:
        outcome = live.solve(time_limit=seconds, gap=gap, warm_start=warm)
        return finish(problem, outcome, "misocp", name, gap, time.perf_counter() - began)
    rounds = live.options.max_rounds
    live.options.max_rounds = 0  # the root and its rounding only
    try:
        outcome = live.solve(time_limit=seconds, gap=gap, warm_start=warm)
    finally:
        live.options.max_rounds = rounds
    result = finish(problem, outcome, "misocp", name, gap, time.perf_counter() - began)
    left = spare()
    near = result.gap is not None and result.gap < DIVE_BELOW
    # the dive where the rounding is near the bound (the rules do not dominate), and from the c-MIR rounds' LP
    # wherever the point has DIVE_SECONDS: retailer K = 462 then reaches 0.12% in a 150 s sweep, where the secant
    # MILP left 0.7%; with less time the dive at the smallest K ends without a plan and the secant MILP goes first
    dive = near or left is None or left >= DIVE_SECONDS
    if result.status == Status.FEASIBLE and dive and (left is None or left > MIN_RETRY):
        budget = None if left is None or lend is None else DIVE_SHARE * left + lend
        if live.dive(budget) and live.incumbent is not None:
            dived = BackendOutcome(Status.FEASIBLE, change=live.incumbent, bound=result.bound, message="dive")
            result = _better(problem, result, finish(problem, dived, "misocp", name, gap, 0.0), gap)
            near = result.gap is not None and result.gap < DIVE_BELOW
    left = spare()
    if result.status == Status.FEASIBLE and not near and (left is None or left > MIN_RETRY):
        allowed = _near(live, floor, result.change)
        budget = None if left is None else SECANT_SHARE * left
        found = secant_plan(problem, live.model, allowed, budget, start=result.change)
        if found is not None and live.offer(found):
            secant = BackendOutcome(Status.FEASIBLE, change=found, bound=result.bound, message="secant MILP")
            result = _better(problem, result, finish(problem, secant, "misocp", name, gap, 0.0), gap)
    left = spare()
    if result.status == Status.FEASIBLE and (left is None or left > MIN_RETRY):
        rounds_outcome = live.solve(time_limit=left, gap=gap, warm_start=result.change)
        result = _better(problem, result, finish(problem, rounds_outcome, "misocp", name, gap, 0.0), gap)
    return dataclasses.replace(
        result, certificate=dataclasses.replace(result.certificate, seconds=time.perf_counter() - began)
    )


def _near(live: OuterApproximation, floor: ChangesFloor, plan: np.ndarray | None) -> np.ndarray:
    """Region binaries (flags over ``live``'s columns) on in the floor's LP, in the live model's last root LP
    or in ``plan``: where :func:`secant_plan` searches."""
    model = live.model
    allowed = np.zeros(model.num_vars, dtype=bool)
    # the floor's LP ran on the same formulation (built with a binding cap, as the live model): same columns
    for values in (floor.columns, live.root_values):
        if values is not None and values.size == model.num_vars:
            allowed |= values > 1e-6
    if plan is not None:
        allowed |= model.encode(plan, live.problem) > 0.5
    return allowed & model.integer


def _fill_plans(
    problem: MixProblem,
    ks: list[int],
    results: list[MixResult],
    sources: list[str],
    tangents: dict[int, float],
    gap: float,
    left: Callable[[], float | None],
) -> list[tuple[MixResult, str]]:
    """Give every point the best plan and the best bound known for its K.

    Plans: a smaller K's plan is feasible for every larger K; a point still without a plan takes the next
    larger K's plan cut down greedily (:func:`cut_down`). Bounds: a larger K's bound holds for every smaller
    K (the feasible set only shrinks), and so do the tangents of the live model's root LPs (``tangents``).
    """
    bounds: list[float] = []
    running = math.inf
    for k, result in zip(reversed(ks), reversed(results), strict=True):
        own = result.bound if result.bound is not None else math.inf
        running = min(running, own, tangents.get(k, math.inf))
        bounds.append(running)
    bounds.reverse()
    fixed: list[tuple[MixResult, str]] = []
    best: MixResult | None = None
    for k, result, source, bound in zip(ks, results, sources, bounds, strict=True):
        change = result.change
        if (
            best is not None
            and best.objective is not None
            and (result.objective is None or best.objective > result.objective)
        ):
            change, source = best.change, "smaller K"
        if result.status != Status.INFEASIBLE and (change is not None or math.isfinite(bound)):
            result = _with_plan(problem, k, result, change, bound, gap)
        if result.objective is not None and (
            best is None or best.objective is None or result.objective >= best.objective
        ):
            best = result
        fixed.append((result, source))
    # points still without a plan (below every plan found): cut the next larger K's plan down
    for j in range(len(fixed) - 2, -1, -1):
        result, source = fixed[j]
        larger = fixed[j + 1][0]
        remaining = left()
        if result.change is not None or result.status == Status.INFEASIBLE or larger.change is None:
            continue
        if remaining is not None and remaining <= 0:
            break
        plan = cut_down(problem.with_max_changes(ks[j]), larger.change, remaining)
        if plan is not None:
            fixed[j] = (_with_plan(problem, ks[j], result, plan, bounds[j], gap), "cut down")
    return fixed


def _with_plan(
    problem: MixProblem, k: int, result: MixResult, change: np.ndarray | None, bound: float, gap: float
) -> MixResult:
    """``result`` with the plan ``change`` (feasible for K, or None) and the proven ``bound``, re-checked."""
    status = Status.FEASIBLE if change is not None else result.status
    outcome = BackendOutcome(
        status,
        change=change,
        bound=bound if math.isfinite(bound) else None,
        message=result.certificate.message,
        root_bound=result.root_bound,
    )
    return finish(
        problem.with_max_changes(k),
        outcome,
        result.formulation,
        result.certificate.solver,
        gap,
        result.certificate.seconds,
    )


def _better(problem: MixProblem, first: MixResult, second: MixResult, gap: float) -> MixResult:
    """The better plan of two results of the same K, with the smaller of their proven bounds."""
    best = (
        first
        if second.objective is None or (first.objective is not None and first.objective >= second.objective)
        else second
    )
    bounds = [b for b in (first.bound, second.bound) if b is not None]
    outcome = BackendOutcome(
        best.status if best.change is None else Status.FEASIBLE,
        change=best.change,
        bound=min(bounds) if bounds else None,
        message=best.certificate.message,
        root_bound=best.root_bound,
    )
    seconds = first.certificate.seconds + second.certificate.seconds
    return finish(problem, outcome, best.formulation, best.certificate.solver, gap, seconds)


def _points(n: int, ks: list[int], results: list[tuple[MixResult, str]]) -> list[ParetoPoint]:
    values = [r.objective for r, _ in results]
    charted = [v for v in values if v is not None]
    best = max(charted) if charted else None
    base = charted[0] if charted else None
    shares: list[float | None] = []
    improvements: list[float | None] = []
    for value in values:
        shares.append(None if value is None or not best else 100.0 * value / best)
        span = None if best is None or base is None else best - base
        improvements.append(None if value is None or base is None or not span else 100.0 * (value - base) / span)
    knee = _knee([k / max(1, n) for k in ks], improvements)
    return [
        ParetoPoint(k, k / max(1, n), result, shares[j], improvements[j], j == knee, source)
        for j, (k, (result, source)) in enumerate(zip(ks, results, strict=True))
    ]


def _knee(xs: list[float], ys: list[float | None]) -> int | None:
    """Index of the point farthest above the chord from the first to the last charted point (axes 0..1)."""
    pairs = [(j, x, y) for j, (x, y) in enumerate(zip(xs, ys, strict=True)) if y is not None]
    if len(pairs) < 3:
        return None
    _, x0, y0 = pairs[0]
    _, x1, y1 = pairs[-1]
    if x1 == x0 or y1 == y0:
        return None
    best, best_distance = None, -math.inf
    for j, x, y in pairs:
        u = (x - x0) / (x1 - x0)
        w = (y - y0) / (y1 - y0)
        distance = w - u  # height above the chord in scaled units
        if distance > best_distance:
            best, best_distance = j, distance
    return best
