"""Marketing-mix adjustment <-> workbook: read the contract's tables, describe the result sheets.

Input tables (see README, "Workbook contract"): ``Activities``, optionally ``Rules``, and the mix keys
of the shared ``Settings`` table. Result sheets: ``Mix Plan``, ``Mix Budget`` and ``Mix Pareto``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation

from dmplan.addin.run import ModelRun, RunOptions, TableSource
from dmplan.addin.sheets import Block, Chart, Series, SheetSpec, kpi_block
from dmplan.addin.tables import (
    Settings,
    Table,
    as_number,
    as_text,
    column_letter,
    is_blank,
    normalize,
    require_table,
)
from dmplan.solver.common import InputError
from dmplan.solver.mix import MixProblem, MixResult, Rule, solve
from dmplan.solver.mix.backends import BACKENDS
from dmplan.solver.mix.pareto import ParetoPoint, pareto_over_changes

PLAN, BUDGET, PARETO = "Mix Plan", "Mix Budget", "Mix Pareto"
ACTIVITIES, RULES = "Activities", "Rules"
RESERVED = ("activity", "baseline", "min_spend", "max_spend", "min_change", "a", "b", "c")
COMPUTED = ("new_spend", "change", "change_pct", "change_region", "revenue_before", "revenue_after")
FORMULATIONS = ("misocp", "miqp")
SOLVERS = ("auto", *BACKENDS)
KPI_TOP = 3
MONEY, PCT, SHARE, COEF = "#,##0.00", "0.0", "0.0%", "0.000000"


@dataclass
class MixInput:
    """What the workbook says: the problem, the activities' attributes and the run settings."""

    problem: MixProblem
    attributes: dict[str, list[Any]]  #: further Activities columns as typed (channel, region, week ...)
    text_attributes: list[str]  #: attributes holding text (grouping candidates for Mix Budget)
    rule_rows: list[dict[str, Any]]  #: rule, column, match, on, lower, upper as read (for the rule check)
    formulation: str
    solver: str
    time_limit: float | None
    gap: float
    pareto_points: int


# ------------------------------------------------------------------------------ reading
def _optional_number(table: Table, row: int, column: str) -> float | None:
    if not table.has(column):
        return None
    value = table.rows[row][table.index(column)]
    if is_blank(value):
        return None
    number = as_number(value)
    if number is None:
        raise table.error(f"{value!r} is not a number.", row, column, fix="Enter a number or leave the cell blank.")
    return number


def _same(value: Any, match: Any) -> bool:
    """Case-insensitive equality of a cell and a rule's match value (numbers as typed: 3 == '3')."""
    return not is_blank(value) and as_text(value).lower() == as_text(match).lower()


def _is_text_column(values: list[Any]) -> bool:
    return any(not is_blank(v) and as_number(v) is None for v in values)


def read_rules(table: Table, activities: Table, n: int) -> tuple[list[Rule], list[dict[str, Any]]]:
    """The Rules table as solver rules; every error names the Rules (or Activities) cell."""
    names = table.ids("rule")
    columns = table.texts("column")
    matches = table.values("match") if table.has("match") else [None] * len(names)
    ons = table.values("on") if table.has("on") else [None] * len(names)
    rules: list[Rule] = []
    rows: list[dict[str, Any]] = []
    for r, (name, column) in enumerate(zip(names, columns, strict=True)):
        if not activities.has(column):
            raise table.error(
                f"rule {name!r} names column {column!r}, which the Activities table does not have.",
                r,
                "column",
                fix=f"Use one of the Activities columns: {', '.join(activities.headers)}.",
            )
        on = "spend" if is_blank(ons[r]) else as_text(ons[r]).lower()
        if on not in ("spend", "change"):
            raise table.error(f"{ons[r]!r} is not 'spend' or 'change'.", r, "on", fix="Use spend or change.")
        lower, upper = _optional_number(table, r, "lower"), _optional_number(table, r, "upper")
        if lower is not None and upper is not None and lower > upper:
            raise table.error(
                f"rule {name!r}: lower {lower:,.6g} is above upper {upper:,.6g}.",
                r,
                "lower",
                fix="Make lower <= upper (or leave one of them blank).",
            )
        match = matches[r]
        if is_blank(match):
            try:
                weights = np.array(activities.numbers(column), dtype=float)
            except InputError as error:
                raise table.error(
                    f"rule {name!r} has no match value, so column {column!r} must hold numbers (weights), but "
                    f"{error.where}: {error.message}",
                    r,
                    "match",
                    fix=f"Enter the value of {column!r} the rule applies to (e.g. TV), or name a numeric column.",
                ) from None
        else:
            weights = np.array([1.0 if _same(v, match) else 0.0 for v in activities.values(column)])
            if not weights.any():
                raise table.error(
                    f"rule {name!r}: no activity has {column} = {as_text(match)!r}.",
                    r,
                    "match",
                    fix=f"Use a value that appears in the Activities column {column!r}.",
                )
        assert weights.shape == (n,)
        rules.append(Rule(name, weights, lower, upper, on))  # type: ignore[arg-type]
        rows.append(
            {
                "rule": name,
                "column": column,
                "match": None if is_blank(match) else as_text(match),
                "on": on,
                "lower": lower,
                "upper": upper,
            }
        )
    return rules, rows


def _budget(settings: Settings, side: str, total: float) -> float | None:
    absolute, ratio = f"budget_{side}", f"budget_{side}_ratio"
    if settings.has(absolute) and settings.has(ratio):
        raise settings.error(
            ratio, f"both {absolute} and {ratio} are given.", fix="Keep one of them; clear the value of the other."
        )
    if settings.has(ratio):
        value = settings.number(ratio, minimum=0)
        return None if value is None else value * total
    return settings.number(absolute, minimum=0)


def _max_changes(settings: Settings, n: int) -> int | None:
    if settings.has("max_changes") and settings.has("max_changes_ratio"):
        raise settings.error(
            "max_changes_ratio",
            "both max_changes and max_changes_ratio are given.",
            fix="Keep one of them; clear the value of the other.",
        )
    if settings.has("max_changes_ratio"):
        ratio = settings.number("max_changes_ratio")
        assert ratio is not None
        if not 0 <= ratio <= 1:
            raise settings.error(
                "max_changes_ratio",
                f"max_changes_ratio {ratio:g} is outside 0..1 (a share of the {n} activities).",
                fix="Enter a share between 0 and 1, e.g. 0.25 for a quarter of the activities.",
            )
        return round(ratio * n)
    value = settings.number("max_changes")
    if value is None:
        return None
    if not (0 <= value <= n and value == math.floor(value)):
        raise settings.error(
            "max_changes",
            f"max_changes {value:g} is outside 0..{n} (the number of activities).",
            fix=f"Enter a whole number from 0 to {n}, or leave it blank for no cap.",
        )
    return int(value)


def read_input(source: TableSource, options: RunOptions | None = None) -> MixInput:
    """Read and validate the mix tables; every error names its sheet, row and column."""
    options = options or RunOptions()
    acts = require_table(source.table, ACTIVITIES)
    settings = Settings(source.table("Settings"))
    ids = acts.ids("activity")
    n = len(ids)
    baseline = acts.numbers("baseline", what="baseline spend")
    low = acts.numbers("min_spend", what="minimum spend")
    high = acts.numbers("max_spend", what="maximum spend")
    change = acts.numbers("min_change", default=0.0, what="minimum change of 0 or more")
    a = acts.numbers("a", what="quadratic revenue coefficient a <= 0")
    b = acts.numbers("b", what="linear revenue coefficient b")
    c = acts.numbers("c", default=0.0, what="revenue at baseline c")
    convex = [i for i, v in enumerate(a) if v > 0]
    if convex:
        rows = ", ".join(f"{acts.header_row + 1 + i} ({ids[i]})" for i in convex[:10])
        more = f" and {len(convex) - 10} more" if len(convex) > 10 else ""
        raise acts.error(
            f"revenue is not concave (a > 0) in rows {rows}{more}.",
            convex[0],
            "a",
            fix="Use a <= 0 (diminishing returns) in every row, e.g. a = -b / (2 x spend change at the peak).",
        )
    attribute_headers = [h for h in acts.headers if normalize(h) not in RESERVED]
    attributes = {h: acts.values(h) for h in attribute_headers}
    text_attributes = [h for h, v in attributes.items() if _is_text_column(v)]
    rules_table = source.table(RULES)
    rules: list[Rule] = []
    rule_rows: list[dict[str, Any]] = []
    if rules_table is not None and rules_table.rows:
        rules, rule_rows = read_rules(rules_table, acts, n)
    total = float(sum(baseline))
    budget_min, budget_max = _budget(settings, "min", total), _budget(settings, "max", total)
    k = _max_changes(settings, n)
    formulation = settings.choice("formulation", FORMULATIONS, "misocp")
    solver = settings.choice("solver", SOLVERS, "auto")
    if options.solver is not None and normalize(options.solver) in SOLVERS:
        solver = normalize(options.solver)  # the coupon model's solver names do not apply here
    time_limit = options.time_limit if options.time_limit is not None else settings.number("time_limit", minimum=0)
    gap = settings.number("gap", 1e-4, minimum=0, maximum=1)
    points = settings.number("pareto_points", 20, minimum=2, maximum=200, integer=True)
    try:
        problem = MixProblem(
            tuple(ids),
            np.array(baseline),
            np.array(low),
            np.array(high),
            np.array(change),
            np.array(a),
            np.array(b),
            np.array(c),
            budget_min,
            budget_max,
            k,
            tuple(rules),
        )
    except InputError as error:
        raise _locate(error, acts, rules_table, settings) from None
    return MixInput(
        problem,
        attributes,
        text_attributes,
        rule_rows,
        formulation,
        solver,
        time_limit,
        float(gap if gap is not None else 1e-4),
        int(points or 20),
    )


def _locate(error: InputError, acts: Table, rules: Table | None, settings: Settings) -> InputError:
    """Turn a model-level error (table, key, column) into one naming the sheet, row and column."""
    if error.where:
        return error
    if error.table == "Settings" and error.key:
        key = error.key
        ratio = f"{key}_ratio"
        if not settings.has(key) and settings.has(ratio):
            key = ratio  # the value came from the ratio form of the setting
        return settings.error(key, error.message, error.fix)
    table = {ACTIVITIES: acts, RULES: rules}.get(error.table or "")
    if table is None:
        return error
    row = table.row_of("activity" if table is acts else "rule", error.key)
    column = error.column if error.column and table.has(error.column) else None
    return table.error(error.message, row, column, error.fix)


# ------------------------------------------------------------------------------ running
@dataclass
class MixOutcome:
    data: MixInput
    result: MixResult
    pareto: list[ParetoPoint]
    seconds: float


def run_model(data: MixInput, options: RunOptions | None = None) -> MixOutcome:
    options = options or RunOptions()
    start = time.perf_counter()
    result = solve(
        data.problem,
        solver=data.solver,
        formulation=data.formulation,
        time_limit=data.time_limit,
        gap=data.gap,
        progress=options.progress,
    )
    sweep: list[ParetoPoint] = []
    if result.change is not None:
        sweep = pareto_over_changes(
            data.problem,
            data.pareto_points,
            solver=data.solver,
            time_limit=data.time_limit,
            gap=data.gap,
            progress=options.progress,
        )
    return MixOutcome(data, result, sweep, time.perf_counter() - start)


class MixAdapter:
    name = "mix"
    input_tables: tuple[str, ...] = (ACTIVITIES,)
    result_sheets: tuple[str, ...] = (PLAN, BUDGET, PARETO)

    def run(self, source: TableSource, options: RunOptions) -> ModelRun:
        data = read_input(source, options)
        outcome = run_model(data, options)
        return ModelRun(self.name, outcome.result.status, summary(outcome), sheets(outcome))


ADAPTER = MixAdapter()


def summary(outcome: MixOutcome) -> dict[str, Any]:
    """The JSON summary of ``dmplan solve --summary-json``."""
    r, p = outcome.result, outcome.data.problem
    cert = r.certificate
    spend = r.spend
    return {
        "model": "mix",
        "status": cert.status.value,
        "objective": cert.objective,
        "bound": cert.bound,
        "gap": cert.gap,
        "seconds": outcome.seconds,
        "solve_seconds": cert.seconds,
        "solver": cert.solver,
        "formulation": r.formulation,
        "iterations": cert.iterations,
        "root_bound": r.root_bound,
        "message": cert.message,
        "feasible": cert.feasibility.ok if cert.feasibility else None,
        "changes": r.changes if r.change is not None else None,
        "max_changes": p.k,
        "activities": p.n,
        "budget_min": p.budget_min,
        "budget_max": p.budget_max,
        "budget_used": float(spend.sum()) if spend is not None else None,
        "baseline_total": float(p.baseline.sum()),
        "baseline_revenue": p.revenue(np.zeros(p.n)),
        "plan": {key: float(v) for key, v in zip(p.activity, spend, strict=True)} if spend is not None else None,
        "pareto": [
            {
                "k": pt.k,
                "k_share": pt.k_share,
                "objective": pt.objective,
                "revenue_share": pt.revenue_share,
                "status": pt.status.value,
                "knee": pt.knee,
            }
            for pt in outcome.pareto
        ],
    }


# ------------------------------------------------------------------------------ sheets
def sheets(outcome: MixOutcome) -> list[SheetSpec]:
    if outcome.result.change is None:
        return [_failure_sheet(outcome)]
    plan = _plan_block(outcome)
    out = [_plan_sheet(outcome, plan), _budget_sheet(outcome, plan)]
    if outcome.pareto:
        out.append(_pareto_sheet(outcome))
    return out


def _failure_sheet(outcome: MixOutcome) -> SheetSpec:
    cert = outcome.result.certificate
    items: list[tuple[str, Any, str | None]] = [
        ("Status", cert.status.value, None),
        ("Message", cert.message or "no plan", None),
        ("Proven bound", cert.bound, MONEY),
        ("Seconds", outcome.seconds, "0.000"),
        ("Solver", cert.solver, None),
    ]
    return SheetSpec(PLAN, "Marketing-mix adjustment: no plan", [kpi_block(KPI_TOP, 1, items, "Result")])


def _kpi_items(outcome: MixOutcome, plan: Block | None) -> list[tuple[str, Any, str | None]]:
    r, p = outcome.result, outcome.data.problem
    cert = r.certificate

    def total(column: str) -> Any:
        return f"=SUM({plan.column_range(column)})" if plan is not None else None

    feasible = "passed" if cert.feasibility and cert.feasibility.ok else "FAILED"
    violation = cert.feasibility.max_violation if cert.feasibility else None
    return [
        ("Status", cert.status.value, None),
        ("Revenue after (objective)", total("revenue_after"), MONEY),
        ("Revenue before", total("revenue_before"), MONEY),
        ("Revenue gain", None, MONEY),  # filled in by _plan_sheet (needs the KPI cells' addresses)
        ("Proven bound", cert.bound, MONEY),
        ("Gap", cert.gap, "0.0000%"),
        ("Changes used", f'=COUNTIF({plan.column_range("change")},"<>0")' if plan else r.changes, "#,##0"),
        ("Max changes (K)", p.k, "#,##0"),
        ("Spend before", total("baseline"), MONEY),
        ("Budget used (spend after)", total("new_spend"), MONEY),
        ("Budget min", p.budget_min if p.budget_min is not None else "none", MONEY),
        ("Budget max", p.budget_max if p.budget_max is not None else "none", MONEY),
        ("Feasibility re-check", feasible, None),
        ("Largest violation (relative)", violation, "0.0E+00"),
        ("Solver", cert.solver, None),
        ("Formulation", r.formulation, None),
        ("Rounds or nodes", cert.iterations, "#,##0"),
        ("Seconds (solve)", cert.seconds, "0.000"),
        ("Seconds (with Pareto)", outcome.seconds, "0.000"),
    ]


def _kpi_rows(outcome: MixOutcome) -> int:
    return len(_kpi_items(outcome, None))


def _plan_block(outcome: MixOutcome) -> Block:
    data, r = outcome.data, outcome.result
    p = data.problem
    assert r.change is not None
    top = KPI_TOP + 1 + _kpi_rows(outcome) + 2
    attrs = list(data.attributes)
    header = [
        "activity",
        *[_sheet_header(h) for h in attrs],
        *RESERVED[1:5],
        *COMPUTED[:4],
        *RESERVED[5:],
        *COMPUTED[4:],
    ]
    col = {h: column_letter(1 + j) for j, h in enumerate(header)}
    first = top + 2
    spend = p.baseline + r.change
    rows = []
    for i, key in enumerate(p.activity):
        row = first + i

        def at(h: str, row: int = row) -> str:
            return f"{col[h]}{row}"

        values = [
            data.attributes[h][i] if h in data.text_attributes else _num_or_text(data.attributes[h][i]) for h in attrs
        ]
        rows.append(
            [
                key,
                *values,
                float(p.baseline[i]),
                float(p.min_spend[i]),
                float(p.max_spend[i]),
                float(p.min_change[i]),
                float(spend[i]),
                f"={at('new_spend')}-{at('baseline')}",
                f'=IF({at("baseline")}=0,"",{at("change")}/{at("baseline")})',
                f'=IF({at("change")}>0,"increase",IF({at("change")}<0,"decrease","keep"))',
                float(p.a[i]),
                float(p.b[i]),
                float(p.c[i]),
                f"={at('c')}",
                f"={at('a')}*{at('change')}^2+{at('b')}*{at('change')}+{at('c')}",
            ]
        )
    formats = {h: MONEY for h in ("baseline", "min_spend", "max_spend", "min_change", "new_spend", "change")}
    formats.update(change_pct=SHARE, a="0.000000E+00", b="0.0000", c=MONEY, revenue_before=MONEY, revenue_after=MONEY)
    return Block(top, 1, header, rows, title="Plan per activity", formats=formats, table_name="MixPlan")


def _sheet_header(attribute: str) -> str:
    """An attribute's header on Mix Plan; one named like a computed column gets a prefix."""
    return f"attr_{attribute}" if normalize(attribute) in COMPUTED else attribute


def _num_or_text(value: Any) -> Any:
    if is_blank(value):
        return None
    number = as_number(value)
    return value if number is None else number


def _plan_sheet(outcome: MixOutcome, plan: Block) -> SheetSpec:
    items = _kpi_items(outcome, plan)
    labels = [label for label, _, _ in items]
    kpis = kpi_block(KPI_TOP, 1, items)
    after = kpis.cell(labels.index("Revenue after (objective)"), "Value")
    before = kpis.cell(labels.index("Revenue before"), "Value")
    gain = labels.index("Revenue gain")
    items[gain] = ("Revenue gain", f"={after}-{before}", MONEY)
    kpis = kpi_block(KPI_TOP, 1, items)
    p = outcome.data.problem
    notes = [
        f"{p.n} activities; new spend per activity from the solver, everything else recalculates when you edit "
        "a new_spend cell (change, region, revenue, totals)."
    ]
    widths = {1: 30.0, plan.column_of("a"): 13.0, plan.column_of("change_region"): 14.0}
    return SheetSpec(PLAN, "Marketing-mix adjustment plan", [kpis, plan], notes=notes, column_widths=widths)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", normalize(text).title()) or "Group"


def _budget_sheet(outcome: MixOutcome, plan: Block) -> SheetSpec:
    data, r = outcome.data, outcome.result
    p = data.problem
    assert r.change is not None
    spend = p.baseline + r.change
    region = np.sign(r.change).astype(int)
    groupings: list[tuple[str, list[str]]] = [
        (h, [as_text(v) if not is_blank(v) else "(blank)" for v in data.attributes[h]]) for h in data.text_attributes
    ][:2]
    if not groupings:
        names = {-1: "decrease", 0: "keep", 1: "increase"}
        groupings = [("region", [names[int(v)] for v in region])]
    blocks: list[Block] = []
    charts: list[Chart] = []
    top = 3
    for g, (name, labels) in enumerate(groupings):
        order = list(dict.fromkeys(labels))
        header = ("group", "activities", "changed", "spend_before", "spend_after", "change", "change_pct")
        rows = []
        for j, label in enumerate(order):
            mask = np.array([lab == label for lab in labels])
            row_no = top + 2 + j
            rows.append(
                [
                    label,
                    int(mask.sum()),
                    int(np.count_nonzero(r.change[mask])),
                    float(p.baseline[mask].sum()),
                    float(spend[mask].sum()),
                    f"=E{row_no}-D{row_no}",
                    f'=IF(D{row_no}=0,"",F{row_no}/D{row_no})',
                ]
            )
        block = Block(
            top,
            1,
            header,
            rows,
            title=f"Spend by {name}",
            formats={"spend_before": MONEY, "spend_after": MONEY, "change": MONEY, "change_pct": SHARE},
            table_name=f"MixBudgetBy{_safe_name(name)}",
        )
        blocks.append(block)
        charts.append(
            Chart(
                kind="bar",
                block=block,
                categories="group",
                series=[Series("spend_before", "Before (baseline)"), Series("spend_after", "After (plan)")],
                title=f"Spend by {name}: before and after",
                anchor=f"I{top}",
                x_title=name.capitalize(),
                y_title="Spend",
                width_cm=18,
                height_cm=9,
            )
        )
        top = max(block.last_row + 3, top + 20 if g == 0 else block.last_row + 3)
    if data.rule_rows:
        blocks.append(_rules_block(outcome, plan, top))
    total_before, total_after = float(p.baseline.sum()), float(spend.sum())
    notes = [f"Total spend {total_before:,.2f} before, {total_after:,.2f} after ({r.changes} activities changed)."]
    return SheetSpec(BUDGET, "Spend before and after", blocks, charts, notes=notes)


def _rules_block(outcome: MixOutcome, plan: Block, top: int) -> Block:
    """Every rule's value before and after; 'after' is a live formula over the Mix Plan sheet."""
    data, r = outcome.data, outcome.result
    p = data.problem
    assert r.change is not None
    sheet = f"'{PLAN}'!"
    rows = []
    for j, (info, rule) in enumerate(zip(data.rule_rows, p.rules, strict=True)):
        row_no = top + 2 + j
        target = plan.column_range("new_spend" if rule.on == "spend" else "change")
        column = next(
            h
            for h in plan.header
            if normalize(h) == normalize(info["column"])
            or (normalize(info["column"]) in COMPUTED and normalize(h) == "attr_" + normalize(info["column"]))
        )
        crit = plan.column_range(column)
        match = info["match"]
        formula: str | None
        if match is None:
            formula = f"=SUMPRODUCT({sheet}{crit},{sheet}{target})"
        elif re.search(r'[*?~<>="]', match):
            formula = None  # criteria syntax would read these characters; keep the solver's value
        else:
            formula = f'=SUMIFS({sheet}{target},{sheet}{crit},"{match}")'
        before = float(rule.weights @ (p.baseline if rule.on == "spend" else np.zeros(p.n)))
        after_value = float(rule.weights @ (p.baseline + r.change if rule.on == "spend" else r.change))
        after = formula if formula is not None else after_value
        lo_text = f"G{row_no}>=E{row_no}-1E-6*MAX(1,ABS(E{row_no}))" if info["lower"] is not None else "TRUE"
        hi_text = f"G{row_no}<=F{row_no}+1E-6*MAX(1,ABS(F{row_no}))" if info["upper"] is not None else "TRUE"
        rows.append(
            [
                info["rule"],
                info["column"],
                info["match"] or "(weights)",
                info["on"],
                info["lower"],
                info["upper"],
                after,
                before,
                f'=IF(AND({lo_text},{hi_text}),"ok","BROKEN")',
            ]
        )
    header = ("rule", "column", "match", "on", "lower", "upper", "value_after", "value_before", "check")
    return Block(
        top,
        1,
        header,
        rows,
        title="Business rules: value after the plan (live) and before",
        formats={"lower": MONEY, "upper": MONEY, "value_after": MONEY, "value_before": MONEY},
        table_name="MixRuleCheck",
    )


def _pareto_sheet(outcome: MixOutcome) -> SheetSpec:
    r, p = outcome.result, outcome.data.problem
    points = outcome.pareto
    best = points[-1].objective
    header = (
        "point",
        "k",
        "k_pct_of_n",
        "revenue_pct_of_best",
        "gain_pct_of_best_gain",
        "revenue",
        "proven_bound",
        "gap",
        "status",
        "knee_point",
        "this_plan",
    )
    rows: list[list[Any]] = []
    for pt in points:
        rows.append(
            [
                "knee" if pt.knee else f"K = {pt.k}",
                pt.k,
                100.0 * pt.k_share,
                pt.revenue_share,
                pt.improvement_share,
                pt.objective,
                pt.result.bound,
                pt.result.gap,
                pt.status.value,
                pt.revenue_share if pt.knee else None,
                None,
            ]
        )
    share = None if r.objective is None or not best else 100.0 * r.objective / best
    rows.append(
        [
            "this plan",
            p.k,
            100.0 * p.k / max(1, p.n),
            share,
            None,
            r.objective,
            r.bound,
            r.gap,
            r.status.value,
            None,
            share,
        ]
    )
    block = Block(
        4,
        1,
        header,
        rows,
        title="Revenue against the cap on changes K (last row: this plan)",
        formats={
            "k_pct_of_n": PCT,
            "revenue_pct_of_best": "0.00",
            "gain_pct_of_best_gain": PCT,
            "revenue": MONEY,
            "proven_bound": MONEY,
            "gap": "0.0000%",
            "knee_point": "0.00",
            "this_plan": "0.00",
        },
        table_name="MixPareto",
    )
    last = len(points) - 1
    series = [Series("revenue_pct_of_best", "Revenue (% of best)", rows=(0, last))]
    knee = [j for j, pt in enumerate(points) if pt.knee]
    # single points as columns that are blank but for one row, drawn as filled markers
    if knee:
        series.append(Series("knee_point", "Knee", marker_only=True))
    series.append(Series("this_plan", "This plan", marker_only=True))
    chart = Chart(
        kind="scatter",
        block=block,
        categories="k_pct_of_n",
        series=series,
        title="Revenue (% of the best, K = n) against changes allowed (% of activities)",
        anchor="M4",
        x_title="K (% of activities)",
        y_title="Revenue (% of best)",
        width_cm=20,
        height_cm=11,
    )
    notes = [
        f"{len(points)} caps K from 0 to {p.n}; best revenue (K = n) {best:,.2f}."
        if best is not None
        else f"{len(points)} caps K from 0 to {p.n}."
    ]
    if knee:
        notes.append(f"Knee at K = {points[knee[0]].k}: beyond it each extra change buys less.")
    return SheetSpec(PARETO, "Pareto: revenue against the number of changes", [block], [chart], notes=notes)


# ------------------------------------------------------------------------------ templates
CHANNELS = {  # channel: (weekly spend level, return per unit of spend, brand weight, share that can be cut)
    "TV": (12_000.0, 0.9, 1.0, 0.3),
    "Radio": (3_000.0, 0.8, 0.6, 0.5),
    "Search": (6_000.0, 1.6, 0.1, 0.6),
    "Social": (4_000.0, 1.3, 0.4, 0.6),
    "Display": (3_500.0, 1.0, 0.5, 0.6),
    "Print": (2_000.0, 0.6, 0.5, 0.7),
    "Email": (800.0, 2.0, 0.1, 0.5),
}
REGIONS = {"North": 1.0, "South": 1.2, "East": 0.9, "West": 1.1}
WEEKS = 8
MIX_HEADER = (
    "activity",
    "channel",
    "region",
    "week",
    "brand_weight",
    "baseline",
    "min_spend",
    "max_spend",
    "min_change",
    "a",
    "b",
    "c",
)


def example_activities(seed: int = 2101) -> list[list[Any]]:
    """A seeded example: channels x regions x weeks with concave returns (diminishing returns)."""
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = []
    for channel, (level, roi, brand, cut) in CHANNELS.items():
        for region, size in REGIONS.items():
            for week in range(1, WEEKS + 1):
                s = round(level * size * rng.uniform(0.7, 1.3), -1)
                low = round(s * (1 - cut * rng.uniform(0.6, 1.0)), -1)
                high = round(s * rng.uniform(1.3, 2.0), -1)
                b = round(roi * rng.uniform(0.8, 1.25), 4)
                peak = s * rng.uniform(0.4, 2.0)  # the revenue of a change peaks at this increase
                a = -b / (2 * peak)
                c = round(s * roi * rng.uniform(1.8, 2.4), 2)  # revenue at the baseline spend
                rows.append(
                    [
                        f"{channel}-{region}-W{week:02d}",
                        channel,
                        region,
                        week,
                        brand,
                        s,
                        low,
                        high,
                        round(0.1 * s, 2),
                        float(f"{a:.6e}"),
                        b,
                        c,
                    ]
                )
    return rows


def example_rules(rows: list[list[Any]]) -> list[list[Any]]:
    """Group rules per channel (80%-120% of baseline), per region (90%-110%) and a weighted brand rule."""
    rules: list[list[Any]] = []
    for channel in CHANNELS:
        base = sum(r[5] for r in rows if r[1] == channel)
        rules.append([f"{channel} total", "channel", channel, round(0.8 * base, 2), round(1.2 * base, 2), "spend"])
    for region in REGIONS:
        base = sum(r[5] for r in rows if r[2] == region)
        rules.append([f"{region} total", "region", region, round(0.9 * base, 2), round(1.1 * base, 2), "spend"])
    brand = sum(r[4] * r[5] for r in rows)
    rules.append(["Brand reach kept", "brand_weight", None, round(0.97 * brand, 2), None, "spend"])
    return rules


def mix_settings() -> list[tuple[str, Any, str, DataValidation | None]]:
    from dmplan.addin.templates import list_rule, number_rule

    return [
        ("budget_min_ratio", 0.99, "Mix: total new spend at least this share of the total baseline.", number_rule(0)),
        ("budget_max_ratio", 1.01, "Mix: total new spend at most this share of the total baseline.", number_rule(0)),
        ("budget_min", None, "Mix: absolute minimum total spend (instead of budget_min_ratio).", number_rule(0)),
        ("budget_max", None, "Mix: absolute maximum total spend (instead of budget_max_ratio).", number_rule(0)),
        (
            "max_changes_ratio",
            0.25,
            "Mix: at most this share of the activities may change (0 to 1).",
            number_rule(0, 1),
        ),
        ("max_changes", None, "Mix: at most this many activities may change (instead of the ratio).", number_rule(0)),
        ("formulation", "misocp", "Mix: misocp (perspective cones, default) or miqp.", list_rule(FORMULATIONS)),
        ("solver", "auto", "Mix: auto (fastest exact), oa, scip, ecos, gurobi or mosek.", list_rule(SOLVERS)),
        ("gap", 0.0001, "Mix: relative optimality gap at which the solve stops (0.0001 = 0.01%).", number_rule(0, 1)),
        ("time_limit", 60, "Seconds allowed per model run.", number_rule(0)),
        ("pareto_points", 20, "Number of points of the Pareto sweep (2 to 200).", number_rule(2, 200, whole=True)),
    ]


MIX_INSTRUCTIONS = [
    "Marketing-mix adjustment: a new spend for every activity (channel x region x week) that maximises the "
    "revenue, with diminishing returns, subject to spend bounds, a budget, a minimum change, a cap on the number "
    "of activities that change and business rules (Huang, Xu & Lim, arXiv 2101.03663).",
    "Activities: activity id, baseline spend, min_spend, max_spend, min_change (a change is 0 or at least this "
    "large), and the revenue of a spend change x: a x^2 + b x + c with a <= 0. Further columns (channel, region, "
    "week, brand_weight ...) are attributes the rules can use.",
    "Rules (optional): rule name, column, match, lower, upper, on. With a match value the rule sums the spend (or "
    "the change, on = change) of the activities whose column equals it (case-insensitive); with a blank match "
    "the column's numbers are weights. lower or upper may be blank.",
    "Settings: budget_min_ratio / budget_max_ratio (share of the total baseline) or budget_min / budget_max; "
    "max_changes_ratio or max_changes; formulation; solver; gap; time_limit; pareto_points.",
    "Run: DMPlan > Solve workbook, or dmplan solve THIS_FILE.xlsx. Results: Mix Plan (plan and key figures), "
    "Mix Budget (spend by channel and region, rule check), Mix Pareto (revenue against the number of changes).",
]


def add_mix_inputs(wb: Workbook, describe: bool = True) -> None:
    """Add the Activities and Rules tables and the mix settings to ``wb`` (whose Settings may exist)."""
    from dmplan.addin.templates import add_table

    rows = example_activities()
    ws = wb.create_sheet(ACTIVITIES)
    add_table(ws, ACTIVITIES, MIX_HEADER, rows)
    ws.column_dimensions["A"].width = 20
    for r in range(2, len(rows) + 2):
        for c in (6, 7, 8, 9, 12):
            ws.cell(row=r, column=c).number_format = "#,##0.00"
        ws.cell(row=r, column=10).number_format = "0.000E+00"
    ws.freeze_panes = "B2"
    ws = wb.create_sheet(RULES)
    add_table(ws, RULES, ("rule", "column", "match", "lower", "upper", "on"), example_rules(rows))
    ws.column_dimensions["A"].width = 20
    for r in range(2, 2 + len(CHANNELS) + len(REGIONS) + 2):
        for c in (4, 5):
            ws.cell(row=r, column=c).number_format = "#,##0.00"
    _extend_settings(wb, mix_settings())
    if describe and "Instructions" in wb.sheetnames:
        _extend_instructions(wb["Instructions"])


def _extend_instructions(ws: Any) -> None:
    from openpyxl.styles import Alignment

    row = ws.max_row + 2
    ws.cell(row=row, column=1, value="Marketing-mix adjustment").font = Font(bold=True, size=13)
    for i, line in enumerate(MIX_INSTRUCTIONS):
        cell = ws.cell(row=row + 1 + i, column=1, value=line)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = 110


def _extend_settings(wb: Workbook, rows: list[tuple[str, Any, str, DataValidation | None]]) -> None:
    """Append the mix rows missing from the Settings table (and grow its Excel table ref)."""
    from dmplan.addin.templates import describe_setting, settings_table

    if "Settings" not in wb.sheetnames:
        settings_table(wb, rows)
        return
    ws = wb["Settings"]
    table = ws.tables["Settings"]
    first, last = table.ref.split(":")
    last_row = int(re.sub(r"[A-Z]", "", last))
    present = {normalize(ws.cell(row=r, column=1).value) for r in range(2, last_row + 1)}
    added = 0
    for key, value, help_text, validation in rows:
        if normalize(key) in present:
            continue
        r = last_row + 1 + added
        added += 1
        ws.cell(row=r, column=1, value=key)
        ws.cell(row=r, column=2, value=value)
        ws.cell(row=r, column=3, value=help_text)
        describe_setting(wb, ws, r, key, help_text, validation)
    table.ref = f"{first}:{re.sub(r'[0-9]', '', last)}{last_row + added}"


def template_workbook() -> Workbook:
    from dmplan.addin.templates import instructions

    wb = Workbook()
    instructions(wb.active, "DMPlan: marketing-mix adjustment", MIX_INSTRUCTIONS)
    wb.active.title = "Instructions"
    add_mix_inputs(wb, describe=False)
    return wb
