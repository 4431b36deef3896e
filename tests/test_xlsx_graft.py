"""Result sheets written into a package at the zip level: input parts byte for byte, results
equal to the openpyxl path's, shapes, VBA and buttons kept, names and tables consistent."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName

from dmplan.addin import package_io, pipeline
from dmplan.addin.contract import ModelRun
from dmplan.addin.ooxml import read_parts, sheet_parts, write_parts
from dmplan.addin.pipeline import solve_file
from dmplan.addin.sheets import Block, SheetSpec
from dmplan.addin.templates import write_template
from dmplan.addin.xlsx_graft import GraftError, graft
from dmplan.addin.xlsx_read import Package
from dmplan.solver.common import Status
from tests import libreoffice

ROOT = Path(__file__).resolve().parents[1]
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
RESULTS = ["DM Plan", "DM Budget", "DM Pareto", "DM Mailing List"]
TIMING = ("Seconds", "One mailing per customer")  #: cells that hold the run's own timing
SHAPE_DRAWING = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
    "<xdr:twoCellAnchor><xdr:from><xdr:col>8</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>1</xdr:row>"
    "<xdr:rowOff>0</xdr:rowOff></xdr:from><xdr:to><xdr:col>11</xdr:col><xdr:colOff>0</xdr:colOff>"
    "<xdr:row>6</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>"
    '<xdr:sp macro="" textlink=""><xdr:nvSpPr><xdr:cNvPr id="2" name="Note shape"/><xdr:cNvSpPr/></xdr:nvSpPr>'
    '<xdr:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="1800000" cy="900000"/></a:xfrm>'
    '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:solidFill><a:srgbClr val="FFC000"/></a:solidFill></xdr:spPr>'
    "<xdr:txBody><a:bodyPr/><a:p><a:r><a:t>Keep me</a:t></a:r></a:p></xdr:txBody></xdr:sp>"
    "<xdr:clientData/></xdr:twoCellAnchor></xdr:wsDr>"
)


def part_bytes(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i.filename) for i in zf.infolist()}


def input_parts(path: Path, result_names: set[str]) -> set[str]:
    """Every part except the ones a graft may rewrite and the result sheets' trees."""
    parts = read_parts(path)
    rewritten = {"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"}
    rewritten |= {"docProps/app.xml", "xl/calcChain.xml"}
    result_parts = {part for name, part in sheet_parts(parts) if name in result_names}
    tree = set()
    for part in result_parts:  # the result sheet, its rels and what they reach
        folder, name = part.rsplit("/", 1)
        tree |= {part, f"{folder}/_rels/{name}.rels"}
        rels = parts.get(f"{folder}/_rels/{name}.rels", b"").decode()
        for target in re.findall(r'Target="\.\./(\w+)/([^"]+)"', rels):
            sub = f"xl/{target[0]}/{target[1]}"
            tree |= {sub, f"xl/{target[0]}/_rels/{target[1]}.rels"}
            sub_rels = parts.get(f"xl/{target[0]}/_rels/{target[1]}.rels", b"").decode()
            tree |= {f"xl/{a}/{b}" for a, b in re.findall(r'Target="\.\./(\w+)/([^"]+)"', sub_rels)}
    return set(parts) - rewritten - tree


def values(path: Path, sheet: str) -> list[list]:
    """Cell contents (formulas as text) by row; a row holding the run's own timing is blanked."""
    ws = openpyxl.load_workbook(path, data_only=False)[sheet]
    out = []
    for row in ws.iter_rows(values_only=True):
        timing = any(isinstance(v, str) and v.startswith(TIMING) for v in row)
        out.append([None] * len(row) if timing else list(row))
    return out


@pytest.fixture(scope="module")
def coupon(tmp_path_factory) -> Path:
    return write_template("coupon", tmp_path_factory.mktemp("graft") / "dm_plan.xlsx")


def test_input_parts_are_byte_identical_and_results_equal_the_openpyxl_path(coupon, tmp_path):
    fast, slow = tmp_path / "fast.xlsx", tmp_path / "slow.xlsx"
    solve_file(coupon, fast)
    solve_file(coupon, slow, package=False)
    source, grafted = part_bytes(coupon), part_bytes(fast)
    kept = input_parts(coupon, set())
    assert kept and all(grafted[p] == source[p] for p in kept)
    wb = openpyxl.load_workbook(fast)
    assert wb.sheetnames == openpyxl.load_workbook(coupon).sheetnames + RESULTS
    for name in RESULTS:
        v_fast, v_slow = values(fast, name), values(slow, name)
        assert len(v_fast) == len(v_slow)
        assert v_fast == v_slow, name
    tables = {name: ws.tables[name].ref for ws in wb.worksheets for name in ws.tables}
    assert {"DMPlan_Allocation", "DMPlan_BudgetBySegment", "DMPlan_Pareto", "DMPlan_MailingList"} <= set(tables)
    with Package(fast) as package:
        ids = [
            int(re.search(rb'\bid="(\d+)"', grafted_part).group(1))
            for grafted_part in (part_bytes(fast)[t.part] for t in package.tables)
        ]
        assert len(ids) == len(set(ids))
        names = {d.name: d.value for d in package.defined_names if d.local_sheet_id is None}
        markers = sorted(d.value for d in package.defined_names if d.name == "DMPlanResult")
    assert markers == sorted(f'"coupon/{role}"' for role in ("plan", "budget", "pareto", "mailing_list"))
    assert names["budget"] == "Settings!$B$2"
    charts = [len(wb[name]._charts) for name in ("DM Budget", "DM Pareto")]
    assert charts == [1, 1]


def test_rerun_replaces_the_results_in_place_and_drops_their_parts(coupon, tmp_path):
    book = tmp_path / "book.xlsx"
    shutil.copy(coupon, book)
    solve_file(book)
    first = part_bytes(book)
    wb = openpyxl.load_workbook(book)
    wb.move_sheet("DM Budget", offset=-6)  # the user moved a result sheet to the front
    wb.save(book)
    solve_file(book)
    after = openpyxl.load_workbook(book)
    assert after.sheetnames[1] == "DM Budget" and sorted(after.sheetnames) == sorted(wb.sheetnames)
    parts = part_bytes(book)
    assert len([p for p in parts if p.startswith("xl/worksheets/sheet")]) == len(after.sheetnames)
    assert len([p for p in parts if p.startswith("xl/charts/chart")]) == 2
    assert "xl/calcChain.xml" not in parts
    assert len(parts) <= len(first) + 2  # no part of the earlier results is left behind


def test_a_shape_on_an_input_sheet_survives_which_openpyxl_alone_loses(coupon, tmp_path):
    book = tmp_path / "shapes.xlsx"
    shutil.copy(coupon, book)
    parts = read_parts(book)
    sheet = dict(sheet_parts(parts))["Segments"]
    folder, name = sheet.rsplit("/", 1)
    rels_part = f"{folder}/_rels/{name}.rels"
    parts["xl/drawings/drawing99.xml"] = SHAPE_DRAWING.encode()
    rels = parts[rels_part].decode()
    rel = (
        '<Relationship Id="rIdShape" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'drawing" Target="../drawings/drawing99.xml"/>'
    )
    parts[rels_part] = rels.replace("</Relationships>", rel + "</Relationships>").encode()
    xml = parts[sheet].decode()
    at = xml.find("<tableParts")
    xml = xml[:at] + '<drawing r:id="rIdShape"/>' + xml[at:]
    if "xmlns:r=" not in xml[: xml.index(">", xml.index("<worksheet"))]:
        xml = xml.replace("<worksheet ", f'<worksheet xmlns:r="{REL_NS}" ', 1)
    parts[sheet] = xml.encode()
    ct = parts["[Content_Types].xml"].decode()
    parts["[Content_Types].xml"] = ct.replace(
        "</Types>",
        '<Override PartName="/xl/drawings/drawing99.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.drawing+xml"/></Types>',
    ).encode()
    write_parts(book, parts)
    old, new = tmp_path / "old.xlsx", tmp_path / "new.xlsx"
    solve_file(book, old, package=False)
    solve_file(book, new)
    assert not any(b"Keep me" in data for data in part_bytes(old).values())  # openpyxl's limitation
    grafted = part_bytes(new)
    assert grafted["xl/drawings/drawing99.xml"] == SHAPE_DRAWING.encode()
    assert grafted[sheet] == parts[sheet] and grafted[rels_part] == parts[rels_part]


def test_macro_workbook_keeps_vba_and_button_and_xlsx_target_drops_them(tmp_path):
    source = tmp_path / "dm_plan.xlsm"
    shutil.copy(ROOT / "templates" / "dm_plan.xlsm", source)
    before = part_bytes(source)
    solve_file(source)
    after = part_bytes(source)
    assert after["xl/vbaProject.bin"] == before["xl/vbaProject.bin"]
    buttons = [p for p, data in before.items() if p.endswith(".vml") and b'ObjectType="Button"' in data]
    assert buttons and all(after[p] == before[p] for p in buttons)
    assert b"sheet.macroEnabled.main+xml" in after["[Content_Types].xml"]
    openpyxl.load_workbook(source, keep_vba=True)
    out = tmp_path / "plain.xlsx"
    run = solve_file(source, out)
    assert any("macros were not copied" in w for w in run.warnings)
    plain = part_bytes(out)
    assert "xl/vbaProject.bin" not in plain and b"vbaProject" not in plain["xl/_rels/workbook.xml.rels"]
    assert b"spreadsheetml.sheet.main+xml" in plain["[Content_Types].xml"]
    assert b"macroEnabled" not in plain["[Content_Types].xml"]
    back = tmp_path / "back.xlsm"
    solve_file(out, back)  # .xlsx to .xlsm: the content type follows the extension
    assert b"sheet.macroEnabled.main+xml" in part_bytes(back)["[Content_Types].xml"]


def test_sheet_scoped_names_of_the_result_book_point_at_their_sheets(coupon, tmp_path):
    results = tmp_path / "results.xlsx"
    wb = openpyxl.Workbook()
    first = wb.active
    first.title = "R1"
    first["A1"] = "one"
    second = wb.create_sheet("R2")
    second["A1"] = "two"
    second.defined_names["_dmplan_result"] = DefinedName("_dmplan_result", attr_text='"coupon"', hidden=True)
    first.defined_names["_dmplan_result"] = DefinedName("_dmplan_result", attr_text='"mix"', hidden=True)
    wb.save(results)
    book = tmp_path / "book.xlsx"
    shutil.copy(coupon, book)
    source_wb = openpyxl.load_workbook(book)
    source_wb["Segments"].defined_names["local"] = DefinedName("local", attr_text="Segments!$A$1")
    source_wb.save(book)
    target = tmp_path / "out.xlsx"
    report = graft(book, results, target, remove=["Instructions"], replaces={"R2": "Instructions"})
    assert report.sheets[0] == "R2" and report.sheets[-1] == "R1"
    out = openpyxl.load_workbook(target)
    assert out["R2"].defined_names["_dmplan_result"].attr_text == '"coupon"'
    assert out["R1"].defined_names["_dmplan_result"].attr_text == '"mix"'
    assert out["Segments"].defined_names["local"].attr_text == "Segments!$A$1"  # index shifted with the tabs
    assert out["R2"]["A1"].value == "two"
    with pytest.raises(GraftError, match="not being removed"):
        graft(book, results, tmp_path / "x.xlsx", remove=[], replaces={"R2": "Instructions"})


def test_a_result_table_name_taken_by_an_input_table_is_renamed(coupon, tmp_path):
    book = tmp_path / "clash.xlsx"
    wb = openpyxl.load_workbook(coupon)
    from openpyxl.worksheet.table import Table

    ws = wb["Instructions"]
    ws["D40"], ws["D41"] = "x", 1
    ws.add_table(Table(displayName="DMPlan_Pareto", ref="D40:D41"))
    wb.save(book)
    solve_file(book)
    out = openpyxl.load_workbook(book)
    names = [name for ws in out.worksheets for name in ws.tables]
    assert len(names) == len(set(n.lower() for n in names)) and "DMPlan_Pareto2" in out["DM Pareto"].tables


def test_large_blocks_are_streamed_with_the_same_values_and_formats(coupon, tmp_path):
    rows = [[f"c{i}", i % 16, "dm2", "label", i / 1000, "=1+1" if i == 7 else None] for i in range(5000)]
    block = Block(
        4,
        1,
        ("id", "segment", "mailing", "label", "probability", "f"),
        rows,
        formats={"probability": "0.00"},
        table_name="Big",
    )
    spec = SheetSpec("Big", "Big list", [block], notes=["note"])
    target = tmp_path / "big.xlsx"
    with Package(coupon) as package:
        existing, taken = package_io.existing_sheets(package), package_io.taken_names(package)
    plan = pipeline.write_plan([ModelRun("coupon", Status.OPTIMAL, {}, [spec])], existing, taken, [])
    package_io.write_plan(coupon, plan, target)
    ws = openpyxl.load_workbook(target)["Big"]
    got = [list(r) for r in ws.iter_rows(min_row=5, max_row=5004, max_col=6, values_only=True)]
    assert got == rows
    assert {ws.cell(r, 5).number_format for r in (5, 6, 3000, 5004)} == {"0.00"}
    assert ws.tables["Big"].ref == "A4:F5004" and ws["A4"].value == "id" and ws.max_row == 5004


@pytest.mark.libreoffice
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice is installed by build/setup_dev.sh")
def test_libreoffice_opens_the_grafted_book_recalculates_and_draws_the_charts(coupon, tmp_path):
    out = tmp_path / "grafted.xlsx"
    summary = solve_file(coupon, out).runs[0].summary
    recalculated = libreoffice.convert(out, "xlsx", tmp_path / "recalc", tmp_path)
    plan = openpyxl.load_workbook(recalculated, data_only=True)["DM Plan"]
    kpi = {plan.cell(r, 7).value: plan.cell(r, 8).value for r in range(5, 23)}
    assert kpi["Extra conversions (objective)"] == pytest.approx(summary["objective"], rel=1e-9)
    assert kpi["Budget used"] == pytest.approx(summary["budget_used"], rel=1e-9)
    assert openpyxl.load_workbook(recalculated)["Segments"]["A1"].value == "age_cat"
    # print only the chart sheets: hide the others in the grafted package itself (no openpyxl re-save)
    from lxml import etree

    parts = read_parts(out)
    book = etree.fromstring(parts["xl/workbook.xml"])
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    sheets = list(book.iter(main + "sheet"))
    for sheet in sheets:
        sheet.set("state", "visible" if sheet.get("name") in ("DM Budget", "DM Pareto") else "hidden")
    book.find(f"{main}bookViews/{main}workbookView").set(
        "activeTab", str([s.get("name") for s in sheets].index("DM Budget"))
    )
    parts["xl/workbook.xml"] = etree.tostring(book)
    charts_only = tmp_path / "charts.xlsx"
    write_parts(charts_only, parts)
    pdf = libreoffice.convert(charts_only, "pdf", tmp_path / "pdf", tmp_path)
    pages = libreoffice.pdf_to_png(pdf, tmp_path / "png", resolution=50)
    assert len(pages) == 2
    from PIL import Image

    for page in pages:  # the chart sits at the right of the table
        image = np.asarray(Image.open(page).convert("L"), dtype=float)
        assert image[:, image.shape[1] // 2 :].std() > 10, f"{page.name}: the chart area is blank"


APP_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties" '
    'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><Application>Microsoft Excel'
    '</Application><HeadingPairs><vt:vector size="4" baseType="variant"><vt:variant><vt:lpstr>Worksheets'
    "</vt:lpstr></vt:variant><vt:variant><vt:i4>{n}</vt:i4></vt:variant><vt:variant><vt:lpstr>Named Ranges"
    "</vt:lpstr></vt:variant><vt:variant><vt:i4>1</vt:i4></vt:variant></vt:vector></HeadingPairs>"
    '<TitlesOfParts><vt:vector size="{size}" baseType="lpstr">{titles}<vt:lpstr>budget</vt:lpstr></vt:vector>'
    "</TitlesOfParts></Properties>"
)


def test_app_xml_lists_the_new_tab_order_as_excel_writes_it(coupon, tmp_path):
    book = tmp_path / "excel.xlsx"
    shutil.copy(coupon, book)
    solve_file(book)
    parts = read_parts(book)
    names = [name for name, _ in sheet_parts(parts)]
    titles = "".join(f"<vt:lpstr>{n}</vt:lpstr>" for n in names)
    parts["docProps/app.xml"] = APP_XML.format(n=len(names), size=len(names) + 1, titles=titles).encode()
    write_parts(book, parts)
    wb = openpyxl.load_workbook(book)
    del wb["DM Pareto"]  # a user deleted one result sheet: the rerun adds it at the end
    wb.save(book)
    parts = read_parts(book)
    names = [name for name, _ in sheet_parts(parts)]
    parts["docProps/app.xml"] = APP_XML.format(
        n=len(names), size=len(names) + 1, titles="".join(f"<vt:lpstr>{n}</vt:lpstr>" for n in names)
    ).encode()
    write_parts(book, parts)
    solve_file(book)
    app = read_parts(book)["docProps/app.xml"].decode()
    listed = re.findall(r"<vt:lpstr>([^<]+)</vt:lpstr>", app)
    final = [name for name, _ in sheet_parts(read_parts(book))]
    assert listed == ["Worksheets", "Named Ranges", *final, "budget"]
    assert f"<vt:i4>{len(final)}</vt:i4>" in app and f'size="{len(final) + 1}"' in app
    assert final[-1] == "DM Pareto"


def test_a_users_name_on_a_result_cell_survives_a_rerun(coupon, tmp_path):
    book = tmp_path / "named.xlsx"
    shutil.copy(coupon, book)
    solve_file(book)
    wb = openpyxl.load_workbook(book)
    wb.defined_names["kpi"] = DefinedName("kpi", attr_text="'DM Plan'!$H$5")
    wb.defined_names["intro"] = DefinedName("intro", attr_text="Instructions!$A$1")
    wb.save(book)
    solve_file(book)
    assert openpyxl.load_workbook(book).defined_names["kpi"].attr_text == "'DM Plan'!$H$5"
    results = tmp_path / "results.xlsx"
    other = openpyxl.Workbook()
    other.active.title = "Other"
    other.save(results)
    graft(book, results, tmp_path / "out.xlsx", remove=["Instructions"])  # a sheet that nothing replaces
    names = openpyxl.load_workbook(tmp_path / "out.xlsx").defined_names
    assert "intro" not in names and "kpi" in names  # no name is left pointing at #REF!


def test_a_value_the_stream_cannot_write_is_refused_before_the_target_exists(coupon, tmp_path):
    """A date deep in a large block: GraftError (the pipeline then writes with openpyxl), nothing left behind."""
    import datetime as dt

    rows = [[f"c{i}", dt.datetime(2025, 1, 1) if i == 2500 else i] for i in range(3000)]
    spec = SheetSpec("Big", "Big list", [Block(4, 1, ("id", "value"), rows)])
    with Package(coupon) as package:
        existing, taken = package_io.existing_sheets(package), package_io.taken_names(package)
    plan = pipeline.write_plan([ModelRun("coupon", Status.OPTIMAL, {}, [spec])], existing, taken, [])
    with pytest.raises(GraftError, match="cannot stream a datetime"):
        package_io.write_plan(coupon, plan, tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []
