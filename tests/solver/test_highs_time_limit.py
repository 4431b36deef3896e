"""A live HiGHS model keeps its time limit per run, however long its earlier runs took."""

from __future__ import annotations

import highspy
import numpy as np

from dmplan.solver.backends.highs import new_highs, set_time_limit


def _random_lp(h: highspy.Highs, rng: np.random.Generator, n: int = 300, m: int = 200) -> None:
    h.addVars(n, np.zeros(n), np.full(n, 10.0))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), -rng.uniform(1, 2, n))
    for _ in range(m):
        cols = rng.choice(n, size=20, replace=False).astype(np.int32)
        h.addRow(-highspy.kHighsInf, rng.uniform(5, 10), cols.size, cols, rng.uniform(0.1, 1, cols.size))


def test_time_limit_counts_from_the_next_run_on_a_live_model() -> None:
    h = new_highs()
    _random_lp(h, np.random.default_rng(0))
    for _ in range(500):  # cold solves until the instance has run for longer than the next run's limit
        h.clearSolver()
        h.run()
        if h.getRunTime() > 0.1:
            break
    assert h.getRunTime() > 0.1
    h.changeColCost(0, -1.5)  # a warm re-solve takes milliseconds
    set_time_limit(h, 0.05)
    h.run()
    # a plain time_limit of 0.05 s would already be spent: HiGHS sums the run time of every run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal


def test_no_time_limit() -> None:
    h = new_highs()
    set_time_limit(h, None)
    assert h.getOptionValue("time_limit")[1] == highspy.kHighsInf
