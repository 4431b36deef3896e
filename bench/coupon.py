"""``dmplan bench coupon``: solve times of the segment LP and of customer lists of growing size.

Each customer-list size and method runs in a child process of its own, so its peak memory (the
child's peak resident set: instance generation included) is measured per run and a large size
cannot leave memory behind for the next. Runs whose estimated peak exceeds ``--max-memory-gb`` are
skipped with that estimate rather than run into swap or the kernel's OOM killer on a shared
machine. Per size: the dual method (the default for scored lists), the previous sifting method up
to ``--sifting-max`` customers, and HiGHS on the full LP relaxation (every class's columns in one
model) up to ``--lp-max``, whose optimum the dual method's proven bound must match.

Every row is certified: objective, proven bound and gap come from the result. The reference
solver runs on the same instances in the same run: PuLP/CBC for the segment LP, and HiGHS's MIP on
the whole class model without sifting (every scored customer a binary column; the book's
customers, identical within a segment, form 16 integer classes) for lists up to
``--reference-max`` customers, killed 30 s after its time limit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from queue import Empty
from typing import TYPE_CHECKING, Any

# Solvers and numpy load when a benchmark runs, not when ``dmplan --help`` lists its options.
if TYPE_CHECKING:
    from dmplan.solver.coupon import CouponProblem, CustomerList


def _reference_worker(problem: CouponProblem, customers: CustomerList, time_limit: float, queue: Any) -> None:
    from dmplan.solver.coupon.reference import reference_binary

    queue.put(reference_binary(problem, customers, time_limit))


def reference_with_deadline(
    problem: CouponProblem, customers: CustomerList, time_limit: float, grace: float = 30.0
) -> tuple[float, float, float] | None:
    """:func:`reference_binary` in a child process, killed ``grace`` seconds after its time limit:
    HiGHS does not check its time limit during the root cut rounds of a large MIP. None when killed."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_reference_worker, args=(problem, customers, time_limit, queue))
    child.start()
    try:
        return queue.get(timeout=time_limit + grace)
    except Empty:
        return None
    finally:
        child.kill()
        child.join()


#: peak resident bytes per scored customer of a child (generation, chunks, solve, re-check), measured
#: 2026-11-28 with the dual method: 1.3 GB at 10,000,000; the sifting and the full LP need far more
BYTES_PER_CUSTOMER = {"lagrangian": 140, "sifting": 650, "full LP": 650}


def _customer_worker(size: int, method: str, queue: Any) -> None:
    """One size and method in a child: generate, solve; report with the child's peak memory."""
    from dmplan.solver.coupon import solve_customers
    from dmplan.solver.coupon.book import book_problem, scored_customers

    problem, book_customers = book_problem()
    if size == 5000:
        p, customers = problem, book_customers
    else:
        p, customers = scored_customers(problem, size)
    row: dict[str, Any] = {}
    if method == "full LP":
        objective, seconds = full_lp(p, customers)
        row.update(objective=objective, seconds=seconds, wall=seconds)
    else:
        start = time.perf_counter()
        plan = solve_customers(p, customers, gap=1e-6, method=method)  # type: ignore[arg-type]
        cert = plan.certificate
        row.update(
            status=cert.status.value,
            objective=cert.objective,
            bound=cert.bound,
            gap=cert.gap,
            seconds=cert.seconds,
            wall=time.perf_counter() - start,
            free=plan.details.get("free_classes", 0),
            checked=bool(cert.feasibility and cert.feasibility.ok),
        )
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    queue.put(row)


def full_lp(problem: CouponProblem, customers: CustomerList) -> tuple[float, float]:
    """HiGHS on the LP relaxation of the whole class model: (optimum, seconds)."""
    import numpy as np

    from dmplan.solver.backends.highs import solve as solve_highs
    from dmplan.solver.coupon.checks import customer_minimums
    from dmplan.solver.coupon.customers import _classes, _program

    classes = _classes(problem, customers)
    minimum = customer_minimums(problem, np.bincount(customers.segment, minlength=len(problem.segments)))
    program = _program(classes, np.arange(len(classes.size)), minimum, problem.budget, integer=False)
    start = time.perf_counter()
    sol = solve_highs(program)
    return float(sol.objective if sol.objective is not None else np.nan), time.perf_counter() - start


def customer_row(size: int, method: str, timeout: float) -> dict[str, Any] | None:
    """:func:`_customer_worker` in a forked child; None when it did not finish within ``timeout`` s."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_customer_worker, args=(size, method, queue))
    child.start()
    try:
        return queue.get(timeout=timeout)
    except Empty:
        return None
    finally:
        child.kill()
        child.join()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", default="5000,100000,1000000,10000000,100000000", help="customer-list sizes (comma separated)"
    )
    parser.add_argument("--max-memory-gb", type=float, default=16.0, help="skip runs estimated to need more")
    parser.add_argument("--lp-max", type=int, default=100_000, help="largest list HiGHS solves as one full LP")
    parser.add_argument("--sifting-max", type=int, default=1_000_000, help="largest list the sifting method solves")
    parser.add_argument("--size-timeout", type=float, default=900.0, help="seconds per run before it is killed")
    parser.add_argument("--repeats", type=int, default=20, help="segment LP solves to time")
    parser.add_argument("--reference-max", type=int, default=100_000, help="largest list the reference solves")
    parser.add_argument("--reference-time-limit", type=float, default=120.0, help="seconds; killed 30 s later")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from dmplan.solver.common import relative_gap
    from dmplan.solver.coupon import CustomerList, solve
    from dmplan.solver.coupon.book import book_problem, scored_customers

    console = Console(width=max(230, Console().width))  # tables stay readable in a log file
    problem, book_customers = book_problem()

    table = Table(title="Segment LP (book data, 16 segments x 3 mailings)")
    for col in ("solver", "objective", "proven bound", "gap", "median ms", "ratio to highs"):
        table.add_column(col, justify="right")
    timings: dict[str, float] = {}
    for backend in ("highs", "pulp"):
        times, result = [], None
        for _ in range(args.repeats if backend == "highs" else max(3, args.repeats // 5)):
            start = time.perf_counter()
            result = solve(problem, solver=backend)
            times.append(time.perf_counter() - start)
        assert result is not None
        timings[backend] = float(np.median(times))
        table.add_row(
            backend,
            f"{result.objective:.4f}",
            f"{result.certificate.bound:.4f}",
            f"{result.certificate.gap:.2e}",
            f"{1000 * timings[backend]:.2f}",
            f"{timings[backend] / timings['highs']:.1f}x",
        )
    console.print(table)

    table = Table(title="Customer-level plan (one mailing per customer, binary), solve from arrays in memory")
    for col in (
        "customers",
        "method",
        "status",
        "objective",
        "proven bound",
        "gap",
        "solve s",
        "wall s",
        "peak GB",
        "near a tie",
        "re-check",
        "full LP optimum (highs)",
        "reference objective",
        "reference gap",
        "reference s",
    ):
        table.add_column(col, justify="right")
    for size in [int(s) for s in args.sizes.split(",")]:
        lp_row = None
        if size <= args.lp_max:
            lp_row = customer_row(size, "full LP", args.size_timeout)
        lp_text = "" if lp_row is None else f"{lp_row['objective']:,.4f} in {lp_row['seconds']:.2f} s"
        ref = ("", "", "")
        if size <= args.reference_max:
            if size == 5000:
                p, customers = problem, book_customers
                customers = CustomerList(customers.customer_id, customers.segment, p.probability[customers.segment])
            else:
                p, customers = scored_customers(problem, size)
            found = reference_with_deadline(p, customers, args.reference_time_limit)
            if found is None:
                ref = ("none", "", f"> {args.reference_time_limit + 30:.0f} (killed)")
            else:
                r_obj, r_bound, r_sec = found
                gap = relative_gap(r_obj, r_bound)
                ref = (f"{r_obj:,.2f}", f"{gap:.2e}" if gap is not None else "", f"{r_sec:.2f}")
        # the book's 5,000 customers carry no scores: 16 classes, solved by the class model alone
        methods = ("sifting",) if size == 5000 else ("lagrangian", "sifting")
        for method in methods:
            label = {"lagrangian": "dual (default)", "sifting": "sifting (previous)"}[method]
            if size == 5000:
                label = "class model (book)"
            if method == "sifting" and size > args.sifting_max:
                table.add_row(f"{size:,}", label, f"not run (> {args.sifting_max:,})", *[""] * 12)
                continue
            estimate = BYTES_PER_CUSTOMER[method] * size / 1e9
            if estimate > args.max_memory_gb:
                table.add_row(f"{size:,}", label, f"skipped (~{estimate:.0f} GB)", *[""] * 12)
                continue
            row = customer_row(size, method, args.size_timeout)
            if row is None:
                table.add_row(f"{size:,}", label, f"killed after {args.size_timeout:.0f} s", *[""] * 12)
                continue
            table.add_row(
                f"{size:,}",
                label,
                row["status"],
                f"{row['objective']:,.4f}" if row["objective"] is not None else "",
                f"{row['bound']:,.4f}" if row["bound"] is not None else "",
                f"{row['gap']:.1e}" if row["gap"] is not None else "",
                f"{row['seconds']:.2f}",
                f"{row['wall']:.2f}",
                f"{row['peak_gb']:.2f}",
                f"{int(row['free']):,}",
                "passed" if row["checked"] else "FAILED",
                lp_text if method == methods[0] else "",
                *(ref if method == methods[0] else ("", "", "")),
            )
            console.print(
                f"  {size:,} customers, {method}: {row['seconds']:.2f} s, {row['peak_gb']:.2f} GB, gap {row['gap']}"
            )
    console.print(table)
    return 0
