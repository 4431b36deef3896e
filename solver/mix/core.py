"""The *core* of a mix problem: the activities whose region choice the coupling rows' prices leave nearly tied.

Pisinger's core idea for hard knapsacks, on the region choices: price the rows that tie activities together
(the cap on changes, the budget and the rules) with the root LP's row duals ``pi``. The problem then splits
per activity: activity ``i`` takes the region (keep, decrease, increase) of largest *priced value*

    value_i(region) = max over x in the region of  r_i(x) - sum_r pi_r A_ri x - pi_K [region changes]

and the sum of these maxima plus ``sum_r max(pi_r lo_r, pi_r hi_r)`` is a valid upper bound for *any*
``pi`` (Lagrangian relaxation; with the LP's duals it equals the perspective root, which is the convex hull
of each activity's regions). An activity whose best region beats its second best by a wide margin keeps it
in good plans; the optimum differs from the root only among the activities with the smallest margins.
Measured on the strongly correlated paper-style instances (n = 1,000): the 4 region changes between the root's
rounding and the optimum are among the 15 smallest margins of 1,000 (ranks 2, 3, 8, 9 and 1, 3, 11, 14).
``oa`` solves a small MILP over the core's region binaries with everything else fixed at the root
(:meth:`dmplan.solver.mix.backends.oa.OuterApproximation.core_search`).
"""

from __future__ import annotations

import math

import numpy as np

from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem


def priced_values(problem: MixProblem, model: ConicModel, row_duals: np.ndarray) -> tuple[np.ndarray, float]:
    """Per piece, the largest priced value of switching it on, and the Lagrangian bound of these prices.

    ``row_duals`` are the model's row duals (HiGHS's sign convention is not assumed: both signs are tried
    and the one with the smaller bound is kept, as each gives a valid bound). Only the coupling rows
    (``model.coupling_rows``) are priced. Returns ``(values, bound)``; the bound is ``inf`` when neither
    sign gives a finite one.
    """
    best: tuple[np.ndarray, float] | None = None
    rows = model.coupling_rows
    duals = np.asarray(row_duals, dtype=float)[rows] if rows.size else np.zeros(0)
    for sign in (1.0, -1.0):
        pi = sign * duals
        side = np.where(pi > 0, model.row_upper[rows], np.where(pi < 0, model.row_lower[rows], 0.0))
        with np.errstate(invalid="ignore"):
            terms = np.where(pi != 0, pi * side, 0.0)
        values = _piece_values(problem, model, pi)
        bound = float(terms.sum()) + _activity_sum(model, values) + model.offset
        if not math.isfinite(bound):
            continue
        if best is None or bound < best[1]:
            best = (values, bound)
    if best is None:
        return _piece_values(problem, model, np.zeros(rows.size)), math.inf
    return best


def choice_margins(problem: MixProblem, model: ConicModel, row_duals: np.ndarray) -> np.ndarray:
    """Per activity, how much its best region's priced value beats the second best (keeping counts as a
    region of value 0 when the activity can keep); ``inf`` for activities with a single choice or without a
    region binary (their choice is not combinatorial)."""
    values, _ = priced_values(problem, model, row_duals)
    margins = np.full(problem.n, math.inf)
    binary = model.piece_z >= 0
    for i in np.unique(model.piece_activity[binary]).tolist():
        mine = values[model.piece_activity == i]
        choices = np.sort(np.concatenate([mine, [0.0]]))[::-1]  # a binary piece can be off: keeping is a choice
        margins[i] = choices[0] - choices[1]
    return margins


def _activity_sum(model: ConicModel, values: np.ndarray) -> float:
    """Sum over activities of their best choice (keeping, value 0, only when every piece has a binary)."""
    best = np.full(int(model.piece_activity.max(initial=-1)) + 1, -math.inf)
    np.maximum.at(best, model.piece_activity, values)
    can_keep = np.ones(best.size, dtype=bool)
    can_keep[model.piece_activity[model.piece_z < 0]] = False  # a piece without a binary is always on
    best = np.where(can_keep, np.maximum(best, 0.0), best)
    return float(best[np.isfinite(best)].sum())


def _piece_values(problem: MixProblem, model: ConicModel, pi: np.ndarray) -> np.ndarray:
    """Per piece, ``max over y in [lo, hi]`` of its objective minus the priced coupling rows, piece on."""
    price = np.zeros(model.num_vars)
    if model.coupling_rows.size:
        price = np.asarray(model.matrix[model.coupling_rows].T @ pi).ravel()
    linear = model.cost[model.piece_y] - price[model.piece_y]
    quad = np.where(model.piece_t >= 0, model.cost[np.maximum(model.piece_t, 0)], 0.0)
    fixed = np.where(model.piece_z >= 0, price[np.maximum(model.piece_z, 0)], 0.0)  # the count row's price
    lo, hi = model.piece_lo, model.piece_hi
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = np.where(quad < 0, -linear / (2 * quad), np.where(linear > 0, hi, lo))
    y = np.clip(peak, lo, hi)
    values = linear * y + quad * y * y - fixed
    curves = problem.piecewise or ()
    for p in np.flatnonzero(model.piece_w >= 0).tolist():
        # a concave piecewise-linear term: the maximum lies at a kink, an end or a stationary point of one line
        i = int(model.piece_activity[p])
        curve = curves[i]
        assert curve is not None
        s = float(model.activity_scale[i])
        slopes = curve.slope * s
        lines_peak = -(linear[p] + slopes) / (2 * quad[p]) if quad[p] < 0 else np.full(slopes.size, hi[p])
        candidates = np.concatenate([[lo[p], hi[p]], curve.envelope()[1] / s, lines_peak])
        candidates = np.clip(candidates[np.isfinite(candidates)], lo[p], hi[p])
        total = linear[p] * candidates + quad[p] * candidates**2 + curve(candidates * s)
        values[p] = float(total.max()) - fixed[p]
    return values
