"""The package path end to end: progress while reading and writing, refusals leave files as they were."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import openpyxl
import pytest

from dmplan.addin.package_io import solve_package
from dmplan.addin.run import RunOptions
from dmplan.addin.templates import write_template
from dmplan.addin.workbook import WorkbookError


@pytest.fixture(scope="module")
def coupon(tmp_path_factory) -> Path:
    return write_template("coupon", tmp_path_factory.mktemp("package") / "dm_plan.xlsx")


def test_progress_is_reported_while_reading_solving_and_writing(coupon, tmp_path):
    messages: list[str] = []
    out = tmp_path / "out.xlsx"
    solve_package(coupon, out, RunOptions(progress=lambda e: messages.append(e.message)))
    assert any(m.startswith("reading table Customers") for m in messages)
    assert any(m.startswith("reading Customers: 5,001 rows") for m in messages)
    assert any(m == "writing DM Mailing List" for m in messages)
    assert messages.index("writing DM Plan") > max(i for i, m in enumerate(messages) if m.startswith("reading"))
    assert any(m == "copying the input parts" for m in messages)


def test_a_result_sheet_named_like_an_input_sheet_is_refused_and_nothing_is_written(coupon, tmp_path):
    book = tmp_path / "clash.xlsx"
    wb = openpyxl.load_workbook(coupon)
    wb["Mailings"].title = "DM Plan"  # the Mailings table now lives on a sheet called DM Plan
    wb.save(book)
    before = book.read_bytes()
    with pytest.raises(WorkbookError, match="would replace an input sheet"):
        solve_package(book)
    assert book.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clash.xlsx"]


def test_the_output_keeps_the_mode_of_the_file_it_replaces(coupon, tmp_path):
    book = tmp_path / "book.xlsx"
    shutil.copy(coupon, book)
    os.chmod(book, 0o640)
    solve_package(book)
    assert book.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.xlsx"
    solve_package(book, fresh)
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask
