"""HiGHS through highspy: the default LP/MIP backend (in-process, no files, fast on small models)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import highspy
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from dmplan.solver.common import Status
from dmplan.solver.linear import LinearProgram, LinearSolution

HighsOptions = Mapping[str, bool | int | float | str]


_H = highspy.HighsModelStatus
#: Every HiGHS model status, once for all callers: (our status with a plan, our status without one,
#: whether HiGHS's dual bound is valid after it). A status missing here is an error.
HIGHS_STATUS: dict[highspy.HighsModelStatus, tuple[Status, Status, bool]] = {
    _H.kOptimal: (Status.OPTIMAL, Status.OPTIMAL, True),
    _H.kInfeasible: (Status.INFEASIBLE, Status.INFEASIBLE, True),
    _H.kUnboundedOrInfeasible: (Status.INFEASIBLE, Status.INFEASIBLE, False),
    _H.kTimeLimit: (Status.FEASIBLE, Status.TIME_LIMIT, True),
    _H.kIterationLimit: (Status.FEASIBLE, Status.TIME_LIMIT, True),
    _H.kSolutionLimit: (Status.FEASIBLE, Status.TIME_LIMIT, True),
    _H.kInterrupt: (Status.FEASIBLE, Status.TIME_LIMIT, True),
    _H.kObjectiveBound: (Status.FEASIBLE, Status.TIME_LIMIT, False),
    _H.kObjectiveTarget: (Status.FEASIBLE, Status.TIME_LIMIT, False),
}


def termination(model_status: highspy.HighsModelStatus, has_solution: bool) -> Status:
    """Our status for a HiGHS model status (solver errors, unbounded models and the like are errors)."""
    entry = HIGHS_STATUS.get(model_status)
    if entry is None:
        return Status.ERROR
    return entry[0] if has_solution else entry[1]


def bound_is_valid(model_status: highspy.HighsModelStatus) -> bool:
    """Whether HiGHS's dual bound may be used after a run that ended with ``model_status``."""
    entry = HIGHS_STATUS.get(model_status)
    return entry is not None and entry[2]


@cache
def _silence_banner() -> None:
    """HiGHS prints a licence banner to the C stdout when the first instance is made, before
    any option can be set; make that first instance with stdout pointed at /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


#: One thread count for every HiGHS instance of the process. HiGHS sizes one global scheduler by the
#: first run; an instance asking for another count later fails (after a coupon LP with the default count,
#: the mix backend's single-thread MILP stopped at once). One setting everywhere removes that failure.
THREADS = 1


def new_highs() -> highspy.Highs:
    """A Highs instance with its output switched off and the project's thread count."""
    _silence_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", THREADS)
    return h


@dataclass(frozen=True)
class MilpArrays:
    """An LP or MILP as plain arrays: what :func:`build` passes to HiGHS and what crosses to the worker process."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    start: np.ndarray  #: column-wise (CSC) matrix
    index: np.ndarray
    value: np.ndarray
    integer: np.ndarray  #: indices of the integer columns
    offset: float
    maximize: bool

    @classmethod
    def from_matrix(
        cls,
        matrix: sp.spmatrix,
        *,
        cost: ArrayLike,
        col_lower: ArrayLike,
        col_upper: ArrayLike,
        row_lower: ArrayLike,
        row_upper: ArrayLike,
        integer: ArrayLike,
        offset: float,
        maximize: bool,
    ) -> MilpArrays:
        """A model from a scipy constraint matrix and its bounds (``integer``: integer column indices)."""
        csc = sp.csc_matrix(matrix)
        return cls(
            cost=np.asarray(cost, dtype=float),
            col_lower=np.asarray(col_lower, dtype=float),
            col_upper=np.asarray(col_upper, dtype=float),
            row_lower=np.asarray(row_lower, dtype=float),
            row_upper=np.asarray(row_upper, dtype=float),
            start=csc.indptr.astype(np.int32),
            index=csc.indices.astype(np.int32),
            value=csc.data.astype(float),
            integer=np.asarray(integer, dtype=np.int32),
            offset=float(offset),
            maximize=maximize,
        )

    @classmethod
    def from_highs(cls, highs: highspy.Highs, integer: np.ndarray) -> MilpArrays:
        """The model held by ``highs`` (its integrality given as ``integer`` column indices)."""
        lp = highs.getLp()
        a = lp.a_matrix_
        parts = (np.asarray(a.value_, dtype=float), np.asarray(a.index_), np.asarray(a.start_))
        shape = (lp.num_row_, lp.num_col_)
        # HiGHS may hold the matrix row-wise after rows were added
        rowwise = a.format_ == highspy.MatrixFormat.kRowwise
        return cls.from_matrix(
            sp.csr_matrix(parts, shape=shape) if rowwise else sp.csc_matrix(parts, shape=shape),
            cost=lp.col_cost_,
            col_lower=lp.col_lower_,
            col_upper=lp.col_upper_,
            row_lower=lp.row_lower_,
            row_upper=lp.row_upper_,
            integer=integer,
            offset=lp.offset_,
            maximize=lp.sense_ == highspy.ObjSense.kMaximize,
        )

    def to_highs(self, highs: highspy.Highs) -> None:
        """Pass this model to ``highs``."""
        lp = highspy.HighsLp()
        lp.num_col_ = self.cost.size
        lp.num_row_ = self.row_lower.size
        lp.col_cost_ = self.cost
        lp.col_lower_ = self.col_lower
        lp.col_upper_ = self.col_upper
        lp.row_lower_ = self.row_lower
        lp.row_upper_ = self.row_upper
        lp.offset_ = self.offset
        lp.sense_ = highspy.ObjSense.kMaximize if self.maximize else highspy.ObjSense.kMinimize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = self.start
        lp.a_matrix_.index_ = self.index
        lp.a_matrix_.value_ = self.value
        lp.a_matrix_.num_col_ = self.cost.size
        lp.a_matrix_.num_row_ = self.row_lower.size
        highs.passModel(lp)
        if self.integer.size:
            highs.changeColsIntegrality(self.integer.size, self.integer, np.full(self.integer.size, 1, dtype=np.uint8))


def build(program: LinearProgram) -> highspy.Highs:
    """A silent Highs instance holding ``program``."""
    h = new_highs()
    integer = np.flatnonzero(program.integer) if program.is_mip and program.integer is not None else np.zeros(0)
    MilpArrays.from_matrix(
        program.matrix,
        cost=program.cost,
        col_lower=program.col_lower,
        col_upper=program.col_upper,
        row_lower=program.row_lower,
        row_upper=program.row_upper,
        integer=integer,
        offset=program.offset,
        maximize=program.maximize,
    ).to_highs(h)
    return h


def stop_when(highs: highspy.Highs, stop: Callable[[], bool]) -> None:
    """Interrupt every run of ``highs`` at its next callback once ``stop()`` is true.

    HiGHS checks its own time limit only between some phases (its root cut rounds on a large model overran it
    by a minute); its interrupt callbacks fire far more often. The flag is written both ways, as HiGHS keeps it
    between runs.
    """

    def interrupt(event: highspy.cb.HighsCallbackEvent) -> None:  # type: ignore[name-defined]
        event.interrupt(stop())

    highs.cbMipInterrupt += interrupt
    highs.cbSimplexInterrupt += interrupt
    highs.cbIpmInterrupt += interrupt


def set_time_limit(highs: highspy.Highs, seconds: float | None) -> None:
    """Give the next ``run()`` of ``highs`` at most ``seconds`` (None: no limit).

    HiGHS compares its ``time_limit`` option with the instance's run time summed over every ``run()``
    so far, so a live model that is re-solved (cut rounds, pricing rounds) needs the limit moved on:
    set plainly, the limit ran out after the earlier runs and a re-solve stopped before it began.
    """
    limit = highspy.kHighsInf if seconds is None else highs.getRunTime() + max(float(seconds), 0.01)
    highs.setOptionValue("time_limit", limit)


def solve(
    program: LinearProgram,
    *,
    time_limit: float | None = None,
    gap: float = 1e-6,
    warm_start: object | None = None,
    options: HighsOptions | None = None,
) -> LinearSolution:
    """Solve with HiGHS. ``warm_start`` is a primal point (MIPs) given to HiGHS as a start;
    ``options`` are HiGHS options (e.g. ``{"solver": "ipm"}``)."""
    start = time.perf_counter()
    h = build(program)
    for key, value in (options or {}).items():
        h.setOptionValue(key, value)
    if time_limit is not None:
        set_time_limit(h, time_limit)
    if program.is_mip:
        h.setOptionValue("mip_rel_gap", float(gap))
        if warm_start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(np.asarray(warm_start, dtype=float))
            h.setSolution(sol)
    h.run()
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    solution = h.getSolution()
    x = np.array(solution.col_value) if has_solution else None
    if x is not None and warm_start is not None and returned_the_start(h):
        return solve(program, time_limit=time_limit, gap=gap, options=options)  # the plan is lost: no start
    status = termination(h.getModelStatus(), has_solution)
    objective = float(info.objective_function_value) if has_solution else None
    duals = None
    bound: float | None
    if program.is_mip:
        bound = float(info.mip_dual_bound)
        iterations = int(info.mip_node_count)
    else:
        iterations = int(info.simplex_iteration_count)
        if solution.dual_valid:
            duals = np.array(solution.row_dual)
        bound = program.dual_bound(duals) if duals is not None else None
    if status == Status.INFEASIBLE:
        x, objective, bound = None, None, None
    return LinearSolution(status, x, objective, bound, duals, iterations, time.perf_counter() - start, "highs")


def returned_the_start(highs: highspy.Highs) -> bool:
    """True when the MIP solution ``highs`` hands back is not the plan whose objective it reports.

    highspy 1.16, after a run started with ``setSolution`` and with presolve on, can hand back the start's
    vector while the objective is the better plan's: a 5-customer coupon plan (1.2097 returned for 1.2735) and
    a 6-activity mix model (220.48 for 223.91, presolved to 3 columns). The better plan is lost; the caller
    runs again without the start.
    """
    info = highs.getInfo()
    solution = highs.getSolution()
    if info.primal_solution_status != 2 or not solution.value_valid:
        return False
    lp = highs.getLp()
    objective = float(info.objective_function_value)
    own = float(np.dot(lp.col_cost_, solution.col_value)) + float(lp.offset_)
    return abs(own - objective) > 1e-9 * max(1.0, abs(objective))


def rerun_without_start(highs: highspy.Highs, run: Callable[[], object]) -> bool:
    """After a run of ``highs`` started from a MIP start: when HiGHS handed the start back for a better plan
    (:func:`returned_the_start`), clear it and call ``run`` again; True when it ran again."""
    if not returned_the_start(highs):
        return False
    highs.clearSolver()
    run()
    return True
