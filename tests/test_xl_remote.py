"""The live-Excel adapter (addin.xl) run for real on xlwings' remote engine, without Excel.

``xw.Book(json=...)`` builds a book from the payload an Excel client sends; the adapter runs
against it through the ordinary xlwings API, and ``book.json()`` lists the actions Excel would
perform. The engine needs an xlwings PRO key: the free ``noncommercial`` key is set inside this
test process only (fixture ``remote``); DMPlan itself never needs a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import openpyxl
import pytest
import xlwings as xw
from openpyxl.worksheet.table import Table as OpenpyxlTable

import dmplan.addin.pipeline
from dmplan.addin import workbook, xl
from dmplan.addin.cells import normalize
from dmplan.addin.contract import ModelRun, RunOptions
from dmplan.addin.pipeline import resolve_options
from dmplan.addin.sheets import Block, Chart, Series, SheetSpec, kpi_block
from dmplan.solver.common import InputError, Status

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- engine and payloads
@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """xlwings' remote engine with the free noncommercial key, for this test only."""
    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")
    added = None
    if "remote" not in xw.engines.engines_by_name:  # xlwings was imported without a key
        from xlwings.main import Engine
        from xlwings.pro import _xlremote

        added = Engine(impl=_xlremote.engine)
        xw.engines.add(added)
    yield
    if added is not None:
        xw.engines.engines.remove(added)
        xw.engines.engines_by_name.pop("remote", None)


def table_entry(name: str, ref: str) -> dict[str, Any]:
    """A table as the xlwings Office Scripts client reports it."""
    first, last = ref.replace("$", "").split(":")
    first_col = "".join(c for c in first if c.isalpha())
    first_row = int("".join(c for c in first if c.isdigit()))
    last_col = "".join(c for c in last if c.isalpha())
    return {
        "name": name,
        "range_address": f"{first}:{last}",
        "header_row_range_address": f"{first}:{last_col}{first_row}",
        "data_body_range_address": f"{first_col}{first_row + 1}:{last}",
        "total_row_range_address": None,
        "show_headers": True,
        "show_totals": False,
        "table_style": "TableStyleMedium2",
        "show_autofilter": True,
    }


def sheet_entry(name: str, values: list[list[Any]], tables: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    width = max((len(r) for r in values), default=0)
    grid = [["" if v is None else v for v in row] + [""] * (width - len(row)) for row in values] or [[]]
    return {"name": name, "values": grid, "pictures": [], "tables": tables or [], "charts": [], "shapes": []}


def payload(
    *sheets: dict[str, Any], name: str = "Plan.xlsx", names: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "client": "Microsoft Office Scripts",
        "version": xw.__version__,
        "book": {"name": name, "active_sheet_index": 0, "selection": "A1"},
        "names": names or [],
        "sheets": list(sheets),
    }


def marker_entry(sheet_index: int, sheet_name: str, value: str) -> dict[str, Any]:
    """DMPlan's result marker: a sheet-scoped name, as the client reports it."""
    return {
        "name": "DMPlanResult",
        "refers_to": f'="{value}"',
        "sheet_index": None,
        "address": None,
        "book_scope": False,
        "scope_sheet_name": sheet_name,
        "scope_sheet_index": sheet_index,
    }


def payload_from_workbook(wb: openpyxl.Workbook) -> dict[str, Any]:
    """What an Excel client would send for an openpyxl workbook: values from A1, blanks as ""."""
    sheets = []
    for ws in wb.worksheets:
        values = [
            list(row)
            for row in ws.iter_rows(min_row=1, min_col=1, max_row=ws.max_row, max_col=ws.max_column, values_only=True)
        ]
        tables = [table_entry(t.displayName, t.ref) for t in ws.tables.values()]
        sheets.append(sheet_entry(ws.title, values, tables))
    return payload(*sheets)


def actions(book: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in a.items() if v is not None} for a in book.json()["actions"]]


def funcs(book: Any) -> list[str]:
    return [a["func"] for a in actions(book)]


# --------------------------------------------------------------------------- reading
@pytest.fixture
def input_workbook(tmp_path: Path) -> Path:
    """An Excel table placed away from A1, a plain sheet, blanks, numbers typed as text, stray spaces."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Inputs"
    ws["A1"] = "Segments of the spring campaign"
    rows = [
        ["segment", "customers", "prob_dm1 "],
        [" S01", 1200, 0.12],
        ["S02", 800, None],
        [3, "1,500", "12%"],
    ]
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            ws.cell(row=3 + i, column=3 + j, value=value)
    ws.add_table(OpenpyxlTable(displayName="Segments", ref="C3:E6"))
    settings = wb.create_sheet("Settings")
    for row in [["setting", "value"], ["budget", 5000], ["time_limit", None], ["solver", "highs"]]:
        settings.append(row)
    path = tmp_path / "inputs.xlsx"
    wb.save(path)
    return path


@pytest.mark.parametrize("name", ["Segments", "segments", "Settings", "SETTINGS", "Mailings"])
def test_xlwings_source_reads_like_file_source(remote: None, input_workbook: Path, name: str) -> None:
    wb = workbook.load(input_workbook, data_only=True)
    expected = workbook.FileSource(wb).table(name)
    book = xw.Book(json=payload_from_workbook(wb))
    got = xl.XlwingsSource(book).table(name)
    assert got == expected
    if name.lower() == "segments":
        assert got is not None and (got.sheet, got.header_row, got.first_column, got.excel_table) == (
            "Inputs",
            3,
            3,
            "Segments",
        )
    assert xl.XlwingsSource(book).sheet_names() == workbook.FileSource(wb).sheet_names()


def test_errors_name_the_same_cell_on_both_paths(remote: None, input_workbook: Path) -> None:
    wb = workbook.load(input_workbook, data_only=True)
    book = xw.Book(json=payload_from_workbook(wb))
    messages = []
    for source in (workbook.FileSource(wb), xl.XlwingsSource(book)):
        table = source.table("Segments")
        assert table is not None
        with pytest.raises(InputError) as err:
            table.numbers("prob_dm1")
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "cell E5" in messages[0]  # the blank under prob_dm1, in the table that starts at C3


def test_excel_errors_are_read_as_text(remote: None) -> None:
    book = xw.Book(json=payload(sheet_entry("Segments", [["segment", "customers"], ["S01", "#DIV/0!"]])))
    table = xl.XlwingsSource(book).table("Segments")
    assert table is not None
    with pytest.raises(InputError, match="DIV/0"):
        table.numbers("customers")


# --------------------------------------------------------------------------- writing
def plan_spec(name: str = "Plan", table_name: str | None = "PlanTable") -> SheetSpec:
    block = Block(
        4,
        1,
        ("Segment", "Share", "Cost"),
        [["S01", 0.5, 100.0], ["S02", 0.25, float("nan")]],
        title="Plan by segment",
        formats={"Share": "0.0%", "Cost": "#,##0.00"},
        table_name=table_name,
    )
    kpis = kpi_block(4, 6, [("Budget", 1000, "#,##0"), ("Total cost", "=SUM(C6:C7)", "#,##0.00")])
    chart = Chart("bar", block, "Segment", [Series("Share"), Series("Cost")], "Plan", "I12")
    role = "plan" if name == "Plan" else normalize(name)
    return SheetSpec(
        name, "Coupon plan", [block, kpis], [chart], notes=["Solved by DMPlan"], column_widths={1: 18}, role=role
    )


def book_with_old_result(renamed: str = "Plan") -> Any:
    """Input sheet, an earlier result (marked, under ``renamed``) and a user's sheet."""
    return xw.Book(
        json=payload(
            sheet_entry("Segments", [["segment", "customers"], ["S01", 1200]]),
            sheet_entry(renamed, [["old result"]]),
            sheet_entry("Notes", [["keep me"]]),
            names=[marker_entry(1, renamed, "coupon/plan")],
        )
    )


def write(book: Any, specs: list[SheetSpec], protected: tuple[str, ...] = ("Segments",)) -> list[str]:
    """What solve_book does after solving: plan the places, then write."""
    run = ModelRun("coupon", Status.OPTIMAL, {}, specs)
    plan = dmplan.addin.pipeline.write_plan([run], xl.existing_sheets(book), xl.taken_names(book), protected)
    return xl.write_sheets(book, plan)


def test_write_sheets_builds_under_a_temporary_name_then_swaps(remote: None) -> None:
    book = book_with_old_result()
    written = write(book, [plan_spec()])
    assert written == ["Plan"]
    acts = actions(book)
    # 1. a new sheet under a temporary name, right after the old result
    assert acts[0] == {"func": "addSheet", "args": [2, "~dmplan0"]}
    new_position = 2
    body = acts[1 : funcs(book).index("sheetDelete")]
    assert all(a.get("sheet_position") == new_position for a in body)  # everything is written to the new sheet
    # 2. values at the right addresses (0-based start_row / start_column)
    values = {(a["start_row"], a["start_column"]): a["values"] for a in body if a["func"] == "setValues"}
    assert values[(0, 0)] == [["Coupon plan"]]
    assert values[(1, 0)] == [["Solved by DMPlan"]]
    assert values[(3, 0)] == [["Plan by segment"]]
    assert values[(4, 0)] == [["Segment", "Share", "Cost"], ["S01", 0.5, 100.0], ["S02", 0.25, ""]]  # NaN -> empty
    assert values[(4, 5)] == [["Figure", "Value"], ["Budget", 1000], ["Total cost", "=SUM(C6:C7)"]]
    # 3. number formats on the data cells, bold headers, an Excel table
    formats = {
        (a["start_row"], a["start_column"], a["row_count"]): a["args"][0]
        for a in body
        if a["func"] == "setNumberFormat"
    }
    assert formats[(5, 1, 2)] == "0.0%"
    assert formats[(5, 2, 2)] == "#,##0.00"
    assert formats[(5, 6, 1)] == "#,##0"
    assert formats[(6, 6, 1)] == "#,##0.00"
    bold = [
        (a["start_row"], a["start_column"])
        for a in body
        if a["func"] == "setFontProperty" and a["args"] == ["bold", True]
    ]
    assert (4, 0) in bold and (4, 5) in bold and (0, 0) in bold
    # the Excel table takes its name only once the old sheet (with a table of that name) is gone
    table = {"func": "addTable", "args": ["$A$5:$C$7", True, "TableStyleMedium2", "dmplan_new_PlanTable"]}
    assert {**table, "sheet_position": 2} in body
    # 4. the chart over the same description (series columns, categories)
    chart = next(a for a in body if a["func"] == "addChart")
    assert chart["args"][1] == "ColumnClustered" and chart["args"][3] == "$B$5:$C$7" and chart["args"][9] == "$I$12"
    assert next(a for a in body if a["func"] == "setChartXAxisValues")["args"][2] == "$A$6:$A$7"
    # 5. only then the old result goes and the new sheet takes its name and place, with its marker
    assert acts[-4:-1] == [
        {"func": "sheetDelete", "args": [None], "sheet_position": 1},
        {"func": "setSheetName", "args": ["Plan"], "sheet_position": 1},
        {"func": "setTableName", "args": [0, "PlanTable"], "sheet_position": 1},
    ]
    assert acts[-1]["func"] == "namesAdd" and acts[-1]["args"] == ["DMPlanResult", '="coupon/plan"']
    assert [s.name for s in book.sheets] == ["Segments", "Plan", "Notes"]


def test_write_sheets_never_touches_input_sheets(remote: None) -> None:
    book = book_with_old_result()
    write(book, [plan_spec(), plan_spec("Summary", table_name=None)])
    positions = {a.get("sheet_position") for a in actions(book)}
    assert 0 not in positions  # Segments
    assert "Notes" in [s.name for s in book.sheets]
    assert [s.name for s in book.sheets] == ["Segments", "Plan", "Notes", "Summary"]


def test_a_result_named_like_an_input_sheet_goes_beside_it(remote: None) -> None:
    book = book_with_old_result()
    assert write(book, [plan_spec("Segments")]) == ["Segments (2)"]
    assert [s.name for s in book.sheets] == ["Segments", "Notes", "Segments (2)"]  # the old result went
    assert 0 not in {a.get("sheet_position") for a in actions(book)}


def test_a_renamed_result_is_replaced_under_the_users_name(remote: None) -> None:
    book = book_with_old_result(renamed="Plan Jan")
    assert write(book, [plan_spec()]) == ["Plan Jan"]
    assert [s.name for s in book.sheets] == ["Segments", "Plan Jan", "Notes"]


def test_result_table_names_stay_unique(remote: None) -> None:
    book = xw.Book(
        json=payload(
            sheet_entry("Segments", [["segment", "customers"], ["S01", 1200]], [table_entry("PlanTable", "A1:B2")]),
            sheet_entry("Plan", [["Segment"], ["S01"]], [table_entry("PlanTable_old", "A1:A2")]),
            names=[marker_entry(1, "Plan", "coupon/plan")],
        )
    )
    write(book, [plan_spec()])
    renamed = [a["args"][1] for a in actions(book) if a["func"] == "setTableName"]
    assert renamed == ["PlanTable2"]  # the input sheet's table keeps its name


def test_a_failed_write_leaves_the_old_result(remote: None, monkeypatch: pytest.MonkeyPatch) -> None:
    book = book_with_old_result()
    calls = {"n": 0}
    original = xl.render_block

    def flaky(sheet: Any, block: Block, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the second spec's first block
            raise RuntimeError("Excel went away")
        original(sheet, block, *args)

    monkeypatch.setattr(xl, "render_block", flaky)
    with pytest.raises(RuntimeError):
        write(book, [plan_spec(), plan_spec("Summary", table_name=None)])
    names = funcs(book)
    assert "setSheetName" not in names
    assert names.count("sheetDelete") == 2  # the two temporary sheets, not the old result
    assert [s.name for s in book.sheets] == ["Segments", "Plan", "Notes"]


def test_chart_ranges() -> None:
    block = Block(3, 2, ("Budget", "Conversions", "Cost", "Knee"), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    chart = Chart("scatter", block, "Budget", [Series("Conversions"), Series("Knee", rows=(1, 1))], "Pareto", "H2")
    assert xl.chart_ranges(chart) == ("C3:C6", "B4:B6")  # the one-point highlight is left to the file path
    gapped = Chart("line", block, "Budget", [Series("Conversions"), Series("Knee")], "t", "H2")
    assert xl.chart_ranges(gapped) == ("C3:C6,E3:E6", "B4:B6")
    assert xl.chart_type(chart) == "xy_scatter_lines"
    assert xl.chart_type(Chart("bar", block, "Budget", [Series("Cost")], "t", "H2", horizontal=True)) == "bar_clustered"


# --------------------------------------------------------------------------- settings from xlwings.conf
def test_run_options_from_config_sheet_and_files(remote: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(xw, "USER_CONFIG_FILE", str(tmp_path / ".xlwings" / "xlwings.conf"))
    user = tmp_path / ".myaddin" / "myaddin.conf"
    user.parent.mkdir()
    user.write_text('"INTERPRETER_WIN","C:\\dmplan\\dmplan.exe"\n"SOLVER","scip"\n"TIME LIMIT","90"\n')
    book = xw.Book(json=payload(sheet_entry("Segments", [["segment"], ["S01"]])))

    def options(book: Any) -> RunOptions:
        return resolve_options(xl.XlwingsSource(book), RunOptions(), xl.config_defaults(book))

    if xl.sys.platform != "darwin":
        assert (options(book).solver, options(book).time_limit) == ("scip", 90.0)
    conf = sheet_entry("myaddin.conf", [["Interpreter_Win", "python"], ["Time_Limit", 30], ["Solver", ""]])
    book = xw.Book(json=payload(sheet_entry("Segments", [["segment"], ["S01"]]), conf))
    assert options(book).time_limit == 30.0  # the sheet beats the user file
    # the workbook's own Settings table beats every config layer
    settings = sheet_entry("Settings", [["setting", "value"], ["time_limit", 5]])
    book = xw.Book(json=payload(sheet_entry("Segments", [["segment"], ["S01"]]), conf, settings))
    assert options(book).time_limit == 5.0
    bad = sheet_entry("myaddin.conf", [["time_limit", "soon"]])
    book = xw.Book(json=payload(bad))
    with pytest.raises(InputError, match=r"sheet 'myaddin.conf'.*time_limit 'soon'"):
        options(book)


def test_config_file_format(tmp_path: Path) -> None:
    path = tmp_path / "myaddin.conf"
    path.write_text('"Interpreter_Mac","$HOME/dmplan/dmplan"\n\n"solver","highs"\nnot a setting\n')
    config = xl.read_config_file(path)
    assert config["solver"] == "highs"
    assert config["interpreter_mac"].endswith("/dmplan/dmplan") and "$HOME" not in config["interpreter_mac"]
    assert xl.read_config_file(tmp_path / "missing.conf") == {}


# --------------------------------------------------------------------------- main() with stand-in models
class FakeAdapter:
    """A model adapter with the contract's shape, so main() is tested apart from the real models."""

    name = "coupon"
    input_tables = ("Segments",)
    other_inputs = ("Settings",)
    legacy_sheets: ClassVar[dict[str, str]] = {}
    solvers = ("highs",)
    settings = ("budget",)

    def __init__(self, error: Exception | None = None, status: Status = Status.OPTIMAL) -> None:
        self.error = error
        self.status = status
        self.options: RunOptions | None = None

    def run(self, source: Any, options: RunOptions) -> ModelRun:
        self.options = options
        table = source.table("Segments")
        if isinstance(self.error, InputError):
            raise table.error(str(self.error), 0, "customers", fix="Enter a number.")
        if self.error is not None:
            raise self.error
        return ModelRun(self.name, self.status, {"segments": len(table.rows)}, [plan_spec()])


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> FakeAdapter:
    adapter = FakeAdapter()
    monkeypatch.setattr(dmplan.addin.pipeline, "ADAPTERS", (adapter,))
    return adapter


def alerts(book: Any) -> list[list[Any]]:
    return [a["args"] for a in actions(book) if a["func"] == "alert"]


def test_main_without_model_tables_alerts(remote: None, fake_models: FakeAdapter) -> None:
    book = xw.Book(json=payload(sheet_entry("Sheet1", [["hello"]])))
    xl.main(book)
    [args] = alerts(book)
    assert "none of DMPlan's input tables" in args[0] and "template" in args[0]
    assert args[1] == "DMPlan"
    assert "addSheet" not in funcs(book)


def test_main_solves_and_writes_results(remote: None, fake_models: FakeAdapter) -> None:
    book = book_with_old_result()
    xl.main(book)
    assert alerts(book) == []
    assert funcs(book)[0] == "addSheet" and funcs(book)[-3:] == ["setSheetName", "setTableName", "namesAdd"]
    assert fake_models.options is not None and fake_models.options.progress is not None


def test_main_reports_input_errors_with_their_cell(remote: None, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = FakeAdapter(error=InputError("'lots' is not a number."))
    monkeypatch.setattr(dmplan.addin.pipeline, "ADAPTERS", (adapter,))
    book = book_with_old_result()
    xl.main(book)
    [args] = alerts(book)
    assert "sheet 'Segments'" in args[0] and "cell B2" in args[0] and "Enter a number." in args[0]
    assert args[3] == "critical"
    assert "addSheet" not in funcs(book)  # nothing written


def test_main_reports_a_model_without_plan(remote: None, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = FakeAdapter(status=Status.INFEASIBLE)
    monkeypatch.setattr(dmplan.addin.pipeline, "ADAPTERS", (adapter,))
    book = book_with_old_result()
    xl.main(book)
    [args] = alerts(book)
    assert "coupon: infeasible" in args[0]


def test_main_turns_unexpected_errors_into_a_message(remote: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dmplan.addin.pipeline, "ADAPTERS", (FakeAdapter(error=RuntimeError("solver crashed")),))
    book = book_with_old_result()
    xl.main(book)
    [args] = alerts(book)
    assert "RuntimeError: solver crashed" in args[0]


def test_status_bar_is_optional_on_the_remote_engine(remote: None) -> None:
    book = book_with_old_result()
    status = xl.StatusBar(book.app)
    status.show("DMPlan: solving")
    assert status.available is False
    status.clear()
    from dmplan.solver.common import Progress

    assert "gap 1.00%" in xl.progress_text(Progress(seconds=3, objective=99.0, bound=100.0))


# --------------------------------------------------------------------------- the real coupon model
def test_main_solves_the_coupon_template_like_the_file_path(remote: None) -> None:
    from dmplan.addin import coupon_sheets

    template = ROOT / "templates" / "dm_plan.xlsx"
    wb = workbook.load(template, data_only=True)
    file_runs = dmplan.addin.pipeline.solve_source(workbook.FileSource(wb))
    book = xw.Book(json=payload_from_workbook(wb))
    xl.main(book)
    assert alerts(book) == []
    renamed = [a["args"][0] for a in actions(book) if a["func"] == "setSheetName"]
    assert renamed == [s.name for run in file_runs for s in run.sheets]
    assert set(coupon_sheets.LEGACY_SHEETS) <= set(renamed)


# --------------------------------------------------------------------------- Robyn import (ribbon)
def hidden_name(name: str, value: str) -> dict[str, Any]:
    """A book-scoped name holding text, as the ribbon's VBA leaves it."""
    text = value.replace('"', '""')
    return {
        "name": name,
        "refers_to": f'="{text}"',
        "sheet_index": None,
        "address": None,
        "book_scope": True,
        "scope_sheet_name": None,
        "scope_sheet_index": None,
    }


def test_import_robyn_writes_the_cli_sheets_into_the_live_book(remote: None, tmp_path: Path) -> None:
    from dmplan.addin.mmm import import_robyn, robyn_sheets
    from tests.test_mmm_robyn import export, truths

    folder = export(tmp_path / "robyn's run", truths(3), new=True)  # a quote in the path
    names = [hidden_name("_DMPlanRobynFolder", str(folder)), hidden_name("_DMPlanRobynModel", "1_23_4")]
    book = xw.Book(json=payload(sheet_entry("Notes", [["keep me"]]), names=names))
    assert xl.import_robyn(book) == ["Curves", "Activities", "Settings"]
    expected = robyn_sheets(import_robyn(folder, "1_23_4"), ["Notes"], [])
    written = [a["values"] for a in actions(book) if a["func"] == "setValues"]
    assert written == [rows for _, rows in expected]  # the very rows dmplan curves robyn writes
    assert [s.name for s in book.sheets] == ["Notes", "Curves", "Activities", "Settings"]
    assert "nameDelete" in funcs(book)  # the picker's names are cleared
    [args] = alerts(book)
    assert "Written: Curves, Activities, Settings" in args[0]


def test_import_robyn_without_a_chosen_folder_says_what_to_do(remote: None) -> None:
    book = xw.Book(json=payload(sheet_entry("Notes", [["keep me"]])))
    assert xl.import_robyn(book) == []
    [args] = alerts(book)
    assert "Import Robyn curves" in args[0]
    assert "addSheet" not in funcs(book)


def test_import_robyn_reports_a_bad_model_id_in_a_message_box(remote: None, tmp_path: Path) -> None:
    from tests.test_mmm_robyn import export, truths

    folder = export(tmp_path / "run", truths(3), new=True)
    names = [hidden_name("_DMPlanRobynFolder", str(folder)), hidden_name("_DMPlanRobynModel", "9_9_9")]
    book = xw.Book(json=payload(sheet_entry("Notes", [["keep me"]]), names=names))
    assert xl.import_robyn(book) == []
    [args] = alerts(book)
    assert "9_9_9" in args[0] and args[3] == "critical"
    assert "addSheet" not in funcs(book)
