"""``dmplan bench coupon``: solve times of the segment LP and of customer lists of growing size.

Every row is certified: objective, proven bound and gap come from the result. The reference
solver runs on the same instances in the same run: PuLP/CBC for the segment LP, and HiGHS's MIP on
the whole class model without sifting (every scored customer a binary column; the book's
customers, identical within a segment, form 16 integer classes) for lists up to
``--reference-max`` customers, killed 30 s after its time limit.
"""

from __future__ import annotations

import argparse
import multiprocessing
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="5000,100000,1000000", help="customer-list sizes (comma separated)")
    parser.add_argument("--repeats", type=int, default=20, help="segment LP solves to time")
    parser.add_argument("--reference-max", type=int, default=100_000, help="largest list the reference solves")
    parser.add_argument("--reference-time-limit", type=float, default=120.0, help="seconds; killed 30 s later")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from dmplan.solver.common import relative_gap
    from dmplan.solver.coupon import solve, solve_customers
    from dmplan.solver.coupon.book import book_problem, scored_customers

    console = Console(width=max(160, Console().width))  # tables stay readable in a log file
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
        "free",
        "rounds",
        "reference objective",
        "reference gap",
        "reference s",
        "speed-up",
    ):
        table.add_column(col, justify="right")
    for size in [int(s) for s in args.sizes.split(",")]:
        if size == 5000:
            p, customers = problem, book_customers
            scores = "segment (book)"
        else:
            p, customers = scored_customers(problem, size)
            scores = "individual"
        plan = solve_customers(p, customers)
        cert = plan.certificate
        ref = ("", "", "", "")
        if size <= args.reference_max:
            if customers.probability is None:
                customers = CustomerList(customers.customer_id, customers.segment, p.probability[customers.segment])
            found = reference_with_deadline(p, customers, args.reference_time_limit)
            if found is None:
                killed = args.reference_time_limit + 30
                ref = ("none", "", f"> {killed:.0f} (killed)", f"> {killed / cert.seconds:.0f}x")
            else:
                r_obj, r_bound, r_sec = found
                gap = relative_gap(r_obj, r_bound)
                ref = (
                    f"{r_obj:,.2f}",
                    f"{gap:.2e}" if gap is not None else "",
                    f"{r_sec:.2f}",
                    f"{r_sec / cert.seconds:.1f}x",
                )
        table.add_row(
            f"{size:,}",
            scores,
            cert.status.value,
            f"{cert.objective:,.2f}",
            f"{cert.bound:,.2f}",
            f"{cert.gap:.2e}",
            f"{cert.seconds:.2f}",
            f"{int(plan.details.get('free_classes', 0)):,}",
            f"{int(plan.details.get('lp_rounds', 0))}",
            *ref,
        )
        console.print(f"  {size:,} customers: {cert.seconds:.2f} s, gap {cert.gap:.2e}, reference {ref[2] or '-'}")
    console.print(table)
    return 0
