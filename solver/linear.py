"""A backend-neutral linear (mixed-integer) program and its solution.

``maximise or minimise c @ x`` subject to ``row_lower <= A @ x <= row_upper`` and
``col_lower <= x <= col_upper``, with some columns integer. Formulations build one;
backends in :mod:`dmplan.solver.backends` solve it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dmplan.solver.common import Status

INF = float("inf")


@dataclass
class LinearProgram:
    """A linear program in row-bounded form. ``integer`` marks integer columns (all False: an LP)."""

    cost: np.ndarray
    matrix: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    maximize: bool = True
    integer: np.ndarray | None = None
    offset: float = 0.0
    row_names: list[str] = field(default_factory=list)

    @property
    def num_cols(self) -> int:
        return int(self.cost.shape[0])

    @property
    def num_rows(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def is_mip(self) -> bool:
        return self.integer is not None and bool(self.integer.any())

    def dual_bound(self, row_duals: np.ndarray) -> float:
        """A proven bound on the LP optimum from any row multipliers (weak duality).

        For a maximisation, ``row_duals`` are multipliers y with y_r >= 0 on rows whose upper
        side binds and y_r <= 0 on rows whose lower side binds (any y may be passed: each
        row contributes the side its sign selects). The bound is
        ``sum_r side_r(y_r) * y_r + sum_j max_{x_j in [l_j, u_j]} (c_j - (A^T y)_j) x_j``
        and holds whatever y is, so it certifies the returned objective independently of the
        solver's claims. Minimisation is handled by negating.
        """
        sign = 1.0 if self.maximize else -1.0
        y = sign * np.asarray(row_duals, dtype=float)
        c = sign * self.cost
        row_side = np.where(y >= 0, self.row_upper, self.row_lower)
        with np.errstate(invalid="ignore"):
            row_part = np.where(y == 0, 0.0, y * row_side)
        reduced = c - self.matrix.T @ y
        with np.errstate(invalid="ignore"):
            col_part = np.where(
                reduced > 0,
                reduced * self.col_upper,
                np.where(reduced < 0, reduced * self.col_lower, 0.0),
            )
        bound = float(np.sum(row_part) + np.sum(col_part)) + sign * self.offset
        return sign * bound


@dataclass
class LinearSolution:
    """What a backend returns: status, values, duals (LPs only), objective and proven bound."""

    status: Status
    x: np.ndarray | None
    objective: float | None
    bound: float | None
    row_duals: np.ndarray | None = None
    iterations: int = 0
    seconds: float = 0.0
    solver: str = ""
