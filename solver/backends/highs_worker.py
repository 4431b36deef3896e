"""A HiGHS MILP run in a child process, so that a deadline is a deadline.

HiGHS checks neither its clock nor its interrupt callbacks inside its root cut rounds, which take about
15 s each on the retailer case's 43,000-row MILP: a 10 s solve ran for up to 31 s. Run in a child
process, the MILP can be killed when its deadline passes, and the best plan found up to then is kept,
because every plan is streamed to the parent as soon as HiGHS finds it, together with HiGHS's dual bound.
While the child searches, the parent is free to work on those plans (the ``oa`` backend polishes them),
so the MILP and the polishing run on two cores.

One worker process serves the whole Python process (:func:`shared_worker`): it is started once, in the
background, and re-started only after a kill. Each run sends the full model (the retailer MILP pickles to
about 5 MB in a few milliseconds), so the child keeps no state between runs.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import math
import multiprocessing
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import highspy
import numpy as np

from dmplan.solver.backends.highs import MilpArrays, new_highs, rerun_without_start, set_time_limit

#: seconds the parent waits beyond a run's time limit before it kills the child
GRACE = 0.3
#: seconds the parent waits for a new child to connect (a cold interpreter importing highspy: about 0.4 s)
STARTUP = 60.0
_ADDRESS = "DMPLAN_HIGHS_WORKER_ADDRESS"
_KEY = "DMPLAN_HIGHS_WORKER_KEY"
#: the child reports HiGHS's dual bound when it improves by at least this (relative), not at every node
BOUND_STEP = 1e-7


class WorkerFailed(RuntimeError):
    """The worker process could not start or died: the caller runs the MILP in-process instead."""


@dataclass(frozen=True)
class MilpRun:
    """What one MILP run left behind.

    ``status`` is None when the run was killed at its deadline; ``dual_bound`` is then the last bound the
    child reported (still valid: HiGHS's dual bound only tightens), ``solution`` None.
    """

    status: highspy.HighsModelStatus | None
    dual_bound: float
    objective: float
    nodes: int
    solution: np.ndarray | None
    seconds: float

    @property
    def killed(self) -> bool:
        return self.status is None


class MilpWorker:
    """A child process that runs HiGHS MILPs one at a time (see the module docstring).

    The child is a fresh interpreter started as ``python -c "...serve()"`` (the frozen bundle accepts the
    same ``-c``), not through :mod:`multiprocessing`'s spawn, which re-runs the parent's main script in the
    child: a user's unguarded script would run twice. It connects back over a local socket or named pipe
    with a random key; :meth:`run` waits for it the first time.
    """

    def __init__(self) -> None:
        key = secrets.token_bytes(32)
        self._listener = Listener(authkey=key)
        root = str(Path(__file__).resolve().parents[2])  # the directory holding the ``solver`` package
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env[_ADDRESS] = repr(self._listener.address)
        env[_KEY] = key.hex()
        code = "from dmplan.solver.backends.highs_worker import serve; serve()"
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", code],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # HiGHS writes to the C stdout; the parent's may be a JSON summary
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as error:
            self._listener.close()
            raise WorkerFailed(f"could not start the HiGHS worker: {error}") from error
        self._connected: list[Connection] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()
        self.lock = threading.Lock()

    def _accept(self) -> None:
        try:
            self._connected.append(self._listener.accept())
        except (OSError, EOFError, multiprocessing.AuthenticationError):
            pass
        finally:
            self._listener.close()

    @property
    def _conn(self) -> Connection:
        self._accepting.join(timeout=STARTUP)
        if not self._connected:
            self.kill()
            raise WorkerFailed(f"the HiGHS worker did not connect within {STARTUP:.0f} s")
        return self._connected[0]

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def run(
        self,
        model: MilpArrays,
        *,
        start: np.ndarray | None,
        seconds: float | None,
        gap: float,
        options: Mapping[str, bool | int | float | str] | None = None,
        on_plan: Callable[[np.ndarray, bool], None] | None = None,
        stop: Callable[[float], bool] | None = None,
    ) -> MilpRun:
        """Run ``model`` in the child; kill it ``GRACE`` seconds after ``seconds`` if it is still running.

        Parameters
        ----------
        model:
            The MILP.
        start:
            A start point (all columns), or None.
        seconds:
            Time limit of the run (None: none).
        gap:
            HiGHS's ``mip_rel_gap``.
        options:
            Further HiGHS options.
        on_plan:
            Called in the parent with every improving MILP solution HiGHS finds (all columns) and whether it
            is the latest one (no later plan is waiting in the pipe: slow work on a plan can skip the others).
        stop:
            Called with HiGHS's latest dual bound after every message and at least every 0.25 s; True asks
            the child to stop at its next callback.

        Returns
        -------
        MilpRun

        Raises
        ------
        WorkerFailed
            When the child died (not killed by us) or the pipe broke.
        """
        began = time.perf_counter()
        deadline = math.inf if seconds is None else began + max(0.0, seconds) + GRACE
        try:
            # the child's clock starts when the message arrives; an absolute wall-clock deadline keeps its
            # time limit inside ours even when it is still starting up
            until = None if seconds is None else time.time() + max(0.0, seconds)
            self._conn.send(("run", model, start, until, gap, dict(options or {})))
        except (OSError, ValueError) as error:
            raise WorkerFailed(f"the HiGHS worker is gone: {error}") from error
        bound = math.inf if model.maximize else -math.inf
        stopping = False
        while True:
            wait = deadline - time.perf_counter()
            if wait <= 0:
                self.kill()
                return MilpRun(None, bound, math.nan, 0, None, time.perf_counter() - began)
            try:
                ready = self._conn.poll(min(wait, 0.25))
                message: tuple[Any, ...] = self._conn.recv() if ready else ("tick",)
            except (EOFError, OSError) as error:
                raise WorkerFailed(f"the HiGHS worker died: {error}") from error
            kind = message[0]
            if kind == "tick" and not self.alive:
                raise WorkerFailed(f"the HiGHS worker exited with code {self._process.returncode}")
            if kind == "done":
                _, status, dual_bound, objective, nodes, solution = message
                return MilpRun(
                    highspy.HighsModelStatus(status),
                    dual_bound,
                    objective,
                    nodes,
                    solution,
                    time.perf_counter() - began,
                )
            if kind == "failed":
                raise WorkerFailed(f"the HiGHS worker failed: {message[1]}")
            if kind == "plan" and on_plan is not None:
                try:
                    latest = not self._conn.poll()
                except (EOFError, OSError) as error:
                    raise WorkerFailed(f"the HiGHS worker died: {error}") from error
                on_plan(message[1], latest)
            elif kind == "bound":
                bound = min(bound, message[1]) if model.maximize else max(bound, message[1])
            if not stopping and stop is not None and stop(bound):
                stopping = True
                self._send_quietly(("stop",))

    def kill(self) -> None:
        """End the child at once (a later run needs a new worker)."""
        if self.alive:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        for conn in self._connected:
            conn.close()

    def close(self) -> None:
        """Ask the child to exit; kill it if it does not."""
        if self.alive and self._connected:
            self._send_quietly(("close",))
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=2)
        self.kill()

    def _send_quietly(self, message: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError, ValueError, WorkerFailed):  # the child is gone; run() notices
            self._conn.send(message)


_shared: MilpWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> MilpWorker:
    """The process's worker, started (in the background) on first use and after a kill.

    Raises
    ------
    WorkerFailed
        When no process can be started here.
    """
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            _shared = MilpWorker()
        return _shared


@atexit.register
def _close_shared() -> None:
    if _shared is not None:
        _shared.close()


# -- the child ---------------------------------------------------------------------------------------------
def serve() -> None:
    """The child's entry point: connect to the parent named in the environment and serve its runs."""
    address = ast.literal_eval(os.environ[_ADDRESS])
    conn = Client(address, authkey=bytes.fromhex(os.environ[_KEY]))
    _serve(conn)


def _serve(conn: Connection) -> None:
    """The child's loop: one ``("run", ...)`` message at a time until ``("close",)`` or the pipe closes."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "close":
            return
        if message[0] != "run":
            continue  # a "stop" that arrived after its run ended
        try:
            conn.send(_run(conn, *message[1:]))
        except Exception as error:  # report, and stay up for the next run
            conn.send(("failed", f"{type(error).__name__}: {error}"))


def _run(
    conn: Connection,
    model: MilpArrays,
    start: np.ndarray | None,
    until: float | None,
    gap: float,
    options: dict[str, bool | int | float | str],
) -> tuple[Any, ...]:
    h = new_highs()
    for key, value in options.items():
        h.setOptionValue(key, value)
    model.to_highs(h)
    if start is not None:
        h.setSolution(start.size, np.arange(start.size, dtype=np.int32), np.asarray(start, dtype=float))
    seconds = None if until is None else max(0.0, until - time.time())
    set_time_limit(h, seconds)
    h.setOptionValue("mip_rel_gap", gap)
    deadline = math.inf if seconds is None else time.perf_counter() + seconds
    state = {"stop": False, "bound": math.nan}

    def interrupt(event: Any) -> None:
        while conn.poll():
            if conn.recv()[0] == "stop":
                state["stop"] = True
        if state["stop"] or time.perf_counter() >= deadline:
            event.interrupt()
            return
        if event.callback_type == highspy.cb.HighsCallbackType.kCallbackMipInterrupt:
            bound = float(event.data_out.mip_dual_bound)
            last = state["bound"]
            if math.isfinite(bound) and not (abs(bound - last) <= BOUND_STEP * max(1.0, abs(bound))):
                state["bound"] = bound
                conn.send(("bound", bound))

    def improving(event: Any) -> None:
        conn.send(("plan", np.array(event.data_out.mip_solution, dtype=float)))

    h.cbMipInterrupt += interrupt
    h.cbSimplexInterrupt += interrupt
    h.cbIpmInterrupt += interrupt
    h.cbMipImprovingSolution += improving
    h.run()
    if start is not None and not state["stop"]:
        rerun_without_start(h, h.run)
    info = h.getInfo()
    solution = h.getSolution()
    values = np.asarray(solution.col_value) if info.primal_solution_status == 2 and solution.value_valid else None
    return (
        "done",
        int(h.getModelStatus()),
        float(info.mip_dual_bound),
        float(info.objective_function_value),
        int(info.mip_node_count),
        values,
    )
