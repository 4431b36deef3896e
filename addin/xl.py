"""The live-Excel side of DMPlan: a thin xlwings layer over :mod:`dmplan.addin.pipeline`.

The ribbon button of ``dmplan.xlam`` (and the button of the standalone demo workbook) runs
``dmplan.main()`` -> :func:`main` here. It reads the caller workbook's tables through xlwings
(:class:`XlwingsSource`), solves them with the same :func:`dmplan.addin.pipeline.solve_source` the
command line uses, and writes the same :class:`dmplan.addin.sheets.SheetSpec` result sheets where
the same :func:`dmplan.addin.pipeline.write_plan` puts them (:func:`write_sheets`).

Everything goes through the ordinary xlwings object model, so the same code runs on desktop Excel
(Windows/macOS) and on xlwings' remote engine, which the tests use to run it without Excel.

What this writer does differently from the file path (:mod:`dmplan.addin.workbook`), on purpose:

* charts take whole columns (xlwings' chart API): a series limited to some rows, such as a single
  highlighted point, is left out; the file path draws it;
* formatting an engine lacks (status bar, fonts on the remote engine) is skipped, never fatal;
* sheets are built under temporary names and swapped in only when all are written, since a live
  workbook has no "save to a temporary file" step.

Settings (see :func:`read_config`) come from the documented xlwings config layers: a sheet
``myaddin.conf`` (or ``xlwings.conf``) in the workbook, a ``myaddin.conf`` file beside it, the user
file ``~/.myaddin/myaddin.conf`` (the add-in's VBA project name is ``myaddin``) or
``~/.xlwings/xlwings.conf``. Keys: ``solver`` and ``time_limit``; a workbook's own Settings table wins.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xlwings as xw

from dmplan.addin import formulas
from dmplan.addin.cells import column_letter, is_blank, normalize
from dmplan.addin.contract import ModelRun, NoModelError, RunOptions, TableSource
from dmplan.addin.results import MARKER, ExistingSheet, WritePlan, parse_marker
from dmplan.addin.sheets import Block, Chart, SheetSpec, cell_value, resolve_refs
from dmplan.addin.tables import Table
from dmplan.solver.common import InputError, Progress

# The pipeline brings the models and their solvers (scipy, HiGHS: about a second): it is imported
# after the button's first status-bar message, not when the add-in's module loads (issue 12).
if TYPE_CHECKING:
    from dmplan.addin.pipeline import Defaults

TITLE = "DMPlan"
CONFIG_SHEETS = ("myaddin.conf", "xlwings.conf")  #: checked in this order; ``myaddin`` is the add-in's VBA project
CONFIG_FILE = "myaddin.conf"
HEADER_FILL = "#1F4E78"
HEADER_FONT_COLOR = "#FFFFFF"
NOTE_FONT_COLOR = "#595959"
TABLE_STYLE = "TableStyleMedium2"
TEMP_PREFIX = "~dmplan"
#: Excel table names are unique in a workbook: new tables get this prefix until the old sheet is gone.
TEMP_TABLE_PREFIX = "dmplan_new_"
POINTS_PER_CM = 72 / 2.54


# --------------------------------------------------------------------------- reading
class XlwingsSource:
    """:class:`dmplan.addin.contract.TableSource` over a live workbook: Excel tables first, then sheets
    of that name. An Excel table is its header and data body (a totals row is not data)."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self._cache: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        key = normalize(name)
        if key not in self._cache:
            self._cache[key] = self._read(name)
        return self._cache[key]

    def sheet_names(self) -> list[str]:
        return [sheet.name for sheet in self.book.sheets]

    def _read(self, name: str) -> Table | None:
        wanted = normalize(name)
        for sheet in self.book.sheets:
            for excel_table in sheet.tables:
                if normalize(excel_table.name) == wanted:
                    header = excel_table.header_row_range
                    if header is None:
                        raise InputError(
                            f"sheet {sheet.name!r}, table {excel_table.name}: the table has no header row.",
                            fix="Turn on its Header Row (Table Design > Header Row) and name the columns.",
                        )
                    body = excel_table.data_body_range
                    grid = _grid(header) + (_grid(body) if body is not None else [])
                    return Table.from_grid(name, sheet.name, grid, header.row, header.column, excel_table.name)
        for sheet in self.book.sheets:
            if normalize(sheet.name) == wanted:
                last = sheet.used_range.last_cell
                rng = sheet.range((1, 1), (max(last.row, 1), max(last.column, 1)))
                return Table.from_grid(name, sheet.name, _grid(rng))
        return None


def _grid(rng: Any) -> list[list[Any]]:
    """Cell values as a 2-D list; Excel errors (#N/A ...) as their text, which the readers treat as errors."""
    values = rng.options(ndim=2, err_to_str=True).value
    return [list(row) for row in values or []]


# --------------------------------------------------------------------------- writing
def existing_sheets(book: Any) -> list[ExistingSheet]:
    """Every sheet with its position, its result marker (if any) and its title cell A1."""
    out = []
    for index, sheet in enumerate(book.sheets):
        marker = None
        for name in sheet.names:
            if name.name.split("!")[-1] == MARKER:
                marker = parse_marker(name.refers_to)
        title = sheet.range("A1").value
        out.append(ExistingSheet(index, sheet.name, marker, title if isinstance(title, str) else None))
    return out


def taken_names(book: Any) -> list[str]:
    names = [t.name for sheet in book.sheets for t in sheet.tables]
    names += [n.name.split("!")[-1] for n in book.names if n.name.split("!")[-1] != MARKER]
    return names


def write_sheets(book: Any, plan: WritePlan) -> list[str]:
    """Carry out ``plan`` in the live ``book``; returns the written sheet names.

    Every sheet is first written completely under a temporary name, after the sheet it replaces (or
    at the end); only when all are written are the earlier result sheets deleted and the new ones
    renamed, so a failure leaves the previous results in place (and removes the partial ones).
    Formulas refer to the other new sheets by their temporary names, which Excel updates on rename.
    """
    written: list[tuple[Any, Any]] = []
    temp_names = {p.name: _temp_name(book, i) for i, p in enumerate(plan.placements)}
    try:
        for placement in plan.placements:
            old = _find_sheet(book, placement.replaces) if placement.replaces else None
            anchor = old if old is not None else book.sheets[len(book.sheets) - 1]
            sheet = book.sheets.add(name=temp_names[placement.name], after=anchor)
            written.append((placement, sheet))
            roles = {role: temp_names[name] for (model, role), name in plan.names.items() if model == placement.model}
            tables = {k: TEMP_TABLE_PREFIX + v for k, v in placement.tables.items()}
            render_sheet(sheet, placement.spec, tables, roles)
    except BaseException:
        for _, sheet in written:
            _cosmetic(sheet.delete)
        raise
    for name in plan.remove:
        old = _find_sheet(book, name)
        if old is not None:
            old.delete()
    for placement, sheet in written:
        sheet.name = placement.name
        for excel_table in sheet.tables:
            if excel_table.name.startswith(TEMP_TABLE_PREFIX):
                excel_table.name = excel_table.name[len(TEMP_TABLE_PREFIX) :]
        sheet.names.add(MARKER, f'="{placement.marker}"')
    return [placement.name for placement, _ in written]


def _find_sheet(book: Any, name: str) -> Any | None:
    for sheet in book.sheets:
        if sheet.name.casefold() == name.casefold():
            return sheet
    return None


def _temp_name(book: Any, i: int) -> str:
    taken = {s.name.casefold() for s in book.sheets}
    n = i
    while f"{TEMP_PREFIX}{n}".casefold() in taken:
        n += 1
    return f"{TEMP_PREFIX}{n}"


def render_sheet(
    sheet: Any, spec: SheetSpec, tables: dict[str, str] | None = None, sheets: dict[str, str] | None = None
) -> None:
    """Write one result sheet: title, notes, blocks (values, formats, Excel tables), widths, charts."""
    title = sheet.range("A1")
    title.value = spec.title
    title.font.bold = True
    _cosmetic(setattr, title.font, "size", 14)
    if spec.notes:
        cell = sheet.range((2, 1))
        cell.value = " ".join(spec.notes)
        _cosmetic(setattr, cell.font, "italic", True)
        _cosmetic(setattr, cell.font, "color", NOTE_FONT_COLOR)
    for block in spec.blocks:
        render_block(sheet, block, (tables or {}).get(block.table_name or ""), sheets or {})
    for col, width in spec.column_widths.items():
        letter = column_letter(col)
        _cosmetic(setattr, sheet.range(f"{letter}:{letter}"), "column_width", width)
    for chart in spec.charts:
        _cosmetic(add_chart, sheet, chart)


def render_block(sheet: Any, block: Block, table_name: str | None = None, sheets: dict[str, str] | None = None) -> None:
    if block.title:
        cell = sheet.range((block.top, block.left))
        cell.value = block.title
        cell.font.bold = True
    width = len(block.header)
    grid = [list(block.header), *[[cell_value(resolve_refs(v, sheets or {})) for v in row] for row in block.rows]]
    sheet.range((block.header_row, block.left)).value = grid
    header = sheet.range((block.header_row, block.left), (block.header_row, block.left + width - 1))
    header.font.bold = True
    if not block.table_name:
        _cosmetic(setattr, header, "color", HEADER_FILL)
        _cosmetic(setattr, header.font, "color", HEADER_FONT_COLOR)
    _cosmetic(setattr, header, "horizontal_alignment", "center")
    _cosmetic(setattr, header, "wrap_text", True)
    if block.rows:
        for j, name in enumerate(block.header):
            fmt = block.formats.get(name)
            if fmt:
                col = block.left + j
                sheet.range((block.first_data_row, col), (block.last_row, col)).number_format = fmt
        for (i, name), fmt in block.cell_formats.items():
            if 0 <= i < len(block.rows) and name in block.header:
                sheet.range((block.first_data_row + i, block.column_of(name))).number_format = fmt
    if block.table_name and block.rows:
        sheet.tables.add(
            source=sheet.range(block.ref),
            name=table_name or TEMP_TABLE_PREFIX + block.table_name,
            table_style_name=TABLE_STYLE,
            has_headers=True,
        )


CHART_TYPES = {
    ("bar", False, False): "column_clustered",
    ("bar", False, True): "column_stacked",
    ("bar", True, False): "bar_clustered",
    ("bar", True, True): "bar_stacked",
}


def chart_type(chart: Chart) -> str:
    """xlwings chart type for a :class:`Chart` description."""
    if chart.kind == "bar":
        return CHART_TYPES[("bar", chart.horizontal, chart.stacked)]
    return "line" if chart.kind == "line" else "xy_scatter_lines"


def chart_ranges(chart: Chart) -> tuple[str, str]:
    """(series address with header row, category/x address) of a chart over its block.

    Series limited to some rows (``Series.rows``, e.g. a highlighted point) are left out of the
    Excel chart: the xlwings chart API takes whole columns. The file path draws them.
    """
    block = chart.block
    columns = [block.column_of(s.column) for s in chart.series if s.rows is None] or [
        block.column_of(chart.series[0].column)
    ]
    first, last = block.header_row, block.last_row
    if columns == list(range(min(columns), max(columns) + 1)):
        series = f"{column_letter(min(columns))}{first}:{column_letter(max(columns))}{last}"
    else:
        series = ",".join(f"{column_letter(c)}{first}:{column_letter(c)}{last}" for c in columns)
    categories = block.column_range(chart.categories, absolute=False)
    return series, categories


def add_chart(sheet: Any, chart: Chart) -> Any:
    """A native chart over the same :class:`Chart` description the file path draws (xlwings >= 0.37.3)."""
    series, categories = chart_ranges(chart)
    xl_chart = sheet.charts.add(
        chart_type=chart_type(chart),
        source=sheet.range(series),
        plot_by="columns",
        anchor=sheet.range(chart.anchor),
        width=chart.width_cm * POINTS_PER_CM,
        height=chart.height_cm * POINTS_PER_CM,
    )
    xl_chart.set_x_axis_values(sheet.range(categories))
    xl_chart.title = chart.title
    return xl_chart


def _cosmetic(func: Callable[..., Any], *args: Any) -> None:
    """Run a formatting call that an engine may lack (remote engine, older Excel); skip it if it fails.

    Cosmetics never stop a result from being written.
    """
    with contextlib.suppress(Exception):
        func(*args)


# --------------------------------------------------------------------------- settings
def config_files(book: Any | None = None) -> list[Path]:
    """Config files, highest priority first: beside the workbook, the add-in's user file, xlwings' user file."""
    files = []
    fullname = getattr(book, "fullname", None) if book is not None else None
    if fullname and os.path.isabs(str(fullname)):
        files.append(Path(str(fullname)).parent / CONFIG_FILE)
    if sys.platform == "darwin":
        files.append(Path.home() / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / CONFIG_FILE)
    else:
        files.append(Path.home() / ".myaddin" / CONFIG_FILE)
    files.append(Path(xw.USER_CONFIG_FILE))
    return files


def read_config_file(path: Path) -> dict[str, str]:
    """An xlwings config file: lines ``"KEY","value"``; keys normalised (``Time Limit`` -> ``time_limit``)."""
    config: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return config
    for line in text.splitlines():
        values = re.findall(r'"([^"]*)"', line)
        if len(values) >= 2:
            config.setdefault(normalize(values[0]), os.path.expandvars(values[1]))
    return config


def read_config_sheet(book: Any) -> tuple[str | None, dict[str, Any]]:
    """The first config sheet of ``book`` (key in column A, value in B, from A1 down) and its entries."""
    for name in CONFIG_SHEETS:
        sheet = _find_sheet(book, name)
        if sheet is None:
            continue
        config: dict[str, Any] = {}
        last = sheet.used_range.last_cell
        for row in sheet.range((1, 1), (max(last.row, 1), 2)).options(ndim=2).value or []:
            if is_blank(row[0]):
                break
            config.setdefault(normalize(row[0]), row[1])
        return sheet.name, config
    return None, {}


def read_config(book: Any) -> dict[str, tuple[Any, str]]:
    """Merged config: key -> (value, where it came from). Sheet beats the files; files in order."""
    merged: dict[str, tuple[Any, str]] = {}
    sheet_name, sheet_config = read_config_sheet(book)
    for key, value in sheet_config.items():
        if not is_blank(value):
            merged[key] = (value, f"sheet {sheet_name!r}")
    for path in config_files(book):
        for key, value in read_config_file(path).items():
            if key not in merged and not is_blank(value):
                merged[key] = (value, str(path))
    return merged


def config_defaults(book: Any) -> Defaults:
    """The add-in's config as the pipeline's defaults (a workbook's own Settings table wins over them)."""
    from dmplan.addin.pipeline import Defaults

    config = read_config(book)
    time_limit, solver = config.get("time_limit"), config.get("solver")
    where = {key: value[1] for key, value in config.items()}
    return Defaults(
        time_limit=time_limit[0] if time_limit else None,
        solver=str(solver[0]).strip() if solver and not is_blank(solver[0]) else None,
        where=where,
    )


# --------------------------------------------------------------------------- status and messages
class StatusBar:
    """Excel's status bar as progress display; silent where the engine has none (remote engine)."""

    def __init__(self, app: Any, min_interval: float = 0.5) -> None:
        self.app = app
        self.min_interval = min_interval
        self._last = 0.0
        self.available = True

    def show(self, text: str) -> None:
        if not self.available:
            return
        try:
            self.app.status_bar = text
        except Exception:  # NotImplementedError on the remote engine, COM errors on desktop
            self.available = False
        self._last = time.monotonic()

    def progress(self, report: Progress) -> None:
        if time.monotonic() - self._last < self.min_interval:
            return
        self.show(progress_text(report))

    def clear(self) -> None:
        if self.available:
            _cosmetic(setattr, self.app, "status_bar", False)


def progress_text(report: Progress) -> str:
    parts = [f"{TITLE}: solving… {report.seconds:.0f} s"]
    if report.fraction is not None:
        parts.append(f"{100 * report.fraction:.0f}% done")
    if report.objective is not None:
        parts.append(f"best {report.objective:,.6g}")
    if report.gap is not None:
        parts.append(f"gap {100 * report.gap:.2f}%")
    if report.message:
        parts.append(report.message)
    return ", ".join(parts)


def alert(book: Any, message: str, title: str = TITLE, buttons: str = "ok", mode: str = "info") -> str | None:
    """A message box; returns the button pressed (desktop) or None (remote engine, or no UI)."""
    try:
        return book.app.alert(message, title=title, buttons=buttons, mode=mode)
    except Exception:  # last resort: the VBA side shows stderr in a message box
        print(f"{title}: {message}", file=sys.stderr)
        return None


def is_remote(book: Any) -> bool:
    return getattr(getattr(book.app, "engine", None), "name", "") in ("remote", "officejs")


# --------------------------------------------------------------------------- templates
def template_path(model: str) -> Path | None:
    """The template workbook for ``model`` ("coupon" or "mix"): the package data (wheel and checkout,
    written by ``python -m dmplan.addin.templates``), else the bundle's or the checkout's ``templates/``."""
    from dmplan.addin.templates import TEMPLATE_FILES

    name = TEMPLATE_FILES[model]
    here = Path(__file__).resolve().parent
    roots = [here / "data" / "templates", here.parent / "templates"]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        roots.insert(0, Path(frozen) / "templates")
    for root in roots:
        if (root / name).exists():
            return root / name
    return None


def insert_template(book: Any, model: str) -> list[str]:
    """Copy the template's sheets into ``book`` (desktop Excel); returns the sheet names added."""
    path = template_path(model)
    if path is None:
        raise FileNotFoundError(f"the {model} template is not installed with this copy of DMPlan")
    source = book.app.books.open(str(path))
    added = []
    try:
        for sheet in source.sheets:
            if _find_sheet(book, sheet.name) is None:
                sheet.copy(after=book.sheets[len(book.sheets) - 1])
                added.append(sheet.name)
    finally:
        source.close()
    book.activate()
    return added


def offer_template(book: Any, reason: str) -> None:
    """No model tables: explain, and on desktop Excel offer to insert a template."""
    text = (
        f"{reason}\n\nThis workbook has none of DMPlan's input tables.\n"
        "Insert a template with example data?\n"
        "Yes: coupon plan (direct mail)\nNo: marketing mix\nCancel: nothing"
    )
    if is_remote(book):
        alert(book, f"{reason}\n\nStart from a template: dmplan template coupon, or dmplan template mix.")
        return
    answer = alert(book, text, buttons="yes_no_cancel")
    model = {"yes": "coupon", "no": "mix"}.get(answer or "")
    if model is None:
        return
    try:
        added = insert_template(book, model)
    except Exception as exc:  # tell the user instead of a traceback
        alert(book, f"Could not insert the {model} template: {exc}", mode="critical")
        return
    alert(book, f"Inserted the {model} template ({', '.join(added) or 'no new sheets'}). Click Solve workbook.")


# --------------------------------------------------------------------------- ribbon entry point
def input_sheets(source: TableSource) -> list[str]:
    """Sheets holding the models' input tables, and the config sheets: never written to."""
    from dmplan.addin import pipeline

    return [*CONFIG_SHEETS, *pipeline.input_sheets(source)]


def summary_text(runs: Sequence[ModelRun], written: Sequence[str]) -> str:
    outcome = "; ".join(f"{run.model}: {run.status.value}" for run in runs)
    return f"{TITLE}: {outcome}. Results in {', '.join(written)}."


def solve_book(book: Any, status: StatusBar | None = None) -> list[ModelRun]:
    """Solve every model ``book`` holds and write its result sheets (raises InputError/NoModelError)."""
    status = status or StatusBar(book.app)
    source = XlwingsSource(book)
    status.show(f"{TITLE}: reading the workbook…")
    from dmplan.addin.pipeline import solve_source, write_plan

    fullname = str(getattr(book, "fullname", "") or "")
    folder = Path(fullname).parent if os.path.isabs(fullname) else None  # Settings paths start here
    runs = solve_source(source, RunOptions(progress=status.progress, folder=folder), config_defaults(book))
    status.show(f"{TITLE}: writing the results…")
    plan = write_plan(runs, existing_sheets(book), taken_names(book), input_sheets(source))
    written = write_sheets(book, plan)
    status.show(summary_text(runs, written))
    return runs


def main(book: Any | None = None) -> None:
    """Ribbon button / macro: solve the caller workbook; every problem ends in a message box."""
    if book is None:
        book = xw.Book.caller()
    status = StatusBar(book.app)
    try:
        runs = solve_book(book, status)
    except NoModelError as exc:
        status.clear()
        offer_template(book, str(exc))
        return
    except InputError as exc:
        status.clear()
        alert(book, f"Please check the input:\n\n{exc.describe()}", title=f"{TITLE}: input problem", mode="critical")
        return
    except Exception as exc:  # the user sees a message box, not a console traceback
        status.clear()
        alert(book, f"DMPlan stopped with an unexpected error:\n\n{type(exc).__name__}: {exc}", mode="critical")
        return
    unsolved = [run for run in runs if not run.status.has_plan]
    if unsolved:
        text = "\n".join(f"{run.model}: {run.status.value}: {run.reason or ''}" for run in unsolved)
        alert(book, f"No plan for:\n{text}\n\nThe result sheets explain why.", mode="critical")
    # the summary stays in the status bar until Excel's next action replaces it


# --------------------------------------------------------------------------- Evaluate formulas (macOS)
# xlwings runs worksheet functions only on Windows. The ribbon's Evaluate formulas button finds the
# workbook's DMPLAN / DMPARETO / MIXPLAN calls, resolves their arguments in the live book and runs the
# functions' own code (dmplan.addin.formulas over dmplan.addin.udf), writing the values in place.
@dataclass
class FoundCall:
    """A DMPlan call in a live workbook: its sheet, cell address (no $) and formula text."""

    sheet: Any
    address: str
    formula: str
    call: formulas.Call


def find_calls(book: Any) -> Iterator[FoundCall]:
    """Every DMPlan call of ``book``: formulas in cells, and those kept by an earlier evaluation.

    An array formula reports its text in every cell it covers: only its first cell (top-left in
    reading order) counts. A text cell that shows a formula's text (the templates' examples, typed
    with a leading apostrophe) has that text as its value too: it is not a call.
    """
    found: dict[tuple[str, str], FoundCall] = {}
    for name in book.names:
        if name.name.split("!")[-1].startswith(formulas.NAME_PREFIX):
            kept = formulas.kept_formula(name.refers_to)
            if kept is not None and kept[0] in [s.name for s in book.sheets]:
                sheet, address, formula = kept
                call = formulas.split_call(formula)
                assert call is not None
                found[(sheet, address)] = FoundCall(book.sheets[sheet], address, formula, call)
    for sheet in book.sheets:
        used = sheet.used_range
        texts = used.options(ndim=2).formula
        values = used.options(ndim=2).value
        seen: set[str] = set()
        for i, row in enumerate(texts):
            for j, formula in enumerate(row):
                call = formulas.split_call(formula)
                if call is None or formula in seen or values[i][j] == formula:
                    continue
                seen.add(formula)
                address = used[i, j].address.replace("$", "")
                found[(sheet.name, address)] = FoundCall(sheet, address, formula, call)
    yield from found.values()


class LiveResolver:
    """Argument texts -> values in a live book: references and names read by xlwings, the rest by Excel."""

    def __init__(self, book: Any, sheet: Any) -> None:
        self.book, self.sheet = book, sheet
        self._scratch: Any = None

    def __call__(self, text: str) -> Any:
        kind = formulas.argument_kind(text)
        if kind in ("number", "text"):
            return formulas.literal(text)
        if kind == "reference":
            return self._range(text).options(ndim=2).value
        if kind == "name":
            target = self._name(text)
            if target is not None:
                return target.options(ndim=2).value if target.count > 1 else target.value
        return self._computed(text)

    def _range(self, text: str) -> Any:
        if "!" in text:
            sheet_name, address = text.rsplit("!", 1)
            sheet_name = sheet_name.strip("'").replace("''", "'")
            return self.book.sheets[sheet_name].range(address.replace("$", ""))
        return self.sheet.range(text.replace("$", ""))

    def _name(self, text: str) -> Any:
        for name in self.book.names:
            if name.name.split("!")[-1].lower() == text.lower():
                try:
                    return name.refers_to_range
                except Exception:  # a name for a constant or a formula: Excel computes it
                    return None
        return None

    def _computed(self, text: str) -> Any:
        if self._scratch is None:
            self._scratch = self.book.sheets.add("DMPlan evaluate")
        cell = self._scratch.range("A1")
        cell.formula = f"={text}"
        return cell.value

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.delete()
            self._scratch = None


def _clear_array(cell: Any) -> None:
    """Clear the array formula ``cell`` belongs to: Excel refuses writes into part of an array."""
    with contextlib.suppress(Exception):  # engines without array formulas
        if cell.has_array:
            cell.current_array.clear_contents()


def _keep(book: Any, found: FoundCall) -> None:
    """Record ``found``'s formula in a hidden ``_DMPlanFormula<n>`` name (reusing its own if it has one)."""
    names = [n for n in book.names if n.name.split("!")[-1].startswith(formulas.NAME_PREFIX)]
    for name in names:
        kept = formulas.kept_formula(name.refers_to)
        if kept is not None and kept[:2] == (found.sheet.name, found.address):
            name.refers_to = formulas.keep_formula_text(found.sheet.name, found.address, found.formula)
            return
    taken = {n.name.split("!")[-1] for n in names}
    number = 1
    while f"{formulas.NAME_PREFIX}{number}" in taken:
        number += 1
    text = formulas.keep_formula_text(found.sheet.name, found.address, found.formula)
    added = book.names.add(f"{formulas.NAME_PREFIX}{number}", text)
    with contextlib.suppress(Exception):  # Windows; elsewhere the name stays visible in the Name Manager
        added.api.Visible = False


def evaluate_book(book: Any, status: Callable[[str], None] | None = None) -> list[tuple[str, str, str]]:
    """Evaluate every DMPlan call of ``book`` and write its values; returns (sheet, cell, outcome) rows."""
    done = []
    for found in list(find_calls(book)):
        if status is not None:
            status(f"DMPlan: evaluating {found.sheet.name}!{found.address} ({found.call.function})…")
        resolver = LiveResolver(book, found.sheet)
        try:
            grid = formulas.evaluate_call(found.call, resolver)
        finally:
            resolver.close()
        cell = found.sheet.range(found.address)
        _clear_array(cell)
        cell.options(ndim=2).value = grid
        _keep(book, found)
        first = grid[0][0] if grid and grid[0] else ""
        outcome = first if isinstance(first, str) and first.startswith("#DMPLAN!") else f"{len(grid)} rows"
        done.append((found.sheet.name, found.address, outcome))
    return done


def evaluate_formulas(book: Any | None = None) -> None:
    """Ribbon button **Evaluate formulas** (Excel for macOS, where worksheet functions do not run)."""
    if book is None:
        book = xw.Book.caller()
    status = StatusBar(book.app)
    try:
        done = evaluate_book(book, status.show)
    except Exception as exc:  # a message box, not a console traceback
        status.clear()
        alert(book, f"DMPlan could not evaluate the formulas:\n\n{type(exc).__name__}: {exc}", mode="critical")
        return
    if not done:
        status.clear()
        alert(book, "This workbook has no DMPLAN, DMPARETO or MIXPLAN formula to evaluate.")
        return
    failed = [row for row in done if row[2].startswith("#DMPLAN!")]
    status.show(
        f"{TITLE}: evaluated {len(done)} formula(s)" + (f"; {len(failed)} returned an error." if failed else ".")
    )


# --------------------------------------------------------------------------- Robyn import (ribbon)
#: Hidden names the ribbon's folder picker leaves in the workbook for :func:`import_robyn`: the button
#: runs a literal ``import dmplan; dmplan.import_robyn()`` (no file path inside a Python command).
ROBYN_FOLDER_NAME, ROBYN_MODEL_NAME = "_DMPlanRobynFolder", "_DMPlanRobynModel"


def _name_text(book: Any, name: str) -> str | None:
    """The text a hidden name holds (``="C:\\runs\\robyn"``), or None."""
    for item in book.names:
        if item.name.split("!")[-1] == name:
            text = str(item.refers_to or "").lstrip("=").strip()
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1].replace('""', '"')
            return text
    return None


def _drop_names(book: Any, *names: str) -> None:
    for item in list(book.names):
        if item.name.split("!")[-1] in names:
            _cosmetic(item.delete)


def import_robyn(book: Any | None = None) -> list[str]:
    """Ribbon button **Import Robyn curves**: the folder and model id chosen in Excel, read with the same
    code as ``dmplan curves robyn``, written as the ``Curves`` sheet (replacing an old one) plus
    ``Activities`` and ``Settings`` where the workbook has none. Returns the sheets written."""
    from dmplan.addin.mmm import import_robyn as read_robyn
    from dmplan.addin.mmm import robyn_sheets

    if book is None:
        book = xw.Book.caller()
    status = StatusBar(book.app)
    folder, model = _name_text(book, ROBYN_FOLDER_NAME), _name_text(book, ROBYN_MODEL_NAME)
    _drop_names(book, ROBYN_FOLDER_NAME, ROBYN_MODEL_NAME)
    if not folder or not model:
        alert(book, "Choose Robyn's export folder and the model id (solID) first: DMPlan > Import Robyn curves.")
        return []
    try:
        status.show(f"{TITLE}: reading Robyn's exports in {folder}…")
        imported = read_robyn(Path(folder), model)
        tables = [t.name for sheet in book.sheets for t in sheet.tables]
        sheets = robyn_sheets(imported, [s.name for s in book.sheets], tables)
        written = []
        for i, (name, rows) in enumerate(sheets):
            sheet = book.sheets.add(name=_temp_name(book, i), after=book.sheets[len(book.sheets) - 1])
            sheet.range("A1").value = rows
            old = _find_sheet(book, name)
            if old is not None:
                old.delete()
            sheet.name = name
            written.append(name)
    except InputError as exc:
        status.clear()
        alert(
            book, f"Please check Robyn's exports:\n\n{exc.describe()}", title=f"{TITLE}: input problem", mode="critical"
        )
        return []
    except Exception as exc:  # a message box, not a console traceback
        status.clear()
        alert(book, f"DMPlan could not import the curves:\n\n{type(exc).__name__}: {exc}", mode="critical")
        return []
    status.show(f"{TITLE}: imported {len(imported.curves())} Robyn curves into {', '.join(written)}.")
    alert(book, f"{imported.summary()}\n\nWritten: {', '.join(written)}. Click Solve workbook to plan on them.")
    return written
