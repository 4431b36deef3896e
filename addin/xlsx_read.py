"""A fast reader of the cached values of an .xlsx/.xlsm package (zip + streaming XML).

openpyxl builds a Python object for every cell of every sheet; a 200,000-row ``Customers``
table took 13 s to load and another 3.5 s to extract. This module parses only the sheets it is
asked for, row by row (lxml ``iterparse``, each row cleared once read), and returns plain
values typed as openpyxl returns them with ``data_only=True``:

- numbers as ``int`` (no ``.``/``E`` in the stored text) or ``float``; a number whose cell
  style is a date or time format as ``datetime`` / ``time`` / ``timedelta`` (openpyxl's own
  ``from_excel`` and format classification, with the workbook's 1900/1904 epoch);
- shared, inline and formula strings as ``str``; booleans as ``bool``;
- error values (``#N/A``, ``#DIV/0!`` ...) as :class:`dmplan.addin.cells.ExcelError`, a ``str``
  equal to the text openpyxl returns, so they stay recognisable as errors;
- a formula without a cached value as ``None``, with its cell and formula text (``=A2*2``, a
  shared formula translated to the cell, as openpyxl gives it) in
  :attr:`Region.formulas_without_value`.

It also gives what a table reader needs to report rows as the user sees them: hidden rows,
merged ranges, the Excel tables (ListObjects) with their ``ref`` and header/totals rows, sheet
names, order and state, and the defined names (global and sheet-scoped).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree
from openpyxl.formula.translate import Translator
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel, from_ISO8601
from python_calamine import CalamineWorkbook

from dmplan.addin.cells import ExcelError

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
DOC_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
TABLE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/table"
ROW, CELL, VALUE, FORMULA, INLINE = (MAIN + t for t in ("row", "c", "v", "f", "is"))
MERGE_REF = re.compile(r"<(?:\w+:)?mergeCell\b[^>]*?\bref\s*=\s*[\"']([^\"']+)[\"']")
REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")
FAST_MIN_ROWS = 2_000  #: a bounded read of fewer rows is parsed by lxml up to its last row only
FAST_MIN_BYTES = 4 << 20  #: sheets smaller than this (uncompressed XML) are read by the exact lxml path
#: markers of what calamine does not return as openpyxl does: error cells, formulas (a cached
#: value may be missing), ISO dates stored as text, XML constructs a text scan cannot see past
FAST_EXCLUDED = ('t="e"', "t='e'", "<f>", "<f ", "<f/>", ":f>", ":f ", 't="d"', "t='d'", "<![CDATA[", "<!--")
ProgressRows = Callable[[int], None]  #: called with the number of rows read so far


class PackageError(ValueError):
    """The package is not a readable spreadsheet (missing workbook part, broken XML)."""


def column_index(letters: str) -> int:
    """A -> 1, AA -> 27."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def split_ref(cell: str) -> tuple[int, int]:
    """``B12`` -> (row 12, column 2)."""
    match = REF.match(cell)
    if not match:
        raise ValueError(f"not a cell reference: {cell!r}")
    return int(match.group(2)), column_index(match.group(1))


def range_bounds(ref: str) -> tuple[int, int, int, int]:
    """``A1:C10`` -> (min_row, min_col, max_row, max_col); a single cell is a 1x1 range."""
    first, _, last = ref.partition(":")
    r0, c0 = split_ref(first)
    r1, c1 = split_ref(last) if last else (r0, c0)
    return min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1)


@dataclass(frozen=True)
class SheetInfo:
    name: str
    index: int  #: 0-based tab position
    state: str  #: visible, hidden or veryHidden
    part: str  #: zip path of the sheet XML, e.g. xl/worksheets/sheet1.xml


@dataclass(frozen=True)
class DefinedName:
    name: str
    value: str  #: the formula text, e.g. ``Settings!$B$2``
    local_sheet_id: int | None  #: tab index of the sheet it is scoped to; None for a global name
    hidden: bool


@dataclass(frozen=True)
class TableInfo:
    """An Excel table (ListObject) as ``xl/tables/tableN.xml`` defines it."""

    name: str
    display_name: str
    sheet: str
    ref: str
    header_row_count: int
    totals_row_count: int
    totals_row_shown: bool | None
    part: str

    @property
    def data_ref(self) -> tuple[int, int, int, int]:
        """Bounds from the header row (or the first data row) down to the last row above the totals."""
        r0, c0, r1, c1 = range_bounds(self.ref)
        return r0, c0, r1 - self.totals_row_count, c1


@dataclass
class Region:
    """Cached values of a rectangle of one sheet, plus what a reader must report about it.

    ``grid[i][j]`` is the cell at row ``first_row + i``, column ``first_col + j``.
    Rows and columns are 1-based sheet coordinates everywhere.
    """

    sheet: str
    first_row: int
    first_col: int
    grid: list[list[Any]]
    hidden_rows: set[int] = field(default_factory=set)
    merged: list[str] = field(default_factory=list)  #: merged ranges of the sheet touching the region
    formulas_without_value: dict[tuple[int, int], str] = field(default_factory=dict)  #: (row, col) -> "=..."

    @property
    def last_row(self) -> int:
        return self.first_row + len(self.grid) - 1


class Package:
    """An open .xlsx/.xlsm file: workbook metadata at once, sheets parsed on request.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.zip = zipfile.ZipFile(self.path)
        self._merges: dict[str, list[str]] = {}
        try:
            self._read_workbook()
        except (KeyError, etree.XMLSyntaxError) as exc:
            self.zip.close()
            raise PackageError(f"{self.path.name}: {exc}") from exc

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.zip.close()

    # ------------------------------------------------------------------ workbook
    def _xml(self, part: str) -> Any:
        with self.zip.open(part) as handle:
            return etree.parse(handle, parser=etree.XMLParser(huge_tree=True)).getroot()

    def _rels(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id -> (type, target part) of ``part``."""
        folder, name = PurePosixPath(part).parent, PurePosixPath(part).name
        rels_part = str(folder / "_rels" / f"{name}.rels")
        if rels_part not in self.zip.NameToInfo:
            return {}
        out = {}
        for rel in self._xml(rels_part).iter(PKG_REL + "Relationship"):
            if rel.get("TargetMode") == "External":
                continue
            out[rel.get("Id")] = (rel.get("Type"), resolve_target(part, rel.get("Target")))
        return out

    def _read_workbook(self) -> None:
        root = self._xml("xl/workbook.xml")
        rels = self._rels("xl/workbook.xml")
        pr = root.find(MAIN + "workbookPr")
        date1904 = pr is not None and pr.get("date1904") in ("1", "true")
        self.epoch = CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900
        self.sheets: list[SheetInfo] = []
        for i, sheet in enumerate(root.iter(MAIN + "sheet")):
            rel = rels.get(sheet.get(DOC_REL + "id"))
            part = rel[1] if rel else ""
            self.sheets.append(SheetInfo(sheet.get("name"), i, sheet.get("state", "visible"), part))
        self.defined_names: list[DefinedName] = []
        for name in root.iter(MAIN + "definedName"):
            local = name.get("localSheetId")
            self.defined_names.append(
                DefinedName(
                    name.get("name"),
                    name.text or "",
                    int(local) if local is not None else None,
                    name.get("hidden") in ("1", "true"),
                )
            )

    @property
    def sheet_names(self) -> list[str]:
        return [s.name for s in self.sheets]

    def sheet(self, name: str) -> SheetInfo:
        for info in self.sheets:
            if info.name == name:
                return info
        raise KeyError(f"no sheet {name!r} (sheets: {', '.join(self.sheet_names)})")

    @cached_property
    def shared_strings(self) -> list[str]:
        part = next((t for kind, t in self._rels("xl/workbook.xml").values() if kind.endswith("/sharedStrings")), None)
        if part is None or part not in self.zip.NameToInfo:
            return []
        strings = []
        with self.zip.open(part) as handle:
            for _, node in etree.iterparse(handle, tag=MAIN + "si", huge_tree=True):
                strings.append(_text_content(node).replace("x005F_", ""))
                node.clear()
        return strings

    @cached_property
    def _styles(self) -> tuple[set[int], set[int]]:
        """Indices of cell styles (cellXfs) whose number format is a date, and those that are durations."""
        part = next((t for kind, t in self._rels("xl/workbook.xml").values() if kind.endswith("/styles")), None)
        if part is None or part not in self.zip.NameToInfo:
            return set(), set()
        root = self._xml(part)
        custom = {}
        fmts = root.find(MAIN + "numFmts")
        if fmts is not None:
            for fmt in fmts.iter(MAIN + "numFmt"):
                custom[int(fmt.get("numFmtId"))] = fmt.get("formatCode")
        dates, durations = set(), set()
        xfs = root.find(MAIN + "cellXfs")
        for idx, xf in enumerate(xfs.iter(MAIN + "xf") if xfs is not None else ()):
            fmt_id = int(xf.get("numFmtId", 0))
            code = custom.get(fmt_id) if fmt_id in custom else BUILTIN_FORMATS.get(fmt_id)
            if code is None:
                continue
            if is_date_format(code):
                dates.add(idx)
            if is_timedelta_format(code):
                durations.add(idx)
        return dates, durations

    @cached_property
    def tables(self) -> list[TableInfo]:
        """Every Excel table of the workbook, sheet by sheet in tab order."""
        out = []
        for info in self.sheets:
            if not info.part or info.part not in self.zip.NameToInfo:
                continue
            for kind, target in self._rels(info.part).values():
                if kind != TABLE_REL or target not in self.zip.NameToInfo:
                    continue
                root = self._xml(target)
                shown = root.get("totalsRowShown")
                out.append(
                    TableInfo(
                        name=root.get("name") or root.get("displayName"),
                        display_name=root.get("displayName") or root.get("name"),
                        sheet=info.name,
                        ref=root.get("ref"),
                        header_row_count=int(root.get("headerRowCount", 1)),
                        totals_row_count=int(root.get("totalsRowCount", 0)),
                        totals_row_shown=None if shown is None else shown in ("1", "true"),
                        part=target,
                    )
                )
        return out

    # -------------------------------------------------------------------- sheets
    def read_table(self, table: TableInfo, progress: ProgressRows | None = None) -> Region:
        """The table's cells from its header row down to its last row above the totals row."""
        r0, c0, r1, c1 = table.data_ref
        return self.read(table.sheet, (r0, c0, r1, c1), progress)

    def read(
        self, sheet: str, bounds: tuple[int, int, int, int] | None = None, progress: ProgressRows | None = None
    ) -> Region:
        """Cached values of ``sheet`` within ``bounds`` (min_row, min_col, max_row, max_col).

        Without bounds: from A1 to the last row and column holding a value (blank rows in
        between are kept as rows of ``None``; reading never stops at a blank row).
        ``progress`` is called every 10,000 rows with the rows read so far.
        """
        info = self.sheet(sheet)
        r0, c0, r1, c1 = bounds or (1, 1, 1 << 21, 1 << 15)
        fast = None if bounds is not None and r1 - r0 < FAST_MIN_ROWS else self._fast_grid(info)
        if fast is not None:
            return self._fast_region(info, fast[0], fast[1], bounds, progress)
        cells: dict[int, dict[int, Any]] = {}
        hidden: set[int] = set()
        missing: dict[tuple[int, int], str] = {}
        last_row = last_col = 0
        rows = self._rows(info, progress)
        for row, values, is_hidden, formulas in rows:
            if row > r1:
                rows.close()  # rows come in order: the rest of the sheet is not parsed
                break
            if row < r0:
                continue
            if is_hidden:
                hidden.add(row)
            kept = {c: v for c, v in values.items() if c0 <= c <= c1}
            missing.update(((row, c), f) for c, f in formulas.items() if c0 <= c <= c1)
            if kept:
                cells[row] = kept
                filled = [c for c, v in kept.items() if v is not None]
                if filled:
                    last_row = row
                    last_col = max(last_col, filled[-1])
        merged = [m for m in self._merged(info) if _overlaps(range_bounds(m), (r0, c0, r1, c1))]
        if bounds is None:
            r1, c1 = last_row, last_col
        width = c1 - c0 + 1
        grid = []
        for r in range(r0, r1 + 1):
            row_cells = cells.get(r)
            if row_cells is None:
                grid.append([None] * width)
            else:
                grid.append([row_cells.get(c) for c in range(c0, c1 + 1)])
        if progress is not None:
            progress(len(grid))
        return Region(sheet, r0, c0, grid, hidden, merged, missing)

    def _sheet_text(self, info: SheetInfo) -> str:
        with self.zip.open(info.part) as handle:
            return handle.read().decode("utf-8")

    def _fast_region(
        self,
        info: SheetInfo,
        grid: list[list[Any]],
        hidden: set[int],
        bounds: tuple[int, int, int, int] | None,
        progress: ProgressRows | None,
    ) -> Region:
        """:meth:`read` on calamine's dense grid (row 1 and column A at index 0)."""
        if bounds is None:
            last_row = max((i + 1 for i, row in enumerate(grid) if any(v != "" for v in row)), default=0)
            last_col = max(
                (max(j + 1 for j, v in enumerate(row) if v != "") for row in grid if any(v != "" for v in row)),
                default=0,
            )
            bounds = (1, 1, last_row, last_col)
        r0, c0, r1, c1 = bounds
        width = c1 - c0 + 1
        out = []
        for r in range(r0, r1 + 1):
            raw = grid[r - 1][c0 - 1 : c1] if r - 1 < len(grid) else []
            row = [_from_calamine(v) for v in raw]
            if len(row) < width:
                row += [None] * (width - len(row))
            out.append(row)
        if progress is not None:
            progress(len(out))
        merged = [m for m in self._merged(info) if _overlaps(range_bounds(m), bounds)]
        return Region(info.name, r0, c0, out, {r for r in hidden if r0 <= r <= r1}, merged, {})

    def _fast_grid(self, info: SheetInfo) -> tuple[list[list[Any]], set[int]] | None:
        """Rows of a large sheet read by calamine (Rust), when its values equal openpyxl's.

        calamine turns error cells and formulas without a cached value into empty text, and
        cannot tell an empty shared string from an empty cell: a sheet holding any of them, or a
        small sheet, is read by :meth:`_rows` instead. None when this path does not apply.
        """
        if self.zip.getinfo(info.part).file_size < FAST_MIN_BYTES or "" in self.shared_strings:
            return None
        text = self._sheet_text(info)
        if any(mark in text for mark in FAST_EXCLUDED):
            return None
        hidden = set()
        if "hidden=" in text:
            for attrs in re.findall(r"<(?:\w+:)?row\b([^>]*)>", text):
                if re.search(r"\bhidden\s*=\s*[\"'](?:1|true)[\"']", attrs):
                    found = re.search(r"\br\s*=\s*[\"'](\d+)[\"']", attrs)
                    if found is None:
                        return None  # rows without numbers: leave it to the exact path
                    hidden.add(int(found.group(1)))
        del text
        book = CalamineWorkbook.from_path(str(self.path))
        try:
            grid = book.get_sheet_by_name(info.name).to_python(skip_empty_area=False)
        finally:
            book.close()
        return grid, hidden

    def _rows(
        self, info: SheetInfo, progress: ProgressRows | None
    ) -> Generator[tuple[int, dict[int, Any], bool, dict[int, str]], None, None]:
        """(row, {column: value}, hidden, {column: formula} of formulas without a cached value) per ``<row>``."""
        strings = self.shared_strings
        dates, durations = self._styles
        epoch = self.epoch
        columns: dict[str, int] = {}
        shared: dict[str, tuple[str, str]] = {}  # shared formula id -> (formula, its anchor cell)
        row_no = 0
        count = 0
        with self.zip.open(info.part) as handle:
            for _, row in etree.iterparse(handle, tag=ROW, huge_tree=True):
                r = row.get("r")
                row_no = int(float(r)) if r is not None else row_no + 1
                values: dict[int, Any] = {}
                formulas: dict[int, str] = {}
                col_no = 0
                for cell in row.iterchildren(CELL):
                    ref = cell.get("r")
                    if ref is None:
                        col_no += 1
                    else:
                        letters = ref.rstrip("0123456789")
                        col_no = columns.get(letters) or columns.setdefault(letters, column_index(letters))
                    kind = cell.get("t", "n")
                    value: Any = None
                    formula = cell.find(FORMULA)
                    if formula is not None and formula.get("t") == "shared" and formula.text:
                        shared[formula.get("si", "")] = (formula.text, ref or "A1")
                    if kind == "inlineStr":
                        inline = cell.find(INLINE)
                        value = _text_content(inline) if inline is not None else None
                    else:
                        text = cell.findtext(VALUE) or None
                        if text is not None:
                            value = _typed(text, kind, cell.get("s"), strings, dates, durations, epoch)
                        elif formula is not None:
                            formulas[col_no] = _formula_text(formula, ref, shared)
                    values[col_no] = value
                yield row_no, values, row.get("hidden") in ("1", "true"), formulas
                row.clear()
                while row.getprevious() is not None:
                    del row.getparent()[0]
                count += 1
                if progress is not None and count % 10_000 == 0:
                    progress(count)

    def merged(self, sheet: str) -> list[str]:
        """Merged ranges of ``sheet`` (``A1:B2``), in the order the sheet lists them."""
        return self._merged(self.sheet(sheet))

    def _merged(self, info: SheetInfo) -> list[str]:
        """Merged ranges of a sheet: the ``ref`` of each ``<mergeCell>`` (a tag cannot occur
        unescaped in cell text, so a text scan finds exactly these elements). Scanned once per sheet."""
        if info.part not in self._merges:
            self._merges[info.part] = MERGE_REF.findall(self._sheet_text(info))
        return self._merges[info.part]


def _from_calamine(value: Any) -> Any:
    """A calamine value typed as openpyxl types it: empty text is an empty cell, whole numbers
    are ``int`` (openpyxl reads Excel's ``"1"`` as 1), dates are ``datetime``."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() and -(2**53) < value < 2**53 else value
    if kind is str:
        return value or None
    if kind is dt.date:
        return dt.datetime(value.year, value.month, value.day)
    return value


def _formula_text(formula: Any, ref: str | None, shared: dict[str, tuple[str, str]]) -> str:
    """The formula of a cell as openpyxl (data_only=False) gives it: a shared formula's dependent
    cell gets the anchor's formula translated to its own position."""
    if formula.text:
        return "=" + formula.text
    anchor = shared.get(formula.get("si", ""))
    if anchor is None or ref is None:
        return "="
    return Translator("=" + anchor[0], origin=anchor[1]).translate_formula(ref)


def _typed(
    text: str, kind: str, style: str | None, strings: list[str], dates: set[int], durations: set[int], epoch: Any
) -> Any:
    """A cached value as openpyxl (data_only) types it."""
    if kind == "n":
        number: Any = float(text) if ("." in text or "E" in text or "e" in text) else int(text)
        if style is not None and int(style) in dates:
            try:
                return from_excel(number, epoch, timedelta=int(style) in durations)
            except (OverflowError, ValueError):
                return ExcelError("#VALUE!")  # openpyxl warns and treats the cell as an error
        return number
    if kind == "s":
        return strings[int(text)]
    if kind == "b":
        return bool(int(text))
    if kind == "e":
        return ExcelError(text)
    if kind == "d":
        return from_ISO8601(text)
    return text  # "str": a formula's cached text


def _text_content(node: Any) -> str:
    """Text of an ``<si>`` or ``<is>`` element: its ``<t>`` and the ``<t>`` of its rich-text runs
    (phonetic ``<rPh>`` runs excluded), as openpyxl's ``Text.content``."""
    parts = []
    plain = node.find(MAIN + "t")
    if plain is not None and plain.text:
        parts.append(plain.text)
    for run in node.iterchildren(MAIN + "r"):
        t = run.find(MAIN + "t")
        if t is not None and t.text:
            parts.append(t.text)
    return "".join(parts)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def resolve_target(source_part: str, target: str) -> str:
    """A relationship target as a zip path: absolute (``/xl/...``) or relative to the source's folder."""
    if target.startswith("/"):
        return target.lstrip("/")
    parts: list[str] = list(PurePosixPath(source_part).parent.parts)
    for piece in target.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece not in ("", "."):
            parts.append(piece)
    return "/".join(parts)
