"""What each entry point imports (issue 12). Not timed: `dmplan bench startup` measures the seconds;
this checks the cause, that a path imports only what it needs, in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy.optimize", "scipy.sparse", "highspy", "cvxpy", "pulp", "dmplan.solver.mix", "dmplan.addin.pipeline")

PROBE = """
import json, runpy, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_imports_no_solver_and_no_excel_library() -> None:
    code = (
        "sys.argv = ['dmplan', '--help']\n"
        "try:\n    runpy.run_module('dmplan', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "assert 'xlwings' not in sys.modules and 'pandas' not in sys.modules, 'excel libraries loaded'"
    )
    assert loaded(code) == []


def test_the_buttons_module_loads_the_solvers_only_when_it_solves() -> None:
    """dmplan.main() shows its first status message before the pipeline (models, solvers) is imported."""
    assert loaded("import xlwings, dmplan, dmplan.addin.xl") == []
    assert "dmplan.addin.pipeline" in loaded("import dmplan.addin.xl as xl\nimport dmplan.addin.pipeline")


def test_import_dmplan_is_light() -> None:
    assert loaded("import dmplan") == []
