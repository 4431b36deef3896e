"""A primal heuristic for a small cap on changes: choose the changes by a MILP on a secant revenue, then polish.

Where the rules force many changes and K is close to the fewest possible (the retailer case's Pareto points
at K = 329-610), the outer-approximation model's root rounding breaks the rules and HiGHS's MILP on its
40,000 rows finds no better plan in 40 s. This MILP is small instead: the formulation's region rows with
a linear revenue and only the region binaries in ``allowed`` free (the others off). Each piece's revenue
``r(x) = a x^2 + b x + g(x)`` is replaced by its secant between the piece's ends, written in perspective
(``alpha z + beta x``: exact at both ends, below ``r`` inside as ``r`` is concave), so the MILP prefers the
changes that lose least revenue per unit of spend the rules force. The chosen regions are then polished
exactly (the convex QP over them), and the plan is re-checked against the original problem.
"""

from __future__ import annotations

import functools
import math
import threading
import time

import highspy
import numpy as np

from dmplan.solver.backends.highs import MilpArrays, new_highs, rerun_without_start, set_time_limit, stop_when
from dmplan.solver.backends.highs_worker import MilpWorker, WorkerFailed
from dmplan.solver.common import seconds_until
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem, check_plan
from dmplan.solver.mix.qp import polish_regions

INF = highspy.kHighsInf
#: HiGHS's relative gap on the secant MILP (its own objective, not the revenue)
SECANT_GAP = 1e-4
#: seconds :meth:`BackgroundSecant.close` waits for the MILP to stop before it kills the worker
STOP_WAIT = 1.0


def piece_gain(problem: MixProblem, model: ConicModel, y: np.ndarray) -> np.ndarray:
    """Revenue gain ``r(x) - r(0)`` of each piece's activity at the scaled change ``y`` (one per piece)."""
    activity = model.piece_activity
    x = y * model.activity_scale[activity]
    gain = problem.a[activity] * x * x + problem.b[activity] * x
    if problem.piecewise:
        for p, i in enumerate(activity.tolist()):
            curve = problem.piecewise[i]
            if curve is not None:
                gain[p] += float(curve(x[p]))
    return gain


def secant_plan(
    problem: MixProblem,
    model: ConicModel,
    allowed: np.ndarray,
    time_limit: float | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray | None:
    """The best plan of the secant MILP (see the module docstring) polished over its regions, or None.

    Parameters
    ----------
    problem:
        The problem at the cap K wanted (``problem.k``).
    model:
        Its formulation with a count row (built with a binding cap; its side is set to ``problem.k`` here).
    allowed:
        One flag per column of ``model``: the region binaries the MILP may switch on (other binaries stay 0).
    time_limit:
        Seconds for the MILP and the polish together (None: until HiGHS proves 0.01% on the secant MILP).
    start:
        A plan feasible for ``problem`` that only uses allowed regions: HiGHS's start point.
    """
    began = time.perf_counter()
    arrays = secant_milp(problem, model, allowed)
    highs = new_highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("mip_rel_gap", SECANT_GAP)
    # the polish after the MILP takes about a fifth of the time (an exact QP over the chosen regions)
    deadline = math.inf if time_limit is None else began + 0.8 * time_limit
    stop_when(highs, lambda: time.perf_counter() >= deadline)
    set_time_limit(highs, None if time_limit is None else deadline - time.perf_counter())
    arrays.to_highs(highs)
    if start is not None:
        values = model.encode(start, problem)
        highs.setSolution(values.size, np.arange(values.size, dtype=np.int32), values)
    highs.run()
    if start is not None and time.perf_counter() < deadline:
        rerun_without_start(highs, highs.run)
    if highs.getInfo().primal_solution_status != 2:
        return None
    rest = seconds_until(None if time_limit is None else began + time_limit)
    return _polished(problem, model, np.asarray(highs.getSolution().col_value, dtype=float), rest)


def secant_milp(problem: MixProblem, model: ConicModel, allowed: np.ndarray) -> MilpArrays:
    """The secant MILP of :func:`secant_plan` as arrays (the count row's side set to ``problem.k``)."""
    if model.count_row is None:
        raise ValueError("the model has no max_changes row: build it with a binding cap")
    integer = np.flatnonzero(model.integer)
    # pieces with a binary (every piece when the cap binds, as here); one without would earn nothing below
    pieces = np.flatnonzero(model.piece_z >= 0)
    lo = model.piece_lo[pieces]
    hi = model.piece_hi[pieces]
    span = hi - lo
    gain_lo = _gains(problem, model, pieces, lo)
    gain_hi = _gains(problem, model, pieces, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(span > 0, (gain_hi - gain_lo) / np.where(span > 0, span, 1.0), 0.0)
    cost = np.zeros(model.num_vars)
    # the secant in perspective: alpha z + slope y with alpha = gain(lo) - slope lo (y in scaled units)
    np.add.at(cost, model.piece_y[pieces], slope)
    np.add.at(cost, model.piece_z[pieces], gain_lo - slope * lo)
    col_upper = model.upper.copy()
    col_upper[integer[~allowed[integer]]] = 0.0
    row_upper = np.where(np.isfinite(model.row_upper), model.row_upper, INF)
    row_upper[model.count_row] = float(problem.k)
    return MilpArrays.from_matrix(
        model.matrix,
        cost=cost,
        col_lower=model.lower,
        col_upper=col_upper,
        row_lower=np.where(np.isfinite(model.row_lower), model.row_lower, -INF),
        row_upper=row_upper,
        integer=integer,
        offset=0.0,
        maximize=True,
    )


def _polished(problem: MixProblem, model: ConicModel, values: np.ndarray, seconds: float | None) -> np.ndarray | None:
    """The secant MILP's solution ``values`` as a plan, polished exactly over its regions; re-checked, or None."""
    plan = model.decode(values, problem)
    polished = polish_regions(problem, plan, seconds)
    if polished is not None and problem.revenue(polished) >= problem.revenue(plan):
        return polished
    return plan if check_plan(problem, plan).ok else None


class BackgroundSecant:
    """Secant MILPs of a few K, one after the other, in a worker process while the caller goes on.

    The retailer case's smallest Pareto K need 10-20 s of it (K = 329: 2,243,664 after 16 s, 0.2% below its
    bound, where 4 s gave 2,183,921, 2.9% below; K = 470: 2,264,377 after 12 s), which the sweep cannot give one
    point; in a child process they run on the second core while the larger K are solved. Each job is a problem
    (its K) with a time limit (None: until :meth:`plans` stops it); every job searches the same regions
    ``allowed`` and starts from the previous job's plan, which fits its larger K. When no worker can start,
    :meth:`plans` returns none and the caller goes on as without it.
    """

    def __init__(
        self,
        model: ConicModel,
        allowed: np.ndarray,
        jobs: list[tuple[MixProblem, float | None]],
        start: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self._jobs = jobs
        self._values: list[np.ndarray | None] = [None] * len(jobs)
        self._stop = threading.Event()
        self._worker: MilpWorker | None = None
        first = None if start is None else model.encode(start, jobs[0][0])
        self._thread = threading.Thread(target=self._run, args=(allowed, first), daemon=True)
        self._thread.start()

    def _run(self, allowed: np.ndarray, start: np.ndarray | None) -> None:
        try:
            self._worker = MilpWorker()
            for j, (problem, seconds) in enumerate(self._jobs):
                if self._stop.is_set():
                    break
                run = self._worker.run(
                    secant_milp(problem, self.model, allowed),
                    start=start,
                    seconds=seconds,
                    gap=SECANT_GAP,
                    on_plan=functools.partial(self._keep, j),
                    stop=self._stopped,
                )
                if run.solution is not None:
                    self._values[j] = run.solution
                if run.killed:
                    break  # the worker is gone (its deadline passed inside a phase without callbacks)
                start = self._values[j] if self._values[j] is not None else start
        except WorkerFailed:
            pass  # no plan from the background: the caller's own heuristics stand
        finally:
            if self._worker is not None:
                self._worker.close()

    @property
    def finished(self) -> bool:
        """True once every job has ended (each at its gap or its time limit) or the run was stopped."""
        return not self._thread.is_alive()

    def _keep(self, job: int, values: np.ndarray, latest: bool) -> None:
        self._values[job] = values

    def _stopped(self, bound: float) -> bool:
        return self._stop.is_set()

    def plans(self, seconds: float | None = None) -> list[np.ndarray]:
        """Stop the MILPs (:meth:`close`) and return the jobs' best plans, each polished exactly (all within
        ``seconds``) and re-checked against its own K."""
        began = time.perf_counter()
        self.close()
        found = []
        for (problem, _), values in zip(self._jobs, self._values, strict=True):
            rest = seconds_until(None if seconds is None else began + seconds)
            plan = None if values is None else _polished(problem, self.model, values, rest)
            found += [] if plan is None else [plan]
        return found

    def close(self) -> None:
        """Stop the MILP at its next callback (killed after ``STOP_WAIT`` seconds) and wait for the thread; the
        plans found so far stay."""
        self._stop.set()
        self._thread.join(STOP_WAIT)
        if self._thread.is_alive() and self._worker is not None:
            self._worker.kill()  # inside a phase without callbacks (root cut rounds): its last plan stands
        self._thread.join()


def _gains(problem: MixProblem, model: ConicModel, pieces: np.ndarray, y: np.ndarray) -> np.ndarray:
    full = np.zeros(model.piece_activity.size)
    full[pieces] = y
    return piece_gain(problem, model, full)[pieces]
