"""The package reader returns what openpyxl (data_only=True) returns, on every book we make."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import openpyxl
import pytest

from dmplan.addin import xlsx_read
from dmplan.addin.cells import ExcelError
from dmplan.addin.templates import write_template
from dmplan.addin.xlsx_read import Package, range_bounds
from tests.xlsx_books import messy_book, plain_book

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [
    ROOT / "templates" / "dm_plan.xlsx",
    ROOT / "templates" / "dm_plan.xlsm",
    ROOT / "templates" / "mix_plan.xlsx",
    ROOT / "templates" / "mix_plan.xlsm",
    ROOT / "xlsm" / "dmplan_demo.xlsm",
]


@pytest.fixture(params=["exact", "fast"])
def path_kind(request, monkeypatch) -> str:
    """Run each test on the lxml path and with every sheet small enough for calamine forced
    through the fast path (where the sheet qualifies for it)."""
    monkeypatch.setattr(xlsx_read, "FAST_MIN_BYTES", 1 << 40 if request.param == "exact" else 0)
    monkeypatch.setattr(xlsx_read, "FAST_MIN_ROWS", 0)
    return request.param


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("books")
    made = [messy_book(folder / "messy.xlsx"), messy_book(folder / "messy1904.xlsx", epoch_1904=True)]
    made.append(plain_book(folder / "plain.xlsx"))
    for model in ("coupon", "mix", "demo"):
        made.append(write_template(model, folder / f"{model}.xlsx"))
    solved = folder / "solved.xlsx"
    shutil.copy(made[-3], solved)
    from dmplan.addin.cli import main

    assert main(["solve", str(solved), "-q"]) == 0
    made.append(solved)
    return made + [p for p in SHIPPED if p.exists()]


def trimmed(rows: list[list]) -> list[list]:
    """A grid without trailing empty rows and columns (openpyxl's extent counts styled cells)."""
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    width = max((max((j + 1 for j, v in enumerate(r) if v is not None), default=0) for r in rows), default=0)
    return [list(r[:width]) + [None] * (width - len(r[:width])) for r in rows]


def same(ours: object, theirs: object, kind: str) -> bool:
    """Equal values of the same type; the fast path may give int for a whole float (1 == 1.0)."""
    if ours != theirs:
        return False
    if kind == "fast" and isinstance(ours, int | float) and isinstance(theirs, int | float):
        return (not isinstance(ours, bool) and not isinstance(theirs, bool)) or type(ours) is type(theirs)
    return type(ours) is type(theirs) or (isinstance(ours, ExcelError) and type(theirs) is str)


def assert_grid(ours: list[list], theirs: list[list], kind: str, where: str) -> None:
    assert len(ours) == len(theirs), f"{where}: {len(ours)} rows, openpyxl {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert len(a) == len(b), f"{where} row {i}: width {len(a)} vs {len(b)}"
        for j, (x, y) in enumerate(zip(a, b, strict=True)):
            assert same(x, y, kind), f"{where} cell ({i}, {j}): ours {x!r} openpyxl {y!r}"


def test_every_sheet_reads_as_openpyxl_reads_it(books, path_kind):
    checked = 0
    for path in books:
        wb = openpyxl.load_workbook(path, data_only=True, keep_vba=True)
        with Package(path) as package:
            assert package.sheet_names == wb.sheetnames
            for ws in wb.worksheets:
                theirs = trimmed([list(r) for r in ws.iter_rows(min_row=1, min_col=1, values_only=True)])
                region = package.read(ws.title)
                assert (region.first_row, region.first_col) == (1, 1)
                assert_grid(region.grid, theirs, path_kind, f"{path.name}!{ws.title}")
                checked += 1
    assert checked >= 20


def test_error_cells_stay_recognisable(books, path_kind):
    with Package(books[0]) as package:
        grid = package.read("Other").grid
        crafted = package.read("Crafted").grid
        segments = package.read("Segments").grid
    assert isinstance(grid[4][1], ExcelError) and grid[4][1] == "#DIV/0!"
    assert isinstance(crafted[5][1], ExcelError)
    assert isinstance(segments[4][1], ExcelError) and segments[4][1] == "#N/A"
    assert not isinstance(grid[4][0], ExcelError)


def test_tables_hidden_rows_merges_and_formulas_match_openpyxl(books, path_kind):
    for path in books:
        values = openpyxl.load_workbook(path, data_only=True, keep_vba=True)
        formulas = openpyxl.load_workbook(path, data_only=False, keep_vba=True)
        with Package(path) as package:
            ours = {(t.sheet, t.name): t for t in package.tables}
            theirs = {(ws.title, name): ws.tables[name] for ws in values.worksheets for name in ws.tables}
            assert set(ours) == set(theirs), path.name
            for key, table in theirs.items():
                info = ours[key]
                assert info.ref == table.ref and info.totals_row_count == (table.totalsRowCount or 0)
                r0, c0, r1, c1 = info.data_ref
                ws = values[key[0]]
                expected = [[c.value for c in row] for row in ws.iter_rows(r0, r1, c0, c1)]
                region = package.read_table(info)
                assert (region.first_row, region.first_col) == (r0, c0)
                assert_grid(region.grid, expected, path_kind, f"{path.name} table {info.name}")
            for ws in values.worksheets:
                region = package.read(ws.title)
                hidden = {r for r, dim in ws.row_dimensions.items() if dim.hidden}
                assert region.hidden_rows == {r for r in hidden if r <= region.last_row}, (path.name, ws.title)
                assert set(region.merged) == {str(m) for m in ws.merged_cells.ranges}
                if path_kind == "exact":
                    f_ws = formulas[ws.title]
                    expected_missing = {
                        (c.row, c.column): str(getattr(c.value, "text", None) or c.value)
                        for row in f_ws.iter_rows()
                        for c in row
                        if c.data_type == "f" and ws.cell(c.row, c.column).value is None
                    }
                    assert region.formulas_without_value == expected_missing, (path.name, ws.title)


def test_totals_row_blank_rows_and_offset_tables(books):
    with Package(books[0]) as package:
        seg = next(t for t in package.tables if t.name == "SegTable")
        region = package.read_table(seg)
        offset = package.read_table(next(t for t in package.tables if t.name == "Offset"))
        whole = package.read("Segments")
    assert seg.totals_row_count == 1 and region.last_row == 6  # the totals row (7) is not data
    assert [r[0] for r in region.grid] == ["segment", "a", None, "b", "c", "  d "]
    assert region.hidden_rows == {4}
    assert region.formulas_without_value == {(6, 3): "=B2*2"}
    assert (offset.first_row, offset.first_col, offset.grid) == (30, 3, [["k", "v"], ["x", 1.5]])
    assert whole.grid[11][0] == "after a gap"  # reading does not stop at blank rows
    assert whole.grid[1][3] == dt.datetime(2025, 1, 31) and whole.grid[4][3] == dt.time(12, 30)
    assert whole.grid[5][3] == dt.timedelta(hours=30)
    assert whole.merged == ["F2:G3"]


def test_sheet_states_and_defined_names(books):
    wb = openpyxl.load_workbook(books[0])
    with Package(books[0]) as package:
        assert [(s.name, s.state) for s in package.sheets] == [(ws.title, ws.sheet_state) for ws in wb.worksheets]
        names = {(d.name, d.local_sheet_id): d for d in package.defined_names}
    assert names[("budget", None)].value == "Segments!$B$2"
    local = names[("_dmplan_result", 1)]
    assert local.hidden and local.value == '"coupon"'
    assert set(wb.defined_names) == {n for n, scope in names if scope is None}


def test_crafted_parts(books):
    """Shared strings with rich and phonetic runs, shared formulas, inline rich text, ISO dates."""
    with Package(books[0]) as package:
        grid = package.read("Crafted").grid
        hidden = package.read("Crafted").hidden_rows
        uncached = package.read("Crafted").formulas_without_value
    assert grid[0] == ["id", "twice", "label"]
    assert grid[1] == [1, 2, "Tokyo"]  # the phonetic run is not part of the text
    assert grid[2] == [2.5, 5, "x2.5"] and hidden == {3}
    assert grid[3] == [3, None, "rich inline"]
    assert uncached == {(4, 2): "=A4*2"}  # a dependent cell of a shared formula
    assert grid[5][0] == dt.datetime(2024, 2, 29, 10, 30)
    assert grid[5][2] == "  padded & <escaped> " and grid[6] == [False, 0.001, "x_x000D_y"]


def test_the_fast_path_is_taken_for_plain_large_sheets(tmp_path, monkeypatch):
    path = plain_book(tmp_path / "plain.xlsx", rows=500)
    monkeypatch.setattr(xlsx_read, "FAST_MIN_BYTES", 0)
    monkeypatch.setattr(xlsx_read, "FAST_MIN_ROWS", 0)
    used = []
    original = Package._fast_region
    monkeypatch.setattr(Package, "_fast_region", lambda self, *a: used.append(1) or original(self, *a))
    with Package(path) as package:
        package.read_table(package.tables[0])
    assert used
    with Package(messy_book(tmp_path / "messy.xlsx")) as package:
        used.clear()
        package.read("Segments")  # errors and formulas: the exact path
        assert not used


def test_range_bounds():
    assert range_bounds("B3:$D$10") == (3, 2, 10, 4)
    assert range_bounds("AA1") == (1, 27, 1, 27)
