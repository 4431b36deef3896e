"""Name the rules that make a mix problem infeasible, by small LP checks of each rule against the bounds."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from dmplan.solver.mix.model import MixProblem
from dmplan.solver.mix.qp import LinearRows, linear_rows


def _feasible(rows: LinearRows, keep: list[int], lower: np.ndarray, upper: np.ndarray) -> bool:
    matrix = rows.matrix[keep].toarray()
    a_ub = np.vstack([matrix, -matrix])
    b_ub = np.concatenate([rows.upper[keep], -rows.lower[keep]])
    finite = np.isfinite(b_ub)
    if not finite.any():
        return True
    result = linprog(
        np.zeros(lower.size),
        A_ub=a_ub[finite],
        b_ub=b_ub[finite],
        bounds=list(zip(lower, upper, strict=True)),
        method="highs",
    )
    return bool(result.status == 0)


def conflicting_rows(problem: MixProblem) -> list[str]:
    """Budget and rules that cannot hold even with every spend anywhere in its bounds.

    Each row is checked alone, then each rule together with the budget. The minimum change and the
    cap on changes are ignored (the check is on the continuous hull of the regions), so an empty list
    does not prove feasibility.

    Parameters
    ----------
    problem:
        The problem.

    Returns
    -------
    list[str]
        Names such as ``"budget"`` or ``"rule TV"``; ``"budget + rule TV"`` for a pair.
    """
    rows = linear_rows(problem)
    lower = problem.min_spend - problem.baseline
    upper = problem.max_spend - problem.baseline
    names: list[str] = []
    for r, name in enumerate(rows.names):
        if not _feasible(rows, [r], lower, upper):
            names.append(name)
    if names or "budget" not in rows.names:
        return names
    budget = rows.names.index("budget")
    for r, name in enumerate(rows.names):
        if r != budget and not _feasible(rows, [budget, r], lower, upper):
            names.append(f"budget + {name}")
    return names
