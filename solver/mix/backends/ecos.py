"""``ecos``: the neutral model through cvxpy with ECOS_BB (branch and bound over ECOS's conic solves).

Only for small instances: ECOS_BB is a plain depth-first branch and bound without cuts or presolve, so
it is weak on large ones (in the benchmark it does not finish n = 500 instances within minutes). ECOS_BB
does not expose its dual bound; when it reports optimal, the bound given here is its termination
criterion ``objective + max(abs_eps, rel_eps * |objective|)``, not a separately proven number.
"""

from __future__ import annotations

import numpy as np

from dmplan.solver.common import ProgressCallback
from dmplan.solver.mix.backends.base import BackendOutcome, BackendUnavailable
from dmplan.solver.mix.backends.cvx import ABS_EPS, solve_with_cvxpy
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem


def check_available() -> None:
    """Raise :class:`BackendUnavailable` when cvxpy or ECOS_BB is missing."""
    try:
        import cvxpy as cp
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise BackendUnavailable("cvxpy is not installed") from error
    if "ECOS_BB" not in cp.installed_solvers():  # pragma: no cover
        raise BackendUnavailable("cvxpy has no ECOS_BB solver (pip install ecos)")


def solve(
    problem: MixProblem,
    model: ConicModel,
    *,
    time_limit: float | None,
    gap: float,
    progress: ProgressCallback | None,
    warm_start: np.ndarray | None,
) -> BackendOutcome:
    """Solve the neutral ``model`` with cvxpy + ECOS_BB (``mi_rel_eps = gap``); no time limit, no warm start.

    Parameters
    ----------
    problem, model:
        The problem and its formulation.
    time_limit:
        Not enforced: ECOS_BB has only an iteration cap.
    gap:
        ECOS_BB's relative gap ``mi_rel_eps``.
    progress:
        Called once at the end.
    warm_start:
        Ignored.

    Returns
    -------
    BackendOutcome
    """
    options: dict[str, object] = {"mi_rel_eps": gap, "mi_abs_eps": ABS_EPS, "mi_max_iters": 100000}
    return solve_with_cvxpy(
        problem, model, time_limit=time_limit, gap=gap, progress=progress, solver="ECOS_BB", options=options
    )
