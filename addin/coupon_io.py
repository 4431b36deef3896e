"""Coupon plan <-> workbook: read the contract's tables, describe the result sheets.

Input tables (see README, "Workbook contract"): ``Segments``, ``Mailings``, ``Settings``
and, optionally, ``Customers``. Result sheets: ``DM Plan``, ``DM Budget``, ``DM Pareto`` and,
with a customer list, ``DM Mailing List``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dmplan.addin.run import ModelRun, RunOptions, TableSource
from dmplan.addin.sheets import Block, Chart, Series, SheetSpec, kpi_block
from dmplan.addin.tables import Settings, Table, as_text, column_letter, normalize, require_table
from dmplan.solver.common import InputError, Status
from dmplan.solver.coupon import (
    BudgetPoint,
    CouponProblem,
    CouponResult,
    CustomerList,
    CustomerResult,
    Mailing,
    budget_sweep,
    solve,
    solve_customers,
)

PLAN, BUDGET, PARETO, MAILING_LIST = "DM Plan", "DM Budget", "DM Pareto", "DM Mailing List"
SEGMENT_IDS = ("segment", "segment_id")
RESERVED = {"segment", "segment_id", "customers", "customer_id"}
PROB_PREFIX = "prob_"
KPI_TOP, KPI_ROWS, CUSTOMER_KPI_ROWS = 3, 14, 4  #: the KPI block's place and size on DM Plan
MONEY, SHARE, NUMBER, COUNT = "#,##0.00", "0.0%", "#,##0.00", "#,##0"


@dataclass
class CouponInput:
    """What the workbook says: the problem, the optional customer list and sweep settings."""

    problem: CouponProblem
    keys: dict[str, list[str]]  #: descriptive key columns of Segments (age_cat, freq_cat ...)
    customers: CustomerList | None
    pareto_from: float | None
    pareto_to: float | None
    pareto_points: int
    time_limit: float | None
    solver: str
    counts_from_customers: bool


# ------------------------------------------------------------------------------ reading
def _id_column(table: Table, options: tuple[str, ...]) -> str:
    for option in options:
        if table.has(option):
            return option
    table.index(options[0])  # raises: column missing
    raise AssertionError


def read_mailings(table: Table) -> tuple[Mailing, ...]:
    ids = table.ids("mailing")
    labels = table.values("label") if table.has("label") else [None] * len(ids)
    values = table.numbers("coupon_value", minimum=0, what="coupon value of 0 or more")
    pieces = table.numbers("cost_per_piece", default=0.0, minimum=0, what="cost per piece of 0 or more")
    shares = table.numbers("min_share", default=0.0, minimum=0, maximum=1, what="share between 0 and 1")
    total = sum(shares)
    if total > 1 + 1e-9:
        raise table.error(
            f"the minimum shares add up to {total:.4g} (more than 100%): no plan can send every mailing its minimum.",
            column="min_share",
            fix="Lower the minimum shares so they sum to 1 (100%) or less.",
        )
    return tuple(
        Mailing(i, as_text(lab) if lab not in (None, "") else i, v, k, f)
        for i, lab, v, k, f in zip(ids, labels, values, pieces, shares, strict=True)
    )


def _probabilities(table: Table, mailings: tuple[Mailing, ...], required: bool) -> np.ndarray | None:
    columns = [PROB_PREFIX + normalize(m.id) for m in mailings]
    present = [table.has(c) for c in columns]
    if not any(present) and not required:
        return None
    for column, has in zip(columns, present, strict=True):
        if not has:
            raise table.error(
                f"mailing {column[len(PROB_PREFIX) :]!r} has no probability column {column!r}.",
                fix=f"Add a column {column!r} with each row's conversion probability for that mailing.",
            )
    cols = [table.numbers(c, minimum=0, maximum=1, what="probability between 0 and 1") for c in columns]
    return np.array(cols, dtype=float).T


def read_input(source: TableSource, options: RunOptions | None = None) -> CouponInput:
    """Read and validate the coupon tables; every error names its sheet, row and column."""
    options = options or RunOptions()
    segments_table = require_table(source.table, "Segments")
    mailings_table = require_table(source.table, "Mailings")
    settings = Settings(source.table("Settings"))
    mailings = read_mailings(mailings_table)
    id_col = _id_column(segments_table, SEGMENT_IDS)
    segment_ids = segments_table.ids(id_col)
    probability = _probabilities(segments_table, mailings, required=True)
    assert probability is not None
    key_columns = [
        h
        for h, c in zip(segments_table.headers, segments_table.columns, strict=True)
        if c not in RESERVED and not c.startswith(PROB_PREFIX)
    ]
    keys = {h: [as_text(v) for v in segments_table.values(h)] for h in key_columns}

    customers_table = source.table("Customers")
    customers = None
    if customers_table is not None:
        customers_table.require_rows()
        customers = _read_customers(customers_table, segments_table, id_col, segment_ids, keys, mailings)
    if segments_table.has("customers"):
        counts = np.array(segments_table.numbers("customers", minimum=0, integer=True, what="count of customers"))
        from_customers = False
    elif customers is not None:
        counts = np.bincount(customers.segment, minlength=len(segment_ids)).astype(float)
        from_customers = True
    else:
        raise segments_table.error(
            "column 'customers' is missing and there is no Customers table to count customers from.",
            fix="Add a column 'customers' with the number of customers per segment, or a Customers table.",
        )

    budget = settings.number("budget", required=True, minimum=0)
    baseline = settings.text("baseline_mailing")
    if baseline is not None:
        match = [m.id for m in mailings if normalize(m.id) == normalize(baseline)]
        if not match:
            raise settings.error(
                "baseline_mailing",
                f"{baseline!r} is not a mailing id.",
                fix=f"Use one of: {', '.join(m.id for m in mailings)}.",
            )
        baseline = match[0]
    try:
        problem = CouponProblem(tuple(segment_ids), counts, mailings, probability, float(budget or 0.0), baseline)
    except InputError as error:
        raise _locate(error, segments_table, mailings_table, settings, id_col) from None
    points = settings.number("pareto_points", 20, minimum=2, maximum=200, integer=True)
    time_limit = options.time_limit if options.time_limit is not None else settings.number("time_limit", minimum=0)
    solver = options.solver or settings.text("coupon_solver") or "highs"
    if solver not in ("highs", "pulp"):
        solver = "highs"  # the mix model's solver names do not apply here
    return CouponInput(
        problem,
        keys,
        customers,
        settings.number("pareto_budget_from", minimum=0),
        settings.number("pareto_budget_to", minimum=0),
        int(points or 20),
        time_limit,
        solver,
        from_customers,
    )


def _read_customers(
    table: Table,
    segments: Table,
    id_col: str,
    segment_ids: list[str],
    keys: dict[str, list[str]],
    mailings: tuple[Mailing, ...],
) -> CustomerList:
    ids = table.ids("customer_id")
    lookup: dict[tuple[str, ...], int]
    rows: list[tuple[str, ...]]
    if table.has("segment") or table.has("segment_id"):
        column = "segment" if table.has("segment") else "segment_id"
        lookup = {(normalize(s),): i for i, s in enumerate(segment_ids)}
        rows = [(normalize(v),) for v in table.texts(column)]
        columns = [column]
    else:
        columns = [k for k in keys if table.has(k)]
        if not columns:
            raise table.error(
                "the table has neither a 'segment' column nor the Segments table's key columns "
                f"({', '.join(keys) or 'none'}).",
                fix="Add a column 'segment' with each customer's segment id.",
            )
        lookup = {}
        for i in range(len(segment_ids)):
            lookup.setdefault(tuple(normalize(keys[c][i]) for c in columns), i)
        values = [table.texts(c) for c in columns]
        rows = [tuple(normalize(v) for v in row) for row in zip(*values, strict=True)]
    segment = np.empty(len(rows), dtype=np.int64)
    for r, key in enumerate(rows):
        found = lookup.get(key)
        if found is None:
            raise table.error(
                f"no segment matches {', '.join(columns)} = {', '.join(key)}.",
                r,
                columns[0],
                fix=f"Use values that appear in the {segments.excel_table or segments.name} table.",
            )
        segment[r] = found
    probability = _probabilities(table, mailings, required=False)
    return CustomerList(np.array(ids, dtype=object), segment, probability)


def _locate(error: InputError, segments: Table, mailings: Table, settings: Settings, id_col: str) -> InputError:
    """Turn a model-level error (table, key, column) into one naming the sheet, row and column."""
    if error.where:
        return error
    if error.table == "Settings" and error.key:
        return settings.error(error.key, error.message, error.fix)
    table = {"Segments": segments, "Mailings": mailings}.get(error.table or "")
    if table is None:
        return error
    row = table.row_of(id_col if table is segments else "mailing", error.key)
    column = error.column if error.column and table.has(error.column) else None
    return table.error(error.message, row, column, error.fix)


# ------------------------------------------------------------------------------ running
@dataclass
class CouponOutcome:
    data: CouponInput
    result: CouponResult
    sweep: list[BudgetPoint]
    customers: CustomerResult | None
    seconds: float


def run_model(data: CouponInput, options: RunOptions | None = None) -> CouponOutcome:
    options = options or RunOptions()
    start = time.perf_counter()
    result = solve(data.problem, solver=data.solver)
    sweep = budget_sweep(data.problem, data.pareto_points, data.pareto_from, data.pareto_to)
    customer_result = None
    if data.customers is not None:
        customer_result = solve_customers(
            data.problem, data.customers, time_limit=data.time_limit, progress=options.progress
        )
    return CouponOutcome(data, result, sweep, customer_result, time.perf_counter() - start)


class CouponAdapter:
    name = "coupon"
    input_tables: tuple[str, ...] = ("Segments", "Mailings")
    result_sheets: tuple[str, ...] = (PLAN, BUDGET, PARETO, MAILING_LIST)

    def run(self, source: TableSource, options: RunOptions) -> ModelRun:
        data = read_input(source, options)
        outcome = run_model(data, options)
        status = outcome.result.certificate.status
        if outcome.customers is not None and not outcome.customers.certificate.status.has_plan:
            status = outcome.customers.certificate.status
        return ModelRun(self.name, status, summary(outcome), sheets(outcome))


ADAPTER = CouponAdapter()


def summary(outcome: CouponOutcome) -> dict[str, Any]:
    """The JSON summary of ``dmplan solve --summary-json``."""
    r, p = outcome.result, outcome.data.problem
    cert = r.certificate
    out: dict[str, Any] = {
        "model": "coupon",
        "status": cert.status.value,
        "objective": cert.objective,
        "bound": cert.bound,
        "gap": cert.gap,
        "expected_conversions": r.expected_conversions,
        "budget_used": r.budget_used,
        "budget": p.budget,
        "shadow_price": r.shadow_price,
        "cost_per_extra_conversion": r.cost_per_extra_conversion,
        "min_feasible_budget": p.min_feasible_budget,
        "solver": cert.solver,
        "seconds": outcome.seconds,
        "feasible": cert.feasibility.ok if cert.feasibility else None,
        "allocation": {
            s: {m.id: float(r.share[i, d]) for d, m in enumerate(p.mailings)} for i, s in enumerate(p.segments)
        }
        if r.share is not None
        else None,
    }
    c = outcome.customers
    if c is not None:
        out.update(
            customer_status=c.certificate.status.value,
            customer_objective=c.certificate.objective,
            customer_bound=c.certificate.bound,
            customer_gap=c.certificate.gap,
            customer_seconds=c.certificate.seconds,
            customers=len(c.customers),
        )
    return out


# ------------------------------------------------------------------------------ sheets
def sheets(outcome: CouponOutcome) -> list[SheetSpec]:
    if outcome.result.share is None:
        return [_failure_sheet(outcome)]
    out = [_plan_sheet(outcome), _budget_sheet(outcome), _pareto_sheet(outcome)]
    if outcome.customers is not None and outcome.customers.assignment is not None:
        out.append(_mailing_list_sheet(outcome))
    return out


def _failure_sheet(outcome: CouponOutcome) -> SheetSpec:
    cert = outcome.result.certificate
    items = [("Status", cert.status.value, None), ("Message", cert.message or "no plan", None)]
    return SheetSpec(PLAN, "Direct-mail coupon plan", [kpi_block(3, 1, items, "Result")])


def _plan_sheet(outcome: CouponOutcome) -> SheetSpec:
    data, r = outcome.data, outcome.result
    p = data.problem
    assert r.share is not None
    counts = r.counts
    assert counts is not None
    mids = [m.id for m in p.mailings]
    D = len(mids)
    # mailing block first (top left): its cells are referenced by the plan's formulas
    mailing_block = Block(
        top=3,
        left=1,
        title="Mailings",
        header=("mailing", "label", "coupon_value", "cost_per_piece", "min_share"),
        rows=[[m.id, m.label, m.coupon_value, m.cost_per_piece, m.min_share] for m in p.mailings],
        formats={"coupon_value": MONEY, "cost_per_piece": MONEY, "min_share": SHARE},
    )
    kpi_rows = KPI_ROWS + (CUSTOMER_KPI_ROWS if outcome.customers is not None else 0)
    top = max(mailing_block.last_row, KPI_TOP + 1 + kpi_rows) + 3  # below the mailing and KPI blocks
    header = ["segment", *data.keys, "customers"]
    header += [f"prob_{m}" for m in mids] + [f"share_{m}" for m in mids] + [f"customers_{m}" for m in mids]
    header += ["expected_conversions", "extra_conversions", "expected_cost"]
    left = 1
    first_row = top + 2  # title row, header row, then data
    col = {h: column_letter(left + i) for i, h in enumerate(header)}
    base = mids[p.baseline_index]
    value_cells = [f"$C${mailing_block.first_data_row + d}" for d in range(D)]
    piece_cells = [f"$D${mailing_block.first_data_row + d}" for d in range(D)]
    rows = []
    for s, segment in enumerate(p.segments):
        row_no = first_row + s
        probs = f"{col['prob_' + mids[0]]}{row_no}:{col['prob_' + mids[-1]]}{row_no}"
        shares = f"{col['share_' + mids[0]]}{row_no}:{col['share_' + mids[-1]]}{row_no}"
        n = f"{col['customers']}{row_no}"
        cost_terms = "+".join(
            f"{col['share_' + m]}{row_no}*({col['prob_' + m]}{row_no}*{value_cells[d]}+{piece_cells[d]})"
            for d, m in enumerate(mids)
        )
        rows.append(
            [
                segment,
                *[data.keys[k][s] for k in data.keys],
                float(p.customers[s]),
                *[float(v) for v in p.probability[s]],
                *[float(v) for v in r.share[s]],
                *[int(v) for v in counts[s]],
                f"={n}*SUMPRODUCT({probs},{shares})",
                f"={n}*(SUMPRODUCT({probs},{shares})-{col['prob_' + base]}{row_no})",
                f"={n}*({cost_terms})",
            ]
        )
    formats = {h: SHARE for h in header if h.startswith("share_")}
    formats.update({h: "0.00" for h in header if h.startswith("prob_")})
    formats.update({h: COUNT for h in header if h.startswith("customers")})
    formats.update(expected_conversions=NUMBER, extra_conversions=NUMBER, expected_cost=MONEY)
    plan = Block(top, left, header, rows, title="Plan per segment", formats=formats, table_name="DMPlanAllocation")

    def total(column: str) -> str:
        return f"=SUM({plan.column_range(column)})"

    cert = r.certificate
    extra = f"{column_letter(8)}{5}"  # KPI value cells are referenced by the formulas below
    items: list[tuple[str, Any, str | None]] = [
        ("Extra conversions (objective)", total("extra_conversions"), NUMBER),
        ("Expected conversions", total("expected_conversions"), NUMBER),
        ("Budget used", total("expected_cost"), MONEY),
        ("Budget available", p.budget, MONEY),
        ("Budget left", f"={column_letter(8)}{8}-{column_letter(8)}{7}", MONEY),
        ("Cost per extra conversion", f'=IF({extra}=0,"",{column_letter(8)}{7}/{extra})', MONEY),
        ("Shadow price (conversions per extra unit of budget)", r.shadow_price, "0.000000"),
        ("Smallest feasible budget", p.min_feasible_budget, MONEY),
        ("Proven bound", cert.bound, NUMBER),
        ("Gap", cert.gap, "0.0000%"),
        ("Feasibility re-check", "passed" if cert.feasibility and cert.feasibility.ok else "FAILED", None),
        ("Status", cert.status.value, None),
        ("Solver", cert.solver, None),
        ("Seconds", outcome.seconds, "0.000"),
    ]
    c = outcome.customers
    if c is not None:
        items += [
            ("Customer-level extra conversions", c.certificate.objective, NUMBER),
            ("Customer-level proven bound", c.certificate.bound, NUMBER),
            ("Customer-level gap", c.certificate.gap, "0.0000%"),
            ("Customer-level status", c.certificate.status.value, None),
        ]
    kpis = kpi_block(KPI_TOP, 7, items)
    assert kpis.first_data_row == 5 and kpis.left == 7 and len(items) == kpi_rows  # formulas address H5, H7, H8
    notes = [
        f"Budget {p.budget:,.2f}; extra conversions counted against mailing {base}. "
        "Shares and whole customers per mailing; formulas stay live when you edit a share.",
    ]
    if data.counts_from_customers:
        notes.append("Customers per segment were counted from the Customers table.")
    return SheetSpec(
        PLAN,
        "Direct-mail coupon plan",
        [mailing_block, kpis, plan],
        notes=notes,
    )


def _budget_sheet(outcome: CouponOutcome) -> SheetSpec:
    r, p = outcome.result, outcome.data.problem
    assert r.share is not None
    spend = p.customers[:, None] * p.unit_cost * r.share  # (S, D)
    mids = [m.id for m in p.mailings]
    counts = r.counts
    assert counts is not None
    by_mailing = Block(
        3,
        1,
        ("mailing", "label", "customers", "expected_cost", "share_of_budget_used"),
        [[m.id, m.label, int(counts[:, d].sum()), float(spend[:, d].sum()), None] for d, m in enumerate(p.mailings)],
        title="Budget by mailing",
        formats={"customers": COUNT, "expected_cost": MONEY, "share_of_budget_used": SHARE},
    )
    rows = [list(row) for row in by_mailing.rows]
    total_ref = by_mailing.column_range("expected_cost")
    for i, row in enumerate(rows):
        row[4] = f"=IF(SUM({total_ref})=0,0,{by_mailing.cell(i, 'expected_cost')}/SUM({total_ref}))"
    by_mailing = Block(by_mailing.top, 1, by_mailing.header, rows, title=by_mailing.title, formats=by_mailing.formats)
    top = by_mailing.last_row + 3
    header = ("segment", *[f"cost_{m}" for m in mids], "total_cost")
    seg_rows = []
    for s, segment in enumerate(p.segments):
        first = column_letter(2)
        last = column_letter(1 + len(mids))
        row_no = top + 2 + s
        seg_rows.append([segment, *[float(v) for v in spend[s]], f"=SUM({first}{row_no}:{last}{row_no})"])
    by_segment = Block(
        top,
        1,
        header,
        seg_rows,
        title="Budget by segment",
        formats={h: MONEY for h in header[1:]},
        table_name="DMBudgetBySegment",
    )
    chart = Chart(
        kind="bar",
        block=by_segment,
        categories="segment",
        series=[Series(f"cost_{m}", title=f"{m} ({p.mailings[d].label})") for d, m in enumerate(mids)],
        title="Expected coupon cost by segment and mailing",
        anchor="H3",
        x_title="Segment",
        y_title="Expected cost",
        stacked=True,
        width_cm=20,
        height_cm=11,
    )
    return SheetSpec(BUDGET, "Budget use", [by_mailing, by_segment], [chart])


def _pareto_sheet(outcome: CouponOutcome) -> SheetSpec:
    r, p = outcome.result, outcome.data.problem
    rows = [
        [pt.budget, pt.extra_conversions, pt.cost_per_extra_conversion, pt.marginal_conversions, pt.budget_used]
        for pt in outcome.sweep
    ]
    rows.append([p.budget, r.objective, r.cost_per_extra_conversion, r.shadow_price, r.budget_used])
    header = (
        "budget",
        "extra_conversions",
        "cost_per_extra_conversion",
        "marginal_conversions_per_unit",
        "budget_used",
    )
    block = Block(
        4,
        1,
        header,
        rows,
        title="Budget sweep (last row: this plan's budget)",
        formats={
            "budget": MONEY,
            "extra_conversions": NUMBER,
            "cost_per_extra_conversion": MONEY,
            "marginal_conversions_per_unit": "0.000000",
            "budget_used": MONEY,
        },
        table_name="DMPareto",
    )
    last = len(rows) - 1
    chart = Chart(
        kind="scatter",
        block=block,
        categories="budget",
        series=[
            Series("extra_conversions", "Extra conversions", rows=(0, last - 1)),
            Series("extra_conversions", "This plan", rows=(last, last), marker_only=True),
        ],
        title="Extra conversions against budget",
        anchor="H4",
        x_title="Budget",
        y_title="Extra conversions",
        width_cm=20,
        height_cm=11,
    )
    notes = [
        f"From the smallest feasible budget ({p.min_feasible_budget:,.2f}) to where more budget buys nothing more."
    ]
    return SheetSpec(PARETO, "Budget against extra conversions", [block], [chart], notes=notes)


def _mailing_list_sheet(outcome: CouponOutcome) -> SheetSpec:
    c = outcome.customers
    assert c is not None and c.assignment is not None
    p = outcome.data.problem
    mids = [m.id for m in p.mailings]
    labels = [m.label for m in p.mailings]
    probs = c.customers.probability if c.customers.probability is not None else p.probability[c.customers.segment]
    chosen = probs[np.arange(len(c.assignment)), c.assignment]
    rows = [
        [as_text(cid), p.segments[s], mids[a], labels[a], float(q)]
        for cid, s, a, q in zip(c.customers.customer_id, c.customers.segment, c.assignment, chosen, strict=True)
    ]
    block = Block(
        4,
        1,
        ("customer_id", "segment", "mailing", "label", "probability"),
        rows,
        formats={"probability": "0.00"},
        table_name="DMMailingList",
    )
    cert = c.certificate
    note = (
        f"One mailing per customer: {cert.objective:,.2f} expected extra conversions, proven bound {cert.bound:,.2f} "
        f"(gap {100 * (cert.gap or 0):.4f}%), status {cert.status.value}, {cert.seconds:.2f} s."
    )
    return SheetSpec(MAILING_LIST, "Mailing list", [block], notes=[note])


def status_exit_code(status: Status) -> int:
    return {Status.INFEASIBLE: 3, Status.TIME_LIMIT: 4}.get(status, 0)
