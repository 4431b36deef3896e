"""Large-neighbourhood search on the outer-approximation MILP, in a thread, while a worker process proves the bound.

On a large model the MILP round runs in a worker process (:mod:`dmplan.solver.backends.highs_worker`) and HiGHS
spends it in its root cut loop: the bound tightens, but no plan comes for a minute (retailer seed 2: none after
the first second of a 85 s round) and the parent process only waits. This search uses that idle core. Each step
frees the region binaries *and* the changes of a few hundred activities, fixes every other activity at the
incumbent, and lets HiGHS solve that small MILP over the same cuts (seconds: the fixed activities' rows vanish in
presolve), started from the incumbent. A plan in other regions and better on the MILP's objective goes to
``improve``, which polishes it over all activities (the solver's polish) and keeps it when its true revenue is
better. The next step starts from the incumbent then, whoever found it.

Two neighbourhoods take turns:

- **margins**: the activities whose region choice the root's row prices leave nearest a tie
  (:func:`dmplan.solver.mix.core.choice_margins`), perturbed by random noise so that steps differ;
- **rules**: the members of randomly drawn group rules, until the size is reached (a rule couples its members, so
  moving spend inside a group needs them free together).

The size adapts: it grows when HiGHS proved a neighbourhood optimal and shrinks when a step ended inside HiGHS's
root (its cut loop on a large neighbourhood took the whole step). The search never reports a bound: a
neighbourhood's bound bounds only the neighbourhood.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np

from dmplan.solver.backends.highs import MilpArrays, new_highs, rerun_without_start, set_time_limit, stop_when
from dmplan.solver.mix.formulation import ConicModel
from dmplan.solver.mix.model import MixProblem

#: activities freed by the first step, and the bounds of the size as it adapts
FIRST_SIZE = 300
MIN_SIZE = 50
MAX_SHARE = 0.25  #: at most this share of the activities is free in one step
#: seconds of one step's MILP. Retailer seed 2 (3,000 activities), plan 3,389,961 after the root: 300-400 free
#: activities and 4-6 s per step reached 3,390,071-3,390,073 in 60 s; 600 free and 8 s reached 3,390,014 (most
#: steps ended in HiGHS's root cut loop); 150 free with 6 s found 3,389,967 (too little room per step)
STEP_SECONDS = 5.0
#: no step starts with less time than this before the search's end: HiGHS's presolve of the full-size MILP takes
#: 0.2-0.3 s without a callback, which ran past the end (a 100 s solve returned after 100.4 s)
MIN_STEP_SECONDS = 1.0
GROW = 1.25
SHRINK = 0.8
#: HiGHS's relative gap inside a neighbourhood: the gains sought are 1e-5 of the revenue and less
STEP_GAP = 1e-9


@dataclass
class NeighbourhoodStats:
    """What the search did: steps run, steps whose plan was handed on, seconds."""

    steps: int = 0
    better: int = 0
    restarts: int = 0  #: steps run again without the start, which HiGHS had handed back for a better plan
    seconds: float = 0.0


class NeighbourhoodSearch:
    """Neighbourhood steps in a thread of their own until :meth:`stop`.

    Parameters
    ----------
    problem, model:
        The problem and its formulation (for encoding plans and finding each activity's columns).
    milp:
        The MILP over the current cuts (copied into the search's own HiGHS: the caller's models stay untouched).
    margins:
        Per activity, its priced choice margin at the root (``inf``: no region choice), or None without a root.
    incumbent:
        Returns the best plan known (a change vector), read at the start of every step.
    improve:
        Receives every plan in other regions than its step's start and better on the MILP's objective (a change
        vector); called in the search's thread, so it must be thread-safe.
    until:
        When the search ends by itself (``time.perf_counter()``), also inside a step.
    seed:
        Seed of the neighbourhoods' random draws (a solve is repeatable on an idle machine).
    """

    def __init__(
        self,
        problem: MixProblem,
        model: ConicModel,
        milp: MilpArrays,
        margins: np.ndarray | None,
        incumbent: Callable[[], np.ndarray | None],
        improve: Callable[[np.ndarray], None],
        until: float = math.inf,
        seed: int = 0,
    ) -> None:
        self.problem = problem
        self.model = model
        self.stats = NeighbourhoodStats()
        self._milp = milp
        self._incumbent = incumbent
        self._improve = improve
        self._rng = np.random.default_rng(seed)
        choice = np.zeros(problem.n, dtype=bool)
        choice[model.piece_activity[model.piece_z >= 0]] = True
        self._choice = np.flatnonzero(choice)  #: activities with a region binary: the only ones a step can move
        if margins is None or not np.isfinite(margins[self._choice]).any():
            margins = np.zeros(problem.n)
        finite = margins[self._choice][np.isfinite(margins[self._choice])]
        self._margins = margins
        median = float(np.median(finite)) if finite.size else 0.0
        self._noise = median if median > 0 else 1.0
        self._rules = [np.flatnonzero(rule.weights != 0) for rule in problem.rules]
        self._size = float(FIRST_SIZE)
        self._stop = threading.Event()
        self._deadline = math.inf  #: the running step's end
        self._until = until
        self._highs = new_highs()
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("mip_rel_gap", STEP_GAP)
        stop_when(self._highs, lambda: self._stop.is_set() or time.perf_counter() >= self._deadline)
        milp.to_highs(self._highs)
        # not a daemon: a step left running by ``stop(wait)`` inside HiGHS when the program ends would abort it
        # ("terminate called without an active exception", exit 134); Python waits for it at exit instead, until
        # HiGHS's next callback
        self._thread = threading.Thread(target=self._run, daemon=False)
        self._thread.start()

    def stop(self, wait: float | None = None) -> NeighbourhoodStats:
        """Stop the running step at HiGHS's next callback and return what the search did, waiting for its thread
        at most ``wait`` seconds (None: until it ends). From here on no plan is handed on.

        HiGHS calls no callback in some phases (its presolve of the full-size MILP): a retailer solve's last step
        ran 0.3-0.6 s past the search's end there, and a 100 s solve returned after 100.2-100.7 s. A thread still
        in such a phase after ``wait`` ends on its own at HiGHS's next callback.
        """
        self._stop.set()
        self._thread.join(wait)
        return self.stats

    def _run(self) -> None:
        began = time.perf_counter()
        kinds = [self._by_margin, self._by_rules] if self._rules else [self._by_margin]
        while not self._stop.is_set() and time.perf_counter() < self._until - MIN_STEP_SECONDS:
            plan = self._incumbent()
            if plan is None:
                break
            free = kinds[self.stats.steps % len(kinds)]()
            self.stats.steps += 1
            self._step(plan, free)
        self.stats.seconds = time.perf_counter() - began

    def _size_now(self) -> int:
        return int(min(max(MIN_SIZE, self._size), max(MIN_SIZE, MAX_SHARE * self._choice.size)))

    def _by_margin(self) -> np.ndarray:
        noisy = self._margins[self._choice] + self._rng.exponential(self._noise, self._choice.size)
        free = np.zeros(self.problem.n, dtype=bool)
        free[self._choice[np.argsort(noisy, kind="stable")[: self._size_now()]]] = True
        return free

    def _by_rules(self) -> np.ndarray:
        free = np.zeros(self.problem.n, dtype=bool)
        size = self._size_now()
        for j in self._rng.permutation(len(self._rules)).tolist():
            free[self._rules[j]] = True
            if np.count_nonzero(free) >= size:
                break
        return free

    def _step(self, plan: np.ndarray, free: np.ndarray) -> None:
        """Solve the MILP with every activity outside ``free`` fixed at ``plan``; hand on a better plan."""
        m, h = self.model, self._highs
        pieces = ~free[m.piece_activity]
        columns = np.concatenate([m.piece_y[pieces], m.piece_z[pieces & (m.piece_z >= 0)]]).astype(np.int32)
        values = m.encode(plan, self.problem)
        h.changeColsBounds(columns.size, columns, values[columns], values[columns])
        h.clearSolver()
        h.setSolution(values.size, np.arange(values.size, dtype=np.int32), values)
        start = float(self._milp.cost @ values + self._milp.offset)
        self._deadline = min(time.perf_counter() + STEP_SECONDS, self._until)
        set_time_limit(h, self._deadline - time.perf_counter())
        try:
            h.run()
            # the run again begins with a presolve without callbacks: not in the step's last MIN_STEP_SECONDS
            if self._deadline - time.perf_counter() >= MIN_STEP_SECONDS and rerun_without_start(h, h.run):
                self.stats.restarts += 1
            status = h.getModelStatus()
            info = h.getInfo()
            solution = h.getSolution()
            found = info.primal_solution_status == 2 and solution.value_valid
            if found and info.objective_function_value > start + 1e-9 * max(1.0, abs(start)):
                change = m.decode(np.asarray(solution.col_value), self.problem)
                # the same regions as the start: only HiGHS's ``t`` sat lower on the cuts, and the incumbent's
                # changes are already the exact optimum over its regions
                if not np.array_equal(np.sign(change), np.sign(plan)) and not self._stop.is_set():
                    self.stats.better += 1
                    self._improve(change)
            if status == highspy.HighsModelStatus.kOptimal:
                self._size *= GROW
            elif info.mip_node_count == 0:
                self._size *= SHRINK
        finally:
            self._deadline = math.inf
            h.changeColsBounds(columns.size, columns, self._milp.col_lower[columns], self._milp.col_upper[columns])
