"""The file path: read input tables from a workbook file and write result sheets back safely.

Reading opens the workbook twice with openpyxl: with its formulas (the copy that is written back,
VBA kept for macro files) and with the values Excel saved (what the tables are read from); a cell with
a formula but no saved value is then told apart from an empty one. A table's extent follows the
workbook: an Excel table (ListObject) is its ref minus its totals row, a sheet table runs to the
sheet's last row.

Writing follows :func:`dmplan.addin.results.plan_writes` (earlier result sheets found by their marker),
saves to a temporary file in the target's folder and renames it over the target, keeping the target's
mode (a new file gets the user's usual mode). Any failure leaves every file as it was.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.chart import BarChart, LineChart, Reference, ScatterChart
from openpyxl.chart import Series as ChartSeries
from openpyxl.chart.series import SeriesLabel
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils.cell import range_boundaries
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from dmplan.addin.cells import ExcelError, NoValue, column_letter, normalize
from dmplan.addin.contract import WorkbookError
from dmplan.addin.ooxml import form_buttons, read_parts, restore_buttons, write_parts
from dmplan.addin.results import MARKER, ExistingSheet, WritePlan, parse_marker
from dmplan.addin.sheets import Block, Chart, SheetSpec, cell_value, resolve_refs
from dmplan.addin.tables import Table

MACRO_SUFFIXES = (".xlsm", ".xlam", ".xltm")
WORKBOOK_SUFFIXES = (".xlsx", ".xltx", *MACRO_SUFFIXES)
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted (password-protected) or legacy .xls
MACRO_CONTENT_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14)
BLOCK_TITLE_FONT = Font(bold=True, size=11)
MARKER_COLOURS = ("C00000", "ED7D31", "7030A0")  #: fills of marker-only chart series


# --------------------------------------------------------------------------- files and folders
def lock_file(path: Path) -> Path:
    """Excel's lock file of an open workbook: ``~$name`` beside it."""
    return path.with_name("~$" + path.name)


def check_source(path: Path) -> None:
    """Raise :class:`WorkbookError` with what to do when ``path`` is not a workbook DMPlan can read."""
    if not path.exists():
        raise WorkbookError(f"{path}: no such file.", fix="Check the path.")
    if path.is_dir():
        raise WorkbookError(f"{path} is a folder, not a workbook.", fix="Pass an .xlsx or .xlsm file.")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise WorkbookError(
            f"{path.name} cannot be read ({exc.strerror or exc}).", fix="Check the file's permissions."
        ) from None
    suffix = path.suffix.lower()
    if head == OLE_MAGIC:
        raise WorkbookError(
            f"{path.name} is password protected (encrypted) or an old .xls file.",
            fix="Remove the password (File > Info > Protect Workbook) or save it as .xlsx, then run again.",
        )
    if not zipfile.is_zipfile(path):
        raise WorkbookError(f"{path.name} is not an Excel workbook (.xlsx, .xlsm).", fix="Pass an .xlsx or .xlsm file.")
    if suffix not in WORKBOOK_SUFFIXES:
        raise WorkbookError(
            f"{path.name} is an Excel workbook (.xlsx or .xlsm) but its name ends in {path.suffix or 'nothing'}.",
            fix=f"Rename it to {path.stem}.xlsx (or .xlsm when it has macros) and run again.",
        )


def check_target(target: Path, *, replace: bool = True) -> None:
    """Raise :class:`WorkbookError` when a result cannot be written to ``target``.

    The folder must exist and be writable; the target, when it exists, must be a writable file that is
    not open in Excel; ``replace=False`` refuses an existing file (templates).
    """
    folder = target.parent
    if target.suffix.lower() not in WORKBOOK_SUFFIXES:
        raise WorkbookError(
            f"{target.name}: the result must be an Excel workbook ending in .xlsx or .xlsm.",
            fix=f"Write to {target.stem}.xlsx instead.",
        )
    if not folder.is_dir():
        raise WorkbookError(f"the folder {folder} does not exist.", fix="Create the folder or write elsewhere.")
    if not os.access(folder, os.W_OK | os.X_OK) or not folder.stat().st_mode & 0o222:
        raise WorkbookError(f"the folder {folder} is read-only.", fix="Write the result to another folder with -o.")
    if target.is_dir():
        raise WorkbookError(f"{target} is a folder.", fix="Name a workbook file to write.")
    if lock_file(target).exists():
        raise WorkbookError(
            f"{target.name} is open in Excel (lock file {lock_file(target).name} exists).",
            fix="Close the workbook in Excel, or write the result elsewhere with -o.",
        )
    if target.exists():
        if not replace:
            raise WorkbookError(
                f"{target} already exists.", fix="Choose a new file name, or pass --force to replace it."
            )
        if not target.stat().st_mode & 0o222 or not os.access(target, os.W_OK):
            raise WorkbookError(
                f"{target.name} is read-only.",
                fix="Write the result elsewhere with -o, or make the file writable.",
            )


def load(path: Path, data_only: bool) -> Workbook:
    """Open a workbook after :func:`check_source`; VBA is kept for macro-enabled files."""
    check_source(path)
    try:
        return openpyxl.load_workbook(path, data_only=data_only, keep_vba=path.suffix.lower() in MACRO_SUFFIXES)
    except OSError as exc:
        raise WorkbookError(f"{path.name} cannot be read ({exc.strerror or exc}).", fix="Check the file.") from None
    except Exception as exc:  # a broken package: bad zip, corrupt XML, missing parts
        raise WorkbookError(
            f"{path.name} is damaged and cannot be opened as a workbook ({type(exc).__name__}: {exc}).",
            fix="Open it in Excel (which offers to repair it), save it, and run again.",
        ) from None


# --------------------------------------------------------------------------- reading
class FileSource:
    """The contract's tables in a workbook file: an Excel table of that name, else a sheet of that name.

    ``values`` is the workbook opened with the saved values, ``formulas`` (optional) the same file with
    its formulas, used to tell a formula without a saved value from an empty cell.
    """

    def __init__(self, values: Workbook, formulas: Workbook | None = None) -> None:
        self.values = values
        self.formulas = formulas
        self._cache: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        key = normalize(name)
        if key not in self._cache:
            self._cache[key] = self._read(name)
        return self._cache[key]

    def sheet_names(self) -> list[str]:
        return list(self.values.sheetnames)

    def _read(self, name: str) -> Table | None:
        wanted = normalize(name)
        for ws in self.values.worksheets:
            for excel_table in ws.tables.values():
                if normalize(excel_table.name) == wanted:
                    return self._excel_table(name, ws, excel_table)
        for ws in self.values.worksheets:
            if normalize(ws.title) == wanted:
                return self._grid_table(name, ws, 1, 1, max(ws.max_row, 1), max(ws.max_column, 1), None)
        return None

    def _excel_table(self, name: str, ws: Worksheet, excel_table: ExcelTable) -> Table:
        first, _, last = excel_table.ref.partition(":")
        min_col, min_row, max_col, max_row = range_boundaries(f"{first}:{last or first}")
        if excel_table.headerRowCount == 0:
            raise WorkbookError(
                f"sheet {ws.title!r}, table {excel_table.name}: the table has no header row.",
                fix="Turn on its Header Row (Table Design > Header Row) and name the columns.",
            )
        totals = int(excel_table.totalsRowCount or 0)
        return self._grid_table(name, ws, min_row, min_col, max_row - totals, max_col, excel_table.name)

    def _grid_table(
        self, name: str, ws: Worksheet, top: int, left: int, bottom: int, right: int, excel_table: str | None
    ) -> Table:
        fws = self.formulas[ws.title] if self.formulas is not None and ws.title in self.formulas else None
        grid = [
            [_cell(ws.cell(r, c), fws.cell(r, c) if fws is not None else None) for c in range(left, right + 1)]
            for r in range(top, bottom + 1)
        ]
        hidden = [r for r, dim in ws.row_dimensions.items() if dim.hidden and top < r <= bottom]
        merged = [(m.min_row, m.min_col, m.max_row, m.max_col) for m in ws.merged_cells.ranges]
        return Table.from_grid(name, ws.title, grid, top, left, excel_table, hidden_rows=hidden, merged=merged)


def _cell(value_cell: Any, formula_cell: Any) -> Any:
    value = value_cell.value
    if value_cell.data_type == "e" and value is not None:
        return ExcelError(str(value))
    if value is None and formula_cell is not None and formula_cell.data_type == "f":
        formula = formula_cell.value
        return NoValue(str(getattr(formula, "text", None) or formula))
    return value


def existing_sheets(workbook: Workbook) -> list[ExistingSheet]:
    """Every sheet with its position, its result marker (if any) and its title cell A1."""
    out = []
    for index, ws in enumerate(workbook.worksheets):
        name = ws.defined_names.get(MARKER) if hasattr(ws, "defined_names") else None
        title = ws["A1"].value
        out.append(
            ExistingSheet(
                index,
                ws.title,
                parse_marker(name.attr_text if name is not None else None),
                title if isinstance(title, str) else None,
            )
        )
    return out


def taken_names(workbook: Workbook) -> list[str]:
    """Table names and defined names of the workbook: a new table may not take one."""
    names = [t for ws in workbook.worksheets for t in ws.tables]
    names += list(workbook.defined_names.keys())
    names += [n for ws in workbook.worksheets for n in ws.defined_names if n != MARKER]
    return names


# --------------------------------------------------------------------------- writing
def apply_plan(workbook: Workbook, plan: WritePlan) -> None:
    """Remove the plan's earlier result sheets and write its new ones in their places."""
    order: list[Any] = list(workbook.sheetnames)
    for placement in plan.placements:
        if placement.replaces is not None:
            order[order.index(placement.replaces)] = placement
        else:
            order.append(placement)
    order = [item for item in order if not (isinstance(item, str) and item in plan.remove)]
    for name in plan.remove:
        del workbook[name]
    names = plan.names
    for placement in plan.placements:
        ws = workbook.create_sheet(placement.name)
        roles = {role: name for (model, role), name in names.items() if model == placement.model}
        render_sheet(ws, placement.spec, placement.tables, roles)
        ws.defined_names[MARKER] = DefinedName(MARKER, attr_text=f'"{placement.marker}"', hidden=True)
    by_name = {ws.title: ws for ws in workbook.worksheets}
    workbook._sheets = [by_name[item if isinstance(item, str) else item.name] for item in order]
    workbook.active = 0


def render_sheet(
    ws: Worksheet, spec: SheetSpec, tables: dict[str, str] | None = None, sheets: dict[str, str] | None = None
) -> None:
    """Draw one result sheet. ``tables`` maps the spec's table names to their final names, ``sheets``
    the roles of the model's other result sheets to their names (formulas that refer to them)."""
    ws["A1"] = spec.title
    ws["A1"].font = TITLE_FONT
    if spec.notes:
        ws.cell(row=2, column=1, value=" ".join(spec.notes)).font = Font(italic=True, color="595959")
    for block in spec.blocks:
        _render_block(ws, block, (tables or {}).get(block.table_name or ""), sheets or {})
    page_layout(ws, spec)
    for chart in spec.charts:
        ws.add_chart(build_chart(ws, chart), chart.anchor)


def page_layout(ws: Worksheet, spec: SheetSpec) -> None:
    """Column widths and a landscape page one sheet wide, for both file writers."""
    for col, width in {**auto_widths(spec), **spec.column_widths}.items():
        ws.column_dimensions[column_letter(col)].width = width
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


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


def _render_block(ws: Worksheet, block: Block, table_name: str | None, sheets: dict[str, str]) -> None:
    if block.title:
        ws.cell(row=block.top, column=block.left, value=block.title).font = BLOCK_TITLE_FONT
    for j, header in enumerate(block.header):
        cell = ws.cell(row=block.header_row, column=block.left + j, value=header)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
    for i, row in enumerate(block.rows):
        for j, value in enumerate(row):
            cell = ws.cell(
                row=block.first_data_row + i, column=block.left + j, value=cell_value(resolve_refs(value, sheets))
            )
            fmt = block.format_of(i, block.header[j])
            if fmt:
                cell.number_format = fmt
    if block.table_name and block.rows:
        table = ExcelTable(displayName=table_name or block.table_name, ref=block.ref)
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
            chart.series[-1].tx = SeriesLabel(v=title)
    if spec.kind != "scatter":
        cats = Reference(ws, min_col=cat_col, min_row=block.first_data_row, max_row=block.last_row)
        chart.set_categories(cats)
    return chart


# --------------------------------------------------------------------------- saving
def new_file_mode() -> int:
    """The mode a new file gets: 0o666 minus the user's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@dataclass
class SaveReport:
    warnings: list[str]


def save_atomically(
    workbook: Workbook, target: Path, buttons: dict[str, bytes] | None = None, *, replace: bool = True
) -> SaveReport:
    """Save to a temporary file in the target's folder, then rename it over the target.

    The target's extension decides the workbook type: an .xlsx gets no macros (a warning says when the
    source had some), an .xlsm is written macro-enabled. ``buttons`` (from :func:`form_buttons` of the
    source file) are put back on their sheets: openpyxl drops form controls such as a run button. The
    target keeps its mode; a new file gets :func:`new_file_mode`.
    """
    check_target(target, replace=replace)
    target = target.resolve()
    macro = target.suffix.lower() in MACRO_SUFFIXES
    warnings: list[str] = []
    if not macro and workbook.vba_archive is not None:
        workbook.vba_archive = None
        buttons = None
        warnings.append(macros_dropped(target))
    mode = target.stat().st_mode & 0o777 if target.exists() else new_file_mode()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".~{target.stem}.", suffix=target.suffix, dir=target.parent)
    except OSError as exc:
        raise WorkbookError(
            f"cannot write in the folder {target.parent} ({exc.strerror or exc}).",
            fix="Write the result to another folder with -o.",
        ) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        workbook.save(tmp)
        if buttons:
            restore_buttons(tmp, buttons)
        if macro and workbook.vba_archive is None:
            _set_macro_content_type(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WorkbookError(
            f"cannot write {target.name} ({exc.strerror or exc}).", fix="Check the folder and free disk space."
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return SaveReport(warnings)


def macros_dropped(target: Path) -> str:
    """The warning of a macro workbook written to an .xlsx target (both writers give it)."""
    return f"{target.name} is an .xlsx workbook: the source's macros were not copied (save as .xlsm)."


def _set_macro_content_type(path: Path) -> None:
    """Mark a workbook without a VBA project as macro-enabled, as its .xlsm name says."""
    parts = read_parts(path)
    types = parts["[Content_Types].xml"].decode("utf-8")
    types = re.sub(
        r'(<Override[^>]*PartName="/xl/workbook.xml"[^>]*ContentType=")[^"]*(")',
        lambda m: m.group(1) + MACRO_CONTENT_TYPE + m.group(2),
        types,
    )
    parts["[Content_Types].xml"] = types.encode("utf-8")
    write_parts(path, parts)


def source_buttons(path: Path) -> dict[str, bytes]:
    """The form buttons of the source file (kept through a rewrite)."""
    return form_buttons(path)
