"""What every mix backend returns: the raw outcome before the common re-check and certificate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from dmplan.solver.common import Progress, ProgressCallback, Status


class BackendUnavailable(RuntimeError):
    """The backend's library or licence is missing."""


@dataclass
class BackendOutcome:
    """Raw result of a backend.

    ``status`` is only INFEASIBLE, TIME_LIMIT or ERROR when there is no plan; with a plan the caller
    decides OPTIMAL / FEASIBLE from the recomputed objective and ``bound``.
    """

    status: Status
    change: np.ndarray | None = None
    bound: float | None = None
    iterations: int = 0
    nodes: int = 0
    message: str = ""
    root_bound: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Clock:
    """Wall clock of one solve with an optional limit."""

    limit: float | None
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return float("inf") if self.limit is None else self.limit - self.elapsed()


def report(
    progress: ProgressCallback | None, clock: Clock, objective: float | None, bound: float | None, message: str
) -> None:
    """Send a progress report when a callback is given."""
    if progress is not None:
        fraction = None if clock.limit is None else min(1.0, clock.elapsed() / max(clock.limit, 1e-9))
        progress(Progress(clock.elapsed(), objective, bound, fraction, message))
