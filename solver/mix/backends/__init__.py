"""Solver adapters of the mix model. Each exposes ``solve(problem, model, *, time_limit, gap, progress,
warm_start) -> BackendOutcome`` and is imported only when used."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dmplan.solver.mix.backends.base import BackendOutcome, BackendUnavailable

#: backend name -> module; ``oa`` first (fastest exact), commercial ones last
BACKENDS: dict[str, str] = {
    "oa": "dmplan.solver.mix.backends.oa",
    "scip": "dmplan.solver.mix.backends.scip",
    "ecos": "dmplan.solver.mix.backends.ecos",
    "gurobi": "dmplan.solver.mix.backends.gurobi",
    "mosek": "dmplan.solver.mix.backends.mosek",
}


def load_backend(name: str) -> Callable[..., BackendOutcome]:
    """The ``solve`` function of a backend; raises :class:`BackendUnavailable` when it cannot run here."""
    module: Any = importlib.import_module(BACKENDS[name])
    check = getattr(module, "check_available", None)
    if check is not None:
        check()
    return module.solve  # type: ignore[no-any-return]


def available_backends() -> list[str]:
    """Names of the backends whose library (and licence) is usable here."""
    names = []
    for name in BACKENDS:
        try:
            load_backend(name)
        except (BackendUnavailable, ImportError):
            continue
        names.append(name)
    return names


__all__ = ["BACKENDS", "BackendOutcome", "BackendUnavailable", "available_backends", "load_backend"]
