"""The package path end to end: progress while reading and writing, refusals leave files as they were."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from dmplan.addin.contract import RunOptions
from dmplan.addin.pipeline import solve_file
from dmplan.addin.templates import write_template


@pytest.fixture(scope="module")
def coupon(tmp_path_factory) -> Path:
    return write_template("coupon", tmp_path_factory.mktemp("package") / "dm_plan.xlsx")


def test_progress_is_reported_while_reading_solving_and_writing(coupon, tmp_path):
    messages: list[str] = []
    out = tmp_path / "out.xlsx"
    solve_file(coupon, out, RunOptions(progress=lambda e: messages.append(e.message)))
    assert any(m.startswith("reading table Customers") for m in messages)
    assert any(m.startswith("reading Customers: 5,001 rows") for m in messages)
    assert any(m == "writing DM Mailing List" for m in messages)
    assert messages.index("writing DM Plan") > max(i for i, m in enumerate(messages) if m.startswith("reading"))
    assert any(m == "copying the input parts" for m in messages)


def test_an_input_sheet_named_like_a_result_sheet_is_left_byte_for_byte(coupon, tmp_path):
    book = tmp_path / "clash.xlsx"
    wb = openpyxl.load_workbook(coupon)
    wb["Mailings"].title = "DM Plan"  # the Mailings table now lives on a sheet called DM Plan
    wb.save(book)
    before = part_bytes(book)
    run = solve_file(book)
    assert "DM Plan (2)" in run.sheets and "DM Plan" not in run.sheets
    after = part_bytes(book)
    sheet = next(p for p, data in before.items() if p.startswith("xl/worksheets/") and b"coupon_value" in data)
    assert after[sheet] == before[sheet]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clash.xlsx"]


def part_bytes(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i.filename) for i in zf.infolist()}


def test_the_output_keeps_the_mode_of_the_file_it_replaces(coupon, tmp_path):
    book = tmp_path / "book.xlsx"
    shutil.copy(coupon, book)
    os.chmod(book, 0o640)
    solve_file(book)
    assert book.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.xlsx"
    solve_file(book, fresh)
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask
