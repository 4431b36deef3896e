"""Issue 11, reading tables: every silent misread and every misleading message found, as a user meets it.

Each test builds the workbook the way a user does (openpyxl, real Excel tables, totals rows with SUBTOTAL
formulas and Excel's cached values, error cells, hidden rows, merged headers), runs ``python -m dmplan solve``
in a child process and checks the exit code, the message (sheet, row, cell, the value as typed) and the result
against figures recomputed here from the rows written (``books.check_coupon_result``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.filters import AutoFilter, FilterColumn, Filters

from tests.robustness import books
from tests.robustness.books import BAD_INPUT, OK, Err, Totals

# Segments sheet of books.coupon_book: A segment_id, B age_cat, C customers, D prob_dm1, E prob_dm2, F prob_dm3.
# rows[i] sits in Excel row i + 2.


def _solved(book: Path, rows: list[Any], *extra: str, quiet: bool = True) -> tuple[books.Run, dict[str, Any]]:
    summary = book.with_name("summary.json")
    quiet_flag = ["-q"] if quiet else []  # warnings must reach the console, so some tests keep it
    run = books.dmplan("solve", book, *quiet_flag, *extra, "--summary-json", summary, cwd=book.parent)
    assert run.code == OK, str(run)
    books.assert_clean(run)
    data = books.load_summary(summary)
    entry = books.model_entry(data, "coupon")
    books.check_coupon_result(entry, rows)
    books.check_coupon_sheet(book, rows)
    return run, data


def _failed(book: Path, *needles: str) -> books.Run:
    before = books.snapshot(book.parent)
    summary = book.parent / "summary.json"
    run = books.solve(book, summary=summary)
    books.assert_fails(run, BAD_INPUT, *needles)
    books.assert_unchanged(before, book.parent)  # input untouched, no temp file, no summary JSON
    return run


# --------------------------------------------------------------------------- totals rows
SEGMENT_TOTALS = Totals(
    functions={"customers": "sum", "prob_dm1": "average", "prob_dm2": "average", "prob_dm3": "average"}
)


def test_listobject_totals_row_is_not_a_segment(tmp_path: Path, coupon_template: Path) -> None:
    """Segments as an Excel table with a totals row ('Total', SUBTOTAL sums and averages): 16 segments, not 17."""
    rows = books.coupon_segments(coupon_template)
    book = books.coupon_book(tmp_path, coupon_template, rows, totals=SEGMENT_TOTALS)
    _, data = _solved(book, rows)
    assert "Total" not in books.model_entry(data, "coupon")["allocation"]


def test_customers_listobject_totals_row_is_not_a_customer(tmp_path: Path, coupon_template: Path) -> None:
    """The template's Customers table given a totals row (count of ids): still 5,000 customers, none named Total."""
    book = books.copy(coupon_template, tmp_path / "book.xlsx")

    def change(wb: Any) -> dict[str, Any]:
        header, rows = books.rows_of(wb["Customers"])
        return books.put_table(
            wb["Customers"], header, rows, listobject="Customers", totals=Totals(functions={"freq_cat": "count"})
        )

    books.save_cached(book, "Customers", books.edit(book, change))
    summary = tmp_path / "summary.json"
    run = books.solve(book, summary=summary)
    assert run.code == OK, str(run)
    assert books.model_entry(books.load_summary(summary), "coupon")["customers"] == 5000


def test_udf_all_range_with_totals_row(coupon_template: Path) -> None:
    """``=DMPLAN(Segments[#All], ...)`` hands the totals row to the function too; it is never a segment.

    What Excel hands a UDF: a 2-D list, floats for whole numbers, None for empty cells. The result is
    either the plan of the 16 real segments or a readable error naming the range's last row.
    """
    from dmplan.addin.udf import DMPLAN

    rows = books.coupon_segments(coupon_template)
    grid: list[list[Any]] = [list(books.SEGMENT_HEADER)]
    grid += [[float(r[0]), r[1], float(r[2]), float(r[3]), float(r[4]), float(r[5])] for r in rows]
    n = len(rows)
    grid.append(
        ["Total", None, float(sum(r[2] for r in rows))] + [sum(float(r[k]) for r in rows) / n for k in (3, 4, 5)]
    )
    mailings: list[list[Any]] = [["mailing", "label", "coupon_value", "cost_per_piece", "min_share"]]
    mailings += [[m, m, v, k, f] for m, (v, k, f) in books.MAILINGS.items()]
    result = DMPLAN(grid, mailings, 1_000_000.0)
    first = [str(row[0]) for row in result[1:]] if len(result) > 1 else []
    if len(result) == 1:
        text = str(result[0][0])
        assert text.startswith("#DMPLAN!") and f"row {len(grid)}" in text, text
    else:
        assert "Total" not in first, result
        assert sorted(first) == sorted(str(r[0]) for r in rows), result


# --------------------------------------------------------------------------- blank rows
def _warned(run: books.Run, data: dict[str, Any], book: Path, excel_row: int, *words: str) -> None:
    """A warning naming the row is in the summary JSON, on the console and in the KPI block of DM Plan."""
    warnings = books.all_warnings(data)
    assert str(excel_row) in warnings and any(w in warnings for w in words), warnings
    console = " ".join((run.out + run.err).split()).lower()
    assert str(excel_row) in console and any(w in console for w in words), str(run)
    ws = openpyxl.load_workbook(book, data_only=True)["DM Plan"]
    texts = " | ".join(str(c.value) for row in ws.iter_rows() for c in row if isinstance(c.value, str)).lower()
    assert re.search(rf"\b{excel_row}\b", texts) and any(w in texts for w in words), "no warning on DM Plan"


@pytest.mark.parametrize("listobject", [False, True], ids=["sheet-table", "listobject"])
def test_blank_row_inside_segments_is_skipped_and_reported(
    tmp_path: Path, coupon_template: Path, listobject: bool
) -> None:
    """A blank row after segment 8: all 16 segments are read (today 8), and the blank row 10 is reported."""
    segments = books.coupon_segments(coupon_template)
    rows: list[Any] = [*segments[:8], None, *segments[8:]]
    book = books.coupon_book(tmp_path, coupon_template, rows, listobject=listobject)
    run, data = _solved(book, rows, quiet=False)
    assert len(books.model_entry(data, "coupon")["allocation"]) == 16
    _warned(run, data, book, 10, "blank", "empty")


def test_trailing_blank_row_inside_listobject_is_reported(tmp_path: Path, coupon_template: Path) -> None:
    """The table's last row is blank (inside its ref, as Excel leaves it after a row was cleared): reported too."""
    segments = books.coupon_segments(coupon_template)
    rows: list[Any] = [*segments, None]
    book = books.coupon_book(tmp_path, coupon_template, rows)
    run, data = _solved(book, rows, quiet=False)
    _warned(run, data, book, 18, "blank", "empty")


def test_blank_row_inside_customers(tmp_path: Path, coupon_template: Path) -> None:
    """A blank row after the 30th customer of the template's list: 5,000 customers are counted, not 30."""
    book = books.copy(coupon_template, tmp_path / "book.xlsx")

    def change(wb: Any) -> None:
        ws = wb["Customers"]
        ws.insert_rows(32)  # Excel row 32 is blank now; the table's ref grows by one row as Excel's would
        table = ws.tables["Customers"]
        table.ref = "A1:C5002"

    books.edit(book, change)
    summary = tmp_path / "summary.json"
    run = books.dmplan("solve", book, "--summary-json", summary, cwd=tmp_path)
    assert run.code == OK, str(run)
    data = books.load_summary(summary)
    assert books.model_entry(data, "coupon")["customers"] == 5000
    assert re.search(r"\b32\b", books.all_warnings(data)), books.all_warnings(data)


def test_hidden_row_is_read_and_reported(tmp_path: Path, coupon_template: Path) -> None:
    rows = books.coupon_segments(coupon_template)
    book = books.coupon_book(tmp_path, coupon_template, rows, extra=lambda wb: _hide(wb["Segments"], 6))
    _, data = _solved(book, rows, quiet=False)
    warnings = books.all_warnings(data)
    assert "hidden" in warnings and re.search(r"\b6\b", warnings), warnings


def test_filtered_rows_are_read_and_reported(tmp_path: Path, coupon_template: Path) -> None:
    """The Segments table filtered on age_cat = age~19 (Excel hides the other rows): all 16 are read."""
    rows = books.coupon_segments(coupon_template)
    shown = [i + 2 for i, r in enumerate(rows) if r[1] == "age~19"]
    filtered = [i + 2 for i, r in enumerate(rows) if r[1] != "age~19"]

    def apply_filter(wb: Any) -> None:
        ws = wb["Segments"]
        table = ws.tables["Segments"]
        table.autoFilter = AutoFilter(ref=table.ref)
        table.autoFilter.filterColumn.append(FilterColumn(colId=1, filters=Filters(filter=["age~19"])))
        for r in filtered:
            _hide(ws, r)

    assert shown and filtered
    book = books.coupon_book(tmp_path, coupon_template, rows, extra=apply_filter)
    _, data = _solved(book, rows, quiet=False)
    assert len(books.model_entry(data, "coupon")["allocation"]) == 16
    warnings = books.all_warnings(data)
    assert ("hidden" in warnings or "filter" in warnings) and re.search(rf"\b{filtered[0]}\b", warnings), warnings


def _hide(ws: Any, row: int) -> None:
    ws.row_dimensions[row].hidden = True


# --------------------------------------------------------------------------- text numbers
@pytest.mark.parametrize(
    ("column", "text"),
    [("D", "0,1"), ("F", "1,00"), ("C", "1.000,5")],
    ids=["0,1", "1,00", "1.000,5"],
)
def test_ambiguous_text_number_is_a_located_error(
    tmp_path: Path, coupon_template: Path, column: str, text: str
) -> None:
    """Decimal commas were read as 1.0, 100 and 1.0005; now the cell is named with the text as typed."""
    rows = books.coupon_segments(coupon_template)
    index = "ABCDEF".index(column)
    rows[3][index] = text  # Excel row 5
    book = books.coupon_book(tmp_path, coupon_template, rows)
    run = _failed(book, text)
    books.assert_names_cell(run, "Segments", f"{column}5")
    if text == "0,1":
        assert "0.1" in run.text, "the fix (type 0.1) is not suggested"


def test_unambiguous_text_numbers_are_read_as_excel_shows_them(tmp_path: Path, coupon_template: Path) -> None:
    """'0.25', '10%', '1,000' in the Segments table and '1,000,000' as the budget are numbers."""
    rows = books.coupon_segments(coupon_template)
    rows[0][3], rows[1][3], rows[2][2], rows[3][4] = "0.25", "10%", "1,000", " 0.5 "
    book = books.coupon_book(tmp_path, coupon_template, rows, settings={"budget": "1,000,000"})
    _, data = _solved(book, rows)
    assert books.model_entry(data, "coupon")["budget"] == 1_000_000


# --------------------------------------------------------------------------- error values, formulas, dates
@pytest.mark.parametrize(
    ("cell", "code"),
    [("A5", "#N/A"), ("E7", "#DIV/0!"), ("C9", "#VALUE!"), ("F3", "#REF!")],
)
def test_error_value_is_a_located_error(tmp_path: Path, coupon_template: Path, cell: str, code: str) -> None:
    """An Excel error in any read cell, the segment id included (a #N/A id was accepted as an id)."""
    rows = books.coupon_segments(coupon_template)
    rows[int(cell[1:]) - 2]["ABCDEF".index(cell[0])] = Err(code)
    book = books.coupon_book(tmp_path, coupon_template, rows)
    run = _failed(book, code)
    books.assert_names_cell(run, "Segments", cell)


def test_formula_without_saved_value_is_named_as_such(tmp_path: Path, coupon_template: Path) -> None:
    """A formula never calculated (written by a script, not saved by Excel) is not 'the cell is empty'."""
    rows = books.coupon_segments(coupon_template)
    rows[4][4] = "=0.2+0.1"  # E6, no cached value in the file
    book = books.coupon_book(tmp_path, coupon_template, rows)
    run = _failed(book, "formula")
    books.assert_names_cell(run, "Segments", "E6")
    assert "is empty" not in run.text.lower(), str(run)


def test_date_is_shown_as_the_user_sees_it(tmp_path: Path, coupon_template: Path) -> None:
    rows = books.coupon_segments(coupon_template)
    rows[2][3] = dt.datetime(2025, 1, 31)  # D4: a date where a probability belongs
    book = books.coupon_book(tmp_path, coupon_template, rows)
    run = _failed(book, "2025-01-31")
    books.assert_names_cell(run, "Segments", "D4")
    assert "datetime" not in run.text, str(run)


def test_typed_whole_number_is_shown_without_decimals(tmp_path: Path, coupon_template: Path) -> None:
    rows = books.coupon_segments(coupon_template)
    rows[5][4] = 2  # E7: probability 2, typed as 2
    book = books.coupon_book(tmp_path, coupon_template, rows)
    run = _failed(book)
    books.assert_names_cell(run, "Segments", "E7")
    assert re.search(r"(?<![\d.])2(?![\d.,])", run.text) and not re.search(r"(?<![\d.])2\.0\b", run.text), str(run)
    assert "[0, 1]" not in run.text, "the range is said twice (between 0 and 1 [0, 1])"


@pytest.mark.parametrize("budget", ["lots", -5])
def test_bad_budget_message_reads_as_a_sentence(tmp_path: Path, coupon_template: Path, budget: Any) -> None:
    """It said "Enter a number for 'budget' the allowed range (at least 0)"."""
    book = books.coupon_book(tmp_path, coupon_template, settings={"budget": budget})
    run = _failed(book, str(budget), "budget")
    books.assert_names_cell(run, "Settings", "B2")
    assert "the allowed range (at least" not in run.text, str(run)


def test_max_changes_message_reads_as_a_sentence(tmp_path: Path, mix_template: Path) -> None:
    """'max_changes 10 is outside 0..6': when refused, the message says the range in words and names the cell."""
    _, rows = books.mix_rows(mix_template, 6)
    book = books.mix_book(
        tmp_path, mix_template, rows, rules=[], settings={"max_changes_ratio": None, "max_changes": 10}
    )
    before = books.snapshot(tmp_path)
    run = books.solve(book)
    books.assert_clean(run)
    if run.code != OK:
        books.assert_fails(run, BAD_INPUT, "max_changes", "10")
        books.assert_unchanged(before, tmp_path)
        assert ".." not in run.text, str(run)
        with_cell = openpyxl.load_workbook(book)
        books.assert_names_cell(run, "Settings", books.setting_cell(with_cell, "max_changes"))


def test_error_value_in_a_column_a_rule_uses(tmp_path: Path, mix_template: Path) -> None:
    """#N/A as an activity's channel, which the 'TV total' rule reads: a located error, not 'not TV'."""
    header, rows = books.mix_rows(mix_template)
    rows[3][header.index("channel")] = Err("#N/A")  # B5
    book = books.mix_book(tmp_path, mix_template, rows)
    run = _failed(book, "#N/A")
    books.assert_names_cell(run, "Activities", "B5")


def test_udf_blank_row_inside_the_range(coupon_template: Path) -> None:
    """=DMPLAN() over a range with a blank row (None across) in the middle: the rows after it are used too."""
    from dmplan.addin.udf import DMPLAN

    rows = books.coupon_segments(coupon_template)
    grid: list[list[Any]] = [list(books.SEGMENT_HEADER)]
    grid += [[float(r[0]), r[1], float(r[2]), float(r[3]), float(r[4]), float(r[5])] for r in rows[:8]]
    grid.append([None] * len(books.SEGMENT_HEADER))
    grid += [[float(r[0]), r[1], float(r[2]), float(r[3]), float(r[4]), float(r[5])] for r in rows[8:]]
    mailings: list[list[Any]] = [["mailing", "label", "coupon_value", "cost_per_piece", "min_share"]]
    mailings += [[m, m, v, k, f] for m, (v, k, f) in books.MAILINGS.items()]
    result = DMPLAN(grid, mailings, 1_000_000.0)
    assert len(result) > 1, result
    segments = [str(row[0]) for row in result[1:] if row and row[0] not in (None, "")]
    assert sorted(segments) == sorted(str(r[0]) for r in rows), result


# --------------------------------------------------------------------------- headers
def test_blank_header_over_data_is_a_located_error(tmp_path: Path, coupon_template: Path) -> None:
    """age_cat's header cleared (B1 blank over data): the blank header is named, not a 'missing' prob column."""
    # A sheet table: Excel itself names a blank header inside a ListObject (Column2), so only sheets have it.
    book = books.coupon_book(
        tmp_path, coupon_template, listobject=False, extra=lambda wb: setattr(wb["Segments"]["B1"], "value", None)
    )
    run = _failed(book)
    books.assert_names_cell(run, "Segments", "B1")
    assert "prob_dm1" not in run.text or "missing" not in run.text.lower(), str(run)


def test_blank_header_over_empty_column_is_ignored(tmp_path: Path, coupon_template: Path) -> None:
    """A gap column (G: no header, no data) before a note column H: the table reads as before."""
    rows = books.coupon_segments(coupon_template)

    def note(wb: Any) -> None:
        ws = wb["Segments"]  # a plain sheet table, header in row 1
        ws["H1"] = "note"
        ws["H3"] = "check"

    book = books.coupon_book(tmp_path, coupon_template, rows, listobject=False, extra=note)
    _solved(book, rows)


def test_merged_header_error_is_under_its_own_column(tmp_path: Path, coupon_template: Path) -> None:
    """prob_dm3's header merged across F1:G1 (G empty): a bad value in F6 is reported as prob_dm3, cell F6."""
    rows = books.coupon_segments(coupon_template)
    rows[4][5] = 1.5

    def merge(wb: Any) -> None:
        wb["Segments"].merge_cells("F1:G1")

    book = books.coupon_book(tmp_path, coupon_template, rows, listobject=False, extra=merge)
    run = _failed(book, "prob_dm3", "1.5")
    books.assert_names_cell(run, "Segments", "F6")


def test_merged_header_alone_does_not_break_reading(tmp_path: Path, coupon_template: Path) -> None:
    rows = books.coupon_segments(coupon_template)

    def merge(wb: Any) -> None:
        wb["Segments"].merge_cells("F1:G1")

    book = books.coupon_book(tmp_path, coupon_template, rows, listobject=False, extra=merge)
    _solved(book, rows)


# --------------------------------------------------------------------------- settings and mix bounds
def test_pareto_from_above_to_is_a_located_error(tmp_path: Path, coupon_template: Path) -> None:
    """It gave 20 identical points; now the Settings value is named."""
    book = books.coupon_book(
        tmp_path, coupon_template, settings={"pareto_budget_from": 2_000_000, "pareto_budget_to": 900_000}
    )
    run = _failed(book, "pareto_budget_from")
    assert re.search(r"\bB[45]\b", run.text), str(run)
    assert "Settings" in run.text, str(run)


@pytest.mark.parametrize(
    ("column", "letter"), [("baseline", "F"), ("min_spend", "G"), ("max_spend", "H"), ("min_change", "I")]
)
def test_mix_negative_bound_is_a_located_error(tmp_path: Path, mix_template: Path, column: str, letter: str) -> None:
    header, rows = books.mix_rows(mix_template)
    row = rows[4]  # Excel row 6
    h = {name: i for i, name in enumerate(header)}
    row[h[column]] = -100
    if column == "baseline":
        row[h["min_spend"]] = -200  # a plausible row otherwise: only the sign is wrong
    book = books.mix_book(tmp_path, mix_template, rows)
    run = _failed(book, column)
    books.assert_names_cell(run, "Activities", f"{letter}6")
