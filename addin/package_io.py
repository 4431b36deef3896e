"""The package path of a workbook file: input tables from :mod:`dmplan.addin.xlsx_read`, result
sheets rendered by openpyxl in write-only mode into a small book and spliced into a copy of the
input by :mod:`dmplan.addin.xlsx_graft`. :func:`dmplan.addin.pipeline.solve_file` uses it by
default and falls back to the openpyxl path (:mod:`dmplan.addin.workbook`) when the package is
one this path cannot read or graft (:class:`PackageError`, :class:`GraftError`).

Against the openpyxl path (:mod:`dmplan.addin.workbook`: load every cell of the book twice, rewrite
every part) a 200,000-row ``Customers`` workbook goes from about a minute to seconds, and every
input part (shapes, form controls, anything openpyxl does not model) stays byte for byte.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import IllegalCharacterError
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from python_calamine import CalamineError

from dmplan.addin.cells import NoValue, column_letter, normalize
from dmplan.addin.contract import WorkbookError
from dmplan.addin.results import MARKER, ExistingSheet, WritePlan, parse_marker
from dmplan.addin.sheets import Block, SheetSpec, cell_value, resolve_refs
from dmplan.addin.tables import Table
from dmplan.addin.workbook import (
    BLOCK_TITLE_FONT,
    HEADER_FILL,
    HEADER_FONT,
    MACRO_SUFFIXES,
    TITLE_FONT,
    build_chart,
    macros_dropped,
    new_file_mode,
    page_layout,
)
from dmplan.addin.xlsx_graft import GraftError, Tail, graft
from dmplan.addin.xlsx_read import Package, PackageError, Region, range_bounds
from dmplan.solver.common import Progress, ProgressCallback

Say = Callable[[str], None]
CENTER = Alignment(horizontal="center")
STREAM_MIN_ROWS = 2_000  #: blocks this long are streamed as XML (see :func:`render_streamed`)


def _say(progress: ProgressCallback | None, start: float) -> Say:
    def say(message: str) -> None:
        if progress is not None:
            progress(Progress(seconds=time.perf_counter() - start, message=message))

    return say


class PackageSource:
    """The contract's tables read from a package, as :class:`dmplan.addin.workbook.FileSource` reads
    them from openpyxl: an Excel table of that name (its ref minus its totals row), else a sheet of
    that name from A1; error cells as :class:`ExcelError`, formulas without a saved value as
    :class:`NoValue`, hidden rows and merged ranges passed on. Each table is read once."""

    def __init__(self, package: Package, progress: ProgressCallback | None = None) -> None:
        self.package = package
        self.say = _say(progress, time.perf_counter())
        self._cache: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        key = normalize(name)
        if key not in self._cache:
            self._cache[key] = self._read(name, key)
        return self._cache[key]

    def sheet_names(self) -> list[str]:
        return self.package.sheet_names

    def _read(self, name: str, wanted: str) -> Table | None:
        found = next((t for t in self.package.tables if normalize(t.name) == wanted), None)
        if found is not None:
            if found.header_row_count == 0:
                raise WorkbookError(
                    f"sheet {found.sheet!r}, table {found.name}: the table has no header row.",
                    fix="Turn on its Header Row (Table Design > Header Row) and name the columns.",
                )
            self.say(f"reading table {found.name} ({found.ref} on sheet {found.sheet})")
            with self._damaged():
                region = self.package.read_table(found, lambda n: self.say(f"reading {found.name}: {n:,} rows"))
            return self._table(name, region, found.name)
        sheet = next((s.name for s in self.package.sheets if normalize(s.name) == wanted), None)
        if sheet is None:
            return None
        self.say(f"reading sheet {sheet}")
        with self._damaged():
            region = self.package.read(sheet, progress=lambda n: self.say(f"reading {sheet}: {n:,} rows"))
        return self._table(name, region, None)

    @contextmanager
    def _damaged(self) -> Iterator[None]:
        """A sheet part that does not parse is a damaged workbook (as openpyxl's load reports it)."""
        try:
            yield
        except (etree.XMLSyntaxError, zipfile.BadZipFile, KeyError, ValueError, CalamineError) as exc:
            raise WorkbookError(
                f"{self.package.path.name} is damaged and cannot be opened as a workbook "
                f"({type(exc).__name__}: {exc}).",
                fix="Open it in Excel (which offers to repair it), save it, and run again.",
            ) from None

    def _table(self, name: str, region: Region, excel_table: str | None) -> Table:
        grid = region.grid
        if region.formulas_without_value:
            grid = [list(row) for row in grid]
            for (r, c), formula in region.formulas_without_value.items():
                grid[r - region.first_row][c - region.first_col] = NoValue(formula)
        hidden = [r for r in sorted(region.hidden_rows) if region.first_row < r <= region.last_row]
        with self._damaged():
            merged = [range_bounds(m) for m in self.package.merged(region.sheet)]
        return Table.from_grid(
            name,
            region.sheet,
            grid,
            region.first_row,
            region.first_col,
            excel_table,
            hidden_rows=hidden,
            merged=merged,
        )


def existing_sheets(package: Package) -> list[ExistingSheet]:
    """Every sheet with its position, its result marker (if any) and its title cell A1, as
    :func:`dmplan.addin.workbook.existing_sheets`; A1 is read only where no marker says what the sheet is."""
    markers = {
        d.local_sheet_id: parse_marker(d.value)
        for d in package.defined_names
        if d.local_sheet_id is not None and d.name == MARKER
    }
    out = []
    for info in package.sheets:
        marker = markers.get(info.index)
        title = None
        if marker is None and info.part:
            first = package.read(info.name, (1, 1, 1, 1)).grid[0][0]
            title = first if isinstance(first, str) else None
        out.append(ExistingSheet(info.index, info.name, marker, title))
    return out


def taken_names(package: Package) -> list[str]:
    """Table names and defined names: a new table may not take one (as :func:`dmplan.addin.workbook.taken_names`)."""
    names = [t.name for t in package.tables]
    names += [d.name for d in package.defined_names if d.local_sheet_id is None]
    names += [d.name for d in package.defined_names if d.local_sheet_id is not None and d.name != MARKER]
    return names


# ------------------------------------------------------------------------- writing
def render_streamed(
    wb: Workbook,
    spec: SheetSpec,
    name: str | None = None,
    tables: dict[str, str] | None = None,
    sheets: dict[str, str] | None = None,
    marker: str | None = None,
    stream_min: int = STREAM_MIN_ROWS,
) -> Tail | None:
    """Render ``spec`` into a new write-only sheet of ``wb``: the cells, formats, tables,
    widths, page setup and charts of :func:`dmplan.addin.workbook.render_sheet`, rows in order.

    A block of at least ``stream_min`` rows below everything else on the sheet is written by
    openpyxl up to its first data row only; the returned :data:`Tail` writes the other rows as
    XML for :func:`dmplan.addin.xlsx_graft.graft` (openpyxl's cell objects take ~20 s for the
    million cells of a 200,000-customer mailing list, the tail ~1 s). None when nothing streams.
    ``name``, ``tables`` and ``sheets`` are the placement's as in :func:`dmplan.addin.workbook.render_sheet`;
    ``marker`` becomes the sheet's hidden result marker (:data:`dmplan.addin.results.MARKER`).
    """
    ws = wb.create_sheet(name or spec.name)
    if marker is not None:
        ws.defined_names[MARKER] = DefinedName(MARKER, attr_text=f'"{marker}"', hidden=True)
    tables, sheets = tables or {}, sheets or {}
    streamed = _streamable(spec, stream_min)
    page_layout(ws, spec)
    fixed: dict[int, dict[int, Any]] = {}  # row -> column -> cell, for titles, headers and small blocks

    def put(row: int, col: int, value: Any, font: Font | None = None, fmt: str | None = None, **style: Any) -> None:
        cell = WriteOnlyCell(ws, value=cell_value(value))
        if font is not None:
            cell.font = font
        if fmt:
            cell.number_format = fmt
        for key, val in style.items():
            setattr(cell, key, val)
        fixed.setdefault(row, {})[col] = cell

    put(1, 1, spec.title, TITLE_FONT)
    if spec.notes:
        put(2, 1, " ".join(spec.notes), Font(italic=True, color="595959"))
    for block in spec.blocks:
        if block.title:
            put(block.top, block.left, block.title, BLOCK_TITLE_FONT)
        for j, header in enumerate(block.header):
            put(block.header_row, block.left + j, header, HEADER_FONT, fill=HEADER_FILL, alignment=CENTER)
        if block.table_name and block.rows:
            table = ExcelTable(displayName=tables.get(block.table_name, block.table_name), ref=block.ref)
            table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
            table._initialise_columns()  # write-only mode leaves the column names to the caller
            for column, title in zip(table.tableColumns, block.header, strict=True):
                column.name = str(title)
            with warnings.catch_warnings():  # openpyxl warns on every write-only table, columns set or not
                warnings.filterwarnings("ignore", "In write-only mode you must add table columns manually")
                ws.add_table(table)
    last = max([1, 2 if spec.notes else 1] + [b.last_row for b in spec.blocks])
    by_row = _block_rows(spec.blocks, streamed)
    if streamed is not None:
        last = streamed.first_data_row
    for r in range(1, last + 1):
        cells: dict[int, Any] = dict(fixed.get(r, {}))
        for block, i in by_row.get(r, ()):
            for j, value in enumerate(block.rows[i]):
                value = cell_value(resolve_refs(value, sheets))
                fmt = block.format_of(i, block.header[j])
                if fmt:
                    cell = WriteOnlyCell(ws, value=value)
                    cell.number_format = fmt
                    cells[block.left + j] = cell
                else:
                    cells[block.left + j] = value
        if cells:
            width = max(cells)
            ws.append([cells.get(c) for c in range(1, width + 1)])
        else:
            ws.append([])
    for chart in spec.charts:
        ws.add_chart(build_chart(ws, chart), chart.anchor)
    return None if streamed is None else _tail(streamed, sheets)


def _streamable(spec: SheetSpec, stream_min: int) -> Block | None:
    """The sheet's largest block when it has ``stream_min`` rows or more and nothing else on the
    sheet reaches below its first data row."""
    if not spec.blocks:
        return None
    block = max(spec.blocks, key=lambda b: len(b.rows))
    if len(block.rows) < stream_min:
        return None
    others = [b.last_row for b in spec.blocks if b is not block]
    if any(row > block.first_data_row for row in others) or any(not _plain(row) for row in block.rows[:50]):
        return None
    return block


def _plain(row: Sequence[Any]) -> bool:
    return all(v is None or isinstance(v, (str, int, float, bool)) or hasattr(v, "item") for v in row)


def _block_rows(blocks: Sequence[Block], streamed: Block | None) -> dict[int, list[tuple[Block, int]]]:
    """Sheet row -> (block, data row index) of every block's data rows (of a streamed block: its first)."""
    out: dict[int, list[tuple[Block, int]]] = {}
    for block in blocks:
        for i in range(1 if block is streamed else len(block.rows)):
            out.setdefault(block.first_data_row + i, []).append((block, i))
    return out


def _tail(block: Block, sheets: dict[str, str]) -> Tail:
    """The rows after the first of ``block`` as sheet XML, each column styled like the first row
    (the style indices are read from that row, so they are the merged book's)."""

    def rows(sheet_xml: str) -> Iterator[str]:
        first = block.first_data_row
        found = re.search(rf'<row r="{first}"[^>]*>(.*?)</row>', sheet_xml, re.S)
        styles = dict(re.findall(r'<c r="([A-Z]+)\d+"[^>]*?\bs="(\d+)"', found.group(1) if found else ""))
        letters = [column_letter(block.left + j) for j in range(len(block.header))]
        attrs = [f' s="{styles[x]}"' if x in styles else "" for x in letters]
        for i in range(1, len(block.rows)):
            r = first + i
            cells = []
            for letter, attr, raw in zip(letters, attrs, block.rows[i], strict=False):
                value = cell_value(resolve_refs(raw, sheets))
                if value is None:
                    continue
                ref = f"{letter}{r}"
                if isinstance(value, bool):
                    cells.append(f'<c r="{ref}"{attr} t="b"><v>{int(value)}</v></c>')
                elif isinstance(value, (int, float)):
                    if value != value or value in (math.inf, -math.inf):
                        continue  # as cell_value: not a number is an empty cell
                    cells.append(f'<c r="{ref}"{attr} t="n"><v>{value!r}</v></c>')
                elif isinstance(value, str):
                    if ILLEGAL_CHARACTERS_RE.search(value):
                        raise IllegalCharacterError(f"{value!r} cannot be used in worksheets.")
                    if value.startswith("="):
                        cells.append(f'<c r="{ref}"{attr}><f>{escape(value[1:])}</f><v></v></c>')
                    else:
                        space = ' xml:space="preserve"' if value != value.strip() else ""
                        cells.append(f'<c r="{ref}"{attr} t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>')
                else:
                    # dates and the like: the caller writes the book with openpyxl instead
                    raise GraftError(
                        f"cannot stream a {type(value).__name__} value ({block.title or block.table_name})"
                    )
            yield f'<row r="{r}">{"".join(cells)}</row>'

    return rows


def write_plan(source: Path, plan: WritePlan, target: Path, progress: ProgressCallback | None = None) -> list[str]:
    """Carry out ``plan`` (from :func:`dmplan.addin.pipeline.write_plan`) on a copy of ``source``
    written to ``target``: the earlier result sheets removed, the new ones in their places, each
    with its marker. Returns the warnings for the user. Raises :class:`GraftError` when the
    package cannot take the result sheets (the caller then writes with openpyxl).
    """
    say = _say(progress, time.perf_counter())
    wb = Workbook(write_only=True)
    tails = {}
    names = plan.names
    for placement in plan.placements:
        say(f"writing {placement.name}")
        roles = {role: name for (model, role), name in names.items() if model == placement.model}
        tail = render_streamed(wb, placement.spec, placement.name, placement.tables, roles, placement.marker)
        if tail is not None:
            tails[placement.name] = tail
    notes = []
    with zipfile.ZipFile(source) as zf:
        has_vba = any(n.endswith("vbaProject.bin") for n in zf.namelist())
    if has_vba and target.suffix.lower() not in MACRO_SUFFIXES:
        notes.append(macros_dropped(target))
    mode = target.stat().st_mode & 0o777 if target.exists() else new_file_mode()
    with tempfile.TemporaryDirectory(prefix="dmplan-results-") as folder:
        results = Path(folder) / "results.xlsx"
        say("saving the result sheets")
        wb.save(results)
        replaces = {p.name: p.replaces for p in plan.placements if p.replaces is not None}
        try:
            graft(source, results, target, list(plan.remove), replaces, progress=say, tails=tails, mode=mode)
        except OSError as exc:
            raise WorkbookError(
                f"cannot write {target.name} ({exc.strerror or exc}).", fix="Check the folder and free disk space."
            ) from None
    return notes


def open_package(path: Path) -> Package | None:
    """The package, or None when this reader cannot open it (the openpyxl path then reads it)."""
    try:
        return Package(path)
    except (PackageError, zipfile.BadZipFile, KeyError, OSError):
        return None
