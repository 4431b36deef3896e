"""Type-check DMPlan as it installs: stage dmplan/ with addin/ and solver/ as its subpackages, run mypy.

The checkout keeps addin/ and solver/ at the top (the design card's layout) while the distribution
installs them as dmplan.addin and dmplan.solver; mypy does not follow the package's ``__path__``
extension, so it checks a staged copy made of symlinks. Usage: ``python3 build/typecheck.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    stage = ROOT / "build" / "work" / "typecheck"
    shutil.rmtree(stage, ignore_errors=True)
    package = stage / "dmplan"
    package.mkdir(parents=True)
    for path in (ROOT / "dmplan").glob("*.py"):
        os.symlink(path, package / path.name)
    for folder in ("addin", "solver", "bench"):
        os.symlink(ROOT / folder, package / folder)
    config = str(ROOT / "pyproject.toml")
    return subprocess.call([sys.executable, "-m", "mypy", "--config-file", config, "-p", "dmplan"], cwd=stage)


if __name__ == "__main__":
    sys.exit(main())
