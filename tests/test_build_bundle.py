"""The frozen one-folder bundle (PyInstaller): built for real, then run as users and Excel run it.

Slow (a few minutes): skipped only when DMPLAN_SKIP_BUNDLE=1; CI runs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "build" / "out" / "dmplan"

skip_bundle = pytest.mark.skipif(os.environ.get("DMPLAN_SKIP_BUNDLE") == "1", reason="DMPLAN_SKIP_BUNDLE=1")


def _load_entry():
    spec = importlib.util.spec_from_file_location("dmplan_frozen_entry", ROOT / "build" / "entry.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exe() -> Path:
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(ROOT / "build" / "build_bundle.sh"), "--no-smoke"],
        capture_output=True,
        text=True,
        timeout=3600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    path = BUNDLE / ("dmplan.exe" if sys.platform == "win32" else "dmplan")
    assert path.exists()
    print(f"bundle built in {time.monotonic() - start:.0f} s: {proc.stdout.strip().splitlines()[-1]}")
    return path


def run(exe: Path, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XLWINGS_LICENSE"))}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, stdin=subprocess.DEVNULL
    )


@pytest.mark.slow
@skip_bundle
def test_frozen_executable_serves_as_the_highs_worker(exe: Path) -> None:
    """The MILP worker re-launches sys.executable with ``-c``: in the bundle that is dmplan itself."""
    code = """
import sys, highspy, numpy as np
from dmplan.solver.backends.highs import MilpArrays, new_highs
from dmplan.solver.backends.highs_worker import shared_worker
h = new_highs()
h.addVars(2, np.array([0.0, 0.0]), np.array([4.0, 4.0]))
h.changeColsCost(2, np.array([0, 1], dtype=np.int32), np.array([-1.0, -2.0]))
h.addRow(-np.inf, 5.5, 2, np.array([0, 1], dtype=np.int32), np.array([1.0, 1.0]))
worker = shared_worker()
run = worker.run(MilpArrays.from_highs(h, np.array([0, 1])), start=None, seconds=60, gap=0.0)
print("worker", run.status, round(run.objective, 6), worker._process.args[0] == sys.executable)
"""
    proc = run(exe, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "worker HighsModelStatus.kOptimal -9.0 True" in proc.stdout


@pytest.mark.slow
@skip_bundle
def test_bundle_holds_the_addin_and_data(exe: Path) -> None:
    assert (BUNDLE / "dmplan.xlam").exists()
    assert (BUNDLE / "_internal" / "xlsm" / "dmplan.xlam").exists()
    assert (BUNDLE / "_internal" / "dmplan" / "solver" / "coupon" / "data" / "customers.csv").exists()
    if any((ROOT / "templates").glob("*.xls*")):
        assert any((BUNDLE / "templates").glob("*.xls*"))


@pytest.mark.slow
@skip_bundle
def test_frozen_executable_runs_like_python_for_xlwings(exe: Path, tmp_path: Path) -> None:
    """RunPython starts Interpreter_Win/Mac as `<exe> -B -u -W ignore -c "<code>" --wb=... --from_xl=1`.

    xlwings puts the workbook's folder on sys.path, so the demo workbook's module beside it
    (dmplan_demo.py) imports in the frozen executable too.
    """
    book = tmp_path / "dmplan_demo.xlsm"
    shutil.copy(ROOT / "xlsm" / "dmplan_demo.py", tmp_path / "dmplan_demo.py")
    # the installed add-in lives in Excel's start-up folder, not in the bundle; xlwings puts both
    # folders on sys.path in set order (random), so a dmplan_demo.py there would win half the time
    addin = tmp_path / "XLSTART" / "dmplan.xlam"
    code = (
        "import xlwings.utils;"
        f"xlwings.utils.prepare_sys_path('true;{book};{addin};;;;');"
        "import sys, dmplan, dmplan_demo, dmplan.addin.xl;"
        "print('argv', sys.argv[1:]);"
        "print('frozen', getattr(sys, 'frozen', False), callable(dmplan.main), callable(dmplan_demo.main));"
        "print('demo module', dmplan_demo.__file__)"
    )
    proc = run(exe, "-B", "-u", "-W", "ignore", "-c", code, "--wb=dmplan_demo.xlsm", "--from_xl=1")
    assert proc.returncode == 0, proc.stderr
    assert "argv ['--wb=dmplan_demo.xlsm', '--from_xl=1']" in proc.stdout
    assert "frozen True True True" in proc.stdout
    assert f"demo module {tmp_path / 'dmplan_demo.py'}" in proc.stdout


@pytest.mark.slow
@skip_bundle
def test_frozen_solvers_work(exe: Path) -> None:
    # cvxpy gets ECOS explicitly: its default QP solver OSQP segfaults in any process that has
    # imported pulp (which loads pyscipopt) -- also outside the bundle, with these wheels.
    code = """
import highspy, numpy as np
h = highspy.Highs(); h.setOptionValue("output_flag", False)
h.addVars(2, np.array([0.0, 0.0]), np.array([4.0, 4.0]))
h.changeColsCost(2, np.array([0, 1], dtype=np.int32), np.array([-1.0, -2.0]))
h.addRow(-np.inf, 5.0, 2, np.array([0, 1], dtype=np.int32), np.array([1.0, 1.0]))
h.run(); print("highs", round(h.getInfo().objective_function_value, 6))
import pulp
p = pulp.LpProblem("t", pulp.LpMaximize); x = pulp.LpVariable("x", 0, 3, cat="Integer"); p += x
p.solve(pulp.PULP_CBC_CMD(msg=False)); print("cbc", pulp.value(x))
import pyscipopt
m = pyscipopt.Model(); m.hideOutput(); y = m.addVar(vtype="I", ub=7); m.setObjective(y, "maximize"); m.optimize()
print("scip", m.getVal(y))
import cvxpy as cp
z = cp.Variable(); prob = cp.Problem(cp.Minimize(cp.square(z - 1.5))); prob.solve(solver="ECOS")
print("cvxpy", round(float(z.value), 3))
"""
    proc = run(exe, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "highs -9.0" in proc.stdout
    assert "cbc 3.0" in proc.stdout
    assert "scip 7.0" in proc.stdout
    assert "cvxpy 1.5" in proc.stdout


@pytest.mark.slow
@skip_bundle
def test_frozen_python_errors_exit_nonzero(exe: Path) -> None:
    """The VBA shows stderr in a message box when the exit code is not 0."""
    proc = run(exe, "-c", "raise SystemExit('boom')")
    assert proc.returncode != 0 and "boom" in proc.stderr
    proc = run(exe, "-c", "1/0")
    assert proc.returncode != 0 and "ZeroDivisionError" in proc.stderr


@pytest.mark.slow
@skip_bundle
def test_frozen_demo(exe: Path, tmp_path: Path) -> None:
    proc = run(exe, "demo", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "dmplan-demo.xlsx").exists()


def test_entry_parses_python_switches() -> None:
    entry = _load_entry()
    assert entry.python_command(["-B", "-u", "-W", "ignore", "-c", "x=1", "--wb=a"]) == ("x=1", ["-c", "--wb=a"])
    assert entry.python_command(["-Wignore", "-cprint(1)"]) == ("print(1)", ["-c"])
    assert entry.python_command(["demo"]) is None
    assert entry.python_command(["solve", "-c", "x"]) is None  # a CLI call, not python -c
    assert entry.python_command([]) is None
