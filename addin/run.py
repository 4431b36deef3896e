"""One solve path for every entry point (CLI, ribbon button, templates).

A model adapter turns the contract's tables into a solver problem, solves it and describes
its result sheets. :func:`solve_source` runs every model whose tables a workbook holds;
:func:`solve_file` is the file path around it (read, solve, write atomically).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dmplan.addin.sheets import SheetSpec
from dmplan.addin.tables import Table
from dmplan.solver.common import ProgressCallback, Status


class TableSource(Protocol):
    """Where input tables come from: a workbook file (openpyxl) or a live workbook (xlwings)."""

    def table(self, name: str) -> Table | None: ...

    def sheet_names(self) -> list[str]: ...


@dataclass(frozen=True)
class RunOptions:
    """Options shared by all models; ``None`` means: use the workbook's Settings or the default."""

    time_limit: float | None = None
    solver: str | None = None
    progress: ProgressCallback | None = None


@dataclass
class ModelRun:
    """A model's outcome: its status, a JSON-ready summary and the result sheets to write."""

    model: str
    status: Status
    summary: dict[str, Any]
    sheets: list[SheetSpec] = field(default_factory=list)


class ModelAdapter(Protocol):
    name: str
    input_tables: tuple[str, ...]  #: any of them present means the workbook holds this model
    result_sheets: tuple[str, ...]

    def run(self, source: TableSource, options: RunOptions) -> ModelRun: ...


def adapters() -> list[ModelAdapter]:
    from dmplan.addin import coupon_io

    found: list[ModelAdapter] = [coupon_io.ADAPTER]
    try:
        from dmplan.addin import mix_io
    except ImportError:  # the mix model lands in its own issue
        return found
    return [*found, mix_io.ADAPTER]


def models_present(source: TableSource) -> list[ModelAdapter]:
    """Models with at least one input table; their readers name whatever else is missing."""
    return [a for a in adapters() if any(source.table(t) is not None for t in a.input_tables)]


class NoModelError(Exception):
    """The workbook holds none of the contract's input tables."""


def solve_source(source: TableSource, options: RunOptions | None = None) -> list[ModelRun]:
    """Solve every model whose input tables ``source`` holds. Raises InputError on bad input."""
    options = options or RunOptions()
    present = models_present(source)
    if not present:
        wanted = "; ".join(f"{a.name}: {', '.join(a.input_tables)}" for a in adapters())
        raise NoModelError(
            f"The workbook has none of DMPlan's input tables ({wanted}). "
            "Insert a template with `dmplan template coupon` or `dmplan template mix`."
        )
    return [adapter.run(source, options) for adapter in present]


def result_sheet_names(runs: Sequence[ModelRun]) -> list[str]:
    return [sheet.name for run in runs for sheet in run.sheets]


def solve_file(path: Path, out: Path | None = None, options: RunOptions | None = None) -> list[ModelRun]:
    """Read ``path``, solve, and write the result sheets to ``out`` (default: ``path`` itself).

    The target is written through a temporary file and renamed, and only when every model
    solved without an input error, so a failed run leaves both files untouched.
    """
    from dmplan.addin import workbook
    from dmplan.addin.ooxml import form_buttons

    values = workbook.load(path, data_only=True)
    source = workbook.FileSource(values)
    runs = solve_source(source, options)
    inputs = {t for a in models_present(source) for t in a.input_tables} | {"Settings", "Customers", "Rules"}
    target = out or path
    book = workbook.load(path, data_only=False)
    workbook.write_sheets(book, [s for run in runs for s in run.sheets], protected=_input_sheets(source, inputs))
    workbook.save_atomically(book, target, buttons=form_buttons(path))
    return runs


def _input_sheets(source: TableSource, names: set[str]) -> list[str]:
    sheets = []
    for name in names:
        table = source.table(name)
        if table is not None:
            sheets.append(table.sheet)
    return sheets
