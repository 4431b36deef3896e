"""Local search over region choices: given every activity's region, the rest is a convex QP solved exactly.

A plan is a choice of region per activity (decrease, keep, increase) plus the optimal changes within those
regions (:func:`dmplan.solver.mix.qp.solve_box_qp`). The search moves between region choices:

- **add** an activity that is kept (when fewer than K change), in its better region;
- **drop** a changed activity;
- **swap**: drop one changed activity and add a kept one (the cap K stays met);
- **flip** a changed activity to its other region.

Moves are ranked by a cheap estimate of their gain from the plan's prices: at the QP optimum every activity
strictly inside its region has marginal revenue ``2 a x + b`` equal to ``pi = A' lambda``, the rows'
multipliers ``lambda`` weighted by its row coefficients (recovered by least squares over those
activities). An activity's Lagrangian value in a region is ``max a x^2 + (b - pi) x`` over the region: the
estimate of adding ``j`` is its best value, of dropping ``i`` minus its current value, a swap the sum. Only
the best-ranked moves are evaluated by the exact QP; the best improving one is taken, and the search repeats
from the new plan until no evaluated move improves or the time is up. Every plan returned passes
:func:`dmplan.solver.mix.model.check_plan`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import lsqr

from dmplan.solver.common import seconds_until
from dmplan.solver.mix.model import MixProblem, Regions, check_plan, region_of, regions
from dmplan.solver.mix.qp import LinearRows, linear_rows, solve_box_qp

#: a move: its estimated gain, the activities it changes and their new region states
Move = tuple[float, tuple[int, ...], tuple[int, ...]]
#: moves evaluated by the exact QP per step (best estimates first)
EVALUATIONS = 32
#: kept activities and changed activities considered for swaps (best estimates of each)
SWAP_POOL = 8


@dataclass
class SearchStats:
    """What a search did: QPs solved, moves taken, seconds."""

    evaluated: int = 0
    moves: int = 0
    seconds: float = 0.0
    gain: float = 0.0


def bounds_of(problem: MixProblem, reg: Regions, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Change bounds of a region choice (``state``: -1 decrease, 0 keep, +1 increase per activity).

    An activity whose minimum change is 0 and that changes may use its whole range (its two regions touch).
    """
    lower = np.zeros(problem.n)
    upper = np.zeros(problem.n)
    down = state < 0
    up = state > 0
    lower[down], upper[down] = reg.dec_lo[down], reg.dec_hi[down]
    lower[up], upper[up] = reg.inc_lo[up], reg.inc_hi[up]
    merged = (state != 0) & (problem.min_change == 0)
    lower[merged], upper[merged] = reg.dec_lo[merged], reg.inc_hi[merged]
    return lower, upper


def prices(
    problem: MixProblem, rows: LinearRows, change: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Per-activity price ``pi = A' lambda`` of the rows at a QP optimum (zeros without rows).

    ``lambda`` solves ``A_S' lambda = 2 a x + b`` in the least-squares sense over the activities ``S``
    strictly inside their bounds, with only the rows at one of their sides (a slack row's multiplier is 0).
    """
    n = problem.n
    if rows.matrix.shape[0] == 0:
        return np.zeros(n)
    activity = rows.matrix @ change
    size = np.maximum(1.0, np.maximum(np.abs(rows.lower), np.abs(rows.upper)))
    size = np.where(np.isfinite(size), size, 1.0)
    tight = (np.abs(activity - rows.lower) <= 1e-7 * size) | (np.abs(activity - rows.upper) <= 1e-7 * size)
    scale = problem.scale
    inside = (change > lower + 1e-7 * scale) & (change < upper - 1e-7 * scale)
    active = np.flatnonzero(tight)
    free = np.flatnonzero(inside)
    if active.size == 0 or free.size == 0:
        return np.zeros(n)
    gradient = 2 * problem.a[free] * change[free] + problem.b[free]
    system = sp.csr_matrix(rows.matrix[active][:, free].T)
    multipliers = lsqr(system, gradient, atol=1e-12, btol=1e-12)[0]
    return np.asarray(rows.matrix[active].T @ multipliers).ravel()


def _best_in(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``max a x^2 + b x`` over ``[lo, hi]`` per entry (``a <= 0``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(a < 0, -b / (2 * a), np.where(b > 0, hi, lo))
    x = np.clip(peak, lo, hi)
    return a * x * x + b * x


def improve(
    problem: MixProblem,
    change: np.ndarray,
    *,
    seconds: float,
    rows: LinearRows | None = None,
    evaluations: int = EVALUATIONS,
    tick: Callable[[], None] | None = None,
) -> tuple[np.ndarray, SearchStats]:
    """Improve a feasible plan by region moves (see the module docstring) for at most ``seconds``.

    Parameters
    ----------
    problem:
        The problem.
    change:
        A plan that passes :func:`check_plan`.
    seconds:
        Wall-clock budget.
    rows:
        Pre-computed :func:`linear_rows` of the problem.
    evaluations:
        Moves evaluated by the exact QP per step.
    tick:
        Called after every QP (a caller's progress report: a step of many QPs can take a second).

    Returns
    -------
    tuple
        The best plan found (``change`` itself when nothing improved) and the search's statistics.
    """
    began = time.perf_counter()
    deadline = began + seconds
    rows = rows if rows is not None else linear_rows(problem)
    reg = regions(problem)
    stats = SearchStats()
    best = np.asarray(change, dtype=float)
    best_value = problem.revenue(best)
    start_value = best_value
    state = region_of(problem, best)
    a, b = problem.a, problem.b
    tried: set[bytes] = set()
    while time.perf_counter() < deadline:
        lower, upper = bounds_of(problem, reg, state)
        pi = prices(problem, rows, best, lower, upper)
        slope = b - pi
        # Lagrangian value of every activity in each region (-inf where the region does not exist)
        value_dec = np.where(reg.has_dec, _best_in(a, slope, reg.dec_lo, reg.dec_hi), -np.inf)
        value_inc = np.where(reg.has_inc, _best_in(a, slope, reg.inc_lo, reg.inc_hi), -np.inf)
        current = a * best * best + slope * best
        on = np.flatnonzero(state != 0)
        off = np.flatnonzero((state == 0) & reg.movable)
        add_value = np.maximum(value_dec[off], value_inc[off])
        add_state = np.where(value_inc[off] >= value_dec[off], 1, -1)
        drop_value = -current[on]
        other = np.where(state[on] > 0, value_dec[on], value_inc[on])
        # candidate moves per kind, best estimates first; the kinds take turns so that no kind's estimates
        # (first-order only: a swap's sum often looks best) crowd out the others
        room = problem.k - on.size
        top_add = np.argsort(-add_value, kind="stable")[:SWAP_POOL]
        top_drop = np.argsort(-drop_value, kind="stable")[:SWAP_POOL]
        kinds: list[list[Move]] = [[], [], [], []]
        if room > 0:
            kinds[0] = [(float(add_value[j]), (int(off[j]),), (int(add_state[j]),)) for j in top_add]
        kinds[1] = [(float(drop_value[i]), (int(on[i]),), (0,)) for i in top_drop]
        flips = np.flatnonzero(np.isfinite(other))
        flip_moves: list[Move] = [
            (float(other[i] - current[on[i]]), (int(on[i]),), (-int(state[on[i]]),)) for i in flips
        ]
        kinds[2] = sorted(flip_moves, key=lambda move: -move[0])[:SWAP_POOL]
        kinds[3] = sorted(
            (
                (float(drop_value[i] + add_value[j]), (int(on[i]), int(off[j])), (0, int(add_state[j])))
                for i in top_drop
                for j in top_add
            ),
            key=lambda move: -move[0],
        )
        moves = [move for group in itertools.zip_longest(*kinds) for move in group if move is not None]
        found: tuple[float, np.ndarray, np.ndarray] | None = None
        done = 0
        for _, activities, states in moves:
            if done >= evaluations or time.perf_counter() >= deadline:
                break
            trial = state.copy()
            trial[list(activities)] = states
            key = trial.tobytes()
            if key in tried:
                continue
            tried.add(key)
            done += 1
            lo, hi = bounds_of(problem, reg, trial)
            plan = solve_box_qp(problem, lo, hi, rows, time_limit=seconds_until(deadline))
            stats.evaluated += 1
            if tick is not None:
                tick()
            if plan is None:
                continue
            value = problem.revenue(plan)
            better = value > best_value + 1e-9 * max(1.0, abs(best_value)) and (found is None or value > found[0])
            if better and check_plan(problem, plan).ok:
                found = (value, plan, trial)
        if found is None:
            break
        best_value, best, _ = found
        state = region_of(problem, best)  # the QP may leave an activity at zero inside a merged range
        stats.moves += 1
    stats.seconds = time.perf_counter() - began
    stats.gain = best_value - start_value
    return best, stats
