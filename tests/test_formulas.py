"""Evaluate formulas (the macOS stand-in for worksheet functions): DMPlan's formulas computed by DMPlan.

The pure part (dmplan.addin.formulas: taking formulas apart, dispatching to the worksheet functions'
code) is tested on the templates' own formulas; the live part (dmplan.addin.xl.evaluate_book) on a
stand-in for an xlwings book (no Excel here, and xlwings' remote engine has no formulas), whose
"Excel" computes only the expressions the test lists.
"""

from __future__ import annotations

import re
from typing import Any

import openpyxl
import pytest

from dmplan.addin import formulas, udf, xl
from dmplan.addin.formulas import Call, argument_kind, split_call
from dmplan.bench.udf import book_arguments
from tests.test_templates import TEMPLATES

BOOK_OPTIMUM = 326.0951  # the book's expected extra conversions for B = 1,000,000 (ohmsha/PyOptBook ch. 4)


def test_split_call_takes_the_templates_formulas_apart() -> None:
    texts = []
    for name in ("dm_plan.xlsx", "mix_plan.xlsx"):
        for ws in openpyxl.load_workbook(TEMPLATES / name).worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    text = getattr(cell.value, "text", None)  # array formulas
                    if text and re.match(r"=(DMPLAN|DMPARETO|MIXPLAN)\(", text):
                        texts.append(text)
    calls = [split_call(t) for t in texts]
    assert {c.function for c in calls if c} == {"DMPLAN", "DMPARETO", "MIXPLAN"}
    mix = next(c for c in calls if c and c.function == "MIXPLAN")
    assert len(mix.arguments) == 5
    assert mix.arguments[2].startswith("ROUND(") and mix.arguments[2].endswith(",0)")  # commas inside stay
    assert [argument_kind(a) for a in mix.arguments] == [
        "reference",
        "expression",
        "expression",
        "reference",
        "expression",
    ]


def test_split_call_edge_cases() -> None:
    assert split_call("=dmplan(A1:C4, 'My, sheet'!A1:E4, \"x,y\", , 0.1)") == Call(
        "DMPLAN", ("A1:C4", "'My, sheet'!A1:E4", '"x,y"', "", "0.1")
    )
    assert split_call("=_xludf.DMPARETO(A1:B2,C1:D2)") == Call("DMPARETO", ("A1:B2", "C1:D2"))
    assert split_call("=DMPLAN(A1)+SUM(B1)") is None  # not one call
    assert split_call("=SUM(A1)") is None and split_call(42) is None and split_call("DMPLAN(A1)") is None
    assert argument_kind("budget") == "name" and argument_kind("$A$5:$G$21") == "reference"
    assert argument_kind("'Plan 1'!B2") == "reference" and argument_kind("10%") == "number"
    assert formulas.literal("10%") == pytest.approx(0.1) and formulas.literal('"a""b"') == 'a"b'


def test_evaluate_call_runs_the_worksheet_functions_code() -> None:
    segments, mailings = book_arguments()
    values = {"Segments!$A$1:$G$17": segments, "Mailings!$A$1:$E$4": mailings, "budget": 1_000_000.0}
    grid = formulas.evaluate_call(split_call("=DMPLAN(Segments!$A$1:$G$17,Mailings!$A$1:$E$4,budget)"), values.get)
    assert grid == udf.dmplan_udf(segments, mailings, 1_000_000.0)
    assert _extra_conversions(grid, segments) == pytest.approx(BOOK_OPTIMUM, abs=1e-3)
    # bad input comes back as the function's own readable error, naming the argument
    values["budget"] = -5.0
    bad = formulas.evaluate_call(split_call("=DMPLAN(Segments!$A$1:$G$17,Mailings!$A$1:$E$4,budget)"), values.get)
    assert bad[0][0].startswith("#DMPLAN!") and "budget" in bad[0][0]


def _extra_conversions(grid: list[list[Any]], segments: list[list[Any]]) -> float:
    """Independent of the solver: sum of customers x share x (p - p_baseline) from the spilled shares."""
    header, rows = grid[0], grid[1:]
    seg_header = segments[0]
    total = 0.0
    for row, seg in zip(rows, segments[1:], strict=True):
        n = seg[seg_header.index("customers")]
        base = seg[seg_header.index("prob_dm1")]
        for mailing, share in zip(header[1:], row[1:], strict=True):
            total += n * share * (seg[seg_header.index(f"prob_{mailing}")] - base)
    return total


# --------------------------------------------------------------------------- a stand-in for a live book
def _rc(address: str) -> tuple[int, int]:
    match = re.fullmatch(r"\$?([A-Z]+)\$?(\d+)", address)
    assert match, address
    col = 0
    for ch in match.group(1):
        col = col * 26 + ord(ch) - 64
    return int(match.group(2)), col


def _a1(row: int, col: int) -> str:
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return f"${letters}${row}"


class FakeRange:
    def __init__(self, sheet: FakeSheet, r0: int, c0: int, r1: int, c1: int, ndim: int | None = None) -> None:
        self.sheet, self.r0, self.c0, self.r1, self.c1, self.ndim = sheet, r0, c0, r1, c1, ndim

    def options(self, ndim: int | None = None) -> FakeRange:
        return FakeRange(self.sheet, self.r0, self.c0, self.r1, self.c1, ndim)

    @property
    def address(self) -> str:
        first = _a1(self.r0, self.c0)
        return first if (self.r0, self.c0) == (self.r1, self.c1) else f"{first}:{_a1(self.r1, self.c1)}"

    @property
    def count(self) -> int:
        return (self.r1 - self.r0 + 1) * (self.c1 - self.c0 + 1)

    def __getitem__(self, ij: tuple[int, int]) -> FakeRange:
        i, j = ij
        return FakeRange(self.sheet, self.r0 + i, self.c0 + j, self.r0 + i, self.c0 + j)

    def _grid(self, get: Any) -> Any:
        grid = [[get(r, c) for c in range(self.c0, self.c1 + 1)] for r in range(self.r0, self.r1 + 1)]
        return grid if self.ndim == 2 or self.count > 1 else grid[0][0]

    @property
    def value(self) -> Any:
        return self._grid(lambda r, c: self.sheet.values.get((r, c)))

    @value.setter
    def value(self, grid: Any) -> None:
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                cell = (self.r0 + i, self.c0 + j)
                if cell in self.sheet.arrays:
                    raise RuntimeError("You can't change part of an array.")
                self.sheet.formulas.pop(cell, None)
                self.sheet.values[cell] = v

    @property
    def formula(self) -> Any:
        return self._grid(lambda r, c: self.sheet.formulas.get((r, c), self.sheet.values.get((r, c), "")))

    @formula.setter
    def formula(self, text: str) -> None:  # only the scratch cell: "Excel" computes what the test allows
        self.sheet.values[(self.r0, self.c0)] = self.sheet.book.excel[text[1:]]
        self.sheet.book.computed.append(text[1:])

    @property
    def has_array(self) -> bool:
        return (self.r0, self.c0) in self.sheet.arrays

    @property
    def current_array(self) -> FakeRange:
        return FakeRange(self.sheet, *self.sheet.arrays[(self.r0, self.c0)])

    def clear_contents(self) -> None:
        for r in range(self.r0, self.r1 + 1):
            for c in range(self.c0, self.c1 + 1):
                self.sheet.arrays.pop((r, c), None)
                self.sheet.formulas.pop((r, c), None)
                self.sheet.values.pop((r, c), None)


class FakeSheet:
    def __init__(self, book: FakeBook, name: str) -> None:
        self.book, self.name = book, name
        self.values: dict[tuple[int, int], Any] = {}
        self.formulas: dict[tuple[int, int], str] = {}
        self.arrays: dict[tuple[int, int], tuple[int, int, int, int]] = {}

    def write(self, address: str, grid: list[list[Any]]) -> None:
        r0, c0 = _rc(address)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                self.values[(r0 + i, c0 + j)] = v

    def array_formula(self, area: str, text: str) -> None:
        (r0, c0), (r1, c1) = (_rc(a) for a in area.split(":"))
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                self.formulas[(r, c)], self.values[(r, c)] = text, None  # #NAME? reads as None
                self.arrays[(r, c)] = (r0, c0, r1, c1)

    def range(self, address: str) -> FakeRange:
        first, _, last = address.replace("$", "").partition(":")
        (r0, c0), (r1, c1) = _rc(first), _rc(last or first)
        return FakeRange(self, r0, c0, r1, c1)

    @property
    def used_range(self) -> FakeRange:
        cells = set(self.values) | set(self.formulas)
        return FakeRange(self, 1, 1, max(r for r, _ in cells), max(c for _, c in cells))

    def delete(self) -> None:
        self.book.sheets.remove(self)


class FakeSheets(list):
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return next(s for s in self if s.name == key)
        return super().__getitem__(key)

    def add(self, name: str) -> FakeSheet:
        sheet = FakeSheet(self.book, name)
        self.append(sheet)
        return sheet


class FakeName:
    def __init__(self, book: FakeBook, name: str, refers_to: str) -> None:
        self.book, self.name, self.refers_to = book, name, refers_to

    @property
    def refers_to_range(self) -> FakeRange:
        sheet, _, address = self.refers_to.lstrip("=").rpartition("!")
        return self.book.sheets[sheet].range(address)


class FakeNames(list):
    def add(self, name: str, refers_to: str) -> FakeName:
        assert name.upper() not in formulas.FUNCTION_NAMES  # never a name equal to a function
        entry = FakeName(self.book, name, refers_to)
        self.append(entry)
        return entry


class FakeBook:
    def __init__(self, excel: dict[str, Any]) -> None:
        self.sheets = FakeSheets()
        self.sheets.book = self
        self.names = FakeNames()
        self.names.book = self
        self.excel, self.computed = excel, []


DMPLAN_TEXT = "=DMPLAN(Data!$A$1:$G$17,Data!$I$1:$M$4,budget)"


def _book() -> FakeBook:
    segments, mailings = book_arguments()
    book = FakeBook(excel={"budget_ratio*2": 1_000_000.0})
    data = book.sheets.add("Data")
    data.write("A1", segments)
    data.write("I1", mailings)
    data.write("O1", [["budget", 1_000_000.0]])
    book.names.append(FakeName(book, "budget", "=Data!$P$1"))
    plan = book.sheets.add("Plan")
    plan.write("A1", [[DMPLAN_TEXT]])  # the example's text, typed with an apostrophe: not a call
    plan.array_formula("B2:E18", DMPLAN_TEXT)  # a CSE array formula showing #NAME?
    plan.formulas[(2, 8)] = "=DMPLAN(Data!$A$1:$G$17,Data!$I$1:$M$4,budget_ratio*2)"  # H2: an expression
    plan.values[(2, 8)] = None
    return book


def test_evaluate_book_writes_the_functions_values_and_keeps_the_formula() -> None:
    book = _book()
    segments, mailings = book_arguments()
    done = xl.evaluate_book(book)
    assert sorted(done) == [("Plan", "B2", "17 rows"), ("Plan", "H2", "17 rows")]
    plan = book.sheets["Plan"]
    expected = udf.dmplan_udf(segments, mailings, 1_000_000.0)
    assert plan.range("B2:E18").value == expected
    assert _extra_conversions(plan.range("B2:E18").value, segments) == pytest.approx(BOOK_OPTIMUM, abs=1e-3)
    assert plan.range("H2:K18").value == expected
    assert book.computed == ["budget_ratio*2"]  # "Excel" was asked for the expression, nothing else
    assert plan.range("A1").value == DMPLAN_TEXT  # the text example is left alone
    assert [s.name for s in book.sheets] == ["Data", "Plan"]  # the scratch sheet is gone
    kept = sorted(formulas.kept_formula(n.refers_to) for n in book.names if n.name.startswith("_DMPlanFormula"))
    assert kept == [
        ("Plan", "B2", DMPLAN_TEXT),
        ("Plan", "H2", "=DMPLAN(Data!$A$1:$G$17,Data!$I$1:$M$4,budget_ratio*2)"),
    ]

    # the next click evaluates the kept formulas again, with the inputs as they are then
    book.sheets["Data"].write("P1", [[800_000.0]])
    book.excel["budget_ratio*2"] = 800_000.0
    again = xl.evaluate_book(book)
    assert sorted(again) == sorted(done)
    cheaper = udf.dmplan_udf(segments, mailings, 800_000.0)
    assert cheaper != expected and plan.range("B2:E18").value == cheaper
    assert len([n for n in book.names if n.name.startswith("_DMPlanFormula")]) == 2  # no duplicates


def test_kept_formula_text_round_trips() -> None:
    text = formulas.keep_formula_text("Plan 'A'", "B2", '=DMPLAN(A1:B2,"x",3)')
    assert formulas.kept_formula(text) == ("Plan 'A'", "B2", '=DMPLAN(A1:B2,"x",3)')
    assert formulas.kept_formula('="[Plan]B2=SUM(1)"') is None and formulas.kept_formula(3) is None


def test_dmplan_module_has_the_macos_button() -> None:
    import dmplan

    assert callable(dmplan.evaluate_formulas)
