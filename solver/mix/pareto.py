"""Pareto sweep over the cap on changes K: revenue as a share of the best revenue with K = n.

K = n is solved first: its optimum is also optimal for every K at least its number of changes. The
other K run in increasing order, so every optimum is a feasible warm start for the next point. Each
point is its own solve: re-solving one live outer-approximation model across K stopped early and
returned the plan of a smaller K (n = 1,000: every K from 105 to 895 at a 27% gap), while separate
warm-started solves prove all 20 points optimal in about 13 s. The knee is the point farthest above
the straight line from the first to the last point (both axes scaled to 0..1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from dmplan.solver.common import Progress, ProgressCallback, Status
from dmplan.solver.mix.api import finish, solve
from dmplan.solver.mix.backends.base import BackendOutcome
from dmplan.solver.mix.model import MixProblem, MixResult


@dataclass(frozen=True)
class ParetoPoint:
    """One point of the sweep."""

    k: int
    k_share: float  #: K as a share of n (0..1)
    result: MixResult
    revenue_share: float | None  #: objective / objective with K = n, in percent
    improvement_share: float | None  #: (objective - objective at K=0) / (best - objective at K=0), in percent
    knee: bool = False

    @property
    def objective(self) -> float | None:
        return self.result.objective

    @property
    def status(self) -> Status:
        return self.result.status


def k_values(n: int, points: int) -> list[int]:
    """``points`` caps from 0 to ``n`` (evenly spaced, rounded, duplicates dropped)."""
    points = max(2, points)
    return sorted({round(j * n / (points - 1)) for j in range(points)})


def pareto_over_changes(
    problem: MixProblem,
    points: int = 20,
    *,
    solver: str = "auto",
    time_limit: float | None = None,
    gap: float = 1e-4,
    progress: ProgressCallback | None = None,
) -> list[ParetoPoint]:
    """Solve the problem for K from 0 to n and relate every revenue to the best one (K = n).

    Parameters
    ----------
    problem:
        The problem (its own ``max_changes`` is ignored).
    points:
        Number of K values.
    solver:
        Backend for every point; each point is warm-started with the previous plan.
    time_limit:
        Seconds for the whole sweep, shared evenly among the points still to solve.
    gap:
        Relative gap per point.
    progress:
        Called after every point.

    Returns
    -------
    list[ParetoPoint]
        In increasing K; exactly one point has ``knee=True`` when there are at least three points.
    """
    start = time.perf_counter()
    ks = k_values(problem.n, points)
    results: dict[int, MixResult] = {}
    # K = n first: its optimum is optimal for every K >= its number of changes, and its bound caps all K
    order = [ks[-1], *ks[:-1]]
    previous: np.ndarray | None = None
    top: MixResult | None = None
    for index, k in enumerate(order):
        remaining = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))
        share = None if remaining is None else remaining / (len(ks) - index)
        if share is not None and remaining is not None and index == 0:
            share = remaining / 4  # K = n bounds and often settles every other point: give it more time
        sub = problem.with_max_changes(k)
        if top is not None and top.change is not None and top.status == Status.OPTIMAL and k >= top.changes:
            outcome = BackendOutcome(Status.FEASIBLE, change=top.change, bound=top.bound, message="optimum with K = n")
            result = finish(sub, outcome, top.formulation, top.certificate.solver, gap, 0.0)
        else:
            result = solve(sub, solver=solver, time_limit=share, gap=gap, warm_start=previous)
        results[k] = result
        if top is None:
            top = result
        elif result.change is not None:
            previous = result.change
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
    return _points(problem.n, ks, _monotone([results[k] for k in ks], ks, problem, gap))


def _monotone(results: list[MixResult], ks: list[int], problem: MixProblem, gap: float) -> list[MixResult]:
    """A plan feasible for K is feasible for every larger K: carry better plans forward."""
    fixed = [results[0]]
    for k, result in zip(ks[1:], results[1:], strict=True):
        best = fixed[-1]
        if best.objective is not None and (result.objective is None or best.objective > result.objective):
            outcome = BackendOutcome(
                Status.FEASIBLE, change=best.change, bound=result.bound, message="plan of a smaller K"
            )
            result = finish(
                problem.with_max_changes(k),
                outcome,
                result.formulation,
                result.certificate.solver,
                gap,
                result.certificate.seconds,
            )
        fixed.append(result)
    return fixed


def _points(n: int, ks: list[int], results: list[MixResult]) -> list[ParetoPoint]:
    best = results[-1].objective
    base = results[0].objective
    shares: list[float | None] = []
    improvements: list[float | None] = []
    for result in results:
        value = result.objective
        shares.append(None if value is None or not best else 100.0 * value / best)
        span = None if best is None or base is None else best - base
        improvements.append(None if value is None or base is None or not span else 100.0 * (value - base) / span)
    knee = _knee([k / max(1, n) for k in ks], improvements)
    return [
        ParetoPoint(k, k / max(1, n), result, shares[j], improvements[j], j == knee)
        for j, (k, result) in enumerate(zip(ks, results, strict=True))
    ]


def _knee(xs: list[float], ys: list[float | None]) -> int | None:
    """Index of the point farthest above the chord from the first to the last point (axes scaled 0..1)."""
    if len(xs) < 3 or ys[0] is None or ys[-1] is None:
        return None
    x0, x1 = xs[0], xs[-1]
    y0, y1 = ys[0], ys[-1]
    if x1 == x0 or y1 == y0:
        return None
    best, best_distance = None, -math.inf
    for j, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if y is None:
            continue
        u = (x - x0) / (x1 - x0)
        w = (y - y0) / (y1 - y0)
        distance = w - u  # height above the chord in scaled units
        if distance > best_distance:
            best, best_distance = j, distance
    return best
