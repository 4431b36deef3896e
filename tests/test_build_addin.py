"""The Excel add-in and the standalone macro workbook, built on Linux from xlwings' templates."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from openpyxl.comments import Comment
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableStyleInfo

ROOT = Path(__file__).resolve().parent.parent
CUSTOMUI_NS = "{http://schemas.microsoft.com/office/2009/07/customui}"
UI_REL = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"


def _load_build_addin():
    spec = importlib.util.spec_from_file_location("build_addin", ROOT / "build" / "build_addin.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_addin", module)
    spec.loader.exec_module(module)
    return module


build_addin = _load_build_addin()
needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")


@pytest.fixture(scope="module")
def xlam(tmp_path_factory) -> Path:
    return build_addin.build_xlam(tmp_path_factory.mktemp("addin") / "dmplan.xlam")


def _soffice(src: Path, fmt: str, outdir: Path, infilter: str | None = None) -> Path:
    """Convert with LibreOffice headless and a private profile; returns the written file."""
    profile = outdir / "lo-profile"
    cmd = ["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--norestore"]
    if infilter:
        cmd.append(f"--infilter={infilter}")
    cmd += ["--convert-to", fmt, "--outdir", str(outdir), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(outdir)})
    assert proc.returncode == 0, proc.stderr
    out = outdir / f"{src.stem}.{fmt}"
    assert out.exists() and out.stat().st_size > 0, proc.stdout + proc.stderr
    return out


# --------------------------------------------------------------------------- add-in
def test_xlam_is_a_zip_with_vba_ribbon_and_relationship(xlam: Path) -> None:
    with zipfile.ZipFile(xlam) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        assert "xl/vbaProject.bin" in names
        assert "customUI/customUI14.xml" in names
        assert "customUI/customUI.xml" not in names  # the template's Excel 2007 ribbon is replaced
        assert names[-1] == "customUI/customUI14.xml"  # injected last
        ui = ElementTree.fromstring(zf.read("customUI/customUI14.xml"))
        rels = ElementTree.fromstring(zf.read("_rels/.rels"))
        vba = zf.read("xl/vbaProject.bin")
        types = zf.read("[Content_Types].xml").decode()
    assert ui.tag == f"{CUSTOMUI_NS}customUI"
    tabs = ui.findall(f".//{CUSTOMUI_NS}tab")
    assert [t.get("label") for t in tabs] == ["DMPlan"]
    buttons = ui.findall(f".//{CUSTOMUI_NS}button")
    assert "Solve workbook" in [b.get("label") for b in buttons]
    ids = [b.get("id") for b in buttons]
    assert len(ids) == len(set(ids))
    ui_rels = [r for r in rels if r.get("Type") == UI_REL]
    assert [r.get("Target") for r in ui_rels] == ["customUI/customUI14.xml"]
    assert len({r.get("Id") for r in rels}) == len(rels)
    # every onAction names a macro that exists in the compiled VBA
    for action in {b.get("onAction") for b in buttons}:
        assert action == build_addin.RIBBON_CALLBACK
        module, sub = action.split(".")
        assert module.encode() in vba and sub.encode() in vba
    assert "application/vnd.ms-excel.addin.macroEnabled.main+xml" in types
    assert build_addin.check_xlam(xlam) == []


def test_committed_xlam_is_sound() -> None:
    """xlsm/dmplan.xlam is the file users install; rebuild it with `python3 build/build_addin.py`."""
    committed = ROOT / "xlsm" / "dmplan.xlam"
    assert committed.exists()
    assert build_addin.check_xlam(committed) == []
    with zipfile.ZipFile(committed) as zf:
        assert zf.read("customUI/customUI14.xml").decode() == build_addin.customui_xml()


def test_build_is_reproducible(xlam: Path, tmp_path: Path) -> None:
    again = build_addin.build_xlam(tmp_path / "dmplan.xlam")
    assert again.read_bytes() == xlam.read_bytes()


def test_addin_must_be_named_like_its_module(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dmplan\.xlam"):
        build_addin.build_xlam(tmp_path / "other.xlam")


def test_broken_callback_is_detected(xlam: Path, tmp_path: Path) -> None:
    broken = tmp_path / "dmplan.xlam"
    with zipfile.ZipFile(xlam) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "customUI/customUI14.xml":
                data = data.replace(b"RibbonMyAddin.RunMain", b"RibbonMyAddin.NoSuchMacro")
            dst.writestr(info, data)
    assert any("NoSuchMacro" in p for p in build_addin.check_xlam(broken))


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_opens_the_addin(xlam: Path, tmp_path: Path) -> None:
    # LibreOffice detects .xlam only with an explicit import filter
    _soffice(xlam, "pdf", tmp_path / "pdf", infilter="Calc MS Excel 2007 VBA XML")


@pytest.mark.libreoffice
@needs_soffice
def test_ribbon_macro_runs_the_module_named_like_the_file(xlam: Path, tmp_path: Path) -> None:
    """LibreOffice decompresses the VBA source: RunMain is a ribbon callback importing <file name>.main()."""
    ods = _soffice(xlam, "ods", tmp_path / "ods", infilter="Calc MS Excel 2007 VBA XML")
    with zipfile.ZipFile(ods) as zf:
        modules = {n.rsplit("/", 1)[1][:-4]: zf.read(n).decode() for n in zf.namelist() if n.startswith("Basic/")}
    source = modules["RibbonMyAddin"]
    assert "Sub RunMain(control As IRibbonControl)" in source
    assert "ThisWorkbook.Name" in source and "RunPython" in source and ".main()" in source
    # the add-in reads its config from myaddin.conf (PROJECT_NAME), as the install scripts assume
    assert re.search(r"PROJECT_NAME As String = &quot;" + build_addin.VBA_PROJECT_NAME + "&quot;", modules["xlwings"])


def test_entry_module_is_named_like_the_addin() -> None:
    import dmplan

    assert Path(dmplan.__file__).parent == ROOT / "dmplan"
    assert callable(dmplan.main)


# --------------------------------------------------------------------------- demo workbook
@pytest.fixture
def template_xlsx(tmp_path: Path) -> Path:
    """Stand-in for the template generator's output: tables, comments, validation, several sheets."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Instructions"
    ws["A1"] = "DMPlan demo"
    ws["A3"] = "Click the button to solve."
    seg = wb.create_sheet("Segments")
    seg.append(["segment", "customers", "prob_dm1"])
    seg.append(["S01", 1200, 0.12])
    seg.append(["S02", 800, 0.08])
    table = Table(displayName="Segments", ref="A1:C3")
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    seg.add_table(table)
    settings = wb.create_sheet("Settings")
    settings.append(["setting", "value"])
    settings.append(["budget", 5000])
    settings["B2"].comment = Comment("Total budget in EUR", "DMPlan")
    validation = DataValidation(type="decimal", operator="greaterThan", formula1="0")
    settings.add_data_validation(validation)
    validation.add("B2")
    path = tmp_path / "demo_template.xlsx"
    wb.save(path)
    return path


def test_demo_xlsm_keeps_sheets_and_gets_vba(template_xlsx: Path, tmp_path: Path) -> None:
    out = build_addin.build_demo_xlsm(template_xlsx, tmp_path / "dmplan_demo.xlsm")
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        types = zf.read("[Content_Types].xml").decode()
        assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types
        assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml" not in types
        vba = zf.read("xl/vbaProject.bin")
        standalone = zipfile.ZipFile(build_addin.STANDALONE_TEMPLATE).read("xl/vbaProject.bin")
        assert vba == standalone
        assert b"Module1" in vba
        assert 'codeName="ThisWorkbook"' in zf.read("xl/workbook.xml").decode()
        vml = [n for n in zf.namelist() if n.endswith(".vml") and "DMPlan" in n]
        assert len(vml) == 1
        assert "[0]!SampleCall" in zf.read(vml[0]).decode()
    wb = openpyxl.load_workbook(out, keep_vba=True)
    assert wb.sheetnames == ["Instructions", "Segments", "Settings"]
    assert list(wb["Segments"].tables) == ["Segments"]
    assert wb["Segments"]["B2"].value == 1200
    assert wb["Settings"]["B2"].comment.text == "Total budget in EUR"
    assert wb["Settings"].data_validations.dataValidation
    assert wb.vba_archive is not None


def test_demo_xlsm_name_must_be_importable(template_xlsx: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="module name"):
        build_addin.build_demo_xlsm(template_xlsx, tmp_path / "dmplan-demo.xlsm")
    with pytest.raises(ValueError, match=r"\.xlsm"):
        build_addin.build_demo_xlsm(template_xlsx, tmp_path / "dmplan_demo.xlsx")


def test_demo_module_shim_exists() -> None:
    """The standalone VBA imports the module named like the workbook: xlsm/dmplan_demo.py."""
    source = (ROOT / "xlsm" / "dmplan_demo.py").read_text()
    assert "def main()" in source and "from dmplan import main" in source


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_opens_demo_with_button_and_macro(template_xlsx: Path, tmp_path: Path) -> None:
    out = build_addin.build_demo_xlsm(template_xlsx, tmp_path / "dmplan_demo.xlsm")
    _soffice(out, "pdf", tmp_path / "pdf")
    ods = _soffice(out, "ods", tmp_path / "ods")
    with zipfile.ZipFile(ods) as zf:
        content = zf.read("content.xml").decode()
        module1 = zf.read("Basic/VBAProject/Module1.xml").decode()
    assert 'form:label="Solve with DMPlan"' in content
    assert "VBAProject.Module1.SampleCall" in content  # the button is bound to the macro
    assert "Sub SampleCall()" in module1 and "RunPython" in module1
