"""A concave piecewise-linear revenue (``Piecewise``) is exact in every backend and both formulations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmplan.solver.common import InputError, Status
from dmplan.solver.mix import MixProblem, brute_force, check_plan, formulate, solve
from dmplan.solver.mix.generator import random_small, with_random_piecewise
from dmplan.solver.mix.model import Piecewise


def piecewise_instance(n: int, seed: int) -> MixProblem:
    rng = np.random.default_rng(seed)
    return with_random_piecewise(random_small(rng, n), rng)


def assert_matches_oracle(problem: MixProblem, solver: str, formulation: str, tolerance: float) -> None:
    oracle = brute_force(problem)
    result = solve(problem, solver=solver, formulation=formulation, gap=1e-7)
    if oracle.status == Status.INFEASIBLE:
        assert result.status == Status.INFEASIBLE, result.certificate.message
        return
    assert result.objective == pytest.approx(oracle.objective, rel=tolerance, abs=tolerance)
    assert result.bound is not None and result.bound >= oracle.objective - 1e-6 * max(1.0, abs(oracle.objective))
    assert check_plan(problem, result.change).ok
    assert result.changes <= problem.k


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 6), seed=st.integers(0, 2**32 - 1), formulation=st.sampled_from(["misocp", "miqp"]))
def test_oa_matches_oracle_on_piecewise_revenue(n: int, seed: int, formulation: str) -> None:
    assert_matches_oracle(piecewise_instance(n, seed), "oa", formulation, 2e-6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), formulation=st.sampled_from(["misocp", "miqp"]))
def test_scip_matches_oracle_on_piecewise_revenue(n: int, seed: int, formulation: str) -> None:
    assert_matches_oracle(piecewise_instance(n, seed), "scip", formulation, 1e-5)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_ecos_matches_oracle_on_piecewise_revenue(n: int, seed: int) -> None:
    problem = piecewise_instance(n, seed)
    oracle = brute_force(problem)
    result = solve(problem, solver="ecos", gap=1e-7)
    if oracle.status == Status.INFEASIBLE:
        assert result.status == Status.INFEASIBLE
        return
    assert result.objective == pytest.approx(oracle.objective, rel=1e-5, abs=1e-5)


def test_piecewise_optimum_by_hand() -> None:
    """One activity, change in {0} or [10, 40] (min change 10): g = min(3x, 20 + x) peaks at x = 40 with 60;
    a second activity pays for it at slope 0.5 (budget fixed), so the optimum moves 40 for 60 - 20 = 40."""
    problem = MixProblem(
        activity=("tv", "web"),
        baseline=np.array([50.0, 50.0]),
        min_spend=np.array([50.0, 0.0]),
        max_spend=np.array([90.0, 50.0]),
        min_change=np.array([10.0, 10.0]),
        a=np.zeros(2),
        b=np.array([0.0, 0.5]),
        c=np.array([5.0, 7.0]),
        budget_min=100.0,
        budget_max=100.0,
        piecewise=(Piecewise([3.0, 1.0], [0.0, 20.0]), None),
    )
    for solver in ("oa", "scip"):
        result = solve(problem, solver=solver, gap=1e-9)
        assert result.status == Status.OPTIMAL
        assert result.change == pytest.approx([40.0, -40.0], abs=1e-6)
        assert result.objective == pytest.approx(12.0 + 40.0, abs=1e-6)
    assert problem.revenue(np.array([10.0, -10.0])) == pytest.approx(12.0 + 30.0 - 5.0)


def test_perspective_rows_keep_only_the_lines_active_on_a_piece() -> None:
    """The decrease piece [-40, -10] only touches line 0 (slope 3), the increase piece [10, 40] both lines."""
    problem = MixProblem(
        activity=("tv",),
        baseline=np.array([50.0]),
        min_spend=np.array([10.0]),
        max_spend=np.array([90.0]),
        min_change=np.array([10.0]),
        a=np.zeros(1),
        b=np.zeros(1),
        c=np.zeros(1),
        piecewise=(Piecewise([3.0, 1.0], [0.0, 20.0]),),
    )
    model = formulate(problem, "misocp")
    assert sum(name.startswith("piecewise revenue") for name in model.row_names) == 1 + 2


def test_piecewise_revenue_must_vanish_at_no_change() -> None:
    with pytest.raises(InputError, match="at no change"):
        MixProblem(
            activity=("tv",),
            baseline=np.array([50.0]),
            min_spend=np.array([10.0]),
            max_spend=np.array([90.0]),
            min_change=np.array([10.0]),
            a=np.zeros(1),
            b=np.zeros(1),
            c=np.zeros(1),
            piecewise=(Piecewise([3.0, 1.0], [1.0, 20.0]),),
        )


def test_knots_must_be_concave() -> None:
    with pytest.raises(ValueError, match="not concave"):
        Piecewise.from_knots(np.array([-1.0, 0.0, 1.0]), np.array([-1.0, 0.0, 2.0]))
    curve = Piecewise.from_knots(np.array([-1.0, 0.0, 2.0]), np.array([-2.0, 0.0, 1.0]))
    assert curve(np.array([-1.0, 0.0, 1.0, 2.0])) == pytest.approx([-2.0, 0.0, 0.5, 1.0])


def test_envelope_keeps_exactly_the_lines_that_are_the_minimum_somewhere() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        curve = Piecewise(rng.normal(size=12), rng.normal(size=12))
        lines, kinks = curve.envelope()
        assert np.all(np.diff(kinks) > 0)
        x = np.linspace(-50, 50, 20001)
        values = curve.intercept[:, None] + curve.slope[:, None] * x[None, :]
        winners = set(np.argmin(values, axis=0).tolist())
        assert set(lines.tolist()) >= winners  # every line that wins on the grid is kept
        kept = curve.intercept[lines][:, None] + curve.slope[lines][:, None] * x[None, :]
        np.testing.assert_allclose(kept.min(axis=0), values.min(axis=0))
        # and only those: each kept line is the strict minimum inside its stretch of the envelope
        left = np.concatenate([[kinks[0] - 1.0], kinks]) if kinks.size else np.array([0.0])
        right = np.concatenate([kinks, [kinks[-1] + 1.0]]) if kinks.size else np.array([1.0])
        middle = 0.5 * (left + right)
        at = curve.intercept[:, None] + curve.slope[:, None] * middle[None, :]
        assert np.argmin(at, axis=0).tolist() == lines.tolist()
    dominated = Piecewise([2.0, 1.0, 0.0], [0.0, 5.0, 0.0])  # 1 x + 5 lies above min(2x, 0) everywhere
    assert dominated.envelope()[0].tolist() == [0, 2]
    assert dominated.active(-1.0, 1.0).tolist() == [0, 2]
    assert dominated.active(1.0, 2.0).tolist() == [2]


def test_box_problem_with_piecewise_revenue_agrees_between_active_set_and_interior_point() -> None:
    """oa polishes inside HiGHS callbacks with the interior-point path: both paths give the same optimum."""
    from dmplan.solver.mix import regions
    from dmplan.solver.mix.qp import solve_box_qp

    checked = 0
    for seed in range(30):
        problem = piecewise_instance(5, seed)
        reg = regions(problem)
        lower = np.where(reg.movable, reg.dec_lo, 0.0)
        upper = np.where(reg.movable, reg.inc_hi, 0.0)
        exact = solve_box_qp(problem, lower, upper)
        inner = solve_box_qp(problem, lower, upper, interior_point=True)
        assert (exact is None) == (inner is None)
        if exact is None or inner is None:
            continue
        checked += 1
        assert problem.revenue(inner) == pytest.approx(problem.revenue(exact), rel=1e-6, abs=1e-6)
    assert checked >= 10
