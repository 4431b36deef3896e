"""Shared builders for the robustness tests: workbooks made the way users make them, and DMPlan run as a user runs it.

Everything here is independent of DMPlan's own reading code: tables are written with openpyxl (real Excel
tables with totals rows, error cells, hidden rows, merged cells), cached values of formulas are put into the
saved XML the way Excel stores them, and DMPlan itself is only ever started as ``python -m dmplan`` in a child
process. The expected answers (``coupon_figures``, ``parse_typed``) are computed here from the rows the test
wrote, never from DMPlan's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import openpyxl
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
#: Exit codes of the contract (CONTRACT11): solved, internal error, bad input, infeasible, time limit without plan.
OK, INTERNAL, BAD_INPUT, INFEASIBLE, NO_PLAN = 0, 1, 2, 3, 4
RESULT_SHEETS = {
    "coupon": ("DM Plan", "DM Budget", "DM Pareto", "DM Mailing List"),
    "mix": ("Mix Plan", "Mix Budget", "Mix Pareto"),
}
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "http://schemas.openxmlformats.org/package/2006/content-types"
WORKBOOK_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
}


# --------------------------------------------------------------------------- running DMPlan
@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        """stderr with rich's line wrapping undone (one space between words)."""
        return " ".join(self.err.split())

    def __str__(self) -> str:
        return f"exit {self.code} after {self.seconds:.1f} s\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def dmplan(
    *args: Any, cwd: Path | None = None, timeout: float = 240, umask: int | None = None, flags: Sequence[str] = ()
) -> Run:
    """``python [FLAGS] -m dmplan ARGS`` in a child process, stdin closed, this checkout on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    preexec = (lambda: os.umask(umask) and None) if umask is not None else None
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "dmplan", *map(str, args)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def solve(book: Path, *extra: Any, summary: Path | None = None, timeout: float = 240, flags: Sequence[str] = ()) -> Run:
    args: list[Any] = ["solve", book, "-q", *extra]
    if summary is not None:
        args += ["--summary-json", summary]
    return dmplan(*args, cwd=book.parent, timeout=timeout, flags=flags)


def assert_clean(run: Run) -> None:
    assert "Traceback" not in run.err, str(run)
    assert "Traceback" not in run.out, str(run)


def assert_fails(run: Run, code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, and stderr names every needle (case-insensitive, wrapping undone)."""
    assert run.code == code, str(run)
    assert_clean(run)
    text = run.text.lower()
    for needle in needles:
        assert needle.lower() in text, f"{needle!r} not in the message\n{run}"
    assert "run again with --debug" in text or code != INTERNAL, str(run)


def assert_names_cell(run: Run, sheet: str, cell: str) -> None:
    """The message names the sheet and the cell as Excel shows it (e.g. C5), as a word of its own."""
    assert sheet.lower() in run.text.lower(), f"sheet {sheet!r} not named\n{run}"
    assert re.search(rf"(?<![A-Za-z0-9$]){cell}(?![0-9])", run.text), f"cell {cell} not named\n{run}"


def load_summary(path: Path) -> dict[str, Any]:
    """The summary JSON (its shape, ``{"models": [...], "warnings": [...]}``, has a test of its own)."""
    return dict(json.loads(path.read_text()))


def model_entry(summary: dict[str, Any], model: str) -> dict[str, Any]:
    entries = [m for m in summary["models"] if m.get("model") == model]
    assert len(entries) == 1, summary["models"]
    return entries[0]


def all_warnings(summary: dict[str, Any]) -> str:
    """Every warning of the summary (top level and per model) as one lower-case text."""
    texts = [str(w) for w in summary.get("warnings", [])]
    for entry in summary.get("models", []):
        texts += [str(w) for w in entry.get("warnings", [])]
    return " | ".join(texts).lower()


# --------------------------------------------------------------------------- the state of a folder
@dataclass(frozen=True)
class FileState:
    digest: str
    mtime_ns: int
    mode: int


def snapshot(*folders: Path) -> dict[Path, FileState]:
    """Bytes, mtime and mode of every file in the folders (not recursive)."""
    state: dict[Path, FileState] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                st = path.stat()
                state[path] = FileState(hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return state


def assert_unchanged(before: dict[Path, FileState], *folders: Path) -> None:
    """No file changed (bytes, mtime, mode), none added, none removed: no temp files left behind."""
    after = snapshot(*folders)
    assert sorted(map(str, after)) == sorted(map(str, before)), "files added or removed"
    for path, state in before.items():
        assert after[path] == state, f"{path.name} changed"


# --------------------------------------------------------------------------- templates
_TEMPLATE_CACHE: dict[str, Path] = {}


def template(kind: str, cache: Path) -> Path:
    """The template as ``dmplan template KIND`` writes it (made once per session into ``cache``)."""
    if kind not in _TEMPLATE_CACHE:
        path = cache / f"template-{kind}.xlsx"
        run = dmplan("template", kind, "-o", path, cwd=cache)
        assert run.code == 0 and path.exists(), str(run)
        _TEMPLATE_CACHE[kind] = path
    return _TEMPLATE_CACHE[kind]


def copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)
    return target


def edit(path: Path, change: Callable[[Workbook], Any], keep_vba: bool = False) -> Any:
    """Open with openpyxl (formulas kept), apply ``change``, save in place; returns what ``change`` returns."""
    wb = openpyxl.load_workbook(path, keep_vba=keep_vba)
    result = change(wb)
    wb.save(path)
    return result


# --------------------------------------------------------------------------- writing tables
Row = Sequence[Any] | None  #: ``None`` is a blank row


@dataclass
class Totals:
    """A totals row: a label in the first column and SUBTOTAL formulas (with Excel's cached values) under
    the numeric columns. ``functions`` maps a header to ``sum`` (109) or ``average`` (101)."""

    label: str = "Total"
    functions: dict[str, str] | None = None


SUBTOTAL = {"sum": 109, "average": 101, "count": 103}


def put_table(
    ws: Worksheet,
    header: Sequence[str],
    rows: Iterable[Row],
    *,
    listobject: str | None = None,
    totals: Totals | None = None,
) -> dict[str, Any]:
    """Replace the sheet's content by ``header`` (row 1) and ``rows`` (from row 2; ``None`` = blank row).

    With ``listobject`` the range becomes an Excel table of that name (its ref covers the totals row, with
    ``totalsRowCount=1``, as Excel writes it). Returns the cached values the totals formulas must show
    ({cell: value}); :func:`save_cached` puts them into the file after saving.
    """
    for name in list(ws.tables):
        del ws.tables[name]
    for merged in list(ws.merged_cells.ranges):
        ws.unmerge_cells(str(merged))
    ws.delete_rows(1, ws.max_row + 1)
    rows = list(rows)
    for j, title in enumerate(header, start=1):
        ws.cell(row=1, column=j, value=title)
    for i, row in enumerate(rows, start=2):
        if row is None:
            continue
        for j, value in enumerate(row, start=1):
            put(ws.cell(row=i, column=j), value)
    last = len(rows) + 1
    cached: dict[str, Any] = {}
    if totals is not None:
        last += 1
        ws.cell(row=last, column=1, value=totals.label)
        for j, title in enumerate(header, start=1):
            function = (totals.functions or {}).get(title)
            if function is None:
                continue
            numbers = [r[j - 1] for r in rows if r is not None and isinstance(r[j - 1], int | float)]
            value = (
                sum(numbers)
                if function == "sum"
                else (sum(numbers) / len(numbers) if function == "average" else len(numbers))
            )
            ref = f"{letter(j)}{last}"
            table_name = listobject or ws.title
            ws[ref] = f"=SUBTOTAL({SUBTOTAL[function]},{table_name}[{title}])"
            cached[ref] = value
    if listobject is not None:
        table = ExcelTable(displayName=listobject, ref=f"A1:{letter(len(header))}{last}")
        table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
        if totals is not None:
            table.totalsRowCount = 1
            table._initialise_columns()
            for column in table.tableColumns:
                function = (totals.functions or {}).get(column.name)
                if function is not None:
                    column.totalsRowFunction = function
            table.tableColumns[0].totalsRowLabel = totals.label
            table.autoFilter.ref = f"A1:{letter(len(header))}{last - 1}"
        ws.add_table(table)
    return cached


def put(cell: Any, value: Any) -> None:
    """Write a value as Excel stores it: ``Err('#N/A')`` becomes an error cell, everything else as given."""
    if isinstance(value, Err):
        cell.value = value.code
        cell.data_type = "e"
    else:
        cell.value = value


@dataclass(frozen=True)
class Err:
    """An Excel error value in a cell (``#N/A``, ``#VALUE!`` ...)."""

    code: str


def letter(index: int) -> str:
    text = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        text = chr(65 + rest) + text
    return text


def rows_of(ws: Worksheet) -> tuple[list[str], list[list[Any]]]:
    """Header and data rows of a sheet whose header is row 1 (the template's tables)."""
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    header = [h for h in grid[0] if h is not None]
    return [str(h) for h in header], [r[: len(header)] for r in grid[1:] if any(v is not None for v in r)]


# --------------------------------------------------------------------------- the saved file itself
def _sheet_part(archive: zipfile.ZipFile, title: str) -> str:
    workbook = ET.fromstring(archive.read("xl/workbook.xml"))
    rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels.iter(f"{{{PKG_REL}}}Relationship")}
    for sheet in workbook.iter(f"{{{MAIN}}}sheet"):
        if sheet.get("name") == title:
            target = str(targets[sheet.get(f"{{{REL}}}id")])
            return target.lstrip("/") if target.startswith("/") else "xl/" + target
    raise KeyError(title)


def rewrite_part(path: Path, part: str | Callable[[zipfile.ZipFile], str], change: Callable[[bytes], bytes]) -> None:
    """Rewrite one part of the zip package in place (the other parts byte for byte)."""
    with zipfile.ZipFile(path) as archive:
        name = part(archive) if callable(part) else part
        items = [(info, archive.read(info.filename)) for info in archive.infolist()]
    tmp = path.with_name(path.name + ".rewrite")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in items:
            out.writestr(info, change(data) if info.filename == name else data)
    os.replace(tmp, path)


def save_cached(path: Path, sheet: str, values: dict[str, Any]) -> None:
    """Put Excel's cached results (``<v>``) under the formulas of these cells, as Excel saves them."""
    if not values:
        return

    def change(data: bytes) -> bytes:
        ET.register_namespace("", MAIN)
        root = ET.fromstring(data)
        for cell in root.iter(f"{{{MAIN}}}c"):
            ref = cell.get("r")
            if ref in values:
                for old in cell.findall(f"{{{MAIN}}}v"):
                    cell.remove(old)
                value = values[ref]
                v = ET.SubElement(cell, f"{{{MAIN}}}v")
                if isinstance(value, str):
                    cell.set("t", "str")
                    v.text = value
                else:
                    v.text = repr(float(value)) if not float(value).is_integer() else str(int(value))
        return ET.tostring(root, xml_declaration=True, encoding="UTF-8")

    rewrite_part(path, lambda a: _sheet_part(a, sheet), change)


def corrupt_sheet(path: Path, sheet: str) -> None:
    """Cut a sheet's XML in half (what a crashed sync client leaves)."""
    rewrite_part(path, lambda a: _sheet_part(a, sheet), lambda data: data[: len(data) // 2])


def workbook_content_type(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("[Content_Types].xml"))
    for override in root.iter(f"{{{CT}}}Override"):
        if override.get("PartName") == "/xl/workbook.xml":
            return str(override.get("ContentType"))
    raise AssertionError("no content type for /xl/workbook.xml")


def has_vba(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any(name.lower().endswith("vbaproject.bin") for name in archive.namelist())


def sheet_markers(path: Path) -> dict[str, str]:
    """Sheet title -> value of its sheet-scoped ``DMPlanResult`` defined name (the result marker)."""
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("xl/workbook.xml"))
    titles = [s.get("name") for s in root.iter(f"{{{MAIN}}}sheet")]
    found: dict[str, str] = {}
    for name in root.iter(f"{{{MAIN}}}definedName"):
        if (name.get("name") or "").lower() == "dmplanresult" and name.get("localSheetId") is not None:
            found[str(titles[int(str(name.get("localSheetId")))])] = name.text or ""
    return found


def all_table_names(path: Path) -> list[str]:
    wb = openpyxl.load_workbook(path)
    return [t.displayName for ws in wb.worksheets for t in ws.tables.values()]


def defined_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        root = ET.fromstring(archive.read("xl/workbook.xml"))
    return [str(n.get("name")) for n in root.iter(f"{{{MAIN}}}definedName")]


# --------------------------------------------------------------------------- coupon books and their oracle
MAILINGS = {  # the coupon template's Mailings table: coupon value, cost per piece, min share
    "dm1": (0.0, 0.0, 0.1),
    "dm2": (1000.0, 0.0, 0.1),
    "dm3": (2000.0, 0.0, 0.1),
}
SEGMENT_HEADER = ["segment_id", "age_cat", "customers", "prob_dm1", "prob_dm2", "prob_dm3"]


def coupon_segments(template_path: Path) -> list[list[Any]]:
    """The template's 16 segments with their customer counts (counted here from its Customers sheet)."""
    wb = openpyxl.load_workbook(template_path, read_only=True)
    header, rows = rows_of(wb["Segments"])
    cheader, customers = rows_of(wb["Customers"])
    wb.close()
    h, c = {n: i for i, n in enumerate(header)}, {n: i for i, n in enumerate(cheader)}
    counts: dict[tuple[Any, Any], int] = {}
    for row in customers:
        key = (row[c["age_cat"]], row[c["freq_cat"]])
        counts[key] = counts.get(key, 0) + 1
    return [
        [
            row[h["segment_id"]],
            row[h["age_cat"]],
            counts[(row[h["age_cat"]], row[h["freq_cat"]])],
            row[h["prob_dm1"]],
            row[h["prob_dm2"]],
            row[h["prob_dm3"]],
        ]
        for row in rows
    ]


def coupon_book(
    folder: Path,
    template_path: Path,
    rows: Iterable[Row] | None = None,
    *,
    name: str = "book.xlsx",
    listobject: bool = True,
    totals: Totals | None = None,
    settings: dict[str, Any] | None = None,
    extra: Callable[[Workbook], Any] | None = None,
) -> Path:
    """The coupon template without its customer list: Segments carries the counts (``SEGMENT_HEADER``)."""
    path = copy(template_path, folder / name)
    rows = coupon_segments(template_path) if rows is None else list(rows)

    def change(wb: Workbook) -> dict[str, Any]:
        del wb["Customers"]
        cached = put_table(
            wb["Segments"], SEGMENT_HEADER, rows, listobject="Segments" if listobject else None, totals=totals
        )
        for key, value in (settings or {}).items():
            set_setting(wb, key, value)
        if extra is not None:
            extra(wb)
        return cached

    cached = edit(path, change)
    save_cached(path, "Segments", cached)
    return path


def set_setting(wb: Workbook, key: str, value: Any) -> None:
    ws = wb["Settings"]
    for row in range(2, ws.max_row + 1):
        if ws.cell(row=row, column=1).value == key:
            put(ws.cell(row=row, column=2), value)
            return
    ws.append([key, value])
    for table in ws.tables.values():
        start = table.ref.split(":")[0]
        table.ref = f"{start}:{table.ref.split(':')[1].rstrip('0123456789')}{ws.max_row}"


def setting_cell(wb: Workbook, key: str) -> str:
    ws = wb["Settings"]
    for row in range(2, ws.max_row + 1):
        if ws.cell(row=row, column=1).value == key:
            return f"B{row}"
    raise KeyError(key)


PERCENT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%\s*$")
PLAIN = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")
THOUSANDS = re.compile(r"^\s*-?\d{1,3}(?:,\d{3})+(?:\.\d+)?\s*$")


def parse_typed(value: Any) -> float | None:
    """What a cell means under the contract: a number, an unambiguous text number, else ``None`` (an error)."""
    if isinstance(value, bool) or value is None or isinstance(value, Err):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    if PERCENT.match(text):
        return float(PERCENT.match(text).group(1)) / 100  # type: ignore[union-attr]
    if PLAIN.match(text):
        return float(text)
    if THOUSANDS.match(text):
        return float(text.replace(",", ""))
    return None


def coupon_figures(rows: Iterable[Row], allocation: dict[str, dict[str, float]]) -> tuple[float, float, float]:
    """Expected conversions, extra conversions over dm1 and expected cost of ``allocation`` on ``rows``
    (``SEGMENT_HEADER`` layout, text numbers read as the contract reads them)."""
    conversions = extra = cost = 0.0
    by_id = {str(_id_text(r[0])): r for r in rows if r is not None}
    assert set(allocation) == set(by_id), f"segments read {sorted(allocation)} != written {sorted(by_id)}"
    for segment, shares in allocation.items():
        row = by_id[segment]
        n = parse_typed(row[2])
        assert n is not None
        probs = {m: parse_typed(row[3 + k]) for k, m in enumerate(MAILINGS)}
        for mailing, share in shares.items():
            p = probs[mailing]
            assert p is not None
            conversions += n * p * share
            extra += n * (p - float(probs["dm1"] or 0)) * share
            cost += n * (MAILINGS[mailing][0] * p + MAILINGS[mailing][1]) * share
    return conversions, extra, cost


def _id_text(value: Any) -> str:
    """An id as Excel shows it: 3.0 typed as 3 shows as 3."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def check_coupon_result(entry: dict[str, Any], rows: Iterable[Row]) -> None:
    """The summary's plan, recomputed from the rows the test wrote, gives the summary's own figures."""
    rows = list(rows)
    conversions, extra, cost = coupon_figures(rows, entry["allocation"])
    assert abs(conversions - entry["expected_conversions"]) <= 1e-6 * max(1.0, conversions), (conversions, entry)
    assert abs(extra - entry["objective"]) <= 1e-6 * max(1.0, extra), (extra, entry)
    assert abs(cost - entry["budget_used"]) <= 1e-6 * max(1.0, cost), (cost, entry)
    for shares in entry["allocation"].values():
        assert abs(sum(shares.values()) - 1) <= 1e-6
        assert all(shares[m] >= MAILINGS[m][2] - 1e-7 for m in MAILINGS)


def plan_sheet_rows(book: Path, sheet: str, id_header: str) -> dict[str, dict[str, Any]]:
    """The per-row table DMPlan wrote on a result sheet, read back: id -> {header: value}."""
    ws = openpyxl.load_workbook(book)[sheet]
    for table in ws.tables.values():
        cells = ws[table.ref]
        header = [str(c.value) for c in cells[0]]
        if id_header in header:
            return {
                _id_text(row[header.index(id_header)].value): {h: c.value for h, c in zip(header, row, strict=True)}
                for row in cells[1:]
            }
    raise AssertionError(f"no table with a column {id_header!r} on {sheet}")


def check_coupon_sheet(book: Path, rows: Iterable[Row]) -> None:
    """DM Plan lists exactly the segments written, each with the customer count written."""
    written = {_id_text(r[0]): parse_typed(r[2]) for r in rows if r is not None}
    shown = plan_sheet_rows(book, "DM Plan", "segment")
    assert sorted(shown) == sorted(written), (sorted(shown), sorted(written))
    for segment, count in written.items():
        assert shown[segment]["customers"] == count, (segment, shown[segment]["customers"], count)


# --------------------------------------------------------------------------- mix books
def mix_rows(template_path: Path, count: int | None = None) -> tuple[list[str], list[list[Any]]]:
    wb = openpyxl.load_workbook(template_path, read_only=True)
    header, rows = rows_of(wb["Activities"])
    wb.close()
    return header, rows[:count] if count else rows


def mix_book(
    folder: Path,
    template_path: Path,
    rows: Iterable[Row] | None = None,
    *,
    name: str = "book.xlsx",
    listobject: bool = True,
    totals: Totals | None = None,
    settings: dict[str, Any] | None = None,
    rules: Iterable[Row] | None = None,
    extra: Callable[[Workbook], Any] | None = None,
) -> Path:
    """The mix template with its Activities (and optionally Rules) replaced by these rows."""
    path = copy(template_path, folder / name)
    header, template_rows = mix_rows(template_path)
    replaced = rows is not None
    rows = template_rows if rows is None else list(rows)

    def change(wb: Workbook) -> dict[str, Any]:
        if replaced and "Curves" in wb.sheetnames:
            del wb["Curves"]  # the template's response curves belong to activities these rows replace
        cached = put_table(
            wb["Activities"], header, rows, listobject="Activities" if listobject else None, totals=totals
        )
        if rules is not None:
            put_table(wb["Rules"], ["rule", "column", "match", "lower", "upper", "on"], rules, listobject="Rules")
        for key, value in (settings or {}).items():
            set_setting(wb, key, value)
        if extra is not None:
            extra(wb)
        return cached

    cached = edit(path, change)
    save_cached(path, "Activities", cached)
    return path


def check_mix_result(entry: dict[str, Any], header: Sequence[str], rows: Iterable[Row]) -> None:
    """Every activity written is planned, within its bounds, and the baseline total is the one written."""
    h = {name: i for i, name in enumerate(header)}
    written = [r for r in rows if r is not None]
    ids = [_id_text(r[h["activity"]]) for r in written]
    assert sorted(entry["plan"]) == sorted(ids), "activities read differ from those written"
    assert entry["activities"] == len(written)
    baseline = sum(float(parse_typed(r[h["baseline"]]) or 0) for r in written)
    assert abs(entry["baseline_total"] - baseline) <= 1e-6 * baseline, (entry["baseline_total"], baseline)
    for row in written:
        new = entry["plan"][_id_text(row[h["activity"]])]
        low, high = parse_typed(row[h["min_spend"]]), parse_typed(row[h["max_spend"]])
        assert low is not None and high is not None
        assert low - 1e-6 * max(1, abs(low)) <= new <= high + 1e-6 * max(1, abs(high)), (row, new)


def check_mix_sheet(book: Path, header: Sequence[str], rows: Iterable[Row]) -> None:
    """Mix Plan lists exactly the activities written, each with the baseline written."""
    h = {name: i for i, name in enumerate(header)}
    written = {_id_text(r[h["activity"]]): parse_typed(r[h["baseline"]]) for r in rows if r is not None}
    shown = plan_sheet_rows(book, "Mix Plan", "activity")
    assert sorted(shown) == sorted(written), "activities on Mix Plan differ from those written"
    for activity, baseline in written.items():
        assert shown[activity]["baseline"] == baseline, (activity, shown[activity]["baseline"], baseline)
