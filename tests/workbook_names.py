"""Names DMPlan writes must not collide with its worksheet functions (issue 12).

Excel resolves a workbook's names before add-in functions, and LibreOffice turns ``=DMPARETO(...)``
into Err:509 when a table ``DMPareto`` exists. So no table and no defined name in a workbook DMPlan
writes may equal DMPLAN, DMPARETO or MIXPLAN, in any letter case. Tests call
:func:`assert_no_function_names` on the workbooks they write.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl

FUNCTION_NAMES = ("DMPLAN", "DMPARETO", "MIXPLAN")


def colliding_names(path: Path) -> list[str]:
    """Every table or defined name of the workbook at ``path`` that equals a function name, located."""
    wb = openpyxl.load_workbook(path, keep_vba=path.suffix.lower() in (".xlsm", ".xlam"))
    found = []
    for ws in wb.worksheets:
        for table in ws.tables.values():
            if table.displayName.upper() in FUNCTION_NAMES:
                found.append(f"{path.name}, sheet {ws.title}: table {table.displayName}")
        for name in ws.defined_names:
            if name.upper() in FUNCTION_NAMES:
                found.append(f"{path.name}, sheet {ws.title}: defined name {name}")
    for name in wb.defined_names:
        if name.upper() in FUNCTION_NAMES:
            found.append(f"{path.name}: defined name {name}")
    return found


def assert_no_function_names(path: Path) -> None:
    found = colliding_names(path)
    assert not found, "names equal to DMPlan's worksheet functions: " + "; ".join(found)
