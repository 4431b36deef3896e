"""The file path: read input tables from a workbook file and write result sheets back safely.

Reading uses cached cell values (``data_only``); writing reloads the workbook with its
formulas (and VBA for .xlsm/.xlam), replaces only the result sheets, saves to a temporary
file beside the target and renames it into place, so a failed run leaves the file as it was.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.chart import BarChart, LineChart, Reference, ScatterChart
from openpyxl.chart import Series as ChartSeries
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from dmplan.addin.ooxml import restore_buttons
from dmplan.addin.sheets import Block, Chart, SheetSpec, cell_value
from dmplan.addin.tables import Table, column_letter, normalize
from dmplan.solver.common import InputError

MACRO_SUFFIXES = (".xlsm", ".xlam", ".xltm")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted (password-protected) or legacy .xls
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14)
BLOCK_TITLE_FONT = Font(bold=True, size=11)
MARKER_COLOURS = ("C00000", "ED7D31", "7030A0")  #: fills of marker-only chart series


class WorkbookError(InputError):
    """The file itself cannot be used (missing, not a workbook, locked, password protected)."""


def check_file(path: Path) -> None:
    """Raise :class:`WorkbookError` with what to do when ``path`` is not a usable workbook."""
    if not path.exists():
        raise WorkbookError(f"{path}: no such file.", fix="Check the path.")
    lock = path.with_name("~$" + path.name)
    if lock.exists():
        raise WorkbookError(
            f"{path.name} is open in Excel (lock file {lock.name} exists).",
            fix="Close the workbook in Excel, or write the result elsewhere with -o.",
        )
    with path.open("rb") as handle:
        head = handle.read(8)
    if head == OLE_MAGIC:
        raise WorkbookError(
            f"{path.name} is password protected (encrypted) or an old .xls file.",
            fix="Remove the password (File > Info > Protect Workbook) or save it as .xlsx, then run again.",
        )
    if not zipfile.is_zipfile(path):
        raise WorkbookError(f"{path.name} is not an Excel workbook (.xlsx, .xlsm).", fix="Pass an .xlsx or .xlsm file.")
    if not os.access(path, os.R_OK):
        raise WorkbookError(f"{path.name} cannot be read (permission denied).", fix="Check the file's permissions.")


def load(path: Path, data_only: bool) -> Workbook:
    """Open a workbook after :func:`check_file`; VBA is kept for macro-enabled files."""
    check_file(path)
    try:
        return openpyxl.load_workbook(path, data_only=data_only, keep_vba=path.suffix.lower() in MACRO_SUFFIXES)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise WorkbookError(
            f"{path.name} cannot be opened as a workbook ({exc}).", fix="Pass an .xlsx or .xlsm file."
        ) from exc


class FileSource:
    """Finds the contract's tables in an openpyxl workbook (opened with cached values)."""

    def __init__(self, workbook: Workbook) -> None:
        self.workbook = workbook

    def table(self, name: str) -> Table | None:
        """An Excel table called ``name``, else a sheet called ``name`` with its header in row 1."""
        wanted = normalize(name)
        for ws in self.workbook.worksheets:
            for table_name, ref in ws.tables.items():
                if normalize(table_name) == wanted:
                    return _table_from_range(name, ws, ref, table_name)
        for ws in self.workbook.worksheets:
            if normalize(ws.title) == wanted:
                grid = [list(row) for row in ws.iter_rows(min_row=1, values_only=True)]
                return Table.from_grid(name, ws.title, grid)
        return None

    def sheet_names(self) -> list[str]:
        return list(self.workbook.sheetnames)


def _table_from_range(name: str, ws: Worksheet, ref: str, excel_table: str) -> Table:
    cells = ws[ref]
    grid = [[cell.value for cell in row] for row in cells]
    first = cells[0][0]
    return Table.from_grid(name, ws.title, grid, first.row, first.column, excel_table)


# --------------------------------------------------------------------------- writing
def write_sheets(workbook: Workbook, specs: Sequence[SheetSpec], protected: Sequence[str] = ()) -> None:
    """Replace (or add) each result sheet of ``specs`` in ``workbook``.

    ``protected`` names input sheets; a spec naming one of them is refused, so a result can
    never overwrite the user's data.
    """
    guarded = {normalize(n) for n in protected}
    for spec in specs:
        if normalize(spec.name) in guarded:
            raise WorkbookError(
                f"result sheet {spec.name!r} would replace an input sheet.",
                fix="Rename your input sheet; DMPlan writes its results to sheets of that name.",
            )
    for spec in specs:
        index = None
        if spec.name in workbook.sheetnames:
            index = workbook.sheetnames.index(spec.name)
            del workbook[spec.name]
        ws = workbook.create_sheet(spec.name, index)
        render_sheet(ws, spec)


def render_sheet(ws: Worksheet, spec: SheetSpec) -> None:
    ws["A1"] = spec.title
    ws["A1"].font = TITLE_FONT
    if spec.notes:
        ws.cell(row=2, column=1, value=" ".join(spec.notes)).font = Font(italic=True, color="595959")
    for block in spec.blocks:
        _render_block(ws, block)
    for col, width in {**auto_widths(spec), **spec.column_widths}.items():
        ws.column_dimensions[column_letter(col)].width = width
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    for chart in spec.charts:
        ws.add_chart(build_chart(ws, chart), chart.anchor)


def auto_widths(spec: SheetSpec, cap: float = 40.0) -> dict[int, float]:
    """Column widths from the longest header or value (formulas count as 12 characters)."""
    widths: dict[int, float] = {}
    for block in spec.blocks:
        for j, header in enumerate(block.header):
            longest = len(str(header))
            for row in block.rows[:500]:
                value = row[j] if j < len(row) else None
                text = "x" * 12 if isinstance(value, str) and value.startswith("=") else _display(value)
                longest = max(longest, len(text))
            col = block.left + j
            widths[col] = max(widths.get(col, 8.0), min(cap, longest + 2.0))
    return widths


def _display(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "" if value is None else str(value)


def _render_block(ws: Worksheet, block: Block) -> None:
    if block.title:
        ws.cell(row=block.top, column=block.left, value=block.title).font = BLOCK_TITLE_FONT
    for j, header in enumerate(block.header):
        cell = ws.cell(row=block.header_row, column=block.left + j, value=header)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
    for i, row in enumerate(block.rows):
        for j, value in enumerate(row):
            cell = ws.cell(row=block.first_data_row + i, column=block.left + j, value=cell_value(value))
            fmt = block.format_of(i, block.header[j])
            if fmt:
                cell.number_format = fmt
    if block.table_name and block.rows:
        table = ExcelTable(displayName=block.table_name, ref=block.ref)
        table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
        ws.add_table(table)


def build_chart(ws: Worksheet, spec: Chart) -> Any:
    """A native openpyxl chart for ``spec``; series reference the block's cells."""
    block = spec.block
    cat_col = block.column_of(spec.categories)
    chart: Any
    if spec.kind == "bar":
        chart = BarChart()
        chart.type = "bar" if spec.horizontal else "col"
        if spec.stacked:
            chart.grouping = "stacked"
            chart.overlap = 100
    elif spec.kind == "line":
        chart = LineChart()
    else:
        chart = ScatterChart()
        chart.scatterStyle = "lineMarker"
    chart.title = spec.title
    chart.style = spec.style
    chart.width = spec.width_cm
    chart.height = spec.height_cm
    chart.x_axis.title = spec.x_title or None
    chart.y_axis.title = spec.y_title or None
    # openpyxl >= 3.1 hides axes unless told otherwise; users expect them drawn
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    marker_count = 0
    for series_spec in spec.series:
        first, last = series_spec.rows or (0, len(block.rows) - 1)
        r0, r1 = block.first_data_row + first, block.first_data_row + last
        col = block.column_of(series_spec.column)
        values = Reference(ws, min_col=col, min_row=r0, max_row=r1)
        title = series_spec.title or series_spec.column
        if spec.kind == "scatter":
            xs = Reference(ws, min_col=cat_col, min_row=r0, max_row=r1)
            series = ChartSeries(values, xs, title=title)
            if series_spec.marker_only:
                # LibreOffice draws an unfilled marker in white: give it an explicit fill
                colour = MARKER_COLOURS[marker_count % len(MARKER_COLOURS)]
                marker_count += 1
                series.marker.symbol = "diamond"
                series.marker.size = 12
                series.marker.graphicalProperties = GraphicalProperties(solidFill=colour)
                series.marker.graphicalProperties.line.solidFill = colour
                series.graphicalProperties.line.noFill = True
            else:
                series.marker.symbol = "circle"
                series.marker.size = 5
            chart.series.append(series)
        else:
            chart.add_data(values, titles_from_data=False)
            chart.series[-1].tx = None
            from openpyxl.chart.series import SeriesLabel

            chart.series[-1].tx = SeriesLabel(v=title)
    if spec.kind != "scatter":
        cats = Reference(ws, min_col=cat_col, min_row=block.first_data_row, max_row=block.last_row)
        chart.set_categories(cats)
    return chart


def save_atomically(workbook: Workbook, target: Path, buttons: dict[str, bytes] | None = None) -> None:
    """Save to a temporary file in the target's folder, then rename it over the target.

    ``buttons`` (from :func:`dmplan.addin.ooxml.form_buttons` of the source file) are put back on their
    sheets before the rename: openpyxl drops form controls such as a macro workbook's run button.
    """
    target = target.resolve()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        workbook.save(tmp)
        if buttons:
            restore_buttons(tmp, buttons)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
