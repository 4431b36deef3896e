"""A generated corpus of messy workbooks (hypothesis, seeded and replayable), started from the templates.

Each example applies mutations users make to the coupon or mix template (blank rows, a totals row, text
numbers typed unambiguously or with a decimal comma, Excel error values, hidden rows, merged cells, a
renamed result sheet before a re-run, a read-only file or folder), then runs ``python -m dmplan solve``.
The oracle below says what SHOULD happen from the mutations alone, independent of DMPlan's code:

- a bad cell (error value, ambiguous text number) -> exit 2, the message names the sheet and one of the
  bad cells, the input byte for byte and mtime unchanged, nothing left in the folder;
- a read-only file or folder (in place) -> exit 2 and the same;
- otherwise exit 0, every row read as Excel shows it (the summary's segments/activities are exactly the
  rows written, and the coupon plan's figures recomputed here from those rows match the summary's), each
  blank and hidden row reported, and a re-run after renaming a result sheet keeps the sheets as they are.

Replay: the examples are derandomized (the same every run). ``DMPLAN_CORPUS_SEED=<int>`` draws a different,
still replayable set (unseen workbooks of the same kinds).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st

from tests.robustness import books
from tests.robustness.books import BAD_INPUT, OK, Err, Totals

ERROR_CODES = ("#N/A", "#VALUE!", "#DIV/0!", "#REF!", "#NAME?", "#NUM!", "#NULL!")
SEED = os.environ.get("DMPLAN_CORPUS_SEED")
EXAMPLES = int(os.environ.get("DMPLAN_CORPUS_EXAMPLES", "8"))


def corpus_settings(test: Any) -> Any:
    """Few examples (each is a child process), no shrinking (a failing example is reported as drawn)."""
    configured = settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )(test)
    return seed(int(SEED))(configured) if SEED is not None else configured


# --------------------------------------------------------------------------- the two models' layouts
@dataclass(frozen=True)
class Model:
    name: str
    sheet: str  #: the sheet (and Excel table) the mutations apply to
    id_col: int  #: column index of the id
    number_cols: tuple[int, ...]  #: columns read as numbers (text-number and error mutations go there)
    text_cols: tuple[int, ...]  #: text columns the model reads (error mutations go there too)
    totals: dict[str, str]
    pareto: str  #: a result sheet to rename before a re-run


COUPON = Model("coupon", "Segments", 0, (2, 3, 4, 5), (), {"customers": "sum", "prob_dm1": "average"}, "DM Pareto")
# Mix: channel (B) and region (C) are read by the template's rules.
MIX_TOTALS = {"baseline": "sum", "min_spend": "sum", "max_spend": "sum"}
MIX = Model("mix", "Activities", 0, (5, 6, 7, 8), (1, 2), MIX_TOTALS, "Mix Pareto")


@dataclass
class Case:
    """The drawn mutations, in the terms of the rows written (data row indexes, 0-based)."""

    listobject: bool
    totals: bool = False
    blank_before: list[int] = field(default_factory=list)  #: a blank row is inserted before these data rows
    text: dict[tuple[int, int], bool] = field(default_factory=dict)  #: (row, col) -> ambiguous?
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden: list[int] = field(default_factory=list)
    merge_header: bool = False
    merge_descriptive: int | None = None  #: coupon: merge age_cat of this row with the next
    rename_rerun: bool = False
    read_only_file: bool = False
    read_only_folder: bool = False


@st.composite
def cases(draw: st.DrawFn, model: Model, n: int) -> Case:
    listobject = draw(st.booleans())
    cell = st.tuples(st.integers(0, n - 1), st.sampled_from(model.number_cols))
    case = Case(listobject=listobject)
    case.totals = listobject and draw(st.booleans())
    case.blank_before = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=2))))
    case.text = draw(st.dictionaries(cell, st.booleans(), max_size=3))
    if draw(st.integers(0, 3)) == 0:  # an error value in a quarter of the examples, ids included
        columns = (model.id_col, *model.text_cols)
        where = draw(st.one_of(cell, st.tuples(st.integers(0, n - 1), st.sampled_from(columns))))
        case.errors = {where: draw(st.sampled_from(ERROR_CODES))}
        case.text.pop(where, None)
    case.hidden = sorted(set(draw(st.lists(st.integers(0, n - 1), max_size=2))))
    if not listobject:  # Excel refuses merged cells inside a table (ListObject)
        case.merge_header = draw(st.booleans())
        if model is COUPON and draw(st.booleans()):
            case.merge_descriptive = draw(st.integers(0, n - 2))
    kind = draw(st.sampled_from(["none", "none", "rename", "read_only_file", "read_only_folder"]))
    case.rename_rerun = kind == "rename"
    case.read_only_file = kind == "read_only_file"
    case.read_only_folder = kind == "read_only_folder" and not books.IS_ROOT  # root writes there regardless
    return case


# --------------------------------------------------------------------------- applying a case
def _as_text(value: Any, ambiguous: bool, pick: int) -> str:
    """The same number typed as text: unambiguously ('0.07', '7%', '9,180') or with a decimal comma."""
    number = float(value)
    if ambiguous:
        if number.is_integer():
            whole = int(number)
            forms = [f"{whole},0", f"{whole},00", f"{whole:,}.0".replace(",", " ").replace(".", ",").replace(" ", ".")]
            forms = [f for f in forms if not re.fullmatch(r"-?\d{1,3}(,\d{3})+", f)]
        else:
            forms = [repr(number).replace(".", ",")]
        return forms[pick % len(forms)]
    if number.is_integer():
        whole = int(number)
        return [f"{whole:,}", str(whole), f" {whole} "][pick % 3]
    return [repr(number), f"{round(number * 100, 10):g}%"][pick % 2]


@dataclass
class Built:
    path: Path
    layout: list[Any]  #: rows as written, None for blank rows
    bad_cells: list[str]
    blank_rows: list[int]
    hidden_rows: list[int]


def build(folder: Path, model: Model, template: Path, data: list[list[Any]], header: list[str], case: Case) -> Built:
    data = [list(r) for r in data]
    for k, ((r, c), ambiguous) in enumerate(sorted(case.text.items())):
        data[r][c] = _as_text(data[r][c], ambiguous, k)
    for (r, c), code in case.errors.items():
        data[r][c] = Err(code)
    layout: list[Any] = []
    excel_row: dict[int, int] = {}
    for i, row in enumerate(data):
        if i in case.blank_before:
            layout.append(None)
        layout.append(row)
        excel_row[i] = len(layout) + 1
    blank_rows = [j + 2 for j, row in enumerate(layout) if row is None]
    hidden_rows = [excel_row[i] for i in case.hidden]
    bad = [f"{books.letter(c + 1)}{excel_row[r]}" for (r, c) in case.errors]
    bad += [f"{books.letter(c + 1)}{excel_row[r]}" for (r, c), ambiguous in case.text.items() if ambiguous]
    if case.merge_descriptive is not None and case.merge_descriptive + 1 in case.blank_before:
        case.merge_descriptive = None  # the next row is blank: nothing to merge with

    def extra(wb: Any) -> None:
        ws = wb[model.sheet]
        for r in hidden_rows:
            ws.row_dimensions[r].hidden = True
        if case.merge_header:
            last = books.letter(len(header))
            ws.merge_cells(f"{last}1:{books.letter(len(header) + 1)}1")
        if case.merge_descriptive is not None:
            top = excel_row[case.merge_descriptive]
            ws.merge_cells(f"B{top}:B{top + 1}")  # Excel keeps the top value; the cell below shows empty

    totals = Totals(functions=model.totals) if case.totals else None
    make = books.coupon_book if model is COUPON else books.mix_book
    path = make(folder, template, layout, listobject=case.listobject, totals=totals, extra=extra)
    return Built(path, layout, bad, blank_rows, hidden_rows)


# --------------------------------------------------------------------------- the oracle
def check(built: Built, model: Model, header: list[str], case: Case) -> None:
    book = built.path
    folder = book.parent
    summary = folder.parent / f"{folder.name}-summary.json"
    if case.read_only_file:
        book.chmod(0o444)
    if case.read_only_folder:
        folder.chmod(0o555)
    before = books.snapshot(folder)
    try:
        run = books.solve(book, summary=summary)
    finally:
        folder.chmod(0o755)
    note(f"{model.name} {case}\n{run}")
    books.assert_clean(run)
    if built.bad_cells or case.read_only_file or case.read_only_folder:
        assert run.code == BAD_INPUT, str(run)
        books.assert_unchanged(before, folder)
        assert not summary.exists(), "summary JSON written on failure"
        if built.bad_cells and not (case.read_only_file or case.read_only_folder):
            assert model.sheet.lower() in run.text.lower(), f"sheet not named\n{run}"
            assert any(re.search(rf"(?<![A-Za-z0-9$]){c}(?![0-9])", run.text) for c in built.bad_cells), (
                f"none of {built.bad_cells} named\n{run}"
            )
        return
    assert run.code == OK, str(run)
    data = books.load_summary(summary)
    entry = books.model_entry(data, model.name)
    if model is COUPON:
        books.check_coupon_result(entry, built.layout)
        books.check_coupon_sheet(book, built.layout)
    else:
        books.check_mix_result(entry, header, built.layout)
        books.check_mix_sheet(book, header, built.layout)
    warnings = books.all_warnings(data)
    for r in built.blank_rows:
        assert re.search(rf"\b{r}\b", warnings), f"blank row {r} not reported: {warnings}"
    for r in built.hidden_rows:
        assert "hidden" in warnings and re.search(rf"\b{r}\b", warnings), f"hidden row {r} not reported: {warnings}"
    if case.rename_rerun:
        books.edit(book, lambda wb: setattr(wb[model.pareto], "title", model.pareto + " Jan"))
        names = openpyxl.load_workbook(book, read_only=True).sheetnames
        again = books.solve(book)
        assert again.code == OK, str(again)
        books.assert_clean(again)
        assert openpyxl.load_workbook(book, read_only=True).sheetnames == names


# --------------------------------------------------------------------------- the corpus
@functools.cache
def _coupon_rows(template: Path) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(r) for r in books.coupon_segments(template))


@functools.cache
def _mix_rows(template: Path) -> tuple[list[str], tuple[tuple[Any, ...], ...]]:
    header, rows = books.mix_rows(template)
    return header, tuple(tuple(r) for r in rows)


@pytest.mark.slow
@corpus_settings
@given(data=st.data())
def test_coupon_corpus(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory, coupon_template: Path) -> None:
    rows = [list(r) for r in _coupon_rows(coupon_template)]
    case = data.draw(cases(COUPON, len(rows)), label="case")
    folder = tmp_path_factory.mktemp("coupon-case")
    built = build(folder, COUPON, coupon_template, rows, books.SEGMENT_HEADER, case)
    check(built, COUPON, books.SEGMENT_HEADER, case)


@pytest.mark.slow
@corpus_settings
@given(data=st.data())
def test_mix_corpus(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory, mix_template: Path) -> None:
    header, template_rows = _mix_rows(mix_template)
    rows = [list(r) for r in template_rows]
    case = data.draw(cases(MIX, len(rows)), label="case")
    folder = tmp_path_factory.mktemp("mix-case")
    built = build(folder, MIX, mix_template, rows, header, case)
    check(built, MIX, header, case)


def test_oracle_reads_text_numbers_as_the_contract_says() -> None:
    """The oracle's own reading of typed text (so a corpus failure is DMPlan's, not the oracle's)."""
    assert books.parse_typed("0.25") == 0.25 and books.parse_typed("10%") == pytest.approx(0.1)
    assert books.parse_typed("1,000") == 1000 and books.parse_typed("12,345.5") == 12345.5
    assert books.parse_typed("-3") == -3 and books.parse_typed(" 7 ") == 7
    for typed in ("0,1", "1,00", "1.000,5", "9180,0"):
        assert books.parse_typed(typed) is None, typed
    for value, ambiguous in ((0.07, False), (0.07, True), (9180, False), (9180, True), (312, True)):
        for pick in range(3):
            text = _as_text(value, ambiguous, pick)
            parsed = books.parse_typed(text)
            assert (parsed is None) if ambiguous else (parsed == pytest.approx(value)), (value, text)
