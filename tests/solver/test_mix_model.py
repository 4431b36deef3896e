"""Validation, regions, plan re-check and edge cases of the mix model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dmplan.solver.common import InputError, Status
from dmplan.solver.mix import MixProblem, Rule, brute_force, check_plan, regions, solve
from dmplan.solver.mix.api import formulate


def make(**changes: object) -> MixProblem:
    base = {
        "activity": ("tv", "radio", "web"),
        "baseline": np.array([100.0, 50.0, 80.0]),
        "min_spend": np.array([50.0, 50.0, 40.0]),
        "max_spend": np.array([150.0, 80.0, 80.0]),
        "min_change": np.array([10.0, 5.0, 8.0]),
        "a": np.array([-0.01, -0.02, -0.005]),
        "b": np.array([1.0, 1.5, 0.8]),
        "c": np.array([10.0, 5.0, 8.0]),
        "budget_min": 220.0,
        "budget_max": 240.0,
        "max_changes": 2,
    }
    base.update(changes)
    return MixProblem(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "key", "column"),
    [
        ({"baseline": np.array([100.0, 90.0, 80.0])}, "radio", "baseline"),
        ({"min_spend": np.array([50.0, 50.0, 90.0])}, "web", "min_spend"),
        ({"a": np.array([-0.01, 0.02, 0.5])}, "radio", "a"),
        ({"min_change": np.array([10.0, -1.0, 8.0])}, "radio", "min_change"),
        ({"b": np.array([1.0, np.nan, 0.8])}, "radio", "b"),
        ({"activity": ("tv", "radio", "tv")}, "tv", "activity"),
        ({"c": np.array([1.0, 2.0])}, None, "c"),
        ({"max_changes": 4}, "max_changes", None),
        ({"max_changes": -1}, "max_changes", None),
    ],
)
def test_validation_names_the_row(changes: dict[str, object], key: str | None, column: str | None) -> None:
    with pytest.raises(InputError) as info:
        make(**changes)
    assert info.value.key == key
    assert info.value.column == column
    assert info.value.fix


@pytest.mark.parametrize("cap", [4, -1, 1.5])
def test_a_copy_with_another_cap_checks_the_cap(cap: object) -> None:
    with pytest.raises(InputError) as info:
        make().with_max_changes(cap)  # type: ignore[arg-type]
    assert info.value.key == "max_changes" and info.value.fix


def test_a_copy_with_another_cap_changes_only_the_cap() -> None:
    problem = make(rules=(Rule("tv cap", np.array([1.0, 0.0, 0.0]), 0.0, 120.0),))
    changed = problem.with_max_changes(1)
    assert (problem.max_changes, changed.max_changes, changed.k) == (2, 1, 1)
    assert problem.with_max_changes(None).k == problem.n
    for field in dataclasses.fields(MixProblem):
        if field.name != "max_changes":
            assert getattr(changed, field.name) is getattr(problem, field.name), field.name
    # the plan re-check and the solver read the new cap
    both = np.array([10.0, 0.0, -8.0])
    assert check_plan(problem, both).ok and not check_plan(changed, both).ok


def test_convex_revenue_error_names_every_row() -> None:
    with pytest.raises(InputError, match="'radio', 'web'"):
        make(a=np.array([-0.01, 0.02, 0.5]))


def test_rule_with_lower_above_upper_is_rejected() -> None:
    with pytest.raises(InputError) as info:
        make(rules=(Rule("tv cap", np.array([1.0, 0.0, 0.0]), 10.0, 5.0),))
    assert (info.value.table, info.value.key, info.value.column) == ("Rules", "tv cap", "lower")


def test_regions_follow_table_1() -> None:
    problem = make(
        min_spend=np.array([50.0, 50.0, 75.0]),
        max_spend=np.array([150.0, 52.0, 80.0]),
    )
    reg = regions(problem)
    # tv: both regions; radio: cannot decrease, increase of 2 < min change 5 -> no region at all;
    # web: decrease [-5, ...] shorter than min change 8 -> dropped, cannot increase -> fixed
    np.testing.assert_array_equal(reg.has_dec, [True, False, False])
    np.testing.assert_array_equal(reg.has_inc, [True, False, False])
    assert (reg.dec_lo[0], reg.dec_hi[0], reg.inc_lo[0], reg.inc_hi[0]) == (-50.0, -10.0, 10.0, 50.0)


def test_check_plan_reports_each_broken_constraint() -> None:
    problem = make(rules=(Rule("web floor", np.array([0.0, 0.0, 1.0]), 79.0, None),))
    assert check_plan(problem, np.zeros(3)).ok
    report = check_plan(problem, np.array([3.0, 40.0, -10.0]))
    text = " ".join(report.violations)
    for expected in ("min_change of 'tv'", "max_spend of 'radio'", "budget_max", "max_changes", "rule 'web floor'"):
        assert expected in text
    assert not report.ok


def test_tiny_changes_are_not_changes() -> None:
    problem = make()
    report = check_plan(problem, np.array([1e-11, 0.0, 0.0]))
    assert report.ok


def test_k_zero_returns_baseline() -> None:
    problem = make(max_changes=0)
    result = solve(problem)
    assert result.status == Status.OPTIMAL
    np.testing.assert_array_equal(result.change, np.zeros(3))
    assert result.objective == pytest.approx(23.0)
    assert result.bound == pytest.approx(23.0)


def test_k_zero_with_baseline_breaking_the_budget_is_infeasible_and_named() -> None:
    problem = make(max_changes=0, budget_min=300.0, budget_max=320.0)
    result = solve(problem)
    assert result.status == Status.INFEASIBLE
    assert "budget_min" in result.certificate.message


@pytest.mark.parametrize("solver", ["oa", "scip"])
def test_k_at_least_n_matches_oracle(solver: str) -> None:
    problem = make(max_changes=3)
    assert solve(problem, solver=solver, gap=1e-7).objective == pytest.approx(brute_force(problem).objective, rel=1e-6)


@pytest.mark.parametrize("solver", ["oa", "scip"])
def test_zero_min_change_counts_towards_k(solver: str) -> None:
    problem = make(min_change=np.zeros(3), max_changes=1, budget_min=None, budget_max=None)
    result = solve(problem, solver=solver, gap=1e-7)
    oracle = brute_force(problem)
    assert result.changes <= 1
    assert result.objective == pytest.approx(oracle.objective, rel=1e-6)
    # unconstrained optimum of each activity: x = -b / (2a) clipped; only the best single one may move
    gains = []
    for i in range(3):
        x = np.clip(
            -problem.b[i] / (2 * problem.a[i]),
            problem.min_spend[i] - problem.baseline[i],
            problem.max_spend[i] - problem.baseline[i],
        )
        gains.append(problem.a[i] * x * x + problem.b[i] * x)
    assert result.objective == pytest.approx(problem.c.sum() + max(gains), rel=1e-7)


def test_zero_min_change_without_k_needs_no_binary() -> None:
    problem = make(min_change=np.zeros(3), max_changes=None, budget_min=None, budget_max=230.0)
    result = solve(problem, gap=1e-7)
    assert result.objective == pytest.approx(brute_force(problem).objective, rel=1e-7)


def test_linear_revenue() -> None:
    problem = make(a=np.zeros(3), max_changes=2)
    oracle = brute_force(problem)
    for formulation in ("misocp", "miqp"):
        result = solve(problem, formulation=formulation, gap=1e-7)
        assert result.objective == pytest.approx(oracle.objective, rel=1e-7)
    # linear, K = 2: radio (best return 1.5) rises to its cap (+30); the budget allows +10 in total, so the
    # worst return (web, 0.8) gives up 20
    assert oracle.objective == pytest.approx(23.0 + 1.5 * 30 - 0.8 * 20)


def test_single_region_activity() -> None:
    problem = make(min_spend=np.array([100.0, 50.0, 80.0]))  # tv and web can only increase or keep
    result = solve(problem, gap=1e-7)
    assert result.change[0] >= 0 and result.change[2] >= 0
    assert result.objective == pytest.approx(brute_force(problem).objective, rel=1e-7)


def test_infeasible_rule_is_named() -> None:
    rule = Rule("radio floor", np.array([0.0, 1.0, 0.0]), 90.0, None)
    result = solve(make(rules=(rule,)))
    assert result.status == Status.INFEASIBLE
    assert "rule radio floor" in result.certificate.message
    assert result.change is None


def test_rules_on_change() -> None:
    rule = Rule("tv may not grow", np.array([1.0, 0.0, 0.0]), None, 0.0, on="change")
    problem = make(rules=(rule,), max_changes=3)
    result = solve(problem, gap=1e-7)
    assert result.change[0] <= 1e-9
    assert result.objective == pytest.approx(brute_force(problem).objective, rel=1e-7)


def test_result_properties() -> None:
    result = solve(make(), gap=1e-7)
    assert result.spend is not None
    np.testing.assert_allclose(result.spend, result.problem.baseline + result.change)
    assert result.changes == int(np.count_nonzero(result.region))
    assert result.certificate.feasibility is not None and result.certificate.feasibility.ok
    assert result.certificate.solver == "oa"
    assert dataclasses.is_dataclass(result)


def test_model_rows_come_activity_by_activity() -> None:
    # SCIP 6.3 aborted with heap corruption on the same rows grouped by kind; keep this order
    model = formulate(make(), "misocp")
    assert model.row_names == [
        "region lower of tv",
        "region upper of tv",
        "region lower of tv",
        "region upper of tv",
        "one region of tv",
        "region lower of radio",
        "region upper of radio",
        "region lower of web",
        "region upper of web",
        "max_changes",
        "budget",
    ]
    assert model.count_row == model.row_names.index("max_changes")
