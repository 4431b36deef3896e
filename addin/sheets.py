"""A neutral description of result sheets: blocks of cells, Excel tables and native charts.

Models describe their result sheets with these types once; the openpyxl writer
(:mod:`dmplan.addin.workbook`) and the xlwings writer (:mod:`dmplan.addin.xl`) render the same
description, so the file path and the live-Excel path cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dmplan.addin.cells import column_letter


@dataclass(frozen=True)
class Block:
    """A rectangle of cells: an optional bold title, a header row and data rows.

    Values starting with ``=`` are written as formulas. ``formats`` maps a header to an
    Excel number format. ``table_name`` makes the block an Excel table (ListObject).
    """

    top: int
    left: int
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str | None = None
    formats: dict[str, str] = field(default_factory=dict)
    table_name: str | None = None
    cell_formats: dict[tuple[int, str], str] = field(default_factory=dict)  #: (data row, header) -> format

    def format_of(self, row: int, header: str) -> str | None:
        return self.cell_formats.get((row, header), self.formats.get(header))

    @property
    def header_row(self) -> int:
        return self.top + (1 if self.title else 0)

    @property
    def first_data_row(self) -> int:
        return self.header_row + 1

    @property
    def last_row(self) -> int:
        return self.header_row + len(self.rows)

    @property
    def right(self) -> int:
        return self.left + len(self.header) - 1

    def column_of(self, header: str) -> int:
        return self.left + list(self.header).index(header)

    def cell(self, row: int, header: str) -> str:
        """A1 address of data row ``row`` (0-based) in column ``header``."""
        return f"{column_letter(self.column_of(header))}{self.first_data_row + row}"

    def column_range(self, header: str, absolute: bool = True) -> str:
        letter = column_letter(self.column_of(header))
        d = "$" if absolute else ""
        return f"{d}{letter}{d}{self.first_data_row}:{d}{letter}{d}{self.last_row}"

    @property
    def ref(self) -> str:
        """Range of header and data, e.g. ``A3:F19``."""
        return f"{column_letter(self.left)}{self.header_row}:{column_letter(self.right)}{self.last_row}"


@dataclass(frozen=True)
class Series:
    """One chart series: the block column holding its values; ``rows`` limits it to some rows."""

    column: str
    title: str | None = None
    rows: tuple[int, int] | None = None  #: first and last data row (0-based, inclusive)
    marker_only: bool = False  #: draw points without a line (e.g. a knee marker)


@dataclass(frozen=True)
class Chart:
    """A native Excel chart over columns of a :class:`Block`."""

    kind: Literal["bar", "line", "scatter"]
    block: Block
    categories: str  #: block column for the x axis (categories or x values)
    series: Sequence[Series]
    title: str
    anchor: str  #: top-left cell, e.g. "H2"
    x_title: str = ""
    y_title: str = ""
    stacked: bool = False
    horizontal: bool = False
    width_cm: float = 18.0
    height_cm: float = 9.0
    style: int = 10


@dataclass(frozen=True)
class SheetSpec:
    """One result sheet: its usual name, its role within the model (``plan``, ``budget`` ...: the
    marker that finds it again), a title (row 1), notes (one line in row 2), blocks from row 3, charts."""

    name: str
    title: str
    blocks: Sequence[Block]
    charts: Sequence[Chart] = ()
    notes: Sequence[str] = ()
    column_widths: dict[int, float] = field(default_factory=dict)
    role: str = "plan"


def sheet_ref(role: str) -> str:
    """A placeholder for another result sheet of the same model in a formula (``'Mix Plan'!``): the
    writer puts in the sheet's final name, which the user may have changed."""
    return "{sheet:" + role + "}"


def resolve_refs(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every :func:`sheet_ref` placeholder replaced by its sheet's quoted name."""
    if isinstance(value, str) and value.startswith("=") and "{sheet:" in value:
        for role, name in names.items():
            value = value.replace(sheet_ref(role), "'" + name.replace("'", "''") + "'!")
    return value


def cell_value(value: Any) -> Any:
    """A value as both writers store it: NaN becomes an empty cell, numpy scalars plain Python."""
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def warning_items(texts: Sequence[str]) -> list[tuple[str, Any, str | None]]:
    """A key-figures row per warning: what was read but deserves the user's attention."""
    return [("Warning", text, None) for text in texts]


def kpi_block(top: int, left: int, items: Sequence[tuple[str, Any, str | None]], title: str = "Key figures") -> Block:
    """A two-column block of labelled figures; each item is (label, value or formula, number format)."""
    rows = [[label, value] for label, value, _ in items]
    formats = {(i, "Value"): fmt for i, (_, _, fmt) in enumerate(items) if fmt}
    return Block(top, left, ("Figure", "Value"), rows, title=title, cell_formats=formats)
