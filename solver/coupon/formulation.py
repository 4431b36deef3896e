"""The segment-level LP of the coupon plan as a :class:`dmplan.solver.linear.LinearProgram`.

Columns are x[s, d] in row-major order (column s * D + d). Rows: one per segment
(sum_d x[s, d] = 1), then the budget row.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from dmplan.solver.coupon.model import CouponProblem
from dmplan.solver.linear import INF, LinearProgram


def segment_lp(problem: CouponProblem) -> LinearProgram:
    S, D = problem.probability.shape
    N = problem.customers
    gain = (N[:, None] * problem.unit_gain).ravel()
    spend = (N[:, None] * problem.unit_cost).ravel()
    rows = np.repeat(np.arange(S), D)
    share_rows = sp.csr_matrix((np.ones(S * D), (rows, np.arange(S * D))), shape=(S, S * D))
    matrix = sp.vstack([share_rows, sp.csr_matrix(spend[None, :])], format="csr")
    row_lower = np.concatenate([np.ones(S), [-INF]])
    row_upper = np.concatenate([np.ones(S), [problem.budget]])
    col_lower = np.tile(problem.min_shares, S)
    col_upper = np.ones(S * D)
    names = [f"segment {s}" for s in problem.segments] + ["budget"]
    return LinearProgram(gain, matrix, row_lower, row_upper, col_lower, col_upper, maximize=True, row_names=names)


BUDGET_ROW = -1  #: index of the budget row in :func:`segment_lp`
