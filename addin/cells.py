"""Cell values as DMPlan reads them: numbers, text, Excel errors, formulas without a saved value.

Every reader (the file path, the live-Excel path, the worksheet functions) hands cells over in the
same terms, and every message shows a value the way the user sees it in Excel (``display``), never
as a Python repr. This module imports nothing from the rest of DMPlan.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from typing import Any

#: Excel's error values, as a cell shows them.
EXCEL_ERRORS = (
    "#N/A",
    "#VALUE!",
    "#DIV/0!",
    "#REF!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "#GETTING_DATA",
    "#SPILL!",
    "#CALC!",
)


class ExcelError(str):
    """An Excel error value (``#N/A`` ...) in a cell: never a number, an id or a label."""


class NoValue:
    """A cell holding a formula whose value was never saved (the file was written by a program, not Excel)."""

    def __init__(self, formula: str) -> None:
        self.formula = formula

    def __repr__(self) -> str:
        return f"NoValue({self.formula!r})"


def excel_error(value: Any) -> ExcelError | None:
    """The error value of a cell, or None. Plain text that spells an error is treated as one: Excel and
    xlwings hand errors over as such text."""
    if isinstance(value, ExcelError):
        return value
    if isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS:
        return ExcelError(value.strip().upper())
    return None


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


def display(value: Any) -> str:
    """A value as the user sees it in the cell: text quoted, whole numbers without '.0', dates as dates."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "an empty cell"
    if isinstance(value, NoValue):
        return f"the formula ={value.formula.lstrip('=')} (no saved value)"
    if isinstance(value, ExcelError):
        return str(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, numbers.Real):
        return number_text(float(value))
    return f"'{str(value).strip()}'"


def number_text(number: float) -> str:
    """A number without a trailing '.0' and without exponent noise (0.1, 1000, 1.5e-07)."""
    number = float(number)
    if math.isfinite(number) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.12g}"


# Text numbers DMPlan accepts: one reading only. Digits with an optional decimal point, thousands
# separated by commas in groups of three, an optional exponent, an optional trailing %.
_PLAIN = r"\d+(?:\.\d+)?|\.\d+"
_GROUPED = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?"
_NUMBER = re.compile(rf"^[+-]?(?:{_GROUPED}|{_PLAIN})(?:[eE][+-]?\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})*,\d+$|^[+-]?\d+,\d+$")


#: Currency signs a text number may start with ($1,000): they change nothing about its reading.
CURRENCY = "$€£¥"


class TextNumberError(ValueError):
    """Text that looks like a number but has more than one reading (a decimal comma)."""

    def __init__(self, text: str, suggestion: str | None) -> None:
        self.text = text
        self.suggestion = suggestion
        super().__init__(text)


def parse_text_number(text: str) -> float | None:
    """The number a text cell holds, or None when it is not a number.

    Raises :class:`TextNumberError` for text with a decimal comma (``0,1``, ``1,00``, ``1.000,5``):
    DMPlan reads the decimal point only, and never guesses between the two conventions.
    """
    s = text.strip().replace("\u00a0", "")
    if s[:1] in CURRENCY:
        s = s[1:].strip()
    elif s[:2] in ("-$", "-€", "-£", "+$", "+€", "+£"):
        s = s[0] + s[2:].strip()
    scale = 1.0
    if s.endswith("%"):
        s, scale = s[:-1].strip(), 0.01
    if _NUMBER.match(s):
        return float(s.replace(",", "")) * scale
    if _COMMA_DECIMAL.match(s):
        european = float(s.replace(".", "").replace(",", ".")) * scale
        raise TextNumberError(text, number_text(european))
    return None


def as_number(value: Any) -> float | None:
    """A cell value as a finite float, or None when it is not a number.

    Numbers are taken as they are, text only in its one unambiguous reading (``10%``, ``1,000``,
    ``0.25``); a decimal comma raises :class:`TextNumberError`. Booleans, dates, errors and formulas
    without a saved value are not numbers.
    """
    if isinstance(value, bool | ExcelError | NoValue):
        return None
    if isinstance(value, numbers.Real):
        number = float(value)
    elif isinstance(value, str):
        if excel_error(value) is not None:
            return None
        parsed = parse_text_number(value)
        if parsed is None:
            return None
        number = parsed
    else:
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str:
    """Ids and labels as text: numbers typed as 1 or 1.0 become '1', dates ISO dates."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return display(value)
    return str(value).strip()
