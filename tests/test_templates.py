"""The generated templates: they match their generator, open in LibreOffice and round-trip through dmplan solve."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from dmplan.addin import templates
from dmplan.addin.cli import main
from tests import libreoffice

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
WORKBOOKS = sorted([*TEMPLATES.glob("*.xlsx"), *TEMPLATES.glob("*.xlsm"), ROOT / "xlsm" / "dmplan_demo.xlsm"])
RESULTS = {"dm_plan": {"DM Plan", "DM Budget", "DM Pareto"}, "mix_plan": {"Mix Plan", "Mix Budget", "Mix Pareto"}}
RESULTS["dmplan_demo"] = RESULTS["dm_plan"] | RESULTS["mix_plan"]


def test_every_template_is_there() -> None:
    names = {p.name for p in WORKBOOKS}
    assert {"dm_plan.xlsx", "dm_plan.xlsm", "mix_plan.xlsx", "mix_plan.xlsm", "dmplan_demo.xlsm"} <= names
    for path in WORKBOOKS:
        if path.suffix == ".xlsm":  # the button imports dmplan by name: no module named like the file
            assert not path.with_suffix(".py").exists(), f"{path.with_suffix('.py').name} is left over"


def test_templates_do_not_drift_from_the_generator(tmp_path: Path) -> None:
    """The committed files hold what the generator writes now (regenerate: python -m dmplan.addin.templates)."""
    for model, name in templates.TEMPLATE_FILES.items():
        fresh = openpyxl.load_workbook(templates.write_template(model, tmp_path / name))
        stored = openpyxl.load_workbook(TEMPLATES / name)
        assert fresh.sheetnames == stored.sheetnames, name
        for ws in fresh.worksheets:
            other = stored[ws.title]
            assert ws.max_row == other.max_row and ws.max_column == other.max_column, (name, ws.title)
            for a, b in zip(ws.iter_rows(), other.iter_rows(), strict=True):
                for x, y in zip(a, b, strict=True):
                    vx = getattr(x.value, "text", x.value)
                    vy = getattr(y.value, "text", y.value)
                    assert vx == vy, (name, x.coordinate)


def test_generated_workbooks_are_committed_once() -> None:
    """One copy of each generated file in the repository; pyproject maps the folders into the package."""
    import hashlib
    import subprocess
    import tomllib

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    seen: dict[str, str] = {}
    for name in files:
        if name.endswith((".xlsx", ".xlsm", ".xlam")) and (ROOT / name).exists():
            digest = hashlib.sha256((ROOT / name).read_bytes()).hexdigest()
            assert digest not in seen, f"{name} is a copy of {seen[digest]}"
            seen[digest] = name
    assert not (ROOT / "addin" / "data").exists()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"]["dmplan.addin.data.templates"] == "templates"
    assert setuptools["package-dir"]["dmplan.addin.data.xlsm"] == "xlsm"


def test_template_path_finds_the_package_data() -> None:
    from dmplan.addin import xl

    for model, name in templates.TEMPLATE_FILES.items():
        path = xl.template_path(model)
        assert path is not None and path.name == name and path.exists()


def test_templates_carry_instructions_settings_help_and_example_formulas() -> None:
    for name, function in (("dm_plan.xlsx", "=DMPLAN("), ("mix_plan.xlsx", "=MIXPLAN(")):
        wb = openpyxl.load_workbook(TEMPLATES / name)
        assert wb.sheetnames[0] == "Instructions"
        settings = wb["Settings"]
        assert settings.data_validations.dataValidation, name
        assert all(settings.cell(row=r, column=2).comment for r in range(2, settings.max_row + 1)), name
        formulas = wb[templates.FORMULAS_SHEET]
        texts = [getattr(c.value, "text", None) for row in formulas.iter_rows() for c in row]
        assert any(t and t.startswith(function) for t in texts), name
        # where the functions run, and what macOS users click instead
        lines = [c.value for c in wb["Instructions"]["A"] if isinstance(c.value, str)]
        assert any("macOS" in line and "Evaluate formulas" in line and "Import functions" in line for line in lines)


@pytest.mark.parametrize("path", WORKBOOKS, ids=lambda p: p.name)
def test_template_round_trips_through_dmplan_solve(path: Path, tmp_path: Path) -> None:
    book = tmp_path / path.name
    shutil.copy(path, book)
    out = tmp_path / f"solved{path.suffix}"
    assert main(["solve", str(book), "-o", str(out), "-q"]) == 0
    wb = openpyxl.load_workbook(out)
    assert RESULTS[path.stem] <= set(wb.sheetnames)
    if templates.FORMULAS_SHEET in wb.sheetnames:  # the example formulas survive the rewrite
        texts = [getattr(c.value, "text", None) for row in wb[templates.FORMULAS_SHEET].iter_rows() for c in row]
        assert any(t and t.startswith(("=DMPLAN(", "=MIXPLAN(")) for t in texts)
    if path.suffix == ".xlsm":
        with zipfile.ZipFile(out) as zf:
            assert "xl/vbaProject.bin" in zf.namelist()
            # NB: openpyxl drops the form button (legacy VML drawing) when it rewrites the file; the
            # macro stays runnable from Developer > Macros. See the report of issue 4.


@pytest.mark.libreoffice
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice is not installed")
@pytest.mark.parametrize("path", WORKBOOKS, ids=lambda p: p.name)
def test_template_opens_in_libreoffice(path: Path, tmp_path: Path) -> None:
    pdf = libreoffice.convert(path, "pdf", tmp_path / "out", tmp_path)
    assert pdf.stat().st_size > 1000
    pages = libreoffice.pdf_to_png(pdf, tmp_path / "png", resolution=30)
    assert pages
