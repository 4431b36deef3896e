"""Input tables of the workbook contract, independent of where they were read from.

A reader (the file path, the live-Excel path, a worksheet function's argument) hands over a grid
of cell values from the header row down to the table's last row, with where it sits in the
workbook. :meth:`Table.from_grid` turns it into a :class:`Table`, applying the reading rules in one
place:

* every non-empty row under the header is read; a blank row inside the table is skipped and
  reported as a warning (the rows after it are read);
* hidden (or filtered) rows are read and reported;
* a column without a header is an error when it holds data inside the table, a warning when it
  lies to the right of the last header, and ignored when it is empty;
* values are parsed by :mod:`dmplan.addin.cells` (errors, formulas without a saved value and
  ambiguous text numbers are located errors).

Every error names the sheet, table, Excel row, column (header as typed) and cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dmplan.addin.cells import (
    ExcelError,
    NoValue,
    TextNumberError,
    as_number,
    as_text,
    column_letter,
    display,
    excel_error,
    is_blank,
    normalize,
    number_text,
)
from dmplan.solver.common import InputError

#: First-column texts that mark a totals row in a range handed over without its table (``Table[#All]``).
TOTALS_WORDS = {"total", "totals", "grand_total", "sum"}


def range_text(minimum: float | None, maximum: float | None) -> str:
    """What a fix asks for: ``between 0 and 1``, ``of 0 or more``, ``of 6 or less``."""
    if minimum is not None and maximum is not None:
        return f"between {number_text(minimum)} and {number_text(maximum)}"
    if minimum is not None:
        return f"of {number_text(minimum)} or more"
    if maximum is not None:
        return f"of {number_text(maximum)} or less"
    return ""


def out_of_range(shown: str, minimum: float | None, maximum: float | None, number: float) -> str:
    """What is wrong: ``1.5 is not between 0 and 1``, ``-3 is below the smallest value allowed, 0``."""
    if minimum is not None and maximum is not None:
        return f"{shown} is not between {number_text(minimum)} and {number_text(maximum)}."
    if minimum is not None and number < minimum:
        return f"{shown} is below the smallest value allowed, {number_text(minimum)}."
    return f"{shown} is above the largest value allowed, {number_text(maximum or 0)}."


def rows_text(rows: Sequence[int]) -> str:
    """``row 5``, ``rows 5 and 9``, ``rows 5, 9, 12 and 3 more``."""
    shown = [str(r) for r in rows[:8]]
    if len(rows) > 8:
        return f"rows {', '.join(shown)} and {len(rows) - 8} more"
    if len(shown) == 1:
        return f"row {shown[0]}"
    return f"rows {', '.join(shown[:-1])} and {shown[-1]}"


@dataclass
class Table:
    """One input table: headers, data rows (raw cell values) and where they sit in the workbook.

    ``row_numbers[i]`` is the Excel row of data row ``i``; ``column_numbers[j]`` the sheet column of
    header ``j``. ``warnings`` collects what was read but deserves the user's attention.
    """

    name: str
    sheet: str
    headers: list[str]
    rows: list[list[Any]]
    header_row: int = 1
    first_column: int = 1
    excel_table: str | None = None
    row_numbers: list[int] = field(default_factory=list)
    column_numbers: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.row_numbers:
            self.row_numbers = [self.header_row + 1 + i for i in range(len(self.rows))]
        if not self.column_numbers:
            self.column_numbers = [self.first_column + j for j in range(len(self.headers))]

    @classmethod
    def from_grid(
        cls,
        name: str,
        sheet: str,
        grid: Sequence[Sequence[Any]],
        header_row: int = 1,
        first_column: int = 1,
        excel_table: str | None = None,
        *,
        hidden_rows: Iterable[int] = (),
        merged: Iterable[tuple[int, int, int, int]] = (),
        detect_totals: bool = False,
    ) -> Table:
        """A table from a grid whose first row is the header (see the module's reading rules).

        ``hidden_rows`` are Excel row numbers; ``merged`` holds merged ranges as (first row, first
        column, last row, last column) in sheet coordinates. ``detect_totals`` skips a last row whose
        first cell says Total (a range passed as ``Table[#All]``, which includes the totals row).
        """
        table = cls(name, sheet, [], [], header_row, first_column, excel_table)
        if not grid:
            return table
        width = max(len(r) for r in grid)
        cells = [[_clean(r[j]) if j < len(r) else None for j in range(width)] for r in grid]
        header, body = cells[0], cells[1:]
        if detect_totals and body and normalize(as_text(body[-1][0] or "")) in TOTALS_WORDS:
            table.warnings.append(
                f"{table.where()}: the last row ({display(body[-1][0])}) is a totals row and was not read as data."
            )
            body = body[:-1]
        has_data = [any(not is_blank(row[j]) for row in body) for j in range(width)]
        named = [j for j in range(width) if not is_blank(header[j])]
        last_named = named[-1] if named else -1
        keep: list[int] = []
        for j in range(width):
            if not is_blank(header[j]):
                keep.append(j)
                continue
            if not has_data[j]:
                continue
            letter = column_letter(first_column + j)
            anchor = _merge_anchor(merged, header_row, first_column + j)
            if anchor is not None and anchor != first_column + j:
                owner = header[anchor - first_column] if 0 <= anchor - first_column < width else None
                raise InputError(
                    f"the header cell {letter}{header_row} is merged into {column_letter(anchor)}{header_row}"
                    f" ({display(owner)}), so column {letter} has data but no header of its own.",
                    table=name,
                    where=table.where(),
                    fix=f"Unmerge the header cells and type a header in {letter}{header_row}.",
                )
            if j < last_named:
                raise InputError(
                    f"column {letter} has data but its header cell {letter}{header_row} is empty.",
                    table=name,
                    where=table.where(),
                    fix=f"Type a header in {letter}{header_row}, or delete the column's values.",
                )
            table.warnings.append(
                f"{table.where()}: column {letter} has values but no header in {letter}{header_row}; it was ignored."
            )
        if not keep and any(has_data):
            raise InputError(
                f"the header row (row {header_row}) is empty, but there is data below it.",
                table=name,
                where=table.where(),
                fix=f"Put the column names in row {header_row}, or make the range an Excel table named {name}.",
            )
        table.headers = [as_text(header[j]) for j in keep]
        table.column_numbers = [first_column + j for j in keep]
        seen: dict[str, int] = {}
        for header_text, number in zip(table.headers, table.column_numbers, strict=True):
            key = normalize(header_text)
            if key in seen:
                raise InputError(
                    f"columns {column_letter(seen[key])} and {column_letter(number)} have the same header "
                    f"{display(header_text)}.",
                    table=name,
                    where=table.where(),
                    fix=f"Rename or delete one of them: DMPlan would not know which {header_text} to read.",
                )
            seen[key] = number
        blank_rows: list[int] = []
        for i, raw in enumerate(body):
            excel_row = header_row + 1 + i
            if all(is_blank(v) for v in raw):
                blank_rows.append(excel_row)
                continue
            table.rows.append([raw[j] for j in keep])
            table.row_numbers.append(excel_row)
        # an Excel table's range is its extent, so every blank row in it is inside; a sheet table ends
        # at its last non-empty row
        last = header_row + len(body) if excel_table else (table.row_numbers[-1] if table.rows else 0)
        inside = [r for r in blank_rows if r <= last]
        if inside and table.rows:
            table.warnings.append(f"{table.where()}: blank {rows_text(inside)} skipped; the rows below were read.")
        hidden = sorted(r for r in set(hidden_rows) if r in set(table.row_numbers))
        if hidden:
            one = len(hidden) == 1
            table.warnings.append(
                f"{table.where()}: {rows_text(hidden)} {'is' if one else 'are'} hidden or filtered out in Excel; "
                f"DMPlan read {'it' if one else 'them'} like every other row."
            )
        return table

    # ----------------------------------------------------------------- locations
    @property
    def columns(self) -> list[str]:
        """Normalised headers (computed again only when the headers change)."""
        key = tuple(self.headers)
        cached = self.__dict__.get("_columns")
        if cached is None or cached[0] != key:
            cached = (key, [normalize(h) for h in self.headers])
            self.__dict__["_columns"] = cached
        return cached[1]

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

    def header_of(self, column: str) -> str:
        """The header as the user typed it."""
        return self.headers[self.index(column)] if self.has(column) else column

    def cell(self, row: int, column: str) -> str:
        """A1 address of data row ``row`` in ``column``."""
        return f"{column_letter(self.column_numbers[self.index(column)])}{self.row_numbers[row]}"

    def where(self, row: int | None = None, column: str | None = None) -> str:
        """Human location, e.g. ``sheet 'Segments', table Segments, row 5, column 'prob_dm2' (cell C5)``."""
        text = f"sheet {self.sheet!r}, table {self.excel_table or self.name}"
        excel_row = self.row_numbers[row] if row is not None and 0 <= row < len(self.row_numbers) else None
        if excel_row is not None:
            text += f", row {excel_row}"
        if column is not None:
            text += f", column {self.header_of(column)!r}"
            if excel_row is not None and self.has(column):
                text += f" (cell {self.cell(row, column)})"  # type: ignore[arg-type]
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

    def unreadable(self, value: Any, row: int, column: str) -> InputError | None:
        """The error for a cell no reader may use: an Excel error or a formula without a saved value."""
        error = excel_error(value)
        if error is not None:
            return self.error(
                f"the cell shows the Excel error {error}.",
                row,
                column,
                fix="Fix the formula or the value so the cell shows a proper value.",
            )
        if isinstance(value, NoValue):
            return self.error(
                f"the cell holds {display(value)}: the file was saved by a program that does not calculate.",
                row,
                column,
                fix="Open the workbook in Excel and save it (Excel stores the formula's value), or type the value.",
            )
        return None

    def text(self, row: int, column: str) -> str:
        """A required text cell (ids, labels); numbers are accepted and shown without '.0'."""
        value = self.rows[row][self.index(column)]
        problem = self.unreadable(value, row, column)
        if problem is not None:
            raise problem
        if is_blank(value):
            raise self.error("the cell is empty.", row, column, fix="Enter a value.")
        return as_text(value)

    def texts(self, column: str) -> list[str]:
        return [self.text(i, column) for i in range(len(self.rows))]

    def ids(self, column: str) -> list[str]:
        """A text column whose values must be unique (case-insensitive)."""
        seen: dict[str, int] = {}
        out = self.texts(column)
        for i, value in enumerate(out):
            key = normalize(value)
            if key in seen:
                raise self.error(
                    f"duplicate id {display(value)} (also in row {self.row_numbers[seen[key]]}).",
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
        """A numeric column. Blank cells take ``default`` (an error when it is None).

        ``what`` names the value in the fix ("probability", "count of customers"); the allowed range
        is added from ``minimum``/``maximum``.
        """
        if not self.has(column):
            if default is None:
                self.index(column)  # raises the missing-column error
            return [float(default)] * len(self.rows)  # type: ignore[arg-type]
        j = self.index(column)
        return [
            self.number(
                row[j], i, column, default=default, minimum=minimum, maximum=maximum, integer=integer, what=what
            )
            for i, row in enumerate(self.rows)
        ]

    def number(
        self,
        value: Any,
        row: int,
        column: str,
        *,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
        what: str = "number",
    ) -> float:
        """One cell as a number, with the checks of :meth:`numbers` and located errors."""
        allowed = range_text(minimum, maximum)
        wanted = f"{what} {allowed}".strip()
        problem = self.unreadable(value, row, column)
        if problem is not None:
            raise problem
        if is_blank(value):
            if default is None:
                raise self.error("the cell is empty.", row, column, fix=f"Enter a {wanted}.")
            return float(default)
        try:
            number = as_number(value)
        except TextNumberError as error:
            hint = f" If you meant {error.suggestion}, type {error.suggestion}." if error.suggestion else ""
            raise self.error(
                f"{display(value)} has a decimal comma, which DMPlan does not guess at.",
                row,
                column,
                fix=f"Type the number with a decimal point.{hint}",
            ) from None
        if number is None:
            raise self.error(f"{display(value)} is not a number.", row, column, fix=f"Enter a {wanted}.")
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            problem_text = out_of_range(display(value), minimum, maximum, number)
            raise self.error(problem_text, row, column, fix=f"Enter a {wanted}.")
        if integer and number != math.floor(number):
            raise self.error(f"{display(value)} is not a whole number.", row, column, fix="Enter a whole number.")
        return number


def _clean(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, ExcelError):
        return value.strip()
    return value


def _merge_anchor(merged: Iterable[tuple[int, int, int, int]], row: int, column: int) -> int | None:
    """The first column of the merged range covering (row, column), or None."""
    for r0, c0, r1, c1 in merged:
        if r0 <= row <= r1 and c0 <= column <= c1:
            return c0
    return None


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
                    f"setting {key!r} is given twice (also in row {self.table.row_numbers[self._rows[name]]}).",
                    i,
                    "setting",
                    fix="Keep one row per setting.",
                )
            self._rows[name] = i

    def has(self, key: str) -> bool:
        return normalize(key) in self._rows and not is_blank(self.raw(key))

    def typed_keys(self) -> list[str]:
        """Every setting's key as typed."""
        if self.table is None:
            return []
        column = self.table.index("setting")
        return [as_text(self.table.rows[row][column]) for row in self._rows.values()]

    def where(self, key: str) -> str:
        """Where setting ``key`` is: its row of the Settings table."""
        if self.table is None or normalize(key) not in self._rows:
            return "Settings"
        return self.table.where(self._rows[normalize(key)], "setting")

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
        what = "whole number" if integer else "number"
        return self.table.number(
            self.raw(key), row, "value", minimum=minimum, maximum=maximum, integer=integer, what=f"{what} for {key!r}"
        )

    def text(self, key: str, default: str | None = None) -> str | None:
        if not self.has(key):
            return default
        assert self.table is not None
        return self.table.text(self._rows[normalize(key)], "value")

    def choice(self, key: str, options: Sequence[str], default: str) -> str:
        value = self.text(key)
        if value is None:
            return default
        if normalize(value) not in [normalize(o) for o in options]:
            raise self.error(key, f"{display(value)} is not a valid {key}.", fix=f"Use one of: {', '.join(options)}.")
        return normalize(value)

    def error(self, key: str, message: str, fix: str | None = None) -> InputError:
        """An error located at the value cell of setting ``key``."""
        if self.table is None or normalize(key) not in self._rows:
            return InputError(message, table="Settings", key=key, fix=fix)
        return self.table.error(message, self._rows[normalize(key)], "value", fix=fix)


def locate(error: InputError, settings: Settings, tables: dict[str, tuple[Table | None, str]]) -> InputError:
    """A model-level error (table, row key, column) as one naming the sheet, row, column and cell.

    ``tables`` maps a contract table name to the table and its id column. A setting's error lands on
    the cell that gave the value (``budget_max_ratio`` when it stands for ``budget_max``).
    """
    if error.where:
        return error
    if error.table == "Settings" and error.key:
        key = error.key
        if not settings.has(key) and settings.has(f"{key}_ratio"):
            key = f"{key}_ratio"
        return settings.error(key, error.message, error.fix)
    table, id_column = tables.get(error.table or "", (None, ""))
    if table is None:
        return error
    row = table.row_of(id_column, error.key)
    column = error.column if error.column and table.has(error.column) else None
    return table.error(error.message, row, column, error.fix)


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
