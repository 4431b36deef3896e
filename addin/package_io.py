"""The package path of a workbook file: input tables from :mod:`dmplan.addin.xlsx_read`, result
sheets rendered by openpyxl in write-only mode into a small book and spliced into a copy of the
input by :mod:`dmplan.addin.xlsx_graft`.

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import IllegalCharacterError
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo

from dmplan.addin.sheets import Block, SheetSpec, cell_value
from dmplan.addin.tables import Table, column_letter, normalize
from dmplan.addin.workbook import (
    BLOCK_TITLE_FONT,
    HEADER_FILL,
    HEADER_FONT,
    TITLE_FONT,
    auto_widths,
    build_chart,
)
from dmplan.addin.xlsx_graft import GraftReport, Tail, graft
from dmplan.addin.xlsx_read import Package, Region, TableInfo
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
    """The contract's tables read from a package (a TableSource): an Excel table of that name,
    else a sheet of that name with its header in row 1. Each table is read once."""

    def __init__(self, package: Package, progress: ProgressCallback | None = None) -> None:
        self.package = package
        self.say = _say(progress, time.perf_counter())
        self._cache: dict[str, Table | None] = {}
        self.regions: dict[str, Region] = {}  #: contract name -> what was read (hidden rows, merges ...)

    def table(self, name: str) -> Table | None:
        wanted = normalize(name)
        if wanted not in self._cache:
            self._cache[wanted] = self._read(name, wanted)
        return self._cache[wanted]

    def _read(self, name: str, wanted: str) -> Table | None:
        found: TableInfo | None = next(
            (t for t in self.package.tables if wanted in (normalize(t.name), normalize(t.display_name))), None
        )
        if found is not None:
            self.say(f"reading table {found.display_name} ({found.ref} on sheet {found.sheet})")
            region = self.package.read_table(found, lambda n: self.say(f"reading {found.display_name}: {n:,} rows"))
            self.regions[name] = region
            return Table.from_grid(
                name, found.sheet, region.grid, region.first_row, region.first_col, found.display_name
            )
        sheet = next((s.name for s in self.package.sheets if normalize(s.name) == wanted), None)
        if sheet is None:
            return None
        self.say(f"reading sheet {sheet}")
        region = self.package.read(sheet, progress=lambda n: self.say(f"reading {sheet}: {n:,} rows"))
        self.regions[name] = region
        return Table.from_grid(name, sheet, region.grid)

    def sheet_names(self) -> list[str]:
        return self.package.sheet_names


# ------------------------------------------------------------------------- writing
def render_streamed(wb: Workbook, spec: SheetSpec, stream_min: int = STREAM_MIN_ROWS) -> Tail | None:
    """Render ``spec`` into a new write-only sheet of ``wb``: the cells, formats, tables,
    widths, page setup and charts of :func:`dmplan.addin.workbook.render_sheet`, rows in order.

    A block of at least ``stream_min`` rows below everything else on the sheet is written by
    openpyxl up to its first data row only; the returned :data:`Tail` writes the other rows as
    XML for :func:`dmplan.addin.xlsx_graft.graft` (openpyxl's cell objects take ~20 s for the
    million cells of a 200,000-customer mailing list, the tail ~1 s). None when nothing streams.
    """
    ws = wb.create_sheet(spec.name)
    streamed = _streamable(spec, stream_min)
    for col, width in {**auto_widths(spec), **spec.column_widths}.items():
        ws.column_dimensions[column_letter(col)].width = width
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
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
            table = ExcelTable(displayName=block.table_name, ref=block.ref)
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
                fmt = block.format_of(i, block.header[j])
                if fmt:
                    cell = WriteOnlyCell(ws, value=cell_value(value))
                    cell.number_format = fmt
                    cells[block.left + j] = cell
                else:
                    cells[block.left + j] = cell_value(value)
        if cells:
            width = max(cells)
            ws.append([cells.get(c) for c in range(1, width + 1)])
        else:
            ws.append([])
    for chart in spec.charts:
        ws.add_chart(build_chart(ws, chart), chart.anchor)
    return None if streamed is None else _tail(streamed)


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


def _tail(block: Block) -> Tail:
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
                value = cell_value(raw)
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
                    raise TypeError(f"cannot stream a {type(value).__name__} value ({block.title or block.table_name})")
            yield f'<row r="{r}">{"".join(cells)}</row>'

    return rows


def write_results(
    source: Path,
    specs: Sequence[SheetSpec],
    target: Path,
    remove: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> GraftReport:
    """Write the result sheets ``specs`` into a copy of ``source`` at ``target``.

    ``remove`` names the source's earlier result sheets; a result sheet takes the tab of the
    removed sheet of the same name (case-insensitive), the others go last.
    """
    say = _say(progress, time.perf_counter())
    wb = Workbook(write_only=True)
    tails = {}
    for spec in specs:
        say(f"writing {spec.name}")
        tail = render_streamed(wb, spec)
        if tail is not None:
            tails[spec.name] = tail
    with tempfile.TemporaryDirectory(prefix="dmplan-results-") as folder:
        results = Path(folder) / "results.xlsx"
        say("saving the result sheets")
        wb.save(results)
        by_name = {normalize(n): n for n in remove}
        replaces = {s.name: by_name[normalize(s.name)] for s in specs if normalize(s.name) in by_name}
        return graft(source, results, target, remove=remove, replaces=replaces, progress=say, tails=tails)


def solve_package(path: Path, out: Path | None = None, options: Any = None) -> list[Any]:
    """:func:`dmplan.addin.run.solve_file` on the package path: read with :class:`PackageSource`,
    solve, write the result sheets with :func:`write_results` (to ``out`` or ``path`` itself).

    Earlier result sheets are found by name (as the openpyxl path does today); a result sheet
    that would replace an input sheet is refused before anything is written.
    """
    from dmplan.addin.run import RunOptions, models_present, solve_source
    from dmplan.addin.workbook import WorkbookError, check_file

    options = options or RunOptions()
    check_file(path)
    with Package(path) as package:
        source = PackageSource(package, options.progress)
        runs = solve_source(source, options)
        inputs = {t for a in models_present(source) for t in a.input_tables} | {"Settings", "Customers", "Rules"}
        protected = {normalize(t.sheet) for name in inputs if (t := source.table(name)) is not None}
        specs = [s for run in runs for s in run.sheets]
        for spec in specs:
            if normalize(spec.name) in protected:
                raise WorkbookError(
                    f"result sheet {spec.name!r} would replace an input sheet.",
                    fix="Rename your input sheet; DMPlan writes its results to sheets of that name.",
                )
        wanted = {normalize(s.name) for s in specs}
        remove = [n for n in package.sheet_names if normalize(n) in wanted]
    write_results(path, specs, out or path, remove, options.progress)
    return runs
