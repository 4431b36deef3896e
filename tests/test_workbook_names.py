"""The name-collision check itself, and the workbooks this project ships."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.table import Table

from tests.test_templates import WORKBOOKS
from tests.workbook_names import assert_no_function_names, colliding_names


def test_the_check_finds_tables_and_names_in_any_case(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "DM Pareto"
    ws.append(["budget", "extra"])
    ws.append([1, 2])
    ws.add_table(Table(displayName="DMPareto", ref="A1:B2"))
    wb.defined_names["mixplan"] = DefinedName("mixplan", attr_text="'DM Pareto'!$A$1")
    wb.defined_names["budget"] = DefinedName("budget", attr_text="'DM Pareto'!$A$2")
    path = tmp_path / "clash.xlsx"
    wb.save(path)
    found = colliding_names(path)
    assert found == ["clash.xlsx, sheet DM Pareto: table DMPareto", "clash.xlsx: defined name mixplan"]
    with pytest.raises(AssertionError, match="DMPareto"):
        assert_no_function_names(path)


@pytest.mark.parametrize("path", WORKBOOKS, ids=lambda p: p.name)
def test_shipped_workbooks_have_no_name_equal_to_a_function(path: Path) -> None:
    assert_no_function_names(path)


def test_every_save_in_the_tests_is_checked(tmp_path: Path) -> None:
    """The autouse fixture in tests/conftest.py checks what DMPlan's writer saves: a clash fails the test."""
    from dmplan.addin import workbook

    wb = openpyxl.Workbook()
    wb.active.append(["budget", "extra"])
    wb.active.append([1, 2])
    wb.active.add_table(Table(displayName="MixPlan", ref="A1:B2"))
    with pytest.raises(AssertionError, match="MixPlan"):
        workbook.save_atomically(wb, tmp_path / "clash.xlsx")
    assert (tmp_path / "clash.xlsx").exists()  # written, then refused by the check
