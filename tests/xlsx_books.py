"""Messy workbooks for the package reader and writer tests, built the way users' books come.

:func:`messy_book` writes with openpyxl what it can (blank rows, a totals row, hidden rows and
sheets, merged cells, text numbers, error cells, dates and durations, formulas without a
cached value, sheet-scoped names) and then edits the package for what openpyxl never writes:
shared strings (rich text and phonetic runs among them), shared formulas with cached values,
cached formula text (``t="str"``), ISO dates (``t="d"``) and rich inline strings.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import Workbook
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.table import Table, TableStyleInfo

from dmplan.addin.ooxml import read_parts, write_parts

CRAFTED_ROWS = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c></row>'
    '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><f t="shared" ref="B2:B4" si="0">A2*2</f><v>2</v></c>'
    '<c r="C2" t="s"><v>3</v></c></row>'
    '<row r="3" hidden="1"><c r="A3"><v>2.5</v></c><c r="B3"><f t="shared" si="0"/><v>5</v></c>'
    '<c r="C3" t="str"><f>"x"&amp;A3</f><v>x2.5</v></c></row>'
    '<row r="4"><c r="A4"><v>3</v></c><c r="B4"><f t="shared" si="0"/></c>'
    '<c r="C4" t="inlineStr"><is><r><t>rich </t></r><r><rPr><b/></rPr><t>inline</t></r></is></c></row>'
    '<row r="6"><c r="A6" t="d"><v>2024-02-29T10:30:00</v></c><c r="B6" t="e"><v>#DIV/0!</v></c>'
    '<c r="C6" t="s"><v>4</v></c></row>'
    '<row r="7"><c r="A7" t="b"><v>0</v></c><c r="B7"><v>1E-3</v></c><c r="C7" t="s"><v>5</v></c></row>'
)
SHARED_STRINGS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="6" uniqueCount="6">'
    "<si><t>id</t></si><si><t>twice</t></si><si><t>label</t></si>"
    '<si><r><t>Tok</t></r><r><rPr><i/></rPr><t>yo</t></r><rPh sb="0" eb="1"><t>toukyou</t></rPh></si>'
    '<si><t xml:space="preserve">  padded &amp; &lt;escaped&gt; </t></si>'
    "<si><t>x_x005F_x000D_y</t></si>"
    "</sst>"
)
SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
SST_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def _table(ws, name: str, ref: str, totals: int = 0) -> None:
    table = Table(displayName=name, ref=ref, totalsRowCount=totals or None, totalsRowShown=bool(totals))
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium9", showRowStripes=True)
    ws.add_table(table)


def messy_book(path: Path, epoch_1904: bool = False) -> Path:
    wb = Workbook()
    if epoch_1904:
        from openpyxl.utils.datetime import CALENDAR_MAC_1904

        wb.epoch = CALENDAR_MAC_1904
    ws = wb.active
    ws.title = "Segments"
    ws.append(["segment", "customers", "prob_dm1", "when"])
    ws.append(["a", 100, 0.25, dt.datetime(2025, 1, 31)])
    ws.append([None, None, None, None])  # a blank row inside the table
    ws.append(["b", "1,000", "0,1", dt.date(2024, 2, 29)])
    ws.append(["c", "#N/A", 0.5, dt.time(12, 30)])
    ws["B5"].data_type = "e"
    ws.append(["  d ", 7, "=B2*2", dt.timedelta(hours=30)])
    ws["D6"].number_format = "[h]:mm:ss"
    ws.append(["Total", "=SUBTOTAL(109,B2:B6)", None, None])
    ws.row_dimensions[4].hidden = True
    _table(ws, "SegTable", "A1:D7", totals=1)
    ws["F2"] = "merged"
    ws.merge_cells("F2:G3")
    ws["A12"] = "after a gap"
    ws["C30"], ws["D30"], ws["C31"], ws["D31"] = "k", "v", "x", 1.5
    _table(ws, "Offset", "C30:D31")
    other = wb.create_sheet("Other")
    other.append(["mailing", "value", "flag"])
    other.append(["dm1", 0, True])
    other.append(["dm2", 1e-9, False])
    other.append(["dm3", -2.5, None])
    other.append(["dm4", "#DIV/0!", "x"])
    other["B5"].data_type = "e"
    hidden = wb.create_sheet("Secret")
    hidden["A1"] = "hidden sheet"
    hidden.sheet_state = "hidden"
    very = wb.create_sheet("Deep")
    very["A1"] = 1
    very.sheet_state = "veryHidden"
    wb.create_sheet("Crafted")["A1"] = "placeholder"
    wb.defined_names["budget"] = DefinedName("budget", attr_text="Segments!$B$2")
    other.defined_names["_dmplan_result"] = DefinedName("_dmplan_result", attr_text='"coupon"', hidden=True)
    wb.save(path)
    _craft(path)
    return path


def _craft(path: Path) -> None:
    """Put the hand-written sheet and shared strings into the package."""
    parts = read_parts(path)
    part = "xl/worksheets/sheet5.xml"
    sheet = parts[part].decode()
    start, end = sheet.index("<sheetData>"), sheet.index("</sheetData>") + len("</sheetData>")
    parts[part] = (sheet[:start] + f"<sheetData>{CRAFTED_ROWS}</sheetData>" + sheet[end:]).encode()
    parts["xl/sharedStrings.xml"] = SHARED_STRINGS.encode()
    types = parts["[Content_Types].xml"].decode()
    parts["[Content_Types].xml"] = types.replace(
        "</Types>", f'<Override PartName="/xl/sharedStrings.xml" ContentType="{SST_TYPE}"/></Types>'
    ).encode()
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    parts["xl/_rels/workbook.xml.rels"] = rels.replace(
        "</Relationships>", f'<Relationship Id="rIdSST" Type="{SST_REL}" Target="sharedStrings.xml"/></Relationships>'
    ).encode()
    write_parts(path, parts)


def plain_book(path: Path, rows: int = 3000) -> Path:
    """Values only (what the calamine path reads): numbers, text, dates, booleans, blank and
    hidden rows, a merged range and shared strings, in an Excel table of ``rows`` rows."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Customers"
    ws.append(["customer_id", "segment", "score", "joined", "active"])
    for i in range(rows):
        if i % 97 == 5:
            ws.append([None] * 5)
            continue
        ws.append([i, f"s{i % 7}", i / 7, dt.datetime(2020, 1, 1) + dt.timedelta(days=i), i % 3 == 0])
        ws.cell(row=ws.max_row, column=4).number_format = "yyyy-mm-dd"
        if i % 101 == 3:
            ws.row_dimensions[ws.max_row].hidden = True
    ws.merge_cells("G2:H3")
    ws["G2"] = "note"
    _table(ws, "Customers", f"A1:E{ws.max_row}")
    wb.save(path)
    return path
