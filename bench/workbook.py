"""``dmplan bench workbook``: a 200,000-row ``Customers`` workbook solved end to end.

The same file is solved twice in one run: by the openpyxl path (load the whole book with
cached values, solve, reload with formulas, rewrite every part) and by the package path
(:mod:`dmplan.addin.xlsx_read` streams the input tables, :mod:`dmplan.addin.xlsx_graft` writes
only the result sheets into a copy of the package). Each phase reports seconds and the peak
resident memory of a child process that runs only that path, so one path's memory does not
hide the other's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo
from rich.console import Console
from rich.table import Table

from dmplan.addin.tables import column_letter
from dmplan.solver.coupon.book import book_csv, book_problem, scored_customers

MAILINGS = (
    ("dm1", "Mailing, no coupon", 0, 0, 0.1),
    ("dm2", "Mailing with 1,000 yen coupon", 1000, 0, 0.1),
    ("dm3", "Mailing with 2,000 yen coupon", 2000, 0, 0.1),
)


def _table(wb: Workbook, name: str, header: list[str], rows: list[list[object]]) -> None:
    """A write-only sheet ``name`` holding one Excel table of the same name from A1."""
    ws = wb.create_sheet(name)
    ws.append(header)
    for row in rows:
        ws.append(row)
    ref = f"A1:{column_letter(len(header))}{1 + max(1, len(rows))}"
    table = ExcelTable(displayName=name, ref=ref)
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium9", showRowStripes=True)
    table._initialise_columns()  # write-only mode leaves the column names to the caller
    for column, title in zip(table.tableColumns, header, strict=True):
        column.name = title
    with warnings.catch_warnings():  # openpyxl warns on every write-only table, columns set or not
        warnings.filterwarnings("ignore", "In write-only mode you must add table columns manually")
        ws.add_table(table)


def large_workbook(path: Path, size: int, seed: int = 1) -> Path:
    """The coupon tables with ``size`` scored customers (``scored_customers`` of the book's data).

    Segments without a ``customers`` column (counted from the Customers table), Customers with
    ``customer_id``, ``segment`` and ``prob_dm1..3``, Mailings and Settings (budget 200 per customer).
    Written in openpyxl's write-only mode: a million cells take seconds, not minutes.
    """
    problem, customers = scored_customers(book_problem()[0], size, seed)
    assert customers.probability is not None
    wb = Workbook(write_only=True)
    segments = book_csv("visit_probability.csv")
    header = ["segment_id", "age_cat", "freq_cat", "prob_dm1", "prob_dm2", "prob_dm3"]
    _table(
        wb,
        "Segments",
        header,
        [[int(r["segment_id"]), r["age_cat"], r["freq_cat"]] + [float(r[h]) for h in header[3:]] for r in segments],
    )
    ids = [int(s) for s in problem.segments]
    probs = customers.probability.round(6).tolist()
    rows = [[i + 1, ids[s], *p] for i, (s, p) in enumerate(zip(customers.segment.tolist(), probs, strict=True))]
    _table(wb, "Customers", ["customer_id", "segment", "prob_dm1", "prob_dm2", "prob_dm3"], rows)
    _table(
        wb, "Mailings", ["mailing", "label", "coupon_value", "cost_per_piece", "min_share"], [list(m) for m in MAILINGS]
    )
    settings: list[list[object]] = [
        ["budget", float(problem.budget), ""],
        ["baseline_mailing", "dm1", ""],
        ["pareto_points", 20, ""],
        ["time_limit", 60, ""],
    ]
    _table(wb, "Settings", ["setting", "value", "help"], settings)
    wb.save(path)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=200_000, help="customers in the Customers table")
    parser.add_argument(
        "--keep", help="folder to keep the generated and solved workbooks in (default: a temporary one)"
    )


def _phases(path_kind: str, book: Path, out: Path, queue: Any) -> None:
    """One path in a child process: seconds and peak resident memory after each phase.

    read: the file to validated model input; solve: the model's run and its result sheets;
    write: the result sheets into the file (the same write plan as ``dmplan solve``).
    """
    from dmplan.addin import coupon_model, coupon_sheets, package_io, pipeline, workbook
    from dmplan.addin.contract import ModelRun, RunOptions
    from dmplan.addin.xlsx_read import Package

    marks: list[tuple[str, float, float]] = []
    start = time.perf_counter()

    def mark(phase: str) -> None:
        nonlocal start
        now = time.perf_counter()
        marks.append((phase, now - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        start = now

    options = RunOptions()
    if path_kind == "openpyxl":
        formulas = workbook.load(book, data_only=False)
        source: Any = workbook.FileSource(workbook.load(book, data_only=True), formulas)
        existing, taken = workbook.existing_sheets(formulas), workbook.taken_names(formulas)
    else:
        package = Package(book)
        source = package_io.PackageSource(package)
        existing, taken = package_io.existing_sheets(package), package_io.taken_names(package)
    data = coupon_model.read_input(source, options)
    mark("read")
    outcome = coupon_model.run_model(data, options)
    run = ModelRun("coupon", outcome.status, {}, coupon_sheets.sheets(outcome))
    mark("solve")
    protected = pipeline.input_sheets(source)
    plan = pipeline.write_plan([run], existing, taken, protected)
    if path_kind == "openpyxl":
        workbook.apply_plan(formulas, plan)
        workbook.save_atomically(formulas, out, buttons=workbook.source_buttons(book))
    else:
        package_io.write_plan(book, plan, out)
        package.close()
    mark("write")
    c = outcome.customers
    assert c is not None and c.assignment is not None
    cert = c.certificate
    queue.put((marks, cert.status.value, cert.objective, cert.bound, cert.gap, c.assignment.tobytes()))


def run(args: argparse.Namespace) -> int:
    console = Console(width=max(160, Console().width))
    with tempfile.TemporaryDirectory(prefix="dmplan-bench-") as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        book = folder / f"customers_{args.rows}.xlsx"
        started = time.perf_counter()
        large_workbook(book, args.rows)
        console.print(
            f"{book.name}: {args.rows:,} customers, {book.stat().st_size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        table = Table(title=f"dmplan solve on a {args.rows:,}-row Customers table: read, solve, write (one run)")
        for col in (
            "path",
            "read s",
            "solve s",
            "write s",
            "total s",
            "peak MB",
            "status",
            "objective",
            "proven bound",
            "gap",
            "same plan",
        ):
            table.add_column(col, justify="right")
        context = multiprocessing.get_context("fork")
        reference = None
        for kind in ("openpyxl", "package"):
            queue = context.Queue()
            child = context.Process(target=_phases, args=(kind, book, folder / f"solved_{kind}.xlsx", queue))
            child.start()
            marks, status, objective, bound, gap, plan = queue.get()
            child.join()
            reference = plan if reference is None else reference
            seconds = {phase: s for phase, s, _ in marks}
            table.add_row(
                kind,
                *(f"{seconds[p]:.2f}" for p in ("read", "solve", "write")),
                f"{sum(seconds.values()):.2f}",
                f"{max(m for _, _, m in marks):,.0f}",
                status,
                f"{objective:,.4f}",
                f"{bound:,.4f}",
                f"{gap:.2e}",
                "yes" if plan == reference else "NO",
            )
        console.print(table)
        console.print(
            "read: workbook to validated input; solve: segment LP, sweep and customer plan; write: result "
            "sheets and mailing list into the file. Peak MB: the child process's peak resident memory."
        )
    return 0
