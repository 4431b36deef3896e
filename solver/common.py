"""Types shared by every model: solve status, the certificate of a result, progress and input errors."""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def seconds_until(deadline: float | None) -> float | None:
    """Seconds from now until ``deadline`` (a ``time.perf_counter`` instant; None: no limit), at least 0.01: a
    solver's time limit, where 0 or a negative value would mean none or fail."""
    return None if deadline is None else max(0.01, deadline - time.perf_counter())


class Status(enum.StrEnum):
    """Outcome of a solve, shared by every model and backend."""

    OPTIMAL = "optimal"  #: proven optimal within the requested gap
    FEASIBLE = "feasible"  #: a plan was found but the gap is not closed (time limit)
    INFEASIBLE = "infeasible"  #: proven that no plan satisfies the constraints
    TIME_LIMIT = "time_limit"  #: time limit reached without any plan
    ERROR = "error"  #: the backend failed

    @property
    def has_plan(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE)


class InputError(ValueError):
    """Bad model input, with where it is and what would fix it.

    ``table``, ``key`` and ``column`` locate the offending value in the model's own
    terms (table name of the workbook contract, row id such as a segment id, column
    name). The workbook layer turns them into a sheet, row and column of the user's file.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        key: str | None = None,
        column: str | None = None,
        fix: str | None = None,
        where: str | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.table = table
        self.key = key
        self.column = column
        self.fix = fix
        super().__init__(self.describe())

    def describe(self, where: str | None = None) -> str:
        """The full message; ``where`` replaces the model-level location when given."""
        where = where or self.where
        if where is None:
            parts = []
            if self.table:
                parts.append(f"table {self.table}")
            if self.key is not None:
                parts.append(f"row {self.key!r}")
            if self.column:
                parts.append(f"column {self.column!r}")
            where = ", ".join(parts)
        text = f"{where}: {self.message}" if where else self.message
        if self.fix:
            text += f" {self.fix}"
        return text


@dataclass(frozen=True)
class FeasibilityCheck:
    """Re-check of a returned plan against the original (un-reformulated) constraints."""

    max_violation: float
    tolerance: float
    violations: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.max_violation <= self.tolerance


class ViolationLog:
    """Collects constraint violations while a plan is re-checked."""

    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.max_violation = 0.0
        self.violations: list[str] = []

    def check(self, name: str, violation: float) -> None:
        """Record ``violation`` (positive when the constraint ``name`` is broken)."""
        if violation > self.max_violation:
            self.max_violation = float(violation)
        if violation > self.tolerance:
            self.violations.append(f"{name} violated by {violation:.6g}")

    def result(self) -> FeasibilityCheck:
        return FeasibilityCheck(self.max_violation, self.tolerance, tuple(self.violations))


@dataclass(frozen=True)
class Progress:
    """A progress report sent by long solves to the caller's callback."""

    seconds: float
    objective: float | None = None
    bound: float | None = None
    fraction: float | None = None  #: share of the work done (0..1) when known
    message: str = ""

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.bound)


ProgressCallback = Callable[[Progress], None]


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """Relative gap ``|bound - objective| / max(1, |bound|)`` of a maximisation, or None."""
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return None
    return max(0.0, bound - objective) / max(1.0, abs(bound))


@dataclass(frozen=True)
class Certificate:
    """What every optimisation result carries: status, objective, proven bound, gap, re-check."""

    status: Status
    objective: float | None
    bound: float | None
    seconds: float
    solver: str
    iterations: int = 0  #: simplex iterations, branch-and-bound nodes or cut rounds
    feasibility: FeasibilityCheck | None = None
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.bound)
