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


def _vba_text(path: Path) -> dict[str, str]:
    """Module name -> VBA source, read by oletools (an independent reader of MS-OVBA, not our builder)."""
    from oletools.olevba import VBA_Parser

    with zipfile.ZipFile(path) as zf:
        data = zf.read("xl/vbaProject.bin")
    parser = VBA_Parser(path.name, data=data)
    try:
        return {name.rsplit(".", 1)[0]: code.replace("\r\n", "\n") for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


def _sub_body(source: str, name: str) -> str:
    match = re.search(rf"^Sub {name}\(control As IRibbonControl\)\n(.*?)^End Sub", source, re.M | re.S)
    assert match, f"no Sub {name}(control As IRibbonControl)"
    return match.group(1)


def _buttons(path: Path) -> list[ElementTree.Element]:
    with zipfile.ZipFile(path) as zf:
        ui = ElementTree.fromstring(zf.read("customUI/customUI14.xml"))
    return ui.findall(f".//{CUSTOMUI_NS}button")


COMMITTED_XLAM = ROOT / "xlsm" / "dmplan.xlam"


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
        types = zf.read("[Content_Types].xml").decode()
    assert ui.tag == f"{CUSTOMUI_NS}customUI"
    tabs = ui.findall(f".//{CUSTOMUI_NS}tab")
    assert [t.get("label") for t in tabs] == ["DMPlan"]
    buttons = _buttons(xlam)
    assert {"Solve workbook", "Import functions", "Evaluate formulas"} <= {b.get("label") for b in buttons}
    ids = [b.get("id") for b in buttons]
    assert len(ids) == len(set(ids))
    ui_rels = [r for r in rels if r.get("Type") == UI_REL]
    assert [r.get("Target") for r in ui_rels] == ["customUI/customUI14.xml"]
    assert len({r.get("Id") for r in rels}) == len(rels)
    # every onAction names a ribbon callback that exists in the VBA source
    vba = _vba_text(xlam)
    for action in {b.get("onAction") for b in buttons}:
        module, sub = action.split(".")
        _sub_body(vba[module], sub)
    assert "application/vnd.ms-excel.addin.macroEnabled.main+xml" in types
    assert build_addin.check_xlam(xlam) == []


@pytest.mark.parametrize("path", [COMMITTED_XLAM, None], ids=["committed", "fresh"])
def test_a_ribbon_control_imports_the_worksheet_functions(path: Path | None, xlam: Path) -> None:
    """Issue 12: a button whose callback calls xlwings' ImportPythonUDFsToAddin (Windows) ..."""
    path = path or xlam
    vba = _vba_text(path)
    callbacks = {b.get("onAction") for b in _buttons(path)}
    importers = [a for a in callbacks if "ImportPythonUDFsToAddin" in _sub_body(vba[a.split(".")[0]], a.split(".")[1])]
    assert importers, f"no ribbon callback calls ImportPythonUDFsToAddin: {sorted(callbacks)}"
    assert re.search(r"^Sub ImportPythonUDFsToAddin\(\)", vba["xlwings"], re.M)
    # ... which imports from dmplan when the config has no "UDF Modules", not from the file's name
    assert "GetUdfModules = DMPLAN_MODULE" in vba["xlwings"]
    assert re.search(r'DMPLAN_MODULE As String = "dmplan"', "\n".join(vba.values()))
    # and a button for macOS that evaluates the formulas through dmplan
    evaluate = _sub_body(vba["RibbonMyAddin"], "EvaluateFormulas")
    assert 'RunPython "import dmplan; dmplan.evaluate_formulas()"' in evaluate
    assert "#If Mac Then" in _sub_body(vba["RibbonMyAddin"], "ImportFunctions")


def test_installed_xlwings_is_the_version_of_the_addins_vba() -> None:
    """One xlwings: the VBA (DLL name, AppleScript name), the installed package and pyproject's pin agree."""
    import tomllib

    import xlwings

    vba = _vba_text(COMMITTED_XLAM)["xlwings"]
    written = re.search(r'XLWINGS_VERSION As String = "([^"]+)"', vba)
    assert written, "no XLWINGS_VERSION in the add-in's VBA"
    assert xlwings.__version__ == written.group(1)
    assert f'"xlwings64-{written.group(1)}.dll"' in vba
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"xlwings=={written.group(1)}" in deps
    for name in ("dmplan_demo.xlsm",):
        assert re.search(
            rf'XLWINGS_VERSION As String = "{re.escape(xlwings.__version__)}"',
            _vba_text(ROOT / "xlsm" / name)["xlwings"],
        )


def test_committed_xlam_is_sound() -> None:
    """xlsm/dmplan.xlam is the file users install; rebuild it with `python3 build/build_addin.py`."""
    assert COMMITTED_XLAM.exists()
    assert build_addin.check_xlam(COMMITTED_XLAM) == []
    with zipfile.ZipFile(COMMITTED_XLAM) as zf:
        assert zf.read("customUI/customUI14.xml").decode() == build_addin.customui_xml()


def test_build_is_reproducible(xlam: Path, tmp_path: Path) -> None:
    again = build_addin.build_xlam(tmp_path / "dmplan.xlam")
    assert again.read_bytes() == xlam.read_bytes()
    assert again.read_bytes() == COMMITTED_XLAM.read_bytes(), "rebuild xlsm/dmplan.xlam: python3 build/build_addin.py"


@pytest.mark.parametrize("name", ["dmplan (1).xlam", "DMPlan-addin copy.xlam"])
def test_renamed_addin_still_runs_dmplan(name: str, tmp_path: Path) -> None:
    """A renamed copy of the add-in: every button still imports dmplan, and dmplan has what it calls."""
    import dmplan

    renamed = tmp_path / name
    shutil.copy(COMMITTED_XLAM, renamed)
    assert build_addin.check_xlam(renamed) == []
    vba = _vba_text(renamed)
    for action in {b.get("onAction") for b in _buttons(renamed)}:
        body = _sub_body(vba[action.split(".")[0]], action.split(".")[1])
        assert "ThisWorkbook.Name" not in body
        for module, function in re.findall(r'RunPython "import (\w+); \1\.(\w+)\(\)"', body):
            assert module == "dmplan" and callable(getattr(dmplan, function)), (action, function)
    # the file name plays no part in what the add-in imports
    stem = renamed.stem.replace(" ", "_")
    assert all(stem not in code for code in vba.values())
    assert build_addin.build_xlam(tmp_path / "other" / name).exists()


def test_broken_callback_is_detected(xlam: Path, tmp_path: Path) -> None:
    broken = tmp_path / "dmplan.xlam"
    with zipfile.ZipFile(xlam) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "customUI/customUI14.xml":
                data = data.replace(b"RibbonMyAddin.RunMain", b"RibbonMyAddin.NoSuchMacro")
            dst.writestr(info, data)
    assert any("NoSuchMacro" in p for p in build_addin.check_xlam(broken))


def test_a_vba_module_importing_by_file_name_is_detected(tmp_path: Path) -> None:
    """The check that guards renamed copies fails on xlwings' original ribbon template."""
    original = tmp_path / "dmplan.xlam"
    shutil.copy(build_addin.RIBBON_TEMPLATE, original)
    assert any("RibbonMyAddin" in p and "not a literal import" in p for p in build_addin.check_xlam(original))
    standalone = build_addin.vba_sources(build_addin.STANDALONE_TEMPLATE)
    assert any("Module1" in p for p in build_addin.vba_problems(standalone))
    for path in [*ROOT.joinpath("templates").glob("*.xlsm"), ROOT / "xlsm" / "dmplan_demo.xlsm"]:
        assert build_addin.vba_problems(build_addin.vba_sources(path)) == [], path.name


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_opens_the_addin(xlam: Path, tmp_path: Path) -> None:
    # LibreOffice detects .xlam only with an explicit import filter
    _soffice(xlam, "pdf", tmp_path / "pdf", infilter="Calc MS Excel 2007 VBA XML")


@pytest.mark.libreoffice
@needs_soffice
def test_libreoffice_reads_the_ribbon_callbacks(xlam: Path, tmp_path: Path) -> None:
    """LibreOffice decompresses the VBA source we wrote: the callbacks import dmplan by name."""
    ods = _soffice(xlam, "ods", tmp_path / "ods", infilter="Calc MS Excel 2007 VBA XML")
    with zipfile.ZipFile(ods) as zf:
        modules = {n.rsplit("/", 1)[1][:-4]: zf.read(n).decode() for n in zf.namelist() if n.startswith("Basic/")}
    source = modules["RibbonMyAddin"]
    assert "Sub RunMain(control As IRibbonControl)" in source
    assert "Sub ImportFunctions(control As IRibbonControl)" in source
    assert "import dmplan; dmplan.main()" in source and "ThisWorkbook.Name" not in source
    # the add-in reads its config from myaddin.conf (PROJECT_NAME), as the install scripts assume
    assert re.search(r"PROJECT_NAME As String = &quot;" + build_addin.VBA_PROJECT_NAME + "&quot;", modules["xlwings"])


def test_a_ribbon_control_imports_robyn_curves_through_a_folder_picker(xlam: Path) -> None:
    """Issue 13: the ribbon gets the Robyn import, with a folder picker, over the CLI's code."""
    vba = _vba_text(xlam)
    callbacks = {b.get("onAction") for b in _buttons(xlam)}
    assert "RibbonMyAddin.ImportRobyn" in callbacks
    body = _sub_body(vba["RibbonMyAddin"], "ImportRobyn")
    assert "Application.FileDialog(4)" in body  # msoFileDialogFolderPicker on Windows
    assert "InputBox" in body and "#If Mac Then" in body  # the model id; a typed path on macOS
    assert '"_DMPlanRobynFolder"' in body and '"_DMPlanRobynModel"' in body
    assert 'RunPython "import dmplan; dmplan.import_robyn()"' in body


def test_entry_module_has_what_the_buttons_call() -> None:
    import dmplan

    assert Path(dmplan.__file__).parent == ROOT / "dmplan"
    vba = _vba_text(ROOT / "xlsm" / "dmplan.xlam")
    called = re.findall(r'RunPython "import dmplan; dmplan\.(\w+)\(\)"', vba["RibbonMyAddin"])
    assert {"main", "evaluate_formulas", "import_robyn"} <= set(called)
    for function in called:
        assert callable(getattr(dmplan, function)), function


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
    vba = _vba_text(out)
    assert 'RunPython "import dmplan; dmplan.main()"' in vba["Module1"]
    assert "ThisWorkbook.Name" not in vba["Module1"]
    assert {"xlwings", "Dictionary", "ThisWorkbook"} <= set(vba)  # xlwings' standalone VBA is kept


@pytest.mark.parametrize("name", ["plan_march.xlsm", "dm_plan (2).xlsm"])
def test_renamed_macro_workbook_still_runs_dmplan(name: str, template_xlsx: Path, tmp_path: Path) -> None:
    """A template saved under another name (what people do with an emailed file) runs dmplan.main()."""
    import dmplan

    out = build_addin.build_demo_xlsm(template_xlsx, tmp_path / "dmplan_demo.xlsm")
    renamed = tmp_path / name
    shutil.copy(out, renamed)
    imports = build_addin.python_imports(_vba_text(renamed)["Module1"])
    assert imports == ["dmplan"]
    assert callable(dmplan.main)
    with pytest.raises(ValueError, match=r"\.xlsm"):
        build_addin.build_demo_xlsm(template_xlsx, tmp_path / "dmplan_demo.xlsx")


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
