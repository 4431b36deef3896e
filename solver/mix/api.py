"""Solve entry point: picks a backend, handles trivial cases, re-checks the plan and builds the certificate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from dmplan.solver.common import Certificate, ProgressCallback, Status, relative_gap
from dmplan.solver.mix import miqp, misocp
from dmplan.solver.mix.backends import BACKENDS, available_backends, load_backend
from dmplan.solver.mix.backends.base import BackendOutcome, BackendUnavailable
from dmplan.solver.mix.diagnose import conflicting_rows
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem, MixResult, check_plan, snap

FORMULATIONS: dict[str, Callable[..., ConicModel]] = {"misocp": misocp.formulate, "miqp": miqp.formulate}
DEFAULT_SOLVER = "oa"
#: seconds of a time limit kept back from the backend (at most 2% of the limit): what runs after its deadline, an
#: interrupted LP returning at HiGHS's next callback and the plan's re-check, took 0.04-0.05 s on the retailer case
#: (a 3 s solve returned after 3.05 s), and up to 0.07 s when the deadline ends the dive (a 10 s solve returned
#: after 10.01 s at 0.05)
FINISH_RESERVE = 0.1


def available_solvers() -> list[str]:
    """Backends usable here (library importable and, for commercial ones, licensed), fastest first."""
    return available_backends()


def formulate(problem: MixProblem, formulation: str) -> ConicModel:
    """The neutral model of ``problem`` in the named formulation (``"misocp"`` or ``"miqp"``)."""
    if formulation not in FORMULATIONS:
        raise ValueError(f"unknown formulation {formulation!r}; use one of {sorted(FORMULATIONS)}")
    return FORMULATIONS[formulation](problem)


def solve(
    problem: MixProblem,
    *,
    solver: str = "auto",
    formulation: str = "misocp",
    time_limit: float | None = None,
    gap: float = 1e-4,
    progress: ProgressCallback | None = None,
    warm_start: np.ndarray | None = None,
) -> MixResult:
    """Solve a marketing-mix adjustment.

    Parameters
    ----------
    problem:
        The validated problem.
    solver:
        ``"auto"`` (the fastest exact backend, ``oa``) or one of :func:`available_solvers`.
    formulation:
        ``"misocp"`` (perspective, default) or ``"miqp"``.
    time_limit:
        Seconds; None for no limit.
    gap:
        Relative gap ``(bound - objective) / max(1, |bound|)`` at which the solve stops.
    progress:
        Receives :class:`dmplan.solver.common.Progress` reports during the solve.
    warm_start:
        A change vector to start from (used when feasible).

    Returns
    -------
    MixResult
        The plan (or None), its certificate (status, true revenue, proven bound, gap, seconds, solver,
        rounds or nodes, feasibility re-check against the original constraints).
    """
    name = DEFAULT_SOLVER if solver == "auto" else solver
    if name not in BACKENDS:
        raise ValueError(f"unknown solver {solver!r}; use 'auto' or one of {sorted(BACKENDS)}")
    start = time.perf_counter()
    model = formulate(problem, formulation)
    if problem.k == 0 or not np.any(model.piece_y >= 0):
        return _baseline_only(problem, formulation, name, start)
    if warm_start is not None:
        warm_start = snap(problem, warm_start)
        if not check_plan(problem, warm_start).ok:
            warm_start = None
    try:
        backend = load_backend(name)
        reserve = 0.0 if time_limit is None else min(FINISH_RESERVE, 0.02 * time_limit)
        left = None if time_limit is None else max(0.0, time_limit - reserve - (time.perf_counter() - start))
        outcome = backend(problem, model, time_limit=left, gap=gap, progress=progress, warm_start=warm_start)
    except BackendUnavailable as error:
        outcome = BackendOutcome(Status.ERROR, message=str(error))
    return finish(problem, outcome, formulation, name, gap, time.perf_counter() - start)


def finish(
    problem: MixProblem, outcome: BackendOutcome, formulation: str, solver: str, gap: float, seconds: float
) -> MixResult:
    """Turn a backend outcome into a result: recompute the revenue, re-check the plan, set the status."""
    extra = dict(outcome.extra)
    extra["nodes"] = float(outcome.nodes)
    if outcome.change is None:
        message = outcome.message
        if outcome.status == Status.INFEASIBLE:
            message = _infeasible_message(problem, message)
        certificate = Certificate(
            outcome.status, None, outcome.bound, seconds, solver, outcome.iterations, message=message, extra=extra
        )
        return MixResult(problem, certificate, None, formulation, outcome.root_bound, extra)
    change = snap(problem, outcome.change)
    objective = problem.revenue(change)
    feasibility = check_plan(problem, change)
    bound = outcome.bound
    if bound is not None and math.isfinite(bound):
        bound = max(bound, objective)  # a bound below a feasible plan's revenue is only solver tolerance
    current = relative_gap(objective, bound)
    status = Status.OPTIMAL if current is not None and current <= gap * (1 + 1e-9) else Status.FEASIBLE
    message = outcome.message
    if not feasibility.ok:
        status = Status.ERROR
        message = f"the plan fails the re-check: {'; '.join(feasibility.violations[:3])}"
    certificate = Certificate(
        status, objective, bound, seconds, solver, outcome.iterations, feasibility, message, extra
    )
    return MixResult(problem, certificate, change, formulation, outcome.root_bound, extra)


def _baseline_only(problem: MixProblem, formulation: str, solver: str, start: float) -> MixResult:
    """K = 0 (or nothing can move): the baseline is the only candidate plan."""
    change = np.zeros(problem.n)
    feasibility = check_plan(problem, change)
    seconds = time.perf_counter() - start
    if not feasibility.ok:
        names = [v.split(" violated")[0] for v in feasibility.violations]
        message = "no activity may change and the baseline breaks: " + ", ".join(names)
        certificate = Certificate(Status.INFEASIBLE, None, None, seconds, solver, 0, feasibility, message)
        return MixResult(problem, certificate, None, formulation)
    value = problem.revenue(change)
    certificate = Certificate(
        Status.OPTIMAL, value, value, seconds, solver, 0, feasibility, "baseline (no change allowed)"
    )
    return MixResult(problem, certificate, change, formulation, value)


def _infeasible_message(problem: MixProblem, message: str) -> str:
    names = conflicting_rows(problem)
    if names:
        return "infeasible: " + ", ".join(names) + " cannot hold within the spend bounds"
    return "infeasible: the budget and rules cannot hold together with the minimum changes and max_changes" + (
        f" ({message})" if message else ""
    )
