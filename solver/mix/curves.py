"""Response curves from marketing-mix models (points per activity) fitted to the planner's revenue models.

A user's curve is a list of points (total spend, total response over the planning horizon, optionally a
credible band ``response_lo``/``response_hi``) per activity, e.g. Meridian's ``response_curves`` table or a
Robyn import (:mod:`dmplan.addin.mmm`). The planner needs a concave revenue of the change ``x = spend -
baseline``; this module fits one:

- ``quadratic``: ``a x^2 + b x + c`` (the paper's model, ``a <= 0``), least squares on the points;
- ``piecewise``: a concave piecewise-linear ``g(x)`` with ``segments`` pieces (:class:`Piecewise`), least
  squares on the linear interpolation of the points, which the solver models exactly.

Both fits use only the *reachable* set ``[min - baseline, -m] ∪ {0} ∪ [m, max - baseline]`` (a change inside
``(-m, m)`` other than 0 never happens), are exact at the baseline (``c`` is the response there, ``g(0) = 0``),
concave, and never decreasing where the points do not decrease. An S-shaped curve (convex at low spend) has
no concave fit: its convex range is found and reported with the fit error there, and ``convex_part =
"raise_min_spend"`` keeps the plan out of it (the activity may not go below the spend where the points are
steepest). Nothing here imports a solver or an Excel library: numpy and scipy only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import lsq_linear

from dmplan.solver.common import InputError
from dmplan.solver.mix.model import MixProblem, Piecewise

TABLE = "Curves"
REVENUE_MODELS = ("quadratic", "piecewise")
CONVEX_PARTS = ("fit", "raise_min_spend")
DEFAULT_SEGMENTS = 8
MIN_POINTS = 3
#: samples of the points' linear interpolation per unit of reachable range share for the piecewise fit
GRID = 400
#: points of the curvature measure that places a piecewise fit's knots, and its share of plain length
CURVATURE_GRID = 4000
UNIFORM_SHARE = 0.2
#: slopes closer than this (relative) count as equal when looking for convex stretches
SLOPE_TOLERANCE = 1e-9

RevenueModel = Literal["quadratic", "piecewise"]
ConvexPart = Literal["fit", "raise_min_spend"]


class CurveError(InputError):
    """Bad curve points; ``row`` is the data row (0-based, in the order given) of the offending point."""

    def __init__(self, message: str, *, key: str, row: int | None, column: str | None = None, fix: str) -> None:
        self.row = row
        super().__init__(message, table=TABLE, key=key, column=column, fix=fix)


@dataclass(frozen=True)
class CurvePoints:
    """The points of one activity's response curve (spend and response are horizon totals).

    ``rows`` are the points' data rows in the user's table (for located errors); by default 0, 1, ...
    """

    activity: str
    spend: np.ndarray
    response: np.ndarray
    response_lo: np.ndarray | None = None
    response_hi: np.ndarray | None = None
    rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("spend", "response", "response_lo", "response_hi"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, np.asarray(value, dtype=float).ravel())
        if not self.rows:
            object.__setattr__(self, "rows", tuple(range(self.spend.size)))

    def sorted(self) -> CurvePoints:
        """The points in increasing spend."""
        order = np.argsort(self.spend, kind="stable")
        return CurvePoints(
            self.activity,
            self.spend[order],
            self.response[order],
            None if self.response_lo is None else self.response_lo[order],
            None if self.response_hi is None else self.response_hi[order],
            tuple(self.rows[j] for j in order),
        )

    def at(self, spend: np.ndarray | float, which: str = "response") -> np.ndarray:
        """The points' linear interpolation at ``spend`` (``which``: response, response_lo or response_hi)."""
        values = getattr(self, which)
        if values is None:
            raise ValueError(f"{self.activity}: no {which}")
        order = np.argsort(self.spend, kind="stable")
        return np.interp(np.asarray(spend, dtype=float), self.spend[order], values[order])


@dataclass(frozen=True)
class CurveFit:
    """One activity's fitted revenue and how well it matches the points.

    Errors are measured on the points inside the reachable set and at its ends (interpolated), as absolute
    response and as a share of the response at the baseline.
    """

    activity: str
    model: RevenueModel
    baseline: float
    response_at_baseline: float
    a: float  #: quadratic fit (0 for piecewise)
    b: float
    c: float  #: the response at the baseline (both models)
    piecewise: Piecewise | None  #: piecewise fit of the change
    knots: np.ndarray  #: piecewise fit: spend at the knots (empty for quadratic)
    knot_response: np.ndarray  #: piecewise fit: fitted response at the knots
    max_error: float
    rms_error: float
    max_error_share: float  #: max_error / |response at baseline|
    rms_error_share: float
    marginal_points: float  #: slope of the points at the baseline (mean of left and right slopes)
    marginal_fit: float  #: slope of the fit at the baseline (mean of left and right slopes)
    convex_range: tuple[float, float] | None  #: spend range where the points are convex (within the bounds)
    convex_max_error: float | None  #: worst fit error inside the convex range
    min_spend: float  #: the activity's bounds after ``convex_part`` (equal to the input otherwise)
    min_change: float
    note: str = ""

    def revenue(self, change: np.ndarray | float) -> np.ndarray:
        """The fitted response at a change (the baseline's response included)."""
        x = np.asarray(change, dtype=float)
        if self.piecewise is not None:
            return self.c + self.piecewise(x)
        return self.a * x * x + self.b * x + self.c


@dataclass(frozen=True)
class Reach:
    """Where an activity's spend can go: ``[min_spend, baseline - m] ∪ {baseline} ∪ [baseline + m, max_spend]``."""

    baseline: float
    min_spend: float
    max_spend: float
    min_change: float

    def intervals(self) -> list[tuple[float, float]]:
        """The reachable changes as intervals (the keep point ``0`` as ``(0, 0)``), increasing."""
        lo, hi, m = self.min_spend - self.baseline, self.max_spend - self.baseline, self.min_change
        if m <= 0:
            return [(lo, hi)]
        parts = []
        if lo <= -m and lo < 0:
            parts.append((lo, -m))
        parts.append((0.0, 0.0))
        if hi >= m and hi > 0:
            parts.append((m, hi))
        return parts


def check_points(points: CurvePoints, reach: Reach) -> CurvePoints:
    """Validate one activity's points against its bounds; returns them sorted by spend.

    Raises
    ------
    CurveError
        Fewer than 3 points, a missing or non-finite number, two points at the same spend, a band that does
        not contain the response, points that do not cover the reachable spend range (so the fit would
        extrapolate), or a curve that decreases everywhere.
    """
    key = points.activity
    if points.spend.size < MIN_POINTS:
        raise CurveError(
            f"has {points.spend.size} point(s); a curve needs at least {MIN_POINTS}.",
            key=key,
            row=points.rows[0] if points.rows else None,
            column="spend",
            fix="Add points over the activity's spend range (e.g. 0.5x to 2x of its baseline spend).",
        )
    for name in ("spend", "response", "response_lo", "response_hi"):
        values = getattr(points, name)
        if values is None:
            continue
        if values.shape != points.spend.shape:
            raise CurveError(
                f"has {values.size} {name} values for {points.spend.size} points.",
                key=key,
                row=None,
                column=name,
                fix="Give every point one value.",
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise CurveError(
                f"{name} is missing or not a number.",
                key=key,
                row=points.rows[bad[0]],
                column=name,
                fix="Enter a number.",
            )
    bad = np.flatnonzero(points.spend < 0)
    if bad.size:
        raise CurveError(
            f"spend {points.spend[bad[0]]:g} is negative.",
            key=key,
            row=points.rows[bad[0]],
            column="spend",
            fix="Spend is the horizon's total spend, 0 or more.",
        )
    ordered = points.sorted()
    same = np.flatnonzero(np.diff(ordered.spend) == 0)
    if same.size:
        j = int(same[0]) + 1
        raise CurveError(
            f"has two points at spend {ordered.spend[j]:g} (rows {ordered.rows[j - 1] + 1} and {ordered.rows[j] + 1} "
            "of the activity's points).",
            key=key,
            row=ordered.rows[j],
            column="spend",
            fix="Keep one point per spend value.",
        )
    if ordered.response_lo is not None and ordered.response_hi is not None:
        outside = np.flatnonzero(
            (ordered.response_lo > ordered.response + 1e-12 * np.abs(ordered.response))
            | (ordered.response_hi < ordered.response - 1e-12 * np.abs(ordered.response))
        )
        if outside.size:
            j = int(outside[0])
            raise CurveError(
                f"band [{ordered.response_lo[j]:g}, {ordered.response_hi[j]:g}] does not contain the response "
                f"{ordered.response[j]:g}.",
                key=key,
                row=ordered.rows[j],
                column="response_lo",
                fix="Make response_lo <= response <= response_hi.",
            )
    first, last = float(ordered.spend[0]), float(ordered.spend[-1])
    if last < reach.min_spend or first > reach.max_spend:
        raise CurveError(
            f"points cover spend {first:g} to {last:g}, entirely outside the activity's bounds "
            f"[{reach.min_spend:g}, {reach.max_spend:g}].",
            key=key,
            row=ordered.rows[0],
            column="spend",
            fix="Check that spend is the horizon's total spend in the Activities table's currency.",
        )
    if first > reach.min_spend or last < reach.max_spend:
        raise CurveError(
            f"points cover spend {first:g} to {last:g} but the activity can go from {reach.min_spend:g} to "
            f"{reach.max_spend:g}; DMPlan does not extrapolate a curve.",
            key=key,
            row=ordered.rows[0] if first > reach.min_spend else ordered.rows[-1],
            column="spend",
            fix="Add points out to the bounds, or narrow min_spend / max_spend in Activities to the points' range.",
        )
    if np.all(np.diff(ordered.response) < 0):
        raise CurveError(
            "response decreases at every point: more spend never helps, which a response curve cannot mean.",
            key=key,
            row=ordered.rows[0],
            column="response",
            fix="Check the column order (spend, response) and the sign of the response.",
        )
    return ordered


def convex_range(points: CurvePoints) -> tuple[float, float] | None:
    """The spend range where the (sorted) points bend upwards, or None when they are concave.

    It runs from the left end of the first segment followed by a steeper one to the left end of the steepest
    segment (the inflection spend of an S-shaped curve, as far as the points tell).
    """
    slopes = np.diff(points.response) / np.diff(points.spend)
    scale = max(1e-300, float(np.max(np.abs(slopes))))
    rising = np.flatnonzero(np.diff(slopes) > SLOPE_TOLERANCE * scale)
    if rising.size == 0:
        return None
    steepest = int(np.argmax(slopes))
    start = int(rising[0])
    if steepest <= start:
        # a later convex kink after the steepest segment: the range runs to that kink
        return float(points.spend[start]), float(points.spend[int(rising[-1]) + 1])
    return float(points.spend[start]), float(points.spend[steepest])


def _samples(points: CurvePoints, reach: Reach) -> np.ndarray:
    """Changes where a fit is measured: the points inside the reachable set and its interval ends."""
    x = points.spend - reach.baseline
    keep = np.zeros(x.size, dtype=bool)
    ends: list[float] = []
    for lo, hi in reach.intervals():
        keep |= (x >= lo - 1e-12 * max(1.0, abs(lo))) & (x <= hi + 1e-12 * max(1.0, abs(hi)))
        ends += [lo, hi]
    return np.unique(np.concatenate([x[keep], ends]))


def _grid(points: CurvePoints, reach: Reach, segments: int = 1) -> np.ndarray:
    """A dense grid of the reachable set (uniform in change) plus the samples: the piecewise fit's targets
    (at least ``GRID`` points and 8 per segment)."""
    parts = [_samples(points, reach)]
    total = sum(hi - lo for lo, hi in reach.intervals())
    size = max(GRID, 8 * segments)
    for lo, hi in reach.intervals():
        if hi > lo:
            parts.append(np.linspace(lo, hi, max(2, int(size * (hi - lo) / max(total, 1e-300)))))
    return np.unique(np.concatenate(parts))


def _rising_until(points: CurvePoints, reach: Reach) -> float | None:
    """Largest change up to which the points do not decrease from the lowest reachable spend, or None."""
    lo, hi = reach.min_spend, reach.max_spend
    inside = (points.spend > lo) & (points.spend < hi)
    spend = np.concatenate([[lo], points.spend[inside], [hi]])
    response = points.at(spend)
    falls = np.flatnonzero(np.diff(response) < 0)
    top = hi if falls.size == 0 else float(spend[falls[0]])
    return None if top <= lo else top - reach.baseline


def fit_quadratic(points: CurvePoints, reach: Reach) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``a x^2 + b x ≈ r(baseline + x) - r(baseline)`` on the reachable samples with
    ``a <= 0`` and, where the points rise up to change ``x_r``, a slope ``b + 2 a x_r >= 0``."""
    x = _samples(points, reach)
    target = points.at(reach.baseline + x) - points.at(reach.baseline)
    design = np.stack([x * x, x], axis=1)
    rising = _rising_until(points, reach)
    # the constraints a <= 0 and b + 2 a x_r >= 0 in new variables p = -a >= 0 and q = b + 2 a x_r >= 0
    # (or b free without a rising stretch): bounds only, so scipy's lsq_linear solves it exactly
    if rising is None:
        moved = np.stack([-design[:, 0], design[:, 1]], axis=1)
        p, b = _bounded_lsq(moved, target, np.array([0.0, -np.inf]), np.full(2, np.inf))
        return float(-p), float(b)
    # a = -p, b = q + 2 p x_r
    moved = np.stack([-design[:, 0] + 2 * rising * design[:, 1], design[:, 1]], axis=1)
    p, q = _bounded_lsq(moved, target, np.zeros(2), np.full(2, np.inf))
    return float(-p), float(q + 2 * p * rising)


def _bounded_lsq(design: np.ndarray, target: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``argmin ||design @ p - target||`` over ``lower <= p <= upper``, exactly (scipy's bounded-variable least
    squares), on the QR-reduced problem: the same minimiser, and BVLS then iterates on a k x k system instead
    of the whole grid (700 times faster on a busy machine, where multithreaded BLAS calls on the tall matrix
    spin)."""
    q, r = np.linalg.qr(design)
    return np.asarray(lsq_linear(r, q.T @ target, bounds=(lower, upper), method="bvls").x)


def _bounded_lsq_normal(gram: np.ndarray, moment: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The bounded least squares of :func:`_bounded_lsq` given its normal equations ``gram = D'D``,
    ``moment = D't`` (built sparsely from the hat basis: no tall dense product at all). With ``gram = L L'``,
    ``||D p - t||^2 = ||L' p - L^-1 m||^2 + const``; a ridge of 1e-12 of the mean diagonal keeps ``gram``
    positive definite when a knot interval holds no grid point."""
    ridge = 1e-12 * max(float(np.trace(gram)) / max(gram.shape[0], 1), 1e-300)
    factor = cholesky(gram + ridge * np.eye(gram.shape[0]), lower=True)
    rhs = solve_triangular(factor, moment, lower=True)
    return np.asarray(lsq_linear(factor.T, rhs, bounds=(lower, upper), method="bvls").x)


def _knots(points: CurvePoints, reach: Reach, segments: int) -> np.ndarray:
    """Knots of a piecewise fit in change: ``segments`` pieces over the reachable intervals, plus 0 (the
    baseline, where the fit is exact).

    Knots follow the curvature: the best piecewise-linear approximation of a smooth curve spaces its knots
    with density ``sqrt(|r''|)``, so the knots sit at equal steps of ``∫ sqrt(|r''|) dx`` (measured on the
    points' interpolation, plus a ``UNIFORM_SHARE`` of plain length so that straight stretches get knots
    too). Every non-empty interval gets at least one piece.
    """
    spans = []
    for lo, hi in reach.intervals():
        if lo < 0 < hi:  # a minimum change of 0: the baseline splits the range (the fit is exact there)
            spans += [(lo, 0.0), (0.0, hi)]
        elif hi > lo:
            spans.append((lo, hi))
    length = sum(hi - lo for lo, hi in spans)
    grids, measures = [], []
    for lo, hi in spans:
        x = np.linspace(lo, hi, max(3, int(CURVATURE_GRID * (hi - lo) / length)))
        slope = np.diff(points.at(reach.baseline + x)) / np.diff(x)
        step = x[1] - x[0]
        bend = np.sqrt(np.abs(np.diff(slope)) * step)  # ∫ sqrt(|r''|) over one step, at the inner nodes
        grids.append(x)
        measures.append(np.concatenate([[0.0], np.cumsum(np.concatenate([[0.0], bend]))]))
    curved = sum(float(m[-1]) for m in measures)
    for j, (lo, hi) in enumerate(spans):
        uniform = (np.linspace(0.0, 1.0, grids[j].size) * (hi - lo) / length) * max(curved, 1e-300)
        measures[j] = (1 - UNIFORM_SHARE) * measures[j] + UNIFORM_SHARE * uniform
    total = sum(float(m[-1]) for m in measures)
    counts = [max(1, round(segments * float(m[-1]) / total)) for m in measures]
    while sum(counts) > max(segments, len(spans)):  # rounding gave one too many: take it from the largest
        counts[int(np.argmax(counts))] -= 1
    while sum(counts) < segments:
        share = [float(m[-1]) / c for m, c in zip(measures, counts, strict=True)]
        counts[int(np.argmax(share))] += 1
    parts = []
    for x, measure, count in zip(grids, measures, counts, strict=True):
        inner = np.interp(np.linspace(0.0, float(measure[-1]), count + 1)[1:-1], measure, x)
        parts.append(np.concatenate([[x[0]], inner, [x[-1]]]))
    return np.unique(np.concatenate([*parts, [0.0]]))


def fit_piecewise(points: CurvePoints, reach: Reach, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares concave piecewise-linear fit of ``r(baseline + x) - r(baseline)`` on a dense grid of the
    reachable set; returns the knots (change) and the fit's values there (0 at the knot 0).

    The slopes ``s_1 >= s_2 >= ...`` are written from the last segment that must not fall (the one holding
    the end of the points' rising stretch; the first segment when there is none): ``s_j = e + sum of
    non-negative steps`` to its left and ``e - sum of non-negative steps`` to its right with ``e >= 0``, so
    concavity and the rising rule are plain bounds and scipy's bounded least squares solves it exactly.
    """
    knots = _knots(points, reach, segments)
    grid = _grid(points, reach, segments)
    target = points.at(reach.baseline + grid) - points.at(reach.baseline)
    k = knots.size - 1
    # hat basis: value of the fit at grid point = sum_j value[knot j] * hat_j(grid); value = cumsum of slopes
    width = np.diff(knots)
    zero = int(np.flatnonzero(knots == 0.0)[0])
    # knot values from slopes: v_j = sum over segments between 0 and knot j of +-slope * width
    to_value = np.zeros((k + 1, k))
    for j in range(k + 1):
        if j > zero:
            to_value[j, zero:j] = width[zero:j]
        elif j < zero:
            to_value[j, j:zero] = -width[j:zero]
    place = np.clip(np.searchsorted(knots, grid, side="right") - 1, 0, k - 1)
    share = (grid - knots[place]) / width[place]
    hat = sp.csr_matrix(
        (
            np.stack([1.0 - share, share], axis=1).ravel(),
            (np.repeat(np.arange(grid.size), 2), np.stack([place, place + 1], axis=1).ravel()),
        ),
        shape=(grid.size, k + 1),
    )
    rising = _rising_until(points, reach)
    anchor = 0 if rising is None else int(np.clip(np.searchsorted(knots, rising, side="left") - 1, 0, k - 1))
    # slopes = anchor_value * 1 + steps: parameter 0 is e (the anchor's slope), 1..k-1 the steps
    to_slope = np.zeros((k, k))
    to_slope[:, 0] = 1.0
    for j in range(k):
        for step in range(1, k):
            boundary = step - 1  # step between segment boundary and boundary + 1
            if j <= boundary < anchor:
                to_slope[j, step] = 1.0  # segments left of the anchor are steeper
            elif anchor <= boundary < j:
                to_slope[j, step] = -1.0  # segments right of it are flatter
    basis = to_value @ to_slope
    gram = basis.T @ (hat.T @ hat).toarray() @ basis
    moment = basis.T @ (hat.T @ target)
    lower = np.zeros(k)
    if rising is None:
        lower[0] = -np.inf
    values = basis @ _bounded_lsq_normal(gram, moment, lower, np.full(k, np.inf))
    values[zero] = 0.0
    return knots, values


def fit_curve(
    points: CurvePoints,
    reach: Reach,
    model: RevenueModel = "quadratic",
    segments: int = DEFAULT_SEGMENTS,
    convex_part: ConvexPart = "fit",
) -> CurveFit:
    """Fit one activity's points; see the module docstring.

    Parameters
    ----------
    points:
        The activity's points.
    reach:
        Its baseline, bounds and minimum change (from the Activities table).
    model:
        ``"quadratic"`` or ``"piecewise"``.
    segments:
        Pieces of a piecewise fit over the reachable set.
    convex_part:
        ``"fit"`` (least squares over the whole reachable set, convex part included) or ``"raise_min_spend"``
        (the activity may not go below the inflection spend: its lower bound rises to it, or, when the
        baseline lies below it, the activity may only keep its spend or increase to at least the inflection).

    Returns
    -------
    CurveFit
    """
    if model not in REVENUE_MODELS:
        raise ValueError(f"unknown revenue model {model!r}; use one of {REVENUE_MODELS}")
    if convex_part not in CONVEX_PARTS:
        raise ValueError(f"unknown convex_part {convex_part!r}; use one of {CONVEX_PARTS}")
    ordered = check_points(points, reach)
    convex = convex_range(ordered)
    if convex is not None:
        lo, hi = max(convex[0], reach.min_spend), min(convex[1], reach.max_spend)
        convex = (lo, hi) if hi > lo else None
    note = ""
    if convex is not None and convex_part == "raise_min_spend":
        inflection = convex[1]
        if reach.baseline >= inflection:
            reach = replace(reach, min_spend=max(reach.min_spend, inflection))
            note = f"min_spend raised to the inflection spend {inflection:g}"
        else:
            reach = replace(
                reach, min_spend=reach.baseline, min_change=max(reach.min_change, inflection - reach.baseline)
            )
            note = f"below the inflection spend {inflection:g}: keep or increase to at least {inflection:g}"
    r0 = float(ordered.at(reach.baseline))
    a = b = 0.0
    curve: Piecewise | None = None
    knots = knot_response = np.zeros(0)
    if model == "quadratic":
        a, b = fit_quadratic(ordered, reach)
    else:
        knot_x, knot_v = fit_piecewise(ordered, reach, max(1, int(segments)))
        curve = Piecewise.from_knots(knot_x, knot_v)
        knots, knot_response = reach.baseline + knot_x, r0 + knot_v
    samples = _samples(ordered, reach)
    truth = ordered.at(reach.baseline + samples)
    fit = CurveFit(
        ordered.activity,
        model,
        reach.baseline,
        r0,
        a,
        b,
        r0,
        curve,
        knots,
        knot_response,
        0,
        0,
        0,
        0,
        0,
        0,
        None,
        None,
        reach.min_spend,
        reach.min_change,
        note,
    )
    error = np.abs(fit.revenue(samples) - truth)
    convex_error = None
    if convex is not None:
        grid = _grid(ordered, reach)
        spend = reach.baseline + grid
        inside = (spend >= convex[0]) & (spend <= convex[1])
        if inside.any():
            convex_error = float(np.max(np.abs(fit.revenue(grid[inside]) - ordered.at(spend[inside]))))
    base = max(abs(r0), 1e-300)
    max_error = float(error.max())
    rms_error = float(math.sqrt(float(np.mean(error**2))))
    return replace(
        fit,
        max_error=max_error,
        rms_error=rms_error,
        max_error_share=max_error / base,
        rms_error_share=rms_error / base,
        marginal_points=_marginal(lambda s: ordered.at(s), reach.baseline, ordered.spend),
        marginal_fit=_marginal(lambda s: fit.revenue(np.asarray(s) - reach.baseline), reach.baseline, knots),
        convex_range=convex,
        convex_max_error=convex_error,
    )


def _marginal(f: Callable[[float], object], at: float, kinks: np.ndarray) -> float:
    """Mean of the left and right slopes of a piecewise-smooth function at ``at`` (its derivative when smooth),
    by differences over a step far below the distance between ``kinks``."""
    span = np.diff(np.unique(kinks))
    h = 1e-6 * (float(span.min()) if span.size else max(1.0, abs(at)))
    left = (float(f(at)) - float(f(at - h))) / h  # type: ignore[arg-type]
    right = (float(f(at + h)) - float(f(at))) / h  # type: ignore[arg-type]
    return 0.5 * (left + right)


def apply_curves(
    problem: MixProblem,
    curves: Mapping[str, CurvePoints],
    model: RevenueModel = "quadratic",
    segments: int = DEFAULT_SEGMENTS,
    convex_part: ConvexPart = "fit",
) -> tuple[MixProblem, list[CurveFit]]:
    """``problem`` with every activity that has points revenued by its fit (bounds adjusted by ``convex_part``).

    Activities without points keep their ``a, b, c``. Returns the new problem and the fits in activity order.

    Raises
    ------
    CurveError
        For bad points (see :func:`check_points`), or points of an activity the problem does not have.
    """
    index = {key: i for i, key in enumerate(problem.activity)}
    for key, points in curves.items():
        if key not in index:
            raise CurveError(
                f"activity {key!r} has points but is not in the Activities table.",
                key=key,
                row=points.rows[0] if points.rows else None,
                column="activity",
                fix="Spell the activity as in Activities, or add it there.",
            )
    a, b, c = problem.a.copy(), problem.b.copy(), problem.c.copy()
    low, change = problem.min_spend.copy(), problem.min_change.copy()
    pieces: list[Piecewise | None] = list(problem.piecewise) if problem.piecewise else [None] * problem.n
    fits: list[CurveFit] = []
    for i, key in enumerate(problem.activity):
        if key not in curves:
            continue
        reach = Reach(float(problem.baseline[i]), float(low[i]), float(problem.max_spend[i]), float(change[i]))
        fit = fit_curve(curves[key], reach, model, segments, convex_part)
        fits.append(fit)
        a[i], b[i], c[i] = fit.a, fit.b, fit.c
        pieces[i] = fit.piecewise
        low[i], change[i] = fit.min_spend, fit.min_change
    adjusted = dataclasses.replace(problem, min_spend=low, min_change=change, a=a, b=b, c=c, piecewise=tuple(pieces))
    return adjusted, fits


@dataclass(frozen=True)
class PlanOnCurves:
    """A plan's lift (revenue after minus before) on the fitted model, on the points and on the band."""

    fitted: float
    points: float
    low: float | None
    high: float | None


def evaluate_plan(problem: MixProblem, change: np.ndarray, curves: Mapping[str, CurvePoints]) -> PlanOnCurves:
    """Lift of ``change`` on the fitted ``problem`` and on the points themselves (linear interpolation between
    points; activities without points count with their fitted revenue), and on the band when every curve has one.
    """
    x = np.asarray(change, dtype=float)
    fitted = problem.revenue(x) - problem.revenue(np.zeros(problem.n))
    per_activity = problem.revenues(x) - problem.revenues(np.zeros(problem.n))
    lifts: dict[str, float] = {"response": 0.0, "response_lo": 0.0, "response_hi": 0.0}
    band = bool(curves) and all(p.response_lo is not None and p.response_hi is not None for p in curves.values())
    for i, key in enumerate(problem.activity):
        points = curves.get(key)
        for which in lifts:
            if points is None:
                lifts[which] += float(per_activity[i])
            elif which == "response" or band:
                spend = problem.baseline[i]
                lifts[which] += float(points.at(spend + x[i], which) - points.at(spend, which))
    return PlanOnCurves(
        fitted,
        lifts["response"],
        lifts["response_lo"] if band else None,
        lifts["response_hi"] if band else None,
    )
