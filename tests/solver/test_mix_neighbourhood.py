"""Issue 15: the neighbourhood search that runs beside a worker's MILP round. Its plans are checked against the
original constraints and an exact solve; it must leave the MILP it was given untouched and stop when told."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from dmplan.solver.backends.highs import MilpArrays
from dmplan.solver.mix import check_plan, solve
from dmplan.solver.mix.api import formulate
from dmplan.solver.mix.backends import oa as oa_backend
from dmplan.solver.mix.backends.oa import OAOptions, OuterApproximation
from dmplan.solver.mix.core import choice_margins
from dmplan.solver.mix.generator import InstanceSpec, paper_instance
from dmplan.solver.mix.local import bounds_of
from dmplan.solver.mix.model import MixProblem, region_of, regions
from dmplan.solver.mix.neighbourhood import MAX_SHARE, NeighbourhoodSearch
from dmplan.solver.mix.qp import solve_box_qp

PROBLEM = paper_instance(InstanceSpec(400, "strong", 0.2, 0.2, 3))


def _polished(problem: MixProblem, change: np.ndarray) -> np.ndarray | None:
    """The exact optimum over the regions of ``change`` (what the solver's polish computes)."""
    return solve_box_qp(problem, *bounds_of(problem, regions(problem), region_of(problem, change)))


def _far_plan(problem: MixProblem, optimum: np.ndarray, drops: int) -> np.ndarray:
    """A feasible plan ``drops`` activities of the optimum away from it (each dropped one keeps its baseline)."""
    reg = regions(problem)
    state = region_of(problem, optimum)
    plan = optimum
    for i in np.flatnonzero(state != 0)[::3]:
        trial = state.copy()
        trial[i] = 0
        candidate = solve_box_qp(problem, *bounds_of(problem, reg, trial))
        if candidate is not None and check_plan(problem, candidate).ok:
            state, plan = trial, candidate
            drops -= 1
            if drops == 0:
                break
    assert drops == 0
    return plan


def test_neighbourhood_steps_climb_from_a_far_plan_to_the_exact_optimum_and_leave_the_milp_untouched() -> None:
    problem = PROBLEM
    exact = solve(problem, gap=1e-7)
    assert exact.objective is not None and exact.change is not None
    # the root's cuts and row prices, as the solver has them when its worker round starts
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(max_rounds=0))
    oa.solve(gap=1e-9)
    integer = np.flatnonzero(oa.model.integer)
    oa.highs.changeColsIntegrality(integer.size, integer.astype(np.int32), np.ones(integer.size, dtype=np.uint8))
    milp = MilpArrays.from_highs(oa.highs, integer)
    kept = (milp.col_lower.copy(), milp.col_upper.copy())
    margins = choice_margins(problem, oa.model, np.asarray(oa.lp.getSolution().row_dual))
    start = _far_plan(problem, exact.change, drops=6)
    assert problem.revenue(start) < exact.objective - 1e-3 * abs(exact.objective - problem.revenue(np.zeros(400)))

    best = [start]
    handed: list[np.ndarray] = []
    lock = threading.Lock()

    def improve(change: np.ndarray) -> None:
        with lock:
            handed.append(change)
            plan = _polished(problem, change)
            if plan is not None and problem.revenue(plan) > problem.revenue(best[-1]):
                best.append(plan)

    search = NeighbourhoodSearch(problem, oa.model, milp, margins, lambda: best[-1], improve, time.perf_counter() + 60)
    began = time.perf_counter()
    while time.perf_counter() - began < 60 and problem.revenue(best[-1]) < exact.objective - 1e-7 * exact.objective:
        time.sleep(0.05)
    stats = search.stop()
    assert problem.revenue(best[-1]) == pytest.approx(exact.objective, rel=1e-7)
    assert stats.steps >= 1 and stats.better == len(handed) >= 1
    for change in handed:
        # a MILP plan keeps the budget, the rules and the cap as they are: only its revenue is approximate
        assert check_plan(problem, change).ok
    # a step frees at most its size of the activities: every plan handed on moved at most that many regions
    moved = [np.count_nonzero(region_of(problem, a) != region_of(problem, b)) for a, b in itertools.pairwise(best)]
    assert max(moved) <= MAX_SHARE * problem.n
    assert np.array_equal(milp.col_lower, kept[0]) and np.array_equal(milp.col_upper, kept[1])


def test_a_worker_round_runs_the_search_beside_it_and_its_plans_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = PROBLEM
    exact = solve(problem, gap=1e-7)
    assert exact.objective is not None
    started: list[NeighbourhoodSearch] = []

    class Recorded(NeighbourhoodSearch):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(oa_backend, "NeighbourhoodSearch", Recorded)
    monkeypatch.setattr(oa_backend, "_cores", lambda: 2)
    # the large-model path with the worker: every exact QP counts as expensive, the round runs in the child
    options = OAOptions(polish_limit=0, isolate_min_vars=0)
    oa = OuterApproximation(problem, formulate(problem, "misocp"), options)
    outcome = oa.solve(time_limit=30.0, gap=1e-6)
    assert len(started) >= 1 and oa.neighbourhood_stats.steps >= 1
    assert outcome.change is not None and check_plan(problem, outcome.change).ok
    assert problem.revenue(outcome.change) <= exact.objective + 1e-6 * abs(exact.objective)
    assert outcome.bound is not None and outcome.bound >= exact.objective - 1e-6 * abs(exact.objective)
