"""Issue 15: local search over region moves, K-tangent bounds, the Pareto sweep's floor on K and plans,
and SCIP plans repaired over their regions. Every figure is checked against an independent answer
(brute force, separate exact solves) or the plan re-check."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time

import numpy as np
import pytest

from dmplan.solver.common import Status
from dmplan.solver.mix import brute_force, check_plan, solve
from dmplan.solver.mix.api import formulate
from dmplan.solver.mix.backends.oa import OuterApproximation
from dmplan.solver.mix.generator import InstanceSpec, paper_instance, random_small
from dmplan.solver.mix.local import bounds_of, improve
from dmplan.solver.mix.model import MixProblem, region_of, regions
from dmplan.solver.mix.pareto import changes_lower_bound, cut_down, fewest_changes_plan, pareto_over_changes
from dmplan.solver.mix.qp import solve_box_qp
from dmplan.solver.mix.secant import piece_gain, secant_plan


def _checked_points(problem: MixProblem, sweep: list) -> list[tuple]:  # type: ignore[type-arg]
    """Every point of ``sweep`` has a plan that passes the re-check at its K and a bound at least the exact
    optimum there; returns (point, exact optimum) pairs."""
    checked = []
    for point in sweep:
        sub = problem.with_max_changes(point.k)
        exact = solve(sub, gap=1e-7)
        assert exact.objective is not None
        assert point.has_plan, point.k
        assert check_plan(sub, point.result.change).ok
        assert point.bound is not None and point.bound >= exact.objective - 1e-6 * abs(exact.objective)
        checked.append((point, exact.objective))
    return checked


def _worse_plan(problem: MixProblem, optimum: np.ndarray) -> np.ndarray | None:
    """A feasible plan one region move away from the optimum (an activity of the optimum dropped)."""
    reg = regions(problem)
    state = region_of(problem, optimum)
    for i in np.flatnonzero(state != 0):
        trial = state.copy()
        trial[i] = 0
        plan = solve_box_qp(problem, *bounds_of(problem, reg, trial))
        if (
            plan is not None
            and check_plan(problem, plan).ok
            and problem.revenue(plan) < problem.revenue(optimum) - 1e-6
        ):
            return plan
    return None


@pytest.mark.parametrize("seed", range(12))
def test_local_search_climbs_back_to_the_brute_force_optimum(seed: int) -> None:
    problem = random_small(np.random.default_rng(1500 + seed), 6)
    oracle = brute_force(problem)
    if oracle.change is None:
        pytest.skip("infeasible instance")
    start = _worse_plan(problem, oracle.change)
    if start is None:
        pytest.skip("no worse plan one move away")
    plan, stats = improve(problem, start, seconds=5.0)
    assert check_plan(problem, plan).ok
    # one move away from the optimum: the search must find an improvement, and never beat the optimum
    assert stats.moves >= 1
    assert problem.revenue(plan) > problem.revenue(start) + 1e-9
    assert problem.revenue(plan) <= oracle.objective + 1e-6 * max(1.0, abs(oracle.objective))
    assert stats.gain == pytest.approx(problem.revenue(plan) - problem.revenue(start))


def test_local_search_keeps_the_cap_and_the_rules_on_a_paper_instance() -> None:
    problem = paper_instance(InstanceSpec(200, "strong", 0.2, 0.2, 3))
    optimum = solve(problem, gap=1e-6)
    start = _worse_plan(problem, optimum.change)
    assert start is not None
    plan, _ = improve(problem, start, seconds=3.0)
    assert check_plan(problem, plan).ok
    assert np.count_nonzero(plan) <= problem.k
    assert problem.revenue(start) < problem.revenue(plan) <= optimum.bound + 1e-9


def test_tangent_bounds_of_one_root_hold_for_every_k() -> None:
    problem = paper_instance(InstanceSpec(60, "weak", 0.1, 1.0, 5))
    built = problem.with_max_changes(15)
    oa = OuterApproximation(built, formulate(built, "misocp"))
    oa.solve(gap=1e-6)
    ks = [0, 5, 15, 30, 60]
    bounds = oa.bounds_at(ks)
    # at the K it was solved for, the weak-duality bound equals the root LP's value
    assert bounds[2] == pytest.approx(oa.root_bound, rel=1e-7)
    for k, bound in zip(ks, bounds, strict=True):
        exact = solve(problem.with_max_changes(k), gap=1e-7)
        assert bound is not None and exact.objective is not None
        assert bound >= exact.objective - 1e-7 * max(1.0, abs(exact.objective)), k


def _forced(seed: int) -> MixProblem:
    """A small problem whose budget forces change: the total may not exceed 85% of the baseline."""
    problem = random_small(np.random.default_rng(seed), 6)
    budget_max = 0.85 * float(problem.baseline.sum())
    return dataclasses.replace(problem, budget_min=None, budget_max=budget_max, max_changes=None)


def _fewest_changes(problem: MixProblem) -> int | None:
    """Brute force: the fewest changes of any feasible plan (every region choice, an exact QP each)."""
    reg = regions(problem)
    choices = [[0] + ([-1] if reg.has_dec[i] else []) + ([1] if reg.has_inc[i] else []) for i in range(problem.n)]
    best = None
    for state in itertools.product(*choices):
        count = sum(s != 0 for s in state)
        if best is not None and count >= best:
            continue
        plan = solve_box_qp(problem, *bounds_of(problem, reg, np.array(state)))
        if plan is not None and check_plan(problem.with_max_changes(problem.n), plan).ok:
            best = int(np.count_nonzero(plan))
    return best


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15, 16])
def test_changes_floor_is_a_proven_lower_bound(seed: int) -> None:
    problem = _forced(seed)
    floor = changes_lower_bound(problem)
    fewest = _fewest_changes(problem)
    if fewest is None:
        assert floor.infeasible or floor.k >= 0  # nothing to compare; the LP may still find the hull feasible
        return
    assert not floor.infeasible
    assert 1 <= floor.k <= fewest
    assert "budget" in floor.forcing_rows


def test_pareto_sweep_starts_at_the_floor_and_every_point_has_a_plan_and_a_proof() -> None:
    problem = paper_instance(InstanceSpec(80, "weak", 0.1, 1.0, 7))
    total = float(problem.baseline.sum())
    forced = MixProblem(
        problem.activity,
        problem.baseline,
        problem.min_spend,
        problem.max_spend,
        problem.min_change,
        problem.a,
        problem.b,
        problem.c,
        None,
        0.9 * total,
        None,
        problem.rules,
    )
    sweep = pareto_over_changes(forced, points=6, gap=1e-6)
    assert sweep.infeasible_below >= 1
    assert "budget" in sweep.forcing_rows
    assert "infeasible" in sweep.message and "budget" in sweep.message
    assert sweep[0].k == sweep.infeasible_below
    assert [p.k for p in sweep][-1] == forced.n
    for point in sweep:
        sub = forced.with_max_changes(point.k)
        exact = solve(sub, gap=1e-7)
        if exact.change is None:
            assert not point.has_plan
            continue
        # a feasible K: the sweep has a plan that passes the re-check and a bound that holds
        assert point.has_plan, point.k
        assert check_plan(sub, point.result.change).ok
        assert point.bound is not None and point.bound >= exact.objective - 1e-6 * abs(exact.objective)
        assert point.objective == pytest.approx(exact.objective, rel=2e-6)
    charted = sweep.charted
    assert all(p.revenue_share is not None for p in charted)
    assert all(p.revenue_share is None for p in sweep if not p.has_plan)
    assert sum(p.knee for p in sweep) <= 1


def test_pareto_sweep_honours_one_time_budget() -> None:
    problem = paper_instance(InstanceSpec(400, "strong", 0.2, 1.0, 2))
    sweep = pareto_over_changes(problem, points=8, time_limit=4.0)
    assert sweep.seconds <= 4.0 + 1.5
    assert all(p.has_plan or p.status in (Status.TIME_LIMIT, Status.INFEASIBLE) for p in sweep)
    for point in sweep:
        if point.has_plan:
            assert check_plan(problem.with_max_changes(point.k), point.result.change).ok
            assert point.bound is not None and math.isfinite(point.bound)


def test_a_sweep_whose_time_ran_out_gives_the_points_left_the_plan_in_hand_without_a_solve() -> None:
    """Points the sweep has no time left for are not solved (the live model's set-up alone ran a 3 s retailer sweep
    0.5 s over its limit): each says so, and still gets a checked plan and a bound where one is known."""
    from dmplan.solver.mix.pareto import OUT_OF_TIME_MESSAGE

    problem = paper_instance(InstanceSpec(400, "strong", 0.2, 1.0, 2))
    sweep = pareto_over_changes(problem, points=40, time_limit=0.3)
    assert sweep.seconds <= 0.3 + 1.0
    left = [p for p in sweep if p.result.certificate.message == OUT_OF_TIME_MESSAGE]
    assert left, [p.result.certificate.message for p in sweep]
    for point in sweep:
        if point.has_plan:
            assert check_plan(problem.with_max_changes(point.k), point.result.change).ok
        else:
            assert point.status == Status.TIME_LIMIT
    # the baseline is a plan at every K here, so no point is left without one
    assert all(p.has_plan for p in left)


def test_cut_down_gives_a_feasible_plan_with_at_most_k_changes() -> None:
    problem = paper_instance(InstanceSpec(200, "weak", 0.1, 1.0, 4))
    full = solve(problem, gap=1e-6)
    assert full.change is not None and full.changes > 10
    k = full.changes // 2
    plan = cut_down(problem.with_max_changes(k), full.change)
    assert plan is not None
    assert np.count_nonzero(plan) <= k
    assert check_plan(problem.with_max_changes(k), plan).ok


def test_scip_plans_failing_the_recheck_are_repaired_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyscipopt")
    import dmplan.solver.mix.backends.scip as scip_backend

    problem = paper_instance(InstanceSpec(30, "strong", 0.2, 0.5, 1))
    reference = solve(problem, gap=1e-7)  # oa, proven optimal
    decode = scip_backend.ConicModel.decode

    def off_by_a_tolerance(self, values, problem_):  # type: ignore[no-untyped-def]
        # SCIP's plans as they would be with a tolerance spent against the spend bounds and rules
        change = decode(self, values, problem_)
        change[np.flatnonzero(change)] *= 1 + 1e-3
        return change

    monkeypatch.setattr(scip_backend.ConicModel, "decode", off_by_a_tolerance)
    # the MIQP: SCIP proves it quickly (its own perspective handler); on the MISOCP it stalls at the root
    result = solve(problem, solver="scip", formulation="miqp", gap=1e-6, time_limit=60)
    assert result.change is not None
    assert "re-solved over their regions" in result.certificate.message
    assert check_plan(problem, result.change).ok
    # the old backend fell back to a worse plan or the unchanged baseline here
    assert result.objective == pytest.approx(reference.objective, rel=1e-6)


def test_oa_with_its_local_search_on_still_proves_the_optimum() -> None:
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(InstanceSpec(120, "strong", 0.2, 0.2, 5))
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(local_search=2.0))
    outcome = oa.solve(gap=1e-6)
    exact = solve(problem, gap=1e-7)
    assert outcome.change is not None and check_plan(problem, outcome.change).ok
    assert problem.revenue(outcome.change) == pytest.approx(exact.objective, rel=2e-6)
    assert oa.search_stats.evaluated > 0  # the search ran (the root rounding leaves a gap here)


def test_pareto_points_keep_a_piecewise_revenue() -> None:
    from dmplan.solver.mix.model import Piecewise

    base = paper_instance(InstanceSpec(30, "weak", 0.1, 1.0, 3))
    # a concave revenue kink on every third activity: each extra unit of increase above 10 earns 0.3 less
    curves = tuple(Piecewise(np.array([0.0, -0.3]), np.array([0.0, 3.0])) if i % 3 == 0 else None for i in range(30))
    problem = dataclasses.replace(base, piecewise=curves)
    assert problem.with_max_changes(5).piecewise == problem.piecewise
    sweep = pareto_over_changes(problem, points=4, gap=1e-6)
    for point in sweep:
        if point.has_plan:
            # the revenue reported is the piecewise problem's, not that of a copy that lost its curves
            assert point.objective == pytest.approx(problem.revenue(point.result.change), rel=1e-12)
            exact = solve(problem.with_max_changes(point.k), gap=1e-7)
            assert point.objective == pytest.approx(exact.objective, rel=2e-6)


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15, 16])
def test_fewest_changes_plan_is_feasible_and_never_below_the_brute_force_fewest(seed: int) -> None:
    problem = _forced(seed)
    floor = changes_lower_bound(problem)
    fewest = _fewest_changes(problem)
    plan = fewest_changes_plan(problem, floor, time_limit=10.0)
    if fewest is None:
        assert plan is None
        return
    # restricted to the LP's regions the MILP may miss every plan, but a plan it returns is a real one
    assert plan is not None, "the LP-restricted MILP found no plan on a 6-activity instance"
    assert check_plan(problem, plan).ok
    assert floor.k <= fewest <= np.count_nonzero(plan)


def test_secant_is_exact_at_the_piece_ends_and_below_the_revenue_inside() -> None:
    problem = paper_instance(InstanceSpec(40, "strong", 0.2, 0.5, 8))
    model = formulate(problem, "misocp")
    pieces = np.flatnonzero(model.piece_z >= 0)
    lo = np.where(model.piece_z >= 0, model.piece_lo, 0.0)
    hi = np.where(model.piece_z >= 0, model.piece_hi, 0.0)
    gain_lo, gain_hi = piece_gain(problem, model, lo), piece_gain(problem, model, hi)
    for share in (0.0, 0.25, 0.5, 0.9, 1.0):
        y = lo + share * (hi - lo)
        inside = piece_gain(problem, model, y)
        secant = gain_lo + share * (gain_hi - gain_lo)
        assert np.all(secant[pieces] <= inside[pieces] + 1e-9 * np.maximum(1.0, np.abs(inside[pieces])))
        if share in (0.0, 1.0):
            assert secant[pieces] == pytest.approx(inside[pieces], rel=1e-12, abs=1e-9)
    # and the piece's gain is the problem's own revenue change at that spend change
    i = model.piece_activity[pieces[0]]
    change = np.zeros(problem.n)
    change[i] = hi[pieces[0]] * model.activity_scale[i]
    assert gain_hi[pieces[0]] == pytest.approx(problem.revenue(change) - problem.revenue(np.zeros(problem.n)))


@pytest.mark.parametrize("k_share", [0.3, 0.6])
def test_secant_plan_keeps_the_cap_and_the_rules_and_never_beats_the_optimum(k_share: float) -> None:
    base = paper_instance(InstanceSpec(60, "strong", 0.2, 1.0, 9))
    problem = base.with_max_changes(max(1, round(k_share * base.n)))
    model = formulate(problem, "misocp")
    allowed = model.integer.astype(bool).copy()
    plan = secant_plan(problem, model, allowed, time_limit=20.0)
    exact = solve(problem, gap=1e-7)
    assert plan is not None and exact.objective is not None
    assert check_plan(problem, plan).ok
    assert np.count_nonzero(plan) <= problem.k
    assert problem.revenue(plan) <= exact.objective + 1e-6 * abs(exact.objective)
    # the secant only under-rates the revenue inside a region and the polish is exact: close to the optimum
    assert problem.revenue(plan) >= exact.objective - 0.01 * abs(exact.objective - problem.revenue(np.zeros(base.n)))


def test_pareto_sweep_starts_at_the_fewest_changes_of_a_plan_when_the_floor_is_loose() -> None:
    from dmplan.solver.mix.generator import retailer_instance

    # a small retailer case: its rules force change, and the LP floor (6) is far below any plan
    problem = retailer_instance(0, 2, 10, 3).problem
    floor = changes_lower_bound(problem)
    sweep = pareto_over_changes(problem, points=5, gap=1e-6)
    first = sweep[0].k
    assert sweep.infeasible_below == floor.k < first
    assert f"starts at K = {first}" in sweep.message and "not proven infeasible" in sweep.message
    for point, exact in _checked_points(problem, sweep):
        assert point.objective == pytest.approx(exact, rel=2e-6)


@pytest.mark.parametrize("spec", [InstanceSpec(150, "strong", 0.2, 0.5, 6), InstanceSpec(150, "weak", 0.1, 0.2, 7)])
def test_oa_dive_on_the_large_model_path_gives_a_checked_plan_and_the_proof_still_holds(
    spec: InstanceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(spec)
    # polish_limit 0: every exact QP counts as expensive, as on the retailer case, so the dive runs after the root
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0))
    dropped: list[int] = []
    drop = oa.drop_slack_cuts
    monkeypatch.setattr(oa, "drop_slack_cuts", lambda: dropped.append(drop()) or dropped[-1])
    outcome = oa.solve(gap=1e-6)
    # the first MILP round started without the cuts slack at the root, and the proof below still holds
    assert len(dropped) == 1 and dropped[0] > 0
    exact = solve(problem, gap=1e-7)
    assert exact.objective is not None and outcome.change is not None
    # the root leaves a gap on both, so the dive runs; its plan is a real plan, never above the optimum
    assert oa.dive_value is not None
    assert oa.dive_value <= exact.objective + 1e-6 * abs(exact.objective)
    base = problem.revenue(np.zeros(problem.n))
    # a heuristic, so only a sanity floor: measured 89% and more of the optimum's gain here
    assert oa.dive_value - base >= 0.5 * (exact.objective - base)
    assert check_plan(problem, outcome.change).ok
    assert problem.revenue(outcome.change) == pytest.approx(exact.objective, rel=2e-6)
    assert outcome.bound is not None and outcome.bound >= exact.objective - 1e-6 * abs(exact.objective)


def test_the_rounding_on_a_copy_of_the_lp_twin_gives_the_twins_plan_and_leaves_the_twin_alone() -> None:
    """The root rounding runs in a thread on a copy of the LP twin while the dive runs on the twin: the copy must
    give the plan the twin gives from the same LP point, and neither the twin nor the cut pool may see its cuts."""
    from dmplan.solver.mix.backends.base import Clock
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(InstanceSpec(150, "strong", 0.2, 0.5, 6))
    # the root and its rounding only (no dive, no MILP round); polish_limit 0: the rounding polishes on the LP
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0, dive_step=0, max_rounds=0))
    oa.solve(gap=1e-9)
    assert oa.root_values is not None
    rows, cuts, values = oa.lp.getNumRow(), oa.pool.count, oa.root_values.copy()
    plans = []
    for on_copy in (True, False):
        oa.incumbent, oa.incumbent_value = None, -math.inf
        oa._round_relaxation(values, Clock(None), oa._lp_copy(Clock(None)) if on_copy else None)
        assert oa.incumbent is not None and check_plan(problem, oa.incumbent).ok
        plans.append(oa.incumbent)
        if on_copy:
            assert (oa.lp.getNumRow(), oa.highs.getNumRow(), oa.pool.count) == (rows, rows, cuts)
    on_copy, on_twin = plans
    assert np.array_equal(np.sign(on_copy), np.sign(on_twin))
    assert problem.revenue(on_copy) == pytest.approx(problem.revenue(on_twin), rel=1e-7)


def test_a_rounding_on_a_copy_cut_short_by_the_clock_still_gives_its_last_optimal_lps_plan() -> None:
    """A short time limit on a large model leaves the rounding's fixed LP time for one round or two: the plan of the
    last LP solved is feasible (the cuts touch only t), so it is returned; a 3 s retailer solve had no plan."""
    import highspy

    from dmplan.solver.mix.backends.base import Clock
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(InstanceSpec(150, "strong", 0.2, 0.5, 6))
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0, dive_step=0, max_rounds=0))
    oa.solve(gap=1e-9)
    assert oa.root_values is not None and oa.incumbent is not None
    on = oa._on_of(oa.incumbent)

    class CutShort:
        """The copy, interrupted from its second run on (as the clock would)."""

        def __init__(self, highs: highspy.Highs) -> None:
            self.highs, self.runs = highs, 0

        def run(self) -> None:
            self.runs += 1
            if self.runs == 1:
                self.highs.run()

        def getModelStatus(self) -> highspy.HighsModelStatus:
            return self.highs.getModelStatus() if self.runs == 1 else highspy.HighsModelStatus.kInterrupt

        def __getattr__(self, name: str) -> object:
            return getattr(self.highs, name)

    short = CutShort(oa._lp_copy(Clock(None)))
    plan = oa._fixed_lp_copy(short, on, Clock(None))  # type: ignore[arg-type]
    assert short.runs >= 2  # the first LP left cuts to add, so a second round began
    assert plan is not None and check_plan(problem, plan).ok
    assert np.array_equal(np.sign(plan), np.sign(oa.incumbent))


def test_c_mir_rounds_with_no_time_beyond_the_kept_share_leave_the_lp_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The c-MIR rounds start with LP rounds back at the root point; with no more time left than the share kept for
    the heuristics after them, those LP rounds took that share (a 3 s retailer solve returned no plan)."""
    from dmplan.solver.mix.backends.base import Clock
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(InstanceSpec(150, "strong", 0.2, 0.5, 6))
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0, mir_first=False))
    oa._lp_rounds(Clock(None))
    assert oa.root_bound is not None
    runs: list[object] = []
    lp_rounds = oa._lp_rounds
    monkeypatch.setattr(oa, "_lp_rounds", lambda *a, **k: runs.append(k) or lp_rounds(*a, **k))
    oa._mir_rounds(Clock(30.0), keep=40.0)
    assert runs == []
    # before a dive the first round is taken to last as long as the root: one that would end in the kept share
    # does not start (unseen retailer seed 3's ran to 7.3 s of a 10 s solve and its dive ran out of time)
    oa._mir_rounds(Clock(30.0), keep=10.0, first=25.0)
    assert runs == []
    oa._mir_rounds(Clock(30.0), keep=10.0)  # time beyond the kept share: the rounds run, and keep it
    assert runs and all(call.get("keep", 0.0) in (0.0, 10.0) for call in runs)
    assert runs[0] == {"keep": 10.0}


@pytest.mark.parametrize(("needs", "first"), [(0.0, 0.0), (1e9, 0.0), (0.0, 1e9)])
def test_c_mir_rounds_before_a_dive_leave_it_a_multiple_of_the_roots_time(
    needs: float, first: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a dive under a time limit the c-MIR rounds keep DIVE_ROOT_NEEDS times the root's LP rounds for it
    (unseen retailer seed 2's rounds ran to 7.2 s of a 10 s solve and its dive ran out of time), the first round
    taken to last FIRST_ROUND_SHARE of them: with a huge factor or a huge first round no round starts, with
    neither they run."""
    from dmplan.solver.mix import mir
    from dmplan.solver.mix.backends import oa as oa_backend
    from dmplan.solver.mix.backends.oa import OAOptions

    monkeypatch.setattr(oa_backend, "DIVE_ROOT_NEEDS", needs)
    monkeypatch.setattr(oa_backend, "FIRST_ROUND_SHARE", first)
    separations: list[int] = []
    separate = mir.MirSeparator.separate
    monkeypatch.setattr(
        mir.MirSeparator, "separate", lambda self, *a, **k: separations.append(1) or separate(self, *a, **k)
    )
    problem = paper_instance(InstanceSpec(150, "weak", 0.1, 0.2, 7))
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0))
    dives: list[int] = []
    dive = oa._dive
    monkeypatch.setattr(oa, "_dive", lambda *a, **k: dives.append(len(separations)) or dive(*a, **k))
    outcome = oa.solve(time_limit=60.0, gap=1e-6)
    assert len(dives) == 1
    assert (dives[0] > 0) == (needs == first == 0.0)  # c-MIR rounds ran before the dive only without either
    assert outcome.change is not None and check_plan(problem, outcome.change).ok


def _slack_tangents(oa: OuterApproximation) -> int:
    """Added tangent cuts of the LP twin that are basic (slack) in its basis: those ``drop_slack_cuts`` deletes."""
    import highspy

    status = oa.lp.getBasis().row_status[oa.model.num_rows :]
    basic = np.array([s == highspy.HighsBasisStatus.kBasic for s in status], dtype=bool)
    return int(np.count_nonzero(basic & (np.asarray(oa.pool.row_cone) >= 0)))


@pytest.mark.parametrize(("limit", "short"), [(60.0, True), (60.0, False), (None, True)])
def test_a_dive_short_of_time_starts_without_the_slack_cuts_and_every_dive_reports_its_steps(
    limit: float | None, short: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With less time left than DIVE_ROOT_TIMES the root's LP rounds, the dive starts from the root LP without
    its slack tangent cuts (its LPs run twice as fast on the retailer case); with the time, or without a limit,
    the cuts stay. Every dive reports its steps; plan and proof hold either way."""
    from dmplan.solver.mix.backends import oa as oa_backend
    from dmplan.solver.mix.backends.oa import OAOptions

    monkeypatch.setattr(oa_backend, "PROGRESS_EVERY", 0.0)
    if short:  # this instance's root takes milliseconds: the dive is "short of time" only for a huge factor
        monkeypatch.setattr(oa_backend, "DIVE_ROOT_TIMES", 1e9)
    problem = paper_instance(InstanceSpec(150, "weak", 0.1, 0.2, 7))
    exact = solve(problem, gap=1e-7)
    assert exact.objective is not None
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0))
    slack: list[int] = []
    dive = oa._dive

    settled: list[object] = []

    def spy(*args: object, **kwargs: object) -> None:
        slack.append(_slack_tangents(oa))
        settled.append(kwargs.get("settle"))
        dive(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(oa, "_dive", spy)
    messages: list[str] = []
    outcome = oa.solve(time_limit=limit, gap=1e-6, progress=lambda p: messages.append(p.message))
    assert len(slack) == 1 and oa.dive_value is not None
    if limit is not None and short:
        assert slack[0] == 0 and settled == [True]
    else:
        assert slack[0] > 0  # the instance has slack cuts at its root: the check above can fail
        assert settled == [False]  # a dive over every cut takes its last LP's plan (settling cost seed 2's bound)
    assert any(m.startswith("oa root: diving") for m in messages)
    assert outcome.change is not None and check_plan(problem, outcome.change).ok
    assert problem.revenue(outcome.change) == pytest.approx(exact.objective, rel=2e-6)
    assert outcome.bound is not None and outcome.bound >= exact.objective - 1e-6 * abs(exact.objective)


def test_a_large_model_rounds_in_a_thread_beside_the_dive_and_a_failure_there_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from dmplan.solver.mix.backends import oa as oa_backend
    from dmplan.solver.mix.backends.oa import OAOptions

    monkeypatch.setattr(oa_backend, "_cores", lambda: 2)  # as on the CI machine, also where it has one core
    problem = paper_instance(InstanceSpec(150, "weak", 0.1, 0.2, 7))
    exact = solve(problem, gap=1e-7)
    assert exact.objective is not None
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0))
    where: dict[str, str] = {}
    fixed_lp_copy, dive = oa._fixed_lp_copy, oa._dive

    def spy_copy(*args: object, **kwargs: object) -> object:
        where["rounding"] = threading.current_thread().name
        return fixed_lp_copy(*args, **kwargs)  # type: ignore[arg-type]

    def spy_dive(*args: object, **kwargs: object) -> None:
        where["dive"] = threading.current_thread().name
        dive(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(oa, "_fixed_lp_copy", spy_copy)
    monkeypatch.setattr(oa, "_dive", spy_dive)
    outcome = oa.solve(gap=1e-6)
    assert where["dive"] == threading.main_thread().name != where["rounding"]
    assert outcome.change is not None and check_plan(problem, outcome.change).ok
    assert problem.revenue(outcome.change) == pytest.approx(exact.objective, rel=2e-6)
    assert outcome.bound is not None and outcome.bound >= exact.objective - 1e-6 * abs(exact.objective)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("rounding failed")

    failing = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0))
    monkeypatch.setattr(failing, "_fixed_lp_copy", broken)
    with pytest.raises(RuntimeError, match="rounding failed"):
        failing.solve(gap=1e-6)


def test_a_solve_with_no_time_left_for_a_milp_round_skips_the_cut_drop_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The drop of the slack cuts before the first MILP round costs seconds on a large model; with too little of
    the limit left for a round it must not run (a 10 s retailer solve returned after 10.03 s)."""
    from dmplan.solver.backends.highs_worker import GRACE
    from dmplan.solver.mix.backends import oa as oa_backend
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(InstanceSpec(1000, "strong", 0.2, 0.2, 0))
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0, isolate_min_vars=0))
    needed = GRACE + oa_backend.WRAP_UP + oa_backend.MIN_WORKER_SEARCH
    dropped: list[int] = []
    monkeypatch.setattr(oa, "drop_slack_cuts", lambda: dropped.append(1) or 0)

    def slow_dive(values: np.ndarray, clock: object, **kwargs: object) -> None:  # the heuristics take the time
        while clock.remaining() > 0.5 * needed:  # type: ignore[attr-defined]
            time.sleep(0.01)

    monkeypatch.setattr(oa, "_dive", slow_dive)
    outcome = oa.solve(time_limit=3.0, gap=1e-9)
    assert dropped == []
    assert outcome.message == "time limit"
    assert outcome.change is not None and check_plan(problem, outcome.change).ok


def test_live_model_solves_again_after_a_run_it_interrupted() -> None:
    # HiGHS keeps its interrupt flag between runs: a live model stopped once by its deadline ended every later
    # run at once with no iteration (the Pareto sweep's next K had no root bound) until the callback cleared it
    import highspy

    from dmplan.solver.mix.backends.base import Clock

    problem = paper_instance(InstanceSpec(150, "weak", 0.1, 0.5, 3))
    live = OuterApproximation(problem, formulate(problem, "misocp"))
    assert live._run(live.lp, Clock(0.0), None) == highspy.HighsModelStatus.kInterrupt
    assert live._run(live.lp, Clock(None), None) == highspy.HighsModelStatus.kOptimal
    assert live.lp.getInfo().simplex_iteration_count > 0
    outcome = live.solve(time_limit=30.0, gap=1e-6)
    exact = solve(problem, gap=1e-7)
    assert outcome.change is not None and exact.objective is not None
    assert check_plan(problem, outcome.change).ok
    assert problem.revenue(outcome.change) == pytest.approx(exact.objective, rel=2e-6)


def test_the_last_lp_of_a_dive_without_the_slack_cuts_is_settled_to_the_exact_optimum_of_its_regions() -> None:
    """The dive's steps run one tangent round each, so its last LP's changes are loose; a dive without the slack
    cuts settles them with more rounds, every binary fixed: the plan gets the exact QP's revenue for its regions
    (an independent polish)."""
    from dmplan.solver.mix.backends.base import Clock
    from dmplan.solver.mix.backends.oa import OAOptions
    from dmplan.solver.mix.qp import polish_regions

    problem = paper_instance(InstanceSpec(150, "strong", 0.2, 0.5, 6))
    dives = []
    for settle in (False, True):
        oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(polish_limit=0))
        oa._lp_rounds(Clock(None))
        oa._dive(oa._lp_values().copy(), Clock(None), settle=settle)
        assert oa.incumbent is not None and oa.dive_value is not None
        assert check_plan(problem, oa.incumbent).ok
        exact = polish_regions(problem, oa.incumbent)
        assert exact is not None
        dives.append((oa.dive_value, problem.revenue(exact)))
    (loose, loose_exact), (settled, settled_exact) = dives
    assert settled_exact == pytest.approx(loose_exact, rel=1e-9)  # the same regions
    assert loose < settled_exact - 1e-3 * abs(settled_exact)  # measured 0.24% below: the instance can fail this
    assert settled == pytest.approx(settled_exact, rel=1e-6)


def test_dive_outside_a_solve_at_a_smaller_k_gives_a_checked_plan_and_restores_the_options() -> None:
    # as the Pareto sweep runs it on a large model: the root of a smaller K on the live model, then the dive
    from dmplan.solver.mix.backends.oa import OAOptions

    problem = paper_instance(InstanceSpec(150, "strong", 0.2, 0.5, 6))
    options = OAOptions(polish_limit=0, dive_step=0.0, max_rounds=0)  # no dive inside the solves
    live = OuterApproximation(problem, formulate(problem, "misocp"), options)
    live.solve(gap=1e-6)
    small = problem.with_max_changes(problem.k // 2)
    live.set_max_changes(small.k)
    live.solve(gap=1e-6)
    before = live.incumbent_value
    found = live.dive(30.0)
    exact = solve(small, gap=1e-7)
    assert exact.objective is not None
    assert live.dive_value is not None  # the dive reached an integral LP point
    assert live.dive_value <= exact.objective + 1e-6 * abs(exact.objective)
    assert live.incumbent is not None and check_plan(small, live.incumbent).ok
    assert np.count_nonzero(live.incumbent) <= small.k
    assert found == (live.incumbent_value > before)
    assert (live.options.dive_step, live.options.dive_rounds) == (0.0, OAOptions().dive_rounds)


def test_dropping_slack_cuts_between_ks_keeps_the_rows_in_step_and_every_later_k_exact() -> None:
    # as the Pareto sweep re-targets its live model: solve a K, drop the cuts slack there, solve a smaller K
    problem = paper_instance(InstanceSpec(150, "weak", 0.1, 1.0, 5))
    live = OuterApproximation(problem.with_max_changes(120), formulate(problem.with_max_changes(120), "misocp"))
    initial = live.lp.getNumRow()
    first_k = live.problem.k
    live.solve(gap=1e-7)
    for k in (90, 60, 30):
        before = live.lp.getNumRow()
        _, bound_before = live.bounds_at([first_k, k])
        dropped = live.drop_slack_cuts()
        assert dropped > 0 and live.lp.getNumRow() == live.highs.getNumRow() == before - dropped
        assert live.lp.getNumRow() >= initial  # the initial tangents stay
        assert len(live.pool.row_cone) == live.lp.getNumRow() - live.model.num_rows
        assert live.pool.count == sum(len(points) for points in live.pool.points)
        assert live.lp.getBasis().valid
        # the root's duals stay with their rows: the tangent bound of the dropped model is still a bound
        exact = solve(problem.with_max_changes(k), gap=1e-7)
        assert exact.objective is not None and bound_before is not None
        after = live.bounds_at([k])[0]
        assert after is not None and after >= exact.objective - 1e-6 * abs(exact.objective)
        assert after == pytest.approx(bound_before, rel=1e-7)  # a dropped row's dual was (near) zero
        live.set_max_changes(k)
        outcome = live.solve(gap=1e-7)
        assert outcome.change is not None and check_plan(live.problem, outcome.change).ok
        assert live.problem.revenue(outcome.change) == pytest.approx(exact.objective, rel=1e-6)
        assert outcome.bound is not None and outcome.bound >= exact.objective - 1e-6 * abs(exact.objective)
        first_k = k


def test_background_secant_plans_hold_and_match_the_secant_milp_in_process() -> None:
    import time

    from dmplan.solver.mix.secant import BackgroundSecant

    base = paper_instance(InstanceSpec(60, "strong", 0.2, 1.0, 9))
    model = formulate(base.with_max_changes(10), "misocp")
    allowed = model.integer.astype(bool).copy()
    jobs = [(base.with_max_changes(k), 20.0) for k in (10, 25)]
    background = BackgroundSecant(model, allowed, list(jobs))
    began = time.perf_counter()
    while not background.finished and time.perf_counter() - began < 60:
        time.sleep(0.05)
    assert background.finished  # both MILPs end at their gap long before their limits
    plans = background.plans()
    assert len(plans) == 2
    for (problem, _), plan in zip(jobs, plans, strict=True):
        assert check_plan(problem, plan).ok
        assert np.count_nonzero(plan) <= problem.k
        exact = solve(problem, gap=1e-7)
        assert exact.objective is not None
        assert problem.revenue(plan) <= exact.objective + 1e-6 * abs(exact.objective)
        # the same MILP as in-process, to its gap: the same revenue up to that gap's share of the gain
        here = secant_plan(problem, model, allowed, time_limit=20.0)
        assert here is not None
        gain = exact.objective - problem.revenue(np.zeros(problem.n))
        assert problem.revenue(plan) == pytest.approx(problem.revenue(here), abs=1e-3 * gain)


def test_background_secant_stopped_at_once_returns_only_real_plans() -> None:
    from dmplan.solver.mix.secant import BackgroundSecant

    base = paper_instance(InstanceSpec(60, "strong", 0.2, 1.0, 9))
    problem = base.with_max_changes(10)
    model = formulate(problem, "misocp")
    background = BackgroundSecant(model, model.integer.astype(bool).copy(), [(problem, None)])
    for plan in background.plans():  # stopped before or while it searched: whatever it returns holds
        assert check_plan(problem, plan).ok
    assert background.finished


def test_pareto_sweep_on_the_large_model_path_solves_the_smallest_k_first_with_its_secant_in_the_background(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dmplan.solver.mix.pareto as pareto_module
    from dmplan.solver.mix.generator import retailer_instance

    # every exact QP counts as expensive, as on the retailer case: the sweep takes its large-model path
    monkeypatch.setattr(OuterApproximation, "polish_cheap", lambda self, free: False)
    found: list[list[np.ndarray]] = []
    plans = pareto_module.BackgroundSecant.plans
    optimum: dict[int, float] = {}

    def recorded(self, seconds=None):  # type: ignore[no-untyped-def]
        result = plans(self, seconds)
        for plan in result:
            assert any(
                check_plan(problem, plan).ok and np.count_nonzero(plan) <= problem.k for problem, _ in self._jobs
            )
        found.append(result)
        # and the smallest K's optimum, as if the background had found it: the sweep must carry it to that K
        smallest = self._jobs[0][0]
        exact = solve(smallest, gap=1e-7)
        optimum[smallest.k] = exact.objective
        return [*result, exact.change]

    monkeypatch.setattr(pareto_module.BackgroundSecant, "plans", recorded)
    problem = retailer_instance(0, 2, 10, 3).problem
    # the background runs only in a sweep of at least FIRST_MIN seconds; this one ends long before its limit
    sweep = pareto_over_changes(problem, points=5, gap=1e-6, time_limit=40.0)
    assert len(found) == 1 and found[0], "the background ran and returned plans when the next smallest K came up"
    assert list(optimum) == [sweep[0].k]
    assert sweep[0].objective == pytest.approx(optimum[sweep[0].k], rel=1e-9)
    for point, exact in _checked_points(problem, sweep):
        assert point.objective <= exact + 1e-6 * abs(exact)


def test_flat_points_are_only_skipped_between_solved_points_where_the_bound_barely_falls() -> None:
    from dmplan.solver.mix.pareto import FLAT_BELOW, _flat

    ks = [10, 20, 30, 40, 50, 60]
    gap = 1e-3
    step = FLAT_BELOW * gap * 1000.0  # the largest fall per grid step that still counts as flat at a bound of 1000
    flat = [(5, 1000.0 + 0.9 * step), (4, 1000.0)]
    assert _flat(ks, 3, flat, set(), gap)
    assert not _flat(ks, 3, [(5, 1000.0 + 1.1 * step), (4, 1000.0)], set(), gap)  # falls too fast
    assert not _flat(ks, 3, flat[:1], set(), gap)  # one point solved: no slope yet
    assert not _flat(ks, 3, flat, {4}, gap)  # the next larger K was skipped: never two in a row
    assert not _flat(ks, 1, flat, set(), gap) and not _flat(ks, 0, flat, set(), gap)  # the background's K
    assert not _flat(ks, 5, flat, set(), gap)  # the largest K
    # two grid steps between the last two points solved: the fall is per step
    assert _flat(ks, 2, [(5, 1000.0 + 1.8 * step), (3, 1000.0)], set(), gap)


def test_pareto_sweep_skips_flat_points_on_the_large_model_path_and_their_plans_and_bounds_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dmplan.solver.mix.generator import retailer_instance
    from dmplan.solver.mix.pareto import FLAT_MESSAGE

    monkeypatch.setattr(OuterApproximation, "polish_cheap", lambda self, free: False)
    problem = retailer_instance(0, 2, 10, 3).problem
    gap = 0.02  # wide enough for the curve's upper part to count as flat
    sweep = pareto_over_changes(problem, points=9, gap=gap, time_limit=30.0)
    flat = [p for p in sweep if p.result.certificate.message == FLAT_MESSAGE]
    assert flat, "no point was left to its smaller neighbour"
    _checked_points(problem, sweep)
    for point in flat:
        assert point.source == "smaller K"
        assert point.gap is not None and point.gap <= gap
