"""The coupon plan on the workbook side: read the contract's tables, run the model, summarise it.

Input tables (see README, "Workbook contract"): ``Segments``, ``Mailings``, ``Settings`` and,
optionally, ``Customers``. The result sheets are laid out by :mod:`dmplan.addin.coupon_sheets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dmplan.addin.cells import as_text, display, normalize
from dmplan.addin.contract import Deadline, RunOptions, TableSource
from dmplan.addin.tables import Settings, Table, locate, require_table
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
from dmplan.solver.coupon.chunks import segment_counts
from dmplan.solver.coupon.customer_plan import DEFAULT_GAP
from dmplan.solver.coupon.lagrangian import solve_scored

SOLVERS: tuple[str, ...] = ("highs", "pulp")
#: The Settings keys this model reads (any other key gets a warning naming the closest one).
SETTINGS: tuple[str, ...] = (
    "budget",
    "baseline_mailing",
    "coupon_solver",
    "pareto_budget_from",
    "pareto_budget_to",
    "pareto_points",
    "customers_file",
    "mailing_list_file",
    "dask_scheduler",
)
SEGMENT_IDS = ("segment", "segment_id")
RESERVED = {"segment", "segment_id", "customers", "customer_id"}
PROB_PREFIX = "prob_"


@dataclass
class CouponInput:
    """What the workbook says: the problem, the optional customer list and sweep settings."""

    problem: CouponProblem
    keys: dict[str, list[str]]  #: descriptive key columns of Segments (age_cat, freq_cat ...)
    customers: CustomerList | None
    pareto_from: float | None
    pareto_to: float | None
    pareto_points: int
    solver: str
    counts_from_customers: bool
    warnings: list[str]
    customers_file: Path | None = None  #: the customer list came from these files, not a Customers table
    mailing_list_file: Path | None = None  #: where the mailing list is to be written
    cluster: Any = None  #: the customers file's partitions on a Dask cluster (a DaskStore), not in ``customers``


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
    values = table.numbers("coupon_value", minimum=0, what="coupon value")
    pieces = table.numbers("cost_per_piece", default=0.0, minimum=0, what="cost per piece")
    shares = table.numbers("min_share", default=0.0, minimum=0, maximum=1, what="share (10% or 0.1)")
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
    cols = [table.numbers(c, minimum=0, maximum=1, what="probability") for c in columns]
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

    budget = settings.number("budget", required=True, minimum=0)
    baseline = settings.text("baseline_mailing")
    if baseline is not None:
        match = [m.id for m in mailings if normalize(m.id) == normalize(baseline)]
        if not match:
            raise settings.error(
                "baseline_mailing",
                f"{display(baseline)} is not a mailing id.",
                fix=f"Use one of: {', '.join(m.id for m in mailings)}.",
            )
        baseline = match[0]

    def problem_of(counts: np.ndarray) -> CouponProblem:
        try:
            return CouponProblem(tuple(segment_ids), counts, mailings, probability, float(budget or 0.0), baseline)
        except InputError as error:
            located: dict[str, tuple[Table | None, str]] = {
                "Segments": (segments_table, id_col),
                "Mailings": (mailings_table, "mailing"),
            }
            raise locate(error, settings, located) from None

    customers_table = source.table("Customers")
    customers = None
    cluster = None
    if options.customers_file is not None:
        if customers_table is not None:
            raise customers_table.error(
                f"the workbook has a Customers table and a customers file ({options.customers_file}).",
                fix="Remove one of them: the customer list comes from one place.",
            )
        from dmplan.addin.customer_files import Segments, read_customers  # polars: only for customer files

        listed = Segments(segment_ids, {normalize(h): v for h, v in keys.items()}, [m.id for m in mailings])
        if options.dask_scheduler:
            cluster = _load_on_cluster(options.dask_scheduler, options.customers_file, listed, problem_of)
        else:
            customers = read_customers(options.customers_file, listed)
    elif customers_table is not None:
        customers_table.require_rows()
        customers = _read_customers(customers_table, segments_table, id_col, segment_ids, keys, mailings)
    if segments_table.has("customers"):
        counts = np.array(segments_table.numbers("customers", minimum=0, integer=True, what="count of customers"))
        from_customers = False
    elif customers is not None:
        counts = np.bincount(customers.segment, minlength=len(segment_ids)).astype(float)
        from_customers = True
    elif cluster is not None:
        counts = np.sum(cluster.map(segment_counts, len(segment_ids)), axis=0).astype(float)
        from_customers = True
    else:
        raise segments_table.error(
            "column 'customers' is missing and there is no Customers table to count customers from.",
            fix="Add a column 'customers' with the number of customers per segment, or a Customers table.",
        )

    problem = problem_of(counts)
    points = settings.number("pareto_points", 20, minimum=2, maximum=200, integer=True)
    budget_from = settings.number("pareto_budget_from", minimum=0)
    budget_to = settings.number("pareto_budget_to", minimum=0)
    if budget_from is not None and budget_to is not None and budget_from > budget_to:
        raise settings.error(
            "pareto_budget_from",
            f"pareto_budget_from ({display(budget_from)}) is above pareto_budget_to ({display(budget_to)}).",
            fix="Make pareto_budget_from the smaller budget of the sweep, or clear one of them.",
        )
    solver = settings.choice("coupon_solver", SOLVERS, "highs")
    if options.solver is not None and normalize(options.solver) in SOLVERS:
        solver = normalize(options.solver)  # an override naming a mix solver applies to the mix model only
    tables = [segments_table, mailings_table, customers_table, settings.table]
    warnings = [w for t in tables if t is not None for w in t.warnings]
    return CouponInput(
        problem,
        keys,
        customers,
        budget_from,
        budget_to,
        int(points or 20),
        solver,
        from_customers,
        warnings,
        options.customers_file,
        options.mailing_list_file,
        cluster,
    )


def _load_on_cluster(address: str, spec: Path, listed: Any, problem_of: Any) -> Any:
    """The customers file's partitions on the cluster at ``address`` (a DaskStore).

    The coupon economics come from the tables before the counts do (the counts are the
    cluster's): the problem is first checked with no customers."""
    from dmplan.addin.dask_customers import connect, disconnect, load

    provisional = problem_of(np.zeros(len(listed.ids)))
    client = connect(address)
    try:
        return load(client, spec, listed, provisional)
    except BaseException:
        disconnect(client)
        raise


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


# ------------------------------------------------------------------------------ running
@dataclass
class CouponOutcome:
    data: CouponInput
    result: CouponResult
    sweep: list[BudgetPoint]
    customers: CustomerResult | None
    seconds: float
    notes: list[str]
    mailing_list_file: Path | None = field(default=None)  #: where the mailing list was written

    @property
    def status(self) -> Status:
        status = self.result.certificate.status
        if self.customers is not None and not self.customers.certificate.status.has_plan:
            return self.customers.certificate.status
        return status

    @property
    def reason(self) -> str | None:
        """Why there is no plan (None when there is one)."""
        if self.status.has_plan:
            return None
        for cert in (self.result.certificate, self.customers.certificate if self.customers else None):
            if cert is not None and not cert.status.has_plan:
                return cert.message or cert.status.value
        return self.status.value


def run_model(data: CouponInput, options: RunOptions | None = None) -> CouponOutcome:
    """Segment LP, customer-level plan (with a customer list), then the budget sweep, all within
    ``options.time_limit``: the sweep is skipped, with a note, when the plan used the time up."""
    options = options or RunOptions()
    deadline = Deadline(options.time_limit)
    result = solve(data.problem, solver=data.solver)
    customer_result = None
    written = None
    if data.cluster is not None:
        from dmplan.addin.dask_customers import disconnect

        try:
            customer_result, written = _run_on_cluster(data, deadline, options)
        finally:
            disconnect(data.cluster.client)
    elif data.customers is not None:
        customer_result = solve_customers(
            data.problem, data.customers, time_limit=deadline.remaining(), progress=options.progress
        )
    sweep: list[BudgetPoint] = []
    notes: list[str] = []
    if deadline.expired():
        notes.append("The budget sweep was skipped: the plan used the whole time limit.")
    else:
        sweep = budget_sweep(data.problem, data.pareto_points, data.pareto_from, data.pareto_to)
    if data.mailing_list_file is not None and customer_result is not None and customer_result.assignment is not None:
        written = _write_mailing_list(data.mailing_list_file, customer_result)
    return CouponOutcome(data, result, sweep, customer_result, deadline.elapsed(), notes, written)


def _run_on_cluster(data: CouponInput, deadline: Deadline, options: RunOptions) -> tuple[CustomerResult, Path | None]:
    """The customer-level plan on the cluster; the workers write the mailing list (when asked for)."""
    from dmplan.addin.dask_customers import write_parts

    store = data.cluster
    plan = solve_scored(
        data.problem, store, time_limit=deadline.remaining(), gap=DEFAULT_GAP, progress=options.progress
    )
    result = CustomerResult(
        data.problem, None, plan.certificate, None, plan.lp_bound, "lagrangian on dask", plan.details, store.size
    )
    written = None
    if data.mailing_list_file is not None and plan.overrides is not None:
        assert plan.duals is not None and plan.window is not None
        written = write_parts(store, data.mailing_list_file, data.problem, plan.duals, plan.window, plan.overrides)
    return result, written


def chosen_probability(result: CustomerResult) -> np.ndarray:
    """Each customer's conversion probability for the mailing the plan sends it."""
    assert result.assignment is not None and result.customers is not None
    c, p = result.customers, result.problem
    rows = np.arange(len(result.assignment))
    if c.probability is not None:
        return c.probability[rows, result.assignment]
    return p.probability[c.segment, result.assignment]


def _write_mailing_list(path: Path, result: CustomerResult) -> Path:
    from dmplan.addin.customer_files import write_mailing_list  # polars: only for a mailing-list file

    assert result.assignment is not None and result.customers is not None
    p, c = result.problem, result.customers
    return write_mailing_list(
        path,
        c.customer_id,
        p.segments,
        c.segment,
        p.mailing_ids,
        [m.label for m in p.mailings],
        result.assignment,
        chosen_probability(result),
    )


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
        "warnings": [*outcome.data.warnings, *outcome.notes],
        "reason": outcome.reason,
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
            customers=c.customer_count,
            mailing_list_file=None if outcome.mailing_list_file is None else str(outcome.mailing_list_file),
        )
    return out
