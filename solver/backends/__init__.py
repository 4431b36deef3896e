"""Small adapters that solve a :class:`dmplan.solver.linear.LinearProgram` with one solver each."""

from __future__ import annotations

from dmplan.solver.linear import LinearProgram, LinearSolution


def solve_linear(
    program: LinearProgram,
    backend: str = "highs",
    *,
    time_limit: float | None = None,
    gap: float = 1e-6,
    warm_start: object | None = None,
) -> LinearSolution:
    """Solve ``program`` with ``backend`` (``highs`` or ``pulp``, i.e. PuLP's bundled CBC)."""
    if backend == "highs":
        from dmplan.solver.backends import highs

        return highs.solve(program, time_limit=time_limit, gap=gap, warm_start=warm_start)
    if backend == "pulp":
        from dmplan.solver.backends import pulp_cbc

        return pulp_cbc.solve(program, time_limit=time_limit, gap=gap)
    raise ValueError(f"unknown linear backend {backend!r}; use 'highs' or 'pulp'")


LINEAR_BACKENDS = ("highs", "pulp")
