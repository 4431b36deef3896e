"""PuLP with its bundled CBC: an independent second backend, used for cross-checks.

Slower than HiGHS in-process (PuLP writes the model to a file and starts CBC), so it is
not the default; its answers check HiGHS's in the tests.
"""

from __future__ import annotations

import time

import numpy as np
import pulp

from dmplan.solver.common import Status
from dmplan.solver.linear import LinearProgram, LinearSolution


def solve(program: LinearProgram, *, time_limit: float | None = None, gap: float = 1e-6) -> LinearSolution:
    start = time.perf_counter()
    model = pulp.LpProblem("dmplan", pulp.LpMaximize if program.maximize else pulp.LpMinimize)
    integer = program.integer if program.integer is not None else np.zeros(program.num_cols, dtype=bool)
    xs = [
        pulp.LpVariable(
            f"x{j}",
            lowBound=None if np.isinf(program.col_lower[j]) else float(program.col_lower[j]),
            upBound=None if np.isinf(program.col_upper[j]) else float(program.col_upper[j]),
            cat=pulp.LpInteger if integer[j] else pulp.LpContinuous,
        )
        for j in range(program.num_cols)
    ]
    model += pulp.lpSum(float(c) * x for c, x in zip(program.cost, xs, strict=True) if c) + program.offset
    csr = program.matrix.tocsr()
    constraints: list[tuple[int, pulp.LpConstraint]] = []
    for r in range(program.num_rows):
        lo, hi = csr.indptr[r], csr.indptr[r + 1]
        expr = pulp.lpSum(float(v) * xs[j] for j, v in zip(csr.indices[lo:hi], csr.data[lo:hi], strict=True))
        low, up = float(program.row_lower[r]), float(program.row_upper[r])
        if low == up:
            constraints.append((r, expr == up))
        else:
            if np.isfinite(up):
                constraints.append((r, expr <= up))
            if np.isfinite(low):
                constraints.append((r, expr >= low))
    names = []
    for k, (r, constraint) in enumerate(constraints):
        name = f"r{r}_{k}"
        model += constraint, name
        names.append((r, name))
    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap if program.is_mip else None)
    model.solve(solver)
    seconds = time.perf_counter() - start
    state = pulp.LpStatus[model.status]
    if state == "Infeasible":
        return LinearSolution(Status.INFEASIBLE, None, None, None, seconds=seconds, solver="pulp")
    values = np.array([x.value() if x.value() is not None else np.nan for x in xs], dtype=float)
    if state != "Optimal" or np.isnan(values).any():
        status = Status.FEASIBLE if not np.isnan(values).any() else Status.TIME_LIMIT
        return LinearSolution(status, None if status == Status.TIME_LIMIT else values, None, None, seconds=seconds)
    objective = float(pulp.value(model.objective))
    duals = None
    bound: float | None = objective if program.is_mip else None
    if not program.is_mip:
        duals = np.zeros(program.num_rows)
        for r, name in names:
            pi = model.constraints[name].pi
            duals[r] += float(pi) if pi is not None else 0.0
        bound = program.dual_bound(duals)
    return LinearSolution(Status.OPTIMAL, values, objective, bound, duals, 0, seconds, "pulp")
