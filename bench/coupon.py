"""``dmplan bench coupon``: solve times of the segment LP and of customer lists of growing size.

Each customer-list size runs in a child process of its own, so its peak memory (the child's peak
resident set: instance generation included) is measured per size and a large size cannot leave
memory behind for the next. Sizes whose estimated peak exceeds ``--max-memory-gb`` are skipped
with that estimate rather than run into swap or the kernel's OOM killer on a shared machine.
Beside every size: HiGHS on the full LP relaxation (every class's columns in one model) for lists
up to ``--lp-max`` classes, whose optimum must equal the method's proven bound up to the rounding
of its own solve.

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


#: peak resident bytes per scored customer (child process, generation and solve): 0.61 GB at 1,000,000, 2026-11-28
BYTES_PER_CUSTOMER = 650


def _customer_worker(size: int, lp_max: int, queue: Any) -> None:
    """One size in a child: generate, solve, HiGHS's full LP where it fits; report with the child's peak memory."""
    from dmplan.solver.coupon import solve_customers
    from dmplan.solver.coupon.book import book_problem, scored_customers

    problem, book_customers = book_problem()
    if size == 5000:
        p, customers, scores = problem, book_customers, "segment (book)"
    else:
        (p, customers), scores = scored_customers(problem, size), "individual"
    plan = solve_customers(p, customers)
    cert = plan.certificate
    row: dict[str, Any] = {
        "scores": scores,
        "status": cert.status.value,
        "objective": cert.objective,
        "bound": cert.bound,
        "gap": cert.gap,
        "seconds": cert.seconds,
        "free": plan.details.get("free_classes", 0),
        "rounds": plan.details.get("lp_rounds", 0),
        "lp": None,
    }
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    if size <= lp_max:
        row["lp"] = full_lp(p, customers)
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


def customer_row(size: int, lp_max: int, timeout: float) -> dict[str, Any] | None:
    """:func:`_customer_worker` in a forked child; None when it did not finish within ``timeout`` s."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_customer_worker, args=(size, lp_max, queue))
    child.start()
    try:
        return queue.get(timeout=timeout)
    except Empty:
        return None
    finally:
        child.kill()
        child.join()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="5000,100000,1000000", help="customer-list sizes (comma separated)")
    parser.add_argument("--max-memory-gb", type=float, default=16.0, help="skip sizes estimated to need more")
    parser.add_argument("--lp-max", type=int, default=1_000_000, help="largest list HiGHS solves as one full LP")
    parser.add_argument("--size-timeout", type=float, default=1800.0, help="seconds per size before it is killed")
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

    table = Table(title="Customer-level plan (one mailing per customer, binary)")
    for col in (
        "customers",
        "scores",
        "status",
        "objective",
        "proven bound",
        "gap",
        "seconds",
        "peak GB",
        "free",
        "rounds",
        "full LP (highs)",
        "LP s",
        "reference objective",
        "reference gap",
        "reference s",
        "speed-up",
    ):
        table.add_column(col, justify="right")
    for size in [int(s) for s in args.sizes.split(",")]:
        estimate = BYTES_PER_CUSTOMER * size / 1e9
        if estimate > args.max_memory_gb:
            console.print(f"  {size:,} customers: skipped, estimated peak {estimate:.0f} GB > {args.max_memory_gb:g}")
            table.add_row(f"{size:,}", "individual", f"skipped (~{estimate:.0f} GB)", *[""] * 13)
            continue
        row = customer_row(size, args.lp_max, args.size_timeout)
        if row is None:
            table.add_row(f"{size:,}", "", f"killed after {args.size_timeout:.0f} s", *[""] * 13)
            continue
        ref = ("", "", "", "")
        if size <= args.reference_max:
            if size == 5000:
                p, customers = problem, book_customers
                customers = CustomerList(customers.customer_id, customers.segment, p.probability[customers.segment])
            else:
                p, customers = scored_customers(problem, size)
            found = reference_with_deadline(p, customers, args.reference_time_limit)
            if found is None:
                killed = args.reference_time_limit + 30
                ref = ("none", "", f"> {killed:.0f} (killed)", f"> {killed / row['seconds']:.0f}x")
            else:
                r_obj, r_bound, r_sec = found
                gap = relative_gap(r_obj, r_bound)
                ref = (
                    f"{r_obj:,.2f}",
                    f"{gap:.2e}" if gap is not None else "",
                    f"{r_sec:.2f}",
                    f"{r_sec / row['seconds']:.1f}x",
                )
        lp = row["lp"]
        table.add_row(
            f"{size:,}",
            row["scores"],
            row["status"],
            f"{row['objective']:,.2f}" if row["objective"] is not None else "",
            f"{row['bound']:,.2f}" if row["bound"] is not None else "",
            f"{row['gap']:.2e}" if row["gap"] is not None else "",
            f"{row['seconds']:.2f}",
            f"{row['peak_gb']:.2f}",
            f"{int(row['free']):,}",
            f"{int(row['rounds'])}",
            f"{lp[0]:,.4f}" if lp else "",
            f"{lp[1]:.2f}" if lp else "",
            *ref,
        )
        console.print(f"  {size:,} customers: {row['seconds']:.2f} s, {row['peak_gb']:.2f} GB, gap {row['gap']}")
    console.print(table)
    return 0
