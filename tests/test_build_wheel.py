"""The wheel (pip install dmplan) carries the templates, the macro workbooks and the add-in as package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_templates_and_addin(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "-w",
            str(tmp_path),
            "--no-deps",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next(tmp_path.glob("dmplan-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "dmplan/addin/data/templates/dm_plan.xlsx",
        "dmplan/addin/data/templates/dm_plan.xlsm",
        "dmplan/addin/data/templates/mix_plan.xlsx",
        "dmplan/addin/data/templates/mix_plan.xlsm",
        "dmplan/addin/data/xlsm/dmplan.xlam",
        "dmplan/addin/data/xlsm/dmplan_demo.xlsm",
        "dmplan/addin/udf.py",
        "dmplan/solver/coupon/customers.py",
        "dmplan/__init__.py",
    ):
        assert name in names, name
    # no generic top-level packages in a user's site-packages
    tops = {n.split("/")[0] for n in names if not n.startswith("dmplan-")}
    assert tops == {"dmplan"}, tops
