"""Marketing-mix adjustment model: input data, validation, feasible regions per activity and plan re-check.

The problem (Huang, Xu & Lim, "Marketing Mix Optimization with Practical Constraints", arXiv 2101.03663):
choose a spend change ``x_i`` per activity to maximise ``sum_i a_i x_i^2 + b_i x_i + c_i + g_i(x_i)``
(``a_i <= 0``; ``g_i`` an optional concave piecewise-linear revenue with ``g_i(0) = 0``, see :class:`Piecewise`)
subject to spend bounds ``min_spend_i <= baseline_i + x_i <= max_spend_i``, a total budget, a minimum
change (``x_i = 0`` or ``|x_i| >= min_change_i``), at most ``K`` changed activities and linear business rules.

Nothing in this module depends on a solver.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from dmplan.solver.common import Certificate, FeasibilityCheck, InputError, Status, ViolationLog

TABLE = "Activities"
RULES_TABLE = "Rules"
SETTINGS_TABLE = "Settings"

#: a change smaller than this share of the activity's spend scale is treated as no change
CHANGE_EPSILON = 1e-9


@dataclass(frozen=True)
class Rule:
    """A business rule ``lower <= sum_i weights[i] * (spend_i or change_i) <= upper``.

    ``on="spend"`` applies the weights to the new spend ``baseline + change``; ``on="change"`` to the
    change itself. ``None`` as a bound means unbounded on that side.
    """

    name: str
    weights: np.ndarray
    lower: float | None
    upper: float | None
    on: Literal["spend", "change"] = "spend"

    def change_bounds(self, baseline: np.ndarray) -> tuple[float, float]:
        """Bounds of ``sum_i weights[i] * change_i`` implied by this rule (``-inf``/``inf`` when open)."""
        shift = float(self.weights @ baseline) if self.on == "spend" else 0.0
        lower = -math.inf if self.lower is None else self.lower - shift
        upper = math.inf if self.upper is None else self.upper - shift
        return lower, upper


@dataclass(frozen=True)
class Piecewise:
    """A concave piecewise-linear revenue of the change: ``g(x) = min_k (intercept[k] + slope[k] x)``.

    A minimum of lines is concave by construction; ``g(0) = 0`` is required (the constant revenue at the
    baseline lives in ``c``), so keeping the baseline adds nothing. In the solver each line becomes the linear
    row ``w <= intercept[k] z + slope[k] y`` of a piece's perspective: exact, with no new binaries.
    """

    slope: np.ndarray
    intercept: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "slope", np.asarray(self.slope, dtype=float).ravel())
        object.__setattr__(self, "intercept", np.asarray(self.intercept, dtype=float).ravel())

    def __call__(self, change: np.ndarray | float) -> np.ndarray:
        x = np.asarray(change, dtype=float)
        return np.min(self.intercept[:, None] + self.slope[:, None] * x.ravel()[None, :], axis=0).reshape(x.shape)

    @property
    def segments(self) -> int:
        return int(self.slope.size)

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """The lines that are the minimum somewhere, left to right, and the kinks between them.

        Returns ``(lines, kinks)``: ``lines[j]`` is the minimum on ``[kinks[j - 1], kinks[j]]`` (the first from
        minus infinity, the last to plus infinity). Lines in decreasing slope (equal slopes: the lowest one);
        a line is dropped when its successor crosses the line before it no later than it does (the usual
        envelope sweep, O(k log k)).
        """
        order = np.lexsort((self.intercept, -self.slope))
        stack: list[int] = []
        for line in order.tolist():
            if stack and self.slope[stack[-1]] == self.slope[line]:
                continue  # same slope, higher or equal intercept: never below the kept one
            while len(stack) >= 2 and self._cross(stack[-2], line) <= self._cross(stack[-2], stack[-1]):
                stack.pop()
            stack.append(line)
        lines = np.asarray(stack, dtype=np.int64)
        kinks = np.array([self._cross(a, b) for a, b in itertools.pairwise(stack)], dtype=float)
        return lines, kinks

    def _cross(self, first: int, second: int) -> float:
        """Where two lines of different slopes cross."""
        return float((self.intercept[second] - self.intercept[first]) / (self.slope[first] - self.slope[second]))

    def active(self, lower: float, upper: float) -> np.ndarray:
        """Lines that are the minimum somewhere on ``[lower, upper]`` (touching an end counts)."""
        lines, kinks = self.envelope()
        left = np.concatenate([[-np.inf], kinks])
        right = np.concatenate([kinks, [np.inf]])
        return lines[(right >= lower) & (left <= upper)]

    @classmethod
    def from_knots(cls, knots: np.ndarray, values: np.ndarray) -> Piecewise:
        """The lines through consecutive knots ``(knots[j], values[j])`` (increasing knots, slopes not increasing).

        Raises ``ValueError`` when the knots are not increasing or the slopes increase (not concave).
        """
        x = np.asarray(knots, dtype=float)
        y = np.asarray(values, dtype=float)
        if x.size < 2 or np.any(np.diff(x) <= 0):
            raise ValueError("knots must be at least two increasing values")
        slope = np.diff(y) / np.diff(x)
        if np.any(np.diff(slope) > 1e-9 * max(1.0, float(np.max(np.abs(slope))))):
            raise ValueError("slopes increase: the knots are not concave")
        return cls(slope, y[:-1] - slope * x[:-1])


#: ``|g(0)|`` a piecewise revenue may show (relative to its largest intercept) and still count as ``g(0) = 0``
PIECEWISE_ZERO_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MixProblem:
    """Input of a marketing-mix adjustment.

    Arrays have one entry per activity (in the order of ``activity``). ``a``, ``b``, ``c`` give the
    revenue of a spend change ``x``: ``a x^2 + b x + c`` with ``a <= 0``. ``budget_min`` and
    ``budget_max`` bound the total new spend ``sum(baseline + x)``; ``max_changes`` (K) caps the number
    of activities whose spend changes (``None``: no cap). ``piecewise`` (empty, or one entry per activity,
    ``None`` for none) adds a concave piecewise-linear revenue ``g_i(x)`` to the quadratic; activities whose
    revenue comes from fitted curve points have ``a = b = 0`` and their curve's pieces here.
    """

    activity: tuple[str, ...]
    baseline: np.ndarray
    min_spend: np.ndarray
    max_spend: np.ndarray
    min_change: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    budget_min: float | None = None
    budget_max: float | None = None
    max_changes: int | None = None
    rules: tuple[Rule, ...] = ()
    piecewise: tuple[Piecewise | None, ...] = ()

    def __post_init__(self) -> None:
        for name in ("baseline", "min_spend", "max_spend", "min_change", "a", "b", "c"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float))
        object.__setattr__(self, "activity", tuple(str(key) for key in self.activity))
        if self.piecewise and all(curve is None for curve in self.piecewise):
            object.__setattr__(self, "piecewise", ())
        validate(self)

    @property
    def n(self) -> int:
        """Number of activities."""
        return len(self.activity)

    @property
    def k(self) -> int:
        """The effective cap on changes (``n`` when unlimited)."""
        return self.n if self.max_changes is None else min(int(self.max_changes), self.n)

    @property
    def scale(self) -> np.ndarray:
        """Per-activity spend scale (for tolerances and internal scaling), at least 1."""
        return np.maximum.reduce(
            [np.ones(self.n), np.abs(self.baseline), np.abs(self.min_spend), np.abs(self.max_spend)]
        )

    def revenue(self, change: np.ndarray) -> float:
        """Total revenue ``sum_i a_i x_i^2 + b_i x_i + c_i + g_i(x_i)`` of a change vector."""
        return float(np.sum(self.revenues(change)))

    def revenues(self, change: np.ndarray) -> np.ndarray:
        """Revenue of every activity at its change."""
        x = np.asarray(change, dtype=float)
        value = self.a * x * x + self.b * x + self.c
        for i, curve in enumerate(self.piecewise):
            if curve is not None:
                value[i] += float(curve(x[i]))
        return value

    def with_max_changes(self, max_changes: int | None) -> MixProblem:
        """A copy of the problem with another cap on the number of changes (every other field, curves included).

        Only the cap is validated again: the rest was when this problem was made. A whole validation takes 13 ms
        on the retailer case, and a Pareto sweep makes about 60 copies (0.8 s of a 3 s sweep).
        """
        changed = copy.copy(self)
        object.__setattr__(changed, "max_changes", max_changes)
        _validate_max_changes(changed)
        return changed


def _validate_max_changes(problem: MixProblem) -> None:
    n = problem.n
    if problem.max_changes is not None and not (
        0 <= int(problem.max_changes) <= n and problem.max_changes == int(problem.max_changes)
    ):
        raise InputError(
            f"max_changes = {problem.max_changes} is outside 0..{n}.",
            table=SETTINGS_TABLE,
            key="max_changes",
            fix=f"Use a whole number between 0 and {n}.",
        )


def validate(problem: MixProblem) -> None:
    """Raise :class:`InputError` naming the first offending row of ``problem``.

    Parameters
    ----------
    problem:
        The problem to check.

    Raises
    ------
    InputError
        For wrong lengths, NaN values, duplicate ids, a baseline outside its bounds, a minimum above the
        maximum, a convex revenue (``a > 0``), a negative minimum change, ``max_changes`` outside ``0..n``
        and rules with the wrong length, NaN weights or ``lower > upper``.
    """
    n = len(problem.activity)
    seen: set[str] = set()
    for key in problem.activity:
        if key in seen:
            raise InputError(
                f"activity id {key!r} appears more than once.",
                table=TABLE,
                key=key,
                column="activity",
                fix="Give every activity a unique id.",
            )
        seen.add(key)
    columns = ("baseline", "min_spend", "max_spend", "min_change", "a", "b", "c")
    for column in columns:
        values = getattr(problem, column)
        if values.shape != (n,):
            raise InputError(
                f"column has {values.size} values for {n} activities.",
                table=TABLE,
                column=column,
                fix="Give every activity exactly one value.",
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(
                "value is missing or not a finite number.",
                table=TABLE,
                key=problem.activity[bad[0]],
                column=column,
                fix="Enter a number.",
            )
    _first_bad(
        problem,
        problem.min_spend > problem.max_spend,
        "min_spend",
        "minimum spend is above the maximum spend.",
        "Make min_spend <= max_spend.",
    )
    _first_bad(
        problem,
        (problem.baseline < problem.min_spend) | (problem.baseline > problem.max_spend),
        "baseline",
        "baseline spend is outside [min_spend, max_spend].",
        "Move the baseline or the bounds.",
    )
    convex = np.flatnonzero(problem.a > 0)
    if convex.size:
        names = ", ".join(repr(problem.activity[i]) for i in convex[:10])
        more = f" and {convex.size - 10} more" if convex.size > 10 else ""
        raise InputError(
            f"revenue is not concave (a > 0) for activities {names}{more}.",
            table=TABLE,
            key=problem.activity[convex[0]],
            column="a",
            fix="Use a <= 0 (diminishing returns).",
        )
    _first_bad(problem, problem.min_change < 0, "min_change", "minimum change is negative.", "Use a value >= 0.")
    _validate_piecewise(problem)
    _validate_max_changes(problem)
    for name in ("budget_min", "budget_max"):
        value = getattr(problem, name)
        if value is not None and not math.isfinite(value):
            raise InputError(f"{name} is not a finite number.", table=SETTINGS_TABLE, key=name, fix="Enter a number.")
    if problem.budget_min is not None and problem.budget_max is not None and problem.budget_min > problem.budget_max:
        raise InputError(
            f"budget_min {problem.budget_min:g} is above budget_max {problem.budget_max:g}.",
            table=SETTINGS_TABLE,
            key="budget_min",
            fix="Make budget_min <= budget_max.",
        )
    rule_names: set[str] = set()
    for rule in problem.rules:
        weights = np.asarray(rule.weights, dtype=float)
        if rule.name in rule_names:
            raise InputError(
                "rule name appears more than once.",
                table=RULES_TABLE,
                key=rule.name,
                column="rule",
                fix="Give every rule a unique name.",
            )
        rule_names.add(rule.name)
        if weights.shape != (n,):
            raise InputError(
                f"rule has {weights.size} weights for {n} activities.",
                table=RULES_TABLE,
                key=rule.name,
                column="column",
                fix="Give one weight per activity.",
            )
        if not np.all(np.isfinite(weights)):
            raise InputError(
                "rule weights contain a missing or non-finite value.",
                table=RULES_TABLE,
                key=rule.name,
                column="column",
                fix="Fill the weight column with numbers.",
            )
        for bound_name in ("lower", "upper"):
            bound = getattr(rule, bound_name)
            if bound is not None and not math.isfinite(bound):
                raise InputError(
                    f"rule {bound_name} is not a finite number.",
                    table=RULES_TABLE,
                    key=rule.name,
                    column=bound_name,
                    fix="Enter a number or leave it blank.",
                )
        if rule.lower is not None and rule.upper is not None and rule.lower > rule.upper:
            raise InputError(
                f"rule lower {rule.lower:g} is above upper {rule.upper:g}.",
                table=RULES_TABLE,
                key=rule.name,
                column="lower",
                fix="Make lower <= upper.",
            )
        if rule.on not in ("spend", "change"):
            raise InputError(
                f"rule applies to {rule.on!r}.",
                table=RULES_TABLE,
                key=rule.name,
                column="on",
                fix="Use 'spend' or 'change'.",
            )


def _validate_piecewise(problem: MixProblem) -> None:
    if not problem.piecewise:
        return
    if len(problem.piecewise) != problem.n:
        raise InputError(
            f"{len(problem.piecewise)} piecewise revenues for {problem.n} activities.",
            table=TABLE,
            fix="Give one piecewise revenue (or None) per activity.",
        )
    for key, curve in zip(problem.activity, problem.piecewise, strict=True):
        if curve is None:
            continue
        if curve.segments == 0 or curve.slope.shape != curve.intercept.shape:
            raise InputError("piecewise revenue has no lines.", table=TABLE, key=key, fix="Give at least one line.")
        if not (np.all(np.isfinite(curve.slope)) and np.all(np.isfinite(curve.intercept))):
            raise InputError(
                "piecewise revenue has a missing or non-finite coefficient.", table=TABLE, key=key, fix="Refit it."
            )
        at_zero = float(curve(0.0))
        if abs(at_zero) > PIECEWISE_ZERO_TOLERANCE * max(1.0, float(np.max(np.abs(curve.intercept)))):
            raise InputError(
                f"piecewise revenue is {at_zero:g} at no change, not 0.",
                table=TABLE,
                key=key,
                fix="Shift the curve so that its value at the baseline lives in c.",
            )


def _first_bad(problem: MixProblem, mask: np.ndarray, column: str, message: str, fix: str) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        raise InputError(message, table=TABLE, key=problem.activity[bad[0]], column=column, fix=fix)


@dataclass(frozen=True)
class Regions:
    """Feasible change regions of every activity (the paper's Table 1).

    Per activity the change lies in the decrease region ``[dec_lo, dec_hi]`` (when ``has_dec``), is zero,
    or lies in the increase region ``[inc_lo, inc_hi]`` (when ``has_inc``). An empty region is dropped.
    With ``min_change = 0`` the regions touch zero and form one interval ``[dec_lo, inc_hi]``.
    """

    dec_lo: np.ndarray
    dec_hi: np.ndarray
    inc_lo: np.ndarray
    inc_hi: np.ndarray
    has_dec: np.ndarray
    has_inc: np.ndarray

    @property
    def movable(self) -> np.ndarray:
        """Activities that can change at all."""
        return self.has_dec | self.has_inc


def regions(problem: MixProblem) -> Regions:
    """Feasible change regions per activity after the paper's Table 1.

    Parameters
    ----------
    problem:
        A validated problem.

    Returns
    -------
    Regions
        Decrease ``[min_spend - baseline, -min_change]`` and increase ``[min_change, max_spend - baseline]``
        intervals; a region is kept only when it is non-empty and contains a non-zero change.
    """
    down = problem.min_spend - problem.baseline  # <= 0
    up = problem.max_spend - problem.baseline  # >= 0
    m = problem.min_change
    has_dec = (down < 0) & (down <= -m)
    has_inc = (up > 0) & (up >= m)
    return Regions(
        dec_lo=np.where(has_dec, down, 0.0),
        dec_hi=np.where(has_dec, -m, 0.0),
        inc_lo=np.where(has_inc, m, 0.0),
        inc_hi=np.where(has_inc, up, 0.0),
        has_dec=has_dec,
        has_inc=has_inc,
    )


def snap(problem: MixProblem, change: np.ndarray) -> np.ndarray:
    """Set changes below ``CHANGE_EPSILON`` times the activity's scale to exactly zero."""
    x = np.array(change, dtype=float)
    x[np.abs(x) < CHANGE_EPSILON * problem.scale] = 0.0
    return x


def region_of(problem: MixProblem, change: np.ndarray) -> np.ndarray:
    """Region of each change: -1 decrease, 0 keep, +1 increase."""
    x = snap(problem, change)
    return np.sign(x).astype(int)


def check_plan(problem: MixProblem, change: np.ndarray, tolerance: float = 1e-6) -> FeasibilityCheck:
    """Re-check a change vector against the original constraints of ``problem``.

    Violations are measured relative to the size of the bound they break (``max(1, |bound|)``).

    Parameters
    ----------
    problem:
        The problem whose constraints are checked.
    change:
        The change per activity.
    tolerance:
        Largest relative violation still accepted.

    Returns
    -------
    FeasibilityCheck
        The largest violation and a description of every violation above the tolerance.
    """
    log = ViolationLog(tolerance)
    x = snap(problem, change)
    if x.shape != (problem.n,) or not np.all(np.isfinite(x)):
        log.check("plan shape", math.inf)
        return log.result()
    spend = problem.baseline + x
    for i, key in enumerate(problem.activity):
        log.check(f"min_spend of {key!r}", (problem.min_spend[i] - spend[i]) / max(1.0, abs(problem.min_spend[i])))
        log.check(f"max_spend of {key!r}", (spend[i] - problem.max_spend[i]) / max(1.0, abs(problem.max_spend[i])))
        if x[i] != 0.0 and problem.min_change[i] > 0:
            log.check(f"min_change of {key!r}", (problem.min_change[i] - abs(x[i])) / max(1.0, problem.min_change[i]))
    total = float(spend.sum())
    if problem.budget_min is not None:
        log.check("budget_min", (problem.budget_min - total) / max(1.0, abs(problem.budget_min)))
    if problem.budget_max is not None:
        log.check("budget_max", (total - problem.budget_max) / max(1.0, abs(problem.budget_max)))
    changes = int(np.count_nonzero(x))
    log.check("max_changes", float(changes - problem.k))
    for rule in problem.rules:
        value = float(rule.weights @ (spend if rule.on == "spend" else x))
        if rule.lower is not None:
            log.check(f"rule {rule.name!r} lower", (rule.lower - value) / max(1.0, abs(rule.lower)))
        if rule.upper is not None:
            log.check(f"rule {rule.name!r} upper", (value - rule.upper) / max(1.0, abs(rule.upper)))
    return log.result()


@dataclass(frozen=True)
class MixResult:
    """Outcome of a mix solve: the certificate and the plan (``change``, ``None`` without a plan)."""

    problem: MixProblem
    certificate: Certificate
    change: np.ndarray | None
    formulation: str
    root_bound: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return self.certificate.status

    @property
    def objective(self) -> float | None:
        return self.certificate.objective

    @property
    def bound(self) -> float | None:
        return self.certificate.bound

    @property
    def gap(self) -> float | None:
        return self.certificate.gap

    @property
    def spend(self) -> np.ndarray | None:
        """New spend per activity."""
        return None if self.change is None else self.problem.baseline + self.change

    @property
    def region(self) -> np.ndarray | None:
        """-1 decrease, 0 keep, +1 increase per activity."""
        return None if self.change is None else region_of(self.problem, self.change)

    @property
    def changes(self) -> int:
        """Number of activities whose spend changes."""
        return 0 if self.change is None else int(np.count_nonzero(snap(self.problem, self.change)))
