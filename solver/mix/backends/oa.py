"""``oa``: exact perspective-cut outer approximation on HiGHS (the default, fastest exact backend).

The cones ``t z >= y^2`` of the MISOCP (or ``t >= y^2`` of the MIQP) are replaced by tangent cuts
``t >= 2 v y - v^2 z`` (``z = 1`` without a binary). Every cut is valid for the cone, so any LP or MILP
over the cuts over-estimates the concave revenue: its optimum (LP) or proven dual bound (MILP, HiGHS
``mip_dual_bound``) is a valid upper bound of the original problem. The loop:

1. root: initial cuts at several points of each piece (its ends, interior points and the unconstrained
   optimum of its revenue), then cutting-plane rounds on the LP relaxation, which converge to the
   MISOCP's root bound. Once the bound settles, a rounding heuristic switches on the LP's regions and
   solves the remaining convex QP exactly (:mod:`dmplan.solver.mix.qp`); the perspective relaxation is so tight
   (0.002% from the optimum on paper-style instances) that this plan often closes the gap at the root.
   On large models a dive on the LP twin follows (:meth:`OuterApproximation._dive`); on models of 750 or
   more activities where the exact QP is cheap, a core search (:meth:`OuterApproximation.core_search`): a
   small MILP over the activities whose region choice the root's row prices leave nearest a tie;
2. MILP rounds with HiGHS: warm-started with the incumbent (``setSolution``; not with the core search's plan,
   from which HiGHS's round was slower), each given the time left
   minus a reserve. During a round every plan HiGHS finds is decoded and QP-polished at once (its own
   objective over-estimates the revenue, so its incumbent is not ours), and the round is interrupted as
   soon as our best plan is within the gap of HiGHS's current dual bound. After a round
   - the upper bound is the smallest MILP dual bound so far;
   - violated cuts are added at the round's plans and at the incumbent (at most ``max_cuts_per_cone`` per
     cone, only cuts that are violated and new);
3. stop when the relative gap ``(upper - lower) / max(1, |upper|)`` reaches ``gap`` or time runs out.

Every plan is feasible for the original problem (the cuts only touch ``t``), so its true revenue is a
lower bound. HiGHS's time limit is backed by interrupt callbacks at a hard deadline; with a time limit
set, a large model's MILP rounds run in a worker process (:mod:`dmplan.solver.backends.highs_worker`) that is
killed at the deadline, because HiGHS checks neither inside its root cut rounds. While the worker proves the
bound, this process searches neighbourhoods of the incumbent on the second core
(:mod:`dmplan.solver.mix.neighbourhood`): on the retailer case HiGHS's own round finds no plan after its first
second.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from dmplan.solver.backends.highs import (
    MilpArrays,
    bound_is_valid,
    new_highs,
    rerun_without_start,
    set_time_limit,
    stop_when,
)
from dmplan.solver.backends.highs_worker import GRACE, MilpRun, MilpWorker, WorkerFailed, shared_worker
from dmplan.solver.common import ProgressCallback, Status, relative_gap
from dmplan.solver.mix.backends.base import BackendOutcome, Clock, report
from dmplan.solver.mix.core import choice_margins
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.local import SearchStats, improve
from dmplan.solver.mix.mir import MirSeparator
from dmplan.solver.mix.model import MixProblem, check_plan, regions
from dmplan.solver.mix.neighbourhood import NeighbourhoodSearch, NeighbourhoodStats
from dmplan.solver.mix.qp import linear_rows, solve_box_qp

INF = highspy.kHighsInf
#: seconds between two progress reports of a MILP round's dual bound
PROGRESS_EVERY = 0.5
#: seconds a worker round keeps back to wrap up after the child's limit and grace
WRAP_UP = 0.1
#: a worker round is only started with at least this many seconds of search left: a shorter one only
#: returns the start point (it made the retailer case's 10 s solves return after 10.5 s)
MIN_WORKER_SEARCH = 0.3
#: share of a time limit kept for the root rounding when it runs on the LP twin (see ``_solve``)
ROUNDING_SHARE = 0.3
#: share of a time limit a large model's c-MIR rounds leave for the root heuristics after them (see ``_solve``):
#: MIR_KEEP for the rounding alone (the Pareto sweep's smallest-K root: at 0.45 its extra round moved the
#: background secant MILP's start, and seed 2's K = 332 fell from 0.43% to 3.65%), DIVE_KEEP for the rounding
#: beside the dive once the slack cuts are gone (2-3 s on the retailer case). 10 s retailer solves, seeds 0-5,
#: DIVE_KEEP 0.3 -> 0.25: seed 2 gets a second c-MIR round, 3,389,764 -> 3,389,972; seed 1 too, 2,645,322 ->
#: 2,645,255; seed 4 +39; seeds 0, 3 and 5 the same plans
MIR_KEEP = 0.5
DIVE_KEEP = 0.25
#: a dive over every cut takes 1.4-1.6 times the root's LP rounds (retailer seeds 0-5); with less than this many
#: times of them left, the slack cuts go before it (see ``_solve``)
DIVE_ROOT_TIMES = 2.5
#: a dive without the slack cuts takes 0.8-1.15 times the root's LP rounds (retailer seeds 0-5, its settle
#: included): the c-MIR rounds before it leave it at least this many times of them. DIVE_KEEP alone (2.5 s of a
#: 10 s solve) is less than some dives take: seed 2's rounds ran to 7.2 s and its 2.7 s dive ran out of time
DIVE_ROOT_NEEDS = 1.2
#: before a dive the first c-MIR round is taken to last this share of the root's LP rounds (retailer seeds 0-5:
#: 0.54-0.86 of them). Taken as long as them, beside DIVE_ROOT_NEEDS, a 3 s root (seeds 3 and 5 on a slower
#: machine) leaves no round, and the dive from the perspective root gives 2,313,114 and 2,117,970 against
#: 2,313,896 and 2,118,293 after one
FIRST_ROUND_SHARE = 0.8


@dataclass
class OAOptions:
    """Tuning of the outer-approximation loop."""

    initial_points: int = 5  #: tangent points per piece before the first LP (ends, interior, revenue peak)
    lp_rounds: int = 40  #: cutting-plane rounds on the LP relaxation
    lp_tolerance: float = 1e-7  #: stop LP rounds when the bound improves by less (relative)
    cut_violation: float = 1e-9  #: add a cut when ``y^2/z - t`` exceeds this (scaled units)
    max_cuts_per_cone: int = 60
    max_rounds: int = 200
    reserve: float = 0.05  #: share of the time left kept back from each in-process MILP round
    verbose: bool = False
    #: skip the exact QP polish when (free activities) x (rows) exceeds this and polish on the LP twin instead:
    #: the QP then costs more than it gains (retailer case, 750 free activities: 0.7 s per QP for +1.5 of
    #: revenue over the LP-twin polish)
    polish_limit: int = 1_000_000
    #: run MILP rounds in a child process (:mod:`dmplan.solver.backends.highs_worker`) when a time limit is set and
    #: the model has at least ``isolate_min_vars`` variables: HiGHS overruns a deadline that falls inside its
    #: root cut rounds (by up to 20 s on the retailer case), the child can be killed; small MILPs stop on time
    isolate: bool = True
    isolate_min_vars: int = 2000
    #: seconds of local search over region moves after the root rounding (0: off); only where an exact QP is
    #: cheap (``polish_limit``), and at most ``local_search_share`` of the time left. Off by default: on the
    #: strongly correlated n = 1,000 instances it lifts the rounded plan by 0.07-0.17% of revenue but never to
    #: the 0.01% gap, and its better MIP start made the MILP round that follows 3x slower on one of the two
    #: (5.1 s -> 14.8 s; the other 9.2 s -> 8.1 s), measured in the same run
    local_search: float = 0.0
    local_search_share: float = 0.2
    #: the dive after the root rounding on large models (see ``_dive``): the share of the fractional binaries
    #: fixed on per step (0: off) and the LP cut rounds per step (one since the c-MIR rounds come first: the 10 s
    #: retailer solve then has time for them; unseen retailer case seed 1, two c-MIR rounds: 2,645,281 in 2.9 s
    #: with one, 2,645,333 in 4.3 s with two)
    dive_step: float = 0.1
    dive_rounds: int = 1
    #: tangent rounds on the last LP of a dive without the slack cuts (see ``_solve``), every binary fixed: 10 s
    #: retailer solves, seeds 0 / 1 / 2, the dive's plan 2,282,438.6 -> 2,282,487.8, 2,645,308.3 -> 2,645,330.9,
    #: 3,389,750.8 -> 3,389,765.5 in 0.3-0.6 s. After a dive over every cut they gained +10 (seed 0), and their
    #: cuts in the MILP cost unseen seed 2's 100 s bound: 0.0295-0.0305% in four runs, 0.0288-0.0298% without them
    dive_polish_rounds: int = 6
    #: the core search after the root rounding (see :meth:`OuterApproximation.core_search`): a MILP over the
    #: region binaries of the ``core_size`` activities with the smallest priced margins (0: off), everything
    #: else fixed at the root. It stops when no better plan came for ``core_root_share`` times the root's own
    #: seconds (at least ``core_min_seconds``) since its start or its last better plan, and after at most
    #: ``core_stall_limit`` such windows or ``core_share`` of the time left. Where the root does not certify the
    #: optimum the core MILP found its plan early and then spent seconds proving the core, which the MILP round
    #: redoes (an unseen strongly correlated n = 1,000 instance: plan after 0.13 s, 3.2 s -> 6.1 s in all
    #: without a limit); a fixed limit of one root time, though, cut it short on a loaded machine before its
    #: plan (instance #2: 1.89 s instead of 0.45 s)
    core_size: int = 40
    core_share: float = 0.5
    core_root_share: float = 1.0
    core_min_seconds: float = 0.2
    core_stall_limit: float = 4.0
    #: the core search runs on models with at least this many activities: measured on 18 unseen paper-style
    #: instances per size, it pays at n = 750 (26.7 s -> 25.2 s) and n = 1,000 (24: 36.8 s -> 18.1 s) but not at
    #: n = 500 (18.9 s -> 21.4 s), where the root is looser and the MILP round proves the optimum anyway
    core_min_activities: int = 750
    #: c-MIR cut rounds on the budget and rule rows (:mod:`dmplan.solver.mix.mir`) before the MILP rounds (0: off);
    #: each separates at the LP point and re-solves the LP with its tangent rounds, until no cut is found or the
    #: bound moves by less than ``mir_tolerance`` (relative). Retailer case: the root bound 2,283,329 -> 2,283,116
    #: in 5 rounds (3.5 s), a third of its gap to the best plan known
    mir_rounds: int = 20
    mir_tolerance: float = 1e-7
    #: on a large model, the c-MIR rounds before the root heuristics (True) or only once they leave the gap open
    mir_first: bool = True
    #: while a worker round proves the bound, search neighbourhoods of the incumbent in this process
    #: (:mod:`dmplan.solver.mix.neighbourhood`) on a machine with at least two cores
    neighbourhood_search: bool = True


@dataclass
class _CutPool:
    points: list[set[float]] = field(default_factory=list)  #: per cone, the tangent points of its cuts in the model
    count: int = 0  #: tangent cuts in the model
    #: per row after the formulation's own (both HiGHS copies hold the same rows, in the same order): the cone of
    #: a tangent cut that :meth:`OuterApproximation.drop_slack_cuts` may delete, -1 for a row that stays (the
    #: initial tangents and the c-MIR cuts)
    row_cone: list[int] = field(default_factory=list)
    row_point: list[float] = field(default_factory=list)

    def rows_added(self, cones: list[int], points: list[float]) -> None:
        """Record rows just added to both HiGHS copies (``cones``: -1 for rows that stay); every site that adds
        rows must, or :meth:`OuterApproximation.drop_slack_cuts` finds the counts apart and drops nothing."""
        self.row_cone += cones
        self.row_point += points


class OuterApproximation:
    """A live outer-approximation model of one problem; solve it repeatedly (e.g. over several K).

    Parameters
    ----------
    problem:
        The problem.
    model:
        Its MISOCP (perspective cuts) or MIQP (plain tangent cuts) formulation.
    options:
        Loop tuning.
    """

    def __init__(self, problem: MixProblem, model: ConicModel, options: OAOptions | None = None) -> None:
        self.problem = problem
        self.model = model
        self.options = options or OAOptions()
        self.rows = linear_rows(problem)
        self.regions = regions(problem)
        self.incumbent: np.ndarray | None = None
        self.incumbent_value = -math.inf
        self.root_bound: float | None = None
        self.cone_piece = np.flatnonzero(model.piece_t >= 0)
        self._binary_pieces = np.flatnonzero(model.piece_z >= 0)
        self._binaries = model.piece_z[self._binary_pieces]
        self.pool = _CutPool(points=[set() for _ in range(model.cone_t.size)])
        # two copies of the model with the same rows: ``highs`` becomes the MILP, ``lp`` stays continuous for
        # the cutting-plane rounds and the LP heuristics, so it keeps a warm basis and never leaves a stale
        # point behind that HiGHS's MILP would try to complete as a start
        self.highs = new_highs()
        self.lp = new_highs()
        # a hard wall-clock deadline: HiGHS checks its own time limit only between some phases (its root
        # cut rounds on a large model overran it by a minute), the interrupt callbacks fire far more often
        self._deadline = math.inf
        for h in (self.highs, self.lp):
            h.setOptionValue("output_flag", self.options.verbose)
            h.cbMipInterrupt += self._interrupt
            h.cbSimplexInterrupt += self._interrupt
            h.cbIpmInterrupt += self._interrupt
        # every plan HiGHS finds during a MILP round is polished at once (its own objective over-estimates
        # the revenue, so its incumbent is not ours) and the round stops as soon as our best plan is within
        # the gap of HiGHS's dual bound, which is a valid bound of the original problem
        self.highs.cbMipImprovingSolution += self._improving
        self._round_clock: Clock | None = None
        self._round_gap: float | None = None
        self._round_points: list[np.ndarray] = []
        self._restricted = False  #: the running MILP is restricted (core search): its dual bound is no bound
        self._core_plan: np.ndarray | None = None  #: the plan the last core search found (no MIP start from it)
        self._stall_window = math.inf  #: the running MILP stops after this many seconds without a better plan
        self._last_better = -math.inf  #: when ``offer`` last took a better plan (perf_counter)
        # progress of the running solve: reported after every root LP round, every plan and (at most every
        # PROGRESS_EVERY seconds) every MILP dual bound, so a long root or MILP round is not silent
        self._progress: ProgressCallback | None = None
        self._clock = Clock(None)
        self._upper = math.inf  #: the solve's proven bound so far
        self._last_report = -math.inf
        _warm_lp_options(self.lp)
        self._pass_model()
        self._add_initial_cuts()
        self._mir: MirSeparator | None = None  #: built on the first c-MIR round
        self._integral = False
        self._root_duals: np.ndarray | None = None  #: row duals of the last root LP (for :meth:`bounds_at`)
        self.root_values: np.ndarray | None = None  #: column values of the last root LP (heuristics search near it)
        self.search_stats = SearchStats()  #: what the last local search did
        self.neighbourhood_stats = NeighbourhoodStats()  #: what the last neighbourhood search did
        # plans come from two threads during a worker round (the worker's, polished here, and the neighbourhood
        # search's): taking one and polishing on the LP twin happen under this lock
        self._plan_lock = threading.RLock()
        self.dive_value: float | None = None  #: revenue of the last dive's plan (None: no dive ended in a plan)
        self.root_seconds = 0.0  #: seconds of the last solve's root (LP rounds and rounding)

    def set_max_changes(self, k: int) -> None:
        """Re-target this live model to another cap on changes K (the Pareto sweep solves one model per K).

        The tangent cuts only touch ``t`` and are valid for every K, so they stay, with the LP twin's warm
        basis. What belongs to the old K goes: its root bound (a bound at a smaller K is no bound at a larger
        one: reusing it stopped an earlier sweep with the plan of a smaller K) and an incumbent that breaks
        the new cap. The model must have been built with a binding cap (it then has the count row).
        """
        row = self.model.count_row
        if row is None:
            raise ValueError("the model has no max_changes row: build it with K below the number of movable activities")
        self.problem = self.problem.with_max_changes(k)
        # the count row's coefficients are all 1, so the row scaling of the formulation left its side at K
        for h in (self.highs, self.lp):
            h.changeRowBounds(row, -INF, float(k))
        self.root_bound = None
        self._integral = False
        if self.incumbent is not None and not check_plan(self.problem, self.incumbent).ok:
            self.incumbent, self.incumbent_value = None, -math.inf

    def drop_slack_cuts(self) -> int:
        """Delete the added tangent cuts that are basic (slack) in the LP twin's basis, from both copies; returns
        how many went. The initial tangents and the c-MIR cuts stay.

        The Pareto sweep's live model gathers the cuts of every K it solved, and each new K's first LP, a dual
        simplex from the last K's basis, slowed with them (retailer seed 2: 42k rows at the largest K, 66k by
        K = 1,458, where that LP took 2.7 s; with the slack cuts dropped before each K, 45k rows and 0.75 s). A
        basic row leaves the basis with its basic slack, so the basis stays valid; a cut needed again is added
        again by the next tangent round (its point leaves the pool).
        """
        basis = self.lp.getBasis()
        first = self.model.num_rows
        rows = self.lp.getNumRow()
        if not basis.valid or rows - first != len(self.pool.row_cone):
            return 0
        basic = np.array([s == highspy.HighsBasisStatus.kBasic for s in basis.row_status[first:]], dtype=bool)
        cone = np.asarray(self.pool.row_cone, dtype=np.int64)
        drop = basic & (cone >= 0)
        if not drop.any():
            return 0
        point_of = np.asarray(self.pool.row_point)
        for j, point in zip(cone[drop].tolist(), point_of[drop].tolist(), strict=True):
            self.pool.points[j].discard(round(point, 12))
        index = (first + np.flatnonzero(drop)).astype(np.int32)
        for h in (self.highs, self.lp):
            h.deleteRows(index.size, index)
        keep = np.concatenate([np.ones(first, dtype=bool), ~drop])
        self.pool.row_cone = cone[keep[first:]].tolist()
        self.pool.row_point = point_of[keep[first:]].tolist()
        self.pool.count -= index.size
        if self._root_duals is not None:
            # the root's duals (of the rows it had) stay with their rows for bounds_at
            self._root_duals = self._root_duals[keep[: self._root_duals.size]]
        return int(index.size)

    def bounds_at(self, ks: list[int]) -> list[float | None]:
        """Proven bounds of the problem with the caps ``ks``, from the last root LP's row duals.

        Weak duality, recomputed here for the LP twin's current rows and bounds with the count row's side
        set to each K: for any row multipliers ``y``, ``c v = (c - A'y) v + y (A v)`` is at most the sum over
        columns of ``max(d_j l_j, d_j u_j)`` plus the sum over rows of ``max(y_i lo_i, y_i hi_i)``. That holds
        for every ``y`` (optimal or not, and for rows added since, which get ``y = 0``), so the value is a
        bound whatever HiGHS's tolerances; as the LP's value is concave in K, the duals of one K give a
        tangent that bounds every other K. None without a root LP or a count row.
        """
        row = self.model.count_row
        if self._root_duals is None or row is None:
            return [None] * len(ks)
        lp = self.lp.getLp()
        a = lp.a_matrix_
        parts = (np.asarray(a.value_, dtype=float), np.asarray(a.index_), np.asarray(a.start_))
        shape = (lp.num_row_, lp.num_col_)
        rowwise = a.format_ == highspy.MatrixFormat.kRowwise
        matrix = sp.csr_matrix(parts, shape=shape) if rowwise else sp.csc_matrix(parts, shape=shape)
        row_lower = np.asarray(lp.row_lower_, dtype=float)
        row_upper = np.asarray(lp.row_upper_, dtype=float)
        row_lower[row] = -math.inf
        row_lower[row_lower <= -INF] = -math.inf
        row_upper[row_upper >= INF] = math.inf
        col_lower = np.asarray(lp.col_lower_, dtype=float)
        col_upper = np.asarray(lp.col_upper_, dtype=float)
        cost = np.asarray(lp.col_cost_, dtype=float)
        duals = np.zeros(shape[0])
        duals[: min(shape[0], self._root_duals.size)] = self._root_duals[: shape[0]]
        bounds: list[float | None] = [None] * len(ks)
        for y in (duals, -duals):  # HiGHS's sign convention for a maximisation: either sign is a valid bound
            if y[row] < 0:
                continue  # the count row has only an upper side: a negative multiplier bounds nothing
            y = np.where(((y > 0) & ~np.isfinite(row_upper)) | ((y < 0) & ~np.isfinite(row_lower)), 0.0, y)
            d = cost - matrix.T @ y
            with np.errstate(invalid="ignore"):
                columns = np.where(d > 0, d * col_upper, np.where(d < 0, d * col_lower, 0.0))
                side = np.where(y > 0, row_upper, row_lower)
                rows = np.where(y != 0, y * side, 0.0)
            rows[row] = 0.0  # the count row's term y_K * K is added per K below
            terms = np.concatenate([columns, rows])
            if not np.all(np.isfinite(terms)):
                continue
            # a margin for the rounding of the sum itself
            base = float(terms.sum()) + float(lp.offset_) + 1e-12 * float(np.abs(terms).sum()) * terms.size
            for j, k in enumerate(ks):
                value = base + float(y[row]) * float(k) * (1 + 1e-15)
                current = bounds[j]
                bounds[j] = value if current is None else min(current, value)
        return bounds

    # -- model -----------------------------------------------------------------------------------------
    def _pass_model(self) -> None:
        m = self.model
        arrays = MilpArrays.from_matrix(
            m.matrix,
            cost=m.cost,
            col_lower=m.lower,
            col_upper=m.upper,
            row_lower=np.where(np.isfinite(m.row_lower), m.row_lower, -INF),
            row_upper=np.where(np.isfinite(m.row_upper), m.row_upper, INF),
            integer=np.zeros(0),  # the MILP's integrality is switched on after the root
            offset=m.offset,
            maximize=True,
        )
        arrays.to_highs(self.highs)
        arrays.to_highs(self.lp)

    def _add_cuts(self, cones: np.ndarray, points: np.ndarray, removable: bool = True) -> int:
        """Add tangent cuts ``t - 2 v y + v^2 z >= 0`` (or ``>= -v^2`` without ``z``); skip known ones.
        ``removable``: :meth:`drop_slack_cuts` may delete them."""
        keep_cones: list[int] = []
        keep_points: list[float] = []
        for j, v in zip(cones.tolist(), points.tolist(), strict=True):
            key = round(v, 12)
            pool = self.pool.points[j]
            if key in pool or len(pool) >= self.options.max_cuts_per_cone:
                continue
            pool.add(key)
            keep_cones.append(j)
            keep_points.append(v)
        if not keep_cones:
            return 0
        rows = self._tangent_rows(np.asarray(keep_cones), np.asarray(keep_points))
        for h in (self.highs, self.lp):
            h.addRows(*rows)
        self.pool.count += len(keep_cones)
        self.pool.rows_added(keep_cones if removable else [-1] * len(keep_cones), keep_points)
        return len(keep_cones)

    def _tangent_rows(
        self, js: np.ndarray, vs: np.ndarray
    ) -> tuple[int, np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
        """The tangent cuts of cones ``js`` at points ``vs`` as the arguments of HiGHS's ``addRows``."""
        m = self.model
        z = m.cone_z[js]
        has_z = z >= 0
        nnz_per_row = np.where(has_z, 3, 2)
        starts = np.concatenate([[0], np.cumsum(nnz_per_row)[:-1]]).astype(np.int32)
        index = np.empty(int(nnz_per_row.sum()), dtype=np.int32)
        value = np.empty(index.size)
        index[starts] = m.cone_t[js]
        value[starts] = 1.0
        index[starts + 1] = m.cone_x[js]
        value[starts + 1] = -2.0 * vs
        zpos = starts[has_z] + 2
        index[zpos] = z[has_z]
        value[zpos] = vs[has_z] ** 2
        lower = np.where(has_z, 0.0, -(vs**2))
        upper = np.full(js.size, INF)
        return js.size, lower, upper, index.size, starts, index, value

    def _add_initial_cuts(self) -> None:
        m = self.model
        pieces = self.cone_piece
        lo = m.piece_lo[pieces]
        hi = m.piece_hi[pieces]
        columns = [lo, hi, m.piece_peak[pieces]]
        inner = max(0, self.options.initial_points - 3)
        for q in range(1, inner + 1):
            columns.append(lo + (hi - lo) * q / (inner + 1))
        cones = np.tile(np.arange(pieces.size), len(columns))
        self._add_cuts(cones, np.concatenate(columns), removable=False)

    def _violated(self, values: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Cones whose cut set misses ``values`` by more than ``threshold``, and the tangent points there."""
        m = self.model
        t = values[m.cone_t]
        y = values[m.cone_x]
        has_z = m.cone_z >= 0
        z = np.where(has_z, values[np.maximum(m.cone_z, 0)], 1.0)
        active = z > 1e-9
        zz = np.where(active, z, 1.0)
        point = np.where(active, y / zz, 0.0)
        gap = np.where(active, y * y / zz - t, 0.0)
        pieces = self.cone_piece
        point = np.clip(point, m.piece_lo[pieces], m.piece_hi[pieces])
        hit = np.flatnonzero(gap > threshold)
        return hit, point[hit]

    def _cuts_at_plan(self, change: np.ndarray) -> int:
        """Cuts at the pieces a feasible plan uses (tightens the approximation where the optimum lies)."""
        values = self.model.encode(change, self.problem)
        m = self.model
        pieces = self.cone_piece
        z = np.where(m.cone_z >= 0, values[np.maximum(m.cone_z, 0)], 1.0)
        on = np.flatnonzero(z > 0.5)
        points = values[m.cone_x[on]] / z[on]
        return self._add_cuts(on, np.clip(points, m.piece_lo[pieces[on]], m.piece_hi[pieces[on]]))

    # -- plans -----------------------------------------------------------------------------------------
    def offer(self, change: np.ndarray) -> bool:
        """Keep ``change`` as the incumbent when it is better; returns True when it was."""
        if not check_plan(self.problem, change).ok:
            return False
        return self._take(change, self.problem.revenue(change))

    def _take(self, change: np.ndarray, value: float) -> bool:
        """Keep ``change`` (re-checked, of revenue ``value``) as the incumbent when it is better; True when it was."""
        with self._plan_lock:
            if value > self.incumbent_value + 1e-12 * max(1.0, abs(value)):
                self.incumbent, self.incumbent_value = change, value
                self._last_better = time.perf_counter()
                return True
        return False

    def _incumbent_or_none(self) -> float | None:
        return self.incumbent_value if self.incumbent is not None else None

    def _still_open(self, clock: Clock, gap: float) -> bool:
        """Whether the clock has time left and the incumbent is not yet within ``gap`` of the bound."""
        closed = relative_gap(self._incumbent_or_none(), self._upper)
        return clock.remaining() > 0 and (closed is None or closed > gap)

    def polish_cheap(self, free: int) -> bool:
        """Whether an exact QP polish with ``free`` free activities is cheap (see ``polish_limit``)."""
        return free * max(1, self.rows.matrix.shape[0]) <= self.options.polish_limit

    def _complete(self, on: np.ndarray, clock: Clock, lp: highspy.Highs | None = None) -> np.ndarray | None:
        """The best plan with the pieces ``on`` (one flag per binary column) switched on: :meth:`_polish` of
        a plan inside those pieces (the exact QP when it is cheap, else the LP with the binaries fixed)."""
        m = self.model
        pieces = self._binary_pieces[on]
        # a change inside each switched-on piece: its sign picks the region, _polish frees the whole region
        inside = np.where(m.piece_hi[pieces] > 0, m.piece_hi[pieces], m.piece_lo[pieces])
        change = np.zeros(self.problem.n)
        change[m.piece_activity[pieces]] = inside * m.activity_scale[m.piece_activity[pieces]]
        return self._polish(change, clock, lp=lp)

    def _polish(
        self, change: np.ndarray, clock: Clock, in_callback: bool = False, lp: highspy.Highs | None = None
    ) -> np.ndarray | None:
        """Fix the regions of ``change`` and solve the remaining convex QP exactly (``in_callback``: inside a
        HiGHS callback, where only the interior-point QP solver may run). Where that is not cheap, the LP twin
        with the binaries fixed, or ``lp``, a private copy of it (:meth:`_lp_copy`), when given."""
        reg = self.regions
        m = self.problem.min_change
        lower = np.zeros(self.problem.n)
        upper = np.zeros(self.problem.n)
        merged = m == 0
        count_binds = self.model.count_row is not None
        free_merged = merged & ((change != 0) if count_binds else True)
        lower[free_merged] = reg.dec_lo[free_merged]
        upper[free_merged] = reg.inc_hi[free_merged]
        down = ~merged & (change < 0)
        up = ~merged & (change > 0)
        lower[down], upper[down] = reg.dec_lo[down], reg.dec_hi[down]
        lower[up], upper[up] = reg.inc_lo[up], reg.inc_hi[up]
        free = int(np.count_nonzero(lower < upper))
        if free == 0:
            return None
        if not self.polish_cheap(free):
            # the exact QP would cost seconds: polish on the LP over the cuts instead (warm, sparse)
            if lp is not None:
                return self._fixed_lp_copy(lp, self._on_of(change), clock)
            return self._fixed_lp(self._on_of(change), clock)
        return solve_box_qp(
            self.problem,
            lower,
            upper,
            self.rows,
            time_limit=max(0.01, clock.remaining()),
            interior_point=in_callback,
        )

    # -- the loop --------------------------------------------------------------------------------------
    def _report(self, message: str, bound: float = math.inf, every: float = 0.0) -> None:
        """Report progress: the incumbent and the smaller of the solve's bound and ``bound`` (a valid bound
        of the current round); skipped when the last report is less than ``every`` seconds old."""
        now = time.perf_counter()
        if self._progress is None or now - self._last_report < every:
            return
        self._last_report = now
        if bound < self.incumbent_value:  # a round's bound within its tolerances below our plan: not a bound
            bound = math.inf
        upper = min(self._upper, bound)
        report(self._progress, self._clock, self._incumbent_or_none(), upper if math.isfinite(upper) else None, message)

    def _interrupt(self, event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        now = time.perf_counter()
        stop = now >= self._deadline or now - self._last_better > self._stall_window
        mip = event.callback_type == highspy.cb.HighsCallbackType.kCallbackMipInterrupt
        if not stop and self._round_gap is not None and mip:
            bound = float(event.data_out.mip_dual_bound)
            # a restricted MILP's bound (the core search) only bounds its neighbourhood: never reported
            self._report("oa MILP round", math.inf if self._restricted else bound, every=PROGRESS_EVERY)
            closed = relative_gap(self._incumbent_or_none(), bound)
            stop = closed is not None and closed <= self._round_gap
        # the flag is written both ways: HiGHS keeps it between runs, so a live model interrupted once (a deadline,
        # a closed gap) ended every later run at once, with no iteration, unless a callback cleared it (the
        # Pareto sweep's next K then had no root bound and no MILP round)
        event.interrupt(stop)

    def _improving(self, event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        """A MILP plan found by HiGHS: keep its true revenue, polish it exactly, remember it for cuts."""
        values = np.array(event.data_out.mip_solution, dtype=float)  # a copy: HiGHS reuses its buffer
        if values.size != self.model.num_vars or self._round_clock is None:
            return
        self._round_points.append(values)
        change = self.model.decode(values, self.problem)
        self.offer(change)
        if self.polish_cheap(self.problem.n) and self._round_clock.remaining() > 0:
            polished = self._polish(change, self._round_clock, in_callback=True)
            if polished is not None:
                self.offer(polished)
        bound = math.inf if self._restricted else float(event.data_out.mip_dual_bound)
        self._report("oa MILP round: new plan", bound)

    def _run(
        self, highs: highspy.Highs, clock: Clock, gap: float | None, reserve: float = 0.0
    ) -> highspy.HighsModelStatus:
        """One HiGHS run given the time left on ``clock`` (minus ``reserve`` of it), hard-stopped at the end."""
        left = clock.remaining()
        budget = left * (1 - reserve) if math.isfinite(left) else math.inf
        self._deadline = time.perf_counter() + budget if math.isfinite(budget) else math.inf
        set_time_limit(highs, budget if math.isfinite(budget) else None)
        if gap is not None:
            highs.setOptionValue("mip_rel_gap", gap)
        highs.run()
        status = highs.getModelStatus()
        if status == highspy.HighsModelStatus.kInterrupt and time.perf_counter() < self._deadline:
            # HiGHS ends the first run after an interrupted one at once, as interrupted, with no iteration
            # (seen on the Pareto sweep's live LP after a dive cut short by its clock: the next K's root had no
            # bound); our deadline is not reached, so the interrupt was not ours: run again
            highs.run()
            status = highs.getModelStatus()
        self._deadline = math.inf
        return status

    def _milp_round(self, clock: Clock, gap: float, integer: np.ndarray, isolate: bool) -> MilpRun:
        """One MILP round over the current cuts, started from the incumbent (unless it is the core search's
        plan); in the worker when ``isolate`` (falling back to this process when the worker fails)."""
        start = None if self.incumbent is None else self.model.encode(self.incumbent, self.problem)
        if self._core_plan is not None and self.incumbent is self._core_plan:
            # measured: HiGHS's round from the core search's plan was slower than from none (18 unseen instances,
            # n = 500: 21.6 s -> 20.8 s in all, n = 750: 24.2 s -> 23.5 s; 24 at n = 1,000: 18.4 s -> 18.1 s), as it
            # was from the local search's; our callback still stops the round on our plan
            start = None
        if isolate:
            worker = shared_worker()
            if worker.lock.acquire(blocking=False):  # another thread's solve holds it: run here instead
                try:
                    return self._milp_round_in_worker(worker, clock, gap, integer, start)
                except WorkerFailed:
                    pass
                finally:
                    worker.lock.release()
        return self._milp_round_in_process(clock, gap, integer, start)

    def _milp_round_in_process(
        self, clock: Clock, gap: float, integer: np.ndarray, start: np.ndarray | None
    ) -> MilpRun:
        began = time.perf_counter()
        # never let a stale point become a MIP start: HiGHS would run a sub-MIP to complete it (after
        # the LP rounds the retailer case lost 80 s in one, beyond the time limit)
        self.highs.clearSolver()
        if start is not None:
            self.highs.setSolution(start.size, np.arange(start.size, dtype=np.int32), start)

        def run() -> highspy.HighsModelStatus:
            return self._run(self.highs, clock, 0.5 * gap, reserve=self.options.reserve)

        self._round_clock, self._round_gap = clock, gap
        try:
            status = run()
            if start is not None and rerun_without_start(self.highs, run):
                status = self.highs.getModelStatus()
        finally:
            self._round_clock, self._round_gap = None, None
        info = self.highs.getInfo()
        if integer.size:
            bound = float(info.mip_dual_bound)
        else:
            bound = float(info.objective_function_value) if status == highspy.HighsModelStatus.kOptimal else math.inf
        solution = self.highs.getSolution()
        feasible = info.primal_solution_status == 2 and solution.value_valid
        if feasible and clock.remaining() > 0 and not self.polish_cheap(self.problem.n):
            # a cheap polish already ran on every plan of the round (callback); else polish the final plan here
            polished = self._polish(self.model.decode(np.asarray(solution.col_value), self.problem), clock)
            if polished is not None:
                self.offer(polished)
        return MilpRun(
            status,
            bound,
            float(info.objective_function_value),
            int(info.mip_node_count) if integer.size else 0,
            np.asarray(solution.col_value) if feasible else None,
            time.perf_counter() - began,
        )

    def _milp_round_in_worker(
        self, worker: MilpWorker, clock: Clock, gap: float, integer: np.ndarray, start: np.ndarray | None
    ) -> MilpRun:
        left = clock.remaining()
        # no reserve needed: the child is killed GRACE seconds after its limit
        seconds = max(0.0, left - GRACE - WRAP_UP) if math.isfinite(left) else None
        round_clock = Clock(seconds)

        def take(change: np.ndarray) -> None:
            with self._plan_lock:
                self.offer(change)
                if round_clock.remaining() > 0:
                    polished = self._polish(change, round_clock)
                    if polished is not None:
                        self.offer(polished)

        def on_plan(values: np.ndarray, latest: bool) -> None:
            self._round_points.append(values)
            change = self.model.decode(values, self.problem)
            # the polish runs here while the child searches on; of a burst of plans only the latest is polished
            if latest:
                take(change)
            else:
                self.offer(change)
            self._report("oa MILP round: new plan")

        def stop(bound: float) -> bool:
            self._report("oa MILP round", bound, every=PROGRESS_EVERY)
            closed = relative_gap(self._incumbent_or_none(), bound)
            return closed is not None and closed <= gap

        options = {"output_flag": self.options.verbose}
        model = MilpArrays.from_highs(self.highs, integer)
        search = None
        if self.options.neighbourhood_search and _cores() >= 2 and self.incumbent is not None:
            margins = None if self._root_duals is None else choice_margins(self.problem, self.model, self._root_duals)
            # it ends with the round's search time, so that stopping it costs no time after the round
            until = time.perf_counter() + (seconds if seconds is not None else math.inf)
            search = NeighbourhoodSearch(self.problem, self.model, model, margins, lambda: self.incumbent, take, until)
        try:
            return worker.run(
                model, start=start, seconds=seconds, gap=0.5 * gap, options=options, on_plan=on_plan, stop=stop
            )
        finally:
            if search is not None:
                # not past the solve's deadline: a step inside HiGHS's presolve ends on its own, and a plan it
                # hands on meanwhile waits for this lock (its polish finds the round's clock over)
                left = clock.remaining()  # finite here (a worker round runs only with a limit); join needs that
                self.neighbourhood_stats = search.stop(wait=max(0.0, left) if math.isfinite(left) else None)
                with self._plan_lock:
                    pass

    def _lp_rounds(
        self,
        clock: Clock,
        rounds: int | None = None,
        record: bool = True,
        stop_gap: float | None = None,
        keep: float = 0.0,
    ) -> highspy.HighsModelStatus:
        """Cutting-plane rounds on the LP (binaries continuous) until its bound settles; returns the last status.

        With ``stop_gap`` (the root rounds) and a cheap exact polish, the rounding heuristic runs once the
        bound moves by less than that gap per round (at most every third round): the rounds stop as soon as
        the rounded plan is within ``stop_gap`` of the current bound, which is already a valid bound.
        """
        status = highspy.HighsModelStatus.kNotset
        previous = math.inf
        heuristic = stop_gap is not None and self.polish_cheap(self.problem.n)
        last_heuristic = -math.inf
        for r in range(self.options.lp_rounds if rounds is None else rounds):
            if clock.remaining() <= (keep if r > 0 else 0.0):
                break
            status = self._run(self.lp, clock, None)
            if status != highspy.HighsModelStatus.kOptimal:
                return status
            values = self._lp_values()
            bound = self.lp.getInfo().objective_function_value
            if record:
                self.root_bound = bound
                self._report(f"oa root round {r + 1}: {self.pool.count} cuts", bound)
            hit, points = self._violated(values, 1e-7)
            settled = hit.size == 0 or previous - bound <= self.options.lp_tolerance * max(1.0, abs(bound))
            if heuristic and stop_gap is not None and (settled or r - last_heuristic >= 3):
                slow = previous - bound <= stop_gap * max(1.0, abs(bound))
                if settled or slow:
                    last_heuristic = r
                    self._round_relaxation(values, clock)
                    closed = relative_gap(self._incumbent_or_none(), bound)
                    if closed is not None and closed <= stop_gap:
                        break
            if settled:
                break
            previous = bound
            self._add_cuts(hit, points)
        return status

    def _mir_rounds(self, clock: Clock, keep: float = 0.0, first: float = 0.0) -> None:
        """c-MIR cut rounds (``mir_rounds``) on the LP twin; the root bound follows the LP's value.

        Each round separates at the LP point (:class:`~dmplan.solver.mix.mir.MirSeparator`), adds the cuts to both
        models (valid for every plan and every K: they read only the budget, the rules and the region rows) and
        re-solves the LP with its tangent rounds. Stops with no cut, a bound that moves by less than
        ``mir_tolerance``, or when the clock would have ``keep`` seconds or less left after a round as long as
        the last one (``first`` seconds for the first round); they do not start when the clock would have no more
        than ``keep`` left after ``first`` seconds.
        """
        if self.options.mir_rounds <= 0 or self.root_bound is None:
            return
        if clock.remaining() - first <= keep:
            # the first round would end in the time kept for the heuristics, or no round would run and the LP
            # rounds below would take that time (a 3 s retailer solve spent its rounding's 0.8 s on them and
            # returned no plan)
            return
        if self._mir is None:
            self._mir = MirSeparator(self.model)
        # the heuristics may have left the LP twin elsewhere (the dive): back to the root point first (warm)
        status = self._lp_rounds(clock, keep=keep)
        last = first
        for _ in range(self.options.mir_rounds):
            if status != highspy.HighsModelStatus.kOptimal or self.root_bound is None:
                break
            if clock.remaining() - last <= keep:
                break
            began = time.perf_counter()
            cuts = self._mir.separate(self._lp_values())
            if not cuts:
                break
            for cut in cuts:
                for h in (self.highs, self.lp):
                    h.addRow(-INF, cut.upper, cut.columns.size, cut.columns, cut.values)
            self.pool.rows_added([-1] * len(cuts), [0.0] * len(cuts))
            before = self.root_bound
            status = self._lp_rounds(clock)
            if status == highspy.HighsModelStatus.kOptimal:
                self._upper = min(self._upper, float(self.root_bound))
                self._report(f"oa root: {len(cuts)} c-MIR cuts", self.root_bound)
                if before - self.root_bound <= self.options.mir_tolerance * max(1.0, abs(self.root_bound)):
                    break
            last = time.perf_counter() - began
        if status == highspy.HighsModelStatus.kOptimal:
            self.root_values = self._lp_values().copy()  # the dive outside a solve starts from the tighter point

    def _dive(self, values: np.ndarray, clock: Clock, settle: bool = False) -> None:
        """Primal heuristic on the root LP ``values`` for large models: a dive on the LP twin.

        The binaries the root leaves at 0 are fixed off; then, until no binary is fractional, every free
        binary at 0.9 or more and the ``dive_step`` share of the other fractional ones with the largest values
        are fixed on, and ``dive_rounds`` cut rounds re-solve the LP (warm). The last LP gives the plan offered;
        with ``settle`` (a dive without the slack cuts) only after ``dive_polish_rounds`` more cut rounds with
        every binary fixed. A step
        whose LP turns infeasible (the cap or a rule) is retried with the binaries at 0.9 or more and only the
        highest fractional one, then with that one fixed off instead (without these retries an unseen retailer
        case's dive ended without a plan after a 10 s solve's c-MIR round); an LP still infeasible or the clock
        ends the dive without a plan. Measured on the
        retailer case from the perspective root's LP (two cut rounds per step): 2,282,349.9 after 4.6 s (10 fixing
        rounds) against the root rounding's 2,282,017.3; a step of 0.05 gives 2,282,387.0 in 7.6 s. From the LP
        after two c-MIR rounds: 2,282,539.7.
        """
        zcols = self._binaries
        if zcols.size == 0 or self.options.dive_step <= 0:
            return
        index = zcols.astype(np.int32)
        lower = self.model.lower[zcols].copy()
        upper = self.model.upper[zcols].copy()
        z = values[zcols]
        upper[z <= 1e-6] = 0.0
        with self._binaries_moved():
            for _ in range(zcols.size):
                if clock.remaining() <= 0:
                    return
                free = (lower < 0.5) & (upper > 0.5)
                fractional = np.flatnonzero(free & (z > 1e-6) & (z < 1 - 1e-6))
                if fractional.size == 0:
                    plan = self.model.decode(self._lp_values(), self.problem)
                    if settle and self.options.dive_polish_rounds > 0:
                        # each step ran dive_rounds tangent rounds over few cuts, so the LP's changes are not yet
                        # the best ones for these regions: the rounding's fixed LP, every binary where it is,
                        # settles them. Its plan when its rounds end optimal, else the last step's (both feasible:
                        # the cuts touch only t); one plan, so that a dive the clock ends checks only one after
                        # the deadline
                        settled = self._fixed_lp(z > 0.5, clock, self.options.dive_polish_rounds)
                        plan = plan if settled is None else settled
                    if check_plan(self.problem, plan).ok:
                        self.dive_value = self.problem.revenue(plan)
                        if self._take(plan, self.dive_value):
                            self._report("oa root: dive")
                    return
                high = np.flatnonzero(free & (z >= 0.9))
                count = max(1, int(self.options.dive_step * fractional.size))
                top = fractional[np.argsort(-z[fractional], kind="stable")[:count]]
                before = lower.copy()
                # the step, then on an infeasible LP (the cap or a rule) two smaller ones: the binaries at 0.9 or
                # more with only the highest fractional one, then that one fixed off instead
                for on, off in (
                    (np.concatenate([high, top]), top[:0]),
                    (np.append(high, top[0]), top[:0]),
                    (top[:0], top[:1]),
                ):
                    lower[:] = before
                    lower[on] = 1.0
                    upper[off] = 0.0
                    self.lp.changeColsBounds(index.size, index, lower, upper)
                    status = self._lp_rounds(clock, self.options.dive_rounds, record=False)
                    if status != highspy.HighsModelStatus.kInfeasible:
                        break
                if status != highspy.HighsModelStatus.kOptimal:
                    return
                z = self._lp_values()[zcols]
                # the dive takes seconds on a large model: the status bar moves with its steps
                self._report(
                    f"oa root: diving, {int(np.count_nonzero(lower > 0.5))} regions fixed", every=PROGRESS_EVERY
                )

    def dive(self, seconds: float | None, rounds: int = 1) -> bool:
        """The dive (:meth:`_dive`, step ``dive_step`` or 0.1 when it is off) from the last root LP, outside a
        solve, with ``rounds`` cut rounds per step; returns True when it found a better plan.

        The Pareto sweep runs it on a point whose root rounding is already near the bound: the retailer case's
        K = 610 (rounding 0.112% from the bound) dives to 0.065% in 4.7 s with one round per step, where two
        rounds per step ran out of time at the same point.
        """
        if self.root_values is None:
            return False
        before = self.incumbent_value
        saved = self.options.dive_step, self.options.dive_rounds
        self.options.dive_step = saved[0] if saved[0] > 0 else 0.1
        self.options.dive_rounds = rounds
        try:
            self._dive(self.root_values, Clock(seconds))
        finally:
            self.options.dive_step, self.options.dive_rounds = saved
        return self.incumbent_value > before

    def core_search(self, clock: Clock, gap: float) -> bool:
        """A MILP over the *core* of the last root LP (:mod:`dmplan.solver.mix.core`); True when it found a better plan.

        The ``core_size`` activities whose region choice the root's row prices leave nearest to a tie, and every
        activity with a fractional binary, keep their region binaries free; every other binary is fixed at its
        rounded root value. HiGHS solves that MILP over the current cuts in this process (it is small after
        presolve) with the incumbent as start; every plan it finds is polished (callback) and offered, and the
        run stops once our plan is within ``gap`` of its bound. Its bound is the core's, not the problem's: it is
        never reported. Needs the MILP's integrality switched on (the root is over).
        """
        zcols = self._binaries
        if self._root_duals is None or self.root_values is None or zcols.size == 0 or self.options.core_size <= 0:
            return False
        m = self.model
        z = self.root_values[zcols]
        activity = m.piece_activity[self._binary_pieces]
        margins = choice_margins(self.problem, m, self._root_duals)
        core = np.zeros(self.problem.n, dtype=bool)
        core[np.argsort(margins, kind="stable")[: self.options.core_size]] = True
        core[activity[(z > 1e-6) & (z < 1 - 1e-6)]] = True
        fixed = ~core[activity]
        if not fixed.any():
            return False  # the core is the whole problem: that is the MILP round's job
        before = self.incumbent_value
        index = zcols[fixed].astype(np.int32)
        value = (z[fixed] > 0.5).astype(float)
        start = None
        if self.incumbent is not None:
            encoded = m.encode(self.incumbent, self.problem)
            if np.array_equal(encoded[zcols[fixed]], value):  # a start that breaks the fixing is no start
                start = encoded
        left = clock.remaining()
        window = max(self.options.core_min_seconds, self.options.core_root_share * self.root_seconds)
        seconds = self.options.core_stall_limit * window
        round_clock = Clock(min(seconds, self.options.core_share * left) if math.isfinite(left) else seconds)
        self._stall_window, self._last_better = window, time.perf_counter()
        self.highs.changeColsBounds(index.size, index, value, value)
        self.highs.clearSolver()
        if start is not None:
            self.highs.setSolution(start.size, np.arange(start.size, dtype=np.int32), start)
        self._round_clock, self._round_gap, self._restricted = round_clock, gap, True
        try:
            self._run(self.highs, round_clock, 0.5 * gap)
            solution = self.highs.getSolution()
            if self.highs.getInfo().primal_solution_status == 2 and solution.value_valid:
                values = np.asarray(solution.col_value)
                change = m.decode(values, self.problem)
                self.offer(change)
                if round_clock.remaining() > 0:
                    polished = self._polish(change, round_clock)
                    if polished is not None:
                        self.offer(polished)
        finally:
            self._round_clock, self._round_gap, self._restricted = None, None, False
            self._stall_window = math.inf
            self.highs.changeColsBounds(index.size, index, m.lower[zcols[fixed]], m.upper[zcols[fixed]])
            self.highs.clearSolver()
        improved = self.incumbent_value > before
        if improved:
            self._report("oa core search")  # with the solve's proven bound
        return improved

    def _local_search(self, clock: Clock) -> None:
        """Region moves from the incumbent (:mod:`dmplan.solver.mix.local`), when an exact QP is cheap: at most
        ``local_search`` seconds and ``local_search_share`` of the time left."""
        if self.incumbent is None or self.options.local_search <= 0 or not self.polish_cheap(self.problem.n):
            return
        left = clock.remaining()
        seconds = min(
            self.options.local_search, self.options.local_search_share * left if math.isfinite(left) else math.inf
        )
        plan, stats = improve(
            self.problem,
            self.incumbent,
            seconds=seconds,
            rows=self.rows,
            tick=lambda: self._report("oa local search", every=PROGRESS_EVERY),
        )
        self.search_stats = stats
        if self.offer(plan):
            self._report(f"oa local search: +{stats.gain:.6g} in {stats.moves} moves")

    def _lp_values(self) -> np.ndarray:
        return np.asarray(self.lp.getSolution().col_value)

    def _fixed_lp(self, on: np.ndarray, clock: Clock, rounds: int = 6) -> np.ndarray | None:
        """Fix every binary (``on``: one flag per binary column) and run LP cut rounds: the LP twin of the
        QP polish. Its plan is feasible whenever the LP is (the cuts only touch ``t``); returns the change."""
        m = self.model
        zcols = self._binaries
        if zcols.size == 0:
            return None
        value = on.astype(float)
        with self._binaries_moved():
            self.lp.changeColsBounds(zcols.size, zcols.astype(np.int32), value, value)
            status = self._lp_rounds(clock, rounds, record=False)
            if status != highspy.HighsModelStatus.kOptimal:
                return None
            return m.decode(self._lp_values(), self.problem)

    def _lp_copy(self, clock: Clock) -> highspy.Highs:
        """A private copy of the LP twin (its rows, bounds and basis, so warm) for a heuristic in another thread,
        stopped at the end of ``clock``: the cuts it adds stay in it, the pool and both models are untouched."""
        copy = new_highs()
        _warm_lp_options(copy)
        copy.passModel(self.lp.getLp())
        copy.setBasis(self.lp.getBasis())
        stop_when(copy, lambda: clock.remaining() <= 0)
        return copy

    def _fixed_lp_copy(self, copy: highspy.Highs, on: np.ndarray, clock: Clock, rounds: int = 6) -> np.ndarray | None:
        """:meth:`_fixed_lp` on a private copy of the LP twin (:meth:`_lp_copy`)."""
        zcols = self._binaries
        if zcols.size == 0:
            return None
        value = on.astype(float)
        copy.changeColsBounds(zcols.size, zcols.astype(np.int32), value, value)
        values = None
        for _ in range(rounds):
            set_time_limit(copy, clock.remaining())
            copy.run()
            if copy.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                break  # the last optimal LP's plan is feasible too, only less polished (the cuts touch only t)
            values = np.asarray(copy.getSolution().col_value)
            hit, points = self._violated(values, 1e-7)
            if hit.size == 0:
                break
            copy.addRows(*self._tangent_rows(hit, points))
        return None if values is None else self.model.decode(values, self.problem)

    @contextlib.contextmanager
    def _binaries_moved(self) -> Iterator[None]:
        """A block that may change the LP twin's bounds of the binaries: afterwards they are the model's again
        and the LP's basis is the one from before (rows added since basic), so the next LP starts where the
        block found it. Without the basis a c-MIR round after the rounding's fixed LP re-solved for seconds
        (retailer K = 470 in the Pareto sweep: all of the point's time, and no dive)."""
        zcols = self._binaries
        basis = self.lp.getBasis()
        rows = self.lp.getNumRow()
        try:
            yield
        finally:
            m = self.model
            self.lp.changeColsBounds(zcols.size, zcols.astype(np.int32), m.lower[zcols], m.upper[zcols])
            if basis.valid:
                added = self.lp.getNumRow() - rows
                basis.row_status = list(basis.row_status) + [highspy.HighsBasisStatus.kBasic] * added
                self.lp.setBasis(basis)

    def _on_of(self, change: np.ndarray) -> np.ndarray:
        """Binary values (one per binary column) that encode ``change``."""
        values = self.model.encode(change, self.problem)
        return values[self._binaries] > 0.5

    def _round_relaxation(self, values: np.ndarray, clock: Clock, lp: highspy.Highs | None = None) -> None:
        """Primal heuristic on an LP optimum: switch on, per activity, the piece with the largest binary
        value when it is at least ``threshold`` (at most K activities, largest first) and complete the plan
        (:meth:`_complete`, on ``lp`` when given)."""
        m = self.model
        zcols = self._binaries
        if zcols.size == 0:
            return
        pieces = self._binary_pieces
        z = values[zcols]
        activity = m.piece_activity[pieces]
        order = np.lexsort((-z, activity))  # per activity, its largest piece first
        first = np.ones(order.size, dtype=bool)
        first[1:] = activity[order][1:] != activity[order][:-1]
        best = order[first]
        cheap = self.polish_cheap(self.problem.n)
        for threshold in (0.5, 1e-6):
            chosen = best[z[best] >= threshold]
            chosen = chosen[np.argsort(-z[chosen], kind="stable")][: self.problem.k]
            on = np.zeros(zcols.size, dtype=bool)
            on[chosen] = True
            change = self._complete(on, clock, lp)
            # an exact polish is cheap enough to try both thresholds; the LP twin is not
            if change is not None and self.offer(change) and not cheap:
                return
            if clock.remaining() <= 0:
                return

    def solve(
        self,
        *,
        time_limit: float | None = None,
        gap: float = 1e-4,
        progress: ProgressCallback | None = None,
        warm_start: np.ndarray | None = None,
    ) -> BackendOutcome:
        """Run the loop until the gap closes or time runs out.

        Parameters
        ----------
        time_limit:
            Seconds for this solve (None: no limit).
        gap:
            Relative gap at which to stop.
        progress:
            Receives the incumbent and the proven bound after every root LP round, every new plan and every
            MILP round, and during a MILP round at least every ``PROGRESS_EVERY`` seconds of HiGHS's search.
        warm_start:
            A feasible change vector to start from.

        Returns
        -------
        BackendOutcome
        """
        clock = Clock(time_limit)
        self._progress, self._clock, self._upper, self._last_report = progress, clock, math.inf, -math.inf
        try:
            return self._solve(clock, gap, warm_start)
        finally:
            self._progress = None

    def _solve(self, clock: Clock, gap: float, warm_start: np.ndarray | None) -> BackendOutcome:
        options = self.options
        if warm_start is not None:
            self.offer(np.asarray(warm_start, dtype=float))
        m = self.model
        integer = np.flatnonzero(m.integer)
        isolate = options.isolate and clock.limit is not None and integer.size > 0
        isolate = isolate and m.num_vars >= options.isolate_min_vars
        small = self.polish_cheap(self.problem.n)

        def start_worker() -> bool:
            """Start the worker in the background (once per process); False when none can start here."""
            try:
                shared_worker()
            except WorkerFailed:
                return False
            return True

        # a large model's worker starts while its root rounds run (seconds); a small model's root and core search
        # often close the gap, and the worker's start-up (about 0.25 s of a core) competed with them on a 2-core
        # machine (paper-style n = 1,000 in a fresh process: 0.13 s -> 0.28 s, and a core search cut short by its
        # clock), so it starts only when a MILP round is needed
        if isolate and not small:
            isolate = start_worker()
        nodes = 0
        self.offer(np.zeros(self.problem.n))  # the baseline, when it meets the budget and the rules
        if not self._integral:
            # with a limit and a model whose rounding runs on the LP twin (seconds on the retailer case), the
            # root rounds stop with ROUNDING_SHARE of the limit left for the rounding: a 10 s solve on a
            # loaded machine otherwise spent it all on the last 0.001% of the bound and returned no plan
            keep = 0.0
            if clock.limit is not None and not self.polish_cheap(self.problem.n):
                keep = ROUNDING_SHARE * clock.limit
            root_began = time.perf_counter()
            status = self._lp_rounds(clock, stop_gap=gap, keep=keep)
            root_lp = time.perf_counter() - root_began  # the first c-MIR round's estimate before a dive
            if status == highspy.HighsModelStatus.kInfeasible:
                return BackendOutcome(Status.INFEASIBLE, message="the continuous relaxation is infeasible")
            root_bound = self.root_bound if status == highspy.HighsModelStatus.kOptimal else None
            rooted = root_bound is not None
            dives = not small and options.dive_step > 0
            keep = (DIVE_KEEP if dives else MIR_KEEP) * clock.limit if clock.limit is not None else 0.0
            if dives and clock.limit is not None:
                keep = max(keep, DIVE_ROOT_NEEDS * root_lp)
            mir_first = not small and options.mir_first
            if rooted and mir_first:
                # on a large model the c-MIR rounds come before the heuristics, which then start from the tighter
                # LP point (retailer case: the dive's plan 2,282,350 -> 2,282,540 after two rounds); with a limit
                # they leave DIVE_KEEP (MIR_KEEP without the dive), and at least DIVE_ROOT_NEEDS times the root's LP
                # rounds, for the rounding and the dive. Before a dive the first round is taken to last
                # FIRST_ROUND_SHARE of the root's LP rounds: without an estimate unseen seed 3's first round ended at
                # 7.3 s of a 10 s solve, its dive ran out of time and the solve returned the rounding's plan, 0.075%
                # below the dive's
                self._mir_rounds(clock, keep=keep, first=FIRST_ROUND_SHARE * root_lp if dives else 0.0)
                root_bound = self.root_bound
            if root_bound is not None:
                # the LP over valid cuts over-estimates the revenue: a bound even if the MILP never finishes
                self._upper = min(self._upper, float(root_bound))
                self._root_duals = np.asarray(self.lp.getSolution().row_dual, dtype=float)
                self.root_values = self._lp_values().copy()
                values = self.root_values
                short = dives and clock.remaining() < DIVE_ROOT_TIMES * root_lp
                if short:
                    # the dive's LPs run twice as fast without the cuts slack here (retailer seeds 0-5: 1.9-2.7 s
                    # instead of 3.6-4.8 s), so it fits after the c-MIR rounds on slower machines and harder cases;
                    # with the time for it, the dive keeps them: its plans are better with them (seeds 0-5 after
                    # one c-MIR round: -50 to +40 without them; after two, -150 to +8). On a small model every cut
                    # stays: they keep the MILP's approximation tight where it moves a piece away from the LP point
                    # (without them strong instances needed 3 MILP rounds)
                    self.drop_slack_cuts()
                if dives and _cores() >= 2 and self._still_open(clock, gap):
                    # the rounding runs in a thread on a copy of the LP twin while the dive runs here: on the
                    # retailer case it takes 1 s on the LP twin, and the dive after it needed 4.5 s instead of 3.5 s
                    # (its cuts stayed in the LP), so a 10 s solve's dive ran into the limit and returned the
                    # rounding's plan (seed 1: 2,643,982 against the dive's 2,645,331)
                    copy = self._lp_copy(clock)
                    with _beside(lambda: self._round_relaxation(values, clock, copy)):
                        self._dive(values, clock, settle=short)
                    self._report("oa root: rounded the relaxation and dived")
                else:
                    if self._still_open(clock, gap):
                        self._round_relaxation(values, clock)
                    self._report("oa root: rounded the relaxation")
                    if dives and self._still_open(clock, gap):
                        self._dive(values, clock, settle=short)
                if self._still_open(clock, gap):
                    self._local_search(clock)
            self.root_seconds = clock.elapsed()
            if integer.size:
                self.highs.changeColsIntegrality(
                    integer.size, integer.astype(np.int32), np.full(integer.size, 1, dtype=np.uint8)
                )
            self._integral = True
            # the core search runs in this process: on a large model HiGHS's root cut rounds would overrun the clock
            # (see ``isolate``), and there the exact polish of its plans is not cheap either; it needs this solve's
            # root (a live model keeps the duals of an earlier K when this K's root is cut short)
            search = small and rooted and self.problem.n >= options.core_min_activities
            if search and self._still_open(clock, gap) and self.core_search(clock, gap):
                self._core_plan = self.incumbent
            if rooted and not mir_first and self._still_open(clock, gap):
                # a small model's root heuristics often close the gap without them, and so does the root rounding
                # at most K of the Pareto sweep (``mir_first`` off)
                self._mir_rounds(clock, keep=0.0 if small else keep)
        if self.root_bound is not None:
            # every recorded root round is an optimal LP over valid cuts: a bound even when a later round was
            # cut short by the clock (a 2 s solve on a loaded machine returned no bound), and on a second
            # solve of the same model (set_max_changes clears it when the cap changes)
            self._upper = min(self._upper, float(self.root_bound))
        rounds = 0
        cut_tol = options.cut_violation
        message = ""
        initial_gap = relative_gap(self.incumbent_value if self.incumbent is not None else None, self._upper)
        if initial_gap is not None and initial_gap <= gap:
            return BackendOutcome(
                Status.FEASIBLE,
                change=self.incumbent,
                bound=self._upper,
                message="gap closed at the root",
                root_bound=self.root_bound,
            )
        if isolate:
            isolate = start_worker()  # a no-op when it runs already
        stalled = 0
        previous_upper = self._upper
        # a round needs this much of the clock (with the worker: its start-up grace and the wrap-up after it)
        needed = GRACE + WRAP_UP + MIN_WORKER_SEARCH if isolate else 0.0
        while rounds < options.max_rounds:
            rounds += 1
            if clock.remaining() <= needed:  # before the cut drop below: about 0.7 s on the retailer MILP, for no round
                message = "time limit"
                break
            if rounds == 1 and not small and self.incumbent is not None:
                # on a large model HiGHS spends the round in its root cut loop (retailer seed 2: no node in 90 s,
                # 6 s per separation round), whose rounds slow with the rows: the added cuts slack at the root LP
                # go (its optimum stays) and those at the plan come back. Seed 2, 100 s: bound 3,391,179 ->
                # 3,391,047; the initial tangents stay (dropping the slack ones too: 3,391,299)
                self.drop_slack_cuts()
                self._cuts_at_plan(self.incumbent)
                if clock.remaining() <= needed:
                    message = "time limit"
                    break
            pool_before = self.pool.count
            self._round_points = []
            run = self._milp_round(clock, gap, integer, isolate)
            if run.status == highspy.HighsModelStatus.kInfeasible:
                return BackendOutcome(Status.INFEASIBLE, iterations=rounds, nodes=nodes, message="MILP infeasible")
            if run.status is not None and not bound_is_valid(run.status):
                # a failed run's dual bound means nothing: never let it close the gap
                message = f"HiGHS stopped: {self.highs.modelStatusToString(run.status)}"
                break
            nodes += run.nodes
            floor = self.incumbent_value if self.incumbent is not None else -math.inf
            round_bound = run.dual_bound
            if math.isfinite(round_bound) and round_bound >= floor - 1e-9 * max(1.0, abs(floor)):
                self._upper = min(self._upper, round_bound)  # a bound below a known plan's revenue is false
            if run.killed:  # the round had all the time left: stop (an in-process round would overrun)
                message = "time limit"
                break
            hit = np.zeros(0, dtype=np.int64)
            if run.solution is not None:
                values = run.solution
                self.offer(m.decode(values, self.problem))  # each round path has polished its plans
                hit, points = self._violated(values, cut_tol)
                self._add_cuts(hit, points)
            for found in self._round_points:  # the round's earlier plans: the approximation was off there too
                self._add_cuts(*self._violated(found, cut_tol))
            if self.incumbent is not None:
                self._cuts_at_plan(self.incumbent)
            current = relative_gap(self.incumbent_value if self.incumbent is not None else None, self._upper)
            self._report(f"oa round {rounds}: {self.pool.count} cuts")
            if current is not None and current <= gap:
                message = "gap closed"
                break
            if clock.remaining() <= 0:
                message = "time limit"
                break
            added = self.pool.count - pool_before  # cuts really added (a violated cut may already be known)
            if added == 0 and self._upper >= previous_upper:
                # nothing changed: the remaining gap is below the MILP's tolerances (or the MILP ran out of time)
                stalled += 1
                cut_tol *= 0.1
                if stalled >= 3:
                    message = "stalled: the gap left is within the MILP tolerances"
                    break
            else:
                stalled = 0
            previous_upper = self._upper
        if self.incumbent is None:
            return BackendOutcome(
                Status.TIME_LIMIT,
                bound=self._upper if math.isfinite(self._upper) else None,
                iterations=rounds,
                nodes=nodes,
                message=message,
                root_bound=self.root_bound,
            )
        return BackendOutcome(
            Status.FEASIBLE,
            change=self.incumbent,
            bound=self._upper if math.isfinite(self._upper) else None,
            iterations=rounds,
            nodes=nodes,
            message=message,
            root_bound=self.root_bound,
            extra={"cuts": float(self.pool.count)},
        )


def _warm_lp_options(highs: highspy.Highs) -> None:
    """Options of an LP re-solved warm after every cut round (the LP twin and its copies): HiGHS's presolve only
    costs time there, and devex pricing is 15-30% faster than the default dual steepest edge on these LPs."""
    highs.setOptionValue("presolve", "off")
    highs.setOptionValue("simplex_dual_edge_weight_strategy", 1)


@contextlib.contextmanager
def _beside(target: Callable[[], None]) -> Iterator[None]:
    """Run ``target`` in a thread while the block runs; re-raise its exception after the block."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as error:  # handed to the caller's thread below
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if errors:
        raise errors[0]


def _cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def solve(
    problem: MixProblem,
    model: ConicModel,
    *,
    time_limit: float | None,
    gap: float,
    progress: ProgressCallback | None,
    warm_start: np.ndarray | None,
) -> BackendOutcome:
    """Solve ``problem`` (formulated as ``model``) by outer approximation; see the module docstring."""
    began = time.perf_counter()
    oa = OuterApproximation(problem, model)  # its initial cuts count against the time limit
    left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - began))
    return oa.solve(time_limit=left, gap=gap, progress=progress, warm_start=warm_start)
