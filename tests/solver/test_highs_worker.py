"""The HiGHS MILP worker process: same answers as in-process HiGHS, plans streamed, and a hard deadline."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from dmplan.solver.backends.highs import MilpArrays, new_highs
from dmplan.solver.backends.highs_worker import GRACE, MilpWorker, shared_worker
from dmplan.solver.common import Progress
from dmplan.solver.mix.api import formulate
from dmplan.solver.mix.backends.oa import OAOptions, OuterApproximation
from dmplan.solver.mix.generator import InstanceSpec, paper_instance

ROOT = Path(__file__).resolve().parents[2]


def _model(
    matrix: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    cost: np.ndarray,
    upper: np.ndarray,
    integer: np.ndarray,
    maximize: bool,
) -> tuple[highspy.Highs, MilpArrays]:
    h = new_highs()
    csc = sp.csc_matrix(matrix)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(cost.size)
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    h.passModel(lp)
    arrays = MilpArrays.from_highs(h, integer)
    h.changeColsIntegrality(integer.size, integer.astype(np.int32), np.ones(integer.size, dtype=np.uint8))
    return h, arrays


def knapsack(n: int = 40, seed: int = 0) -> tuple[highspy.Highs, MilpArrays]:
    """Two-row 0/1 knapsack (maximise)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(10, 100, (2, n)).astype(float)
    value = weights[0] + rng.integers(0, 20, n)
    capacity = weights.sum(axis=1) / 2
    return _model(weights, np.full(2, -np.inf), capacity, value, np.ones(n), np.arange(n), maximize=True)


def market_split(rows: int = 4, cols: int = 40, seed: int = 1) -> tuple[highspy.Highs, MilpArrays]:
    """Cornuejols-Dawande market split (minimise the slack): minutes to hours for any MILP solver."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, (rows, cols)).astype(float)
    rhs = np.floor(a.sum(axis=1) / 2)
    matrix = np.hstack([a, np.eye(rows), -np.eye(rows)])
    cost = np.r_[np.zeros(cols), np.ones(2 * rows)]
    upper = np.r_[np.ones(cols), np.full(2 * rows, 1e4)]
    return _model(matrix, rhs, rhs, cost, upper, np.arange(cols), maximize=False)


def test_worker_finds_the_same_optimum_as_in_process_highs() -> None:
    h, model = knapsack()
    h.run()
    expected = h.getInfo().objective_function_value
    plans: list[np.ndarray] = []
    run = shared_worker().run(model, start=None, seconds=60, gap=0.0, on_plan=lambda v, latest: plans.append(v))
    assert run.status == highspy.HighsModelStatus.kOptimal
    assert run.objective == pytest.approx(expected, rel=1e-9)
    assert run.dual_bound == pytest.approx(expected, rel=1e-9)
    assert run.solution is not None and model.cost @ run.solution == pytest.approx(expected, rel=1e-9)
    # every improving plan was streamed; the last one is the optimum
    assert plans and model.cost @ plans[-1] == pytest.approx(expected, rel=1e-9)


def test_worker_stops_when_asked() -> None:
    _, model = market_split()
    began = time.perf_counter()
    run = shared_worker().run(
        model, start=None, seconds=60, gap=0.0, stop=lambda bound: time.perf_counter() - began > 0.5
    )
    assert run.status == highspy.HighsModelStatus.kInterrupt
    assert time.perf_counter() - began < 5


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="freezing the child needs SIGSTOP")
def test_an_unresponsive_child_is_killed_at_the_deadline_and_its_plans_kept() -> None:
    """A frozen child stands for HiGHS inside a root cut round, where it checks neither clock nor callbacks."""
    worker = shared_worker()
    _, model = market_split()
    plans: list[np.ndarray] = []

    def freeze(values: np.ndarray, latest: bool) -> None:
        if not plans:
            os.kill(worker._process.pid, signal.SIGSTOP)
        plans.append(values)

    began = time.perf_counter()
    run = worker.run(model, start=None, seconds=1.0, gap=0.0, on_plan=freeze)
    took = time.perf_counter() - began
    assert run.killed and run.solution is None
    assert 1.0 <= took <= 1.0 + GRACE + 0.5
    assert len(plans) >= 1  # what came before the freeze is kept
    assert not worker.alive
    # the next run gets a fresh worker
    h, small = knapsack(20)
    h.run()
    again = shared_worker().run(small, start=None, seconds=60, gap=0.0)
    assert again.status == highspy.HighsModelStatus.kOptimal
    assert again.objective == pytest.approx(h.getInfo().objective_function_value, rel=1e-9)


def test_the_worker_does_not_rerun_the_callers_script(tmp_path: Path) -> None:
    """multiprocessing's spawn re-runs an unguarded main script in the child; the worker must not."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            print("script ran", flush=True)
            from tests.solver.test_highs_worker import knapsack
            from dmplan.solver.backends.highs_worker import shared_worker
            _, model = knapsack(20)
            print(shared_worker().run(model, start=None, seconds=60, gap=0.0).status, flush=True)
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("script ran") == 1
    assert "kOptimal" in out.stdout


def test_oa_gives_the_same_answer_with_its_milp_in_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = paper_instance(InstanceSpec(60, "strong", 0.2, 0.2, seed=1))  # one MILP round
    runs: list[float] = []
    original = MilpWorker.run

    def counted(self: MilpWorker, *args: object, **kwargs: object) -> object:
        run = original(self, *args, **kwargs)  # type: ignore[arg-type]
        runs.append(run.seconds)
        return run

    monkeypatch.setattr(MilpWorker, "run", counted)
    results = {}
    for isolate in (False, True):
        oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(isolate=isolate, isolate_min_vars=0))
        results[isolate] = oa.solve(time_limit=60, gap=1e-4)
    plain, isolated = results[False], results[True]
    assert plain.iterations >= 1 and len(runs) == isolated.iterations >= 1  # every MILP round ran in the worker
    assert plain.change is not None and isolated.change is not None
    assert problem.revenue(isolated.change) == pytest.approx(problem.revenue(plain.change), rel=1e-6)
    assert isolated.bound is not None and isolated.bound >= problem.revenue(plain.change) - 1e-6 * abs(
        problem.revenue(plain.change)
    )
    assert isolated.bound - problem.revenue(isolated.change) <= 1e-4 * abs(isolated.bound)  # proven, like in-process


def _freeze_worker_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Freeze the child (SIGSTOP) just after it receives each model, as HiGHS in a long root cut round."""
    original = MilpWorker.run

    def hanging(self: MilpWorker, *args: object, **kwargs: object) -> object:
        assert self._conn is not None  # waits until the child is connected; freeze it once it has the model
        threading.Timer(0.05, os.kill, (self._process.pid, signal.SIGSTOP)).start()
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(MilpWorker, "run", hanging)


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="freezing the child needs SIGSTOP")
def test_oa_returns_its_best_plan_on_time_when_the_worker_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retailer case's failure mode: the MILP stops answering (HiGHS in a root cut round)."""
    problem = paper_instance(InstanceSpec(60, "strong", 0.2, 0.2, seed=1))  # the root does not close the gap
    _freeze_worker_runs(monkeypatch)
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(isolate_min_vars=0))
    began = time.perf_counter()
    outcome = oa.solve(time_limit=3.0, gap=1e-6)
    took = time.perf_counter() - began
    assert 2.7 <= took <= 3.4  # the limit, not the 16 s overrun of an in-process round after the kill
    assert outcome.message == "time limit" and outcome.iterations == 1
    assert outcome.change is not None  # the root's plan
    assert outcome.bound is not None and outcome.bound >= problem.revenue(outcome.change)


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="freezing the child needs SIGSTOP")
def test_oa_reports_progress_through_a_silent_milp_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root's LP rounds and a MILP round that finds nothing still reach the progress bar, with valid
    bounds that only tighten and a best plan that only improves."""
    problem = paper_instance(InstanceSpec(60, "strong", 0.2, 0.2, seed=1))
    _freeze_worker_runs(monkeypatch)
    reports: list[Progress] = []
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(isolate_min_vars=0))
    outcome = oa.solve(time_limit=3.0, gap=1e-6, progress=reports.append)
    assert outcome.change is not None and outcome.bound is not None
    final = problem.revenue(outcome.change)
    root = [r for r in reports if r.message.startswith("oa root round")]
    assert root and all(r.bound is not None for r in root)
    milp = [r for r in reports if r.message.startswith("oa MILP round")]
    assert len(milp) >= 3  # about every PROGRESS_EVERY = 0.5 s of the frozen round (about 2.5 s)
    times = [r.seconds for r in reports]
    assert max(np.diff(times)) <= 1.0  # never silent for long
    bounds = [r.bound for r in reports if r.bound is not None]
    assert all(b1 <= b0 + 1e-9 for b0, b1 in itertools.pairwise(bounds))
    assert min(bounds) >= final - 1e-9 * abs(final) and bounds[-1] == pytest.approx(outcome.bound)
    objectives = [r.objective for r in reports if r.objective is not None]
    assert objectives and all(o1 >= o0 for o0, o1 in itertools.pairwise(objectives))
    assert objectives[-1] == pytest.approx(final)
    assert all(r.fraction is not None and 0.0 <= r.fraction <= 1.0 for r in reports)


def test_worker_run_from_a_start_returns_the_better_plan_not_the_start() -> None:
    """highspy 1.16 can hand back the MIP start's vector with a better plan's objective (a 6-activity mix model
    presolved to 3 columns): the worker's plan must be the one whose objective it reports."""
    from dmplan.solver.mix import brute_force
    from dmplan.solver.mix.generator import random_small

    problem = random_small(np.random.default_rng(66824), 6)
    oracle = brute_force(problem)
    assert oracle.objective is not None
    oa = OuterApproximation(problem, formulate(problem, "misocp"), OAOptions(max_rounds=0))
    oa.solve(gap=1e-9)  # the root's cuts
    integer = np.flatnonzero(oa.model.integer)
    model = MilpArrays.from_highs(oa.highs, integer)
    start = oa.model.encode(np.zeros(problem.n), problem)  # the baseline: feasible, 1.5% below the optimum
    worker = MilpWorker()
    try:
        run = worker.run(model, start=start, seconds=20.0, gap=1e-9)
    finally:
        worker.close()
    assert run.solution is not None
    assert float(model.cost @ run.solution + model.offset) == pytest.approx(run.objective, rel=1e-9)
    assert problem.revenue(oa.model.decode(run.solution, problem)) == pytest.approx(oracle.objective, rel=1e-7)
