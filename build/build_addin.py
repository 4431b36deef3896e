"""Build DMPlan's Excel add-in (``xlsm/dmplan.xlam``) and macro workbooks on any OS, without Excel.

The add-in starts from the ribbon add-in template that ships inside the xlwings package
(``quickstart_addin_ribbon.xlam``, BSD licensed). Its compiled VBA cannot be edited here, so
everything we need must already be in it; what it holds (checked with oletools' olevba):

* module ``RibbonMyAddin`` with ``Sub RunMain(control As IRibbonControl)``, which runs
  ``RunPython "import <name>; <name>.main()"`` where ``<name>`` is the add-in's file name
  without extension. Our file is ``dmplan.xlam``, so a ribbon click runs ``dmplan.main()``.
  Every button calls this one macro (the VBA ignores which control was clicked), so
  ``dmplan.main()`` decides what to do from the workbook's content.
* module ``xlwings`` with ``PROJECT_NAME = "myaddin"``: the add-in reads its settings
  (``Interpreter_Win``/``Interpreter_Mac``, ``PYTHONPATH`` ...) from a sheet ``myaddin.conf``
  in the active workbook, a file ``myaddin.conf`` beside it, or the user file
  ``%USERPROFILE%\\.myaddin\\myaddin.conf`` (macOS: ``~/Library/Containers/com.microsoft.Excel/Data/myaddin.conf``).

openpyxl refuses ``.xlam`` files and drops the ribbon relationship of files it rewrites, so
the package is assembled at the zip level: the template's parts are copied, its Excel 2007
``customUI/customUI.xml`` is replaced by our ``customUI/customUI14.xml``, written last.

The standalone demo workbook (``xlsm/dmplan_demo.xlsm``) is the other way round: the input
sheets come from an ``.xlsx`` written by the template generator, and the VBA project of
xlwings' ``quickstart_standalone.xlsm`` (RunPython included, no add-in needed; macro
``Module1.SampleCall`` runs ``import dmplan_demo; dmplan_demo.main()``) is put into it, with a
form button on the first sheet that runs that macro.

Usage::

    python3 build/build_addin.py                 # writes xlsm/dmplan.xlam
    python3 build/build_addin.py --demo IN.xlsx  # also writes xlsm/dmplan_demo.xlsm from IN.xlsx
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import xlwings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dmplan.addin.ooxml import attach_vml, read_parts, rels_add, sheet_parts  # noqa: E402

XLWINGS_DIR = Path(xlwings.__file__).resolve().parent
RIBBON_TEMPLATE = XLWINGS_DIR / "quickstart_addin_ribbon.xlam"
STANDALONE_TEMPLATE = XLWINGS_DIR / "quickstart_standalone.xlsm"
ADDIN_OUT = ROOT / "xlsm" / "dmplan.xlam"
DEMO_OUT = ROOT / "xlsm" / "dmplan_demo.xlsm"

#: The only ribbon callback the template's VBA defines (module.sub, with an IRibbonControl argument).
RIBBON_CALLBACK = "RibbonMyAddin.RunMain"
#: The standalone template's macro: runs ``import <workbook name>; <workbook name>.main()``.
STANDALONE_MACRO = "SampleCall"
#: ``PROJECT_NAME`` in the add-in template's VBA: names its config sheet and config file.
VBA_PROJECT_NAME = "myaddin"

CUSTOMUI14_NS = "http://schemas.microsoft.com/office/2009/07/customui"
UI_REL_TYPE = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
CUSTOMUI_PART = "customUI/customUI14.xml"
VBA_REL_TYPE = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
VBA_CONTENT_TYPE = "application/vnd.ms-office.vbaProject"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSM_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # reproducible zips

# (id, label, size, imageMso, screentip, supertip); all run RIBBON_CALLBACK -> dmplan.main().
BUTTONS: dict[str, list[tuple[str, str, str, str, str, str]]] = {
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
            "Solve workbook: both buttons run the same add-in macro.",
        ),
    ],
}


# --------------------------------------------------------------------------- ribbon
def customui_xml(callback: str = RIBBON_CALLBACK) -> str:
    """Our ribbon: a DMPlan tab whose buttons all run ``callback``."""
    groups = []
    for group, buttons in BUTTONS.items():
        items = "\n".join(
            f"          <button id={quoteattr(bid)} label={quoteattr(label)} size={quoteattr(size)} "
            f"imageMso={quoteattr(image)} screentip={quoteattr(tip)} supertip={quoteattr(supertip)} "
            f"onAction={quoteattr(callback)}/>"
            for bid, label, size, image, tip, supertip in buttons
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


def build_xlam(out: Path = ADDIN_OUT, template: Path = RIBBON_TEMPLATE) -> Path:
    """Write the DMPlan add-in to ``out`` (its file name must stay ``dmplan.xlam``: see module doc)."""
    if out.stem != "dmplan":
        raise ValueError(f"{out.name}: the add-in must be named dmplan.xlam, its VBA imports the module of that name")
    parts = read_parts(template)
    vba = parts["xl/vbaProject.bin"]
    missing = [name for name in callback_parts(RIBBON_CALLBACK) if name.encode() not in vba]
    if missing:
        raise RuntimeError(f"{template.name}: its VBA has no {RIBBON_CALLBACK} ({', '.join(missing)} not found)")
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
    """``"RibbonMyAddin.RunMain"`` -> the module and procedure names to look for in vbaProject.bin."""
    return callback.split(".")


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
    importable (``xlsm/dmplan_demo.py`` sits beside the demo workbook for this).
    """
    if out.suffix.lower() != ".xlsm":
        raise ValueError(f"{out.name}: a macro workbook must end in .xlsm")
    if not out.stem.isidentifier():
        raise ValueError(f"{out.name}: the file name must be a Python module name, its VBA imports it")
    parts = read_parts(template_xlsx)
    macro_parts = read_parts(macro_template)
    if "xl/vbaProject.bin" in parts:
        raise ValueError(f"{template_xlsx.name} already has a VBA project")
    parts["xl/vbaProject.bin"] = macro_parts["xl/vbaProject.bin"]

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
def vba_source(vba_bin: bytes) -> dict[str, str] | None:
    """The VBA modules' source (module name -> code) when oletools is installed, else None."""
    try:
        from oletools.olevba import VBA_Parser  # type: ignore[import-not-found]
    except ImportError:
        return None
    parser = VBA_Parser("vbaProject.bin", data=vba_bin)
    try:
        return {name.rsplit(".", 1)[0]: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


def check_xlam(path: Path) -> list[str]:
    """Problems of a built add-in (empty when it is sound)."""
    problems = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if "xl/vbaProject.bin" not in names:
            return ["no xl/vbaProject.bin"]
        if CUSTOMUI_PART not in names:
            return [f"no {CUSTOMUI_PART}"]
        vba = zf.read("xl/vbaProject.bin")
        customui = zf.read(CUSTOMUI_PART).decode("utf-8")
        rels = zf.read("_rels/.rels").decode("utf-8")
    if f'Type="{UI_REL_TYPE}" Target="{CUSTOMUI_PART}"' not in rels:
        problems.append("_rels/.rels has no ribbon relationship to " + CUSTOMUI_PART)
    for action in onaction_names(customui):
        for part in callback_parts(action):
            if part.encode() not in vba:
                problems.append(f"onAction {action}: {part!r} is not in vbaProject.bin")
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
        shim = ROOT / "xlsm" / f"{demo.stem}.py"
        if demo.parent != shim.parent and shim.exists():
            shutil.copy(shim, demo.parent / shim.name)
        print(f"wrote {demo} ({demo.stat().st_size} bytes)")
    for problem in problems:
        print("problem:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "RIBBON_CALLBACK",
    "STANDALONE_MACRO",
    "VBA_PROJECT_NAME",
    "build_demo_xlsm",
    "build_xlam",
    "check_xlam",
    "customui_xml",
]
