"""The frozen one-folder bundle (PyInstaller): built for real, then run as users and Excel run it.

Slow (a few minutes): skipped only when DMPLAN_SKIP_BUNDLE=1; CI runs it.
"""

from __future__ import annotations

import importlib.util
import os
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
    data = BUNDLE / "_internal" / "dmplan" / "addin" / "data"
    assert (data / "xlsm" / "dmplan.xlam").read_bytes() == (ROOT / "xlsm" / "dmplan.xlam").read_bytes()
    assert (BUNDLE / "_internal" / "dmplan" / "solver" / "coupon" / "data" / "customers.csv").exists()
    for template in (ROOT / "templates").glob("*.xls*"):
        assert (BUNDLE / "templates" / template.name).exists()
        assert (data / "templates" / template.name).exists()
    # SCIP is the benchmarks' reference (dmplan[bench]), not shipped to users
    assert not list((BUNDLE / "_internal").glob("pyscipopt*"))


@pytest.mark.slow
@skip_bundle
def test_frozen_executable_runs_like_python_for_xlwings(exe: Path, tmp_path: Path) -> None:
    """RunPython starts Interpreter_Win/Mac as `<exe> -B -u -W ignore -c "<code>" --wb=... --from_xl=1`.

    xlwings puts the workbook's folder on sys.path, so the demo workbook's module beside it
    (dmplan_demo.py) imports in the frozen executable too.
    """
    book = tmp_path / "plan_march.xlsm"  # a renamed template: its button imports dmplan all the same
    addin = tmp_path / "XLSTART" / "dmplan (1).xlam"
    code = (
        "import xlwings.utils;"
        f"xlwings.utils.prepare_sys_path('true;{book};{addin};;;;');"
        "import sys, dmplan, dmplan.addin.xl;"
        "print('argv', sys.argv[1:]);"
        "print('frozen', getattr(sys, 'frozen', False), callable(dmplan.main), callable(dmplan.evaluate_formulas))"
    )
    proc = run(exe, "-B", "-u", "-W", "ignore", "-c", code, "--wb=plan_march.xlsm", "--from_xl=1")
    assert proc.returncode == 0, proc.stderr
    assert "argv ['--wb=plan_march.xlsm', '--from_xl=1']" in proc.stdout
    assert "frozen True True True" in proc.stdout


@pytest.mark.slow
@skip_bundle
def test_frozen_executable_answers_the_function_server_command_like_python(exe: Path) -> None:
    """``<interpreter> -B -c "...import xlwings; xlwings.serve(...)"``: the bundle answers as python does
    (build/check_frozen.py, which the release workflow runs on Windows and macOS too)."""
    assert _load_build_module("check_frozen").problems(exe) == []


def test_the_frozen_check_fails_on_an_executable_that_is_not_python(tmp_path: Path) -> None:
    """The check cannot pass by accident: a CLI that ignores -c is caught."""
    fake = tmp_path / "dmplan"
    fake.write_text("#!/bin/sh\necho 'usage: dmplan {solve,template,demo,bench}'\n")
    fake.chmod(0o755)
    found = _load_build_module("check_frozen").problems(fake)
    assert found and "-B -c printed" in found[0]


@pytest.mark.slow
@skip_bundle
def test_frozen_solvers_work(exe: Path) -> None:
    # cvxpy gets ECOS explicitly: its default QP solver OSQP segfaulted in processes that had
    # imported pulp and pyscipopt, with these wheels. pyscipopt is not in the bundle (dmplan[bench]).
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
import importlib.util
print("scip", importlib.util.find_spec("pyscipopt"))
import cvxpy as cp
z = cp.Variable(); prob = cp.Problem(cp.Minimize(cp.square(z - 1.5))); prob.solve(solver="ECOS")
print("cvxpy", round(float(z.value), 3))
"""
    proc = run(exe, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "highs -9.0" in proc.stdout
    assert "cbc 3.0" in proc.stdout
    assert "scip None" in proc.stdout
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


# --------------------------------------------------------------------------- the spec's logic, on any OS
def _load_build_module(name: str):
    spec = importlib.util.spec_from_file_location(f"dmplan_build_{name}", ROOT / "build" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_xlwings_root(root: Path, version: str, names: tuple[str, ...] = ("64", "32")) -> Path:
    """A Windows environment root as xlwings' wheel leaves it: the DLLs beside python.exe."""
    (root / "Lib" / "site-packages" / "xlwings").mkdir(parents=True)
    (root / "Lib" / "site-packages" / "xlwings" / "__init__.py").write_text(f"__version__ = '{version}'\n")
    for bits in names:
        (root / f"xlwings{bits}-{version}.dll").write_bytes(b"MZ fake " + bits.encode())
    (root / "python.exe").write_bytes(b"MZ")
    return root


def test_layout_finds_both_xlwings_dlls_on_windows_only(tmp_path: Path) -> None:
    layout = _load_build_module("bundle_layout")
    root = _fake_xlwings_root(tmp_path / "Python311", "0.37.8")
    found = layout.xlwings_dlls("0.37.8", "win32", [tmp_path / "elsewhere", root])
    assert [p.name for p in found] == ["xlwings64-0.37.8.dll", "xlwings32-0.37.8.dll"]
    assert layout.xlwings_dlls("0.37.8", "linux", [root]) == []
    assert layout.xlwings_dlls("0.37.8", "darwin", [root]) == []
    with pytest.raises(FileNotFoundError, match=r"xlwings64-0\.37\.9\.dll"):
        layout.xlwings_dlls("0.37.9", "win32", [root])  # another version's DLL does not do
    bundle = tmp_path / "out" / "dmplan"
    bundle.mkdir(parents=True)
    placed = layout.place_beside_executable(found, bundle)
    assert sorted(p.name for p in bundle.iterdir()) == ["xlwings32-0.37.8.dll", "xlwings64-0.37.8.dll"]
    assert all(p.parent == bundle for p in placed)
    assert "win32com.server.policy" in layout.hidden_imports("win32") and layout.hidden_imports("linux") == []


def test_spec_puts_the_dlls_beside_the_executable_on_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run build/dmplan.spec as PyInstaller would on Windows, with PyInstaller's build steps recorded."""
    import PyInstaller.utils.hooks as hooks
    import xlwings

    root = _fake_xlwings_root(tmp_path / "Python311", xlwings.__version__)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the spec puts its staging folder first
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "prefix", str(root))
    monkeypatch.setattr(hooks, "collect_all", lambda *a, **k: ([], [], []))
    calls: dict[str, tuple] = {}

    def recorder(name):
        def record(*args, **kwargs):
            calls[name] = (args, kwargs)
            return type(name, (), {"pure": [], "scripts": [], "binaries": [], "datas": []})()

        return record

    dist = tmp_path / "dist"
    (dist / "dmplan").mkdir(parents=True)
    namespace = {
        "SPECPATH": str(ROOT / "build"),
        "workpath": str(tmp_path / "work"),
        "DISTPATH": str(dist),
        **{name: recorder(name) for name in ("Analysis", "PYZ", "EXE", "COLLECT")},
    }
    spec = ROOT / "build" / "dmplan.spec"
    exec(compile(spec.read_text(), str(spec), "exec"), namespace)
    version = xlwings.__version__
    assert sorted(p.name for p in (dist / "dmplan").iterdir()) == [
        f"xlwings32-{version}.dll",
        f"xlwings64-{version}.dll",
    ]
    analysis = calls["Analysis"][1]
    assert {"xlwings.com_server", "pythoncom", "pywintypes", "win32com.server.policy"} <= set(analysis["hiddenimports"])
    assert "pyscipopt" in analysis["excludes"]
    targets = {target for _, target in analysis["datas"]}
    assert {"dmplan/addin/data/xlsm", "dmplan/addin/data/templates"} <= targets
