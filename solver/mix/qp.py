"""The convex QP left once every activity's region is fixed, solved exactly with HiGHS's QP solver.

Small QPs go to HiGHS's active-set QP solver (exact vertices, used by the oracle), large ones to Clarabel's
interior point method (a cvxpy dependency; accurate to about 1e-9, then clipped into the bounds).

With the region of every activity fixed (decrease interval, zero, or increase interval) the minimum
change and the cap on changes disappear and what remains is a separable concave maximisation over box
bounds and the linear budget and rule rows (a piecewise-linear revenue adds one column and one row per
line: the LP epigraph of a concave minimum of lines). It is the primal heuristic of the ``oa`` backend and the
inner solve of the brute-force oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from dmplan.solver.backends.highs import new_highs, set_time_limit
from dmplan.solver.mix.model import MixProblem, check_plan, regions

INF = float("inf")
#: above this many free activities the QP goes to Clarabel's interior point (HiGHS's active set needs
#: about one iteration per active bound: 1.4 s at 1,000 and minutes at 3,000 activities with 2,600 rows)
ACTIVE_SET_LIMIT = 300
VERBOSE = False


@dataclass(frozen=True)
class LinearRows:
    """The budget and rule rows of a problem in change space: ``lower <= matrix @ x <= upper``."""

    matrix: sp.csr_matrix
    lower: np.ndarray
    upper: np.ndarray
    names: tuple[str, ...]


def linear_rows(problem: MixProblem) -> LinearRows:
    """Budget and rule rows of ``problem`` written on the change ``x``."""
    rows: list[np.ndarray] = []
    lower: list[float] = []
    upper: list[float] = []
    names: list[str] = []
    total = float(problem.baseline.sum())
    if problem.budget_min is not None or problem.budget_max is not None:
        rows.append(np.ones(problem.n))
        lower.append(-INF if problem.budget_min is None else problem.budget_min - total)
        upper.append(INF if problem.budget_max is None else problem.budget_max - total)
        names.append("budget")
    for rule in problem.rules:
        lo, hi = rule.change_bounds(problem.baseline)
        rows.append(np.asarray(rule.weights, dtype=float))
        lower.append(lo)
        upper.append(hi)
        names.append(f"rule {rule.name}")
    matrix = sp.csr_matrix(np.vstack(rows)) if rows else sp.csr_matrix((0, problem.n))
    return LinearRows(matrix, np.asarray(lower), np.asarray(upper), tuple(names))


def solve_box_qp(
    problem: MixProblem,
    lower: np.ndarray,
    upper: np.ndarray,
    rows: LinearRows | None = None,
    time_limit: float | None = None,
    interior_point: bool = False,
) -> np.ndarray | None:
    """Maximise the revenue over ``lower <= x <= upper`` and the budget and rule rows.

    Parameters
    ----------
    problem:
        The problem (revenue coefficients, budget, rules).
    lower, upper:
        Bounds on the change of every activity (the fixed region's interval, or 0 and 0).
    rows:
        Pre-computed :func:`linear_rows` of the problem (computed when omitted).
    time_limit:
        Seconds allowed to the QP solver.
    interior_point:
        Always use Clarabel, never HiGHS: required inside a HiGHS callback, where a nested HiGHS run
        corrupts the running one's memory (HiGHS keeps process-wide state).

    Returns
    -------
    numpy.ndarray or None
        The optimal change, or None when the QP is infeasible or HiGHS fails.
    """
    rows = rows if rows is not None else linear_rows(problem)
    free = np.flatnonzero(lower < upper)
    fixed_change = np.where(lower < upper, 0.0, lower)
    shift = rows.matrix @ fixed_change if rows.matrix.shape[0] else np.zeros(0)
    n = free.size
    if n == 0:
        ok = np.all(shift >= rows.lower - 1e-9 * np.maximum(1, np.abs(rows.lower))) and np.all(
            shift <= rows.upper + 1e-9 * np.maximum(1, np.abs(rows.upper))
        )
        return fixed_change if ok else None
    a = problem.a[free]
    b = problem.b[free]
    lower = lower[free]
    upper = upper[free]
    scale = np.maximum(np.maximum(np.abs(lower), np.abs(upper)), 1.0)
    # columns: the scaled changes y = x / scale, then one revenue column w per free piecewise activity with
    # the rows w - slope_k scale y <= intercept_k of its lines (an LP epigraph of the concave minimum)
    matrix = sp.csr_matrix(rows.matrix[:, free] @ sp.diags(scale)) if rows.matrix.shape[0] else sp.csr_matrix((0, n))
    row_lower = rows.lower - shift
    row_upper = rows.upper - shift
    cost_a = a * scale * scale
    cost_b = b * scale
    col_lower = lower / scale
    col_upper = upper / scale
    curves = problem.piecewise
    with_curve = [j for j in range(n) if curves and curves[free[j]] is not None]
    if with_curve:
        line_rows: list[sp.csr_matrix] = []
        line_upper: list[np.ndarray] = []
        w_lower: list[float] = []
        w_upper: list[float] = []
        for w, j in enumerate(with_curve):
            curve = curves[free[j]]
            assert curve is not None
            k = curve.segments
            block = sp.lil_matrix((k, n + len(with_curve)))
            block[:, j] = (-curve.slope * scale[j])[:, None]
            block[:, n + w] = 1.0
            line_rows.append(sp.csr_matrix(block))
            line_upper.append(curve.intercept)
            ends = curve(np.array([lower[j], upper[j]]))
            w_lower.append(float(ends.min()))
            w_upper.append(float(curve(np.clip(curve.envelope()[1], lower[j], upper[j])).max(initial=ends.max())))
        extra = len(with_curve)
        matrix = sp.csr_matrix(sp.vstack([sp.hstack([matrix, sp.csr_matrix((matrix.shape[0], extra))]), *line_rows]))
        row_lower = np.concatenate([row_lower, np.full(sum(r.shape[0] for r in line_rows), -INF)])
        row_upper = np.concatenate([row_upper, *line_upper])
        cost_a = np.concatenate([cost_a, np.zeros(extra)])
        cost_b = np.concatenate([cost_b, np.ones(extra)])
        col_lower = np.concatenate([col_lower, w_lower])
        col_upper = np.concatenate([col_upper, w_upper])
    if interior_point or n > ACTIVE_SET_LIMIT:
        y = _interior_point(cost_a, cost_b, col_lower, col_upper, matrix, row_lower, row_upper, time_limit)
    else:
        y = _active_set(cost_a, cost_b, col_lower, col_upper, matrix, row_lower, row_upper, time_limit)
    if y is None:
        return None
    fixed_change[free] = np.clip(y[:n] * scale, lower, upper)
    return fixed_change


def _active_set(
    a: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    matrix: sp.csr_matrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    time_limit: float | None,
) -> np.ndarray | None:
    """Maximise ``sum a y^2 + b y`` over a box and rows with HiGHS (active set QP, or simplex); None unless solved."""
    n = a.size
    h = new_highs()
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("dual_feasibility_tolerance", 1e-9)
    set_time_limit(h, time_limit)
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.col_cost_ = -b
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    matrix = sp.csc_matrix(matrix)
    row_size = np.ones(matrix.shape[0])
    if matrix.shape[0]:
        size = np.asarray(abs(matrix).max(axis=1).todense()).ravel()
        # a row without free activities keeps scale 1: dividing its bounds by a tiny size would overflow
        row_size = np.where(size > 0, size, 1.0)
        matrix = sp.csc_matrix(sp.diags(1.0 / row_size) @ matrix)
    lp.num_row_ = matrix.shape[0]
    lp.row_lower_ = row_lower / row_size
    lp.row_upper_ = row_upper / row_size
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = matrix.shape[0]
    h.passModel(lp)
    diagonal = -2.0 * a
    curved = np.flatnonzero(diagonal > 0)
    if curved.size:
        hessian = highspy.HighsHessian()
        hessian.dim_ = n
        hessian.format_ = highspy.HessianFormat.kTriangular
        starts = np.zeros(n + 1, dtype=np.int32)
        starts[curved + 1] = 1
        hessian.start_ = np.cumsum(starts).astype(np.int32)
        hessian.index_ = curved.astype(np.int32)
        hessian.value_ = diagonal[curved]
        h.passHessian(hessian)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(h.getSolution().col_value)


def _interior_point(
    a: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    matrix: sp.csr_matrix,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    time_limit: float | None,
) -> np.ndarray | None:
    """Maximise ``sum a y^2 + b y`` over a box and rows with Clarabel; None unless solved."""
    import clarabel

    n = a.size
    blocks = [sp.identity(n, format="csr"), -sp.identity(n, format="csr")]
    rhs = [upper, -lower]
    if matrix.shape[0]:
        size = np.maximum(np.asarray(abs(matrix).max(axis=1).todense()).ravel(), 1e-300)
        scaled = sp.csr_matrix(sp.diags(1.0 / size) @ matrix)
        hi = np.isfinite(row_upper)
        lo = np.isfinite(row_lower)
        blocks += [scaled[hi], -scaled[lo]]
        rhs += [row_upper[hi] / size[hi], -row_lower[lo] / size[lo]]
    constraint = sp.csc_matrix(sp.vstack(blocks))
    bound = np.concatenate(rhs)
    hessian = sp.csc_matrix(sp.diags(-2.0 * a))
    hessian.eliminate_zeros()
    settings = clarabel.DefaultSettings()
    settings.verbose = VERBOSE
    settings.tol_gap_abs = 1e-10
    settings.tol_gap_rel = 1e-10
    settings.tol_feas = 1e-10
    if time_limit is not None:
        settings.time_limit = max(0.05, float(time_limit))
    solver = clarabel.DefaultSolver(hessian, -b, constraint, bound, [clarabel.NonnegativeConeT(bound.size)], settings)
    solution = solver.solve()
    if str(solution.status) not in ("Solved", "AlmostSolved"):
        return None
    return np.asarray(solution.x)


def polish_regions(problem: MixProblem, change: np.ndarray, time_limit: float | None = None) -> np.ndarray | None:
    """The best plan that changes the same activities in the same directions as ``change`` (the convex QP
    over their regions; an activity with minimum change 0 may use its whole range); re-checked, or None."""
    reg = regions(problem)
    keep = np.flatnonzero(change != 0)
    lower = np.zeros(problem.n)
    upper = np.zeros(problem.n)
    down = keep[change[keep] < 0]
    up = keep[change[keep] > 0]
    lower[down], upper[down] = reg.dec_lo[down], reg.dec_hi[down]
    lower[up], upper[up] = reg.inc_lo[up], reg.inc_hi[up]
    merged = keep[problem.min_change[keep] == 0]
    lower[merged], upper[merged] = reg.dec_lo[merged], reg.inc_hi[merged]
    plan = solve_box_qp(problem, lower, upper, time_limit=time_limit)
    return plan if plan is not None and check_plan(problem, plan).ok else None
