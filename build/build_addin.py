"""Build DMPlan's Excel add-in (``xlsm/dmplan.xlam``) and macro workbooks on any OS, without Excel.

The add-in starts from the ribbon add-in template that ships inside the xlwings package
(``quickstart_addin_ribbon.xlam``, BSD licensed), whose VBA project holds xlwings' own VBA
(``RunPython``, the worksheet-function import, the config lookup). Its source is replaced, not
its p-code: the template ships without a performance cache, so Excel compiles every module from
source when it opens the file (see ``build/vba_project.py``). We replace:

* module ``RibbonMyAddin``: the ribbon callbacks (:data:`RIBBON_VBA`). Every button imports the
  module ``dmplan`` by name, so a copy saved as ``dmplan (1).xlam`` runs the same code (xlwings'
  template derived the module from the file name). ``ImportFunctions`` calls xlwings'
  ``ImportPythonUDFsToAddin``; ``EvaluateFormulas`` runs ``dmplan.evaluate_formulas()``, the
  macOS stand-in for worksheet functions, which xlwings does not run there.
* in module ``xlwings``, the default of ``GetUdfModules`` (used when the config has no
  ``UDF Modules``): ``dmplan`` instead of the file name.

The rest stays xlwings' VBA of the version pinned in pyproject.toml (``XLWINGS_VERSION`` in the VBA;
the build refuses another installed xlwings). ``PROJECT_NAME = "myaddin"``: the add-in reads its
settings (``Interpreter_Win``/``Interpreter_Mac``, ``UDF Modules`` ...) from a sheet ``myaddin.conf``
in the active workbook, a file ``myaddin.conf`` beside it, or the user file
``%USERPROFILE%\\.myaddin\\myaddin.conf`` (macOS: ``~/Library/Containers/com.microsoft.Excel/Data/myaddin.conf``).

openpyxl refuses ``.xlam`` files and drops the ribbon relationship of files it rewrites, so
the package is assembled at the zip level: the template's parts are copied, its Excel 2007
``customUI/customUI.xml`` is replaced by our ``customUI/customUI14.xml``, written last.

The macro workbooks (``xlsm/dmplan_demo.xlsm``, the ``.xlsm`` templates) are the other way round:
the input sheets come from an ``.xlsx`` written by the template generator, and the VBA project of
xlwings' ``quickstart_standalone.xlsm`` (RunPython included, no add-in needed) is put into it, with
``Module1.SampleCall`` rewritten to run ``import dmplan; dmplan.main()`` (:data:`STANDALONE_VBA`)
and a form button on the first sheet that runs that macro.

Usage::

    python3 build/build_addin.py                 # writes xlsm/dmplan.xlam
    python3 build/build_addin.py --demo IN.xlsx  # also writes xlsm/dmplan_demo.xlsm from IN.xlsx
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import xlwings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vba_project  # noqa: E402

from dmplan.addin.ooxml import attach_vml, read_parts, rels_add, sheet_parts  # noqa: E402

XLWINGS_DIR = Path(xlwings.__file__).resolve().parent
RIBBON_TEMPLATE = XLWINGS_DIR / "quickstart_addin_ribbon.xlam"
STANDALONE_TEMPLATE = XLWINGS_DIR / "quickstart_standalone.xlsm"
ADDIN_OUT = ROOT / "xlsm" / "dmplan.xlam"
DEMO_OUT = ROOT / "xlsm" / "dmplan_demo.xlsm"

#: The Python module every button imports, whatever the workbook or add-in file is called.
PYTHON_MODULE = "dmplan"
#: Ribbon callbacks (module.sub, each with an IRibbonControl argument) defined by :data:`RIBBON_VBA`.
RIBBON_CALLBACK = "RibbonMyAddin.RunMain"
IMPORT_CALLBACK = "RibbonMyAddin.ImportFunctions"
EVALUATE_CALLBACK = "RibbonMyAddin.EvaluateFormulas"
ROBYN_CALLBACK = "RibbonMyAddin.ImportRobyn"
#: The standalone template's macro, rewritten by :data:`STANDALONE_VBA` to run ``dmplan.main()``.
STANDALONE_MACRO = "SampleCall"
#: ``PROJECT_NAME`` in the add-in template's VBA: names its config sheet and config file.
VBA_PROJECT_NAME = "myaddin"

RIBBON_VBA = f"""Attribute VB_Name = "RibbonMyAddin"
' DMPlan's ribbon callbacks, written by DMPlan's build/build_addin.py (edits made in Excel are lost).
' Every button imports the Python module {PYTHON_MODULE} by name: the add-in's file name plays no part,
' so a copy saved as "dmplan (1).xlam" runs the same code.
Public Const DMPLAN_MODULE As String = "{PYTHON_MODULE}"

Sub RunMain(control As IRibbonControl)
    RunPython "import {PYTHON_MODULE}; {PYTHON_MODULE}.main()"
End Sub

Sub ImportFunctions(control As IRibbonControl)
    ' xlwings writes the VBA of DMPLAN, DMPARETO and MIXPLAN into this add-in (module xlwings_udfs);
    ' the functions come from the config's "UDF Modules", else from {PYTHON_MODULE} (GetUdfModules).
    #If Mac Then
        MsgBox "Worksheet functions run only in Excel for Windows (xlwings does not support them on macOS)." _
            & vbNewLine & vbNewLine & "On macOS, click DMPlan > Evaluate formulas: it computes this workbook's " _
            & "DMPLAN, DMPARETO and MIXPLAN formulas with the same code and writes their values.", _
            vbInformation, "DMPlan"
    #Else
        ImportPythonUDFsToAddin
    #End If
End Sub

Sub EvaluateFormulas(control As IRibbonControl)
    RunPython "import {PYTHON_MODULE}; {PYTHON_MODULE}.evaluate_formulas()"
End Sub

Sub ImportRobyn(control As IRibbonControl)
    ' The folder and the model id go to Python as hidden names of the workbook (_DMPlanRobynFolder,
    ' _DMPlanRobynModel), so the RunPython command stays a literal and any path works.
    Dim folder As String, model As String
    #If Mac Then
        folder = InputBox("Path of the folder with Robyn's CSV exports (pareto_hyperparameters.csv ...):", _
            "DMPlan: import Robyn curves")
    #Else
        With Application.FileDialog(4) ' msoFileDialogFolderPicker
            .Title = "DMPlan: the folder with Robyn's CSV exports (pareto_hyperparameters.csv ...)"
            If .Show <> -1 Then Exit Sub
            folder = .SelectedItems(1)
        End With
    #End If
    If folder = "" Then Exit Sub
    model = InputBox("Robyn model id (solID), e.g. 1_100_5:", "DMPlan: import Robyn curves")
    If model = "" Then Exit Sub
    Dim q As String
    q = Chr(34)
    ActiveWorkbook.Names.Add Name:="_DMPlanRobynFolder", _
        RefersTo:="=" & q & Replace(folder, q, q & q) & q, Visible:=False
    ActiveWorkbook.Names.Add Name:="_DMPlanRobynModel", _
        RefersTo:="=" & q & Replace(model, q, q & q) & q, Visible:=False
    RunPython "import {PYTHON_MODULE}; {PYTHON_MODULE}.import_robyn()"
End Sub
"""

#: xlwings' ``GetUdfModules`` falls back to the file name without extension; ours to ``dmplan``.
UDF_DEFAULT_OLD = "GetUdfModules = Left$(wb.Name, Len(wb.Name) - 5) ' assume that it ends in .xls*"
UDF_DEFAULT_NEW = "GetUdfModules = DMPLAN_MODULE ' DMPlan: the module's name, not the file's"

STANDALONE_VBA = f"""Attribute VB_Name = "Module1"
' DMPlan's run button, written by DMPlan's build/build_addin.py: it imports the Python module
' {PYTHON_MODULE} by name, so the workbook runs whatever it is called (plan_march.xlsm too).
Sub SampleCall()
    RunPython "import {PYTHON_MODULE}; {PYTHON_MODULE}.main()"
End Sub
"""

CUSTOMUI14_NS = "http://schemas.microsoft.com/office/2009/07/customui"
UI_REL_TYPE = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
CUSTOMUI_PART = "customUI/customUI14.xml"
VBA_REL_TYPE = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
VBA_CONTENT_TYPE = "application/vnd.ms-office.vbaProject"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # reproducible zips

# (id, label, size, imageMso, screentip, supertip, onAction callback)
BUTTONS: dict[str, list[tuple[str, str, str, str, str, str, str]]] = {
    "Optimise": [
        (
            "dmplanSolve",
            "Solve workbook",
            "large",
            "MacroPlay",
            "Solve every DMPlan model in the active workbook",
            "Finds the coupon-plan and marketing-mix input tables in the active workbook, solves them and "
            "writes the result sheets (input sheets are never changed). Settings: solver and time_limit in "
            "a sheet named myaddin.conf, or the Settings table.",
            RIBBON_CALLBACK,
        ),
    ],
    "Templates": [
        (
            "dmplanTemplate",
            "New from template",
            "large",
            "TableInsert",
            "Insert a coupon-plan or marketing-mix template",
            "On a workbook without DMPlan input tables, asks which template to insert (Yes: coupon plan, "
            "No: marketing mix). On a workbook that already holds input tables it solves them, like "
            "Solve workbook: both buttons run dmplan.main().",
            RIBBON_CALLBACK,
        ),
    ],
    "Curves": [
        (
            "dmplanImportRobyn",
            "Import Robyn curves",
            "large",
            "ImportTextFile",
            "Import the response curves of a Robyn model into this workbook",
            "Asks for the folder with a finished Robyn run's CSV exports and the model id (solID), then writes "
            "its response curves as the Curves sheet (and Activities and Settings sheets where the workbook "
            "has none), like dmplan curves robyn.",
            ROBYN_CALLBACK,
        ),
    ],
    "Functions": [
        (
            "dmplanImportFunctions",
            "Import functions",
            "large",
            "FunctionWizard",
            "Make =DMPLAN(), =DMPARETO() and =MIXPLAN() available (Excel for Windows)",
            "Imports DMPlan's worksheet functions into this add-in through xlwings (needs Trust access to the "
            "VBA project object model). Excel for Windows only: on macOS use Evaluate formulas.",
            IMPORT_CALLBACK,
        ),
        (
            "dmplanEvaluateFormulas",
            "Evaluate formulas",
            "large",
            "CalculateNow",
            "Compute this workbook's DMPLAN, DMPARETO and MIXPLAN formulas and write their values",
            "For Excel on macOS, where worksheet functions do not run: finds the DMPlan formulas in the "
            "active workbook, evaluates them with the same code as the functions and writes the values "
            "beside the formula text.",
            EVALUATE_CALLBACK,
        ),
    ],
}


# --------------------------------------------------------------------------- ribbon
def customui_xml() -> str:
    """Our ribbon: a DMPlan tab with the buttons of :data:`BUTTONS`."""
    groups = []
    for group, buttons in BUTTONS.items():
        items = "\n".join(
            f"          <button id={quoteattr(bid)} label={quoteattr(label)} size={quoteattr(size)} "
            f"imageMso={quoteattr(image)} screentip={quoteattr(tip)} supertip={quoteattr(supertip)} "
            f"onAction={quoteattr(callback)}/>"
            for bid, label, size, image, tip, supertip, callback in buttons
        )
        gid = "dmplanGroup" + re.sub(r"\W", "", group)
        groups.append(f"        <group id={quoteattr(gid)} label={quoteattr(group)}>\n{items}\n        </group>")
    body = "\n".join(groups)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<customUI xmlns="{CUSTOMUI14_NS}">\n'
        "  <ribbon>\n    <tabs>\n"
        '      <tab id="dmplanTab" label="DMPlan">\n'
        f"{body}\n"
        "      </tab>\n    </tabs>\n  </ribbon>\n</customUI>\n"
    )


def onaction_names(customui: str) -> list[str]:
    return sorted(set(re.findall(r'onAction="([^"]+)"', customui)))


def _root_rels_with_ui(rels: str, target: str) -> str:
    """``_rels/.rels`` with every ribbon relationship replaced by one to ``target``."""
    rels = re.sub(r"<Relationship\b[^>]*ui/extensibility[^>]*/>", "", rels)
    used = {int(n) for n in re.findall(r'Id="rId(\d+)"', rels)}
    rid = f"rId{max(used, default=0) + 1}"
    rel = f'<Relationship Id="{rid}" Type="{UI_REL_TYPE}" Target="{target}"/>'
    return rels.replace("</Relationships>", rel + "</Relationships>")


def _core_xml(title: str, description: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(title)}</dc:title><dc:description>{escape(description)}</dc:description>"
        "<dc:creator>DMPlan</dc:creator><cp:lastModifiedBy>DMPlan build</cp:lastModifiedBy>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-01-01T00:00:00Z</dcterms:created>'
        '<dcterms:modified xsi:type="dcterms:W3CDTF">2024-01-01T00:00:00Z</dcterms:modified>'
        "</cp:coreProperties>"
    )


def _write_zip(out: Path, parts: dict[str, bytes], last: tuple[str, ...] = ()) -> None:
    """Write ``parts`` ([Content_Types].xml first, ``last`` at the end) through a temporary file."""
    order = ["[Content_Types].xml"] + [n for n in parts if n != "[Content_Types].xml" and n not in last]
    order += [n for n in last if n in parts]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in order:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, parts[name])
    tmp.replace(out)


def xlwings_version_of(sources: dict[str, str]) -> str:
    """``XLWINGS_VERSION`` as written in a VBA project's ``xlwings`` module."""
    match = re.search(r'XLWINGS_VERSION As String = "([^"]+)"', sources.get("xlwings", ""))
    if not match:
        raise ValueError("the VBA project has no xlwings module with XLWINGS_VERSION")
    return match.group(1)


def _check_xlwings_version(sources: dict[str, str], template: Path) -> None:
    """The VBA, the installed xlwings and its AppleScript must be one version (pyproject.toml pins it)."""
    written = xlwings_version_of(sources)
    if written != xlwings.__version__:
        raise RuntimeError(
            f"{template.name} holds the VBA of xlwings {written}, but xlwings {xlwings.__version__} is installed: "
            f"install the version pyproject.toml pins (pip install -e .)"
        )


def addin_vba(template_vba: bytes, template: Path = RIBBON_TEMPLATE) -> bytes:
    """The add-in's vbaProject.bin: xlwings' ribbon template with DMPlan's callbacks (see module doc)."""
    sources = vba_project.module_sources(template_vba)
    _check_xlwings_version(sources, template)
    xlwings_module = sources["xlwings"]
    if xlwings_module.count(UDF_DEFAULT_OLD) != 1:
        raise RuntimeError(
            f"{template.name}: GetUdfModules no longer reads {UDF_DEFAULT_OLD!r}; update UDF_DEFAULT_OLD"
        )
    return vba_project.replace_modules(
        template_vba,
        {"RibbonMyAddin": RIBBON_VBA, "xlwings": xlwings_module.replace(UDF_DEFAULT_OLD, UDF_DEFAULT_NEW)},
    )


def build_xlam(out: Path = ADDIN_OUT, template: Path = RIBBON_TEMPLATE) -> Path:
    """Write the DMPlan add-in to ``out`` (any file name: the VBA imports ``dmplan`` by name)."""
    parts = read_parts(template)
    parts["xl/vbaProject.bin"] = addin_vba(parts["xl/vbaProject.bin"], template)
    rels = parts["_rels/.rels"].decode("utf-8")
    for old in re.findall(r'Type="[^"]*ui/extensibility"[^>]*Target="/?([^"]+)"', rels):
        parts.pop(old, None)
    parts["_rels/.rels"] = _root_rels_with_ui(rels, CUSTOMUI_PART).encode("utf-8")
    parts["docProps/core.xml"] = _core_xml(
        "DMPlan", "DMPlan Excel add-in: exact marketing-budget optimisation (xlwings ribbon add-in)."
    ).encode("utf-8")
    parts[CUSTOMUI_PART] = customui_xml().encode("utf-8")
    _write_zip(out, parts, last=(CUSTOMUI_PART,))
    return out


def callback_parts(callback: str) -> list[str]:
    """``"RibbonMyAddin.RunMain"`` -> the module and procedure names."""
    return callback.split(".")


def python_imports(source: str) -> list[str]:
    """The modules a VBA module's ``RunPython "import x; ..."`` calls import, in order."""
    return re.findall(r'^\s*RunPython\s+"import\s+([\w.]+)', source, re.M)


def vba_problems(sources: dict[str, str]) -> list[str]:
    """Every ``RunPython`` call of our modules must run ``import dmplan; dmplan.<function>()``, a literal:
    a command built from ``ThisWorkbook.Name`` breaks as soon as the file is renamed."""
    problems = []
    literal = re.compile(rf'^\s*RunPython "import {PYTHON_MODULE}; {PYTHON_MODULE}\.\w+\(\)"\s*$')
    for module, source in sources.items():
        if module == "xlwings":  # xlwings' own module defines RunPython; it calls none
            continue
        for line in source.splitlines():
            if re.match(r"^\s*RunPython\b", line) and not literal.match(line):
                problems.append(f"VBA module {module} runs {line.strip()!r}, not a literal import of {PYTHON_MODULE}")
    if "xlwings" in sources and xlwings_version_of(sources) != xlwings.__version__:
        problems.append(f"VBA of xlwings {xlwings_version_of(sources)}, installed xlwings {xlwings.__version__}")
    return problems


# --------------------------------------------------------------------------- macro workbook


def _set_codename(xml: str, tag: str, codename: str) -> str:
    """Give ``<workbookPr>`` / ``<sheetPr>`` a ``codeName`` (the VBA document module it belongs to)."""
    match = re.search(rf"<{tag}\b([^>]*?)(/?)>", xml)
    if match:
        attrs = re.sub(r'\s*codeName="[^"]*"', "", match.group(1))
        return xml[: match.start()] + f'<{tag} codeName="{codename}"{attrs}{match.group(2)}>' + xml[match.end() :]
    if tag == "workbookPr":
        return re.sub(
            r"(<workbook\b[^>]*>(?:\s*<fileVersion\b[^>]*/>)?)", rf'\1<workbookPr codeName="{codename}"/>', xml, count=1
        )
    # sheetPr is the first child of <worksheet>
    return re.sub(r"(<worksheet\b[^>]*>)", rf'\1<sheetPr codeName="{codename}"/>', xml, count=1)


def button_vml(
    macro: str, label: str, col: int, row: int, width_cols: int = 2, height_rows: int = 2, block: int = 101
) -> str:
    """A legacy form-control button (VML) that runs ``macro`` when clicked; placed at 0-based col/row.

    ``block`` is the drawing's shape-id block (ids ``block * 1024 + 1`` ...); it is kept far above the
    blocks other writers use for comment drawings so shape ids stay unique in the workbook.
    """
    anchor = f"{col}, 4, {row}, 4, {col + width_cols}, 4, {row + height_rows}, 4"
    return (
        '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:x="urn:schemas-microsoft-com:office:excel">'
        f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{block}"/></o:shapelayout>'
        '<v:shapetype id="_x0000_t201" coordsize="21600,21600" o:spt="201" path="m,l,21600r21600,l21600,xe">'
        '<v:stroke joinstyle="miter"/><v:path shadowok="f" o:extrusionok="f" strokeok="f" fillok="f" '
        'o:connecttype="rect"/><o:lock v:ext="edit" shapetype="t"/></v:shapetype>'
        f'<v:shape id="_x0000_s{block * 1024 + 1}" type="#_x0000_t201" '
        'style="position:absolute;margin-left:0;margin-top:0;'
        'width:130pt;height:30pt;z-index:1;mso-wrap-style:tight" o:button="t" fillcolor="buttonFace [67]" '
        'strokecolor="windowText [64]" o:insetmode="auto">'
        '<v:fill color2="buttonFace [67]" o:detectmouseclick="t"/><o:lock v:ext="edit" rotation="t"/>'
        '<v:textbox style="mso-direction-alt:auto" o:singleclick="f"><div style="text-align:center">'
        f'<font face="Calibri" size="220" color="#000000">{escape(label)}</font></div></v:textbox>'
        '<x:ClientData ObjectType="Button">'
        f"<x:Anchor>{anchor}</x:Anchor><x:PrintObject>False</x:PrintObject><x:AutoFill>False</x:AutoFill>"
        f"<x:FmlaMacro>[0]!{escape(macro)}</x:FmlaMacro><x:TextHAlign>Center</x:TextHAlign>"
        "<x:TextVAlign>Center</x:TextVAlign></x:ClientData></v:shape></xml>"
    )


def _add_button(parts: dict[str, bytes], sheet_part: str, macro: str, label: str, col: int, row: int) -> None:
    """Attach a form button to ``sheet_part`` unless the sheet already has a legacy drawing."""
    n = 1
    while f"xl/drawings/vmlDrawingDMPlan{n}.vml" in parts:
        n += 1
    attach_vml(parts, sheet_part, button_vml(macro, label, col, row, block=100 + n).encode("utf-8"))


def build_demo_xlsm(
    template_xlsx: Path,
    out: Path = DEMO_OUT,
    macro_template: Path = STANDALONE_TEMPLATE,
    button_label: str = "Solve with DMPlan",
) -> Path:
    """Turn ``template_xlsx`` (written by DMPlan's template generator) into a standalone macro workbook.

    All sheets, tables, validations and comments of ``template_xlsx`` are kept byte for byte;
    the workbook becomes macro-enabled, gets the VBA project of xlwings' standalone quickstart
    (RunPython without the add-in) and a form button on its first sheet that runs the macro
    ``SampleCall``, i.e. ``import <out stem>; <out stem>.main()``. A module of that name must be
    importable; :data:`STANDALONE_VBA` makes that ``dmplan`` whatever the file is called.
    """
    if out.suffix.lower() != ".xlsm":
        raise ValueError(f"{out.name}: a macro workbook must end in .xlsm")
    parts = read_parts(template_xlsx)
    macro_parts = read_parts(macro_template)
    if "xl/vbaProject.bin" in parts:
        raise ValueError(f"{template_xlsx.name} already has a VBA project")
    parts["xl/vbaProject.bin"] = standalone_vba(macro_parts["xl/vbaProject.bin"], macro_template)

    types = parts["[Content_Types].xml"].decode("utf-8").replace(XLSX_MAIN, XLSM_MAIN)
    types = types.replace(
        "</Types>", f'<Override PartName="/xl/vbaProject.bin" ContentType="{VBA_CONTENT_TYPE}"/></Types>'
    )
    parts["[Content_Types].xml"] = types.encode("utf-8")
    rels, _ = rels_add(parts["xl/_rels/workbook.xml.rels"].decode("utf-8"), VBA_REL_TYPE, "vbaProject.bin")
    parts["xl/_rels/workbook.xml.rels"] = rels.encode("utf-8")

    # The VBA project has document modules ThisWorkbook, Sheet1 and Sheet2: tie them to the workbook
    # and its first two sheets, so Excel does not see orphaned modules.
    parts["xl/workbook.xml"] = _set_codename(
        parts["xl/workbook.xml"].decode("utf-8"), "workbookPr", "ThisWorkbook"
    ).encode("utf-8")
    sheets = sheet_parts(parts)
    for i, (_, part) in enumerate(sheets[:2]):
        parts[part] = _set_codename(parts[part].decode("utf-8"), "sheetPr", f"Sheet{i + 1}").encode("utf-8")
    if sheets:
        _add_button(parts, sheets[0][1], STANDALONE_MACRO, button_label, col=_free_column(parts[sheets[0][1]]), row=1)
    _write_zip(out, parts)
    return out


def standalone_vba(template_vba: bytes, template: Path = STANDALONE_TEMPLATE) -> bytes:
    """The macro workbooks' vbaProject.bin: xlwings' standalone VBA whose button macro runs dmplan.main()."""
    sources = vba_project.module_sources(template_vba)
    _check_xlwings_version(sources, template)
    if f"Sub {STANDALONE_MACRO}()" not in sources.get("Module1", ""):
        raise RuntimeError(f"{template.name}: no Module1.{STANDALONE_MACRO} to rewrite")
    return vba_project.replace_modules(template_vba, {"Module1": STANDALONE_VBA})


def _free_column(sheet_xml: bytes) -> int:
    """First column (0-based) right of the sheet's used range plus one, so the button hides no data."""
    match = re.search(rb'<dimension ref="[A-Z]+\d+:([A-Z]+)\d+"', sheet_xml)
    if not match:
        return 6
    col = 0
    for ch in match.group(1).decode():
        col = col * 26 + ord(ch) - 64
    return col + 1


# --------------------------------------------------------------------------- checks
def vba_sources(path: Path) -> dict[str, str]:
    """Module name -> VBA source of a workbook or add-in file."""
    with zipfile.ZipFile(path) as zf:
        return vba_project.module_sources(zf.read("xl/vbaProject.bin"))


def check_xlam(path: Path) -> list[str]:
    """Problems of a built add-in (empty when it is sound)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if "xl/vbaProject.bin" not in names:
            return ["no xl/vbaProject.bin"]
        customui = zf.read(CUSTOMUI_PART).decode("utf-8") if CUSTOMUI_PART in names else ""
        rels = zf.read("_rels/.rels").decode("utf-8")
    sources = vba_sources(path)
    problems = vba_problems(sources)
    if not customui:
        problems.append(f"no {CUSTOMUI_PART}")
    if f'Type="{UI_REL_TYPE}" Target="{CUSTOMUI_PART}"' not in rels:
        problems.append("_rels/.rels has no ribbon relationship to " + CUSTOMUI_PART)
    for action in onaction_names(customui):
        module, sub = callback_parts(action)
        if not re.search(rf"^Sub {re.escape(sub)}\(control As IRibbonControl\)", sources.get(module, ""), re.M):
            problems.append(f"onAction {action}: no Sub {sub}(control As IRibbonControl) in VBA module {module}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", type=Path, default=ADDIN_OUT, help="add-in file to write (dmplan.xlam)")
    parser.add_argument("--demo", type=Path, help="template .xlsx to turn into the standalone demo workbook")
    parser.add_argument("--demo-out", type=Path, default=DEMO_OUT)
    args = parser.parse_args(argv)
    out = build_xlam(args.out)
    problems = check_xlam(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    if args.demo:
        demo = build_demo_xlsm(args.demo, args.demo_out)
        print(f"wrote {demo} ({demo.stat().st_size} bytes)")
    for problem in problems:
        print("problem:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "EVALUATE_CALLBACK",
    "IMPORT_CALLBACK",
    "PYTHON_MODULE",
    "RIBBON_CALLBACK",
    "ROBYN_CALLBACK",
    "STANDALONE_MACRO",
    "VBA_PROJECT_NAME",
    "build_demo_xlsm",
    "build_xlam",
    "check_xlam",
    "customui_xml",
    "vba_sources",
    "xlwings_version_of",
]
