"""Fitting response-curve points to the planner's revenue models (``dmplan.solver.mix.curves``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dmplan.solver.common import Status
from dmplan.solver.mix import MixProblem, solve
from dmplan.solver.mix.curves import CurveError, CurvePoints, Reach, apply_curves, evaluate_plan, fit_curve


def hill(spend: np.ndarray, k: float = 100.0, alpha: float = 0.8, top: float = 1000.0) -> np.ndarray:
    return top * spend**alpha / (spend**alpha + k**alpha)


SPEND = np.linspace(0.0, 400.0, 201)


def test_exactly_quadratic_points_give_their_coefficients() -> None:
    spend = np.linspace(50, 200, 16)
    change = spend - 100
    points = CurvePoints("tv", spend, -0.002 * change**2 + 1.5 * change + 300)
    fit = fit_curve(points, Reach(100, 50, 200, 10))
    assert (fit.a, fit.b, fit.c) == pytest.approx((-0.002, 1.5, 300.0), rel=1e-9)
    assert fit.max_error == pytest.approx(0.0, abs=1e-9)
    assert fit.marginal_points == pytest.approx(1.5, rel=1e-6)
    assert fit.convex_range is None


def test_piecewise_error_falls_as_segments_grow_and_beats_the_quadratic() -> None:
    points = CurvePoints("tv", SPEND, hill(SPEND))
    reach = Reach(150, 75, 300, 15)
    quadratic = fit_curve(points, reach, "quadratic")
    errors = [fit_curve(points, reach, "piecewise", k).max_error for k in (4, 8, 16, 32)]
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    assert errors[2] < 0.001 * fit_curve(points, reach).response_at_baseline
    assert errors[1] < quadratic.max_error


@pytest.mark.parametrize("model", ["quadratic", "piecewise"])
@pytest.mark.parametrize("min_change", [0.0, 15.0, 60.0])
def test_fit_is_exact_at_the_baseline_concave_and_rising_where_the_points_rise(model: str, min_change: float) -> None:
    points = CurvePoints("tv", SPEND, hill(SPEND, alpha=0.6))
    reach = Reach(150, 75, 300, min_change)
    fit = fit_curve(points, reach, model, 8)  # type: ignore[arg-type]
    assert fit.revenue(0.0) == pytest.approx(float(hill(np.array(150.0), alpha=0.6)), rel=1e-12)
    x = np.linspace(-75, 150, 1001)
    values = fit.revenue(x)
    assert np.all(np.diff(values) >= -1e-9)  # the points rise everywhere
    assert np.all(np.diff(values, 2) <= 1e-9)  # concave


def test_the_fit_may_fall_only_where_the_points_fall() -> None:
    """Over-saturated points (falling above spend 250): the fit rises up to there, then may fall."""
    response = 4 * SPEND - 0.008 * SPEND**2  # peak at 250
    fit = fit_curve(CurvePoints("tv", SPEND, response), Reach(150, 75, 350, 0), "piecewise", 8)
    x = np.linspace(-75, 100, 500)
    assert np.all(np.diff(fit.revenue(x)) >= -1e-9)
    assert fit.revenue(200.0) < fit.revenue(100.0)


def test_s_shaped_points_report_their_convex_range_and_can_raise_the_minimum() -> None:
    points = CurvePoints("tv", SPEND, hill(SPEND, alpha=3.0))
    inflection = 100 * (0.5 ** (1 / 3))  # Hill: K ((alpha - 1) / (alpha + 1))^(1 / alpha) = 79.4
    plain = fit_curve(points, Reach(150, 20, 300, 15), "piecewise")
    assert plain.convex_range is not None
    assert plain.convex_range[0] == 20 and plain.convex_range[1] == pytest.approx(inflection, abs=2.0)
    assert plain.convex_max_error is not None and plain.convex_max_error > 0.05 * plain.response_at_baseline
    raised = fit_curve(points, Reach(150, 20, 300, 15), "piecewise", convex_part="raise_min_spend")
    assert raised.min_spend == plain.convex_range[1] and "inflection" in raised.note
    assert raised.max_error < 0.2 * plain.max_error
    below = fit_curve(points, Reach(60, 20, 300, 5), "piecewise", convex_part="raise_min_spend")
    assert below.min_spend == 60 and below.min_change == pytest.approx(plain.convex_range[1] - 60)


@pytest.mark.parametrize(
    ("spend", "response", "message"),
    [
        ([50, 100], [1, 2], "at least 3"),
        ([50, 100, float("nan")], [1, 2, 3], "not a number"),
        ([50, 100, 100, 200], [1, 2, 2, 3], "two points at spend 100"),
        ([500, 600, 700], [1, 2, 3], "entirely outside"),
        ([60, 100, 200], [1, 2, 3], "does not extrapolate"),
        ([50, 100, 200], [3, 2, 1], "decreases at every point"),
    ],
)
def test_bad_points_get_a_located_error(spend: list[float], response: list[float], message: str) -> None:
    with pytest.raises(CurveError, match=message) as raised:
        fit_curve(CurvePoints("tv", np.array(spend), np.array(response)), Reach(100, 50, 200, 10))
    assert raised.value.table == "Curves" and raised.value.key == "tv" and raised.value.fix


def small_problem(n: int, seed: int) -> tuple[MixProblem, dict[str, CurvePoints], list]:
    """Concave true curves (Hill alpha <= 1, Michaelis-Menten, logistic) with minimum changes and a cap."""
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(50, 150, n)
    truths = []
    for i in range(n):
        kind = i % 3
        top, half = rng.uniform(500, 1500), baseline[i] * rng.uniform(0.5, 2.0)
        if kind == 0:
            alpha = rng.uniform(0.5, 1.0)
            truths.append(lambda s, t=top, h=half, a=alpha: t * s**a / (s**a + h**a))
        elif kind == 1:
            truths.append(lambda s, t=top, h=half: t * s / (s + h))
        else:
            truths.append(lambda s, t=top, h=half: t * (1 - np.exp(-s / h)) / (1 + np.exp(-s / h)))
    curves = {}
    for i in range(n):
        spend = np.linspace(0.4 * baseline[i], 2.1 * baseline[i], 60)
        curves[f"a{i}"] = CurvePoints(f"a{i}", spend, truths[i](spend))
    total = float(baseline.sum())
    problem = MixProblem(
        activity=tuple(curves),
        baseline=baseline,
        min_spend=0.5 * baseline,
        max_spend=2.0 * baseline,
        min_change=0.1 * baseline,
        a=np.zeros(n),
        b=np.zeros(n),
        c=np.zeros(n),
        budget_min=0.95 * total,
        budget_max=total,
        max_changes=max(1, n // 2),
    )
    return problem, curves, truths


def true_optimum(problem: MixProblem, truths: list) -> float:
    """Brute force on the true curves: every region choice, each convex problem solved exactly (a fine grid
    of the multiplier of the budget row: the true curves are separable and concave)."""
    from scipy.optimize import minimize

    best = -np.inf
    lo, hi, m = problem.min_spend - problem.baseline, problem.max_spend - problem.baseline, problem.min_change
    options = [[(0.0, 0.0), (lo[i], -m[i]), (m[i], hi[i])] for i in range(problem.n)]
    base = sum(float(t(s)) for t, s in zip(truths, problem.baseline, strict=True))
    total = float(problem.baseline.sum())
    for combo in itertools.product(*options):
        if sum(1 for box in combo if box != (0.0, 0.0)) > problem.k:
            continue
        lower = np.array([b[0] for b in combo])
        upper = np.array([b[1] for b in combo])
        if lower.sum() > problem.budget_max - total or upper.sum() < problem.budget_min - total:
            continue

        def negative(x: np.ndarray) -> float:
            return -sum(float(t(s + xi)) for t, s, xi in zip(truths, problem.baseline, x, strict=True))

        start = np.clip(np.zeros(problem.n), lower, upper)
        shift = (problem.budget_max - total) - start.sum()
        if shift < 0:
            start = lower.copy()
        solution = minimize(
            negative,
            start,
            bounds=list(zip(lower, upper, strict=True)),
            constraints=[
                {"type": "ineq", "fun": lambda x: problem.budget_max - total - x.sum()},
                {"type": "ineq", "fun": lambda x: x.sum() - (problem.budget_min - total)},
            ],
            method="SLSQP",
            options={"ftol": 1e-12, "maxiter": 500},
        )
        x = np.clip(solution.x, lower, upper)
        if problem.budget_min - total - 1e-6 <= x.sum() <= problem.budget_max - total + 1e-6:
            best = max(best, -negative(x) - base)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_on_fitted_curves_against_brute_force_on_the_true_curves(seed: int) -> None:
    problem, curves, truths = small_problem(4, seed)
    best = true_optimum(problem, truths)
    # a piecewise plan sits on a knot, so its loss is second order in the knot spacing (bench/curves.py
    # measures the shares over many instances; here one small instance each)
    for model, segments, share in (("piecewise", 16, 0.99), ("piecewise", 32, 0.995), ("quadratic", 8, 0.8)):
        fitted, fits = apply_curves(problem, curves, model, segments)  # type: ignore[arg-type]
        result = solve(fitted, gap=1e-7)
        assert result.status == Status.OPTIMAL
        lift = sum(float(t(s + x) - t(s)) for t, s, x in zip(truths, problem.baseline, result.change, strict=True))
        assert lift >= share * best - 1e-6, (model, lift, best)
        on_points = evaluate_plan(fitted, result.change, curves)
        assert on_points.points == pytest.approx(lift, rel=1e-2)  # the points interpolate the truth
        assert len(fits) == problem.n


def test_band_lift_is_reported_when_every_curve_has_one() -> None:
    problem, curves, _ = small_problem(3, 5)
    banded = {
        key: CurvePoints(key, p.spend, p.response, 0.9 * p.response, 1.1 * p.response) for key, p in curves.items()
    }
    fitted, _ = apply_curves(problem, banded, "piecewise", 16)
    result = solve(fitted, gap=1e-7)
    lift = evaluate_plan(fitted, result.change, banded)
    assert lift.low is not None and lift.high is not None
    assert lift.low == pytest.approx(0.9 * lift.points, rel=1e-9)
    assert lift.high == pytest.approx(1.1 * lift.points, rel=1e-9)
    assert lift.fitted == pytest.approx(lift.points, rel=1e-2)
