"""Response curves on the workbook side: the ``Curves`` input table and the ``Mix Curves`` result sheet.

``Curves`` holds one row per point: ``activity``, ``spend``, ``response`` and optionally ``response_lo`` /
``response_hi`` (a credible band), totals over the planning horizon. Meridian's ``response_curves`` table
(``Channel``, ``Spend``, ``Incremental Outcome``) pastes in as it is: those headers are aliases. Activities
with points get their revenue from a fit of them (:mod:`dmplan.solver.mix.curves`; Settings
``revenue_model``, ``curve_segments``, ``convex_part``); the others keep their ``a, b, c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dmplan.addin.sheets import Block, Chart, Series, SheetSpec
from dmplan.addin.tables import Settings, Table
from dmplan.solver.mix.curves import (
    CONVEX_PARTS,
    DEFAULT_SEGMENTS,
    REVENUE_MODELS,
    CurveError,
    CurveFit,
    CurvePoints,
    PlanOnCurves,
)
from dmplan.solver.mix.model import MixProblem

CURVES = "Curves"
SHEET = "Mix Curves"
TITLE = "Response curves: points, fit and plan"
#: contract column -> headers accepted for it (normalised), first match wins
ALIASES: dict[str, tuple[str, ...]] = {
    "activity": ("activity", "channel"),
    "spend": ("spend",),
    "response": ("response", "incremental_outcome"),
    "response_lo": ("response_lo", "incremental_outcome_lo", "ci_lo"),
    "response_hi": ("response_hi", "incremental_outcome_hi", "ci_hi"),
}
#: activities charted on Mix Curves (those whose spend moves most)
CHARTED = 4
#: a live revenue formula on Mix Plan lists at most this many lines (else the solver's value is written)
FORMULA_LINES = 64
MONEY = "#,##0.00"


def column(table: Table, name: str) -> str | None:
    """The header of ``table`` that holds contract column ``name`` (an alias counts), or None."""
    for alias in ALIASES[name]:
        if table.has(alias):
            return alias
    return None


def read_curves(table: Table | None) -> dict[str, CurvePoints]:
    """The points per activity (in the order the activities first appear); every error names its cell."""
    if table is None or not table.rows:
        return {}
    names = {key: column(table, key) for key in ALIASES}
    for key in ("activity", "spend", "response"):
        if names[key] is None:
            accepted = " or ".join(repr(a) for a in ALIASES[key])
            raise table.error(
                f"column {key!r} is missing (found: {', '.join(table.headers)}).",
                fix=f"Add a column headed {accepted}.",
            )
    activity_column, spend_column, response_column = names["activity"], names["spend"], names["response"]
    assert activity_column is not None and spend_column is not None and response_column is not None
    grouped: dict[str, dict[str, list[Any]]] = {}
    for row in range(len(table.rows)):
        key = table.text(row, activity_column)
        entry = grouped.setdefault(key, {"rows": [], "spend": [], "response": [], "response_lo": [], "response_hi": []})
        entry["rows"].append(row)
        entry["spend"].append(
            table.number(
                table.rows[row][table.index(spend_column)], row, spend_column, minimum=0, what="spend (horizon total)"
            )
        )
        entry["response"].append(
            table.number(table.rows[row][table.index(response_column)], row, response_column, what="response")
        )
        for band in ("response_lo", "response_hi"):
            header = names[band]
            if header is not None:
                value = table.rows[row][table.index(header)]
                entry[band].append(table.number(value, row, header, what=f"{band} (or delete the column)"))
    curves = {}
    has_band = names["response_lo"] is not None and names["response_hi"] is not None
    for key, entry in grouped.items():
        curves[key] = CurvePoints(
            key,
            np.array(entry["spend"]),
            np.array(entry["response"]),
            np.array(entry["response_lo"]) if has_band else None,
            np.array(entry["response_hi"]) if has_band else None,
            tuple(entry["rows"]),
        )
    return curves


def locate(error: CurveError, table: Table) -> Exception:
    """A solver-level curve error as one naming the Curves cell."""
    header = error.column
    if header is not None and header in ALIASES:
        header = column(table, header) or header
    row = error.row
    message = f"activity {error.key!r}: {error.message}" if error.key else error.message
    return table.error(message, row, header if header and table.has(header) else None, error.fix)


def settings(found: Settings) -> tuple[str, int, str]:
    """``revenue_model``, ``curve_segments`` and ``convex_part`` from the Settings table."""
    model = found.choice("revenue_model", REVENUE_MODELS, "quadratic")
    segments = found.number("curve_segments", DEFAULT_SEGMENTS, minimum=1, maximum=1000, integer=True)
    convex = found.choice("convex_part", CONVEX_PARTS, "fit")
    return model, int(segments or DEFAULT_SEGMENTS), convex


def revenue_coefficients(acts: Table, ids: Sequence[str], curves: dict[str, CurvePoints]) -> list[list[float]]:
    """``a``, ``b``, ``c`` per activity: required for activities without points, 0 (not read) for the others.

    The columns may be left out when every activity has points.
    """
    out: list[list[float]] = []
    spec = (
        ("a", "quadratic revenue coefficient a (0 or less)", None),
        ("b", "linear revenue coefficient b", None),
        ("c", "revenue at baseline c", 0.0),
    )
    missing = [i for i, key in enumerate(ids) if key not in curves]
    for name, what, default in spec:
        if not acts.has(name):
            if missing and default is None:
                raise acts.error(
                    f"column {name!r} is missing, and {len(missing)} activities have no points in a Curves table "
                    f"(e.g. {ids[missing[0]]!r}).",
                    fix=f"Add the column {name!r}, or points for every activity in the Curves table.",
                )
            out.append([0.0 if default is None else default] * len(ids))
            continue
        j = acts.index(name)
        values = []
        for i, key in enumerate(ids):
            if key in curves:
                values.append(0.0)  # revenue from the points (their fit sets a, b, c)
            else:
                values.append(acts.number(acts.rows[i][j], i, name, default=default, what=what))
        out.append(values)
    return out


def fit_text(fit: CurveFit) -> str:
    """The fitted revenue as the user reads it: the quadratic, or the pieces' knots (spend: response)."""
    if fit.piecewise is None:
        return f"{fit.a:.6g} x^2 + {fit.b:.6g} x + {fit.c:.6g} (x = spend - {fit.baseline:.6g})"
    return "; ".join(f"{s:.6g}: {r:.6g}" for s, r in zip(fit.knots, fit.knot_response, strict=True))


def revenue_formula(problem: MixProblem, i: int, change_cell: str, a_cell: str, b_cell: str, c_cell: str) -> Any:
    """Mix Plan's live revenue of activity ``i`` at its change: the quadratic plus the piecewise lines
    (``MIN`` over the lines active on its reachable range); None when there are too many lines."""
    text = f"={a_cell}*{change_cell}^2+{b_cell}*{change_cell}+{c_cell}"
    curve = problem.piecewise[i] if problem.piecewise else None
    if curve is None:
        return text
    lines = curve.active(
        float(problem.min_spend[i] - problem.baseline[i]), float(problem.max_spend[i] - problem.baseline[i])
    )
    if lines.size > FORMULA_LINES:
        return None
    terms = ",".join(f"{float(curve.intercept[k])!r}+{float(curve.slope[k])!r}*{change_cell}" for k in lines.tolist())
    return f"{text}+MIN({terms})"


def kpi_items(
    lift: PlanOnCurves | None, model: str, segments: int, fits: Sequence[CurveFit]
) -> list[tuple[str, Any, str | None]]:
    """Mix Plan's key figures of a plan on curves: the lift on the fit, on the points and on the band."""
    if lift is None or not fits:
        return []
    shown = model if model == "quadratic" else f"piecewise, {segments} segments"
    items: list[tuple[str, Any, str | None]] = [
        ("Revenue model (curves)", f"{shown}; {len(fits)} activities from Curves", None),
        ("Lift on the fitted curves", lift.fitted, MONEY),
        ("Lift on the curve points", lift.points, MONEY),
    ]
    if lift.low is not None and lift.high is not None:
        items += [("Lift on response_lo", lift.low, MONEY), ("Lift on response_hi", lift.high, MONEY)]
    return items


def summary_fields(
    lift: PlanOnCurves | None, model: str, segments: int, convex: str, fits: Sequence[CurveFit]
) -> dict[str, Any]:
    """The summary JSON's curve fields (None / empty without a Curves table)."""
    return {
        "revenue_model": model,
        "curve_segments": segments if model == "piecewise" else None,
        "convex_part": convex,
        "lift_fitted": None if lift is None else lift.fitted,
        "lift_points": None if lift is None else lift.points,
        "lift_band_low": None if lift is None else lift.low,
        "lift_band_high": None if lift is None else lift.high,
        "curves": [
            {
                "activity": f.activity,
                "model": f.model,
                "response_at_baseline": f.response_at_baseline,
                "a": f.a,
                "b": f.b,
                "c": f.c,
                "knots_spend": [float(v) for v in f.knots],
                "knots_response": [float(v) for v in f.knot_response],
                "max_error": f.max_error,
                "rms_error": f.rms_error,
                "max_error_share": f.max_error_share,
                "rms_error_share": f.rms_error_share,
                "marginal_points": f.marginal_points,
                "marginal_fit": f.marginal_fit,
                "convex_range": list(f.convex_range) if f.convex_range else None,
                "convex_max_error": f.convex_max_error,
                "min_spend": f.min_spend,
                "min_change": f.min_change,
                "note": f.note,
            }
            for f in fits
        ],
    }


def sheet(
    problem: MixProblem, change: np.ndarray, curves: dict[str, CurvePoints], fits: Sequence[CurveFit]
) -> SheetSpec:
    """``Mix Curves``: the fit report per activity, then points against the fit for the activities that move
    most, each with a native chart marking the baseline and the planned spend."""
    index = {key: i for i, key in enumerate(problem.activity)}
    header = (
        "activity",
        "model",
        "points",
        "baseline",
        "planned_spend",
        "response_at_baseline",
        "max_error",
        "max_error_pct",
        "rms_error",
        "rms_error_pct",
        "marginal_points",
        "marginal_fit",
        "convex_from",
        "convex_to",
        "convex_max_error",
        "fit",
        "note",
    )
    rows = []
    for fit in fits:
        i = index[fit.activity]
        convex = fit.convex_range
        rows.append(
            [
                fit.activity,
                fit.model,
                int(curves[fit.activity].spend.size),
                fit.baseline,
                float(problem.baseline[i] + change[i]),
                fit.response_at_baseline,
                fit.max_error,
                fit.max_error_share,
                fit.rms_error,
                fit.rms_error_share,
                fit.marginal_points,
                fit.marginal_fit,
                None if convex is None else convex[0],
                None if convex is None else convex[1],
                fit.convex_max_error,
                fit_text(fit),
                fit.note or None,
            ]
        )
    formats = {
        h: MONEY
        for h in (
            "baseline",
            "planned_spend",
            "response_at_baseline",
            "max_error",
            "rms_error",
            "convex_from",
            "convex_to",
            "convex_max_error",
        )
    }
    formats.update(max_error_pct="0.000%", rms_error_pct="0.000%", marginal_points="0.0000", marginal_fit="0.0000")
    report = Block(
        3,
        1,
        header,
        rows,
        title="Fit per activity (errors on the points within the reachable spend)",
        formats=formats,
        table_name="Mix_Curves",
    )
    blocks = [report]
    charts = []
    moved = sorted(fits, key=lambda f: -abs(change[index[f.activity]]) / max(abs(f.baseline), 1e-300))
    top = report.last_row + 3
    for number, fit in enumerate(moved[:CHARTED], start=1):
        i = index[fit.activity]
        points = curves[fit.activity].sorted()
        planned = float(problem.baseline[i] + change[i])
        spend = np.unique(np.concatenate([points.spend, [fit.baseline, planned]]))
        low, high = float(problem.min_spend[i]), float(problem.max_spend[i])
        data = []
        for s in spend.tolist():
            on_point = np.flatnonzero(points.spend == s)
            inside = low - 1e-9 * max(1.0, abs(low)) <= s <= high + 1e-9 * max(1.0, abs(high))
            fitted = float(fit.revenue(s - fit.baseline)) if inside else None
            data.append(
                [
                    s,
                    float(points.response[on_point[0]]) if on_point.size else None,
                    fitted,
                    fitted if s == fit.baseline else None,
                    fitted if s == planned else None,
                ]
            )
        columns = ("spend", "points", "fit", "baseline", "plan")
        block = Block(
            top,
            1,
            columns,
            data,
            title=f"{fit.activity}: points and fit",
            formats=dict.fromkeys(columns, MONEY),
            table_name=f"Mix_CurvePoints{number}",
        )
        blocks.append(block)
        charts.append(
            Chart(
                kind="scatter",
                block=block,
                categories="spend",
                series=[
                    Series("points", "Points", marker_only=True),
                    Series("fit", f"Fit ({fit.model})"),
                    Series("baseline", "Baseline", marker_only=True),
                    Series("plan", "Plan", marker_only=True),
                ],
                title=f"{fit.activity}: response against spend",
                anchor=f"H{top}",
                x_title="Spend (horizon total)",
                y_title="Response",
                width_cm=18,
                height_cm=9,
            )
        )
        top = max(block.last_row + 3, top + 20)
    worst = max(fits, key=lambda f: f.max_error_share)
    notes = [
        f"{len(fits)} activities revenued from their points; worst fit {worst.activity} "
        f"({100 * worst.max_error_share:.3f}% of its response at baseline)."
    ]
    s_shaped = [f.activity for f in fits if f.convex_range is not None]
    if s_shaped:
        notes.append(
            f"{len(s_shaped)} curves are convex (S-shaped) over part of their range (convex_from .. convex_to): "
            "no concave model follows them there; convex_part = raise_min_spend keeps the plan out of it."
        )
    return SheetSpec(SHEET, TITLE, blocks, charts, notes=notes, column_widths={1: 24.0, 16: 60.0}, role="curves")
