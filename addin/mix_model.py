"""The marketing-mix model on the workbook side: read the contract's tables, run the model, summarise it.

Input tables (see README, "Workbook contract"): ``Activities``, optionally ``Rules``, and the mix keys
of the shared ``Settings`` table. The result sheets are laid out by :mod:`dmplan.addin.mix_sheets`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dmplan.addin import mix_curves
from dmplan.addin.cells import TextNumberError, as_number, as_text, display, is_blank, normalize, number_text
from dmplan.addin.contract import Deadline, RunOptions, TableSource
from dmplan.addin.tables import Settings, Table, locate, require_table
from dmplan.solver.common import InputError, Status
from dmplan.solver.mix import MixProblem, MixResult, Rule, available_solvers, solve
from dmplan.solver.mix.backends import BACKENDS
from dmplan.solver.mix.curves import CurveError, CurveFit, CurvePoints, PlanOnCurves, apply_curves, evaluate_plan
from dmplan.solver.mix.diagnose import conflicting_rows
from dmplan.solver.mix.pareto import ParetoPoint, ParetoSweep, pareto_over_changes

ACTIVITIES, RULES = "Activities", "Rules"
RESERVED = ("activity", "baseline", "min_spend", "max_spend", "min_change", "a", "b", "c")
COMPUTED = ("new_spend", "change", "change_pct", "change_region", "revenue_before", "revenue_after")
FORMULATIONS = ("misocp", "miqp")
SOLVERS: tuple[str, ...] = ("auto", *BACKENDS)
#: The Settings keys this model reads (any other key gets a warning naming the closest one).
SETTINGS: tuple[str, ...] = (
    "budget_min",
    "budget_max",
    "budget_min_ratio",
    "budget_max_ratio",
    "max_changes",
    "max_changes_ratio",
    "formulation",
    "solver",
    "gap",
    "pareto_points",
    "revenue_model",
    "curve_segments",
    "convex_part",
)
#: The sweep is skipped when less than this share of the time limit is left after the solve.
SWEEP_MIN_SHARE = 0.05
#: With a time limit, the solve gets at most this share of it; the Pareto sweep gets the rest.
SOLVE_SHARE = 0.6
#: Share of the time limit kept back from the sweep: its last LP round cannot be interrupted (about 0.7 s
#: on the retailer case at a 10 s limit).
SWEEP_RESERVE = 0.1


@dataclass
class MixInput:
    """What the workbook says: the problem, the activities' attributes and the run settings."""

    problem: MixProblem
    attributes: dict[str, list[Any]]  #: further Activities columns as typed (channel, region, week ...)
    text_attributes: list[str]  #: attributes holding text (grouping candidates for Mix Budget)
    rule_rows: list[dict[str, Any]]  #: rule, column, match, on, lower, upper as read (for the rule check)
    formulation: str
    solver: str
    gap: float
    pareto_points: int
    warnings: list[str] = field(default_factory=list)
    curves: dict[str, CurvePoints] = field(default_factory=dict)  #: points per activity (Curves table)
    fits: list[CurveFit] = field(default_factory=list)  #: their fits, in activity order
    revenue_model: str = "quadratic"
    curve_segments: int = 8
    convex_part: str = "fit"


# ------------------------------------------------------------------------------ reading
def _optional_number(table: Table, row: int, column: str) -> float | None:
    if not table.has(column):
        return None
    value = table.rows[row][table.index(column)]
    if is_blank(value):
        return None
    return table.number(value, row, column, what="number (or leave the cell blank)")


def match_key(value: Any) -> str:
    """How a cell and a rule's match value compare: case-insensitive text, numbers as typed (3 == '3')."""
    return as_text(value).lower()


class ColumnIndex:
    """The rows of each value of an Activities column, built once per column: a rule's weights are then
    one look-up, not a pass over every activity (2,600 rules x 3,000 activities are 7.8 million comparisons)."""

    def __init__(self, activities: Table) -> None:
        self.activities = activities
        self._index: dict[str, dict[str, list[int]]] = {}

    def rows(self, column: str, match: Any) -> list[int]:
        key = normalize(column)
        if key not in self._index:
            index: dict[str, list[int]] = {}
            for i, value in enumerate(self.activities.values(column)):
                problem = self.activities.unreadable(value, i, column)
                if problem is not None:  # an error is no value: the rule would silently skip the activity
                    raise problem
                if not is_blank(value):
                    index.setdefault(match_key(value), []).append(i)
            self._index[key] = index
        return self._index[key].get(match_key(match), [])


def _is_number(value: Any) -> bool:
    try:
        return as_number(value) is not None
    except TextNumberError:
        return False


def _is_text_column(values: list[Any]) -> bool:
    """An attribute column with text in it: a grouping candidate for Mix Budget."""
    return any(not is_blank(v) and not _is_number(v) for v in values)


def read_rules(table: Table, activities: Table, n: int) -> tuple[list[Rule], list[dict[str, Any]]]:
    """The Rules table as solver rules; every error names the Rules (or Activities) cell."""
    names = table.ids("rule")
    columns = table.texts("column")
    matches = table.values("match") if table.has("match") else [None] * len(names)
    ons = table.values("on") if table.has("on") else [None] * len(names)
    rules: list[Rule] = []
    rows: list[dict[str, Any]] = []
    index = ColumnIndex(activities)
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
            raise table.error(f"{display(ons[r])} is not 'spend' or 'change'.", r, "on", fix="Use spend or change.")
        lower, upper = _optional_number(table, r, "lower"), _optional_number(table, r, "upper")
        if lower is not None and upper is not None and lower > upper:
            raise table.error(
                f"rule {name!r}: lower {display(lower)} is above upper {display(upper)}.",
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
            weights = np.zeros(n)
            weights[index.rows(column, match)] = 1.0
            if not weights.any():
                raise table.error(
                    f"rule {name!r}: no activity has {column} = {display(match)}.",
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
                f"max_changes_ratio {display(ratio)} is not between 0 and 1 (a share of the {n} activities).",
                fix="Enter a share between 0 and 1, e.g. 0.25 for a quarter of the activities.",
            )
        return round(ratio * n)
    value = settings.number("max_changes")
    if value is None:
        return None
    if not (0 <= value <= n and value == math.floor(value)):
        raise settings.error(
            "max_changes",
            f"max_changes {display(value)} is not a whole number between 0 and {n} (the number of activities).",
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
    baseline = acts.numbers("baseline", minimum=0, what="baseline spend")
    low = acts.numbers("min_spend", minimum=0, what="minimum spend")
    high = acts.numbers("max_spend", minimum=0, what="maximum spend")
    change = acts.numbers("min_change", default=0.0, minimum=0, what="minimum change")
    curves_table = source.table(mix_curves.CURVES)
    curves = mix_curves.read_curves(curves_table)
    a, b, c = mix_curves.revenue_coefficients(acts, ids, curves)
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
    from_option = options.solver is not None and normalize(options.solver) in SOLVERS
    if from_option:
        solver = normalize(options.solver or "")  # an override naming a coupon solver applies to the coupon model
    if solver != "auto" and solver not in available_solvers():
        message = f"the solver {solver} is not installed or not licensed here."
        fix = f"Use auto or one of the solvers available: {', '.join(available_solvers())}."
        if from_option:
            raise InputError(message, where="--solver option", fix=fix)
        raise settings.error("solver", message, fix=fix)
    gap = settings.number("gap", 1e-4, minimum=0, maximum=1)
    points = settings.number("pareto_points", 20, minimum=2, maximum=200, integer=True)
    revenue_model, segments, convex_part = mix_curves.settings(settings)
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
        raise locate(error, settings, {ACTIVITIES: (acts, "activity"), RULES: (rules_table, "rule")}) from None
    fits: list[CurveFit] = []
    if curves:
        assert curves_table is not None
        try:
            problem, fits = apply_curves(problem, curves, revenue_model, segments, convex_part)  # type: ignore[arg-type]
        except CurveError as error:
            raise mix_curves.locate(error, curves_table) from None
    tables = [acts, rules_table, settings.table, curves_table]
    return MixInput(
        problem,
        attributes,
        text_attributes,
        rule_rows,
        formulation,
        solver,
        float(gap if gap is not None else 1e-4),
        int(points or 20),
        [w for t in tables if t is not None for w in t.warnings],
        curves,
        fits,
        revenue_model,
        segments,
        convex_part,
    )


# ------------------------------------------------------------------------------ running
@dataclass
class MixOutcome:
    data: MixInput
    result: MixResult
    pareto: list[ParetoPoint]
    seconds: float
    notes: list[str] = field(default_factory=list)
    infeasible_rules: list[str] = field(default_factory=list)
    curve_lift: PlanOnCurves | None = None  #: the plan's lift on the fit, the points and the band (Curves)

    @property
    def status(self) -> Status:
        return self.result.status

    @property
    def reason(self) -> str | None:
        """Why there is no plan (None when there is one)."""
        if self.result.change is not None:
            return None
        return self.result.certificate.message or self.result.status.value


def run_model(data: MixInput, options: RunOptions | None = None) -> MixOutcome:
    """The solve, then the Pareto sweep over K in what is left of ``options.time_limit`` (the limit
    bounds both). The solve gets at most :data:`SOLVE_SHARE` of the limit (a model whose gap does not
    close would otherwise leave the sweep nothing); the sweep is skipped, with a note, when little is left."""
    options = options or RunOptions()
    deadline = Deadline(options.time_limit)
    solve_limit = None if options.time_limit is None else SOLVE_SHARE * options.time_limit
    result = solve(
        data.problem,
        solver=data.solver,
        formulation=data.formulation,
        time_limit=solve_limit,
        gap=data.gap,
        progress=options.progress,
    )
    sweep: ParetoSweep = ParetoSweep()
    notes: list[str] = []
    rules: list[str] = []
    if result.status == Status.INFEASIBLE:
        rules = conflicting_rows(data.problem)
    left = deadline.remaining()
    if result.change is None:
        pass
    elif left is not None and options.time_limit is not None and left < SWEEP_MIN_SHARE * options.time_limit:
        notes.append(
            f"The Pareto sweep was skipped: the solve used {number_text(round(deadline.elapsed(), 1))} s of the "
            f"{number_text(options.time_limit)} s time limit."
        )
    else:
        sweep = pareto_over_changes(
            data.problem,
            data.pareto_points,
            solver=data.solver,
            time_limit=None if left is None else max(0.0, left - SWEEP_RESERVE * (options.time_limit or 0.0)),
            gap=data.gap,
            progress=options.progress,
            plan=result.change,  # a warm start for every K it fits and the source of cut-down plans below
        )
        if sweep.message:  # the K below the sweep's first point: proven infeasible, and the rules that force it
            notes.append(sweep.message + ".")
        missing = [pt.k for pt in sweep if pt.result.change is None]
        if missing:
            notes.append(
                f"{len(missing)} of {len(sweep)} Pareto points have no plan (K = "
                f"{', '.join(str(k) for k in missing[:10])}{' ...' if len(missing) > 10 else ''}); "
                "they are not charted."
            )
    lift = None
    if data.curves and result.change is not None:
        lift = evaluate_plan(data.problem, result.change, data.curves)
    return MixOutcome(data, result, sweep, deadline.elapsed(), notes, rules, lift)


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
        "reason": outcome.reason,
        "infeasible_rules": outcome.infeasible_rules,
        "warnings": [*outcome.data.warnings, *outcome.notes],
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
        **mix_curves.summary_fields(
            outcome.curve_lift,
            outcome.data.revenue_model,
            outcome.data.curve_segments,
            outcome.data.convex_part,
            outcome.data.fits,
        ),
        "pareto": [
            {
                "k": pt.k,
                "k_share": pt.k_share,
                "objective": pt.objective,
                "revenue_share": pt.revenue_share,
                "status": pt.status.value,
                "has_plan": pt.has_plan,
                "bound": pt.bound,
                "gap": pt.gap,
                "plan_from": pt.source,
                "knee": pt.knee,
            }
            for pt in outcome.pareto
        ],
        # every K below this is proven infeasible (the LP of the fewest changes), and the rows forcing it
        "pareto_infeasible_below": getattr(outcome.pareto, "infeasible_below", 0),
        "pareto_forcing_rules": list(getattr(outcome.pareto, "forcing_rows", ()))[:20],
    }
