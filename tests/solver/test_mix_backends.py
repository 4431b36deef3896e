"""Cross-checks between backends on medium instances, root bounds, generator and Pareto sweep."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dmplan.solver.common import Progress, Status
from dmplan.solver.mix import available_solvers, check_plan, solve
from dmplan.solver.mix.generator import InstanceSpec, paper_instance, retailer_instance
from dmplan.solver.mix.pareto import k_values, pareto_over_changes
from dmplan.solver.mix.relaxation import root_bound


@pytest.fixture(scope="module")
def medium() -> object:
    return paper_instance(InstanceSpec(100, "weak", 0.1, 0.5, 3))


def test_oa_and_scip_agree_on_a_medium_instance(medium: object) -> None:
    oa = solve(medium, solver="oa", gap=1e-6, time_limit=60)  # type: ignore[arg-type]
    scip = solve(medium, solver="scip", gap=1e-5, time_limit=60)  # type: ignore[arg-type]
    assert oa.status == Status.OPTIMAL
    # SCIP measures its gap on its own (slightly cone-violating) solution; ours on the re-checked plan
    assert scip.gap is not None and scip.gap <= 2e-5
    assert oa.objective == pytest.approx(scip.objective, rel=1e-4)
    # each proven bound holds for the other's plan
    assert oa.objective <= scip.bound + 1e-6 * abs(scip.bound)
    assert scip.objective <= oa.bound + 1e-6 * abs(oa.bound)


def test_scip_runs_ipopt_without_metis(medium: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """SCIP's NLP heuristics crash the process through METIS (scipopt/scip#211): our SCIP uses AMD."""
    pyscipopt = pytest.importorskip("pyscipopt")
    seen: dict[str, object] = {}

    class Recording(pyscipopt.Model):  # type: ignore[misc]
        def setParam(self, name: str, value: object) -> None:
            seen[name] = value
            super().setParam(name, value)

    monkeypatch.setattr(pyscipopt, "Model", Recording)
    result = solve(medium, solver="scip", time_limit=30)  # type: ignore[arg-type]
    assert result.status == Status.OPTIMAL
    with open(str(seen["nlpi/ipopt/optfile"])) as options:
        assert options.read().split() == ["mumps_pivot_order", "0"]


def test_miqp_formulation_reaches_the_same_optimum(medium: object) -> None:
    misocp = solve(medium, formulation="misocp", gap=1e-6)  # type: ignore[arg-type]
    miqp = solve(medium, formulation="miqp", gap=1e-6, time_limit=60)  # type: ignore[arg-type]
    assert miqp.objective == pytest.approx(misocp.objective, rel=2e-6)


def test_misocp_root_bound_is_at_least_as_tight(medium: object) -> None:
    optimum = solve(medium, gap=1e-6).objective  # type: ignore[arg-type]
    conic = root_bound(medium, "misocp")  # type: ignore[arg-type]
    quadratic = root_bound(medium, "miqp")  # type: ignore[arg-type]
    assert conic is not None and quadratic is not None and optimum is not None
    assert optimum <= conic * (1 + 1e-6) + 1e-6
    assert conic <= quadratic * (1 + 1e-6) + 1e-6
    # and strictly tighter on this instance: the perspective closes most of the MIQP's root gap
    assert (conic - optimum) < 0.5 * (quadratic - optimum)


def test_oa_root_bound_approximates_the_conic_relaxation(medium: object) -> None:
    result = solve(medium, gap=1e-6)  # type: ignore[arg-type]
    exact = root_bound(medium, "misocp")  # type: ignore[arg-type]
    assert result.root_bound is not None and exact is not None
    assert result.root_bound == pytest.approx(exact, rel=1e-5)


def test_time_limit_and_progress_are_honoured() -> None:
    problem = paper_instance(InstanceSpec(300, "strong", 0.1, 0.2, 4))
    reports: list[Progress] = []
    result = solve(problem, time_limit=3.0, progress=reports.append)
    assert result.certificate.seconds < 3.0 + 2.0  # one round may overrun by its polish
    assert reports and all(r.bound is None or r.objective is None or r.bound >= r.objective - 1e-6 for r in reports)
    assert result.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert check_plan(problem, result.change).ok


def test_warm_start_is_used() -> None:
    problem = paper_instance(InstanceSpec(60, "uncorrelated", 0.05, 0.5, 5))
    first = solve(problem, gap=1e-6)
    again = solve(problem, gap=1e-6, warm_start=first.change)
    assert again.objective == pytest.approx(first.objective, rel=1e-6)


def test_generator_is_deterministic_and_valid() -> None:
    one = paper_instance(InstanceSpec(50, "strong", 0.2, 0.75, 9))
    two = paper_instance(InstanceSpec(50, "strong", 0.2, 0.75, 9))
    np.testing.assert_array_equal(one.b, two.b)
    assert one.max_changes == 38
    np.testing.assert_allclose(one.min_change, 0.2 * one.baseline)
    # strongly correlated: profit = weight + R/10 exactly
    np.testing.assert_allclose((one.b - 0.5) * 1.1 * 100 / 1.5, one.rules[0].weights + 10.0)
    assert one.budget_min == pytest.approx(0.99 * one.baseline.sum())


def test_retailer_case_shape() -> None:
    case = retailer_instance()
    problem = case.problem
    assert problem.n == 3000
    assert 2400 <= len(problem.rules) <= 2800
    assert problem.max_changes == 750
    assert problem.budget_max == pytest.approx(0.9 * problem.baseline.sum())


def test_pareto_sweep_is_monotone_with_a_knee() -> None:
    problem = paper_instance(InstanceSpec(40, "weak", 0.1, 1.0, 6))
    points = pareto_over_changes(problem, points=6, gap=1e-6)
    assert [p.k for p in points] == k_values(40, 6) == [0, 8, 16, 24, 32, 40]
    values = [p.objective for p in points]
    assert all(v is not None for v in values)
    assert all(b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(values))  # type: ignore[operator]
    assert points[-1].revenue_share == pytest.approx(100.0)
    assert sum(p.knee for p in points) == 1
    for p in points[1:]:
        exact = solve(problem.with_max_changes(p.k), gap=1e-6)
        assert p.objective == pytest.approx(exact.objective, rel=2e-6)


def test_available_solvers_lists_open_source_backends() -> None:
    names = available_solvers()
    assert names[:3] == ["oa", "scip", "ecos"]
    assert all(name in ("oa", "scip", "ecos", "gurobi", "mosek") for name in names)


def test_unlicensed_commercial_backend_reports_error_not_crash() -> None:
    problem = paper_instance(InstanceSpec(10, "weak", 0.1, 0.5, 1))
    for name in ("gurobi", "mosek"):
        if name in available_solvers():
            continue
        result = solve(problem, solver=name)
        assert result.status == Status.ERROR
        assert name in result.certificate.message


def test_short_time_limit_returns_a_plan_with_a_valid_bound() -> None:
    # a hard instance (strongly correlated, large minimum change) that oa does not close in 2 s here
    problem = paper_instance(InstanceSpec(1000, "strong", 0.2, 0.75, 11))
    limit = 2.0
    short = solve(problem, time_limit=limit)
    # honoured strictly: HiGHS is interrupted at the deadline; the allowance covers building the model,
    # the plan re-check and a loaded shared machine
    assert short.certificate.seconds < limit + 1.5
    assert short.status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT)
    assert short.bound is not None
    if short.change is not None:
        assert check_plan(problem, short.change).ok
        assert short.bound >= short.objective - 1e-9 * abs(short.objective)
    longer = solve(problem, time_limit=30)
    assert longer.objective is not None
    # the bound proven in 2 s holds for the best plan found with much more time
    assert short.bound >= longer.objective * (1 - 1e-7)
    if short.objective is not None:
        assert short.objective <= longer.bound * (1 + 1e-7)
