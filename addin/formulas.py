"""DMPlan's worksheet formulas evaluated by DMPlan: the stand-in for worksheet functions on macOS.

xlwings runs worksheet functions only in Excel for Windows. On macOS the ribbon button
**DMPlan > Evaluate formulas** runs ``dmplan.evaluate_formulas()``: it finds the cells whose formula
calls DMPLAN, DMPARETO or MIXPLAN, works out each argument, calls the very functions the worksheet
functions call (:mod:`dmplan.addin.udf`) and writes the result into the cells from the formula's cell
on, as the function would spill it. The cells then hold values; the formula's text is kept in a
hidden workbook name (``_DMPlanFormula1`` ..., refers to ``="[Sheet]A1=DMPLAN(...)"``), so the next
click evaluates it again with the current inputs. Deleting that name (Formulas > Name Manager)
stops it.

This module is the part that needs no Excel: :func:`split_call` takes a formula apart,
:func:`argument_kind` tells references from expressions, and :func:`evaluate_call` runs a call with
an argument resolver. :func:`evaluate_book` walks a live xlwings book with it (references are read
through xlwings; any other expression, e.g. ``budget_max_ratio*SUM(...)``, is computed by Excel in a
scratch cell of a temporary sheet).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: The functions this evaluates, by their worksheet name (the ``dmplan.addin.udf`` implementations).
FUNCTION_NAMES = ("DMPLAN", "DMPARETO", "MIXPLAN")
#: Hidden workbook names keeping evaluated formulas: ``_DMPlanFormula<n>`` (never a function's name).
NAME_PREFIX = "_DMPlanFormula"

_CALL = re.compile(r"^\s*=\s*(?:@|_xludf\.|_xlfn\.)?(" + "|".join(FUNCTION_NAMES) + r")\s*\((.*)\)\s*$", re.I | re.S)
_CELL = r"\$?[A-Za-z]{1,3}\$?\d+"
_REFERENCE = re.compile(rf"^(?:(?:'(?:[^']|'')+'|[A-Za-z_][\w.]*)!)?{_CELL}(?::{_CELL})?$")
_NAME = re.compile(r"^[A-Za-z_\\][\w.]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?%?$")


@dataclass(frozen=True)
class Call:
    """A DMPlan call found in a cell: ``function`` (upper case) and its argument texts, blanks as ''."""

    function: str
    arguments: tuple[str, ...]


def split_call(formula: Any) -> Call | None:
    """``=DMPLAN(A1:C4, Mailings!A1:E4, budget)`` -> Call; None when the formula is no DMPlan call.

    Arguments are split at top-level commas, outside parentheses, braces, "strings" and 'sheet'
    names (``.Formula`` is always in English notation, so the separator is a comma).
    """
    if not isinstance(formula, str):
        return None
    match = _CALL.match(formula)
    if not match:
        return None
    body = match.group(2)
    arguments, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(body):
        if quote:
            if ch == quote:
                quote = ""  # a doubled quote closes and reopens: same result
        elif ch in "\"'":
            quote = ch
        elif ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                return None  # "=DMPLAN(a)+SUM(b)": not one call
        elif ch == "," and depth == 0:
            arguments.append(body[start:i].strip())
            start = i + 1
    if depth != 0 or quote:
        return None
    arguments.append(body[start:].strip())
    if arguments == [""]:
        arguments = []
    return Call(match.group(1).upper(), tuple(arguments))


def argument_kind(text: str) -> str:
    """'blank', 'number', 'text', 'reference' (A1 or Sheet!A1:B2), 'name' (a defined name) or 'expression'."""
    text = text.strip()
    if not text:
        return "blank"
    if _NUMBER.match(text):
        return "number"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return "text"
    if _REFERENCE.match(text):
        return "reference"
    if _NAME.match(text) and text.upper() not in ("TRUE", "FALSE"):
        return "name"
    return "expression"


def literal(text: str) -> Any:
    """The value of a number or "text" argument as Excel reads it (``10%`` is 0.1)."""
    text = text.strip()
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def functions() -> dict[str, Callable[..., list[list[Any]]]]:
    """Worksheet name -> the pure function behind the worksheet function (same code, same errors)."""
    from dmplan.addin import udf

    return {"DMPLAN": udf.dmplan_udf, "DMPARETO": udf.dmpareto_udf, "MIXPLAN": udf.mixplan_udf}


def evaluate_call(call: Call, resolve: Callable[[str], Any]) -> list[list[Any]]:
    """The spill of ``call``: each argument through ``resolve`` (blank ones are None), then the function.

    Like the worksheet function, it never raises on bad input: the result is a 1x1 ``#DMPLAN!`` text.
    """
    from dmplan.addin.udf import PREFIX, error_text

    values = []
    for position, text in enumerate(call.arguments, start=1):
        try:
            values.append(None if argument_kind(text) == "blank" else resolve(text))
        except Exception as exc:  # an argument Excel cannot compute: say which one
            return [[f"{PREFIX} argument {position} of {call.function} ({text}) could not be read: {exc}"]]
    try:
        return functions()[call.function](*values)
    except TypeError as exc:  # wrong number of arguments, as Excel would refuse the formula
        return error_text(exc)


# --------------------------------------------------------------------------- a live workbook (xlwings)
@dataclass
class Found:
    """A DMPlan call in a live workbook: its sheet, cell address (no $) and formula text."""

    sheet: Any
    address: str
    formula: str
    call: Call


def kept_formula(refers_to: Any) -> tuple[str, str, str] | None:
    """(sheet, address, formula) from a ``_DMPlanFormula`` name's ``="[Sheet]A1=DMPLAN(...)"``.

    Square brackets cannot occur in a sheet name, so they delimit it whatever else it contains.
    """
    if not isinstance(refers_to, str):
        return None
    text = refers_to.strip().removeprefix("=")
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return None
    match = re.fullmatch(r"\[([^\]]+)\]([A-Z]+\d+)(=.*)", text[1:-1].replace('""', '"'), re.S)
    if not match or split_call(match.group(3)) is None:
        return None
    return match.group(1), match.group(2), match.group(3)


def keep_formula_text(sheet: str, address: str, formula: str) -> str:
    """The ``refers_to`` of a ``_DMPlanFormula`` name (inverse of :func:`kept_formula`)."""
    return '="' + f"[{sheet}]{address}{formula}".replace('"', '""') + '"'


def find_calls(book: Any) -> Iterator[Found]:
    """Every DMPlan call of ``book``: formulas in cells, and those kept by an earlier evaluation.

    An array formula reports its text in every cell it covers: only its first cell (top-left in
    reading order) counts. A text cell that shows a formula's text (the templates' examples, typed
    with a leading apostrophe) has that text as its value too: it is not a call.
    """
    found: dict[tuple[str, str], Found] = {}
    for name in book.names:
        if name.name.split("!")[-1].startswith(NAME_PREFIX):
            kept = kept_formula(name.refers_to)
            if kept is not None and kept[0] in [s.name for s in book.sheets]:
                sheet, address, formula = kept
                call = split_call(formula)
                assert call is not None
                found[(sheet, address)] = Found(book.sheets[sheet], address, formula, call)
    for sheet in book.sheets:
        used = sheet.used_range
        formulas = used.options(ndim=2).formula
        values = used.options(ndim=2).value
        seen: set[str] = set()
        for i, row in enumerate(formulas):
            for j, formula in enumerate(row):
                call = split_call(formula)
                if call is None or formula in seen or values[i][j] == formula:
                    continue
                seen.add(formula)
                address = used[i, j].address.replace("$", "")
                found[(sheet.name, address)] = Found(sheet, address, formula, call)
    yield from found.values()


class LiveResolver:
    """Argument texts -> values in a live book: references and names read by xlwings, the rest by Excel."""

    def __init__(self, book: Any, sheet: Any) -> None:
        self.book, self.sheet = book, sheet
        self._scratch: Any = None

    def __call__(self, text: str) -> Any:
        kind = argument_kind(text)
        if kind in ("number", "text"):
            return literal(text)
        if kind == "reference":
            return self._range(text).options(ndim=2).value
        if kind == "name":
            target = self._name(text)
            if target is not None:
                return target.options(ndim=2).value if target.count > 1 else target.value
        return self._computed(text)

    def _range(self, text: str) -> Any:
        if "!" in text:
            sheet_name, address = text.rsplit("!", 1)
            sheet_name = sheet_name.strip("'").replace("''", "'")
            return self.book.sheets[sheet_name].range(address.replace("$", ""))
        return self.sheet.range(text.replace("$", ""))

    def _name(self, text: str) -> Any:
        for name in self.book.names:
            if name.name.split("!")[-1].lower() == text.lower():
                try:
                    return name.refers_to_range
                except Exception:  # a name for a constant or a formula: Excel computes it
                    return None
        return None

    def _computed(self, text: str) -> Any:
        if self._scratch is None:
            self._scratch = self.book.sheets.add("DMPlan evaluate")
        cell = self._scratch.range("A1")
        cell.formula = f"={text}"
        return cell.value

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.delete()
            self._scratch = None


def _clear_array(cell: Any) -> None:
    """Clear the array formula ``cell`` belongs to: Excel refuses writes into part of an array."""
    with contextlib.suppress(Exception):  # engines without array formulas
        if cell.has_array:
            cell.current_array.clear_contents()


def _keep(book: Any, found: Found) -> None:
    """Record ``found``'s formula in a hidden ``_DMPlanFormula<n>`` name (reusing its own if it has one)."""
    names = [n for n in book.names if n.name.split("!")[-1].startswith(NAME_PREFIX)]
    for name in names:
        kept = kept_formula(name.refers_to)
        if kept is not None and kept[:2] == (found.sheet.name, found.address):
            name.refers_to = keep_formula_text(found.sheet.name, found.address, found.formula)
            return
    taken = {n.name.split("!")[-1] for n in names}
    number = 1
    while f"{NAME_PREFIX}{number}" in taken:
        number += 1
    text = keep_formula_text(found.sheet.name, found.address, found.formula)
    added = book.names.add(f"{NAME_PREFIX}{number}", text)
    with contextlib.suppress(Exception):  # Windows; elsewhere the name stays visible in the Name Manager
        added.api.Visible = False


def evaluate_book(book: Any, status: Callable[[str], None] | None = None) -> list[tuple[str, str, str]]:
    """Evaluate every DMPlan call of ``book`` and write its values; returns (sheet, cell, outcome) rows."""
    done = []
    for found in list(find_calls(book)):
        if status is not None:
            status(f"DMPlan: evaluating {found.sheet.name}!{found.address} ({found.call.function})…")
        resolver = LiveResolver(book, found.sheet)
        try:
            grid = evaluate_call(found.call, resolver)
        finally:
            resolver.close()
        cell = found.sheet.range(found.address)
        _clear_array(cell)
        cell.options(ndim=2).value = grid
        _keep(book, found)
        first = grid[0][0] if grid and grid[0] else ""
        outcome = first if isinstance(first, str) and first.startswith("#DMPLAN!") else f"{len(grid)} rows"
        done.append((found.sheet.name, found.address, outcome))
    return done


def main(book: Any | None = None) -> None:
    """Ribbon button **Evaluate formulas**: evaluate the caller workbook's DMPlan formulas."""
    import xlwings as xw

    if book is None:
        book = xw.Book.caller()

    def status(text: str) -> None:
        with contextlib.suppress(Exception):  # engines without a status bar
            book.app.status_bar = text

    try:
        done = evaluate_book(book, status)
    except Exception as exc:  # a message box, not a console traceback
        _alert(book, f"DMPlan could not evaluate the formulas:\n\n{type(exc).__name__}: {exc}")
        return
    if not done:
        _alert(book, "This workbook has no DMPLAN, DMPARETO or MIXPLAN formula to evaluate.")
        return
    failed = [row for row in done if row[2].startswith("#DMPLAN!")]
    status(f"DMPlan evaluated {len(done)} formula(s)" + (f"; {len(failed)} returned an error." if failed else "."))


def _alert(book: Any, message: str) -> None:
    import sys

    try:
        book.app.alert(message, title="DMPlan")
    except Exception:
        print(message, file=sys.stderr)
