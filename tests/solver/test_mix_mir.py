"""Issue 15: c-MIR cuts on the budget and rule rows (:mod:`dmplan.solver.mix.mir`).

A cut is valid when no plan violates it: its left-hand side, maximised by a MILP over the model's linear rows
with the binaries integral (HiGHS, tight tolerances; its dual bound, so a proof), stays at or below its
right-hand side. The cuts
must also move the root bound on group rules like the retailer's, and never below the optimum.
"""

from __future__ import annotations

import itertools

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from dmplan.solver.backends.highs import MilpArrays, new_highs
from dmplan.solver.mix import solve
from dmplan.solver.mix.api import formulate
from dmplan.solver.mix.backends.base import Clock
from dmplan.solver.mix.backends.oa import OAOptions, OuterApproximation
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.generator import random_small, retailer_instance
from dmplan.solver.mix.mir import Cut, MirSeparator
from dmplan.solver.mix.model import MixProblem


def _largest_lhs(model: ConicModel, cut: Cut) -> float:
    """The largest value of the cut's left-hand side over every plan of the model's linear rows: a MILP solved
    by HiGHS with feasibility tolerances of 1e-10 (at its default 1e-6 the plan may break a row by that much)."""
    objective = np.zeros(model.num_vars)
    objective[cut.columns] = cut.values
    highs = new_highs()
    for option in ("mip_feasibility_tolerance", "primal_feasibility_tolerance"):
        highs.setOptionValue(option, 1e-10)
    highs.setOptionValue("mip_rel_gap", 0.0)
    MilpArrays.from_matrix(
        sp.csr_matrix(model.matrix),
        cost=objective,
        col_lower=model.lower,
        col_upper=model.upper,
        row_lower=np.where(np.isfinite(model.row_lower), model.row_lower, -highspy.kHighsInf),
        row_upper=np.where(np.isfinite(model.row_upper), model.row_upper, highspy.kHighsInf),
        integer=np.flatnonzero(model.integer),
        offset=0.0,
        maximize=True,
    ).to_highs(highs)
    highs.run()
    assert highs.getModelStatus() == highspy.HighsModelStatus.kOptimal, "the instance must have plans"
    return float(highs.getInfo().mip_dual_bound)


def _root_point(problem: MixProblem) -> tuple[ConicModel, np.ndarray]:
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(mir_rounds=0))
    oa._lp_rounds(Clock(None))
    return oa.model, oa._lp_values()


def _instances() -> list[tuple[str, MixProblem]]:
    # 24 activities, 2 instruments x 4 stores x 3 weeks: no plan changes fewer than 9 (the budget and the rules)
    cases = [(f"retailer {seed} K={k}", _retailer(seed, k)) for seed in range(3) for k in (9, 12)]
    for seed in range(6):
        problem = random_small(np.random.default_rng(9150 + seed), 8)
        cases.append((f"random {seed}", problem.with_max_changes(max(2, problem.max_changes))))
    return cases


def _retailer(seed: int, k: int) -> MixProblem:
    return retailer_instance(seed, 2, 4, 3).problem.with_max_changes(k)


@pytest.mark.parametrize(("name", "problem"), _instances(), ids=[name for name, _ in _instances()])
def test_every_cut_holds_for_every_plan(name: str, problem: MixProblem) -> None:
    model, root = _root_point(problem)
    separator = MirSeparator(model)
    rng = np.random.default_rng(len(name))
    points = [root]
    for _ in range(20):  # points near the root with other fractional binaries: other rows, divisors, flips
        point = root.copy()
        z = model.piece_z[model.piece_z >= 0]
        point[z] = np.clip(point[z] + rng.normal(scale=0.3, size=z.size), 0, 1)
        points.append(point)
    cuts = []
    for point in points:
        found = separator.separate(point)
        # each cut is violated at its point, the most efficacious first
        efficacy = [(cut.values @ point[cut.columns] - cut.upper) / np.linalg.norm(cut.values) for cut in found]
        assert all(value > 0 for value in efficacy)
        assert all(a >= b - 1e-9 * max(1.0, abs(a)) for a, b in itertools.pairwise(efficacy))
        cuts += found
    for cut in cuts:
        assert _largest_lhs(model, cut) <= cut.upper + 1e-7 * max(1.0, abs(cut.upper))
    if name.startswith("retailer"):
        assert cuts, "the group rules of a retailer-like case give c-MIR cuts at its root"


@pytest.mark.parametrize("seed", range(3))
def test_cuts_tighten_the_root_and_never_cut_off_the_optimum(seed: int) -> None:
    problem = _retailer(seed, 9)
    best = solve(problem, solver="oa", gap=1e-9)
    assert best.objective is not None
    bounds = []
    for rounds in (0, 20):
        oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(mir_rounds=rounds))
        oa._lp_rounds(Clock(None))
        oa._mir_rounds(Clock(None))
        assert oa.root_bound is not None
        bounds.append(oa.root_bound)
    without, with_cuts = bounds
    assert with_cuts >= best.objective - 1e-7 * abs(best.objective)
    assert with_cuts < without - 1e-7 * abs(without), "the cuts should move the root bound on group rules"
