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
from pathlib import Path

from openpyxl import Workbook
from openpyxl.worksheet.table import Table as ExcelTable
from openpyxl.worksheet.table import TableStyleInfo

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
    settings = [
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
