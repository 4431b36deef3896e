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
:func:`argument_kind` tells references from expressions, :func:`evaluate_call` runs a call with an
argument resolver, and :func:`kept_formula` / :func:`keep_formula_text` read and write the names
that keep formulas. :func:`dmplan.addin.xl.evaluate_formulas` walks a live xlwings book with them
(references are read through xlwings; any other expression, e.g. ``budget_max_ratio*SUM(...)``, is
computed by Excel in a scratch cell of a temporary sheet).
"""

from __future__ import annotations

import re
from collections.abc import Callable
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


# --------------------------------------------------------------------------- formulas kept in a workbook name
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
