"""The coupon plan's result sheets: DM Plan, DM Budget, DM Pareto and DM Mailing List.

Layouts only: they describe the sheets (:mod:`dmplan.addin.sheets`) from a solved
:class:`dmplan.addin.coupon_model.CouponOutcome`; both writers render the description.
"""

from __future__ import annotations

from typing import Any

from dmplan.addin.cells import as_text, column_letter
from dmplan.addin.coupon_model import CouponOutcome, chosen_probability
from dmplan.addin.sheets import Block, Chart, Series, SheetSpec, kpi_block, warning_items

PLAN, BUDGET, PARETO, MAILING_LIST = "DM Plan", "DM Budget", "DM Pareto", "DM Mailing List"
KPI_TOP, KPI_LEFT = 3, 7  #: the KPI block's top-left cell on DM Plan
MONEY, SHARE, NUMBER, COUNT = "#,##0.00", "0.0%", "#,##0.00", "#,##0"

#: Usual name -> title of every sheet this model writes (finds unmarked results of earlier versions).
LEGACY_SHEETS = {
    PLAN: "Direct-mail coupon plan",
    BUDGET: "Budget use",
    PARETO: "Budget against extra conversions",
    MAILING_LIST: "Mailing list",
}


def sheets(outcome: CouponOutcome) -> list[SheetSpec]:
    """The result sheets; without a segment plan only DM Plan, saying why (the other sheets go)."""
    if outcome.result.share is None:
        return [_failure_sheet(outcome)]
    out = [_plan_sheet(outcome), _budget_sheet(outcome)]
    if outcome.sweep:
        out.append(_pareto_sheet(outcome))
    if _mailing_list_on_sheet(outcome):
        out.append(_mailing_list_sheet(outcome))
    return out


MAILING_LIST_TOP = 4  #: the header row of the DM Mailing List table
SHEET_ROWS = 1_048_576  #: rows of an Excel sheet


def _mailing_list_on_sheet(outcome: CouponOutcome) -> bool:
    """The sheet is written when there is a plan, no mailing-list file was asked for, and it fits."""
    c = outcome.customers
    if c is None or c.assignment is None or outcome.mailing_list_file is not None:
        return False
    return len(c.assignment) <= SHEET_ROWS - MAILING_LIST_TOP


def _mailing_list_note(outcome: CouponOutcome) -> str | None:
    """Where the mailing list went when it is not on its sheet (a note on DM Plan)."""
    c = outcome.customers
    if c is None or not c.certificate.status.has_plan:
        return None
    if outcome.mailing_list_file is not None:
        return f"The mailing list ({c.customer_count:,} customers) was written to {outcome.mailing_list_file}."
    if c.assignment is None:
        return (
            f"The mailing list ({c.customer_count:,} customers) stayed on the cluster: set mailing_list_file "
            "in Settings, or --mailing-list, to have the workers write it."
        )
    if not _mailing_list_on_sheet(outcome):
        return (
            f"The mailing list ({c.customer_count:,} customers) does not fit a sheet "
            f"(at most {SHEET_ROWS - MAILING_LIST_TOP:,} rows): set mailing_list_file in Settings, "
            "or --mailing-list, to write it to a CSV or Parquet file."
        )
    return None


def _failure_sheet(outcome: CouponOutcome) -> SheetSpec:
    cert = outcome.result.certificate
    items: list[tuple[str, Any, str | None]] = [
        ("Status", cert.status.value, None),
        ("Reason", outcome.reason or "no plan", None),
        *warning_items([*outcome.data.warnings, *outcome.notes]),
    ]
    return SheetSpec(PLAN, LEGACY_SHEETS[PLAN], [kpi_block(3, 1, items, "Result")], role="plan")


def kpi_items(outcome: CouponOutcome) -> list[tuple[str, Any, str | None]]:
    """The KPI block of DM Plan: (label, value, number format); totals become live formulas there."""
    r, p = outcome.result, outcome.data.problem
    cert = r.certificate
    items: list[tuple[str, Any, str | None]] = [
        ("Extra conversions (objective)", r.objective, NUMBER),
        ("Expected conversions", r.expected_conversions, NUMBER),
        ("Budget used", r.budget_used, MONEY),
        ("Budget available", p.budget, MONEY),
        ("Budget left", None, MONEY),
        ("Cost per extra conversion", r.cost_per_extra_conversion, MONEY),
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
    items += warning_items([*outcome.data.warnings, *outcome.notes])
    return items


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
    kpi_rows = len(kpi_items(outcome))
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
    plan = Block(top, left, header, rows, title="Plan per segment", formats=formats, table_name="DMPlan_Allocation")

    def total(column: str) -> str:
        return f"=SUM({plan.column_range(column)})"

    labels = [label for label, _, _ in kpi_items(outcome)]

    def at(label: str) -> str:  # the KPI value cell of ``label``: the formulas below refer to it
        return kpi_block(KPI_TOP, KPI_LEFT, [(x, None, None) for x in labels]).cell(labels.index(label), "Value")

    extra, used, available = at("Extra conversions (objective)"), at("Budget used"), at("Budget available")
    formulas = {
        "Extra conversions (objective)": total("extra_conversions"),
        "Expected conversions": total("expected_conversions"),
        "Budget used": total("expected_cost"),
        "Budget left": f"={available}-{used}",
        "Cost per extra conversion": f'=IF({extra}=0,"",{used}/{extra})',
    }
    items = [(label, formulas.get(label, value), fmt) for label, value, fmt in kpi_items(outcome)]
    kpis = kpi_block(KPI_TOP, KPI_LEFT, items)
    notes = [
        f"Budget {p.budget:,.2f}; extra conversions counted against mailing {base}. "
        "Shares and whole customers per mailing; formulas stay live when you edit a share.",
    ]
    if data.counts_from_customers:
        where = "the Customers table" if data.customers_file is None else f"the customers file {data.customers_file}"
        notes.append(f"Customers per segment were counted from {where}.")
    listed = _mailing_list_note(outcome)
    if listed is not None:
        notes.append(listed)
    return SheetSpec(PLAN, LEGACY_SHEETS[PLAN], [mailing_block, kpis, plan], notes=notes, role="plan")


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
        table_name="DMPlan_BudgetBySegment",
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
    return SheetSpec(BUDGET, LEGACY_SHEETS[BUDGET], [by_mailing, by_segment], [chart], role="budget")


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
        table_name="DMPlan_Pareto",
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
    return SheetSpec(PARETO, LEGACY_SHEETS[PARETO], [block], [chart], notes=notes, role="pareto")


def _mailing_list_sheet(outcome: CouponOutcome) -> SheetSpec:
    c = outcome.customers
    assert c is not None and c.assignment is not None and c.customers is not None
    p = outcome.data.problem
    mids = [m.id for m in p.mailings]
    labels = [m.label for m in p.mailings]
    chosen = chosen_probability(c)
    rows = [
        [as_text(cid), p.segments[s], mids[a], labels[a], float(q)]
        for cid, s, a, q in zip(c.customers.customer_id, c.customers.segment, c.assignment, chosen, strict=True)
    ]
    block = Block(
        MAILING_LIST_TOP,
        1,
        ("customer_id", "segment", "mailing", "label", "probability"),
        rows,
        formats={"probability": "0.00"},
        table_name="DMPlan_MailingList",
    )
    cert = c.certificate
    note = (
        f"One mailing per customer: {cert.objective:,.2f} expected extra conversions, proven bound {cert.bound:,.2f} "
        f"(gap {100 * (cert.gap or 0):.4f}%), status {cert.status.value}, {cert.seconds:.2f} s."
    )
    return SheetSpec(MAILING_LIST, LEGACY_SHEETS[MAILING_LIST], [block], notes=[note], role="mailing_list")
