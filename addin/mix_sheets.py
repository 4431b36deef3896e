"""The marketing-mix model's result sheets: Mix Plan, Mix Budget, Mix Pareto (and Mix Curves, from
:mod:`dmplan.addin.mix_curves`, when the workbook has a Curves table).

Layouts only: they describe the sheets (:mod:`dmplan.addin.sheets`) from a solved
:class:`dmplan.addin.mix_model.MixOutcome`; both writers render the description.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from dmplan.addin import mix_curves
from dmplan.addin.cells import as_number, as_text, column_letter, is_blank, normalize
from dmplan.addin.mix_model import COMPUTED, RESERVED, MixOutcome
from dmplan.addin.sheets import Block, Chart, Series, SheetSpec, kpi_block, sheet_ref, warning_items

PLAN, BUDGET, PARETO = "Mix Plan", "Mix Budget", "Mix Pareto"
KPI_TOP = 3
MONEY, PCT, SHARE, COEF = "#,##0.00", "0.0", "0.0%", "0.000000"

#: Usual name -> title of every sheet this model writes (finds unmarked results of earlier versions).
LEGACY_SHEETS = {
    PLAN: "Marketing-mix adjustment plan",
    BUDGET: "Spend before and after",
    PARETO: "Pareto: revenue against the number of changes",
    mix_curves.SHEET: mix_curves.TITLE,
}
NO_PLAN_TITLE = "Marketing-mix adjustment: no plan"


def sheets(outcome: MixOutcome) -> list[SheetSpec]:
    """The result sheets; without a plan only Mix Plan, saying why (the other sheets go)."""
    if outcome.result.change is None:
        return [_failure_sheet(outcome)]
    plan = _plan_block(outcome)
    out = [_plan_sheet(outcome, plan), _budget_sheet(outcome, plan)]
    if outcome.pareto:
        out.append(_pareto_sheet(outcome))
    data = outcome.data
    if data.fits:
        out.append(mix_curves.sheet(data.problem, outcome.result.change, data.curves, data.fits))
    return out


def _failure_sheet(outcome: MixOutcome) -> SheetSpec:
    cert = outcome.result.certificate
    items: list[tuple[str, Any, str | None]] = [
        ("Status", cert.status.value, None),
        ("Reason", outcome.reason or "no plan", None),
        *[("Rule or bound involved", name, None) for name in outcome.infeasible_rules],
        ("Proven bound", cert.bound, MONEY),
        ("Seconds", outcome.seconds, "0.000"),
        ("Solver", cert.solver, None),
        *warning_items([*outcome.data.warnings, *outcome.notes]),
    ]
    return SheetSpec(PLAN, NO_PLAN_TITLE, [kpi_block(KPI_TOP, 1, items, "Result")], role="plan")


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
        *mix_curves.kpi_items(
            outcome.curve_lift, outcome.data.revenue_model, outcome.data.curve_segments, outcome.data.fits
        ),
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
        *warning_items([*outcome.data.warnings, *outcome.notes]),
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
                _revenue_after(outcome, i, at),
            ]
        )
    formats = {h: MONEY for h in ("baseline", "min_spend", "max_spend", "min_change", "new_spend", "change")}
    formats.update(change_pct=SHARE, a="0.000000E+00", b="0.0000", c=MONEY, revenue_before=MONEY, revenue_after=MONEY)
    return Block(top, 1, header, rows, title="Plan per activity", formats=formats, table_name="Mix_Plan")


def _revenue_after(outcome: MixOutcome, i: int, at: Any) -> Any:
    """Live revenue after the plan: the quadratic, plus the MIN over the lines of a piecewise revenue fitted
    to Curves points; the solver's value when the curve has too many lines for a readable formula."""
    p = outcome.data.problem
    formula = mix_curves.revenue_formula(p, i, at("change"), at("a"), at("b"), at("c"))
    if formula is not None:
        return formula
    assert outcome.result.change is not None
    return float(p.revenues(outcome.result.change)[i])


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
    return SheetSpec(PLAN, LEGACY_SHEETS[PLAN], [kpis, plan], notes=notes, column_widths=widths, role="plan")


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
            table_name=f"Mix_BudgetBy{_safe_name(name)}",
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
    return SheetSpec(BUDGET, LEGACY_SHEETS[BUDGET], blocks, charts, notes=notes, role="budget")


def _rules_block(outcome: MixOutcome, plan: Block, top: int) -> Block:
    """Every rule's value before and after; 'after' is a live formula over the Mix Plan sheet."""
    data, r = outcome.data, outcome.result
    p = data.problem
    assert r.change is not None
    sheet = sheet_ref("plan")
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
        table_name="Mix_RuleCheck",
    )


def _pareto_sheet(outcome: MixOutcome) -> SheetSpec:
    r, p = outcome.result, outcome.data.problem
    # points with a plan first (the chart's rows), then those without one (listed, never charted)
    planned = [pt for pt in outcome.pareto if pt.result.change is not None]
    points = planned + [pt for pt in outcome.pareto if pt.result.change is None]
    best = max((pt.objective for pt in planned if pt.objective is not None), default=None)
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
        table_name="Mix_Pareto",
    )
    series = [Series("revenue_pct_of_best", "Revenue (% of best)", rows=(0, len(planned) - 1))]
    knee = [j for j, pt in enumerate(points) if pt.knee]
    # single points as columns that are blank but for one row, drawn as filled markers
    if knee:
        series.append(Series("knee_point", "Knee", marker_only=True))
    series.append(Series("this_plan", "This plan", marker_only=True))
    charts = (
        []
        if not planned
        else [
            Chart(
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
        ]
    )
    first = min((pt.k for pt in points), default=0)
    notes = [
        f"{len(points)} caps K from {first} to {p.n}; best revenue found {best:,.2f}."
        if best is not None
        else f"{len(points)} caps K from {first} to {p.n}."
    ]
    below = getattr(outcome.pareto, "message", "")  # the sweep's proven infeasible range and its rules
    if below:
        notes.append(below + ".")
    if knee:
        notes.append(f"Knee at K = {points[knee[0]].k}: beyond it each extra change buys less.")
    if len(planned) < len(points):
        notes.append(f"{len(points) - len(planned)} points have no plan (see status); they are not charted.")
    return SheetSpec(PARETO, LEGACY_SHEETS[PARETO], [block], charts, notes=notes, role="pareto")
