"""Worksheet functions: ``=DMPLAN()``, ``=DMPARETO()`` and ``=MIXPLAN()``.

The pure functions (:func:`dmplan_udf`, :func:`dmpareto_udf`, :func:`mixplan_udf`) take exactly what
Excel hands a UDF through xlwings (2-D lists, ``None`` for empty cells, floats for whole numbers, text
with stray spaces) and return a 2-D list to spill, or a 1x1 ``#DMPLAN! ...`` text naming the argument,
row and column of bad input. They never raise and never start a process.

They reuse the file path's parsing: each range argument becomes an :class:`dmplan.addin.tables.Table`
(``Table.from_grid``) and the scalar arguments a synthesized ``Settings`` table, handed to the models'
own readers (:func:`dmplan.addin.coupon_model.read_input`, ``dmplan.addin.mix_model.read_input``) through an in-memory
:class:`ArgumentSource`. Only the error locations differ: they name the formula argument and the row
within its range (the header is row 1).

The xlwings wrappers at the end (``DMPLAN``, ``DMPARETO``, ``MIXPLAN``) are imported by
:mod:`dmplan.addin.xl`, whose module the add-in registers as its UDF module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dmplan.addin.cells import TextNumberError, as_number, is_blank, normalize
from dmplan.addin.contract import RunOptions
from dmplan.addin.tables import Table
from dmplan.solver.common import InputError

PREFIX = "#DMPLAN!"
SHEET = "(formula argument)"
#: The mix solve inside a worksheet function stops after this many seconds unless the Rules/args say less.
MIX_TIME_LIMIT = 30.0

Grid = list[list[Any]]


class ArgumentTable(Table):
    """A table read from a formula argument: locations name the argument and the row in its range."""

    argument: str = ""

    def where(self, row: int | None = None, column: str | None = None) -> str:
        text = f"{self.argument or self.name} argument"
        if row is not None:
            text += f", row {self.row_numbers[row] if 0 <= row < len(self.row_numbers) else row + 2} of the range"
        if column is not None:
            text += f", column {column}"
        return text


class SettingsArguments(ArgumentTable):
    """The scalar arguments as a ``Settings`` table: an error on a row names that argument."""

    def where(self, row: int | None = None, column: str | None = None) -> str:
        if row is not None and 0 <= row < len(self.rows):
            return f"{self.rows[row][2]} argument"
        return "the function's arguments"


def argument_table(name: str, argument: str, grid: Any) -> ArgumentTable:
    """A table from a range argument; a totals row (a range passed as ``Table[#All]``) is left out."""
    table = ArgumentTable.from_grid(name, SHEET, as_grid(grid), detect_totals=True)
    assert isinstance(table, ArgumentTable)
    table.argument = argument
    return table


def settings_arguments(values: Sequence[tuple[str, str, Any]]) -> SettingsArguments:
    """``(setting, argument name, value)`` rows; blank values are left out (the model's default applies)."""
    grid: Grid = [["setting", "value", "argument"]]
    for key, arg, value in values:
        try:
            value = scalar(value)
        except InputError as error:
            raise InputError(error.message, where=f"{arg} argument", fix=error.fix) from None
        if not is_blank(value):
            grid.append([key, value, arg])
    table = SettingsArguments.from_grid("Settings", SHEET, grid)
    assert isinstance(table, SettingsArguments)
    table.argument = "Settings"
    return table


class ArgumentSource:
    """:class:`dmplan.addin.contract.TableSource` over tables built from formula arguments."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = {normalize(k): v for k, v in tables.items()}

    def table(self, name: str) -> Table | None:
        return self.tables.get(normalize(name))

    def sheet_names(self) -> list[str]:
        return []


def as_grid(value: Any) -> Grid:
    """What Excel passes for a range as a 2-D list (a single cell arrives as a scalar without ndim=2)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], list | tuple):
            return [list(row) for row in value]
        return [list(value)]
    return [[value]]


def scalar(value: Any) -> Any:
    """A single-value argument: a scalar, or a 1x1 (or 1-long) range."""
    if isinstance(value, list | tuple):
        flat = [v for row in as_grid(value) for v in row if not is_blank(v)]
        if len(flat) > 1:
            raise InputError(
                f"expected one value, got a range with {len(flat)} values.", fix="Pass a single cell or number."
            )
        return flat[0] if flat else None
    if isinstance(value, str):
        return value.strip()
    return value


def error_text(error: Exception) -> Grid:
    """The 1x1 spill of a failed call."""
    if isinstance(error, InputError):
        return [[f"{PREFIX} {error.describe()}"]]
    return [[f"{PREFIX} unexpected {type(error).__name__}: {error}"]]


def _number(value: Any) -> float | None:
    try:
        return as_number(scalar(value))
    except TextNumberError:
        return None  # the model's reader reports it with its location


# --------------------------------------------------------------------------- coupon
def _coupon_input(segments: Any, mailings: Any, settings: Sequence[tuple[str, str, Any]], min_share: Any = None) -> Any:
    from dmplan.addin import coupon_model

    seg = argument_table("Segments", "segments", segments)
    mail = argument_table("Mailings", "mailings", mailings)
    for table in (seg, mail):
        if not table.headers:
            raise table.error(
                "the range is empty.", fix="Select the table including its header row (e.g. Segments[#All])."
            )
    if not seg.has("customers"):
        raise seg.error(
            "column 'customers' is missing.",
            fix="Include a column 'customers' with the number of customers per segment in the range.",
        )
    rows = [*settings, ("min_share", "min_share", min_share)]
    args = settings_arguments(rows)
    share = _override_min_share(args, mail)
    if share is not None:
        _set_column(mail, "min_share", share)
    return coupon_model.read_input(ArgumentSource({"Segments": seg, "Mailings": mail, "Settings": args}))


def _override_min_share(args: SettingsArguments, mailings: Table) -> float | None:
    from dmplan.addin.tables import Settings

    settings = Settings(args)
    share = settings.number("min_share", minimum=0, maximum=1)
    if share is None:
        return None
    count = len(mailings.rows)
    if share * count > 1 + 1e-9:
        raise settings.error(
            "min_share",
            f"{count} mailings x {share:g} is more than 100% of every segment.",
            fix=f"Use a min_share of at most {1 / max(count, 1):.4g}.",
        )
    return share


def _set_column(table: Table, column: str, value: Any) -> None:
    if table.has(column):
        j = table.index(column)
        for row in table.rows:
            row[j] = value
    else:
        table.headers.append(column)
        for row in table.rows:
            row.append(value)


def dmplan_udf(segments: Any, mailings: Any, budget: Any, min_share: Any = None) -> Grid:
    """``=DMPLAN(segments, mailings, budget, [min_share])``: the share table, segments x mailings.

    Header row ``segment, <mailing ids>``; each row a segment's shares (adding up to 1).
    """
    try:
        from dmplan.solver.coupon import solve

        data = _coupon_input(segments, mailings, [("budget", "budget", budget)], min_share)
        result = solve(data.problem, solver="highs")
        problem = data.problem
        if result.share is None:
            cert = result.certificate
            return [[f"{PREFIX} no plan ({cert.status.value}): {cert.message or 'the solver found none'}"]]
        out: Grid = [["segment", *[m.id for m in problem.mailings]]]
        for s, segment in enumerate(problem.segments):
            out.append([segment, *[float(v) for v in result.share[s]]])
        return out
    except Exception as error:  # a worksheet function shows its error in the cell
        return error_text(error)


def dmpareto_udf(
    segments: Any, mailings: Any, budget_from: Any = None, budget_to: Any = None, points: Any = 20
) -> Grid:
    """``=DMPARETO(segments, mailings, budget_from, budget_to, points)``: the budget sweep.

    Header row ``budget, extra_conversions, cost_per_extra_conversion``; blank ``budget_from`` starts at
    the smallest feasible budget, blank ``budget_to`` ends where more budget buys nothing more.
    """
    try:
        from dmplan.solver.coupon import budget_sweep

        budget = _number(budget_to)
        settings = [
            ("budget", "budget_to", budget_to if budget is not None else 1e15),
            ("pareto_budget_from", "budget_from", budget_from),
            ("pareto_budget_to", "budget_to", budget_to),
            ("pareto_points", "points", 20 if is_blank(scalar(points)) else points),
        ]
        data = _coupon_input(segments, mailings, settings)
        sweep = budget_sweep(data.problem, data.pareto_points, data.pareto_from, data.pareto_to)
        out: Grid = [["budget", "extra_conversions", "cost_per_extra_conversion"]]
        for point in sweep:
            cost = point.cost_per_extra_conversion
            out.append([point.budget, point.extra_conversions, "" if cost is None else float(cost)])
        return out
    except Exception as error:
        return error_text(error)


# --------------------------------------------------------------------------- marketing mix
def mix_input(activities: Any, budget_max: Any, max_changes: Any, rules: Any = None, budget_min: Any = None) -> Any:
    """The mix model's input read by its own reader from the formula arguments."""
    from dmplan.addin import mix_model

    tables: dict[str, Table] = {"Activities": argument_table("Activities", "activities", activities)}
    if not tables["Activities"].headers:
        raise tables["Activities"].error("the range is empty.", fix="Select the table including its header row.")
    rules_grid = as_grid(rules)
    if rules_grid and any(not is_blank(v) for row in rules_grid for v in row):
        tables["Rules"] = argument_table("Rules", "rules", rules_grid)
    tables["Settings"] = settings_arguments(
        [
            ("budget_max", "budget_max", budget_max),
            ("max_changes", "max_changes", max_changes),
            ("budget_min", "budget_min", budget_min),
        ]
    )
    return mix_model.read_input(ArgumentSource(tables), RunOptions())


def region(change: float, scale: float) -> str:
    if abs(change) <= 1e-9 * max(1.0, scale):
        return "unchanged"
    return "increase" if change > 0 else "decrease"


def mixplan_udf(activities: Any, budget_max: Any, max_changes: Any, rules: Any = None, budget_min: Any = None) -> Grid:
    """``=MIXPLAN(activities, budget_max, max_changes, [rules], [budget_min])``.

    Header row ``activity, new_spend, change, region``, a row per activity, then a status row
    ``status, <status>, gap, <gap>``.
    """
    try:
        from dmplan.solver.mix import solve

        data = mix_input(activities, budget_max, max_changes, rules, budget_min)
        problem = data.problem
        result = solve(
            problem, solver=data.solver, formulation=data.formulation, time_limit=MIX_TIME_LIMIT, gap=data.gap
        )
        cert = result.certificate
        if result.change is None:
            return [[f"{PREFIX} no plan ({cert.status.value}): {cert.message or 'the solver found none'}"]]
        change = np.asarray(result.change, dtype=float)
        new = problem.baseline + change
        scale = problem.scale
        out: Grid = [["activity", "new_spend", "change", "region"]]
        for i, activity in enumerate(problem.activity):
            out.append([activity, float(new[i]), float(change[i]), region(float(change[i]), float(scale[i]))])
        gap = cert.gap
        out.append(["status", cert.status.value, "gap", "" if gap is None else float(gap)])
        return out
    except Exception as error:
        return error_text(error)


# --------------------------------------------------------------------------- xlwings wrappers
# Registered through the add-in's UDF module, dmplan. Ranges arrive as 2-D lists (ndim=2) and the
# result spills as a dynamic array; on Excel without dynamic arrays only the top-left value shows.
import xlwings as xw  # noqa: E402  (kept below the pure functions, which the tests call without Excel)


@xw.func(category="DMPlan")
@xw.arg("segments", ndim=2, doc="Segments range with its header: segment, customers, prob_<mailing> ...")
@xw.arg("mailings", ndim=2, doc="Mailings range with its header: mailing, label, coupon_value, cost_per_piece ...")
@xw.arg("budget", doc="Budget on the expected coupon cost")
@xw.arg("min_share", doc="Optional: minimum share of every mailing in every segment (overrides the table)")
def DMPLAN(segments: Any, mailings: Any, budget: Any, min_share: Any = None) -> Grid:
    """Optimal share of each segment per mailing (spills a table with a header row)."""
    return dmplan_udf(segments, mailings, budget, min_share)


@xw.func(category="DMPlan")
@xw.arg("segments", ndim=2, doc="Segments range with its header")
@xw.arg("mailings", ndim=2, doc="Mailings range with its header")
@xw.arg("budget_from", doc="First budget (blank: the smallest feasible budget)")
@xw.arg("budget_to", doc="Last budget (blank: where more budget buys nothing more)")
@xw.arg("points", doc="Number of budgets (2 to 200, default 20)")
def DMPARETO(segments: Any, mailings: Any, budget_from: Any = None, budget_to: Any = None, points: Any = 20) -> Grid:
    """Budget sweep: budget, extra conversions and cost per extra conversion (spills)."""
    return dmpareto_udf(segments, mailings, budget_from, budget_to, points)


@xw.func(category="DMPlan")
@xw.arg("activities", ndim=2, doc="Activities range with its header: activity, baseline, min_spend, max_spend ...")
@xw.arg("budget_max", doc="Most total new spend")
@xw.arg("max_changes", doc="Most activities whose spend changes")
@xw.arg("rules", ndim=2, doc="Optional Rules range with its header: rule, column, match, lower, upper, on")
@xw.arg("budget_min", doc="Optional: least total new spend")
def MIXPLAN(activities: Any, budget_max: Any, max_changes: Any, rules: Any = None, budget_min: Any = None) -> Grid:
    """Marketing-mix adjustment: activity, new spend, change, region, and a status row with the gap (spills)."""
    return mixplan_udf(activities, budget_max, max_changes, rules, budget_min)


__all__ = ["DMPARETO", "DMPLAN", "MIXPLAN", "dmpareto_udf", "dmplan_udf", "mixplan_udf"]
