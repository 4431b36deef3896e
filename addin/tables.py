"""Input tables of the workbook contract, independent of where they were read from.

A :class:`Table` is a header row and data rows plus where they sit in the user's workbook,
so every error can name the sheet, table, row and column. The openpyxl reader
(:mod:`dmplan.addin.workbook`), the xlwings reader (:mod:`dmplan.addin.xl`) and the worksheet functions
all build the same :class:`Table` and share the parsing below.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dmplan.solver.common import InputError


def normalize(name: Any) -> str:
    """Header and key normalisation: case-insensitive, spaces and dashes as underscores."""
    return "_".join(str(name).strip().lower().replace("-", " ").split())


def column_letter(index: int) -> str:
    """1 -> A, 27 -> AA."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass
class Table:
    """One input table: normalised column names, raw values, and its position in the workbook.

    Parameters
    ----------
    name : contract name of the table (``Segments``, ``Mailings`` ...).
    sheet : worksheet holding it.
    headers : header texts as the user typed them.
    rows : data rows (raw cell values, ``None`` for empty cells).
    header_row, first_column : 1-based position of the header's first cell.
    excel_table : name of the Excel table (ListObject) when the data came from one.
    """

    name: str
    sheet: str
    headers: list[str]
    rows: list[list[Any]]
    header_row: int = 1
    first_column: int = 1
    excel_table: str | None = None

    @classmethod
    def from_grid(
        cls,
        name: str,
        sheet: str,
        grid: Sequence[Sequence[Any]],
        header_row: int = 1,
        first_column: int = 1,
        excel_table: str | None = None,
    ) -> Table:
        """Build a table from a rectangular grid whose first row is the header.

        The header ends at its first blank cell; data ends at the first entirely blank row.
        Text cells are stripped of stray spaces.
        """
        if not grid:
            return cls(name, sheet, [], [], header_row, first_column, excel_table)
        headers: list[str] = []
        for value in grid[0]:
            if is_blank(value):
                break
            headers.append(str(value).strip())
        width = len(headers)
        rows: list[list[Any]] = []
        for raw in grid[1:]:
            row = [_clean(raw[j]) if j < len(raw) else None for j in range(width)]
            if all(is_blank(v) for v in row):
                break
            rows.append(row)
        return cls(name, sheet, headers, rows, header_row, first_column, excel_table)

    # ----------------------------------------------------------------- locations
    @property
    def columns(self) -> list[str]:
        return [normalize(h) for h in self.headers]

    def has(self, column: str) -> bool:
        return normalize(column) in self.columns

    def index(self, column: str) -> int:
        try:
            return self.columns.index(normalize(column))
        except ValueError:
            raise self.error(
                f"column {column!r} is missing (found: {', '.join(self.headers) or 'no header'}).",
                fix=f"Add a column headed {column!r} to the header row.",
            ) from None

    def where(self, row: int | None = None, column: str | None = None) -> str:
        """Human location, e.g. ``sheet 'Segments', table Segments, row 5, column 'prob_dm2' (cell C5)``."""
        table = f"table {self.excel_table or self.name}"
        text = f"sheet {self.sheet!r}, {table}"
        excel_row = self.header_row + 1 + row if row is not None else None
        if excel_row is not None:
            text += f", row {excel_row}"
        if column is not None:
            text += f", column {column!r}"
            if excel_row is not None and normalize(column) in self.columns:
                letter = column_letter(self.first_column + self.columns.index(normalize(column)))
                text += f" (cell {letter}{excel_row})"
        return text

    def error(
        self, message: str, row: int | None = None, column: str | None = None, fix: str | None = None
    ) -> InputError:
        return InputError(message, table=self.name, column=column, fix=fix, where=self.where(row, column))

    def require_rows(self) -> None:
        if not self.rows:
            raise self.error("the table has no data rows.", fix="Fill in at least one row under the header.")

    # ------------------------------------------------------------------ columns
    def values(self, column: str) -> list[Any]:
        j = self.index(column)
        return [row[j] for row in self.rows]

    def row_of(self, column: str, key: str | None) -> int | None:
        """Data row whose ``column`` holds ``key`` (case-insensitive), or None."""
        if key is None:
            return None
        wanted = normalize(key)
        return next((i for i, v in enumerate(self.values(column)) if normalize(as_text(v)) == wanted), None)

    def texts(self, column: str) -> list[str]:
        """A required text column (ids, labels); numbers are accepted and shown without '.0'."""
        out = []
        for i, value in enumerate(self.values(column)):
            if is_blank(value):
                raise self.error("the cell is empty.", i, column, fix="Enter a value.")
            out.append(as_text(value))
        return out

    def ids(self, column: str) -> list[str]:
        """A text column whose values must be unique (case-insensitive)."""
        seen: dict[str, int] = {}
        out = self.texts(column)
        for i, value in enumerate(out):
            key = normalize(value)
            if key in seen:
                raise self.error(
                    f"duplicate id {value!r} (also in row {self.header_row + 1 + seen[key]}).",
                    i,
                    column,
                    fix="Give every row its own id.",
                )
            seen[key] = i
        return out

    def numbers(
        self,
        column: str,
        *,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
        what: str = "number",
    ) -> list[float]:
        """A numeric column. Blank cells take ``default`` (an error when it is None)."""
        if not self.has(column):
            if default is None:
                self.index(column)  # raises the missing-column error
            return [float(default)] * len(self.rows)  # type: ignore[arg-type]
        out = []
        for i, value in enumerate(self.values(column)):
            out.append(self._number(value, i, column, default, minimum, maximum, integer, what))
        return out

    def _number(
        self,
        value: Any,
        row: int,
        column: str,
        default: float | None,
        minimum: float | None,
        maximum: float | None,
        integer: bool,
        what: str,
    ) -> float:
        if is_blank(value):
            if default is None:
                raise self.error("the cell is empty.", row, column, fix=f"Enter a {what}.")
            return float(default)
        number = as_number(value)
        if number is None:
            raise self.error(f"{value!r} is not a number.", row, column, fix=f"Enter a {what}.")
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            bounds = _bounds_text(minimum, maximum)
            raise self.error(f"{number:g} is outside {bounds}.", row, column, fix=f"Enter a {what} {bounds}.")
        if integer and number != math.floor(number):
            raise self.error(f"{number:g} is not a whole number.", row, column, fix="Enter a whole number.")
        return number


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"[{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f"the allowed range (at least {minimum:g})"
    return f"the allowed range (at most {maximum:g})"


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    return value


def as_number(value: Any) -> float | None:
    """A cell value as a finite float, or None when it is not a number (text like '12%' is read)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        scale = 1.0
        if text.endswith("%"):
            text, scale = text[:-1], 0.01
        try:
            number = float(text) * scale
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str:
    """Ids typed as numbers (1, 1.0) become '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass
class Settings:
    """The ``Settings`` table: ``setting`` / ``value`` pairs, looked up case-insensitively."""

    table: Table | None

    def __post_init__(self) -> None:
        self._rows: dict[str, int] = {}
        if self.table is None:
            return
        keys = self.table.texts("setting")
        self.table.index("value")
        for i, key in enumerate(keys):
            name = normalize(key)
            if name in self._rows:
                raise self.table.error(
                    f"setting {key!r} is given twice.", i, "setting", fix="Keep one row per setting."
                )
            self._rows[name] = i

    def has(self, key: str) -> bool:
        return normalize(key) in self._rows and not is_blank(self.raw(key))

    def raw(self, key: str) -> Any:
        if self.table is None or normalize(key) not in self._rows:
            return None
        return self.table.rows[self._rows[normalize(key)]][self.table.index("value")]

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
        required: bool = False,
    ) -> float | None:
        if not self.has(key):
            if required:
                if self.table is None:
                    raise InputError(
                        f"the Settings table is missing, and it must give {key!r}.",
                        table="Settings",
                        fix=f"Add a sheet 'Settings' with columns setting and value, and a row {key!r}.",
                    )
                raise self.table.error(
                    f"setting {key!r} is missing.", fix=f"Add a row with setting {key!r} and its value."
                )
            return default
        assert self.table is not None
        row = self._rows[normalize(key)]
        return self.table._number(self.raw(key), row, "value", None, minimum, maximum, integer, f"number for {key!r}")

    def text(self, key: str, default: str | None = None) -> str | None:
        return as_text(self.raw(key)) if self.has(key) else default

    def choice(self, key: str, options: Sequence[str], default: str) -> str:
        value = self.text(key)
        if value is None:
            return default
        if normalize(value) not in [normalize(o) for o in options]:
            assert self.table is not None
            raise self.table.error(
                f"{value!r} is not a valid {key}.",
                self._rows[normalize(key)],
                "value",
                fix=f"Use one of: {', '.join(options)}.",
            )
        return normalize(value)

    def error(self, key: str, message: str, fix: str | None = None) -> InputError:
        """An error located at the value cell of setting ``key``."""
        if self.table is None or normalize(key) not in self._rows:
            return InputError(message, table="Settings", key=key, fix=fix)
        return self.table.error(message, self._rows[normalize(key)], "value", fix=fix)


TableLookup = Callable[[str], "Table | None"]


def require_table(find: TableLookup, name: str) -> Table:
    """The contract table ``name`` with at least one data row, or an error saying how to add it."""
    table = find(name)
    if table is None:
        raise InputError(
            f"the workbook has no {name} table.",
            table=name,
            fix=f"Add an Excel table named {name}, or a sheet named {name} with its header in row 1.",
        )
    table.require_rows()
    return table
